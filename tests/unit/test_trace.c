/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Trace files through the writer and reader API (trace.h): records of every
 * kind come back bit for bit, symbols and stacks resolve as they did, and a
 * damaged file is refused or read up to its damage, never further, whatever
 * the damage: cut at every length, a bit flipped in every byte, forged
 * headers and payloads whose CRCs are right. make unit runs this binary
 * under ASan and UBSan too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>
#include <cmocka.h>

#include "ksyms.h"
#include "trace.h"
#include "rnd.h"

/* ---- helpers ---- */

enum rec_kind { REC_EVENT, REC_META, REC_SETTLE, REC_BEGIN, REC_TICK };

struct rec {
	enum rec_kind kind;
	union {
		struct kms_event e;
		struct kms_meta m;
	};
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static struct rec *recs_add(struct recs *r, enum rec_kind kind)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	r->v[r->n].kind = kind;
	return &r->v[r->n++];
}

static bool sink_event(void *ctx, struct kms_event *e)
{
	recs_add(ctx, REC_EVENT)->e = *e;
	return true;
}

static void sink_meta(void *ctx, const struct kms_meta *m)
{
	recs_add(ctx, REC_META)->m = *m;
}

static void sink_settle(void *ctx)
{
	recs_add(ctx, REC_SETTLE);
}

static void sink_begin(void *ctx)
{
	recs_add(ctx, REC_BEGIN);
}

static void sink_tick(void *ctx)
{
	recs_add(ctx, REC_TICK);
}

/* the records of r, replayed into got: replay's result */
static int replay(struct trace_reader *r, struct recs *got, char *why, size_t len)
{
	struct trace_sink sink = { sink_event, sink_meta, sink_settle, sink_begin, got,
				   sink_tick };

	return trace_reader__replay(r, &sink, why, len);
}

/* got begins with the first n records of want, bit for bit */
static void assert_same(const struct recs *got, const struct recs *want, size_t n)
{
	assert_true(got->n >= n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got->v[i].kind, want->v[i].kind);
		if (memcmp(&got->v[i].e, &want->v[i].e, sizeof(got->v[i].e)))
			fail_msg("record %zu of %zu differs", i, n);
	}
}

/* got is the first n records of want */
static void assert_prefix(const struct recs *got, const struct recs *want, size_t n)
{
	assert_int_equal(got->n, n);
	assert_same(got, want, n);
}

struct writer {
	char path[64];
	struct trace_writer *w;
	struct recs want;		/* what the reader must give back */
};

/* stack id i: i % (KMS_MAX_STACK + 1) frames; ids i % 7 == 3 cannot be read */
static int fake_stack(void *ctx, int id, __u64 *ips, int max)
{
	int n = id % (KMS_MAX_STACK + 1);

	if (id % 7 == 3)
		return -ENOENT;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		ips[i] = 0xffffffff81000000ULL + (__u64)id * 64 + i;
	return n;
}

/* the stack recorded for id: what fake_stack gives, empty when it fails */
static void assert_fake_stack(const struct trace_reader *r, int id)
{
	__u64 want[KMS_MAX_STACK], ips[KMS_MAX_STACK + 4];
	int n = fake_stack(NULL, id, want, KMS_MAX_STACK);

	if (n < 0)
		n = 0;
	assert_int_equal(trace_reader__stack(r, id, ips, KMS_MAX_STACK + 4), n);
	assert_memory_equal(ips, want, n * sizeof(ips[0]));
	if (n > 2)
		assert_int_equal(trace_reader__stack(r, id, ips, 2), 2);
}

static void writer_open(struct writer *t, const struct ksyms *k,
			int (*stack)(void *ctx, int id, __u64 *ips, int max), void *ctx)
{
	struct trace_writer_opts o = { .stack = stack, .stack_ctx = ctx, .ksyms = k };
	int fd;

	strcpy(t->path, "/tmp/kms-test-trace.XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	close(fd);
	memset(&t->want, 0, sizeof(t->want));
	assert_int_equal(trace_writer__open(&t->w, t->path, &o), 0);
}

static void put_event(struct writer *t, const struct kms_event *e)
{
	trace_writer__event(t->w, e);
	recs_add(&t->want, REC_EVENT)->e = *e;
}

static void put_meta(struct writer *t, const struct kms_meta *m)
{
	trace_writer__meta(t->w, m);
	recs_add(&t->want, REC_META)->m = *m;
}

static void put_settle(struct writer *t)
{
	trace_writer__settle(t->w);
	recs_add(&t->want, REC_SETTLE);
}

static void put_tick(struct writer *t)
{
	trace_writer__tick(t->w);
	recs_add(&t->want, REC_TICK);
}

static void put_begin(struct writer *t, const char *name)
{
	json_t *meta = json_pack("{s:s,s:i}", "test", name, "version", 1);

	assert_int_equal(trace_writer__begin(t->w, meta), 0);
	json_decref(meta);
	recs_add(&t->want, REC_BEGIN);
}

static void writer_close(struct writer *t)
{
	json_t *end = json_pack("{s:b}", "ok", 1);

	assert_int_equal(trace_writer__close(t->w, end), 0);
	json_decref(end);
	t->w = NULL;
}

static void writer_fini(struct writer *t)
{
	unlink(t->path);
	free(t->want.v);
}

static __u8 *read_file(const char *path, size_t *len)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	__u8 *p;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	p = malloc(st.st_size ? st.st_size : 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, st.st_size, f), st.st_size);
	fclose(f);
	*len = st.st_size;
	return p;
}

static struct ksyms *fixture_ksyms(void)
{
	const char *dir = getenv("KMS_UNIT_DATA");
	char path[4096];
	size_t len;
	__u8 *text;

	snprintf(path, sizeof(path), "%s/kallsyms.txt", dir ? dir : "tests/unit/data");
	text = read_file(path, &len);
	return ksyms__from_text((char *)text, len);
}

/* ---- round trips ---- */

/* a value of a field of width size: its extremes most of the time */
static __u64 extreme(unsigned int size, __u64 prev)
{
	__u64 max = size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;

	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return max;
	case 2: return max - 1;
	case 3: return 1ULL << (8 * size - 1);		/* the most negative */
	case 4: return (1ULL << (8 * size - 1)) - 1;	/* the most positive */
	case 5: return prev;				/* unchanged: not encoded */
	case 6: return (prev + (rnd() % 64) - 32) & max;
	default: return rnd() & max;
	}
}

#define SET(field, v) ((field) = (__typeof__(field))(v))

static void random_event(struct kms_event *e, const struct kms_event *prev)
{
	memset(e, 0, sizeof(*e));
	e->type = 1 + rnd() % (KMS_EV_NR_EVENTS - 1);
	SET(e->ctx, extreme(1, prev->ctx));
	SET(e->order, extreme(1, prev->order));
	SET(e->extra, extreme(1, prev->extra));
	SET(e->node, extreme(2, (__u16)prev->node));
	SET(e->cpu, extreme(2, prev->cpu));
	/* time jumps far backwards and forwards, or stands still */
	SET(e->ts, extreme(8, prev->ts));
	SET(e->ptr, extreme(8, prev->ptr));
	SET(e->site, extreme(8, prev->site));
	SET(e->obj, extreme(8, prev->obj));
	SET(e->bytes_req, extreme(4, prev->bytes_req));
	SET(e->bytes_alloc, extreme(4, prev->bytes_alloc));
	SET(e->gfp, extreme(4, prev->gfp));
	SET(e->pid, extreme(4, prev->pid));
	/* negative stack ids are none; positive ones are kept, small so the table stays small */
	SET(e->stack_id, rnd() % 4 ? -(int)(rnd() % 3) - 1 : (int)(rnd() % 200));
	if (rnd() % 16 == 0)
		e->stack_id = -2147483647 - 1;
	SET(e->pc, extreme(4, prev->pc));
}

/* an event drawn from the last one, written; it becomes the last one */
static void put_random_event(struct writer *t, struct kms_event *last)
{
	struct kms_event e;

	random_event(&e, last);
	put_event(t, &e);
	*last = e;
}

static void random_meta(struct kms_meta *m)
{
	__u8 *p = (__u8 *)m;

	for (size_t i = 0; i < sizeof(*m); i++)
		p[i] = rnd();
	m->type = KMS_EV_META_TASK + rnd() % (KMS_EV_META_LOSS - KMS_EV_META_TASK + 1);
	SET(m->ts, extreme(8, 0));
	/* names end within their field, as the BPF side writes them (the reader makes sure) */
	m->name[KMS_NAME_LEN - 1] = '\0';
}

static void test_roundtrip_extremes(void **state)
{
	struct kms_event prev = {}, e, bad;
	__u64 ips[KMS_MAX_STACK];
	struct trace_reader *r;
	const struct trace_read_info *info;
	struct recs got = {};
	struct writer t;
	struct kms_meta m;
	json_t *want_meta;
	char why[192];

	writer_open(&t, NULL, fake_stack, NULL);
	/* calibration records, before the trace begins */
	for (int i = 0; i < 100; i++)
		put_random_event(&t, &prev);
	put_begin(&t, "extremes");
	for (int i = 0; i < 40000; i++) {
		switch (rnd() % 64) {
		case 0:
			random_meta(&m);
			put_meta(&t, &m);
			break;
		case 1:
			put_settle(&t);
			break;
		case 2:
			put_tick(&t);
			break;
		case 3:
			/* a block ends anywhere: the codec starts again in the next */
			assert_int_equal(trace_writer__flush(t.w), 0);
			break;
		default:
			put_random_event(&t, &prev);
		}
	}
	/* every type, every field at its maximum, then at zero */
	for (int type = 1; type < KMS_EV_NR_EVENTS; type++) {
		memset(&e, 0xff, sizeof(e));
		e.type = type;
		put_event(&t, &e);
		memset(&e, 0, sizeof(e));
		e.type = type;
		put_event(&t, &e);
	}
	/* not events: the writer keeps none of them */
	for (int type = KMS_EV_NR_EVENTS; type < 256; type += 17) {
		bad = prev;
		bad.type = type;
		trace_writer__event(t.w, &bad);
	}
	bad.type = KMS_EV_NONE;
	trace_writer__event(t.w, &bad);
	/* nor metadata records of another type */
	for (int type = 0; type < 256; type++) {
		if (type >= KMS_EV_META_TASK && type <= KMS_EV_META_LOSS)
			continue;
		random_meta(&m);
		m.type = type;
		trace_writer__meta(t.w, &m);
	}
	assert_int_equal(trace_writer__stats(t.w)->records, t.want.n);
	writer_close(&t);

	assert_int_equal(trace_reader__open(&r, t.path, why, sizeof(why)), 0);
	info = trace_reader__info(r);
	assert_true(info->ended);
	assert_string_equal(info->cut, "");
	assert_int_equal(info->records, t.want.n);
	/* the 1 MiB blocks were sealed on their own too */
	assert_true(info->data_blocks > 64);
	want_meta = json_pack("{s:s,s:i}", "test", "extremes", "version", 1);
	assert_true(json_equal(trace_reader__meta(r), want_meta));
	json_decref(want_meta);
	assert_true(json_is_true(json_object_get(trace_reader__end(r), "ok")));
	assert_int_equal(replay(r, &got, why, sizeof(why)), 0);
	assert_prefix(&got, &t.want, t.want.n);
	/* the stacks the events refer to, once each; no others */
	assert_int_equal(info->stacks, 200);
	for (int id = 0; id < 200; id++)
		assert_fake_stack(r, id);
	assert_int_equal(trace_reader__stack(r, -1, ips, KMS_MAX_STACK), -ENOENT);
	assert_int_equal(trace_reader__stack(r, -2147483647 - 1, ips, KMS_MAX_STACK), -ENOENT);
	assert_int_equal(trace_reader__stack(r, 200, ips, KMS_MAX_STACK), -ENOENT);
	trace_reader__free(r);
	free(got.v);
	writer_fini(&t);
}

/* more records before the trace begins than one ordinary block holds */
static void test_long_calibration(void **state)
{
	struct kms_event prev = {};
	struct trace_reader *r;
	struct recs got = {};
	struct writer t;
	char why[192];

	writer_open(&t, NULL, NULL, NULL);
	for (int i = 0; i < 100000; i++)
		put_random_event(&t, &prev);
	assert_true(trace_writer__stats(t.w)->records == 100000);
	put_begin(&t, "calibration");
	put_random_event(&t, &prev);
	writer_close(&t);
	assert_int_equal(trace_reader__open(&r, t.path, why, sizeof(why)), 0);
	assert_true(trace_reader__info(r)->ended);
	/* the calibration in a block of more than 1 MiB, the trace in the next */
	assert_true(trace_reader__info(r)->raw_bytes > (1u << 20));
	assert_int_equal(trace_reader__info(r)->data_blocks, 2);
	assert_int_equal(replay(r, &got, why, sizeof(why)), 0);
	assert_prefix(&got, &t.want, t.want.n);
	trace_reader__free(r);
	free(got.v);
	writer_fini(&t);
}

/* a sink that stops at its tenth event */
/* sink_stop() returns false at this many records */
static size_t stop_at;

static bool sink_stop(void *ctx, struct kms_event *e)
{
	struct recs *r = ctx;

	recs_add(r, REC_EVENT)->e = *e;
	return r->n < stop_at;
}

/*
 * A sink that stops reading ends the replay there, early or late in a file
 * of many chunks of the decoding thread (trace_read.c, REPLAY_CHUNK): it gets
 * the records up to where it stopped, in order, and nothing after; a sink that
 * does not stop gets them all.
 */
static void test_replay_stops(void **state)
{
	static const size_t at[] = { 10, 1023, 1024, 5000, 9000, 20000, 20001, 30000 };
	struct trace_sink sink = { sink_stop, sink_meta, sink_settle, sink_begin };
	struct kms_event e = { .type = KMS_EV_KMALLOC };
	struct trace_reader *r;
	struct writer t;
	char why[192];

	writer_open(&t, NULL, fake_stack, NULL);
	put_begin(&t, "stop");
	for (int i = 0; i < 20000; i++) {
		e.ts = i;
		e.ptr = 0xffff888000000000ULL + 64 * (i % 777);
		put_event(&t, &e);
	}
	writer_close(&t);
	assert_int_equal(trace_reader__open(&r, t.path, why, sizeof(why)), 0);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct recs got = {};

		stop_at = at[i];
		sink.ctx = &got;
		assert_int_equal(trace_reader__replay(r, &sink, why, sizeof(why)), 0);
		/* got counts the BEGIN mark too, as want does */
		assert_prefix(&got, &t.want, at[i] < t.want.n ? at[i] : t.want.n);
		free(got.v);
	}
	trace_reader__free(r);
	writer_fini(&t);
}

/* a name that fills its field reads back ended: consumers take it as a C string */
static void test_meta_name_ends(void **state)
{
	struct trace_sink sink = { sink_event, sink_meta, sink_settle, sink_begin };
	struct kms_meta m = { .type = KMS_EV_META_CACHE, .key = 7 };
	struct trace_reader *r;
	struct recs got = {};
	struct writer t;
	char why[192];

	memset(m.name, 'x', sizeof(m.name));
	writer_open(&t, NULL, fake_stack, NULL);
	put_begin(&t, "name");
	trace_writer__meta(t.w, &m);
	writer_close(&t);
	assert_int_equal(trace_reader__open(&r, t.path, why, sizeof(why)), 0);
	sink.ctx = &got;
	assert_int_equal(trace_reader__replay(r, &sink, why, sizeof(why)), 0);
	assert_int_equal(got.n, 2);	/* BEGIN, then the cache */
	assert_int_equal(got.v[1].kind, REC_META);
	assert_int_equal(strlen(got.v[1].m.name), KMS_NAME_LEN - 1);
	trace_reader__free(r);
	free(got.v);
	writer_fini(&t);
}

/* addresses around every symbol of the fixture, and past the ends of its regions */
static size_t probe_addrs(const struct ksyms *k, __u64 *out, size_t max)
{
	static const __u64 extra[] = {
		0x1000, 0xffffffff80ffffffULL,		/* below the first symbol */
		0xffffffff82276507ULL, 0xffffffff82276508ULL,	/* up to and at _etext */
		0xffffffff82400010ULL,			/* data */
		0xffffffffa0003000ULL, 0xffffffffa00037ffULL,	/* [bpf]'s last, its tail */
		0xffffffffa0003800ULL, 0xffffffffa0100000ULL,	/* ... and past it */
		0xffffffffc0a01fffULL, 0xffffffffc0a02000ULL,	/* up to a module's data */
		0xffffffffc0a05fffULL, 0xffffffffc0a06000ULL,	/* [other]'s tail, page bound */
		0xffffffffc0a083ffULL, 0xffffffffc0a08400ULL,	/* [third]: the last of all */
		0xffffffffc0b00000ULL, 0xfffffffffffffffeULL, 0xffffffffffffffffULL,
	};
	char line[512];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		out[n++] = extra[i];
	/* each symbol's address, and the addresses next to it, through the same lines */
	for (__u64 a = 0xffffffff81000000ULL; n + 3 <= max && a; ) {
		unsigned long key;
		int len = ksyms__export(k, a, &key, line, sizeof(line));
		const char *nl = strchr(line, '\n');

		assert_true(len > 0 && nl);
		/* the boundary line: the next symbol's address */
		if (!nl[1])
			break;
		a = strtoull(nl + 1, NULL, 16);
		out[n++] = a - 1;
		out[n++] = a;
		out[n++] = a + 1;
	}
	return n;
}

/* addresses as stack frames: stack id j holds frames[8 j .. 8 j + 7] */
struct frames {
	const __u64 *a;
	int n;
};

static int frames_stack(void *ctx, int id, __u64 *ips, int max)
{
	const struct frames *f = ctx;
	int n = 0;

	for (int i = 8 * id; i < f->n && n < 8 && n < max; i++)
		ips[n++] = f->a[i];
	return n;
}

static void test_symbols(void **state)
{
	struct ksyms *k = fixture_ksyms(), *copy;
	struct kms_event e = { .type = KMS_EV_KMALLOC, .stack_id = -1 };
	__u64 addrs[512], odd[256], ips[8];
	struct frames f = { odd };
	struct trace_reader *r;
	size_t n, resolved = 0;
	struct writer t;
	char why[192], a[256], b[256];
	int nstacks;

	assert_non_null(k);
	n = probe_addrs(k, addrs, 512);
	assert_true(n > 150);
	writer_open(&t, k, frames_stack, &f);
	put_begin(&t, "symbols");
	/* every other address as a call site, the others as stack frames */
	for (size_t i = 0; i < n; i++) {
		if (i & 1) {
			odd[f.n++] = addrs[i];
			continue;
		}
		e.site = addrs[i];
		put_event(&t, &e);
	}
	e.site = 0;
	nstacks = (f.n + 7) / 8;
	for (int id = 0; id < nstacks; id++) {
		e.stack_id = id;
		put_event(&t, &e);
		if (id == nstacks / 2)
			assert_int_equal(trace_writer__flush(t.w), 0);
	}
	writer_close(&t);

	assert_int_equal(trace_reader__open(&r, t.path, why, sizeof(why)), 0);
	assert_int_equal(trace_reader__info(r)->stacks, nstacks);
	copy = trace_reader__ksyms(r);
	assert_non_null(copy);
	for (size_t i = 0; i < n; i++) {
		ksyms__format(k, addrs[i], a, sizeof(a));
		ksyms__format(copy, addrs[i], b, sizeof(b));
		if (strcmp(a, b))
			fail_msg("0x%llx: %s, read back as %s", (unsigned long long)addrs[i], a, b);
		resolved += a[0] != '0';
	}
	/* both kinds were tried: addresses that resolve and addresses that do not */
	assert_true(resolved > 100 && resolved < n);
	for (int id = 0; id < nstacks; id++) {
		int want = f.n - 8 * id < 8 ? f.n - 8 * id : 8;

		assert_int_equal(trace_reader__stack(r, id, ips, 8), want);
		assert_memory_equal(ips, odd + 8 * id, want * sizeof(ips[0]));
	}
	trace_reader__free(r);
	writer_fini(&t);
	ksyms__free(k);
}

/* ---- damaged files ---- */

struct block {
	size_t off, end;
	struct kms_block_header h;
};

/* a small file of every block type, and what it holds */
struct small {
	__u8 *p;
	size_t len;
	struct block b[16];
	int nb;
	struct recs want;
	__u64 records;			/* in DATA blocks */
	__u8 *scratch;			/* room for a damaged copy: 2 len + 4096 bytes */
};

static void small_make(struct small *s)
{
	static const __u64 sites[] = {
		0xffffffff816475a8ULL, 0xffffffffc0a00010ULL, 0xffffffff81e8ec10ULL,
		0xffffffffa0001810ULL, 0xffffffff81638fa4ULL, 0xffffffffc0a06404ULL,
	};
	struct ksyms *k = fixture_ksyms();
	struct kms_event e = { .type = KMS_EV_KMALLOC, .cpu = 1, .pid = 42, .ptr = 0x1000 };
	struct kms_meta m = { .type = KMS_EV_META_TASK, .key = 42, .name = "trigger" };
	struct writer t;
	size_t off;

	memset(s, 0, sizeof(*s));
	writer_open(&t, k, fake_stack, NULL);
	put_event(&t, &e);
	put_begin(&t, "small");
	put_meta(&t, &m);
	for (int blk = 0; blk < 3; blk++) {
		for (int i = 0; i < 8; i++) {
			e.ts += 1000;
			e.ptr += 64;
			/* new symbols in every block: each has its SYMS block */
			e.site = sites[2 * blk + (i & 1)];
			e.stack_id = i < 4 ? blk * 4 + i : -1;
			put_event(&t, &e);
		}
		if (blk == 1)
			put_settle(&t);
		assert_int_equal(trace_writer__flush(t.w), 0);
	}
	writer_close(&t);
	s->p = read_file(t.path, &s->len);
	s->want = t.want;
	unlink(t.path);
	ksyms__free(k);
	for (off = sizeof(struct kms_trace_header); off < s->len; s->nb++) {
		struct block *b = &s->b[s->nb];

		assert_true(s->nb < 16);
		memcpy(&b->h, s->p + off, sizeof(b->h));
		b->off = off;
		b->end = off + sizeof(b->h) + b->h.stored_len;
		if (b->h.type == KMS_BLK_DATA)
			s->records += b->h.count;
		off = b->end;
	}
	assert_int_equal(off, s->len);
	/* META, then (SYMS, STACKS, DATA) three times, END */
	assert_int_equal(s->nb, 11);
	assert_int_equal(s->b[0].h.type, KMS_BLK_META);
	assert_int_equal(s->b[10].h.type, KMS_BLK_END);
	assert_int_equal(s->records, s->want.n);
	s->scratch = malloc(2 * s->len + 4096);
	assert_non_null(s->scratch);
}

static void small_free(struct small *s)
{
	free(s->scratch);
	free(s->p);
	free(s->want.v);
}

/* records in the DATA blocks before block nb */
static __u64 records_before(const struct small *s, int nb)
{
	__u64 n = 0;

	for (int i = 0; i < nb; i++)
		if (s->b[i].h.type == KMS_BLK_DATA)
			n += s->b[i].h.count;
	return n;
}

/*
 * Read len bytes of p (copied to a buffer of exactly that size, so an
 * overread shows under ASan). whole: the blocks that must be read, -1 when
 * the file must be refused. Checks that the reader reads exactly those, and
 * replays exactly their records.
 */
static void expect_read(const struct small *s, const __u8 *p, size_t len, int whole,
			const char *what)
{
	__u8 *copy = malloc(len ? len : 1);
	const struct trace_read_info *info;
	struct trace_reader *r = NULL;
	struct recs got = {};
	char why[192] = "unset";
	int err;

	assert_non_null(copy);
	memcpy(copy, p, len);
	err = trace_reader__open_mem(&r, copy, len, why, sizeof(why));
	if (whole < 1) {
		if (!err)
			fail_msg("%s: opened, %s expected", what, "a refusal");
		assert_null(r);
		/* one clear line */
		assert_true(why[0] && !strchr(why, '\n'));
		free(copy);
		return;
	}
	if (err)
		fail_msg("%s: refused (%s), %d blocks expected", what, why, whole);
	info = trace_reader__info(r);
	if (info->blocks != (__u64)whole)
		fail_msg("%s: %llu blocks read, %d expected (%s)", what,
			 (unsigned long long)info->blocks, whole, info->cut);
	assert_int_equal(info->ended, whole == s->nb);
	assert_int_equal(info->records, records_before(s, whole));
	if (whole < s->nb)
		assert_true(info->cut[0] && !strchr(info->cut, '\n'));
	assert_int_equal(replay(r, &got, why, sizeof(why)), 0);
	assert_prefix(&got, &s->want, info->records);
	trace_reader__free(r);
	free(got.v);
	free(copy);
}

/*
 * The same for a DATA block whose payload does not decode: a reader checks
 * its CRC when it opens the file and decodes it when it replays. The file
 * opens whole; replay delivers the records before block nb and stops there.
 */
static void expect_replay_fails(const struct small *s, const __u8 *p, size_t len, int nb,
				const char *what)
{
	struct trace_reader *r;
	struct recs got = {};
	char why[192], want[32];

	assert_int_equal(trace_reader__open_mem(&r, p, len, why, sizeof(why)), 0);
	assert_int_equal(trace_reader__info(r)->blocks, s->nb);
	if (replay(r, &got, why, sizeof(why)) != -EINVAL)
		fail_msg("%s: replayed", what);
	snprintf(want, sizeof(want), "block %d", nb);
	assert_non_null(strstr(why, want));
	assert_prefix(&got, &s->want, records_before(s, nb));
	trace_reader__free(r);
	free(got.v);
}

/* the block that holds byte off */
static int block_of(const struct small *s, size_t off)
{
	for (int i = 0; i < s->nb; i++)
		if (off < s->b[i].end)
			return i;
	return s->nb;
}

static void test_truncated_everywhere(void **state)
{
	struct small s;
	char what[64];

	small_make(&s);
	for (size_t len = 0; len <= s.len; len++) {
		/* the blocks whole in len bytes; none when the META block is not */
		int whole = len == s.len ? s.nb : block_of(&s, len);

		snprintf(what, sizeof(what), "cut at %zu of %zu", len, s.len);
		expect_read(&s, s.p, len, whole ? whole : -1, what);
	}
	small_free(&s);
}

static void test_bit_flips_everywhere(void **state)
{
	struct small s;
	char what[64];

	small_make(&s);
	for (size_t off = 0; off < s.len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			int b = block_of(&s, off), whole;
			size_t in = b < s.nb ? off - s.b[b].off : 0;

			if (off < sizeof(struct kms_trace_header))
				/* the creation time is not checked; the rest is */
				whole = off >= offsetof(struct kms_trace_header, created) ? s.nb : -1;
			else if (in >= offsetof(struct kms_block_header, pad) &&
				 in < sizeof(struct kms_block_header))
				whole = s.nb;	/* padding: no CRC covers it, no reader reads it */
			else
				whole = b ? b : -1;
			s.p[off] ^= 1u << bit;
			snprintf(what, sizeof(what), "bit %d of byte %zu flipped", bit, off);
			expect_read(&s, s.p, s.len, whole, what);
			s.p[off] ^= 1u << bit;
		}
	}
	small_free(&s);
}

/* the file header with a field changed */
static void test_bad_file_header(void **state)
{
	struct kms_trace_header h;
	struct small s;
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	struct { size_t off; __u32 v; const char *what; } bad[] = {
		{ offsetof(struct kms_trace_header, magic), 0x4d4b5346, "wrong magic" },
		{ offsetof(struct kms_trace_header, version), KMS_TRACE_VERSION + 1, "newer version" },
		{ offsetof(struct kms_trace_header, version), 0, "version 0" },
		{ offsetof(struct kms_trace_header, byte_order), __builtin_bswap32(KMS_TRACE_BOM),
		  "other byte order" },
		{ offsetof(struct kms_trace_header, abi), KMS_ABI_VERSION + 1, "other ABI" },
		{ offsetof(struct kms_trace_header, header_size), 64, "longer header" },
		{ offsetof(struct kms_trace_header, header_size), 0xffffffff, "absurd header" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(p, s.p, s.len);
		memcpy(p + bad[i].off, &bad[i].v, sizeof(bad[i].v));
		expect_read(&s, p, s.len, -1, bad[i].what);
	}
	/* the intact header reads */
	memcpy(&h, s.p, sizeof(h));
	assert_memory_equal(h.magic, KMS_TRACE_MAGIC, 8);
	expect_read(&s, s.p, s.len, s.nb, "intact");
	small_free(&s);
}

/* block i of a copy of s given header h, its header CRC made right again */
static void set_header(__u8 *p, const struct block *b, struct kms_block_header h)
{
	h.hcrc = crc32(0, (const void *)&h, offsetof(struct kms_block_header, hcrc));
	memcpy(p + b->off, &h, sizeof(h));
}

/* headers whose CRC is right but whose fields are absurd: the reader stops at them */
static void test_absurd_headers(void **state)
{
	struct small s;
	__u8 *p;
	char what[96];

	small_make(&s);
	p = s.scratch;
	for (int i = 0; i < s.nb; i++) {
		const struct kms_block_header o = s.b[i].h;
		struct kms_block_header bad[] = {
			o, o, o, o, o, o, o, o, o, o,
		};
		int nbad = sizeof(bad) / sizeof(bad[0]);

		bad[0].stored_len = 0xffffffff;
		bad[1].stored_len = KMS_BLOCK_MAX;	/* beyond the file */
		bad[2].stored_len = o.stored_len + 1;	/* the next header's first byte */
		bad[3].raw_len = 0xffffffff;
		bad[4].raw_len = o.raw_len + 1;
		bad[5].raw_len = o.raw_len - 1;
		bad[6].type = 0;
		bad[7].type = KMS_BLK_NR;
		bad[8].codec = 7;
		bad[9].seq = o.seq + 1;
		for (int j = 0; j < nbad; j++) {
			memcpy(p, s.p, s.len);
			set_header(p, &s.b[i], bad[j]);
			snprintf(what, sizeof(what), "block %d, forged header %d", i, j);
			if (o.type == KMS_BLK_DATA && bad[j].raw_len != o.raw_len &&
			    bad[j].raw_len <= KMS_BLOCK_MAX)
				expect_replay_fails(&s, p, s.len, i, what);
			else
				expect_read(&s, p, s.len, i ? i : -1, what);
		}
	}
	small_free(&s);
}

/* two blocks swapped, a block repeated, a block left out: the reader stops there */
static void test_blocks_out_of_order(void **state)
{
	struct small s;
	char what[64];
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	for (int i = 0; i + 1 < s.nb; i++) {
		const struct block *x = &s.b[i], *y = &s.b[i + 1];
		size_t xl = x->end - x->off, yl = y->end - y->off, n;

		memcpy(p, s.p, s.len);
		memcpy(p + x->off, s.p + y->off, yl);
		memcpy(p + x->off + yl, s.p + x->off, xl);
		snprintf(what, sizeof(what), "blocks %d and %d swapped", i, i + 1);
		expect_read(&s, p, s.len, i ? i : -1, what);

		/* block i twice */
		memcpy(p, s.p, y->off);
		memcpy(p + y->off, s.p + x->off, xl);
		memcpy(p + y->off + xl, s.p + y->off, s.len - y->off);
		snprintf(what, sizeof(what), "block %d repeated", i);
		expect_read(&s, p, s.len + xl, i + 1, what);

		/* block i + 1 left out */
		memcpy(p, s.p, y->off);
		n = s.len - y->end;
		memcpy(p + y->off, s.p + y->end, n);
		snprintf(what, sizeof(what), "block %d left out", i + 1);
		expect_read(&s, p, y->off + n, i + 1, what);
	}
	small_free(&s);
}

/* a block with a right CRC and any payload, appended at p + off; returns the new end */
static size_t forge(__u8 *p, size_t off, __u16 type, __u16 codec, __u64 seq, __u32 count,
		    __u32 raw_len, const void *payload, __u32 len)
{
	struct kms_block_header h = {
		.magic = KMS_BLOCK_MAGIC, .type = type, .codec = codec, .seq = seq,
		.count = count, .raw_len = raw_len, .stored_len = len,
	};

	h.crc = crc32(0, payload, len);
	h.hcrc = crc32(0, (const void *)&h, offsetof(struct kms_block_header, hcrc));
	memcpy(p + off, &h, sizeof(h));
	memcpy(p + off + sizeof(h), payload, len);
	return off + sizeof(h) + len;
}

static void test_forged_meta_and_end(void **state)
{
	static const char *not_objects[] = { "not JSON", "[1,2]", "\"text\"", "{\"a\":", "" };
	struct trace_reader *r;
	struct small s;
	char why[192];
	size_t end;
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
		const char *text = not_objects[i];

		/* as the META block: the file is refused, with one line */
		memcpy(p, s.p, sizeof(struct kms_trace_header));
		end = forge(p, sizeof(struct kms_trace_header), KMS_BLK_META, KMS_CODEC_NONE, 0, 1,
			    strlen(text), text, strlen(text));
		memcpy(p + end, s.p + s.b[1].off, s.len - s.b[1].off);
		expect_read(&s, p, end + s.len - s.b[1].off, -1, text);
		assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), -EINVAL);
		assert_non_null(strstr(why, "JSON"));

		/* as the END block: every block before it is read, the file is cut short */
		memcpy(p, s.p, s.b[10].off);
		end = forge(p, s.b[10].off, KMS_BLK_END, KMS_CODEC_NONE, 10, 1, strlen(text), text,
			    strlen(text));
		expect_read(&s, p, end, 10, text);
	}
	/* a second META block: the first one stays, reading stops there */
	end = s.b[1].off;
	memcpy(p, s.p, end);
	end = forge(p, end, KMS_BLK_META, KMS_CODEC_NONE, 1, 1, 2, "{}", 2);
	memcpy(p + end, s.p + s.b[1].off, s.len - s.b[1].off);
	expect_read(&s, p, end + s.len - s.b[1].off, 1, "a second META");
	assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
	assert_string_equal(json_string_value(json_object_get(trace_reader__meta(r), "test")),
			    "small");
	trace_reader__free(r);
	/* no META block at all: a DATA block first */
	memcpy(p, s.p, sizeof(struct kms_trace_header));
	end = forge(p, sizeof(struct kms_trace_header), KMS_BLK_DATA, KMS_CODEC_NONE, 0, 1, 1,
		    "\xf0", 1);
	expect_read(&s, p, end, -1, "DATA first");
	/* bytes after the END block: the file is read, and they are named */
	memcpy(p, s.p, s.len);
	memcpy(p + s.len, "garbage", 7);
	expect_read(&s, p, s.len + 7, s.nb, "bytes after END");
	assert_int_equal(trace_reader__open_mem(&r, p, s.len + 7, why, sizeof(why)), 0);
	assert_string_equal(trace_reader__info(r)->cut, "7 bytes after the end block ignored");
	trace_reader__free(r);
	/* only the file header */
	expect_read(&s, s.p, sizeof(struct kms_trace_header), -1, "header only");
	small_free(&s);
}

/*
 * DATA blocks that pass every check of their header and CRC but whose
 * records do not decode: the file opens, replay delivers the records before
 * the bad one and says which block is bad.
 */
static void test_forged_data(void **state)
{
	static const struct {
		const char *bytes;
		__u32 len, count;
		int good;		/* records before the bad one */
	} bad[] = {
		{ "\x00", 1, 1, 0 },			/* KMS_EV_NONE */
		{ "\xf0\xee", 2, 2, 1 },		/* unknown kind */
		{ "\xf0\x12", 2, 2, 1 },		/* KMS_EV_NR_EVENTS */
		{ "\x01", 1, 1, 0 },			/* no mask */
		{ "\x01\x80", 2, 1, 0 },		/* mask cut short */
		{ "\x01\x80\x80\x02", 4, 1, 0 },	/* a field beyond the last */
		{ "\x01\x01", 2, 1, 0 },		/* a field announced, missing */
		{ "\x01\x01\x81", 3, 1, 0 },		/* a field cut short */
		{ "\x01\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13, 1, 0 },
							/* a varint past 64 bits */
		{ "\x40\x40\x00", 3, 1, 0 },		/* a metadata record cut short */
		{ "\xf1\xf0", 2, 3, 2 },		/* fewer records than announced */
		{ "\xf1\xf0\xf0", 3, 2, 2 },		/* more */
		{ "\xf1\x01\x00\xf0", 4, 2, 2 },	/* more, after an event */
	};
	__u8 meta_bad[1 + sizeof(struct kms_meta)] = { KMS_EV_META_TASK, KMS_EV_META_CACHE };
	__u8 meta_good[1 + sizeof(struct kms_meta)] = { KMS_EV_META_LOSS, KMS_EV_META_LOSS };
	struct trace_reader *r;
	struct recs got;
	struct small s;
	char why[192];
	size_t end, base;
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	base = s.b[10].off;	/* the file up to its END block */
	memcpy(p, s.p, base);
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]) + 1; i++) {
		const void *bytes;
		__u32 len, count;
		int good;

		if (i < sizeof(bad) / sizeof(bad[0])) {
			bytes = bad[i].bytes;
			len = bad[i].len;
			count = bad[i].count;
			good = bad[i].good;
		} else {
			/* a metadata record whose type disagrees with its kind byte; or agrees */
			bytes = i == sizeof(bad) / sizeof(bad[0]) ? meta_bad : meta_good;
			len = sizeof(meta_bad);
			count = 1;
			good = bytes == meta_good;
		}
		end = forge(p, base, KMS_BLK_DATA, KMS_CODEC_NONE, 10, count, len, bytes, len);
		assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
		assert_int_equal(trace_reader__info(r)->records, s.records + count);
		memset(&got, 0, sizeof(got));
		why[0] = '\0';
		if (bytes == meta_good) {
			assert_int_equal(replay(r, &got, why, sizeof(why)), 0);
			assert_int_equal(got.n, s.records + 1);
			assert_int_equal(got.v[s.records].kind, REC_META);
		} else {
			if (replay(r, &got, why, sizeof(why)) != -EINVAL)
				fail_msg("forged DATA %zu replayed", i);
			assert_non_null(strstr(why, "block 10"));
			if (got.n != s.records + good)
				fail_msg("forged DATA %zu: %zu records, %llu expected", i, got.n,
					 (unsigned long long)s.records + good);
		}
		assert_same(&got, &s.want, s.records);
		trace_reader__free(r);
		free(got.v);
	}
	small_free(&s);
}

#define BYTES(x) { x, sizeof(x) - 1 }

/* stacks and symbols blocks that pass their CRC but hold nonsense */
static void test_forged_stacks_and_syms(void **state)
{
	static const __u32 stacks[][4] = {
		{ 1, KMS_MAX_STACK + 1, 0, 0 },	/* too many frames */
		{ 1, 2, 0, 0 },			/* frames cut short */
		{ 0x80000000u, 0, 0, 0 },	/* a negative id */
		{ 1, 0, 7, 0 },			/* trailing bytes */
	};
	static const struct { const char *p; size_t len; } syms[] = {
		BYTES(""), BYTES("\n\n\n"), BYTES("zzz"), BYTES("ffffffff81000000"),
		BYTES("ffffffff81000000 T"), BYTES("ffffffff81000000 T \t["),
		BYTES("0000000000000000 T zero\n"), BYTES("ffffffff81000000 T a\0b\n"),
		BYTES("ffffffffffffffffffffffffffff T long\n"), BYTES("ffffffff81000000 T \n"),
	};
	struct trace_reader *r;
	struct small s;
	char why[192], name[64];
	size_t end, base;
	__u64 ip;
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	base = s.b[1].off;	/* after the META block */
	memcpy(p, s.p, base);
	for (size_t i = 0; i < sizeof(stacks) / sizeof(stacks[0]); i++) {
		end = forge(p, base, KMS_BLK_STACKS, KMS_CODEC_NONE, 1, 1, sizeof(stacks[i]),
			    stacks[i], sizeof(stacks[i]));
		expect_read(&s, p, end, 1, "forged stacks");
	}
	/* two stacks announced, one there: the one there is not kept either */
	end = forge(p, base, KMS_BLK_STACKS, KMS_CODEC_NONE, 1, 2, 8, stacks[3], 8);
	expect_read(&s, p, end, 1, "stacks announced, missing");
	assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
	assert_int_equal(trace_reader__stack(r, 1, &ip, 1), -ENOENT);
	trace_reader__free(r);
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		end = forge(p, base, KMS_BLK_SYMS, KMS_CODEC_NONE, 1, 1, syms[i].len, syms[i].p,
			    syms[i].len);
		assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
		assert_int_equal(trace_reader__info(r)->blocks, 2);
		/* whatever the symbols are, they answer */
		ksyms__format(trace_reader__ksyms(r), 0xffffffff81000010ULL, name, sizeof(name));
		trace_reader__free(r);
	}
	small_free(&s);
}

/*
 * What a reader keeps is capped: a file whose blocks decode into more symbol
 * text or more distinct stacks than any recorder writes is cut at the block
 * that passes the cap, and what came before still reads.
 */
static void test_capped_syms_and_stacks(void **state)
{
	const size_t nstacks = (1u << 20) + 1, raw = KMS_BLOCK_MAX;
	size_t base, end, zlen = ZSTD_compressBound(raw);
	__u32 *ids = calloc(nstacks, 2 * sizeof(__u32));
	char *text = malloc(raw), why[192];
	struct trace_reader *r;
	struct small s;
	__u8 *p, *z = malloc(zlen);

	assert_true(ids && text && z);
	small_make(&s);
	base = s.b[1].off;	/* after the META block */
	/* the stacks: 2^20 distinct ids of no frames in one block, then one more */
	for (size_t i = 0; i < nstacks; i++)
		ids[2 * i] = i;
	p = malloc(base + 3 * sizeof(struct kms_block_header) + nstacks * 8 + 64);
	assert_non_null(p);
	memcpy(p, s.p, base);
	end = forge(p, base, KMS_BLK_STACKS, KMS_CODEC_NONE, 1, nstacks - 1, (nstacks - 1) * 8,
		    ids, (nstacks - 1) * 8);
	/* a known id passes the cap; the new one does not */
	end = forge(p, end, KMS_BLK_STACKS, KMS_CODEC_NONE, 2, 1, 8, &ids[0], 8);
	end = forge(p, end, KMS_BLK_STACKS, KMS_CODEC_NONE, 3, 1, 8, &ids[2 * (nstacks - 1)], 8);
	assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
	assert_int_equal(trace_reader__info(r)->blocks, 3);
	assert_non_null(strstr(trace_reader__info(r)->cut, "distinct stacks"));
	trace_reader__free(r);
	free(p);
	/* the symbols: full blocks of one repeated line, compressed, until past 256 MiB */
	for (size_t i = 0; i < raw; i += 32)
		memcpy(text + i, "ffffffff81000000 T some_symbol\n", 32);
	zlen = ZSTD_compress(z, zlen, text, raw, 1);
	assert_false(ZSTD_isError(zlen));
	p = malloc(base + 20 * (sizeof(struct kms_block_header) + zlen));
	assert_non_null(p);
	memcpy(p, s.p, base);
	end = base;
	for (int i = 0; i < 17; i++)
		end = forge(p, end, KMS_BLK_SYMS, KMS_CODEC_ZSTD, 1 + i, raw / 32, raw, z, zlen);
	assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
	/* 16 blocks of 16 MiB make the 256 MiB allowed: the 17th is cut */
	assert_int_equal(trace_reader__info(r)->blocks, 17);
	assert_non_null(strstr(trace_reader__info(r)->cut, "symbols exceed"));
	trace_reader__free(r);
	free(p);
	free(z);
	free(text);
	free(ids);
	small_free(&s);
}

/* a zstd block whose payload decodes to nothing */
static void test_empty_payloads(void **state)
{
	/* the zstd frame of no bytes (zstd -c </dev/null) */
	static const __u8 empty_zstd[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00, 0x01, 0x00, 0x00,
					   0x99, 0xe9, 0xd8, 0x51 };
	static const __u16 types[] = { KMS_BLK_SYMS, KMS_BLK_STACKS, KMS_BLK_DATA };
	struct trace_reader *r;
	struct recs got = {};
	struct small s;
	char why[192];
	size_t end;
	__u8 *p;

	small_make(&s);
	p = s.scratch;
	memcpy(p, s.p, s.b[1].off);
	end = s.b[1].off;
	for (__u64 i = 0; i < 3; i++)
		for (__u16 codec = KMS_CODEC_NONE; codec <= KMS_CODEC_ZSTD; codec++)
			end = forge(p, end, types[i], codec, 1 + 2 * i + codec, 0, 0,
				    empty_zstd, codec ? sizeof(empty_zstd) : 0);
	assert_int_equal(trace_reader__open_mem(&r, p, end, why, sizeof(why)), 0);
	if (trace_reader__info(r)->blocks != 7)
		fail_msg("%s", trace_reader__info(r)->cut);
	assert_int_equal(trace_reader__info(r)->data_blocks, 2);
	assert_int_equal(replay(r, &got, why, sizeof(why)), 0);
	assert_int_equal(got.n, 0);
	trace_reader__free(r);
	small_free(&s);
}

static void test_files(void **state)
{
	struct trace_reader *r = (void *)1;
	char path[] = "/tmp/kms-test-trace.XXXXXX", why[192];
	struct small s;
	FILE *f;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	/* empty */
	assert_int_equal(trace_reader__open(&r, path, why, sizeof(why)), -EINVAL);
	assert_null(r);
	assert_non_null(strstr(why, "not a kmemscope trace"));
	/* the small file, whole and cut short */
	small_make(&s);
	for (int cut = 0; cut < 2; cut++) {
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(s.p, 1, s.len - cut * 10, f), s.len - cut * 10);
		fclose(f);
		assert_int_equal(trace_reader__open(&r, path, why, sizeof(why)), 0);
		assert_int_equal(trace_reader__info(r)->ended, !cut);
		assert_int_equal(trace_reader__info(r)->blocks, s.nb - cut);
		trace_reader__free(r);
	}
	small_free(&s);
	unlink(path);
	assert_int_equal(trace_reader__open(&r, path, why, sizeof(why)), -ENOENT);
	assert_int_equal(trace_reader__open(&r, "/tmp", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "not a regular file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_extremes),
		cmocka_unit_test(test_long_calibration),
		cmocka_unit_test(test_replay_stops),
		cmocka_unit_test(test_meta_name_ends),
		cmocka_unit_test(test_symbols),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_bit_flips_everywhere),
		cmocka_unit_test(test_bad_file_header),
		cmocka_unit_test(test_absurd_headers),
		cmocka_unit_test(test_blocks_out_of_order),
		cmocka_unit_test(test_forged_meta_and_end),
		cmocka_unit_test(test_forged_data),
		cmocka_unit_test(test_forged_stacks_and_syms),
		cmocka_unit_test(test_capped_syms_and_stacks),
		cmocka_unit_test(test_empty_payloads),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
