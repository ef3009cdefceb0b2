/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* report: sort keys, text layout and the JSON of docs/json-schema.md, parsed back */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "report.h"
#include "filter.h"
#include "pipe.h"
#include "kallsyms_text.h"
#include "gfp.h"
#include "ksyms.h"

#define SITE_A	0xffffffff81001010ULL	/* do_thing+0x10 */
#define SITE_B	0xffffffff81002020ULL	/* other_thing+0x20 */
#define SITE_M	0xffffffffc0a00044ULL	/* mod_func+0x44 [mymod] */
#define CACHE1	0xffff888000100000ULL
#define DEV1	0xffff888000200000ULL

static const char kallsyms[] =
	"ffffffff81000000 T _stext\n"
	"ffffffff81001000 T do_thing\n"
	"ffffffff81002000 t other_thing\n"
	"ffffffff81003000 T _etext\n"
	"ffffffffc0a00000 t mod_func\t[mymod]\n"
	"ffffffffc0a00100 t mod_other\t[mymod]\n";

static __u64 now = 1000000;

static void feed(struct agg *a, int type, __u64 ptr, __u64 site, __u32 req, __u32 alloc,
		 __u32 gfp, __u64 obj, __u32 pid)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = req, .bytes_alloc = alloc,
		.gfp = gfp, .obj = obj, .pid = pid, .node = -1, .stack_id = -1,
	};

	e.ts = now++;
	pipe_event(&e);
}

static void meta(struct agg *a, int type, __u64 key, const char *name, __u32 x, __u32 y)
{
	struct kms_meta m = { .type = type, .key = key, .a = x, .b = y };

	strncpy(m.name, name, sizeof(m.name) - 1);
	pipe_meta(&m);
}

/*
 * SITE_A: 3 kmallocs 100/128, 1 freed  -> bytes 384, waste 84, outstanding 2
 * SITE_B: 1 kmalloc 1000/1024, freed    -> bytes 1024, waste 24, allocs 1
 * SITE_M: 5 cache allocs (dentry 192/200), none freed -> bytes 1000, allocs 5
 * page: one order-2 alloc, DMA: one alloc on DEV1
 */
static struct agg *sample(void)
{
	struct agg *a = pipe_agg();
	int i;

	assert_non_null(a);
	meta(a, KMS_EV_META_TASK, 42, "bash", 0, 0);
	meta(a, KMS_EV_META_TASK, 43, "kworker/0:1", 0, 0);
	meta(a, KMS_EV_META_CACHE, CACHE1, "dentry", 192, 200);
	meta(a, KMS_EV_META_DEVICE, DEV1, "virtio0", 0, 0);
	for (i = 0; i < 3; i++)
		feed(a, KMS_EV_KMALLOC, 0x1000 + i * 0x100, SITE_A, 100, 128, 0xcc0, 0, 42);
	feed(a, KMS_EV_KFREE, 0x1000, SITE_B, 0, 0, 0, 0, 43);
	feed(a, KMS_EV_KMALLOC, 0x5000, SITE_B, 1000, 1024, 0xdc0, 0, 42);
	feed(a, KMS_EV_KFREE, 0x5000, SITE_B, 0, 0, 0, 0, 42);
	feed(a, KMS_EV_KFREE, 0x9999, SITE_B, 0, 0, 0, 0, 42);	/* unmatched */
	for (i = 0; i < 5; i++)
		feed(a, KMS_EV_CACHE_ALLOC, 0x8000 + i * 0x100, SITE_M, 0, 0, 0xcc0, CACHE1, 43);
	{
		struct kms_event e = {
			.type = KMS_EV_PAGE_ALLOC, .ptr = 0x40, .order = 2, .pid = 42,
			.bytes_req = 16384, .bytes_alloc = 16384, .gfp = 0xcc0, .node = 1,
		};

		pipe_event(&e);
	}
	feed(a, KMS_EV_DMA_ALLOC, 0xffff888010000000ULL, 0, 4096, 4096, 0xcc0, DEV1, 42);
	return a;
}

static struct kms_quality quality(void)
{
	struct kms_quality q = {
		.events = 1234, .duration_ns = 2500000000ULL, .stack_failures = 3,
	};
	int f;

	for (f = 0; f < KMS_FAM_MAX; f++) {
		q.traced[f] = f != KMS_FAM_DMA;
		q.method[f] = f == KMS_FAM_VMALLOC ? "kprobe" : "tp_btf";
	}
	q.method[KMS_FAM_DMA] = NULL;
	return q;
}

static char *render(const struct agg *a, const struct report_opts *o, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	assert_non_null(f);
	err = json ? report__stat_json(a, o, f) : report__stat_text(a, o, f);
	assert_int_equal(err, 0);
	fclose(f);
	return buf;
}

static json_t *render_json(const struct agg *a, const struct report_opts *o)
{
	char *s = render(a, o, true);
	json_error_t jerr;
	json_t *root = json_loads(s, 0, &jerr);

	if (!root)
		fail_msg("JSON does not parse: %s (line %d)", jerr.text, jerr.line);
	free(s);
	return root;
}

static __u64 jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("%s is not an integer", key);
	return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

static void test_parse_sort(void **state)
{
	struct report_opts o = {};
	const char *bad = NULL;

	assert_int_equal(report__parse_sort("bytes,count", &o, &bad), 0);
	assert_int_equal(o.nr_sort, 2);
	assert_int_equal(report__parse_sort(" waste , req,outstanding_bytes,frees", &o, &bad), 0);
	assert_int_equal(o.nr_sort, 4);
	assert_int_equal(report__parse_sort("bogus", &o, &bad), -EINVAL);
	assert_string_equal(bad, "bogus");
	assert_int_equal(report__parse_sort("bytes,outstandin", &o, &bad), -EINVAL);
	assert_string_equal(bad, "outstandin");
	assert_int_equal(report__parse_sort("bytes,,count", &o, &bad), -EINVAL);
	assert_string_equal(bad, "");
	assert_int_equal(report__parse_sort("allocs,bytes,req,waste,frees", &o, &bad), -EINVAL);
	assert_string_equal(bad, "frees");
	assert_non_null(strstr(report__sort_keys(), "outstanding_bytes"));
	assert_non_null(strstr(report__sort_keys(), "count"));
}

/* addresses of the sites, in JSON order */
static void site_order(json_t *root, __u64 *addrs, size_t n)
{
	json_t *sites = json_object_get(root, "sites");
	size_t i;

	assert_int_equal(json_array_size(sites), n);
	for (i = 0; i < n; i++)
		addrs[i] = strtoull(jstr(json_array_get(sites, i), "addr"), NULL, 16);
}

static void test_sort_order(void **state)
{
	struct agg *a = sample();
	struct report_opts o = { .source = "live" };
	const char *bad;
	__u64 ad[5];
	json_t *root;

	/* bytes: B 1024, M 1000, A 384, dma 4096, page 16384 */
	assert_int_equal(report__parse_sort("bytes", &o, &bad), 0);
	root = render_json(a, &o);
	site_order(root, ad, 5);
	assert_true(ad[0] == 0 && ad[1] == 0);	/* page, dma: no call site */
	assert_int_equal(ad[2], SITE_B);
	assert_int_equal(ad[3], SITE_M);
	assert_int_equal(ad[4], SITE_A);
	json_decref(root);

	/* count: M 5, A 3, then B/page/dma with 1 each by address */
	assert_int_equal(report__parse_sort("count,bytes", &o, &bad), 0);
	root = render_json(a, &o);
	site_order(root, ad, 5);
	assert_int_equal(ad[0], SITE_M);
	assert_int_equal(ad[1], SITE_A);
	assert_int_equal(ad[2], 0);
	assert_int_equal(ad[4], SITE_B);
	json_decref(root);

	/* waste: M 40, A 84, B 24 -> A, M, B; top 2 */
	assert_int_equal(report__parse_sort("waste", &o, &bad), 0);
	o.top = 2;
	root = render_json(a, &o);
	site_order(root, ad, 2);
	assert_int_equal(ad[0], SITE_A);
	assert_int_equal(ad[1], SITE_M);
	assert_int_equal(jint(json_array_get(json_object_get(root, "sites"), 0), "waste"), 84);
	json_decref(root);

	/* outstanding: M 5, A 2 */
	assert_int_equal(report__parse_sort("outstanding", &o, &bad), 0);
	o.top = 1;
	root = render_json(a, &o);
	site_order(root, ad, 1);
	assert_int_equal(ad[0], SITE_M);
	json_decref(root);
	pipe_done();
}

static void test_json_schema(void **state)
{
	static const char *const fams[] = {
		"kmalloc", "kmem_cache", "page", "vmalloc", "dma", "percpu", "user", "user_map",
	};
	struct kms_quality q = quality();
	struct report_opts o = {
		.kernel = "6.18.44", .source = "file", .quality = &q,
	};
	struct agg *a = sample();
	json_t *root, *arr, *f, *s, *p, *qj;
	const char *bad;
	size_t i;

	assert_int_equal(report__parse_sort("bytes,count", &o, &bad), 0);
	root = render_json(a, &o);
	assert_string_equal(jstr(root, "schema"), "kmemscope.stat");
	assert_int_equal(jint(root, "version"), 1);
	assert_string_equal(jstr(root, "kernel"), "6.18.44");
	assert_string_equal(jstr(root, "source"), "file");
	assert_int_equal(jint(root, "duration_ns"), 2500000000ULL);

	arr = json_object_get(root, "families");
	assert_int_equal(json_array_size(arr), KMS_FAM_MAX);
	for (i = 0; i < KMS_FAM_MAX; i++)
		assert_string_equal(jstr(json_array_get(arr, i), "family"), fams[i]);
	f = json_array_get(arr, KMS_FAM_KMALLOC);
	assert_true(json_is_true(json_object_get(f, "traced")));
	assert_string_equal(jstr(f, "method"), "tp_btf");
	assert_int_equal(jint(f, "allocs"), 4);
	assert_int_equal(jint(f, "frees"), 2);
	assert_int_equal(jint(f, "unmatched_frees"), 1);
	assert_int_equal(jint(f, "fails"), 0);
	assert_int_equal(jint(f, "bytes_req"), 1300);
	assert_int_equal(jint(f, "bytes_alloc"), 1408);
	assert_int_equal(jint(f, "waste"), 108);
	assert_int_equal(jint(f, "outstanding"), 2);
	assert_int_equal(jint(f, "outstanding_bytes"), 256);
	f = json_array_get(arr, KMS_FAM_DMA);
	assert_true(json_is_false(json_object_get(f, "traced")));
	assert_true(json_is_null(json_object_get(f, "method")));
	f = json_array_get(arr, KMS_FAM_CACHE);
	assert_int_equal(jint(f, "bytes_alloc"), 1000);
	assert_int_equal(jint(f, "outstanding_bytes"), 1000);
	f = json_array_get(arr, KMS_FAM_PAGE);
	assert_int_equal(jint(f, "bytes_alloc"), 16384);

	/* sites by bytes: page, dma, B, M, A */
	arr = json_object_get(root, "sites");
	assert_int_equal(json_array_size(arr), 5);
	s = json_array_get(arr, 0);
	assert_string_equal(jstr(s, "family"), "page");
	assert_string_equal(jstr(s, "addr"), "0x0");
	assert_true(json_is_null(json_object_get(s, "symbol")));
	assert_int_equal(json_array_size(json_object_get(s, "orders")), 1);
	assert_int_equal(jint(json_array_get(json_object_get(s, "orders"), 0), "order"), 2);
	s = json_array_get(arr, 1);
	assert_string_equal(jstr(s, "family"), "dma");
	assert_string_equal(jstr(s, "device"), "virtio0");
	assert_true(json_is_null(json_object_get(s, "cache")));
	s = json_array_get(arr, 3);
	assert_string_equal(jstr(s, "addr"), "0xffffffffc0a00044");
	assert_string_equal(jstr(s, "family"), "kmem_cache");
	assert_string_equal(jstr(s, "cache"), "dentry");
	assert_true(json_is_null(json_object_get(s, "device")));
	assert_int_equal(jint(s, "allocs"), 5);
	assert_int_equal(jint(s, "bytes_req"), 960);
	assert_int_equal(jint(s, "waste"), 40);
	assert_int_equal(jint(s, "outstanding"), 5);
	/* no ksyms, no gfp table: hex stays */
	assert_true(json_is_null(json_object_get(s, "symbol")));
	assert_true(json_is_null(json_object_get(s, "function")));
	assert_true(json_is_null(json_object_get(s, "module")));
	assert_string_equal(jstr(json_array_get(json_object_get(s, "gfp"), 0), "flags"), "0xcc0");
	assert_string_equal(jstr(json_array_get(json_object_get(s, "gfp"), 0), "value"), "0xcc0");
	assert_int_equal(jint(json_array_get(json_object_get(s, "gfp"), 0), "allocs"), 5);
	s = json_array_get(arr, 4);
	assert_int_equal(jint(s, "frees"), 1);
	assert_int_equal(jint(s, "outstanding_bytes"), 256);

	arr = json_object_get(root, "gfp");
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(jstr(json_array_get(arr, 0), "value"), "0xcc0");
	assert_int_equal(jint(json_array_get(arr, 0), "allocs"), 10);
	assert_int_equal(jint(json_array_get(arr, 1), "bytes_alloc"), 1024);

	arr = json_object_get(root, "orders");
	assert_int_equal(json_array_size(arr), 11);
	assert_int_equal(jint(json_array_get(arr, 2), "allocs"), 1);
	assert_int_equal(jint(json_array_get(arr, 10), "order"), 10);

	/* sizes: 128 x3 [128,255], 200 x5 [128,255], 1024 [1024,2047], 4096, 16384 */
	arr = json_object_get(root, "sizes");
	assert_int_equal(json_array_size(arr), 4);
	assert_int_equal(jint(json_array_get(arr, 0), "min"), 128);
	assert_int_equal(jint(json_array_get(arr, 0), "max"), 255);
	assert_int_equal(jint(json_array_get(arr, 0), "allocs"), 8);

	arr = json_object_get(root, "caches");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(jstr(json_array_get(arr, 0), "name"), "dentry");
	assert_int_equal(jint(json_array_get(arr, 0), "object_size"), 192);
	assert_int_equal(jint(json_array_get(arr, 0), "size"), 200);
	assert_int_equal(jint(json_array_get(arr, 0), "outstanding_bytes"), 1000);

	arr = json_object_get(root, "processes");
	assert_int_equal(json_array_size(arr), 2);
	p = json_array_get(arr, 0);	/* bash: 384 + 1024 + 16384 + 4096 bytes */
	assert_int_equal(jint(p, "pid"), 42);
	assert_string_equal(jstr(p, "comm"), "bash");
	assert_int_equal(jint(p, "allocs"), 6);
	assert_int_equal(jint(p, "bytes_alloc"), 21888);
	assert_int_equal(jint(json_object_get(p, "events"), "kmalloc"), 4);
	assert_int_equal(jint(json_object_get(p, "events"), "kfree"), 2);
	assert_int_equal(jint(json_object_get(p, "events"), "mm_page_alloc"), 1);
	assert_int_equal(jint(json_object_get(p, "events"), "vfree"), 0);
	p = json_array_get(arr, 1);
	assert_string_equal(jstr(p, "comm"), "kworker/0:1");
	assert_int_equal(jint(json_object_get(p, "events"), "kmem_cache_alloc"), 5);

	arr = json_object_get(root, "nodes");
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(jint(json_array_get(arr, 0), "allocs"), 10);
	assert_int_equal(jint(json_array_get(arr, 1), "bytes_alloc"), 16384);

	qj = json_object_get(root, "quality");
	assert_int_equal(jint(qj, "events"), 1234);
	assert_int_equal(jint(qj, "lost"), 0);
	assert_int_equal(jint(qj, "stack_failures"), 3);
	assert_int_equal(jint(qj, "unmatched_frees"), 1);
	assert_int_equal(jint(qj, "filtered"), 0);
	assert_int_equal(json_array_size(json_object_get(qj, "families_not_traced")), 1);
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(qj, "families_not_traced"), 0)), "dma");
	assert_true(json_is_true(json_object_get(qj, "complete")));
	json_decref(root);

	/* anything lost: not complete */
	q.lost = 7;
	root = render_json(a, &o);
	qj = json_object_get(root, "quality");
	assert_int_equal(jint(qj, "lost"), 7);
	assert_true(json_is_false(json_object_get(qj, "complete")));
	json_decref(root);

	/* misses per event, each under its event's name */
	q.misses = 5;
	q.event_misses[0] = (struct kms_event_misses){ "kmalloc", 0 };
	q.event_misses[1] = (struct kms_event_misses){ "kmem_cache_free", 5 };
	q.nr_event_misses = 2;
	root = render_json(a, &o);
	qj = json_object_get(json_object_get(root, "quality"), "misses_by_event");
	assert_int_equal(json_object_size(qj), 2);
	assert_int_equal(jint(qj, "kmalloc"), 0);
	assert_int_equal(jint(qj, "kmem_cache_free"), 5);
	json_decref(root);
	pipe_done();
}

static void test_json_symbols_gfp(void **state)
{
	const char *dir = getenv("KMS_UNIT_DATA");
	struct report_opts o = { .source = "live" };
	struct gfp_table *gt = NULL;
	struct ksyms *ks;
	char fmt[512];
	json_t *root, *arr, *s;
	struct agg *a;
	const char *bad;

	ks = ksyms_from_text(kallsyms);
	assert_non_null(ks);

	snprintf(fmt, sizeof(fmt), "%s/kmalloc-6.18.format", dir ? dir : "tests/unit/data");
	{
		FILE *f = fopen(fmt, "r");
		char *text;
		long n;

		if (!f)
			skip();
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		text = calloc(1, n + 1);
		assert_int_equal(fread(text, 1, n, f), (size_t)n);
		fclose(f);
		assert_int_equal(gfp_table__load_format(&gt, text), 0);
		free(text);
	}

	a = sample();
	o.ksyms = ks;
	o.gfp = gt;
	assert_int_equal(report__parse_sort("req", &o, &bad), 0);
	root = render_json(a, &o);
	arr = json_object_get(root, "sites");
	/* req: page 16384, dma 4096, B 1000, M 960, A 300 */
	s = json_array_get(arr, 2);
	assert_string_equal(jstr(s, "symbol"), "other_thing+0x20");
	assert_string_equal(jstr(s, "function"), "other_thing");
	assert_true(json_is_null(json_object_get(s, "module")));
	assert_string_equal(jstr(json_array_get(json_object_get(s, "gfp"), 0), "flags"),
			    "GFP_KERNEL|__GFP_ZERO");
	s = json_array_get(arr, 3);
	assert_string_equal(jstr(s, "symbol"), "mod_func+0x44");
	assert_string_equal(jstr(s, "function"), "mod_func");
	assert_string_equal(jstr(s, "module"), "mymod");
	s = json_array_get(arr, 4);
	assert_string_equal(jstr(s, "symbol"), "do_thing+0x10");
	assert_string_equal(jstr(json_array_get(json_object_get(s, "gfp"), 0), "flags"),
			    "GFP_KERNEL");
	arr = json_object_get(root, "gfp");
	assert_string_equal(jstr(json_array_get(arr, 0), "flags"), "GFP_KERNEL");
	json_decref(root);

	{
		char *text = render(a, &o, false);

		assert_non_null(strstr(text, "mod_func+0x44 [mymod]"));
		assert_non_null(strstr(text, "GFP_KERNEL|__GFP_ZERO"));
		free(text);
	}
	pipe_done();
	ksyms__free(ks);
	gfp_table__free(gt);
}

/* a text line whose words are exactly these, blanks collapsed */
static bool has_row(const char *text, const char *words)
{
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n'), *p = line, *w = words;

		if (!end)
			end = line + strlen(line);
		while (p < end && *w) {
			while (p < end && *p == ' ')
				p++;
			while (*w == ' ')
				w++;
			while (p < end && *w && *p != ' ' && *p == *w) {
				p++;
				w++;
			}
			if ((p < end && *p != ' ') || (*w && *w != ' '))
				break;
		}
		while (p < end && *p == ' ')
			p++;
		if (!*w && p == end)
			return true;
		line = *end ? end + 1 : NULL;
	}
	return false;
}

static void test_text(void **state)
{
	struct kms_quality q = quality();
	struct report_opts o = { .kernel = "6.1.0", .source = "live", .quality = &q };
	struct agg *a = sample();
	char *t;

	t = render(a, &o, false);
	assert_non_null(strstr(t, "kmemscope stat: schema kmemscope.stat, version 1, kernel 6.1.0, "
				  "source live,"));
	assert_non_null(strstr(t, "duration 2.500 s"));
	assert_non_null(strstr(t, "Families"));
	assert_non_null(strstr(t, "Top call sites by bytes,allocs (5 of 5)"));
	assert_non_null(strstr(t, "0xffffffff81001010"));
	assert_non_null(strstr(t, "dentry"));
	assert_non_null(strstr(t, "virtio0"));
	assert_non_null(strstr(t, "GFP flags"));
	assert_non_null(strstr(t, "Page orders"));
	assert_true(has_row(t, "128 255 8"));
	assert_non_null(strstr(t, "Slab caches"));
	assert_non_null(strstr(t, "kworker/0:1"));
	assert_non_null(strstr(t, "NUMA nodes"));
	assert_non_null(strstr(t, "Data quality"));
	assert_non_null(strstr(t, "families not traced   dma"));
	assert_non_null(strstr(t, "unmatched frees       1"));
	assert_null(strstr(t, "INCOMPLETE"));
	free(t);

	q.lost = 5;
	q.misses = 2;
	o.top = 1;
	t = render(a, &o, false);
	assert_non_null(strstr(t, "!!! INCOMPLETE DATA: 5 records lost, 2 program runs missed"));
	assert_non_null(strstr(t, "(1 of 5)"));
	free(t);
	pipe_done();
}

static void test_comm_filter_quality(void **state)
{
	struct pipeline_opts po = { .filter = { .comm = "bash" } };
	struct kms_quality q = quality();
	struct report_opts o = { .quality = &q };
	struct kms_meta m = { .type = KMS_EV_META_TASK };
	struct kms_event e = { .type = KMS_EV_KMALLOC, .site = SITE_A, .bytes_req = 8,
			       .bytes_alloc = 8, .gfp = 0xcc0, .stack_id = -1 };
	json_t *root, *arr;

	/* what the session does: task records and events through the pipeline's filter */
	assert_int_equal(pipeline__init(&test_pipe, &po), 0);
	for (int i = 0; i < 2; i++) {
		m.key = 42 + i;
		strcpy(m.name, i ? "sshd" : "bash");
		pipe_meta(&m);
	}
	for (int i = 0; i < 3; i++) {
		e.ptr = 0x1000 * (i + 1);
		e.pid = i ? 43 : 42;
		pipe_event(&e);
	}
	/* the kernel-side pid filter's 10, and the comm filter's 2 */
	q.filtered = 10 + pipeline__filtered(&test_pipe);
	root = render_json(test_pipe.agg, &o);
	assert_int_equal(jint(json_object_get(root, "quality"), "filtered"), 12);
	arr = json_object_get(root, "processes");
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(jint(json_array_get(arr, 0), "pid"), 42);
	json_decref(root);
	pipe_done();
}

/*
 * kmemscope's own process (KMS_CTX_SELF, set in BPF): its free of a traced
 * object counts as that object's free, one of nothing traced is counted as
 * left out next to the allocations BPF dropped, and it is no process row.
 */
static void test_self_excluded(void **state)
{
	struct pipeline_opts po = {};
	struct kms_quality q = quality();
	struct report_opts o = { .quality = &q };
	struct kms_meta m = { .type = KMS_EV_META_TASK, .key = 7, .name = "kmemscope" };
	struct kms_event e = { .type = KMS_EV_KMALLOC, .site = SITE_A, .bytes_req = 8,
			       .bytes_alloc = 8, .gfp = 0xcc0, .stack_id = -1, .pid = 42,
			       .ptr = 0x1000 };
	json_t *root, *qj, *arr;
	char *text;

	assert_int_equal(pipeline__init(&test_pipe, &po), 0);
	pipe_meta(&m);
	pipe_event(&e);
	e.type = KMS_EV_KFREE;
	e.pid = 7;
	e.ctx = KMS_CTX_OUTSIDE | KMS_CTX_SELF;
	pipe_event(&e);
	e.ptr = 0x9000;
	pipe_event(&e);
	/* what the BPF side dropped: kmemscope's own allocations */
	q.self_excluded = 5;
	root = render_json(test_pipe.agg, &o);
	qj = json_object_get(root, "quality");
	assert_int_equal(jint(qj, "self_excluded"), 6);
	assert_true(json_is_false(json_object_get(qj, "self_traced")));
	assert_int_equal(jint(qj, "filtered"), 0);
	assert_int_equal(jint(qj, "unmatched_frees"), 0);
	assert_int_equal(jint(json_array_get(json_object_get(root, "families"), KMS_FAM_KMALLOC),
			      "frees"), 1);
	arr = json_object_get(root, "processes");
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(jint(json_array_get(arr, 0), "pid"), 42);
	json_decref(root);
	q.self_traced = true;
	text = render(test_pipe.agg, &o, false);
	assert_non_null(strstr(text, "kmemscope traced"));
	assert_non_null(strstr(text, "kmemscope's own"));
	free(text);
	pipe_done();
}

/*
 * vmalloc at the vmap-area tracepoint: GFP unknown reads "unknown" with a
 * null value, never 0x0; an area vmalloc did not make (KMS_X_MAPPING) is
 * left out of the family with its free, and counted.
 */
static void test_vmalloc_unknown_gfp_mappings(void **state)
{
	struct pipeline_opts po = {};
	struct kms_quality q = quality();
	struct report_opts o = { .quality = &q };
	struct kms_event e = { .type = KMS_EV_VMALLOC, .site = SITE_A, .bytes_req = 16384,
			       .bytes_alloc = 16384, .gfp = KMS_GFP_UNKNOWN, .stack_id = -1,
			       .pid = 42, .ptr = 0xffffc90000100000ULL };
	json_t *root, *fam, *g, *s;
	char *text;

	assert_int_equal(pipeline__init(&test_pipe, &po), 0);
	pipe_event(&e);
	e.ptr = 0xffffc90000200000ULL;
	e.extra = KMS_X_MAPPING;
	e.site = SITE_B;
	pipe_event(&e);
	e.type = KMS_EV_VFREE;
	pipe_event(&e);		/* the mapping's free: left out too */
	e.ptr = 0xffffc90000100000ULL;
	e.extra = 0;
	pipe_event(&e);
	root = render_json(test_pipe.agg, &o);
	fam = json_array_get(json_object_get(root, "families"), KMS_FAM_VMALLOC);
	assert_int_equal(jint(fam, "allocs"), 1);
	assert_int_equal(jint(fam, "frees"), 1);
	assert_int_equal(jint(fam, "bytes_alloc"), 16384);
	assert_int_equal(jint(json_object_get(root, "quality"), "vmap_mappings"), 1);
	assert_int_equal(jint(json_object_get(root, "quality"), "unmatched_frees"), 0);
	g = json_array_get(json_object_get(root, "gfp"), 0);
	assert_string_equal(jstr(g, "flags"), "unknown");
	assert_true(json_is_null(json_object_get(g, "value")));
	s = json_array_get(json_object_get(root, "sites"), 0);
	assert_int_equal(json_array_size(json_object_get(root, "sites")), 1);
	g = json_array_get(json_object_get(s, "gfp"), 0);
	assert_string_equal(jstr(g, "flags"), "unknown");
	assert_true(json_is_null(json_object_get(g, "value")));
	json_decref(root);
	text = render(test_pipe.agg, &o, false);
	assert_non_null(strstr(text, "unknown"));
	assert_false(has_row(text, "1 16384 0xffffffff unknown"));
	assert_true(has_row(text, "1 16384 - unknown"));
	assert_true(has_row(text, "vmap mappings 1 (ioremap, vmap: left out of vmalloc)"));
	free(text);
	pipe_done();
}

static void test_empty(void **state)
{
	struct report_opts o = {};
	struct agg *a = agg__new();
	json_t *root;
	char *t;

	root = render_json(a, &o);
	assert_int_equal(json_array_size(json_object_get(root, "families")), KMS_FAM_MAX);
	assert_int_equal(json_array_size(json_object_get(root, "sites")), 0);
	assert_true(json_is_null(json_object_get(root, "kernel")));
	assert_true(json_is_true(json_object_get(json_object_get(root, "quality"), "complete")));
	json_decref(root);
	t = render(a, &o, false);
	assert_non_null(strstr(t, "(no allocations)"));
	assert_non_null(strstr(t, "Data quality"));
	free(t);
	agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sort),
		cmocka_unit_test(test_sort_order),
		cmocka_unit_test(test_json_schema),
		cmocka_unit_test(test_json_symbols_gfp),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_comm_filter_quality),
		cmocka_unit_test(test_self_excluded),
		cmocka_unit_test(test_vmalloc_unknown_gfp_mappings),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
