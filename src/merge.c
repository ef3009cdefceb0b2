/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Putting the records of all CPUs in one order (see merge.h). No BPF here:
 * the collector feeds it ring-buffer batches, the unit tests feed it
 * synthetic ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "merge.h"

/* a record waiting for its turn, with the key it is ordered by */
struct qent {
	__u64 key;
	struct kms_event ev;
};

/*
 * A ring of records: head and tail only grow, the slot is the index masked
 * by cap - 1. Slots are reused as they drain, so at a steady rate the queue
 * stays the same memory (no compaction, no page faults); it doubles when full.
 */
struct queue {
	struct qent *v;
	size_t head, tail, cap;	/* cap: a power of two, 0 before the first record */
};

struct merge {
	int nr_cpus;
	__u64 *wm;		/* per-CPU watermark (order key) */
	__u64 *flushed_at;	/* per-CPU time of the last batch */
	struct queue *q;	/* per-CPU queues, then one for nested records */
	int *heap;		/* the merge heap, one slot per queue */
	__u64 delivered_key;	/* newest order key delivered */
	struct merge_stats st;
};

static inline struct qent *q_at(const struct queue *q, size_t i)
{
	return &q->v[i & (q->cap - 1)];
}

/* make room for n more entries */
static int q_reserve(struct queue *q, size_t n)
{
	size_t live = q->tail - q->head, cap = q->cap ? q->cap : 4096;
	struct qent *nv;

	if (live + n <= q->cap)
		return 0;
	while (cap < live + n)
		cap *= 2;
	nv = malloc(cap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < live; i++)
		nv[i] = *q_at(q, q->head + i);
	free(q->v);
	q->v = nv;
	q->cap = cap;
	q->head = 0;
	q->tail = live;
	return 0;
}

/* nested records are rare and nearly in order: insertion from the back */
static int q_insert_sorted(struct queue *q, const struct qent *e)
{
	size_t i;
	int err = q_reserve(q, 1);

	if (err)
		return err;
	for (i = q->tail; i > q->head && q_at(q, i - 1)->key > e->key; i--)
		*q_at(q, i) = *q_at(q, i - 1);
	*q_at(q, i) = *e;
	q->tail++;
	return 0;
}

int merge__batch(struct merge *c, const void *data, size_t size)
{
	const struct kms_batch *b = data;
	bool seq = b->flags & KMS_BATCH_SEQ;
	struct queue *q;
	size_t n;
	int err;

	if (size < offsetof(struct kms_batch, ev) || b->cpu >= (unsigned int)c->nr_cpus ||
	    b->count > KMS_BATCH ||
	    size < offsetof(struct kms_batch, ev) + b->count * sizeof(struct kms_event)) {
		c->st.bad_records++;
		return 0;
	}
	n = b->count;
	if (b->flags & KMS_BATCH_NESTED) {
		struct qent e;

		if (!n)
			return 0;
		e.key = b->ev[0].ts;
		e.ev = b->ev[0];
		e.ev.cpu = b->cpu;
		if (seq)
			e.ev.ts = b->flush_ts;
		if (e.key < c->delivered_key)
			c->st.out_of_order++;
		return q_insert_sorted(&c->q[c->nr_cpus], &e);
	}
	q = &c->q[b->cpu];
	err = q_reserve(q, n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct qent *e = q_at(q, q->tail++);

		e->key = b->ev[i].ts;
		e->ev = b->ev[i];
		e->ev.cpu = b->cpu;
		/* a sequence number is no time: date the record by its batch */
		if (seq)
			e->ev.ts = b->flush_ts;
		if (e->key < c->delivered_key)
			c->st.out_of_order++;
	}
	if (b->flush_key > c->wm[b->cpu])
		c->wm[b->cpu] = b->flush_key;
	if (b->flush_ts > c->flushed_at[b->cpu])
		c->flushed_at[b->cpu] = b->flush_ts;
	return 0;
}

static __u64 head_key(const struct merge *c, int i)
{
	return q_at(&c->q[i], c->q[i].head)->key;
}

/* restore the heap order below slot k (a min-heap of queue indices by head key) */
static void sift_down(const struct merge *c, int *heap, int n, int k)
{
	for (;;) {
		int l = 2 * k + 1, m = k, t;

		if (l < n && head_key(c, heap[l]) < head_key(c, heap[m]))
			m = l;
		if (l + 1 < n && head_key(c, heap[l + 1]) < head_key(c, heap[m]))
			m = l + 1;
		if (m == k)
			return;
		t = heap[k];
		heap[k] = heap[m];
		heap[m] = t;
		k = m;
	}
}

/*
 * Merge all queues by order key, up to and including limit: a k-way merge
 * with a heap of the non-empty queues, so the cost per record grows with
 * log(CPUs), not with the number of CPUs.
 */
void merge__deliver(struct merge *c, __u64 limit, merge_fn fn, void *ctx)
{
	int nq = c->nr_cpus + 1, n = 0;
	int *heap = c->heap;

	for (int i = 0; i < nq; i++)
		if (c->q[i].head != c->q[i].tail)
			heap[n++] = i;
	for (int k = n / 2 - 1; k >= 0; k--)
		sift_down(c, heap, n, k);
	while (n && head_key(c, heap[0]) <= limit) {
		struct queue *q = &c->q[heap[0]];
		struct qent *qe = q_at(q, q->head++);

		if (qe->key > c->delivered_key)
			c->delivered_key = qe->key;
		fn(ctx, &qe->ev);
		if (q->head == q->tail)
			heap[0] = heap[--n];
		sift_down(c, heap, n, 0);
	}
}

struct merge *merge__new(int nr_cpus)
{
	struct merge *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nr_cpus = nr_cpus;
	m->wm = calloc(nr_cpus, sizeof(*m->wm));
	m->flushed_at = calloc(nr_cpus, sizeof(*m->flushed_at));
	m->q = calloc(nr_cpus + 1, sizeof(*m->q));
	m->heap = calloc(nr_cpus + 1, sizeof(*m->heap));
	if (!m->wm || !m->flushed_at || !m->q || !m->heap) {
		merge__free(m);
		return NULL;
	}
	return m;
}

void merge__free(struct merge *m)
{
	if (!m)
		return;
	if (m->q)
		for (int i = 0; i <= m->nr_cpus; i++)
			free(m->q[i].v);
	free(m->q);
	free(m->heap);
	free(m->wm);
	free(m->flushed_at);
	free(m);
}

__u64 merge__watermark(const struct merge *m, const bool *online)
{
	__u64 w = ~0ULL;

	for (int i = 0; i < m->nr_cpus; i++)
		if ((!online || online[i]) && m->wm[i] < w)
			w = m->wm[i];
	return w;
}

__u64 merge__oldest(const struct merge *m)
{
	__u64 k = ~0ULL;

	for (int i = 0; i <= m->nr_cpus; i++)
		if (m->q[i].head != m->q[i].tail && head_key(m, i) < k)
			k = head_key(m, i);
	return k;
}

__u64 merge__cpu_watermark(const struct merge *m, int cpu)
{
	return m->wm[cpu];
}

__u64 merge__flushed_at(const struct merge *m, int cpu)
{
	return m->flushed_at[cpu];
}

size_t merge__pending(const struct merge *m)
{
	size_t n = 0;

	for (int i = 0; i <= m->nr_cpus; i++)
		n += m->q[i].tail - m->q[i].head;
	return n;
}

const struct merge_stats *merge__stats(const struct merge *m)
{
	return &m->st;
}
