/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* trace_codec.h: the bytes of a record, round trips of random records, cut records */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "trace_codec.h"
#include "rnd.h"

#define NR	20000

/* the format, byte for byte: it must not move when the code does */
static void test_bytes(void **state)
{
	struct trace_codec c = {};
	struct kms_event e = { .type = KMS_EV_KMALLOC, .node = -1, .ts = 5, .ptr = 0x10 };
	/* kind; mask: node (bit 3), ts (5), ptr (6); zigzag -1, 5, 16 */
	static const __u8 want[] = { KMS_EV_KMALLOC, 0x68, 0x01, 0x0a, 0x20 };
	__u8 buf[TRACE_REC_MAX], *end = trace_encode_event(&c, &e, buf);

	assert_int_equal(end - buf, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	/* the same event again: only the time differs (from the last record, any type) */
	e.ts = 6;
	end = trace_encode_event(&c, &e, buf);
	assert_int_equal(end - buf, 3);
	assert_int_equal(buf[1], 0x20);
	assert_int_equal(buf[2], 0x02);
}

/* a field keeps its value, changes a little, or takes an extreme (wrapping the difference) */
static __u64 next_value(__u64 old)
{
	switch (rnd() % 6) {
	case 0:
	case 1:
		return old;
	case 2:
		return old + rnd() % 64;
	case 3:
		return old - rnd() % 4096;
	case 4:
		return rnd() & 1 ? ~0ULL : 0;
	default:
		return rnd();
	}
}

static void test_round_trip(void **state)
{
	struct kms_event *ev = calloc(NR, sizeof(*ev)), last[KMS_EV_NR_EVENTS] = {};
	__u8 *buf = malloc(NR * TRACE_REC_MAX), *p = buf;
	struct trace_codec enc = {}, dec = {};
	const __u8 *q;
	__u64 ts = 1;

	assert_non_null(ev);
	assert_non_null(buf);
	for (int i = 0; i < NR; i++) {
		int type = 1 + rnd() % (KMS_EV_NR_EVENTS - 1);
		struct kms_event *e = &ev[i];

		*e = last[type];
		for (unsigned int f = 0; f < TRACE_NR_FIELDS; f++)
			trace_field_set(e, f, next_value(trace_field_get(e, f)));
		/* time goes forward, mostly by a little */
		ts += rnd() % 3 ? rnd() % 1000 : rnd() % (1ULL << 40);
		e->ts = ts;
		e->type = type;
		last[type] = *e;
		if (i % 97 == 0) {
			struct kms_meta m = { .type = KMS_EV_META_TASK, .ts = ts, .key = i };

			p = trace_encode_meta(&enc, &m, p);
		}
		p = trace_encode_event(&enc, e, p);
	}
	q = buf;
	for (int i = 0; i < NR; i++) {
		enum trace_rec kind;
		struct kms_event e;
		struct kms_meta m;

		q = trace_decode(&dec, q, p, &kind, &e, &m);
		assert_non_null(q);
		if (kind == TRACE_REC_META) {
			assert_int_equal(m.key, i);
			q = trace_decode(&dec, q, p, &kind, &e, &m);
			assert_non_null(q);
		}
		assert_int_equal(kind, TRACE_REC_EVENT);
		assert_memory_equal(&e, &ev[i], sizeof(e));
	}
	assert_ptr_equal(q, p);
	free(ev);
	free(buf);
}

/* every strict prefix of a record is refused, never read past */
static void test_cut(void **state)
{
	struct kms_event e = {
		.type = KMS_EV_CACHE_ALLOC, .ctx = 3, .order = 2, .extra = 1, .node = 1, .cpu = 7,
		.ts = 1ULL << 50, .ptr = 0xffff888012345678ULL, .site = 0xffffffff81234567ULL,
		.obj = 0xffff888000abc000ULL, .bytes_req = 100, .bytes_alloc = 128,
		.gfp = 0xcc0, .pid = 4242, .stack_id = -2, .pc = 0x10001,
	};
	__u8 buf[TRACE_REC_MAX];
	struct trace_codec c = {};
	__u8 *end = trace_encode_event(&c, &e, buf);

	for (__u8 *cut = buf; cut < end; cut++) {
		struct trace_codec d = {};
		enum trace_rec kind;
		struct kms_event out;
		struct kms_meta m;
		/* a copy that ends where the cut is, so that a read past it is a heap error */
		__u8 *copy = malloc(cut - buf + 1);

		memcpy(copy, buf, cut - buf);
		assert_null(trace_decode(&d, copy, copy + (cut - buf), &kind, &out, &m));
		free(copy);
	}
}

/*
 * Varints of every length, read where 8 bytes follow (the word-at-a-time
 * path) and where the buffer ends with them (byte by byte): the same value
 * and length both ways; an eleventh byte, or a cut one, is refused.
 */
static void test_varint(void **state)
{
	for (unsigned int bits = 0; bits <= 64; bits++) {
		__u64 want[3] = { bits ? 1ULL << (bits - 1) : 0, 0, ~0ULL };
		int n = bits < 64 ? 2 : 3;

		want[1] = bits < 64 ? (1ULL << bits) - 1 : ~0ULL;
		for (int k = 0; k < n; k++) {
			__u8 buf[32], *end = trace_put_varint(buf, want[k]);
			size_t len = end - buf;
			__u8 *tight = malloc(len);
			__u64 v = 1234;

			memset(end, 0xff, sizeof(buf) - len);
			assert_ptr_equal(trace_get_varint(buf, buf + sizeof(buf), &v), end);
			assert_true(v == want[k]);
			memcpy(tight, buf, len);
			v = 1234;
			assert_ptr_equal(trace_get_varint(tight, tight + len, &v), tight + len);
			assert_true(v == want[k]);
			assert_null(trace_get_varint(tight, tight + len - 1, &v));
			free(tight);
		}
	}
	/* eleven bytes of continuation: no varint of 64 bits */
	__u8 run[16];

	memset(run, 0x80, sizeof(run));
	assert_null(trace_get_varint(run, run + 11, &(__u64){ 0 }));
	assert_null(trace_get_varint(run, run + sizeof(run), &(__u64){ 0 }));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
