/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* profile, folded stacks and the SVG flame graph: model, layout, merging, escaping */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "agg.h"
#include "detect.h"
#include "flame.h"
#include "ksyms.h"
#include "profile.h"
#include "kallsyms_text.h"
#include "pipe.h"

static const char kallsyms_text[] =
	"ffffffff81001000 T caller_a\n"
	"ffffffff81002000 T caller_b\n"
	"ffffffff81003000 T __x64_sys_foo\n"
	"ffffffff81004000 T __kmalloc_noprof\n"
	"ffffffff81005000 T x<y&z\"'>\n"
	"ffffffff81006000 T _etext\n"
	"ffffffffc0001000 t mod_fn [mymod]\n"
	"ffffffffc0002000 t mod_end [mymod]\n";

#define A(off)		(0xffffffff81001000ULL + (off))
#define B(off)		(0xffffffff81002000ULL + (off))
#define SYS_FOO		0xffffffff81003020ULL
#define KMALLOC		0xffffffff81004020ULL
#define ODD		0xffffffff81005010ULL
#define MOD_FN		0xffffffffc0001010ULL

static struct ksyms *ks;

static int group_setup(void **state)
{
	ks = ksyms_from_text(kallsyms_text);
	return ks ? 0 : -1;
}

static int group_teardown(void **state)
{
	ksyms__free(ks);
	return 0;
}

/* a sample of family fam, frames leaf first, value v of every kind */
static struct profile_sample sample(int fam, __u64 v, int n, ...)
{
	struct profile_sample s = { .family = fam, .nframes = n, .order = -1, .nested = -1 };
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		s.frames[i] = va_arg(ap, __u64);
	va_end(ap);
	for (int k = 0; k < PV_NR; k++)
		s.v[k] = v;
	return s;
}

static char *capture(int (*fn)(const struct flame *, const struct profile *, FILE *),
		     const struct flame *f, const struct profile *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	assert_non_null(out);
	assert_int_equal(fn(f, p, out), 0);
	fclose(out);
	return buf;
}

static int folded_fn(const struct flame *f, const struct profile *p, FILE *out)
{
	return flame__folded(f, out);
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s++;
	}
	return n;
}

/* equal function names merge whatever the offset; families stay apart; zero values add nothing */
static void test_merge(void **state)
{
	struct profile_sample s[] = {
		sample(KMS_FAM_KMALLOC, 100, 2, A(0x10), B(0x20)),
		sample(KMS_FAM_KMALLOC, 50, 2, A(0x30), B(0x28)),
		sample(KMS_FAM_KMALLOC, 25, 2, MOD_FN, B(0x20)),
		sample(KMS_FAM_PAGE, 10, 2, A(0x10), B(0x20)),
		sample(KMS_FAM_KMALLOC, 5, 0),
		sample(KMS_FAM_KMALLOC, 0, 1, 0xffffffff8100f000ULL),
	};
	struct profile p = { .samples = s, .nr = 6, .o.ksyms = ks };
	struct flame f;
	char *out;

	assert_int_equal(flame__build(&f, &p, PV_ALLOC_BYTES), 0);
	assert_int_equal(f.root->value, 190);
	/* all, [kmalloc], caller_b, caller_a, mod_fn, [page], caller_b, caller_a */
	assert_int_equal(f.nr_nodes, 8);
	assert_int_equal(f.max_depth, 3);
	out = capture(folded_fn, &f, &p);
	assert_string_equal(out, "[kmalloc] 5\n"
				 "[kmalloc];caller_b;caller_a 150\n"
				 "[kmalloc];caller_b;mod_fn [mymod] 25\n"
				 "[page];caller_b;caller_a 10\n");
	free(out);
	flame__free(&f);
}

/* every node: its children and its own value make its value, laid side by side inside it */
static void check_node(const struct flame *f, const struct flame_node *n, double *leaf_px)
{
	double x, w, cx, cw, next;
	__u64 sum = n->self;

	flame__px(f, n, FLAME_WIDTH, &x, &w);
	next = x;
	for (const struct flame_node *c = n->child; c; c = c->next) {
		assert_ptr_equal(c->parent, n);
		assert_int_equal(c->depth, n->depth + 1);
		if (c->next)
			assert_true(strcmp(c->name, c->next->name) < 0);
		flame__px(f, c, FLAME_WIDTH, &cx, &cw);
		assert_true(cx > next - 1e-6 && cx < next + 1e-6);
		next = cx + cw;
		sum += c->value;
		check_node(f, c, leaf_px);
	}
	assert_int_equal(sum, n->value);
	assert_true(next <= x + w + 1e-6);
	*leaf_px += n->self * (FLAME_WIDTH - 2.0 * FLAME_PAD) / f->root->value;
}

static void test_widths(void **state)
{
	struct profile_sample s[64];
	struct profile p = { .samples = s, .nr = 64, .o.ksyms = ks };
	double x, w, leaf_px = 0;
	struct flame f;

	/* stacks of mixed depths over four functions, some shared prefixes */
	for (int i = 0; i < 64; i++) {
		__u64 fn[4] = { A(0), B(0), SYS_FOO, MOD_FN };
		int n = i % 5;

		s[i] = sample(i % 3 ? KMS_FAM_KMALLOC : KMS_FAM_CACHE, 1 + i * 7, 0);
		s[i].nframes = n;
		for (int k = 0; k < n; k++)
			s[i].frames[k] = fn[(i + k * k) % 4];
	}
	assert_int_equal(flame__build(&f, &p, PV_INUSE_COUNT), 0);
	flame__px(&f, f.root, FLAME_WIDTH, &x, &w);
	assert_true(x == FLAME_PAD && w == FLAME_WIDTH - 2 * FLAME_PAD);
	check_node(&f, f.root, &leaf_px);
	/* the stack ends, side by side, fill the whole width */
	assert_true(leaf_px > w - 1e-6 && leaf_px < w + 1e-6);
	flame__free(&f);
}

static int svg_fn(const struct flame *f, const struct profile *p, FILE *out)
{
	return flame__svg(f, p, out);
}

/* names and titles become well-formed XML, whatever their bytes */
static void test_escape(void **state)
{
	struct profile_sample s[] = {
		sample(KMS_FAM_KMALLOC, 10, 2, ODD, B(0)),
	};
	struct profile p = {
		.samples = s, .nr = 1,
		.o = { .ksyms = ks, .kernel = "6.1\x01\xc3\xa9<rt>", .command = "stat" },
	};
	struct flame f;
	char *out;

	assert_int_equal(flame__build(&f, &p, PV_ALLOC_COUNT), 0);
	out = capture(svg_fn, &f, &p);
	assert_non_null(strstr(out, "data-n=\"x&lt;y&amp;z&quot;&apos;&gt;\""));
	assert_non_null(strstr(out, "<title>x&lt;y&amp;z&quot;&apos;&gt; (10 count, 100.00%)"));
	assert_non_null(strstr(out, "kernel 6.1???&lt;rt&gt;"));
	assert_null(strstr(out, "x<y"));
	assert_null(strstr(out, "\xc3"));
	assert_non_null(strstr(out, "kmemscope stat: allocations by kernel stack"));
	free(out);
	flame__free(&f);
}

/* frames too narrow to see are not drawn, and the count says so */
static void test_svg_frames(void **state)
{
	struct profile_sample s[] = {
		sample(KMS_FAM_KMALLOC, 1000000000, 2, A(0), B(0)),
		sample(KMS_FAM_VMALLOC, 1, 2, A(0), SYS_FOO),
	};
	struct profile p = { .samples = s, .nr = 2, .o.ksyms = ks };
	struct flame f;
	char *out;

	assert_int_equal(flame__build(&f, &p, PV_ALLOC_BYTES), 0);
	assert_int_equal(f.nr_nodes, 7);
	out = capture(svg_fn, &f, &p);
	/* all, [kmalloc], caller_b, caller_a: the vmalloc stack is 1e-9 of the width */
	assert_non_null(strstr(out, "data-frames=\"4\""));
	assert_int_equal(count(out, "<g class=\"f\""), 4);
	assert_null(strstr(out, "data-n=\"[vmalloc]\""));
	/* one legend entry per family drawn or not: vmalloc is in the data */
	assert_non_null(strstr(out, ">vmalloc</text>"));
	assert_non_null(strstr(out, "<script><![CDATA["));
	free(out);
	flame__free(&f);

	/* nothing allocated: a picture with no frames, still a document */
	p.nr = 0;
	assert_int_equal(flame__build(&f, &p, PV_ALLOC_BYTES), 0);
	out = capture(svg_fn, &f, &p);
	assert_non_null(strstr(out, "data-frames=\"0\""));
	assert_non_null(strstr(out, "</svg>\n"));
	free(out);
	flame__free(&f);
}

static void test_values(void **state)
{
	const char *names[] = { "alloc_count", "alloc_bytes", "inuse_count", "inuse_bytes" };

	for (int v = 0; v < PV_NR; v++) {
		assert_int_equal(profile_value_parse(names[v]), v);
		assert_string_equal(profile_value_name(v), names[v]);
	}
	assert_int_equal(profile_value_parse("bytes"), -1);
	assert_int_equal(profile_value_parse(NULL), -1);
	assert_null(profile_value_name(PV_NR));
}

static void test_frame_names(void **state)
{
	struct profile p = { .o.ksyms = ks };
	struct profile_frame fr;
	char buf[64];

	profile__frame(&p, MOD_FN, &fr);
	assert_string_equal(fr.func, "mod_fn");
	assert_int_equal(fr.offset, 0x10);
	assert_string_equal(fr.module, "mymod");
	profile__frame_name(&p, A(0x44), buf, sizeof(buf));
	assert_string_equal(buf, "caller_a");
	profile__frame_name(&p, MOD_FN, buf, sizeof(buf));
	assert_string_equal(buf, "mod_fn [mymod]");
	profile__frame_name(&p, 0x1234, buf, sizeof(buf));
	assert_string_equal(buf, "0x1234");
	p.o.ksyms = NULL;
	profile__frame(&p, MOD_FN, &fr);
	assert_null(fr.func);
	profile__family_frame(KMS_FAM_CACHE, buf, sizeof(buf));
	assert_string_equal(buf, "[kmem_cache]");
}

/* ---- the model, from a record stream through the pipeline ---- */

static const __u64 stack_kmalloc[] = { KMALLOC, A(0x10), SYS_FOO };

static int fake_stack(void *ctx, int id, __u64 *ips, int max)
{
	if (id != 1)
		return -ENOENT;
	memcpy(ips, stack_kmalloc, sizeof(stack_kmalloc));
	return 3;
}

static __u64 now = 1000;

static void feed(int type, __u64 ptr, __u64 site, __u32 bytes, int stack_id, __u8 order)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = bytes, .bytes_alloc = bytes,
		.gfp = 0xcc0, .pid = 42, .node = -1, .stack_id = stack_id, .order = order,
		.ts = now++,
	};

	pipe_event(&e);
}

static const struct profile_sample *find(const struct profile *p, int fam)
{
	for (size_t i = 0; i < p->nr; i++)
		if (p->samples[i].family == fam)
			return &p->samples[i];
	return NULL;
}

static void test_profile(void **state)
{
	struct detect_opts o = { .leaks = true, .ksyms = ks, .stack = fake_stack };
	struct kms_quality q = { .duration_ns = 2000000000ULL, .lost = 3 };
	struct profile_opts po = { .quality = &q, .ksyms = ks };
	const struct profile_sample *s;
	struct detect *d;
	struct profile p;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		o.baseline_pc[f] = -1;
	d = pipe_detect(&o);
	assert_non_null(d);
	feed(KMS_EV_KMALLOC, 0xffff888000001000ULL, A(0x10), 64, 1, 0);
	feed(KMS_EV_KMALLOC, 0xffff888000002000ULL, A(0x10), 128, 1, 0);
	feed(KMS_EV_KFREE, 0xffff888000001000ULL, B(0), 0, -1, 0);
	feed(KMS_EV_PAGE_ALLOC, 0x1000, B(0x8), 16384, -1, 2);
	assert_int_equal(profile__build(&p, d, &po), 0);
	assert_int_equal(p.nr, 2);
	assert_int_equal(p.duration_ns, 2000000000ULL);
	assert_int_equal(p.lost, 3);
	assert_false(p.complete);
	s = find(&p, KMS_FAM_KMALLOC);
	assert_non_null(s);
	/* the allocator's own frame is trimmed: the caller comes first */
	assert_int_equal(s->nframes, 2);
	assert_int_equal(s->frames[0], A(0x10));
	assert_int_equal(s->frames[1], SYS_FOO);
	assert_int_equal(s->v[PV_ALLOC_COUNT], 2);
	assert_int_equal(s->v[PV_ALLOC_BYTES], 192);
	assert_int_equal(s->v[PV_INUSE_COUNT], 1);
	assert_int_equal(s->v[PV_INUSE_BYTES], 128);
	assert_int_equal(s->order, -1);
	assert_int_equal(s->gfp, 0xcc0);
	assert_int_equal(s->pid, 42);
	s = find(&p, KMS_FAM_PAGE);
	assert_non_null(s);
	assert_int_equal(s->nframes, 1);
	assert_int_equal(s->frames[0], B(0x8));
	assert_int_equal(s->order, 2);
	assert_int_equal(s->v[PV_ALLOC_COUNT], 1);
	assert_int_equal(s->v[PV_INUSE_COUNT], 1);
	assert_int_equal(p.total[PV_ALLOC_COUNT], 3);
	assert_int_equal(p.total[PV_INUSE_BYTES], 128 + s->v[PV_INUSE_BYTES]);
	profile__free(&p);

	/* the leaks scope: objects at least min_age old only */
	po.scope = PROFILE_LEAKS;
	po.now = now;
	po.min_age_ns = now - 1002;
	assert_int_equal(profile__build(&p, d, &po), 0);
	assert_int_equal(p.nr, 1);
	assert_int_equal(p.samples[0].family, KMS_FAM_KMALLOC);
	assert_int_equal(p.total[PV_INUSE_BYTES], 128);
	profile__free(&p);
	pipe_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_widths),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_svg_frames),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_frame_names),
		cmocka_unit_test(test_profile),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
