/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* filter: the one filter stage, in front of the aggregator and the detector (pipeline.c) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "agg.h"
#include "detect.h"
#include "filter.h"
#include "pipeline.h"

#define SITE_A	0xffffffff81001000ULL
#define CACHE1	0xffff888000100000ULL

/* the pipeline every source feeds: filter stage, then the consumers */
static void pipe_init(struct pipeline *p, const char *comm, unsigned int families)
{
	struct detect_opts dopts = { .leaks = true, .misuse = true };
	struct pipeline_opts po = {
		.filter = { .comm = comm, .families = families }, .detect = &dopts,
	};

	assert_int_equal(pipeline__init(p, &po), 0);
}

static __u64 now = 1000;

static void feed(struct pipeline *p, int type, __u64 ptr, __u32 pid, __u64 obj, __u32 bytes)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = SITE_A, .bytes_req = bytes,
		.bytes_alloc = bytes, .gfp = 0xcc0, .pid = pid, .node = -1, .stack_id = -1,
		.obj = obj,
	};

	e.ts = now++;
	pipeline__event(p, &e);
}

static void meta(struct pipeline *p, int type, __u64 key, const char *name, __u32 x, __u32 y)
{
	struct kms_meta m = { .type = type, .key = key, .a = x, .b = y };

	strncpy(m.name, name, sizeof(m.name) - 1);
	pipeline__meta(p, &m);
}

static const struct agg_proc *find_proc(const struct agg *a, __u32 pid)
{
	for (size_t i = 0; i < agg__nr_procs(a); i++)
		if (agg__proc(a, i)->pid == pid)
			return agg__proc(a, i);
	return NULL;
}

static __u64 detect_outstanding(const struct detect *d)
{
	__u64 n = 0;

	for (size_t i = 0; i < detect__nr_groups(d); i++)
		n += detect__group(d, i)->outstanding;
	return n;
}

static void test_comm_filter(void **state)
{
	struct pipeline p;

	pipe_init(&p, "bash", 0);
	meta(&p, KMS_EV_META_TASK, 1, "bash", 0, 0);
	meta(&p, KMS_EV_META_TASK, 2, "sshd", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x1000, 1, 0, 8);
	feed(&p, KMS_EV_KMALLOC, 0x2000, 2, 0, 8);
	/* sshd frees bash's object: still a matched free, for both consumers */
	feed(&p, KMS_EV_KFREE, 0x1000, 2, 0, 0);
	/* sshd frees its own, filtered-out object: nobody counts it */
	feed(&p, KMS_EV_KFREE, 0x2000, 2, 0, 0);
	/* pid 3 has no TASK record: unknown comm, outside */
	feed(&p, KMS_EV_KMALLOC, 0x3000, 3, 0, 8);

	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->frees, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->unmatched_frees, 0);
	assert_int_equal(filter__stats(p.filter)->filtered, 2);
	assert_int_equal(agg__stats(p.agg)->filtered, 1);	/* the outside free of nothing ours */
	assert_int_equal(find_proc(p.agg, 1)->events[KMS_EV_KMALLOC], 1);
	assert_true(!find_proc(p.agg, 2) || !find_proc(p.agg, 2)->events[KMS_EV_KFREE]);
	/* the detector sees the same stream: nothing of sshd or pid 3 is live */
	assert_int_equal(detect__nr_live(p.detect), 0);
	assert_int_equal(detect_outstanding(p.detect), 0);
	assert_int_equal(detect__free_stats(p.detect)->unmatched[KMS_FAM_KMALLOC], 0);

	/* exec into bash: inside from then on */
	meta(&p, KMS_EV_META_TASK, 2, "bash", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x4000, 2, 0, 8);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 2);
	assert_string_equal(find_proc(p.agg, 2)->comm, "bash");
	assert_int_equal(detect__nr_live(p.detect), 1);
	/* and out again at the next exec */
	meta(&p, KMS_EV_META_TASK, 2, "sleep", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x5000, 2, 0, 8);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 2);
	assert_int_equal(detect__nr_live(p.detect), 1);
	pipeline__fini(&p);
}

static void test_family_mask(void **state)
{
	struct pipeline p;

	pipe_init(&p, NULL, 1U << KMS_FAM_CACHE);
	meta(&p, KMS_EV_META_TASK, 100, "bash", 0, 0);
	meta(&p, KMS_EV_META_CACHE, CACHE1, "files_cache", 700, 704);
	feed(&p, KMS_EV_CACHE_ALLOC, 0x1000, 100, CACHE1, 704);
	feed(&p, KMS_EV_KMALLOC, 0x2000, 100, 0, 8);
	feed(&p, KMS_EV_VMALLOC, 0x3000, 100, 0, 8);
	feed(&p, KMS_EV_KFREE, 0x1000, 100, 0, 0);	/* frees the cache object */
	feed(&p, KMS_EV_KFREE, 0x2000, 100, 0, 0);	/* kmalloc: not counted */
	assert_int_equal(agg__family(p.agg, KMS_FAM_CACHE)->allocs, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_CACHE)->frees, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 0);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->unmatched_frees, 0);
	assert_int_equal(agg__family(p.agg, KMS_FAM_VMALLOC)->allocs, 0);
	assert_int_equal(filter__stats(p.filter)->skipped, 2);
	assert_int_equal(detect__nr_live(p.detect), 0);
	assert_int_equal(detect__free_stats(p.detect)->unmatched[KMS_FAM_KMALLOC], 0);
	pipeline__fini(&p);
}

/* misuse findings of filtered-out processes never reach the detector */
static void test_comm_filter_misuse(void **state)
{
	struct pipeline p;

	pipe_init(&p, "bash", 0);
	meta(&p, KMS_EV_META_TASK, 7, "sshd", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x1000, 7, 0, 8);
	assert_int_equal(detect__misuse_stats(p.detect)->checked + detect__misuse_stats(p.detect)->no_context,
			 0);
	meta(&p, KMS_EV_META_TASK, 8, "bash", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x2000, 8, 0, 8);
	assert_int_equal(detect__misuse_stats(p.detect)->checked + detect__misuse_stats(p.detect)->no_context,
			 1);
	pipeline__fini(&p);
}

/*
 * After the window: frees of its objects count, nothing else does; an
 * allocation handed the address of one of its objects (not tracked) says
 * that object was freed untraced.
 */
static void test_settle(void **state)
{
	struct pipeline p;

	pipe_init(&p, NULL, 0);
	meta(&p, KMS_EV_META_TASK, 1, "bash", 0, 0);
	feed(&p, KMS_EV_KMALLOC, 0x1000, 1, 0, 8);
	feed(&p, KMS_EV_KMALLOC, 0x2000, 1, 0, 8);
	feed(&p, KMS_EV_KMALLOC, 0x5000, 1, 0, 8);
	pipeline__settle(&p);
	feed(&p, KMS_EV_KFREE, 0x1000, 1, 0, 0);	/* an object of the window */
	feed(&p, KMS_EV_KMALLOC, 0x3000, 1, 0, 8);	/* after the window */
	feed(&p, KMS_EV_KFREE, 0x3000, 1, 0, 0);
	feed(&p, KMS_EV_KFREE, 0x4000, 1, 0, 0);	/* allocated before the trace */
	feed(&p, KMS_EV_KMALLOC, 0x5000, 1, 0, 8);	/* 0x5000 went untraced */
	assert_int_equal(p.after_window, 2);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 3);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->frees, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->unmatched_frees, 0);
	assert_int_equal(detect__nr_live(p.detect), 1);
	assert_int_equal(detect__free_stats(p.detect)->implicit[KMS_FAM_KMALLOC], 1);
	assert_int_equal(detect__free_stats(p.detect)->unmatched[KMS_FAM_KMALLOC], 0);
	/* 0x5000's object is gone: a free of that address frees nothing of the window */
	feed(&p, KMS_EV_KFREE, 0x5000, 1, 0, 0);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->frees, 1);
	assert_int_equal(detect__free_stats(p.detect)->implicit[KMS_FAM_KMALLOC], 1);
	assert_int_equal(detect__nr_live(p.detect), 1);
	pipeline__fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comm_filter),
		cmocka_unit_test(test_family_mask),
		cmocka_unit_test(test_comm_filter_misuse),
		cmocka_unit_test(test_settle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
