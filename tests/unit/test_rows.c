/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * rows: every column of every report section shows in the text and in the JSON of
 * the same report, built from synthetic streams that give each section rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "pipe.h"
#include "kallsyms_text.h"
#include "agg.h"
#include "detect.h"
#include "detect_report.h"
#include "ksyms.h"
#include "report.h"
#include "rows.h"

#define SITE_A	0xffffffff81001010ULL	/* caller_a+0x10 */
#define SITE_B	0xffffffff81002010ULL	/* caller_b+0x10 */
#define SITE_M	0xffffffffc0a00044ULL	/* mod_func+0x44 [mymod] */
#define IP_KMALLOC	0xffffffff81017020ULL
#define IP_ALLOC_PAGES	0xffffffff81010020ULL
#define IP_ALLOC_SLAB	0xffffffff81012020ULL
#define IP_CACHE_ALLOC	0xffffffff81014020ULL
#define CACHE1	0xffff888000100000ULL
#define DEV1	0xffff888000200000ULL
#define SLAB1	0xffff888012340000ULL
#define GFP_DR	0x400U		/* __GFP_DIRECT_RECLAIM in this synthetic kernel */
#define GFP_K	0xcc0U
#define GFP_NOWAIT_ 0x800U
#define GFP_MOV	0x8U		/* __GFP_MOVABLE */

static const char kallsyms_text[] =
	"ffffffff81001000 T caller_a\n"
	"ffffffff81002000 T caller_b\n"
	"ffffffff81003000 T pipe_write\n"
	"ffffffff81010000 T __alloc_pages_noprof\n"
	"ffffffff81012000 t allocate_slab\n"
	"ffffffff81014000 T kmem_cache_alloc_noprof\n"
	"ffffffff81017000 T __kmalloc_noprof\n"
	"ffffffff81018000 T _etext\n"
	"ffffffffc0a00000 t mod_func\t[mymod]\n"
	"ffffffffc0a00100 t mod_other\t[mymod]\n";

enum { STK_KMALLOC_A = 1, STK_SLAB_PAGE, STK_NR };

static const __u64 stacks[STK_NR][5] = {
	[STK_KMALLOC_A] = { IP_KMALLOC, SITE_A, SITE_B },
	[STK_SLAB_PAGE] = { IP_ALLOC_PAGES, IP_ALLOC_SLAB, IP_CACHE_ALLOC, SITE_A, SITE_B },
};

static int fake_stack(void *ctx, int id, __u64 *ips, int max)
{
	int n = 0;

	if (id <= 0 || id >= STK_NR)
		return -1;
	while (n < 5 && n < max && stacks[id][n]) {
		ips[n] = stacks[id][n];
		n++;
	}
	return n;
}

static struct ksyms *ks;
static __u64 now = 1000;

static int setup(void **state)
{
	ks = ksyms_from_text(kallsyms_text);
	return ks ? 0 : -1;
}

static int teardown(void **state)
{
	ksyms__free(ks);
	return 0;
}

static struct kms_event ev(int type, __u64 ptr, __u64 site, __u32 bytes, __u32 gfp, __u32 pc)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = bytes, .bytes_alloc = bytes,
		.gfp = gfp, .pid = 42, .node = 0, .stack_id = -1, .ctx = KMS_CTX_KNOWN, .pc = pc,
	};

	e.ts = now++;
	return e;
}

/* one stream into the aggregation and the detectors, as the session does */
static void feed(struct kms_event e)
{
	pipe_event(&e);
}

static void meta(int type, __u64 key, const char *name, __u32 x, __u32 y)
{
	struct kms_meta m = { .type = type, .key = key, .a = x, .b = y };

	strncpy(m.name, name, sizeof(m.name) - 1);
	pipe_meta(&m);
}

/* a stream that gives every section of stat, leaks and misuse at least one row */
static struct detect *stream(void)
{
	struct detect_opts o = {
		.leaks = true, .bad_frees = true, .misuse = true, .ksyms = ks,
		.stack = fake_stack, .gfp_direct_reclaim = GFP_DR, .gfp_retained = GFP_MOV,
	};
	struct detect *d;
	struct kms_event e;
	int i;

	for (i = 0; i < KMS_FAM_MAX; i++)
		o.baseline_pc[i] = 1;
	d = pipe_detect(&o);
	meta(KMS_EV_META_TASK, 42, "bash", 0, 0);
	meta(KMS_EV_META_CACHE, CACHE1, "dentry", 192, 200);
	meta(KMS_EV_META_DEVICE, DEV1, "virtio0", 0, 0);
	/* leak candidates, growing over three snapshots */
	for (i = 0; i < 4; i++) {
		e = ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64, GFP_K, 1);
		e.stack_id = STK_KMALLOC_A;
		feed(e);
		detect__snapshot(d);
	}
	/* frees not observable: addresses handed out again while live */
	for (i = 0; i < 20; i++)
		feed(ev(KMS_EV_KMALLOC, SLAB1 + 0x1000 + (i % 4) * 64, SITE_B, 64, GFP_K, 1));
	/* nested: a page under a slab allocation */
	e = ev(KMS_EV_PAGE_ALLOC, 0x1000, 0, 4096, GFP_K, 1);
	e.stack_id = STK_SLAB_PAGE;
	feed(e);
	/* retained: movable pages; and a blocking page allocation in atomic context */
	e = ev(KMS_EV_PAGE_ALLOC, 0x2000, SITE_M, 16384, GFP_K | GFP_MOV, 2);
	e.order = 2;
	feed(e);
	/* info: an atomic GFP where it could sleep */
	feed(ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x8000, SITE_M, 192, GFP_NOWAIT_, 1));
	/* a double free, and dma */
	feed(ev(KMS_EV_KMALLOC, SLAB1 + 0x9000, SITE_A, 64, GFP_K, 1));
	feed(ev(KMS_EV_KFREE, SLAB1 + 0x9000, SITE_B, 0, 0, 1));
	feed(ev(KMS_EV_KFREE, SLAB1 + 0x9000, SITE_A, 0, 0, 1));
	e = ev(KMS_EV_DMA_ALLOC, 0xffff888010000000ULL, SITE_B, 4096, GFP_K, 1);
	e.obj = DEV1;
	feed(e);
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0xa000, SITE_M, 192, GFP_K, 1);
	e.obj = CACHE1;
	feed(e);
	return d;
}

static char *text_of(const struct rows *t, const struct rows_ctx *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(rows__text(t, c, f), 0);
	fclose(f);
	return buf;
}

/* does some object of j (an object, or an array of them) have key */
static bool has_key(json_t *j, const char *key)
{
	size_t i;
	json_t *v;

	if (json_is_object(j))
		return json_object_get(j, key) != NULL;
	json_array_foreach(j, i, v)
		if (json_object_get(v, key))
			return true;
	return false;
}

/* the first nested array under key in j's rows that has an element */
static json_t *nested_row(json_t *j, const char *key)
{
	size_t i;
	json_t *v;

	json_array_foreach(j, i, v) {
		json_t *sub = json_object_get(v, key);

		if (json_array_size(sub))
			return json_array_get(sub, 0);
	}
	return NULL;
}

static int sections;

static void check_section(const struct rows *t, const struct rows_ctx *c, const char *doc)
{
	const char *key = rows__key(t) ? rows__key(t) : "(header)";
	const struct row_col *cols;
	const struct rows *ch;
	char *text = text_of(t, c);
	json_t *j = rows__json(t, c);
	int n, k;

	cols = rows__cols(t, &n);
	assert_non_null(j);
	if (!rows__nr(t))
		fail_msg("%s: section %s has no rows to check", doc, key);
	for (k = 0; k < n; k++) {
		const struct row_col *col = &cols[k];

		if (!strstr(text, col->head))
			fail_msg("%s: %s.%s is not in the text", doc, key, col->key);
		if (col->kind == RK_SITE_FLAT) {
			const char *m[] = { "addr", "symbol", "function", "module" };

			for (int i = 0; i < 4; i++)
				if (!has_key(j, m[i]))
					fail_msg("%s: %s.%s is not in the JSON", doc, key, m[i]);
			continue;
		}
		if (!has_key(j, col->key))
			fail_msg("%s: %s.%s is not in the JSON", doc, key, col->key);
		for (int s = 0; s < col->nsub; s++) {
			json_t *sub = nested_row(j, col->key);

			if (!sub || !json_object_get(sub, col->sub[s].key))
				fail_msg("%s: %s.%s.%s is not in the JSON", doc, key, col->key,
					 col->sub[s].key);
			if (!strstr(col->head, col->sub[s].head))
				fail_msg("%s: %s.%s.%s is not in the text", doc, key, col->key,
					 col->sub[s].key);
		}
	}
	sections++;
	json_decref(j);
	free(text);
	for (ch = rows__first_child(t); ch; ch = rows__next(ch))
		check_section(ch, c, doc);
}

struct stat_extra {
	struct detect *d;
	struct detect_report_opts *o;
};

static struct rows *misuse_extra(void *ctx)
{
	struct stat_extra *x = ctx;

	return detect_report__misuse(x->d, x->o);
}

/* a comm is any bytes (prctl(PR_SET_NAME)): JSON keeps its ASCII, not a failure */
static void test_json_str_not_utf8(void **state)
{
	json_t *j = rows__json_str("ab\xff\xfe" "c");

	assert_non_null(j);
	assert_string_equal(json_string_value(j), "ab??c");
	json_decref(j);
	j = rows__json_str("caf\xc3\xa9");
	assert_string_equal(json_string_value(j), "caf\xc3\xa9");
	json_decref(j);
	j = rows__json_str(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
}

static void test_every_column_in_both(void **state)
{
	const struct rows_ctx c = { .ksyms = ks };
	struct kms_quality q = { .events = 40, .duration_ns = 1000000000ULL };
	struct detect_report_opts dro = {
		.ksyms = ks, .kernel = "6.1.0", .quality = &q, .stack_depth = 4, .misuse = true,
		.snapshots = 4, .growth_min = 2,
	};
	struct agg *a;
	struct stat_extra x = { .o = &dro };
	struct report_opts ro = {
		.ksyms = ks, .kernel = "6.1.0", .source = "live", .quality = &q,
		.extra = misuse_extra, .extra_ctx = &x,
	};
	struct rows *doc;

	for (int f = 0; f < KMS_FAM_MAX; f++) {
		q.traced[f] = f != KMS_FAM_PERCPU;
		q.method[f] = "tp_btf";
		dro.baseline_pc[f] = f == KMS_FAM_PERCPU ? -1 : 1;
	}
	q.event_misses[0] = (struct kms_event_misses){ "kmalloc", 1 };
	q.nr_event_misses = 1;
	x.d = stream();
	a = test_pipe.agg;
	dro.now = now + 1000;

	doc = report__stat(a, &ro);
	assert_non_null(doc);
	check_section(doc, &c, "stat");
	rows__free(doc);
	/* header, 8 tables, misuse (+ baseline, findings), quality */
	assert_int_equal(sections, 13);

	sections = 0;
	doc = detect_report__leaks(x.d, a, &dro);
	assert_non_null(doc);
	check_section(doc, &c, "leaks");
	rows__free(doc);
	/*
	 * header, verdict, summary, leaks, retained, frees_not_observable, nested, growth,
	 * bad_frees (+ findings), misuse (+ 2), quality, notes
	 */
	assert_int_equal(sections, 15);

	sections = 0;
	doc = detect_report__misuse_doc(x.d, a, &dro);
	assert_non_null(doc);
	check_section(doc, &c, "misuse");
	rows__free(doc);
	assert_int_equal(sections, 6);
	pipe_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_column_in_both),
		cmocka_unit_test(test_json_str_not_utf8),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
