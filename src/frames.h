/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Choosing an allocation's call site from a kernel stack: the first frame
 * that is not allocator internals or tracing/BPF plumbing.
 */
#ifndef KMS_FRAMES_H
#define KMS_FRAMES_H

#include <stdbool.h>
#include <linux/types.h>

struct ksyms;

/*
 * True for allocator internals (kmalloc*, kmem_cache_alloc*, alloc_pages*,
 * vmalloc*, dma_alloc*, pcpu_alloc*, mempool_alloc*, ...) and for tracing
 * and BPF plumbing (bpf_*, __bpf_*, trace_*, __traceiter_*, perf_*,
 * ftrace_*, __ftrace*). Compiler clone suffixes (".constprop.0", ".isra.0",
 * ".part.0", ".cold") are ignored.
 *
 * An allocator pattern written "name*" matches name itself and name followed
 * by allocator variant words only ("_node", "_trace", "_noprof", "_bulk",
 * "_lru", "_track_caller", ...: see variant_words in frames.c), so
 * kmalloc_node_noprof is internal while kmalloc_test_helper or KASAN's
 * kmalloc_oob_right are not. Exact names also match with "_noprof" appended
 * (6.10+). Plumbing prefixes match anything that starts with them.
 */
bool frames__is_internal(const char *func);

/*
 * The address ranges of the allocator functions of k (every internal
 * pattern but the tracing plumbing), sorted, for the BPF side: a call site
 * reported inside one is not the caller. Returns how many, -E2BIG when more
 * than max.
 */
int frames__wrappers(const struct ksyms *k, unsigned long *lo, unsigned long *hi, int max);

/*
 * The pages of those n ranges as the BPF side's bitmap (KMS_WRAP_PAGES bits,
 * indexed by page number modulo their count; see in_wrapper() in bpf/):
 * bits is cleared first.
 */
void frames__wrapper_pages(const unsigned long *lo, const unsigned long *hi, int n,
			   __u64 *bits);

/*
 * Whether func is one of names (NULL-terminated), whole: name, name_noprof,
 * or a compiler clone of either.
 */
bool frames__named(const char *func, const char *const *names);

/* Whether one of ips[0..n) is in func (as frames__named() matches). */
bool frames__through(const struct ksyms *k, const unsigned long *ips, int n, const char *func);

/*
 * Index of the first frame of ips[0..n) that resolves to a function that is
 * not internal; zero and unresolvable frames are skipped. -1 if none.
 */
int frames__pick_site(const struct ksyms *k, const unsigned long *ips, int n);

#endif /* KMS_FRAMES_H */
