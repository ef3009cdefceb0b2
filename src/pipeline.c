/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record path (see pipeline.h). */
#include <errno.h>
#include <string.h>
#include "agg.h"
#include "deferred.h"
#include "detect.h"
#include "live.h"
#include "pipeline.h"

struct map_slot {
	__u64 ptr;
	__u8 pad[7];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct map_slot);

#define ALL_FAMILIES ((1U << KMS_FAM_MAX) - 1)

int pipeline__init(struct pipeline *p, const struct pipeline_opts *o)
{
	memset(p, 0, sizeof(*p));
	if (live__init(&p->live) ||
	    htab__init(&p->mappings, sizeof(struct map_slot), 64, HTAB_FAST, htab__hash_u64))
		return -ENOMEM;
	p->defer = deferred__new();
	p->filter = filter__new(&o->filter);
	p->agg = agg__new();
	if (!p->defer || !p->filter || !p->agg)
		return -ENOMEM;
	p->defer_st = deferred__stats(p->defer);
	p->filtering = o->filter.comm || o->filter.nr_pids ||
		       (o->filter.families && (o->filter.families & ALL_FAMILIES) != ALL_FAMILIES);
	p->count = !o->no_count;
	p->nest.stack = o->stack;
	p->nest.stack_ctx = o->stack_ctx;
	if (o->detect) {
		struct detect_opts dopts = *o->detect;

		dopts.live = &p->live;
		dopts.nest = &p->nest;
		p->detect = detect__new(&dopts);
		if (!p->detect)
			return -ENOMEM;
		p->leaks = dopts.leaks || dopts.bad_frees;
	}
	return 0;
}

void pipeline__fini(struct pipeline *p)
{
	detect__free(p->detect);
	agg__free(p->agg);
	filter__free(p->filter);
	deferred__free(p->defer);
	live__fini(&p->live);
	htab__fini(&p->mappings);
	nest__fini(&p->nest);
	memset(p, 0, sizeof(*p));
}

void pipeline__set_ksyms(struct pipeline *p, const struct ksyms *ksyms)
{
	p->nest.ksyms = ksyms;
}

void pipeline__observe(struct pipeline *p, struct kms_event *e)
{
	/* before the trace began (the file's BEGIN mark tells): replay observes it too */
	if (p->tap.observe)
		p->tap.observe(p->tap.ctx, e);
	deferred__event(p->defer, e);
}

/* a live address handed out again: its free was not traced */
static void implicit_free(struct pipeline *p, const struct live_obj *old)
{
	agg__on_implicit_free(p->agg, old);
	if (p->leaks)
		detect__on_implicit_free(p->detect, old);
}

static void on_alloc(struct pipeline *p, struct kms_event *e, const struct kms_ev_info *ei)
{
	int cls = ei->cls;
	struct live_slot *s = NULL;
	struct live_obj o, old;
	bool replaced = false;

	/*
	 * No kernel hands out blocks of 2^LIVE_ORDERS pages: such an order comes
	 * from a damaged or forged file, and is counted but not tracked.
	 */
	if (e->ptr && !(cls == KMS_OC_PAGE && e->order >= LIVE_ORDERS))
		s = live__add(&p->live, cls, e->ptr, e->type, e->order, &o, &old, &replaced);
	if (replaced)
		implicit_free(p, &old);
	if (s && cls == KMS_OC_PAGE && o.order < 32)
		o.page_bytes = e->bytes_req >> o.order;
	/* the aggregator first: it sets the object's sizes (a cache's, from its record) */
	agg__on_alloc(p->agg, e, s ? &o : NULL, nest__event(&p->nest, e, ei->family) >= 0);
	if (p->leaks)
		detect__on_alloc(p->detect, e, s ? &o : NULL);
	if (s)
		live__set(&p->live, s, &o);
}

static void on_free(struct pipeline *p, struct kms_event *e, int cls)
{
	unsigned int m = e->type == KMS_EV_PAGE_FREE ? e->order : 0;
	bool whole = true, split = false;
	struct live_slot *s;
	struct live_obj o;
	__u32 bytes;

	/* kfree(NULL) is an event the kernel counts, but frees nothing */
	if (!e->ptr)
		return;
	s = cls == KMS_OC_PAGE ? live__page(&p->live, e->ptr) : live__find(&p->live, cls, e->ptr);
	/* kvfree_rcu() takes vmalloc objects too */
	if (!s && e->type == KMS_EV_RCU_FREE) {
		cls = KMS_OC_VMALLOC;
		s = live__find(&p->live, cls, e->ptr);
	}
	if (!s) {
		agg__on_unmatched(p->agg, e);
		if (p->leaks)
			detect__on_unmatched(p->detect, e);
		return;
	}
	live__get(&p->live, s, &o);
	bytes = o.bytes_alloc;
	/* part of a bigger page block (split_page()): one page, or 2^m, at a time */
	if (cls == KMS_OC_PAGE && m < o.order) {
		__u32 part = o.page_bytes << m;

		split = true;
		if (part < o.bytes_alloc) {
			bytes = part;
			whole = false;
		}
	}
	agg__on_free(p->agg, e, &o, bytes, whole, split);
	if (p->leaks)
		detect__on_free(p->detect, e, cls, &o, bytes, whole);
	if (whole) {
		live__remove(&p->live, cls, s);
	} else {
		o.bytes_alloc -= bytes;
		live__set(&p->live, s, &o);
	}
}

/*
 * A vmap area the session found vmalloc did not make (KMS_X_MAPPING: the
 * vmap-area tracepoint also sees ioremap, vmap and vm_map_ram) is no vmalloc
 * allocation, and its free no vmalloc free: both are left out, counted.
 */
static bool mapping(struct pipeline *p, const struct kms_event *e)
{
	struct map_slot *s;
	bool created;

	if (kms_ev_is_mapping(e)) {
		/* no memory: its free shows as unmatched */
		htab__get(&p->mappings, kms_hash64(e->ptr), &e->ptr, sizeof(e->ptr), sizeof(*s),
			  &created);
		agg__on_mapping(p->agg);
		return true;
	}
	if (e->type != KMS_EV_VFREE || !p->mappings.count)
		return false;
	s = htab__lookup(&p->mappings, kms_hash64(e->ptr), &e->ptr, sizeof(e->ptr),
			 sizeof(*s));
	if (!s)
		return false;
	htab__delete(&p->mappings, s, sizeof(*s));
	return true;
}

/*
 * An allocation after the window is not tracked, but the address it was
 * handed, if an object of the window holds it, is evidence: that object was
 * freed without a trace event, as when a live address comes back in the
 * window. Page blocks go by their head frame, as there.
 */
static void settle_alloc(struct pipeline *p, const struct kms_event *e, int cls)
{
	struct live_slot *s;
	struct live_obj o;

	if (!e->ptr || !(s = live__find(&p->live, cls, e->ptr)))
		return;
	live__get(&p->live, s, &o);
	implicit_free(p, &o);
	live__remove(&p->live, cls, s);
}

/*
 * Every record of a session comes through here: each stage runs only where
 * it can matter (see pipeline.h for which run per command), and the event's
 * row of the type table is read once.
 */
void pipeline__event(struct pipeline *p, struct kms_event *e)
{
	const struct kms_ev_info *ei;

	/* only a hand-off, or a record while one is pending, concerns the deferred stage */
	if (e->type == KMS_EV_RCU_FREE || p->defer_st->pending)
		deferred__event(p->defer, e);
	if (p->filtering && !filter__event(p->filter, e))
		return;
	if (p->tap.event)
		p->tap.event(p->tap.ctx, e);
	if (!p->count)
		return;
	ei = kms_ev_info(e->type);
	if (p->settling) {
		if (!ei || !ei->free) {
			p->after_window++;
			if (ei && ei->alloc && ei->cls >= 0)
				settle_alloc(p, e, ei->cls);
			return;
		}
		e->ctx |= KMS_CTX_OUTSIDE;
	}
	agg__event(p->agg, e);
	if (mapping(p, e))
		return;
	/* without leaks, the detectors judge allocations only (misuse) */
	if (p->detect && ei && (p->leaks || ei->alloc))
		detect__event(p->detect, e, ei);
	/* the real free of an object handed to RCU: it was freed at the hand-off */
	if (!ei || ei->cls < 0 || (e->ctx & KMS_CTX_RCU_DONE))
		return;
	if (ei->alloc)
		on_alloc(p, e, ei);
	else if (ei->free)
		on_free(p, e, ei->cls);
}

void pipeline__prefetch(const struct pipeline *p, const struct kms_event *e)
{
	const struct kms_ev_info *ei = kms_ev_info(e->type);

	if (!p->count || !ei || ei->cls < 0 || !e->ptr || !(ei->alloc || ei->free))
		return;
	live__prefetch(&p->live, ei->cls, e->ptr);
	/* a matched free is remembered for double frees: that table's slot too */
	if (ei->free && p->leaks)
		detect__prefetch_free(p->detect, ei->cls, e->ptr);
}

void pipeline__meta(struct pipeline *p, const struct kms_meta *m)
{
	if (p->tap.meta)
		p->tap.meta(p->tap.ctx, m);
	filter__meta(p->filter, m);
	agg__meta(p->agg, m);
	if (p->detect)
		detect__meta(p->detect, m);
}

void pipeline__settle(struct pipeline *p)
{
	p->settling = true;
	if (p->tap.settle)
		p->tap.settle(p->tap.ctx);
}

void pipeline__begin(struct pipeline *p)
{
	if (p->tap.begin)
		p->tap.begin(p->tap.ctx);
}

__u64 pipeline__filtered(const struct pipeline *p)
{
	const struct filter_stats *st = filter__stats(p->filter);

	return st->filtered + st->skipped;
}
