/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record path from a source to the reports, one for every source: the
 * live collector (session.c) feeds it, and so will a trace file. In order:
 * the deferred-free stage (first: a hand-off to RCU must be known when its
 * real free comes, whatever is dropped), the filter stage, the settle gate,
 * then the live-object store (live.h), which matches every free with its
 * allocation once and tells the consumers, the aggregator and the detectors
 * (when asked for), what happened. A tap (a trace writer when recording,
 * kmemscope script on replay) takes what passes the filter, so that a replay
 * feeds the stages after it alike.
 *
 * Per record, only the stages that can matter run (pipeline__event()):
 * - the deferred-free stage, for a hand-off to RCU or while one is pending;
 * - the filter stage, when there is a filter (-p, -c, -F);
 * - the tap, when there is one (--record, record, script);
 * - the aggregator and the live-object store, unless no_count (record:
 *   nothing is reported, the file is the output);
 * - the detectors' per-record checks (detect__event()) when there are
 *   detectors (stat and top with context, misuse, leaks), for allocations
 *   only unless leaks or bad frees are detected, and their per-object hooks
 *   (detect__on_*()) only for leaks and bad frees.
 */
#ifndef KMS_PIPELINE_H
#define KMS_PIPELINE_H

#include <stdbool.h>
#include <linux/types.h>
#include "deferred.h"
#include "filter.h"
#include "kmemscope.h"
#include "htab.h"
#include "live.h"
#include "nest.h"

struct agg;
struct ksyms;
struct deferred;
struct detect;
struct detect_opts;

struct pipeline_opts {
	struct filter_opts filter;
	const struct detect_opts *detect;	/* NULL: no detectors */
	/* the records' stacks, for what is nested (nest.h); NULL: none */
	int (*stack)(void *ctx, int stack_id, __u64 *ips, int max);
	void *stack_ctx;
	bool no_count;		/* no aggregator or store per record: nothing is reported */
};

/*
 * What passes the filter stage, in stream order, for a consumer that is not
 * a report. Any callback may be NULL.
 */
struct pipeline_tap {
	/* an event the reports count: it passed the filter stage */
	void (*event)(void *ctx, const struct kms_event *e);
	/* an event before the trace began: the stages only learn from it */
	void (*observe)(void *ctx, const struct kms_event *e);
	void (*meta)(void *ctx, const struct kms_meta *m);
	void (*settle)(void *ctx);
	/* the trace begins (a file's BEGIN mark: pipeline__begin()) */
	void (*begin)(void *ctx);
	void *ctx;
};

struct pipeline {
	struct live live;		/* every object allocated and not yet freed */
	struct htab mappings;		/* live vmap areas vmalloc did not make (mapping()) */
	struct deferred *defer;
	struct filter *filter;
	struct agg *agg;
	struct detect *detect;		/* NULL unless pipeline_opts.detect */
	struct nest nest;		/* which allocations are nested, per stack */
	/* --record: a trace writer; kmemscope script: its printer */
	struct pipeline_tap tap;
	const struct deferred_stats *defer_st;	/* its pending count: whether it is needed */
	bool filtering;			/* the filter stage can drop or flag a record */
	bool count;			/* the aggregator and the store run (!no_count) */
	bool leaks;			/* the detectors track objects (leaks, bad frees) */
	bool settling;			/* after the window: frees only (pipeline__settle) */
	__u64 after_window;		/* allocations seen while settling: not counted */
};

/* 0 or -ENOMEM; pipeline__fini() cleans up either way */
int pipeline__init(struct pipeline *p, const struct pipeline_opts *o);
void pipeline__fini(struct pipeline *p);
/* the kernel's symbols, once known: nothing is nested before (nest.h) */
void pipeline__set_ksyms(struct pipeline *p, const struct ksyms *ksyms);
/* one record, in stream order */
void pipeline__event(struct pipeline *p, struct kms_event *e);
/*
 * A record pipeline__event() will get a few records from now: the store's
 * slot for its address is fetched into the cache meanwhile (a hint: it
 * changes nothing, and the record may still be dropped).
 */
void pipeline__prefetch(const struct pipeline *p, const struct kms_event *e);
/* a record the reports must not count (before the trace began): only the stages learn */
void pipeline__observe(struct pipeline *p, struct kms_event *e);
void pipeline__meta(struct pipeline *p, const struct kms_meta *m);
/*
 * The window is over: from now on allocations are not counted, and a free
 * counts only when it frees an object of the window.
 */
void pipeline__settle(struct pipeline *p);
/* a replay reached the file's BEGIN mark: records before it were observed only */
void pipeline__begin(struct pipeline *p);
/* records the filter stage kept out */
__u64 pipeline__filtered(const struct pipeline *p);

#endif
