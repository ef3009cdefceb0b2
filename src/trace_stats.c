/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Counting a trace file's records (see trace_stats.h). */
#include <string.h>
#include "agg.h"
#include "trace.h"
#include "trace_stats.h"

struct counting {
	struct trace_counts *c;
	enum trace_part part;
};

static bool count_event(void *ctx, struct kms_event *e)
{
	struct counting *k = ctx;
	struct trace_counts *c = k->c;
	int fam = e->type == KMS_EV_ALLOC_FAIL ? e->order : kms_ev_family(e->type);

	c->records++;
	c->events[k->part]++;
	c->by_type[k->part][e->type]++;
	if (k->part == TRACE_PART_TRACE) {
		if (!c->t_first)
			c->t_first = e->ts;
		c->t_last = e->ts;
	}
	/* a failure record naming no family is counted by type only */
	if (fam < 0 || fam >= KMS_FAM_MAX)
		return true;
	c->fam[k->part][fam].events++;
	if (e->type == KMS_EV_ALLOC_FAIL)
		c->fam[k->part][fam].fails++;
	else if (kms_ev_is_mapping(e))
		;	/* not an allocation: stat leaves it out (pipeline.c) */
	else if (kms_ev_is_alloc(e->type))
		c->fam[k->part][fam].allocs++;
	else if (kms_ev_is_free(e->type))
		c->fam[k->part][fam].frees++;
	return true;
}

static void count_meta(void *ctx, const struct kms_meta *m)
{
	struct counting *k = ctx;

	k->c->records++;
	k->c->meta++;
}

static void count_settle(void *ctx)
{
	struct counting *k = ctx;

	k->c->records++;
	k->part = TRACE_PART_SETTLE;
}

static void count_begin(void *ctx)
{
	struct counting *k = ctx;

	k->c->records++;
	k->part = TRACE_PART_TRACE;
}

int trace_stats__count(struct trace_reader *r, struct trace_counts *c, char *why, size_t len)
{
	struct counting k = { .c = c, .part = TRACE_PART_CALIBRATION };
	struct trace_sink sink = { count_event, count_meta, count_settle, count_begin, &k };

	memset(c, 0, sizeof(*c));
	return trace_reader__replay(r, &sink, why, len);
}

const char *trace_part_name(enum trace_part p)
{
	static const char *const names[TRACE_PART_NR] = {
		[TRACE_PART_CALIBRATION] = "calibration",
		[TRACE_PART_TRACE] = "trace",
		[TRACE_PART_SETTLE] = "settle",
	};

	return p < TRACE_PART_NR ? names[p] : NULL;
}
