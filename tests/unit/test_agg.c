/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* agg: synthetic record streams with exact expected counts */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "agg.h"
#include "live.h"
#include "pipe.h"

#define SITE_A	0xffffffff81001000ULL
#define SITE_B	0xffffffff81002000ULL
#define CACHE1	0xffff888000100000ULL
#define DEV1	0xffff888000200000ULL
#define GFP_K	0xcc0

static __u64 now = 1000;

static struct kms_event ev(int type, __u64 ptr, __u64 site, __u32 req, __u32 alloc)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = req,
		.bytes_alloc = alloc, .gfp = GFP_K, .pid = 100, .node = -1,
		.stack_id = -1,
	};

	e.ts = now++;
	return e;
}

static void feed(struct agg *a, struct kms_event e)
{
	pipe_event(&e);
}

static void meta(struct agg *a, int type, __u64 key, const char *name, __u32 x, __u32 y)
{
	struct kms_meta m = { .type = type, .key = key, .a = x, .b = y };

	strncpy(m.name, name, sizeof(m.name) - 1);
	pipe_meta(&m);
}

static const struct agg_site *find_site(const struct agg *a, int fam, __u64 addr, __u64 obj)
{
	size_t i;

	for (i = 0; i < agg__nr_sites(a); i++) {
		const struct agg_site *s = agg__site(a, i);

		if (s->family == fam && s->addr == addr && s->obj == obj)
			return s;
	}
	return NULL;
}

static const struct agg_proc *find_proc(const struct agg *a, __u32 pid)
{
	size_t i;

	for (i = 0; i < agg__nr_procs(a); i++)
		if (agg__proc(a, i)->pid == pid)
			return agg__proc(a, i);
	return NULL;
}

static void test_names(void **state)
{
	assert_string_equal(kms_ev_name(KMS_EV_KMALLOC), "kmalloc");
	assert_string_equal(kms_ev_name(KMS_EV_PAGE_FREE_BATCHED), "mm_page_free_batched");
	assert_string_equal(kms_ev_name(KMS_EV_PERCPU_FREE), "percpu_free");
	assert_string_equal(kms_ev_name(KMS_EV_ALLOC_FAIL), "alloc_fail");
	assert_null(kms_ev_name(KMS_EV_NONE));
	assert_null(kms_ev_name(KMS_EV_META_TASK));
	assert_string_equal(kms_family_name(KMS_FAM_CACHE), "kmem_cache");
	assert_string_equal(kms_family_name(KMS_FAM_PERCPU), "percpu");
	assert_null(kms_family_name(KMS_FAM_MAX));
	assert_int_equal(kms_ev_family(KMS_EV_KFREE), KMS_FAM_KMALLOC);
	assert_int_equal(kms_ev_family(KMS_EV_CACHE_FREE), KMS_FAM_CACHE);
	assert_int_equal(kms_ev_family(KMS_EV_VFREE), KMS_FAM_VMALLOC);
	assert_int_equal(kms_ev_family(KMS_EV_ALLOC_FAIL), -1);
	assert_int_equal(kms_ev_family(KMS_EV_META_CACHE), -1);
	assert_true(kms_ev_is_alloc(KMS_EV_DMA_ALLOC));
	assert_false(kms_ev_is_alloc(KMS_EV_DMA_FREE));
	assert_false(kms_ev_is_alloc(KMS_EV_ALLOC_FAIL));
	/* deferred frees: slab class, like kfree, and marked */
	assert_string_equal(kms_ev_name(KMS_EV_RCU_FREE), "kfree_rcu");
	assert_string_equal(kms_ev_name(KMS_EV_CACHE_BULK_FREE), "kmem_cache_free_bulk");
	assert_int_equal(kms_ev_family(KMS_EV_BULK_FREE), KMS_FAM_KMALLOC);
	assert_int_equal(kms_ev_class(KMS_EV_RCU_FREE), KMS_OC_SLAB);
	assert_true(kms_ev_is_free(KMS_EV_CACHE_BULK_FREE));
	assert_true(kms_ev_is_deferred(KMS_EV_BULK_FREE));
	assert_false(kms_ev_is_deferred(KMS_EV_KFREE));
}

static void test_kmalloc_match(void **state)
{
	struct agg *a = pipe_agg();
	const struct agg_counts *f;
	const struct agg_site *s;

	assert_non_null(a);
	feed(a, ev(KMS_EV_KMALLOC, 0x1000, SITE_A, 10, 16));
	feed(a, ev(KMS_EV_KMALLOC, 0x2000, SITE_A, 10, 16));
	feed(a, ev(KMS_EV_KMALLOC, 0x3000, SITE_B, 100, 128));
	feed(a, ev(KMS_EV_KFREE, 0x1000, SITE_B, 0, 0));	/* freed elsewhere */
	feed(a, ev(KMS_EV_KFREE, 0x3000, SITE_B, 0, 0));
	feed(a, ev(KMS_EV_KFREE, 0x9000, SITE_B, 0, 0));	/* before tracing */
	feed(a, ev(KMS_EV_KFREE, 0x1000, SITE_B, 0, 0));	/* double: now unmatched */

	f = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(f->allocs, 3);
	assert_int_equal(f->frees, 2);
	assert_int_equal(f->unmatched_frees, 2);
	assert_int_equal(f->bytes_req, 120);
	assert_int_equal(f->bytes_alloc, 160);
	assert_int_equal(f->outstanding, 1);
	assert_int_equal(f->outstanding_bytes, 16);

	s = find_site(a, KMS_FAM_KMALLOC, SITE_A, 0);
	assert_non_null(s);
	assert_int_equal(s->allocs, 2);
	assert_int_equal(s->frees, 1);
	assert_int_equal(s->outstanding, 1);
	assert_int_equal(s->outstanding_bytes, 16);
	assert_int_equal(s->bytes_alloc - s->bytes_req, 12);
	s = find_site(a, KMS_FAM_KMALLOC, SITE_B, 0);
	assert_int_equal(s->frees, 1);
	assert_int_equal(s->outstanding, 0);
	assert_int_equal(agg__nr_sites(a), 2);
	assert_int_equal(agg__stats(a)->unmatched_frees, 2);
	assert_int_equal(agg__stats(a)->events, 7);
	pipe_done();
}

static void test_cache_meta_sizes(void **state)
{
	struct agg *a = pipe_agg();
	const struct agg_cache *c;
	const struct agg_site *s;
	struct kms_event e;

	/* before the meta the size is unknown */
	e = ev(KMS_EV_CACHE_ALLOC, 0x5000, SITE_A, 0, 0);
	e.obj = CACHE1;
	feed(a, e);
	meta(a, KMS_EV_META_CACHE, CACHE1, "dentry", 192, 200);
	e = ev(KMS_EV_CACHE_ALLOC, 0x6000, SITE_A, 0, 0);
	e.obj = CACHE1;
	feed(a, e);
	e = ev(KMS_EV_CACHE_ALLOC, 0x7000, SITE_A, 0, 0);
	e.obj = CACHE1;
	feed(a, e);
	/* kfree of a cache object: the slab class is shared */
	feed(a, ev(KMS_EV_KFREE, 0x6000, SITE_B, 0, 0));
	e = ev(KMS_EV_CACHE_FREE, 0x5000, SITE_B, 0, 0);
	e.obj = CACHE1;
	feed(a, e);
	e = ev(KMS_EV_CACHE_FREE, 0x8000, SITE_B, 0, 0);
	e.obj = CACHE1;
	feed(a, e);

	s = find_site(a, KMS_FAM_CACHE, SITE_A, CACHE1);
	assert_non_null(s);
	assert_int_equal(s->allocs, 3);
	assert_int_equal(s->bytes_req, 2 * 192);
	assert_int_equal(s->bytes_alloc, 2 * 200);
	assert_int_equal(s->frees, 2);
	assert_int_equal(s->outstanding, 1);
	assert_int_equal(s->outstanding_bytes, 200);
	assert_int_equal(agg__family(a, KMS_FAM_CACHE)->frees, 2);
	assert_int_equal(agg__family(a, KMS_FAM_CACHE)->unmatched_frees, 1);
	assert_int_equal(agg__family(a, KMS_FAM_KMALLOC)->frees, 0);
	assert_int_equal(agg__family(a, KMS_FAM_KMALLOC)->unmatched_frees, 0);

	assert_int_equal(agg__nr_caches(a), 1);
	c = agg__cache(a, 0);
	assert_true(c->known);
	assert_string_equal(c->name, "dentry");
	assert_int_equal(c->object_size, 192);
	assert_int_equal(c->size, 200);
	assert_int_equal(c->allocs, 3);
	assert_int_equal(c->frees, 2);
	assert_int_equal(c->unmatched_frees, 1);
	assert_int_equal(c->outstanding, 1);
	assert_int_equal(c->outstanding_bytes, 200);
	assert_string_equal(agg__cache_name(a, CACHE1), "dentry");
	assert_null(agg__cache_name(a, 0x1234));
	pipe_done();
}

static struct kms_event page_ev(int type, __u64 key, unsigned int order)
{
	struct kms_event e = ev(type, key, 0, 0, 0);

	e.order = order;
	e.bytes_alloc = 4096U << order;
	if (type == KMS_EV_PAGE_ALLOC)
		e.bytes_req = e.bytes_alloc;
	return e;
}

static void test_page_split(void **state)
{
	struct agg *a = pipe_agg();
	const struct agg_counts *f;
	int i;

	/* an order-2 block split into four order-0 frees, head first */
	feed(a, page_ev(KMS_EV_PAGE_ALLOC, 0x1000, 2));
	for (i = 0; i < 3; i++)
		feed(a, page_ev(KMS_EV_PAGE_FREE, 0x1000 + i, 0));
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->frees, 0);
	assert_int_equal(f->outstanding, 1);
	assert_int_equal(f->outstanding_bytes, 4096);
	feed(a, page_ev(KMS_EV_PAGE_FREE_BATCHED, 0x1003, 0));
	/* the family's figures are summed when asked: ask again after records */
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->frees, 1);
	assert_int_equal(f->outstanding, 0);
	assert_int_equal(f->outstanding_bytes, 0);
	assert_int_equal(f->unmatched_frees, 0);

	/* an order-3 block, a middle page first */
	feed(a, page_ev(KMS_EV_PAGE_ALLOC, 0x3000, 3));
	feed(a, page_ev(KMS_EV_PAGE_FREE, 0x3005, 0));
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->outstanding_bytes, 7 * 4096);
	/* an order-1 chunk of it */
	feed(a, page_ev(KMS_EV_PAGE_FREE, 0x3002, 1));
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->outstanding_bytes, 5 * 4096);
	assert_int_equal(f->unmatched_frees, 0);

	/* exact order: a plain match */
	feed(a, page_ev(KMS_EV_PAGE_ALLOC, 0x2000, 1));
	feed(a, page_ev(KMS_EV_PAGE_FREE, 0x2000, 1));
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->frees, 2);

	/* outside any live block */
	feed(a, page_ev(KMS_EV_PAGE_FREE, 0x3009, 0));
	feed(a, page_ev(KMS_EV_PAGE_FREE, 0x5001, 0));
	f = agg__family(a, KMS_FAM_PAGE);
	assert_int_equal(f->unmatched_frees, 2);
	assert_int_equal(f->allocs, 3);
	assert_int_equal(f->bytes_alloc, (4 + 8 + 2) * 4096);
	assert_int_equal(agg__stats(a)->page_split_frees, 6);

	assert_int_equal(agg__order(a, 2)->allocs, 1);
	assert_int_equal(agg__order(a, 3)->allocs, 1);
	assert_int_equal(agg__order(a, 1)->allocs, 1);
	assert_int_equal(agg__order(a, 0)->frees, 7);
	assert_int_equal(agg__order(a, 1)->frees, 2);
	assert_non_null(find_site(a, KMS_FAM_PAGE, 0, 0));
	assert_int_equal(find_site(a, KMS_FAM_PAGE, 0, 0)->orders[3], 1);
	pipe_done();
}

static void test_other_families(void **state)
{
	struct agg *a = pipe_agg();
	struct kms_event e;

	meta(a, KMS_EV_META_DEVICE, DEV1, "0000:00:04.0", 0, 0);
	feed(a, ev(KMS_EV_VMALLOC, 0xffffc90000000000ULL, SITE_A, 8192, 12288));
	feed(a, ev(KMS_EV_PERCPU_ALLOC, 0x40, SITE_A, 8, 8));
	e = ev(KMS_EV_DMA_ALLOC, 0xffff888001000000ULL, SITE_B, 4096, 4096);
	e.obj = DEV1;
	feed(a, e);
	/* same address, other class: no match */
	feed(a, ev(KMS_EV_KFREE, 0xffffc90000000000ULL, SITE_B, 0, 0));
	feed(a, ev(KMS_EV_VFREE, 0xffffc90000000000ULL, 0, 0, 0));
	feed(a, ev(KMS_EV_PERCPU_FREE, 0x40, 0, 0, 0));
	e = ev(KMS_EV_DMA_FREE, 0xffff888001000000ULL, 0, 0, 0);
	e.obj = DEV1;
	feed(a, e);

	assert_int_equal(agg__family(a, KMS_FAM_KMALLOC)->unmatched_frees, 1);
	assert_int_equal(agg__family(a, KMS_FAM_VMALLOC)->frees, 1);
	assert_int_equal(agg__family(a, KMS_FAM_VMALLOC)->bytes_alloc, 12288);
	assert_int_equal(agg__family(a, KMS_FAM_PERCPU)->frees, 1);
	assert_int_equal(agg__family(a, KMS_FAM_DMA)->frees, 1);
	assert_int_equal(agg__family(a, KMS_FAM_DMA)->outstanding, 0);
	assert_non_null(find_site(a, KMS_FAM_DMA, SITE_B, DEV1));
	assert_string_equal(agg__device_name(a, DEV1), "0000:00:04.0");
	assert_null(agg__device_name(a, CACHE1));
	pipe_done();
}

static void test_realloc_without_free(void **state)
{
	struct agg *a = pipe_agg();
	const struct agg_counts *f;

	feed(a, ev(KMS_EV_KMALLOC, 0x1000, SITE_A, 8, 8));
	feed(a, ev(KMS_EV_KMALLOC, 0x1000, SITE_B, 32, 32));
	f = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(f->allocs, 2);
	assert_int_equal(f->outstanding, 1);
	assert_int_equal(f->outstanding_bytes, 32);
	assert_int_equal(f->realloc_without_free, 1);
	assert_int_equal(agg__stats(a)->realloc_without_free, 1);
	assert_int_equal(find_site(a, KMS_FAM_KMALLOC, SITE_A, 0)->outstanding, 0);
	feed(a, ev(KMS_EV_KFREE, 0x1000, 0, 0, 0));
	assert_int_equal(find_site(a, KMS_FAM_KMALLOC, SITE_B, 0)->frees, 1);
	assert_int_equal(find_site(a, KMS_FAM_KMALLOC, SITE_A, 0)->frees, 0);
	f = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(f->outstanding, 0);
	pipe_done();
}

static void test_gfp_nodes_sizes_procs(void **state)
{
	static const __u32 gfps[] = { 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x10 };
	const int cpu_node[] = { 0, 1, 1, 0 };
	struct agg *a = pipe_agg();
	const struct agg_site *s;
	const struct agg_proc *p;
	struct kms_event e;
	__u64 min, max;
	size_t i;

	assert_int_equal(agg__set_cpu_nodes(a, cpu_node, 4), 0);
	meta(a, KMS_EV_META_TASK, 100, "worker-with-a-long-name", 0, 0);
	for (i = 0; i < 7; i++) {
		e = ev(KMS_EV_KMALLOC, 0x1000 + i * 64, SITE_A, 40, 64);
		e.gfp = gfps[i];
		e.cpu = i % 4;
		if (i == 6)
			e.node = 5;
		feed(a, e);
	}
	e = ev(KMS_EV_ALLOC_FAIL, 0, SITE_A, 4096, 0);
	e.order = KMS_FAM_KMALLOC;
	feed(a, e);
	feed(a, ev(KMS_EV_KFREE, 0x1000, 0, 0, 0));

	s = find_site(a, KMS_FAM_KMALLOC, SITE_A, 0);
	assert_int_equal(s->nr_gfp, AGG_SITE_GFP);
	assert_int_equal(s->gfp[0].value, 0x10);
	assert_int_equal(s->gfp[0].allocs, 2);
	assert_int_equal(s->gfp_other, 2);
	assert_int_equal(s->fails, 1);
	assert_int_equal(agg__family(a, KMS_FAM_KMALLOC)->fails, 1);
	assert_int_equal(agg__nr_gfp(a), 6);
	for (i = 0; i < agg__nr_gfp(a); i++) {
		const struct agg_gfp *g = agg__gfp(a, i);

		assert_int_equal(g->allocs, g->value == 0x10 ? 2 : 1);
		assert_int_equal(g->bytes_alloc, g->allocs * 64);
	}
	/* cpus 0,1,2,3,0,1 -> nodes 0,1,1,0,0,1; the last one asked for node 5 */
	assert_int_equal(agg__nr_nodes(a), 6);
	assert_int_equal(agg__node(a, 0)->allocs, 3);
	assert_int_equal(agg__node(a, 1)->allocs, 3);
	assert_int_equal(agg__node(a, 5)->allocs, 1);
	assert_int_equal(agg__node(a, 1)->bytes_alloc, 192);

	assert_int_equal(agg__size_bucket(a, 7, &min, &max), 7);
	assert_int_equal(min, 64);
	assert_int_equal(max, 127);
	assert_int_equal(agg__size_bucket(a, 0, &min, &max), 0);
	assert_int_equal(max, 0);

	p = find_proc(a, 100);
	assert_non_null(p);
	assert_string_equal(p->comm, "worker-with-a-l");
	assert_int_equal(p->allocs, 7);
	assert_int_equal(p->bytes_alloc, 7 * 64);
	assert_int_equal(p->events[KMS_EV_KMALLOC], 7);
	assert_int_equal(p->events[KMS_EV_KFREE], 1);
	assert_int_equal(p->events[KMS_EV_ALLOC_FAIL], 1);
	pipe_done();
}

static int count_live(int cls, const struct live_obj *o, void *ctx)
{
	__u64 *n = ctx;

	n[0]++;
	n[1] += o->bytes_alloc;
	return 0;
}

/* many objects freed in random order: exercises growth and backward-shift deletion */
static void test_stress(void **state)
{
	enum { N = 200000 };
	struct agg *a = pipe_agg();
	__u64 *ptrs = malloc(N * sizeof(*ptrs));
	const struct agg_counts *f;
	__u64 live[2] = {};
	unsigned int seed = 1;
	size_t i, j;

	for (i = 0; i < N; i++) {
		/* clustered addresses, the worst case for weak hashing */
		ptrs[i] = 0xffff888100000000ULL + i * 64;
		feed(a, ev(KMS_EV_KMALLOC, ptrs[i], SITE_A + (i % 37) * 16, 50, 64));
	}
	for (i = N - 1; i > 0; i--) {
		__u64 t;

		j = rand_r(&seed) % (i + 1);
		t = ptrs[i];
		ptrs[i] = ptrs[j];
		ptrs[j] = t;
	}
	for (i = 0; i < N / 2 + N / 4; i++)
		feed(a, ev(KMS_EV_KFREE, ptrs[i], 0, 0, 0));
	f = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(f->frees, N / 2 + N / 4);
	assert_int_equal(f->unmatched_frees, 0);
	assert_int_equal(f->outstanding, N / 4);
	assert_int_equal(f->outstanding_bytes, (N / 4) * 64);
	assert_int_equal(agg__nr_sites(a), 37);
	assert_int_equal(live__foreach(&test_pipe.live, count_live, live), 0);
	assert_int_equal(live[0], N / 4);
	assert_int_equal(live[1], (N / 4) * 64);
	/* the rest still match after all that shifting */
	for (; i < N; i++)
		feed(a, ev(KMS_EV_KFREE, ptrs[i], 0, 0, 0));
	f = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(f->frees, N);
	assert_int_equal(f->outstanding, 0);
	assert_int_equal(f->unmatched_frees, 0);
	free(ptrs);
	pipe_done();
}

static void test_invalid(void **state)
{
	struct agg *a = pipe_agg();
	struct kms_event e = ev(KMS_EV_ALLOC_FAIL, 0, 0, 0, 0);

	e.order = KMS_FAM_MAX;
	feed(a, e);
	feed(a, ev(KMS_EV_NR_EVENTS, 0, 0, 0, 0));
	meta(a, 99, 0, "x", 0, 0);
	assert_int_equal(agg__stats(a)->invalid, 3);
	assert_int_equal(agg__stats(a)->events, 0);
	assert_null(agg__family(a, -1));
	assert_null(agg__order(a, AGG_NR_ORDERS));
	pipe_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_kmalloc_match),
		cmocka_unit_test(test_cache_meta_sizes),
		cmocka_unit_test(test_page_split),
		cmocka_unit_test(test_other_families),
		cmocka_unit_test(test_realloc_without_free),
		cmocka_unit_test(test_gfp_nodes_sizes_procs),
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
