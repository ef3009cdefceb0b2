/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Ordering. Each CPU ships its records in batches, in order, and every batch
 * says "all my records with a smaller key are out" (its flush_key watermark).
 * Records from different CPUs are merged by key up to the smallest watermark
 * over the online CPUs: past that point no CPU can still hold an older
 * record. Records made inside a handler on the same CPU (interrupts), and all
 * records of handlers that run preemptible (fentry/fexit), come as direct
 * batches of one, with no watermark, and are sorted in. The BPF side reserves
 * a direct record in the ring before it takes its key; the ring is read in
 * reservation order and stops at a record not yet submitted, so any batch
 * whose watermark passes that key is read after it. Order matters because
 * an object allocated on one CPU is often freed on another: matching frees
 * to allocations needs the allocation first.
 *
 * Records are not copied: the merge holds each batch where it was given
 * (the collector gives the ring buffer's own pages) until all its records
 * are delivered, and merge__released() says how far, in the order batches
 * came, the giver may reuse their memory. merge__spill() copies what is held
 * when the giver needs all of it back (a ring filling up behind a quiet CPU).
 */
#ifndef KMS_MERGE_H
#define KMS_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"

struct merge;

struct merge_stats {
	__u64 out_of_order;	/* records that arrived behind what was already delivered */
	__u64 bad_records;	/* ring-buffer records that are no valid batch */
};

/* e->cpu is set; e->ts is the time in ns (a sequence key is replaced by its batch's time) */
typedef void (*merge_fn)(void *ctx, struct kms_event *e);
/*
 * A record merge_fn will be handed a few records from now, as it lies in its
 * batch (cpu and ts not set): time to bring in what it will touch.
 */
typedef void (*merge_ahead_fn)(void *ctx, const struct kms_event *e);

struct merge *merge__new(int nr_cpus);
void merge__free(struct merge *m);
/*
 * Take one ring-buffer record (a struct kms_batch; NULL: a record with nothing
 * to deliver), which ends at position end of the giver's stream (end grows
 * with every call). data stays readable until merge__released() passes end.
 * 0 or -ENOMEM.
 */
int merge__batch(struct merge *m, const void *data, size_t size, __u64 end);
/* every record before this stream position is delivered: its memory may be reused */
__u64 merge__released(const struct merge *m);
/* copy the held records out, so that everything given so far is released; 0 or -ENOMEM */
int merge__spill(struct merge *m);
/* hand fn every queued record with key <= limit, in key order; ahead may be NULL */
void merge__deliver(struct merge *m, __u64 limit, merge_fn fn, merge_ahead_fn ahead, void *ctx);
/* the smallest watermark over the CPUs marked online (NULL: all) */
__u64 merge__watermark(const struct merge *m, const bool *online);
/* the smallest key of a record waiting to be delivered, ~0 when none waits */
__u64 merge__oldest(const struct merge *m);
/* cpu's watermark: all its records with a smaller key have come */
__u64 merge__cpu_watermark(const struct merge *m, int cpu);
/* time (ns) of the last batch from cpu */
__u64 merge__flushed_at(const struct merge *m, int cpu);
size_t merge__pending(const struct merge *m);
const struct merge_stats *merge__stats(const struct merge *m);

#endif
