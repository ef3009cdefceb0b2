// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The count-only floor: one tp_btf program per allocator tracepoint that
 * kmemscope uses, each bumping a per-CPU counter. Whatever kmemscope costs
 * above this is the price of its records, not of attaching at all. With -u
 * (floor.c), the same for --user: a uprobe and a uretprobe program on the C
 * library functions kmemscope probes, so the cost of the traps themselves
 * stands apart from kmemscope's programs and records.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "floor.h"

/* set before load: count only tasks named target_comm as "target" */
const volatile bool filter_comm = false;
const volatile char target_comm[16] = {};

/* set after load (the child's tgid is known only after fork): 0 = none */
__u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floor_counts);
} counts SEC(".maps");

static __always_inline bool is_target(void)
{
	char comm[16];
	int i;

	if (!filter_comm)
		return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid;

	if (bpf_get_current_comm(comm, sizeof(comm)))
		return false;
	for (i = 0; i < 16; i++) {
		if (comm[i] != target_comm[i])
			return false;
		if (!comm[i])
			break;
	}
	return true;
}

static __always_inline int count(int ev)
{
	struct floor_counts *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&counts, &zero);
	if (!c)
		return 0;
	c->all[ev]++;
	if (is_target())
		c->target[ev]++;
	return 0;
}

#define FLOOR_PROG(tp, ev)			\
SEC("tp_btf/" #tp)				\
int BPF_PROG(floor_##tp)			\
{						\
	return count(ev);			\
}

FLOOR_PROG(kmalloc, FLOOR_KMALLOC)
FLOOR_PROG(kfree, FLOOR_KFREE)
FLOOR_PROG(kmem_cache_alloc, FLOOR_CACHE_ALLOC)
FLOOR_PROG(kmem_cache_free, FLOOR_CACHE_FREE)
FLOOR_PROG(mm_page_alloc, FLOOR_PAGE_ALLOC)
FLOOR_PROG(mm_page_free, FLOOR_PAGE_FREE)
FLOOR_PROG(mm_page_free_batched, FLOOR_PAGE_FREE_BATCHED)
FLOOR_PROG(alloc_vmap_area, FLOOR_VMALLOC)
FLOOR_PROG(free_vmap_area_noflush, FLOOR_VFREE)
FLOOR_PROG(percpu_alloc_percpu, FLOOR_PERCPU_ALLOC)
FLOOR_PROG(percpu_free_percpu, FLOOR_PERCPU_FREE)
FLOOR_PROG(dma_alloc, FLOOR_DMA_ALLOC)
FLOOR_PROG(dma_alloc_pages, FLOOR_DMA_ALLOC)
FLOOR_PROG(dma_alloc_sgt, FLOOR_DMA_ALLOC)
FLOOR_PROG(dma_free, FLOOR_DMA_FREE)
FLOOR_PROG(dma_free_pages, FLOOR_DMA_FREE)
FLOOR_PROG(dma_free_sgt, FLOOR_DMA_FREE)

/* -u: the C library's allocation functions, attached by floor.c */
SEC("uprobe")
int floor_uprobe(void *ctx)
{
	return count(FLOOR_UPROBE);
}

SEC("uretprobe")
int floor_uretprobe(void *ctx)
{
	return count(FLOOR_URETPROBE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
