/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* top: snapshots of agg, per-window rates, sorting, number format, row layout */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "top.h"
#include "pipe.h"

#define SITE_A	0xffffffff81001010ULL
#define SITE_B	0xffffffff81002020ULL
#define SITE_C	0xffffffff81003030ULL
#define CACHE1	0xffff888000100000ULL
#define SEC	1000000000ULL

static __u64 now = 1000;

static void feed(struct agg *a, int type, __u64 ptr, __u64 site, __u32 req, __u32 alloc,
		 __u64 obj)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = req, .bytes_alloc = alloc,
		.obj = obj, .pid = 1, .node = -1, .stack_id = -1, .gfp = 0xcc0,
	};

	e.ts = now++;
	pipe_event(&e);
}

static const struct top_row *find(const struct top_row *rows, long nr, __u64 addr)
{
	for (long i = 0; i < nr; i++)
		if (rows[i].addr == addr)
			return &rows[i];
	return NULL;
}

/* the window is the difference of two snapshots of the cumulative agg */
static void test_window_from_agg(void **state)
{
	struct agg *a = pipe_agg();
	struct top_snap s0 = {}, s1 = {};
	struct top_row *rows = NULL;
	const struct top_row *r;
	struct top_fam fam[KMS_FAM_MAX];
	size_t cap = 0;
	long nr;

	assert_non_null(a);
	for (int i = 0; i < 3; i++)
		feed(a, KMS_EV_KMALLOC, 0x1000 + i * 0x100, SITE_A, 100, 128, 0);
	feed(a, KMS_EV_CACHE_ALLOC, 0x8000, SITE_C, 0, 0, CACHE1);
	assert_int_equal(top__snap_take(&s0, a, 1 * SEC, 10, 0), 0);

	/* in the next 2 s: SITE_A 2 more allocs and one free, SITE_B new */
	feed(a, KMS_EV_KMALLOC, 0x2000, SITE_A, 100, 128, 0);
	feed(a, KMS_EV_KMALLOC, 0x2100, SITE_A, 100, 128, 0);
	feed(a, KMS_EV_KFREE, 0x1000, SITE_B, 0, 0, 0);
	feed(a, KMS_EV_KMALLOC, 0x5000, SITE_B, 1000, 1024, 0);
	assert_int_equal(top__snap_take(&s1, a, 3 * SEC, 30, 0), 0);
	assert_true(s1.nr > s0.nr);

	nr = top__rows(&s0, &s1, 0, TOP_KEY_BYTES, &rows, &cap);
	/* SITE_C did nothing in the window: not a row */
	assert_int_equal(nr, 2);
	assert_int_equal(rows[0].addr, SITE_B);	/* 512 B/s beats 128 B/s */
	r = find(rows, nr, SITE_A);
	assert_non_null(r);
	assert_true(r->allocs == 1.0);
	assert_true(r->frees == 0.5);
	assert_true(r->bytes == 128.0);
	assert_true(r->waste == 28.0);
	assert_int_equal(r->outstanding, 4);
	assert_int_equal(r->family, KMS_FAM_KMALLOC);
	r = find(rows, nr, SITE_B);
	assert_true(r->allocs == 0.5);
	assert_true(r->bytes == 512.0);
	assert_true(r->waste == 12.0);

	/* by allocs, SITE_A leads */
	nr = top__rows(&s0, &s1, 0, TOP_KEY_ALLOCS, &rows, &cap);
	assert_int_equal(rows[0].addr, SITE_A);

	/* families: kmalloc 3 allocs, 1 free, 1280 bytes in 2 s */
	top__families(&s0, &s1, fam);
	assert_true(fam[KMS_FAM_KMALLOC].allocs == 1.5);
	assert_true(fam[KMS_FAM_KMALLOC].frees == 0.5);
	assert_true(fam[KMS_FAM_KMALLOC].bytes == 640.0);
	assert_int_equal(fam[KMS_FAM_KMALLOC].outstanding, 5);
	assert_true(fam[KMS_FAM_CACHE].allocs == 0);
	assert_int_equal(fam[KMS_FAM_CACHE].outstanding, 1);

	free(rows);
	top__snap_free(&s0);
	top__snap_free(&s1);
	pipe_done();
}

static struct top_site site(int fam, __u64 addr, __u64 allocs, __u64 frees, __u64 bytes,
			    __u64 outst)
{
	struct top_site s = {
		.family = fam, .addr = addr, .allocs = allocs, .frees = frees,
		.bytes_req = bytes, .bytes_alloc = bytes, .outstanding = outst,
	};

	return s;
}

static void snap_of(struct top_snap *s, __u64 ts, struct top_site *v, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->ts_ns = ts;
	s->v = v;
	s->nr = s->cap = n;
}

/* idle sites show only when sorting by outstanding; the family filter applies */
static void test_idle_outstanding_filter(void **state)
{
	struct top_site v0[] = {
		site(KMS_FAM_KMALLOC, SITE_A, 10, 0, 100, 10),
		site(KMS_FAM_PAGE, SITE_B, 5, 5, 4096, 0),
		site(KMS_FAM_CACHE, SITE_C, 1, 0, 64, 1),
	};
	struct top_site v1[] = {
		site(KMS_FAM_KMALLOC, SITE_A, 10, 0, 100, 10),	/* idle, holds 10 */
		site(KMS_FAM_PAGE, SITE_B, 9, 9, 8192, 0),
		site(KMS_FAM_CACHE, SITE_C, 3, 0, 192, 3),
	};
	struct top_snap s0, s1;
	struct top_row *rows = NULL;
	size_t cap = 0;
	long nr;

	snap_of(&s0, SEC, v0, 3);
	snap_of(&s1, 2 * SEC, v1, 3);
	nr = top__rows(&s0, &s1, 0, TOP_KEY_ALLOCS, &rows, &cap);
	assert_int_equal(nr, 2);
	assert_int_equal(rows[0].addr, SITE_B);
	assert_int_equal(rows[1].addr, SITE_C);

	nr = top__rows(&s0, &s1, 0, TOP_KEY_OUTSTANDING, &rows, &cap);
	assert_int_equal(nr, 3);
	assert_int_equal(rows[0].addr, SITE_A);
	assert_true(rows[0].allocs == 0);
	assert_int_equal(rows[1].addr, SITE_C);

	nr = top__rows(&s0, &s1, 1u << KMS_FAM_CACHE, TOP_KEY_BYTES, &rows, &cap);
	assert_int_equal(nr, 1);
	assert_int_equal(rows[0].addr, SITE_C);
	assert_true(rows[0].bytes == 128.0);

	nr = top__rows(&s0, &s1, 1u << KMS_FAM_DMA, TOP_KEY_BYTES, &rows, &cap);
	assert_int_equal(nr, 0);
	free(rows);
}

/* a reset makes a zero-length window: zero rates, no division by zero */
static void test_zero_window_and_copy(void **state)
{
	struct top_site v[] = { site(KMS_FAM_KMALLOC, SITE_A, 10, 2, 100, 8) };
	struct top_snap s, copy = {};
	struct top_row *rows = NULL;
	struct top_fam fam[KMS_FAM_MAX];
	size_t cap = 0;

	snap_of(&s, 5 * SEC, v, 1);
	s.fam[KMS_FAM_KMALLOC].allocs = 10;
	assert_int_equal(top__snap_copy(&copy, &s), 0);
	assert_ptr_not_equal(copy.v, s.v);
	assert_int_equal(copy.nr, 1);
	assert_int_equal(copy.v[0].allocs, 10);
	assert_int_equal(copy.ts_ns, 5 * SEC);

	assert_int_equal(top__rows(&copy, &s, 0, TOP_KEY_BYTES, &rows, &cap), 0);
	assert_int_equal(top__rows(&copy, &s, 0, TOP_KEY_OUTSTANDING, &rows, &cap), 1);
	assert_true(rows[0].allocs == 0);
	top__families(&copy, &s, fam);
	assert_true(fam[KMS_FAM_KMALLOC].allocs == 0);
	assert_true(top__window(&copy, &s) > 0);
	free(rows);
	top__snap_free(&copy);
}

/* a base entry that is not the same site counts from zero */
static void test_identity_mismatch(void **state)
{
	struct top_site v0[] = { site(KMS_FAM_KMALLOC, SITE_A, 100, 0, 1000, 0) };
	struct top_site v1[] = { site(KMS_FAM_KMALLOC, SITE_B, 4, 0, 40, 4) };
	struct top_snap s0, s1;
	struct top_row *rows = NULL;
	size_t cap = 0;

	snap_of(&s0, SEC, v0, 1);
	snap_of(&s1, 3 * SEC, v1, 1);
	assert_int_equal(top__rows(&s0, &s1, 0, TOP_KEY_BYTES, &rows, &cap), 1);
	assert_true(rows[0].allocs == 2.0);
	assert_true(rows[0].bytes == 20.0);
	free(rows);
}

/* ties: allocs, then address, so rows do not swap places between refreshes */
static void test_sort_ties(void **state)
{
	struct top_row r[] = {
		{ .addr = SITE_C, .bytes = 10, .allocs = 1 },
		{ .addr = SITE_B, .bytes = 10, .allocs = 1 },
		{ .addr = SITE_A, .bytes = 10, .allocs = 2 },
		{ .addr = SITE_A, .bytes = 50, .allocs = 0, .fails = 3, .waste = 7 },
	};

	top__sort(r, 4, TOP_KEY_BYTES);
	assert_true(r[0].bytes == 50);
	assert_true(r[1].allocs == 2);
	assert_int_equal(r[2].addr, SITE_B);
	assert_int_equal(r[3].addr, SITE_C);
	top__sort(r, 4, TOP_KEY_FAILS);
	assert_true(r[0].fails == 3);
	top__sort(r, 4, TOP_KEY_WASTE);
	assert_true(r[0].waste == 7);
}

static void check_num(double v, const char *want)
{
	char buf[32];

	top__fmt_num(v, buf, sizeof(buf));
	if (strcmp(buf, want))
		fail_msg("fmt_num(%g) = '%s', want '%s'", v, buf, want);
}

static void test_fmt_num(void **state)
{
	char buf[32];

	check_num(0, "0");
	check_num(-3, "0");
	check_num(0.5, "0.5");
	check_num(42, "42");
	check_num(77.66, "77.7");
	check_num(1234, "1234");
	check_num(9999, "9999");
	check_num(12340, "12.34K");
	check_num(123456, "123.5K");
	check_num(999999, "1.00M");
	check_num(1.5e9, "1.50G");
	/* never wider than a column */
	for (double v = 0.01; v < 1e19; v *= 1.37) {
		top__fmt_num(v, buf, sizeof(buf));
		if (strlen(buf) > 6)
			fail_msg("fmt_num(%g) = '%s': wider than 6", v, buf);
	}
}

static void test_render(void **state)
{
	struct top_row r = {
		.family = KMS_FAM_CACHE, .addr = SITE_A, .allocs = 12340, .bytes = 1.5e6,
		.frees = 3, .outstanding = 7, .waste = 0,
	};
	char buf[512], hdr[512];
	int n;

	/* wide: numbers, family, cache, site; the header lines up with the rows */
	n = top__render_row(&r, "dentry", "d_alloc+0x2e [ext4]", buf, sizeof(buf), 0);
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, " 12.34K   1.50M       3       7       0 cache   dentry             "
				 "d_alloc+0x2e [ext4]");
	top__render_header(hdr, sizeof(hdr), 0);
	assert_string_equal(hdr, "ALLOC/s BYTES/s FREES/s   OUTST WASTE/s FAMILY  CACHE              "
				 "SITE");
	assert_int_equal(strstr(hdr, "SITE") - hdr, strstr(buf, "d_alloc") - buf);

	/* no cache: "-" */
	r.family = KMS_FAM_KMALLOC;
	top__render_row(&r, NULL, "x", buf, sizeof(buf), 200);
	assert_non_null(strstr(buf, "kmalloc -"));

	/* narrow: one column for cache or family, cut to the width */
	top__render_row(&r, NULL, "do_getxattr+0x55", buf, sizeof(buf), 80);
	assert_string_equal(buf, " 12.34K   1.50M       3       7       0 kmalloc        "
				 "do_getxattr+0x55");
	top__render_header(hdr, sizeof(hdr), 80);
	assert_int_equal(strstr(hdr, "SITE") - hdr, strstr(buf, "do_getxattr") - buf);
	r.family = KMS_FAM_CACHE;
	n = top__render_row(&r, "a_very_long_cache_name_indeed", "some_function_with_a_long_name+0x1",
			    buf, sizeof(buf), 60);
	assert_int_equal(n, 60);
	assert_int_equal(strlen(buf), 60);
	assert_non_null(strstr(buf, "a_very_long_ca some_"));
	n = top__render_header(hdr, sizeof(hdr), 20);
	assert_int_equal(strlen(hdr), 20);
}

static void test_keys(void **state)
{
	assert_int_equal(top__parse_key("bytes"), TOP_KEY_BYTES);
	assert_int_equal(top__parse_key("count"), TOP_KEY_ALLOCS);
	assert_int_equal(top__parse_key("outstanding"), TOP_KEY_OUTSTANDING);
	assert_int_equal(top__parse_key("bogus"), -1);
	for (int k = 0; k < TOP_KEY_NR; k++)
		assert_int_equal(top__parse_key(top__key_name(k)), k);
	for (int f = 0; f < KMS_FAM_MAX; f++)
		assert_true(strlen(top__family_short(f)) <= 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_from_agg),
		cmocka_unit_test(test_idle_outstanding_filter),
		cmocka_unit_test(test_zero_window_and_copy),
		cmocka_unit_test(test_identity_mismatch),
		cmocka_unit_test(test_sort_ties),
		cmocka_unit_test(test_fmt_num),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
