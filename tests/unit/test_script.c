/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* script: the lines of kmemscope script, text and NDJSON, from records (script.h) */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "agg.h"
#include "detect.h"
#include "gfp.h"
#include "kallsyms_text.h"
#include "pipeline.h"
#include "script.h"

#define START	1000000000ULL		/* the trace began 1 s after boot */
#define CACHE1	0xffff888100230900ULL
#define DEV1	0xffff888100300000ULL
#define OBJ1	0xffff888102b142f0ULL
#define SITE1	0xffffffff81001010ULL	/* do_thing+0x10 */
#define SITE_MOD 0xffffffffc0001008ULL	/* mod_fn+0x8 [mymod] */
#define SITE_NONE 0xffffffff90000000ULL	/* no symbol holds it */

static const char kallsyms[] =
	"ffffffff81001000 T do_thing\n"
	"ffffffff81001100 T next_thing\n"
	"ffffffff81002000 T stack_root\n"
	"ffffffff81002100 T after_root\n"
	"ffffffffc0001000 t mod_fn\t[mymod]\n"
	"ffffffffc0001100 t mod_next\t[mymod]\n";

struct fx {
	struct ksyms *k;
	struct gfp_table *gfp;
	struct agg *agg;
	int baseline[KMS_FAM_MAX];
	struct script *sc;
};

static __u64 stack_ips[] = { SITE1, 0xffffffff81002010ULL };

static int fake_stack(void *ctx, int stack_id, __u64 *ips, int max)
{
	if (stack_id != 7)
		return -ENOENT;
	memcpy(ips, stack_ips, sizeof(stack_ips));
	return 2;
}

static void meta(struct fx *f, int type, __u64 key, const char *name, __u32 a, __u32 b)
{
	struct kms_meta m = { .type = type, .key = key, .a = a, .b = b, .ts = START + 5, .cpu = 1 };

	strncpy(m.name, name, sizeof(m.name) - 1);
	agg__meta(f->agg, &m);
}

static struct fx *fx_new(bool json, bool strip, bool stacks)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct script_opts o = { .json = json, .strip = strip, .stacks = stacks,
				 .start_ns = START, .stack = fake_stack };

	assert_non_null(f);
	f->k = ksyms_from_text(kallsyms);
	assert_non_null(f->k);
	assert_int_equal(gfp_table__load_format(&f->gfp,
		"__print_flags(REC->gfp_flags, \"|\", {0xcc0, \"GFP_KERNEL\"}, "
		"{0x100, \"__GFP_ZERO\"})"), 0);
	f->agg = agg__new();
	assert_non_null(f->agg);
	for (int i = 0; i < KMS_FAM_MAX; i++)
		f->baseline[i] = 1;
	meta(f, KMS_EV_META_TASK, 42, "my prog", 0, 0);
	meta(f, KMS_EV_META_CACHE, CACHE1, "dentry", 192, 192);
	meta(f, KMS_EV_META_DEVICE, DEV1, "0000:00:1f.2", 0, 0);
	o.ksyms = f->k;
	o.gfp = f->gfp;
	o.agg = f->agg;
	o.baseline_pc = f->baseline;
	f->sc = script__new(&o);
	assert_non_null(f->sc);
	return f;
}

static void fx_free(struct fx *f)
{
	script__free(f->sc);
	agg__free(f->agg);
	gfp_table__free(f->gfp);
	ksyms__free(f->k);
	free(f);
}

static struct kms_event ev(int type, __u64 ptr, __u64 site)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .pid = 42, .cpu = 3, .node = -1,
		.ts = START + 1500000123ULL, .stack_id = -1,
	};

	return e;
}

/* the line, NUL-terminated, '\n' checked and dropped */
static const char *line_of(const char *l, size_t len)
{
	static char b[4096];

	assert_non_null(l);
	assert_true(len > 0 && len < sizeof(b));
	assert_int_equal(l[len - 1], '\n');
	assert_null(memchr(l, '\n', len - 1));
	memcpy(b, l, len - 1);
	b[len - 1] = '\0';
	return b;
}

static const char *event_line(struct fx *f, const struct kms_event *e)
{
	size_t len = 0;
	const char *l = script__event(f->sc, e, &len);

	return line_of(l, len);
}

static json_t *event_json(struct fx *f, const struct kms_event *e)
{
	json_error_t err;
	json_t *j = json_loads(event_line(f, e), 0, &err);

	if (!j)
		fail_msg("not JSON: %s", err.text);
	return j;
}

static void test_text_columns(void **state)
{
	struct fx *f = fx_new(false, false, false);
	struct kms_event e = ev(KMS_EV_CACHE_ALLOC, OBJ1, SITE1);

	e.obj = CACHE1;
	e.bytes_req = 192;
	e.bytes_alloc = 192;
	e.gfp = 0xdc0;
	e.node = 0;
	e.ctx = KMS_CTX_KNOWN;
	e.pc = 1;
	/* a blank in the comm becomes '_': every line has the same columns */
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 kmem_cache_alloc 0xffff888102b142f0 192 192 - "
		"GFP_KERNEL|__GFP_ZERO 0 dentry do_thing+0x10 process -");
	/* the tracepoint gave no sizes: the cache's, from its record */
	e.bytes_req = e.bytes_alloc = 0;
	meta(f, KMS_EV_META_CACHE, CACHE1, "dentry", 184, 192);
	assert_non_null(strstr(event_line(f, &e), " kmem_cache_alloc 0xffff888102b142f0 184 192 - "));

	/* a free: no GFP, no context recorded, from outside the filter; a module's site */
	e = ev(KMS_EV_KFREE, OBJ1, SITE_MOD);
	e.ctx = KMS_CTX_OUTSIDE | KMS_CTX_RCU_DONE;
	e.pid = 7;
	e.ts = START - 2000;
	assert_string_equal(event_line(f, &e),
		"-0.000002000 3 ? 7 kfree 0xffff888102b142f0 0 0 - - -1 - mod_fn+0x8_[mymod] - "
		"outside,rcu_done");

	/* a page: its order, no flags from extra (the migratetype lives there) */
	e = ev(KMS_EV_PAGE_ALLOC, 0x3ffffa800133c89ULL, 0);
	e.order = 2;
	e.extra = KMS_X_NESTED;
	e.gfp = 0xcc0;
	e.bytes_req = e.bytes_alloc = 16384;
	e.ctx = KMS_CTX_KNOWN;
	e.pc = 0x100;	/* serving a softirq */
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 mm_page_alloc 0x3ffffa800133c89 16384 16384 2 GFP_KERNEL "
		"-1 - - softirq -");
	fx_free(f);
}

static void test_text_devices_and_flags(void **state)
{
	struct fx *f = fx_new(false, false, true);
	struct kms_event e = ev(KMS_EV_DMA_ALLOC, 0xffff888110000000ULL, SITE_NONE);

	e.obj = DEV1;
	e.gfp = 0xcc0;
	e.stack_id = 7;
	/* unnamed site: its address; --stack: the frames as a last column */
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 dma_alloc 0xffff888110000000 0 0 - GFP_KERNEL -1 "
		"0000:00:1f.2 0xffffffff90000000 - - do_thing+0x10;stack_root+0x10");

	/*
	 * vmalloc: the tracepoint gives no GFP (KMS_GFP_UNKNOWN; 0 in older
	 * files): "unknown"; a nested one says so; no stack: '-'
	 */
	e = ev(KMS_EV_VMALLOC, 0xffffc90000100000ULL, SITE1);
	e.extra = KMS_X_NESTED;
	e.ctx = KMS_CTX_NESTED;
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 vmalloc 0xffffc90000100000 0 0 - unknown -1 - do_thing+0x10 - "
		"direct,nested -");
	e.gfp = KMS_GFP_UNKNOWN;
	e.extra = KMS_X_MAPPING;
	e.ctx = 0;
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 vmalloc 0xffffc90000100000 0 0 - unknown -1 - do_thing+0x10 - "
		"mapping -");

	/* a failed allocation of the percpu family: its family from ->order */
	e = ev(KMS_EV_ALLOC_FAIL, 0, SITE1);
	e.order = KMS_FAM_PERCPU;
	e.extra = KMS_X_ATOMIC;
	e.gfp = 0x100;
	assert_string_equal(event_line(f, &e),
		"1.500000123 3 my_prog 42 alloc_fail 0x0 0 0 - __GFP_ZERO -1 - do_thing+0x10 - "
		"atomic -");
	fx_free(f);
}

static void test_json_members(void **state)
{
	struct fx *f = fx_new(true, false, true);
	struct kms_event e = ev(KMS_EV_CACHE_ALLOC, OBJ1, SITE1);
	json_t *j;

	e.obj = CACHE1;
	e.bytes_req = 100;
	e.bytes_alloc = 192;
	e.gfp = 0xcc0;
	e.ctx = KMS_CTX_KNOWN;
	e.pc = 2;	/* above the baseline of 1: preemption disabled */
	e.stack_id = 7;
	j = event_json(f, &e);
	assert_string_equal(json_string_value(json_object_get(j, "record")), "event");
	assert_int_equal(json_integer_value(json_object_get(j, "time_ns")), 1500000123);
	assert_true(json_real_value(json_object_get(j, "time")) == 1.500000123);
	assert_int_equal(json_integer_value(json_object_get(j, "cpu")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 42);
	/* JSON keeps the comm as it is */
	assert_string_equal(json_string_value(json_object_get(j, "comm")), "my prog");
	assert_string_equal(json_string_value(json_object_get(j, "event")), "kmem_cache_alloc");
	assert_string_equal(json_string_value(json_object_get(j, "family")), "kmem_cache");
	assert_string_equal(json_string_value(json_object_get(j, "ptr")), "0xffff888102b142f0");
	assert_int_equal(json_integer_value(json_object_get(j, "bytes_req")), 100);
	assert_int_equal(json_integer_value(json_object_get(j, "bytes_alloc")), 192);
	assert_true(json_is_null(json_object_get(j, "order")));
	assert_true(json_is_null(json_object_get(j, "migratetype")));
	assert_string_equal(json_string_value(json_object_get(j, "gfp")), "GFP_KERNEL");
	assert_string_equal(json_string_value(json_object_get(j, "gfp_value")), "0xcc0");
	assert_int_equal(json_integer_value(json_object_get(j, "node")), -1);
	assert_string_equal(json_string_value(json_object_get(j, "cache")), "dentry");
	assert_string_equal(json_string_value(json_object_get(j, "cache_addr")),
			    "0xffff888100230900");
	assert_true(json_is_null(json_object_get(j, "device")));
	assert_true(json_is_null(json_object_get(j, "device_addr")));
	assert_string_equal(json_string_value(json_object_get(j, "site")), "do_thing+0x10");
	assert_string_equal(json_string_value(json_object_get(j, "site_addr")),
			    "0xffffffff81001010");
	assert_string_equal(json_string_value(json_object_get(j, "context")), "preempt_disabled");
	assert_string_equal(json_string_value(json_object_get(j, "preempt_count")), "0x2");
	assert_int_equal(json_array_size(json_object_get(j, "flags")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "stack")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "stack"), 1)),
			    "stack_root+0x10");
	/* every member, in the documented order */
	assert_int_equal(json_object_size(j), 26);
	json_decref(j);

	/* a page free: its order; a record without a stack: null; no site: null */
	e = ev(KMS_EV_PAGE_FREE, 0x3ffffa800133c89ULL, 0);
	e.order = 3;
	j = event_json(f, &e);
	assert_int_equal(json_integer_value(json_object_get(j, "order")), 3);
	assert_true(json_is_null(json_object_get(j, "migratetype")));
	assert_true(json_is_null(json_object_get(j, "gfp")));
	assert_true(json_is_null(json_object_get(j, "site")));
	assert_true(json_is_null(json_object_get(j, "site_addr")));
	assert_true(json_is_null(json_object_get(j, "context")));
	assert_true(json_is_null(json_object_get(j, "stack")));
	json_decref(j);
	fx_free(f);
}

static void test_json_not_utf8(void **state)
{
	struct fx *f = fx_new(true, false, false);
	struct kms_event e = ev(KMS_EV_KMALLOC, OBJ1, SITE1);
	json_t *j;

	meta(f, KMS_EV_META_TASK, 42, "bad\xff\xfe", 0, 0);
	j = event_json(f, &e);
	assert_string_equal(json_string_value(json_object_get(j, "comm")), "bad??");
	json_decref(j);
	fx_free(f);
}

/* with --strip-addresses: numbers in place of addresses, allocation and free alike */
static void test_strip(void **state)
{
	struct fx *f = fx_new(false, true, true);
	struct kms_event a = ev(KMS_EV_KMALLOC, OBJ1, SITE1), fr = ev(KMS_EV_KFREE, OBJ1, SITE_NONE);
	struct kms_event other = ev(KMS_EV_KMALLOC, OBJ1 + 64, SITE_NONE);
	struct kms_event c = ev(KMS_EV_CACHE_FREE, OBJ1 + 64, SITE1);
	struct kms_event pg = ev(KMS_EV_PAGE_ALLOC, 0x3ffffa800133c89ULL, 0);
	char first[256];
	size_t len;
	const char *l;

	a.stack_id = 7;
	c.obj = CACHE1 + 1;	/* a cache no record named */
	strcpy(first, event_line(f, &a));
	assert_string_equal(first, "1.500000123 3 my_prog 42 kmalloc obj#1 0 0 - none -1 - "
			    "do_thing+0x10 - - do_thing+0x10;stack_root+0x10");
	/* the free shows its allocation's number; an unnamed site one of its own */
	assert_string_equal(event_line(f, &fr), "1.500000123 3 my_prog 42 kfree obj#1 0 0 - - -1 "
			    "- site#1 - - -");
	assert_non_null(strstr(event_line(f, &other), " obj#2 0 0 - none -1 - site#1 "));
	assert_non_null(strstr(event_line(f, &c), " obj#2 0 0 - - -1 cache#1 do_thing+0x10 "));
	/* the address allocated again holds a new object; pages count apart */
	assert_non_null(strstr(event_line(f, &a), " obj#3 "));
	assert_non_null(strstr(event_line(f, &pg), " page#1 "));
	assert_non_null(strstr(event_line(f, &fr), " obj#3 "));

	/* metadata records: the cache named by a record takes a number too */
	{
		struct kms_meta m = { .type = KMS_EV_META_CACHE, .key = CACHE1 + 1, .a = 8, .b = 8,
				      .ts = START, .cpu = 0 };

		strcpy(m.name, "kmalloc-8");
		l = script__meta(f->sc, &m, &len);
		assert_string_equal(line_of(l, len), "0.000000000 0 - - CACHE name=kmalloc-8 "
				    "cache=cache#1 object_size=8 size=8 reclaimable=0");
	}
	fx_free(f);

	/* JSON: no site_addr member at all; the rest numbered */
	f = fx_new(true, true, false);
	{
		json_t *j = event_json(f, &a);

		assert_null(json_object_get(j, "site_addr"));
		assert_string_equal(json_string_value(json_object_get(j, "ptr")), "obj#1");
		assert_int_equal(json_object_size(j), 24);
		json_decref(j);
		a.site = SITE_NONE;
		j = event_json(f, &a);
		assert_string_equal(json_string_value(json_object_get(j, "site")), "site#1");
		json_decref(j);
	}
	fx_free(f);
}

static void test_meta_and_marks(void **state)
{
	struct fx *f = fx_new(false, false, false);
	struct kms_meta task = { .type = KMS_EV_META_TASK, .key = 42, .ts = START + 1, .cpu = 2 };
	struct kms_meta dev = { .type = KMS_EV_META_DEVICE, .key = DEV1, .ts = START, .cpu = 1 };
	struct kms_meta loss = { .type = KMS_EV_META_LOSS,
				 .key = (1u << KMS_FAM_KMALLOC) | (1u << KMS_FAM_PAGE) };
	json_error_t jerr;
	size_t len;
	const char *l;
	json_t *j;

	strcpy(task.name, "bash");
	strcpy(dev.name, "nvme0");
	l = script__meta(f->sc, &task, &len);
	assert_string_equal(line_of(l, len), "0.000000001 2 bash 42 TASK");
	l = script__meta(f->sc, &dev, &len);
	assert_string_equal(line_of(l, len), "0.000000000 1 - - DEVICE name=nvme0 "
			    "device=0xffff888100300000");
	/* the collector's loss marks have no time */
	l = script__meta(f->sc, &loss, &len);
	assert_string_equal(line_of(l, len), "- - - - LOSS families=kmalloc,page");
	l = script__mark(f->sc, SCRIPT_BEGIN, &len);
	assert_string_equal(line_of(l, len), "- - - - BEGIN");
	l = script__mark(f->sc, SCRIPT_SETTLE, &len);
	assert_string_equal(line_of(l, len), "- - - - SETTLE");
	fx_free(f);

	f = fx_new(true, false, false);
	l = script__meta(f->sc, &task, &len);
	assert_string_equal(line_of(l, len), "{\"record\":\"task\",\"time\":1e-9,\"time_ns\":1,"
			    "\"cpu\":2,\"pid\":42,\"comm\":\"bash\"}");
	l = script__meta(f->sc, &loss, &len);
	j = json_loads(line_of(l, len), 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "record")), "loss");
	assert_true(json_is_null(json_object_get(j, "time")));
	assert_true(json_is_null(json_object_get(j, "cpu")));
	assert_int_equal(json_array_size(json_object_get(j, "families")), 2);
	json_decref(j);
	l = script__mark(f->sc, SCRIPT_SETTLE, &len);
	assert_string_equal(line_of(l, len), "{\"record\":\"settle\"}");
	fx_free(f);
}

/* what the pipeline's tap saw */
struct seen {
	int events, outside, observed, metas, settles, begins;
	__u32 pids;		/* bit per pid of the events */
};

static void seen_event(void *ctx, const struct kms_event *e)
{
	struct seen *s = ctx;

	s->events++;
	s->outside += !!(e->ctx & KMS_CTX_OUTSIDE);
	s->pids |= 1u << e->pid;
}

static void seen_observe(void *ctx, const struct kms_event *e)
{
	((struct seen *)ctx)->observed++;
}

static void seen_meta(void *ctx, const struct kms_meta *m)
{
	((struct seen *)ctx)->metas++;
}

static void seen_settle(void *ctx)
{
	((struct seen *)ctx)->settles++;
}

static void seen_begin(void *ctx)
{
	((struct seen *)ctx)->begins++;
}

/* script prints what the tap is given: what passes the reports' filter stage */
static void test_pipeline_tap(void **state)
{
	struct pipeline_opts po = { .filter = { .comm = "mine" } };
	struct kms_meta mine = { .type = KMS_EV_META_TASK, .key = 1, .name = "mine" };
	struct kms_meta other = { .type = KMS_EV_META_TASK, .key = 2, .name = "other" };
	struct kms_event a1 = ev(KMS_EV_KMALLOC, OBJ1, SITE1), a2 = a1, f2 = a1;
	struct seen s = {};
	struct pipeline p;

	a1.pid = 1;
	a2.pid = 2;
	a2.ptr = OBJ1 + 64;
	f2.type = KMS_EV_KFREE;
	f2.pid = 2;
	assert_int_equal(pipeline__init(&p, &po), 0);
	p.tap = (struct pipeline_tap){ seen_event, seen_observe, seen_meta, seen_settle,
				       seen_begin, &s };
	pipeline__meta(&p, &mine);
	pipeline__meta(&p, &other);
	/* before the trace: the stages learn, the tap observes */
	pipeline__observe(&p, &a2);
	pipeline__begin(&p);
	pipeline__event(&p, &a1);
	/* another process's allocation is left out; its free of ours passes, flagged */
	pipeline__event(&p, &a2);
	pipeline__event(&p, &f2);
	pipeline__settle(&p);
	assert_int_equal(s.metas, 2);
	assert_int_equal(s.observed, 1);
	assert_int_equal(s.begins, 1);
	assert_int_equal(s.events, 2);
	assert_int_equal(s.outside, 1);
	assert_int_equal(s.pids, (1u << 1) | (1u << 2));
	assert_int_equal(s.settles, 1);
	/* the reports counted the same: one allocation, freed */
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->allocs, 1);
	assert_int_equal(agg__family(p.agg, KMS_FAM_KMALLOC)->frees, 1);
	pipeline__fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_columns),
		cmocka_unit_test(test_text_devices_and_flags),
		cmocka_unit_test(test_json_members),
		cmocka_unit_test(test_json_not_utf8),
		cmocka_unit_test(test_strip),
		cmocka_unit_test(test_meta_and_marks),
		cmocka_unit_test(test_pipeline_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
