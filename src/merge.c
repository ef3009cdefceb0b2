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

/*
 * A batch as given, in the order given (merge__released() walks them in that
 * order); delivered from ev[next] on. b is NULL once all of it is delivered,
 * or when it held nothing to deliver.
 */
struct held {
	const struct kms_batch *b;
	__u64 end;		/* the giver's stream position after it */
	__u32 next, count;
	bool copied;		/* b is the merge's own copy (merge__spill()) */
};

/*
 * A ring of indexes into the held batches, in key order: head and tail only
 * grow, the slot is the index masked by cap - 1; it doubles when full.
 */
struct queue {
	size_t *v;
	size_t head, tail, cap;	/* cap: a power of two, 0 before the first batch */
	__u64 key;		/* the key of its next record, while not empty */
};

struct merge {
	int nr_cpus;
	__u64 *wm;		/* per-CPU watermark (order key) */
	__u64 *flushed_at;	/* per-CPU time of the last batch */
	struct queue *q;	/* per-CPU queues, then one for nested records */
	int *heap;		/* the merge heap, one slot per queue */
	struct held *held;	/* a ring as the queues are, by the same kind of index */
	size_t held_head, held_tail, held_cap;
	__u64 released;		/* merge__released() */
	__u64 delivered_key;	/* newest order key delivered */
	struct merge_stats st;
};

static inline struct held *held_at(const struct merge *c, size_t i)
{
	return &c->held[i & (c->held_cap - 1)];
}

static inline size_t *q_at(const struct queue *q, size_t i)
{
	return &q->v[i & (q->cap - 1)];
}

/* double a ring of n-byte slots (indexes head..tail stay valid); 0 or -ENOMEM */
static int ring_grow(void **v, size_t *cap, size_t head, size_t tail, size_t n)
{
	size_t ncap = *cap ? *cap * 2 : 1024;
	char *nv = malloc(ncap * n);

	if (!nv)
		return -ENOMEM;
	for (size_t i = head; i < tail; i++)
		memcpy(nv + (i & (ncap - 1)) * n, (char *)*v + (i & (*cap - 1)) * n, n);
	free(*v);
	*v = nv;
	*cap = ncap;
	return 0;
}

static int q_push(struct queue *q, size_t idx)
{
	if (q->tail - q->head == q->cap &&
	    ring_grow((void **)&q->v, &q->cap, q->head, q->tail, sizeof(*q->v)))
		return -ENOMEM;
	*q_at(q, q->tail++) = idx;
	return 0;
}

static __u64 held_key(const struct merge *c, size_t idx)
{
	const struct held *h = held_at(c, idx);

	return h->b->ev[h->next].ts;
}

/* nested records are rare and nearly in order: insertion from the back */
static int q_insert_sorted(struct merge *c, struct queue *q, size_t idx)
{
	__u64 key = held_key(c, idx);
	size_t i;
	int err = q_push(q, idx);

	if (err)
		return err;
	for (i = q->tail - 1; i > q->head && held_key(c, *q_at(q, i - 1)) > key; i--)
		*q_at(q, i) = *q_at(q, i - 1);
	*q_at(q, i) = idx;
	return 0;
}

/* a batch is delivered: its memory goes back in turn (merge__released()) */
static void held_done(struct held *h)
{
	if (h->copied)
		free((void *)h->b);
	h->b = NULL;
}

static void release_done(struct merge *c)
{
	while (c->held_head != c->held_tail && !held_at(c, c->held_head)->b) {
		struct held *h = held_at(c, c->held_head++);

		if (h->end > c->released)
			c->released = h->end;
	}
}

int merge__batch(struct merge *c, const void *data, size_t size, __u64 end)
{
	const struct kms_batch *b = data;
	bool nested;
	struct queue *q;
	struct held *h;
	size_t idx;
	int err;

	if (c->held_tail - c->held_head == c->held_cap &&
	    ring_grow((void **)&c->held, &c->held_cap, c->held_head, c->held_tail, sizeof(*h)))
		return -ENOMEM;
	idx = c->held_tail++;
	h = held_at(c, idx);
	*h = (struct held){ .end = end };
	if (!b) {
		release_done(c);
		return 0;
	}
	if (size < offsetof(struct kms_batch, ev) || b->cpu >= (unsigned int)c->nr_cpus ||
	    b->count > KMS_BATCH ||
	    size < offsetof(struct kms_batch, ev) + b->count * sizeof(struct kms_event)) {
		c->st.bad_records++;
		release_done(c);
		return 0;
	}
	nested = b->flags & KMS_BATCH_NESTED;
	/* a direct record is a batch of one */
	h->count = nested && b->count ? 1 : b->count;
	if (!nested) {
		if (b->flush_key > c->wm[b->cpu])
			c->wm[b->cpu] = b->flush_key;
		if (b->flush_ts > c->flushed_at[b->cpu])
			c->flushed_at[b->cpu] = b->flush_ts;
	}
	if (!h->count) {
		release_done(c);
		return 0;
	}
	/* a batch's keys grow: only a late first record can have late ones after it */
	for (__u32 i = 0; i < h->count && b->ev[i].ts < c->delivered_key; i++)
		c->st.out_of_order++;
	h->b = b;
	q = &c->q[nested ? c->nr_cpus : (int)b->cpu];
	err = nested ? q_insert_sorted(c, q, idx) : q_push(q, idx);
	if (err) {
		h->b = NULL;
		return err;
	}
	q->key = held_key(c, *q_at(q, q->head));
	return 0;
}

/* restore the heap order below slot k (a min-heap of queue indices by head key) */
static void sift_down(const struct merge *c, int *heap, int n, int k)
{
	for (;;) {
		int l = 2 * k + 1, m = k, t;

		if (l < n && c->q[heap[l]].key < c->q[heap[m]].key)
			m = l;
		if (l + 1 < n && c->q[heap[l + 1]].key < c->q[heap[m]].key)
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
 * How many records ahead of the one delivered its batch is looked at: a
 * record takes the pipeline a few hundred instructions, about a cache miss's
 * time, so a few records ahead is enough for the miss to be over.
 */
#define MERGE_AHEAD	4

/*
 * Hand one record over: copied out of its batch (the batch may be the ring
 * buffer's read-only page), with its CPU and time set.
 */
static inline void hand_over(struct merge *c, const struct kms_batch *b,
			     const struct kms_event *src, merge_fn fn, void *ctx)
{
	struct kms_event e = *src;

	if (src->ts > c->delivered_key)
		c->delivered_key = src->ts;
	e.cpu = b->cpu;
	/* a sequence number is no time: date the record by its batch */
	if (b->flags & KMS_BATCH_SEQ)
		e.ts = b->flush_ts;
	fn(ctx, &e);
}

/* past a head batch delivered in full, to the next; false: q is empty */
static bool next_batch(struct merge *c, struct queue *q)
{
	struct held *h = held_at(c, *q_at(q, q->head));

	if (h->next < h->count)
		return true;
	held_done(h);
	if (++q->head == q->tail)
		return false;
	q->key = held_key(c, *q_at(q, q->head));
	return true;
}

/*
 * Deliver q (not empty)'s records up to and including key bound, in order,
 * batch after batch; true when q ran empty.
 */
static bool deliver_run(struct merge *c, struct queue *q, __u64 bound, merge_fn fn,
			merge_ahead_fn ahead, void *ctx)
{
	do {
		struct held *h = held_at(c, *q_at(q, q->head));
		const struct kms_batch *b = h->b;

		for (; h->next < h->count; h->next++) {
			const struct kms_event *src = &b->ev[h->next];

			if (src->ts > bound) {
				q->key = src->ts;
				return false;
			}
			/* within the batch only: the next batch's records are seldom next */
			if (ahead && h->next + MERGE_AHEAD < h->count)
				ahead(ctx, &b->ev[h->next + MERGE_AHEAD]);
			hand_over(c, b, src, fn, ctx);
		}
	} while (next_batch(c, q));
	return true;
}

/*
 * Two queues with records: the loaded 2-CPU machine, a busy process on each
 * CPU. A shared sequence counter interleaves their keys finely: runs averaged
 * 2.8 records with bench/gen on both CPUs of the project VM, and each run's
 * end is a branch no predictor learns, then a sift. Here the smaller of the
 * two heads is picked record by record, by a select rather than a branch,
 * within the head batch of each queue; equal keys go to qa (records of
 * different CPUs with one key have no order to keep). Returns false once the
 * next record's key passes limit, true when a batch ran out.
 */
static bool deliver_pair(struct merge *c, struct queue *qa, struct queue *qb, __u64 limit,
			 merge_fn fn, merge_ahead_fn ahead, void *ctx)
{
	struct held *ha = held_at(c, *q_at(qa, qa->head)), *hb = held_at(c, *q_at(qb, qb->head));
	const struct kms_batch *ba = ha->b, *bb = hb->b;
	const struct kms_event *pa = &ba->ev[ha->next], *pb = &bb->ev[hb->next];
	const struct kms_event *ea = &ba->ev[ha->count], *eb = &bb->ev[hb->count];
	bool more = true;

	while (pa < ea && pb < eb) {
		bool second = pb->ts < pa->ts;
		const struct kms_event *src = second ? pb : pa;
		const struct kms_event *end = second ? eb : ea;
		const struct kms_batch *b = second ? bb : ba;

		if (src->ts > limit) {
			more = false;
			break;
		}
		if (ahead && src + MERGE_AHEAD < end)
			ahead(ctx, src + MERGE_AHEAD);
		pa += !second;
		pb += second;
		hand_over(c, b, src, fn, ctx);
	}
	ha->next = pa - ba->ev;
	hb->next = pb - bb->ev;
	if (pa < ea)
		qa->key = pa->ts;
	if (pb < eb)
		qb->key = pb->ts;
	return more;
}

/* the queues with records, into the heap's slots; how many */
static int fill_heap(const struct merge *c, int *heap)
{
	int n = 0;

	for (int i = 0; i <= c->nr_cpus; i++)
		if (c->q[i].head != c->q[i].tail)
			heap[n++] = i;
	return n;
}

/*
 * Merge all queues by order key, up to and including limit. Two queues go
 * by deliver_pair() until one runs dry. Otherwise, and after, a k-way merge
 * with a heap of the non-empty queues: the queue on top delivers its whole
 * run below every other queue's next key before the heap is sifted, so the
 * heap costs a sift per run, not per record (a busy CPU's batch is mostly
 * one run).
 */
void merge__deliver(struct merge *c, __u64 limit, merge_fn fn, merge_ahead_fn ahead, void *ctx)
{
	int *heap = c->heap;
	int n = fill_heap(c, heap);

	if (n == 2) {
		struct queue *qa = &c->q[heap[0]], *qb = &c->q[heap[1]];
		bool more, a, b;

		do {
			more = deliver_pair(c, qa, qb, limit, fn, ahead, ctx);
			/* both: one run dry does not keep the other on a spent batch */
			a = next_batch(c, qa);
			b = next_batch(c, qb);
		} while (more && a && b);
		n = fill_heap(c, heap);
	}
	for (int k = n / 2 - 1; k >= 0; k--)
		sift_down(c, heap, n, k);
	while (n && c->q[heap[0]].key <= limit) {
		__u64 bound = limit;

		/* the other queues' smallest next key is in one of the root's children */
		if (n > 1 && c->q[heap[1]].key < bound)
			bound = c->q[heap[1]].key;
		if (n > 2 && c->q[heap[2]].key < bound)
			bound = c->q[heap[2]].key;
		if (deliver_run(c, &c->q[heap[0]], bound, fn, ahead, ctx))
			heap[0] = heap[--n];
		sift_down(c, heap, n, 0);
	}
	release_done(c);
}

__u64 merge__released(const struct merge *c)
{
	return c->released;
}

int merge__spill(struct merge *c)
{
	for (size_t i = c->held_head; i != c->held_tail; i++) {
		struct held *h = held_at(c, i);
		size_t size = offsetof(struct kms_batch, ev) + h->count * sizeof(struct kms_event);
		void *copy;

		if (!h->b || h->copied)
			continue;
		copy = malloc(size);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, h->b, size);
		h->b = copy;
		h->copied = true;
	}
	if (c->held_head != c->held_tail && held_at(c, c->held_tail - 1)->end > c->released)
		c->released = held_at(c, c->held_tail - 1)->end;
	return 0;
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
	for (size_t i = m->held_head; i != m->held_tail; i++)
		held_done(held_at(m, i));
	free(m->held);
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
		if (m->q[i].head != m->q[i].tail && m->q[i].key < k)
			k = m->q[i].key;
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

	for (size_t i = m->held_head; i != m->held_tail; i++) {
		const struct held *h = held_at(m, i);

		if (h->b)
			n += h->count - h->next;
	}
	return n;
}

const struct merge_stats *merge__stats(const struct merge *m)
{
	return &m->st;
}
