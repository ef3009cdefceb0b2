/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frames.h"
#include "ksyms.h"
#include "kmemscope.h"

/* real allocator and plumbing names from 6.1 and 6.18 kallsyms */
static const char *const internal[] = {
	"kmalloc", "kmalloc_trace", "kmalloc_node_trace", "kmalloc_large", "kmalloc_large_node",
	"kmalloc_order", "kmalloc_order_trace", "kmalloc_trace_noprof", "kmalloc_nolock_noprof",
	"kmalloc_array_noprof", "kmalloc_array_noprof.constprop.0",
	"__kmalloc", "__kmalloc_node", "__kmalloc_track_caller", "__kmalloc_node_track_caller",
	"__kmalloc_noprof", "__kmalloc_node_noprof", "__kmalloc_cache_noprof",
	"__kmalloc_cache_node_noprof", "__kmalloc_large_noprof", "__kmalloc_large_node_noprof",
	"__kmalloc_node_track_caller_noprof", "___kmalloc_large_node",
	"kmem_cache_alloc", "kmem_cache_alloc_lru", "kmem_cache_alloc_node",
	"kmem_cache_alloc_bulk", "kmem_cache_alloc_noprof", "kmem_cache_alloc_lru_noprof",
	"kmem_cache_alloc_node_noprof", "kmem_cache_alloc_bulk_noprof",
	"kmem_cache_alloc_from_sheaf_noprof", "__kmem_cache_alloc_node", "__kmem_cache_alloc_bulk",
	"slab_alloc_node.constprop.0", "slab_alloc", "___slab_alloc", "__slab_alloc",
	"__slab_alloc.isra.0", "__slab_alloc_node", "new_slab", "allocate_slab", "alloc_slab_page",
	"krealloc", "krealloc_noprof", "krealloc_node_align_noprof", "__do_krealloc",
	"kvmalloc_node", "kvmalloc_node_noprof", "__kvmalloc_node_noprof", "kvrealloc",
	"kvrealloc_noprof", "kvrealloc_node_align_noprof",
	"alloc_pages", "alloc_pages_noprof", "alloc_pages_exact_nid_noprof",
	"alloc_pages_bulk_noprof", "alloc_pages_bulk_mempolicy_noprof",
	"alloc_pages_bulk_weighted_interleave.cold", "alloc_pages_vma", "alloc_pages_mpol",
	"alloc_pages_mpol_noprof", "__alloc_pages", "__alloc_pages_noprof",
	"__alloc_pages_slowpath.constprop.0", "__alloc_pages_direct_compact",
	"__alloc_pages_bulk", "__alloc_frozen_pages_noprof", "alloc_frozen_pages_nolock_noprof",
	"folio_alloc", "folio_alloc_noprof", "__folio_alloc", "__folio_alloc_noprof",
	"folio_alloc_mpol_noprof", "get_page_from_freelist", "rmqueue", "rmqueue_bulk",
	"rmqueue_pcplist", "__rmqueue_pcplist", "__get_free_pages", "__get_free_pages_noprof",
	"get_zeroed_page", "get_zeroed_page_noprof",
	"vmalloc", "vmalloc_noprof", "vmalloc_user_noprof", "vmalloc_32_noprof",
	"vmalloc_huge_node_noprof", "vmalloc_node_noprof", "vmalloc_array_noprof", "__vmalloc",
	"__vmalloc_noprof", "__vmalloc_node_range", "__vmalloc_node_range_noprof.cold",
	"__vmalloc_node_noprof", "__vmalloc_array_noprof", "vzalloc", "vzalloc_noprof",
	"vzalloc_node_noprof", "alloc_vmap_area", "alloc_vmap_area.cold", "__get_vm_area_node",
	"__get_vm_area_caller", "get_vm_area", "get_vm_area_caller", "__vmalloc_area_node",
	"vm_area_alloc_pages",
	"dma_alloc_attrs", "dma_alloc_pages", "dma_alloc_noncontiguous", "__dma_alloc_pages",
	"dma_direct_alloc", "dma_direct_alloc_pages", "__dma_direct_alloc_pages.isra.0",
	"iommu_dma_alloc", "iommu_dma_alloc_noncontiguous", "__iommu_dma_alloc_noncontiguous",
	"pcpu_alloc", "pcpu_alloc_noprof", "pcpu_alloc_area", "__alloc_percpu",
	"__alloc_percpu_gfp", "__alloc_percpu_noprof", "__alloc_percpu_gfp_noprof",
	"__alloc_reserved_percpu",
	"mempool_alloc", "mempool_alloc_noprof", "mempool_alloc_slab", "mempool_alloc_pages",
	"mempool_alloc_preallocated", "mempool_kmalloc",
	/* wrappers: they allocate for their caller */
	"mempool_init_node", "mempool_init_noprof", "mempool_create_node",
	"mempool_create_node_noprof", "mempool_resize", "ioremap", "ioremap_wc", "ioremap_prot",
	"ioremap_cache", "ioremap_encrypted", "__ioremap_caller.constprop.0", "memremap",
	"memtype_reserve", "memtype_reserve_io",
	"bpf_prog_6deef7357e7b4530_handle_kmalloc", "bpf_trace_run2", "bpf_get_stackid",
	"__bpf_trace_kmalloc", "__bpf_prog_enter", "__traceiter_kmalloc", "trace_kmalloc",
	"trace_event_raw_event_kmalloc", "perf_trace_kmalloc", "ftrace_trampoline",
	"__ftrace_trace_stack",
};

/* call sites: users of the allocators, and look-alike names */
static const char *const sites[] = {
	"kms_sc_kmalloc", "kms_sc_cache", "kms_sc_vmalloc", "do_epoll_create", "__alloc_skb",
	"kmalloc_reserve", "dup_task_struct", "alloc_fdtable",
	/* look-alikes: a variant word list, not a bare prefix */
	"kmalloc_test_helper", "kmalloc_oob_right", "kmalloc_large_oob_right", "kmalloc_uaf",
	"kmalloc_size_roundup", "kmalloc_fix_flags", "kmallocx", "vmalloc_oob", "vmalloc_to_page",
	"vmalloc_init", "vmalloc_info_show", "folio_alloc_buffers", "folio_alloc_swap",
	"iommu_dma_alloc_iova", "pcpu_alloc_first_chunk", "get_vm_area_page_order",
	"alloc_pages_for_test", "new_slab_objects_x", "mempool_alloc_slabx",
	"_kmalloc", "xkmalloc", "tracer_x", "perfx_y", "bpfx", "", NULL,
	/* the wrappers' neighbours */
	"mempool_free", "mempool_exit", "bio_alloc_bioset", "ioremap_page_range",
	"memremap_pages", "memtype_free", "iounmap",
};

static void test_internal(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
		if (!frames__is_internal(internal[i]))
			fail_msg("%s should be internal", internal[i]);
}

static void test_sites(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(sites) / sizeof(sites[0]); i++)
		if (frames__is_internal(sites[i]))
			fail_msg("%s should be a call site", sites[i]);
}

static int setup(void **state)
{
	const char *dir = getenv("KMS_UNIT_DATA");
	char path[4096];

	snprintf(path, sizeof(path), "%s/kallsyms.txt", dir ? dir : "tests/unit/data");
	*state = ksyms__load(path);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	ksyms__free(*state);
	return 0;
}

static void test_pick_site(void **state)
{
	const struct ksyms *k = *state;
	/* a kmalloc from the test module, as bpf_get_stack() reports it */
	const unsigned long stack[] = {
		0xffffffffa0001040UL,	/* bpf_prog_..._handle_kmalloc */
		0xffffffff814ca1a0UL,	/* bpf_trace_run2 */
		0xffffffff815dd100UL,	/* __traceiter_kmalloc */
		0xffffffff81647700UL,	/* __kmalloc_noprof */
		0xffffffffc0a0001fUL,	/* kms_sc_kmalloc */
		0xffffffff8174fb80UL,	/* do_epoll_create */
	};
	const unsigned long unresolved[] = {
		0, 0x1234,
		0xffffffffc0a06004UL,	/* [third]'s page before its first symbol */
		0xffffffff81647530UL,	/* __slab_alloc.isra.0 */
		0xffffffff8174fb80UL,	/* do_epoll_create */
		0,
	};
	const unsigned long all_internal[] = {
		0xffffffff815dd100UL, 0xffffffff81647700UL, 0xffffffff8164fe00UL, 0,
	};

	assert_int_equal(frames__pick_site(k, stack, 6), 4);
	assert_int_equal(frames__pick_site(k, stack, 4), -1);
	assert_int_equal(frames__pick_site(k, stack + 5, 1), 0);
	assert_int_equal(frames__pick_site(k, unresolved, 6), 4);
	assert_int_equal(frames__pick_site(k, all_internal, 4), -1);
	assert_int_equal(frames__pick_site(k, stack, 0), -1);
	assert_int_equal(frames__pick_site(k, NULL, 6), -1);
	assert_int_equal(frames__pick_site(NULL, stack, 6), -1);
}

/* the allocator functions' ranges BPF is given: allocators in, plumbing and users out */
static void test_wrappers(void **state)
{
	const struct ksyms *k = *state;
	unsigned long lo[64], hi[64];
	const unsigned long in[] = {
		0xffffffff816475a0UL,	/* __kmalloc_noprof */
		0xffffffff81647700UL,	/* inside it */
		0xffffffff81647530UL,	/* __slab_alloc.isra.0 */
		0xffffffff816243f0UL,	/* __vmalloc_node_range_noprof */
	};
	const unsigned long out[] = {
		0xffffffff814ca1a0UL,	/* bpf_trace_run2: plumbing, never a reported site */
		0xffffffff815dd100UL,	/* __traceiter_kmalloc */
		0xffffffff8174fb80UL,	/* do_epoll_create */
		0xffffffff81647590UL,	/* __pfx___kmalloc_noprof: padding before it */
		0xffffffffc0a0001fUL,	/* kms_sc_kmalloc [module] */
	};
	int n = frames__wrappers(k, lo, hi, 64), i, j;

	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		assert_true(lo[i] < hi[i]);
		if (i)
			assert_true(hi[i - 1] < lo[i]);	/* sorted, neighbours merged */
	}
	for (j = 0; j < (int)(sizeof(in) / sizeof(in[0])); j++) {
		for (i = 0; i < n && !(lo[i] <= in[j] && in[j] < hi[i]); i++)
			;
		if (i == n)
			fail_msg("%#lx should be in a wrapper range", in[j]);
	}
	for (j = 0; j < (int)(sizeof(out) / sizeof(out[0])); j++)
		for (i = 0; i < n; i++)
			if (lo[i] <= out[j] && out[j] < hi[i])
				fail_msg("%#lx should not be in a wrapper range", out[j]);
	assert_int_equal(frames__wrappers(k, lo, hi, 1), -E2BIG);
	assert_int_equal(frames__wrappers(NULL, lo, hi, 64), 0);
}

/* the BPF side's bitmap of their pages: what in_wrapper() in bpf/ tests first */
static bool page_bit(const __u64 *bits, unsigned long addr)
{
	unsigned long pg = addr >> KMS_WRAP_PAGE_SHIFT;

	return bits[pg / 64 % (KMS_WRAP_PAGES / 64)] >> (pg % 64) & 1;
}

static void test_wrapper_pages(void **state)
{
	const struct ksyms *k = *state;
	unsigned long lo[64], hi[64];
	__u64 bits[KMS_WRAP_PAGES / 64];
	int n = frames__wrappers(k, lo, hi, 64), set = 0, spanned = 0;

	assert_true(n > 0);
	memset(bits, 0xff, sizeof(bits));	/* cleared by the call */
	frames__wrapper_pages(lo, hi, n, bits);
	for (int i = 0; i < n; i++) {
		/* first and last byte of every range: a range may end on the next page */
		assert_true(page_bit(bits, lo[i]));
		assert_true(page_bit(bits, hi[i] - 1));
		spanned += ((hi[i] - 1) >> KMS_WRAP_PAGE_SHIFT) - (lo[i] >> KMS_WRAP_PAGE_SHIFT) + 1;
	}
	for (int w = 0; w < KMS_WRAP_PAGES / 64; w++)
		set += __builtin_popcountll(bits[w]);
	assert_true(set > 0 && set <= spanned);
	/* sites in pages of their own: no search */
	assert_false(page_bit(bits, 0xffffffff8174fb80UL));	/* do_epoll_create */
	assert_false(page_bit(bits, 0xffffffff814ca1a0UL));	/* bpf_trace_run2 */
	frames__wrapper_pages(lo, hi, 0, bits);
	for (int w = 0; w < KMS_WRAP_PAGES / 64; w++)
		assert_int_equal(bits[w], 0);
}

/* a stack through a function, by name, _noprof and clones included */
static void test_through(void **state)
{
	const struct ksyms *k = *state;
	const unsigned long stack[] = {
		0xffffffff815dd100UL,	/* __traceiter_kmalloc */
		0xffffffff81624400UL,	/* __vmalloc_node_range_noprof */
		0xffffffff8174fb80UL,	/* do_epoll_create */
	};

	assert_true(frames__through(k, stack, 3, "__vmalloc_node_range"));
	assert_false(frames__through(k, stack, 1, "__vmalloc_node_range"));
	assert_false(frames__through(k, stack, 3, "__vmalloc_node"));
	assert_false(frames__through(NULL, stack, 3, "__vmalloc_node_range"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_internal),
		cmocka_unit_test(test_sites),
		cmocka_unit_test_setup_teardown(test_pick_site, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrappers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrapper_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_through, setup, teardown),
	};

	return cmocka_run_group_tests_name("frames", tests, NULL, NULL);
}
