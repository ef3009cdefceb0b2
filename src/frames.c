/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "frames.h"
#include "ksyms.h"
#include "kmemscope.h"

enum pat_kind {
	PAT_EXACT,	/* name, or name + "_noprof" */
	PAT_VARIANT,	/* name, then any number of "_<variant word>" */
	PAT_PREFIX,	/* anything starting with name */
};

struct pattern {
	const char *name;
	enum pat_kind kind;
};

/* allocator entry points and internals, 6.1 to 6.18 names */
static const struct pattern patterns[] = {
	/* slab */
	{ "kmalloc", PAT_VARIANT },
	{ "__kmalloc", PAT_VARIANT },
	{ "kmem_cache_alloc", PAT_VARIANT },
	{ "__kmem_cache_alloc", PAT_VARIANT },
	{ "slab_alloc", PAT_VARIANT },
	{ "___slab_alloc", PAT_EXACT },
	{ "__slab_alloc", PAT_VARIANT },
	{ "new_slab", PAT_EXACT },
	{ "allocate_slab", PAT_EXACT },
	{ "alloc_slab_page", PAT_EXACT },
	{ "kmalloc_large", PAT_VARIANT },
	{ "__kmalloc_large", PAT_VARIANT },
	{ "___kmalloc_large", PAT_VARIANT },	/* 6.18 */
	{ "kmalloc_order", PAT_VARIANT },
	{ "krealloc", PAT_VARIANT },
	{ "__do_krealloc", PAT_EXACT },
	{ "kvmalloc", PAT_VARIANT },
	{ "__kvmalloc", PAT_VARIANT },
	{ "kvrealloc", PAT_VARIANT },
	/* page allocator */
	{ "alloc_pages", PAT_VARIANT },
	{ "__alloc_pages", PAT_VARIANT },
	{ "alloc_pages_mpol", PAT_VARIANT },
	{ "__alloc_frozen_pages", PAT_VARIANT },
	{ "alloc_frozen_pages", PAT_VARIANT },	/* 6.14+ */
	{ "folio_alloc", PAT_VARIANT },
	{ "__folio_alloc", PAT_VARIANT },
	{ "get_page_from_freelist", PAT_EXACT },
	{ "rmqueue", PAT_VARIANT },
	{ "__rmqueue", PAT_VARIANT },
	{ "__get_free_pages", PAT_VARIANT },
	{ "get_zeroed_page", PAT_VARIANT },
	{ "get_free_pages", PAT_VARIANT },	/* 6.18: get_free_pages_noprof */
	{ "vma_alloc_folio", PAT_VARIANT },
	/* vmalloc */
	{ "vmalloc", PAT_VARIANT },
	{ "__vmalloc", PAT_VARIANT },
	{ "vzalloc", PAT_VARIANT },
	{ "vmalloc_node", PAT_VARIANT },
	{ "alloc_vmap_area", PAT_EXACT },
	{ "__get_vm_area", PAT_VARIANT },
	{ "get_vm_area", PAT_VARIANT },
	{ "__vmalloc_area_node", PAT_EXACT },
	{ "vm_area_alloc_pages", PAT_EXACT },
	/* dma */
	{ "dma_alloc", PAT_VARIANT },
	{ "__dma_alloc", PAT_VARIANT },
	{ "dma_direct_alloc", PAT_VARIANT },
	{ "__dma_direct_alloc_pages", PAT_VARIANT },
	{ "dma_alloc_attrs", PAT_EXACT },
	{ "iommu_dma_alloc", PAT_VARIANT },
	{ "__iommu_dma_alloc", PAT_VARIANT },
	/* percpu */
	{ "pcpu_alloc", PAT_VARIANT },
	{ "__alloc_percpu", PAT_VARIANT },
	{ "__alloc_reserved_percpu", PAT_EXACT },
	/*
	 * Wrappers: they allocate for their caller, who is the call site.
	 * mempool fills and refills its reserve through pool->alloc, so
	 * every element shows at mempool_alloc or mempool_init_node.
	 */
	{ "mempool_alloc", PAT_VARIANT },
	{ "mempool_alloc_slab", PAT_EXACT },
	{ "mempool_kmalloc", PAT_EXACT },
	{ "mempool_init", PAT_VARIANT },
	{ "mempool_create", PAT_VARIANT },
	{ "mempool_resize", PAT_EXACT },
	/* ioremap: a vmap area, its vm_struct and (x86) its memtype entry */
	{ "ioremap", PAT_VARIANT },
	{ "__ioremap", PAT_VARIANT },
	{ "memremap", PAT_EXACT },
	{ "memtype_reserve", PAT_VARIANT },
	/* tracing and BPF plumbing */
	{ "bpf_", PAT_PREFIX },
	{ "__bpf_", PAT_PREFIX },
	{ "__traceiter_", PAT_PREFIX },
	{ "trace_", PAT_PREFIX },
	{ "perf_", PAT_PREFIX },
	{ "ftrace_", PAT_PREFIX },
	{ "__ftrace", PAT_PREFIX },
};

/*
 * Words that make a variant of an allocator name, collected from the
 * kernel's allocator functions (kmalloc_node_track_caller_noprof,
 * kmem_cache_alloc_lru_noprof, __alloc_pages_direct_compact,
 * alloc_pages_bulk_array_mempolicy, __vmalloc_node_range_noprof,
 * dma_alloc_noncontiguous, pcpu_alloc_area, __alloc_percpu_gfp, ...).
 * A word missing here makes that function a call site, which is the safe
 * direction: the site is one frame too deep rather than hidden.
 */
static const char *const variant_words[] = {
	"noprof", "node", "trace", "track", "caller", "large", "order", "cache",
	"nolock", "lru", "bulk", "from", "sheaf", "align", "array", "exact", "nid",
	"vma", "mpol", "mempolicy", "preferred", "many", "interleave", "weighted",
	"slowpath", "direct", "compact", "reclaim", "may", "oom", "cpuset",
	"fallback", "pcplist", "buddy", "user", "32", "huge", "range", "attrs",
	"pages", "noncontiguous", "coherent", "dev", "contiguous", "remap",
	"area", "gfp", "slab", "preallocated", "frozen",
	/* ioremap_wc, ioremap_prot, __ioremap_caller, memtype_reserve_io, ... */
	"wc", "uc", "wt", "np", "prot", "encrypted", "io",
};

static bool is_variant_word(const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(variant_words) / sizeof(variant_words[0]); i++)
		if (strlen(variant_words[i]) == len && !memcmp(variant_words[i], w, len))
			return true;
	return false;
}

/* s[0..len) is empty or a sequence of "_word" with every word a variant word */
static bool only_variant_words(const char *s, size_t len)
{
	while (len) {
		size_t w;

		if (*s != '_')
			return false;
		s++;
		len--;
		for (w = 0; w < len && s[w] != '_'; w++)
			;
		if (!w || !is_variant_word(s, w))
			return false;
		s += w;
		len -= w;
	}
	return true;
}

static bool pattern_match(const struct pattern *p, const char *func, size_t len)
{
	size_t n = strlen(p->name);

	if (len < n || memcmp(func, p->name, n))
		return false;
	switch (p->kind) {
	case PAT_PREFIX:
		return true;
	case PAT_EXACT:
		return len == n || (len - n == 7 && !memcmp(func + n, "_noprof", 7));
	case PAT_VARIANT:
		return only_variant_words(func + n, len - n);
	}
	return false;
}

static bool matches(const char *func, bool plumbing)
{
	size_t i, len;

	if (!func || !*func)
		return false;
	/* "slab_alloc_node.constprop.0": compiler clones are the same function */
	len = strcspn(func, ".");
	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		if ((plumbing || patterns[i].kind != PAT_PREFIX) &&
		    pattern_match(&patterns[i], func, len))
			return true;
	return false;
}

bool frames__is_internal(const char *func)
{
	return matches(func, true);
}

/* allocator functions only: a call site in tracing plumbing is not an allocation's */
static bool is_allocator(const char *func)
{
	return matches(func, false);
}

int frames__wrappers(const struct ksyms *k, unsigned long *lo, unsigned long *hi, int max)
{
	size_t n = ksyms__ranges(k, is_allocator, lo, hi, max);

	return n > (size_t)max ? -E2BIG : (int)n;
}

void frames__wrapper_pages(const unsigned long *lo, const unsigned long *hi, int n,
			   __u64 *bits)
{
	memset(bits, 0, KMS_WRAP_PAGES / 8);
	for (int i = 0; i < n; i++)
		for (unsigned long pg = lo[i] >> KMS_WRAP_PAGE_SHIFT;
		     pg <= (hi[i] - 1) >> KMS_WRAP_PAGE_SHIFT; pg++)
			bits[pg / 64 % (KMS_WRAP_PAGES / 64)] |= 1ULL << (pg % 64);
}

bool frames__named(const char *func, const char *const *names)
{
	size_t len = strcspn(func, ".");

	for (; *names; names++) {
		const struct pattern p = { *names, PAT_EXACT };

		if (pattern_match(&p, func, len))
			return true;
	}
	return false;
}

bool frames__through(const struct ksyms *k, const unsigned long *ips, int n, const char *func)
{
	const char *const names[] = { func, NULL };

	for (int i = 0; k && i < n; i++) {
		const struct ksym *s = ips[i] ? ksyms__resolve(k, ips[i]) : NULL;

		if (s && frames__named(s->name, names))
			return true;
	}
	return false;
}

int frames__pick_site(const struct ksyms *k, const unsigned long *ips, int n)
{
	const struct ksym *s;
	int i;

	if (!k || !ips)
		return -1;
	for (i = 0; i < n; i++) {
		if (!ips[i])
			continue;
		s = ksyms__resolve(k, ips[i]);
		if (!s || frames__is_internal(s->name))
			continue;
		return i;
	}
	return -1;
}
