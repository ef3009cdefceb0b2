/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ordering records of several CPUs: watermarks, nested records, late records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "merge.h"

#define MAXOUT 4096

struct out {
	int n;
	__u64 ptr[MAXOUT];	/* each record's ptr carries its key, to check the order */
	__u16 cpu[MAXOUT];
	__u64 ts[MAXOUT];
};

static void collect(void *ctx, struct kms_event *e)
{
	struct out *o = ctx;

	if (o->n < MAXOUT) {
		o->ptr[o->n] = e->ptr;
		o->cpu[o->n] = e->cpu;
		o->ts[o->n] = e->ts;
		o->n++;
	}
}

/*
 * The batches given to a merge, each in memory of its own: the merge reads
 * them in place until merge__released() passes them, as it does the ring's.
 */
struct given {
	int n;
	__u64 pos;		/* the stream position after the last one */
	struct kms_batch *b[4096];
	__u64 end[4096];	/* ... after each */
	size_t size[4096];
};

static struct given given;

/* a batch from cpu with records of the given keys, then watermark flush_key */
static struct kms_batch *batch(int cpu, const __u64 *keys, int n, __u64 flush_key, __u16 flags,
			       size_t *size)
{
	struct kms_batch *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	assert_true(given.n < 4096);
	given.size[given.n] = sizeof(*b);
	given.b[given.n++] = b;
	b->cpu = cpu;
	b->count = n;
	b->flags = flags;
	b->flush_key = flush_key;
	b->flush_ts = 1000000 + flush_key;
	for (int i = 0; i < n; i++) {
		b->ev[i].type = KMS_EV_KMALLOC;
		b->ev[i].ts = keys[i];
		b->ev[i].ptr = keys[i];
	}
	*size = offsetof(struct kms_batch, ev) + n * sizeof(struct kms_event);
	return b;
}

/* scribble over what the merge released, as the kernel reuses the ring's space */
static void scribble_released(const struct merge *m)
{
	for (int i = 0; i < given.n; i++)
		if (given.end[i] && given.end[i] <= merge__released(m))
			memset(given.b[i], 0xa5, given.size[i]);
}

/* give m such a batch, as one ring record of its size */
static int give(struct merge *m, int cpu, const __u64 *keys, int n, __u64 flush_key, __u16 flags)
{
	size_t size;
	struct kms_batch *b = batch(cpu, keys, n, flush_key, flags, &size);

	scribble_released(m);
	given.pos += size;
	given.end[given.n - 1] = given.pos;
	return merge__batch(m, b, size, given.pos);
}

static void given_free(struct merge *m)
{
	merge__free(m);
	for (int i = 0; i < given.n; i++)
		free(given.b[i]);
	memset(&given, 0, sizeof(given));
}

static void assert_sorted(const struct out *o)
{
	for (int i = 1; i < o->n; i++)
		assert_true(o->ptr[i - 1] <= o->ptr[i]);
}

static void test_two_cpus(void **state)
{
	struct merge *m = merge__new(2);
	struct out o = {};
	__u64 k0[] = { 1, 4, 6 }, k1[] = { 2, 3, 9 }, k0b[] = { 10, 12 };

	assert_non_null(m);
	assert_int_equal(give(m, 0, k0, 3, 7, 0), 0);
	/* cpu 1 has shipped nothing: nothing can be delivered */
	assert_int_equal(merge__watermark(m, NULL), 0);
	merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	assert_int_equal(o.n, 0);

	assert_int_equal(give(m, 1, k1, 3, 11, 0), 0);
	assert_int_equal(merge__watermark(m, NULL), 7);
	merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	/* 1 2 3 4 6 are safe; 9 waits for cpu 0 to pass it */
	assert_int_equal(o.n, 5);
	assert_sorted(&o);
	assert_int_equal(o.ptr[4], 6);
	assert_int_equal(merge__pending(m), 1);

	assert_int_equal(give(m, 0, k0b, 2, 13, 0), 0);
	merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	assert_int_equal(o.n, 7);	/* 9 and 10; 12 waits for cpu 1 */
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 8);
	assert_sorted(&o);
	assert_int_equal(o.cpu[7], 0);
	assert_int_equal(merge__stats(m)->out_of_order, 0);
	given_free(m);
}

static void test_offline_cpu(void **state)
{
	struct merge *m = merge__new(3);
	bool online[3] = { true, false, true };
	struct out o = {};
	__u64 k[] = { 5 };

	give(m, 0, k, 1, 6, 0);
	give(m, 2, NULL, 0, 8, KMS_BATCH_FORCED);
	/* an offline CPU does not hold the watermark back */
	assert_int_equal(merge__watermark(m, online), 6);
	assert_int_equal(merge__watermark(m, NULL), 0);
	merge__deliver(m, merge__watermark(m, online), collect, NULL, &o);
	assert_int_equal(o.n, 1);
	given_free(m);
}

static void test_nested_and_late(void **state)
{
	struct merge *m = merge__new(1);
	struct out o = {};
	__u64 k[] = { 3, 8 }, n1[] = { 5 }, n2[] = { 4 }, late[] = { 1 };

	/* nested records arrive before the batch they were made inside of */
	give(m, 0, n1, 1, 0, KMS_BATCH_NESTED);
	give(m, 0, n2, 1, 0, KMS_BATCH_NESTED);
	/* a nested batch never moves the watermark */
	assert_int_equal(merge__watermark(m, NULL), 0);
	give(m, 0, k, 2, 9, 0);
	merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.ptr[0], 3);
	assert_int_equal(o.ptr[1], 4);
	assert_int_equal(o.ptr[2], 5);
	assert_int_equal(o.ptr[3], 8);
	assert_int_equal(merge__stats(m)->out_of_order, 0);

	/* a record older than what was delivered is still delivered, and counted */
	give(m, 0, late, 1, 10, 0);
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 5);
	assert_int_equal(merge__stats(m)->out_of_order, 1);
	given_free(m);
}

static void test_seq_time(void **state)
{
	struct merge *m = merge__new(1);
	struct out o = {};
	__u64 k[] = { 7, 8 };

	/* sequence keys are no time: records are dated by their batch */
	give(m, 0, k, 2, 9, KMS_BATCH_SEQ);
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.ts[0], 1000000 + 9);
	assert_int_equal(o.ptr[1], 8);
	given_free(m);
}

static void test_bad_records(void **state)
{
	struct merge *m = merge__new(2);
	struct out o = {};
	__u64 k[] = { 1, 2 };
	size_t sz;
	struct kms_batch *b = batch(1, k, 2, 3, 0, &sz);

	assert_int_equal(merge__batch(m, b, 4, 1), 0);		/* shorter than a header */
	assert_int_equal(merge__batch(m, b, sz - 1, 2), 0);	/* cut record */
	b->cpu = 5;
	assert_int_equal(merge__batch(m, b, sz, 3), 0);		/* no such CPU */
	b->cpu = 1;
	b->count = KMS_BATCH + 1;
	assert_int_equal(merge__batch(m, b, sizeof(*b), 4), 0);	/* too many */
	assert_int_equal(merge__stats(m)->bad_records, 4);
	/* nothing to deliver in them: their space is free at once */
	assert_int_equal(merge__released(m), 4);
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 0);
	given_free(m);
}

/*
 * A batch's space is released once all its records are delivered, and only
 * in the order batches came: a CPU held back holds back what came after it.
 * A spill copies what is held, so that all of it is released.
 */
static void test_release_and_spill(void **state)
{
	struct merge *m = merge__new(2);
	struct out o = {};
	__u64 a[] = { 1, 2 }, b[] = { 3, 5 }, c[] = { 4, 6 }, d[] = { 7 };

	give(m, 0, a, 2, 3, 0);
	give(m, 1, b, 2, 5, 0);
	give(m, 0, c, 2, 7, 0);
	assert_int_equal(merge__released(m), 0);
	merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	/* 1 2 3 4 5 are out; the second batch of CPU 0 still holds 6 */
	assert_int_equal(o.n, 5);
	assert_int_equal(merge__released(m), given.end[1]);
	assert_int_equal(merge__pending(m), 1);

	give(m, 1, d, 1, 9, 0);
	assert_int_equal(merge__spill(m), 0);
	assert_int_equal(merge__released(m), given.end[3]);
	/* the giver reuses all of it: the merge reads its copies */
	scribble_released(m);
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 7);
	assert_sorted(&o);
	assert_int_equal(o.ptr[5], 6);
	assert_int_equal(o.cpu[5], 0);
	assert_int_equal(o.ptr[6], 7);
	assert_int_equal(o.cpu[6], 1);
	assert_int_equal(merge__pending(m), 0);
	given_free(m);
}

/* counts records and checks that their keys (in ptr) come in order, with no cap */
struct seen {
	__u64 n, last;
	bool sorted;
};

static void count_sorted(void *ctx, struct kms_event *e)
{
	struct seen *s = ctx;

	if (e->ptr < s->last)
		s->sorted = false;
	s->last = e->ptr;
	s->n++;
}

/*
 * A queue is a ring that is read while it fills: its records wrap around the
 * end, and it grows while wrapped, without losing or reordering any.
 * merge__oldest() names the record that waits, and the watermark holding it.
 */
static void test_ring_wrap(void **state)
{
	struct merge *m = merge__new(2);
	struct seen o = { .sorted = true };
	__u64 k[KMS_BATCH], key = 1;

	assert_int_equal(merge__oldest(m), ~0ULL);
	for (int round = 0; round < 200; round++) {
		int n = 100 + round % 28;

		for (int i = 0; i < n; i++)
			k[i] = key++;
		assert_int_equal(give(m, 0, k, n, key, 0), 0);
		/* CPU 1 holds everything back until it says otherwise */
		assert_int_equal(merge__oldest(m), o.n + 1);
		assert_true(merge__cpu_watermark(m, 1) < merge__oldest(m));
		/* rounds 100-159 hold ~7000 records: the ring grows while wrapped */
		if (round % 3 == 2 && (round < 100 || round >= 160)) {
			/* deliver all but the last 59 records: the ring's head moves on */
			give(m, 1, NULL, 0, key - 60, KMS_BATCH_FORCED);
			merge__deliver(m, merge__watermark(m, NULL), count_sorted, NULL, &o);
			assert_int_equal(o.n, key - 60);
			assert_int_equal(merge__pending(m), 59);
		}
	}
	give(m, 1, NULL, 0, key, KMS_BATCH_FORCED);
	merge__deliver(m, merge__watermark(m, NULL), count_sorted, NULL, &o);
	assert_int_equal(o.n, key - 1);
	assert_true(o.sorted);
	assert_int_equal(o.last, key - 1);
	assert_int_equal(merge__oldest(m), ~0ULL);
	assert_int_equal(merge__pending(m), 0);
	given_free(m);
}

/* many CPUs, many batches, random interleaving: every record once, in order */
static void test_many(void **state)
{
	enum { CPUS = 9, PER = 300 };
	struct merge *m = merge__new(CPUS);
	static struct out o;
	__u64 next[CPUS] = {}, key = 1;
	int left[CPUS], total = 0;

	srand(7);
	memset(&o, 0, sizeof(o));
	for (int c = 0; c < CPUS; c++)
		left[c] = PER;
	while (total < CPUS * PER) {
		int c = rand() % CPUS, n = 1 + rand() % 20;
		__u64 keys[20];

		if (!left[c])
			continue;
		if (n > left[c])
			n = left[c];
		/* keys grow globally, as a shared counter hands them out */
		for (int i = 0; i < n; i++)
			keys[i] = key += 1 + rand() % 3;
		next[c] = key + 1;
		assert_int_equal(give(m, c, keys, n, next[c], KMS_BATCH_SEQ), 0);
		left[c] -= n;
		total += n;
		merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	}
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, CPUS * PER);
	assert_sorted(&o);
	assert_int_equal(merge__pending(m), 0);
	assert_int_equal(merge__stats(m)->out_of_order, 0);
	given_free(m);
}

/*
 * Two CPUs whose keys interleave a record or a few at a time, as a shared
 * counter hands them out to two busy CPUs (deliver_pair()), delivered in
 * steps that stop mid-batch: every record once, in order, with its CPU and
 * its batch's time.
 */
static void test_pair(void **state)
{
	enum { PER = 1500, MAXKEY = 4 * 2 * PER + 8 };
	struct merge *m = merge__new(2);
	static struct out o;
	static __u64 flush_ts[MAXKEY];
	__u64 base = 1;
	int left[2] = { PER, PER };

	srand(11);
	memset(&o, 0, sizeof(o));
	assert_non_null(m);
	while (left[0] || left[1]) {
		__u64 keys[2][KMS_BATCH], flush_key;
		int n[2] = {}, want[2];

		for (int c = 0; c < 2; c++)
			want[c] = left[c] < KMS_BATCH ? left[c] : 1 + rand() % KMS_BATCH;
		while (n[0] < want[0] || n[1] < want[1]) {
			int c = rand() % 2;

			/* an odd key is CPU 1's, so no two CPUs share one; runs of 1 to 4 */
			for (int run = 1 + rand() % 4; run && n[c] < want[c]; run--) {
				keys[c][n[c]++] = base * 2 + c;
				base += rand() % 2;
			}
		}
		base++;
		flush_key = base * 2;
		for (int c = 0; c < 2; c++) {
			for (int i = 0; i < n[c]; i++)
				flush_ts[keys[c][i]] = 1000000 + flush_key;
			if (n[c])
				assert_int_equal(give(m, c, keys[c], n[c], flush_key, KMS_BATCH_SEQ), 0);
			left[c] -= n[c];
		}
		/* part of the way, then as far as both CPUs allow */
		merge__deliver(m, flush_key - 1 - rand() % (2 * KMS_BATCH), collect, NULL, &o);
		merge__deliver(m, merge__watermark(m, NULL), collect, NULL, &o);
	}
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 2 * PER);
	assert_sorted(&o);
	for (int i = 0; i < o.n; i++) {
		assert_true(o.ptr[i] < MAXKEY);
		assert_int_equal(o.cpu[i], o.ptr[i] & 1);
		assert_int_equal(o.ts[i], flush_ts[o.ptr[i]]);
	}
	assert_int_equal(merge__pending(m), 0);
	assert_int_equal(merge__stats(m)->out_of_order, 0);
	given_free(m);
}

/* one key on two CPUs (time order: two clocks can agree): both delivered, each once */
static void test_pair_equal_keys(void **state)
{
	struct merge *m = merge__new(2);
	struct out o = {};
	__u64 k0[] = { 5, 5, 7 }, k1[] = { 5, 6, 7 };

	assert_non_null(m);
	assert_int_equal(give(m, 0, k0, 3, 8, 0), 0);
	assert_int_equal(give(m, 1, k1, 3, 8, 0), 0);
	merge__deliver(m, 5, collect, NULL, &o);
	assert_int_equal(o.n, 3);
	merge__deliver(m, ~0ULL, collect, NULL, &o);
	assert_int_equal(o.n, 6);
	assert_sorted(&o);
	/* time order keeps each record's own time */
	assert_int_equal(o.ts[5], 7);
	assert_int_equal(merge__pending(m), 0);
	given_free(m);
}

/* what the ahead hook saw: each record's key, and how many were delivered then */
struct seen_ahead {
	struct out out;
	int n;
	__u64 ptr[MAXOUT];
	int delivered[MAXOUT];
};

static void collect_seen(void *ctx, struct kms_event *e)
{
	collect(&((struct seen_ahead *)ctx)->out, e);
}

static void note_ahead(void *ctx, const struct kms_event *e)
{
	struct seen_ahead *a = ctx;

	if (a->n < MAXOUT) {
		a->ptr[a->n] = e->ptr;
		a->delivered[a->n] = a->out.n;
		a->n++;
	}
}

/*
 * The ahead hook is shown each record of a batch before it is delivered, a
 * few records early, within its batch; the order delivered does not change.
 */
static void test_ahead(void **state)
{
	struct merge *m = merge__new(1);
	struct seen_ahead a = {};
	__u64 k[10];

	assert_non_null(m);
	for (int i = 0; i < 10; i++)
		k[i] = i + 1;
	assert_int_equal(give(m, 0, k, 10, 20, 0), 0);
	merge__deliver(m, ~0ULL, collect_seen, note_ahead, &a);
	assert_int_equal(a.out.n, 10);
	assert_sorted(&a.out);
	/* records 5..10 were looked at ahead, each while an earlier one was next */
	assert_true(a.n >= 1 && a.n < 10);
	for (int i = 0; i < a.n; i++) {
		assert_int_equal(a.ptr[i], 10 - a.n + 1 + i);
		assert_true(a.delivered[i] < (int)a.ptr[i] - 1);
	}
	given_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_cpus),
		cmocka_unit_test(test_offline_cpu),
		cmocka_unit_test(test_nested_and_late),
		cmocka_unit_test(test_seq_time),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_release_and_spill),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_pair),
		cmocka_unit_test(test_pair_equal_keys),
		cmocka_unit_test(test_ring_wrap),
		cmocka_unit_test(test_ahead),
	};

	return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
