/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Atomic-context misuse: each allocation's context, from its preempt count
 * against the family's calibrated baseline, and the findings a context and
 * a GFP make (detect.h).
 */
#include <string.h>
#include "detect_int.h"

#define HIGH_ORDER	3	/* page orders from here on are "high order" */

static const char *const ctx_names[DCTX_NR] = {
	[DCTX_PROCESS] = "process",
	[DCTX_PREEMPT_OFF] = "preempt_disabled",
	[DCTX_BH_OFF] = "bh_disabled",
	[DCTX_SOFTIRQ] = "softirq",
	[DCTX_HARDIRQ] = "hardirq",
	[DCTX_NMI] = "nmi",
	[DCTX_UNKNOWN] = "unknown",
};

static const char *const misuse_names[MIS_NR] = {
	[MIS_BLOCKING_IN_ATOMIC] = "blocking_gfp_in_atomic",
	[MIS_VMALLOC_IN_ATOMIC] = "vmalloc_in_atomic",
	[MIS_ATOMIC_IN_PROCESS] = "atomic_gfp_in_process",
	[MIS_HIGH_ORDER_ATOMIC] = "high_order_atomic",
	[MIS_ALLOC_IN_ATOMIC_ON_RT] = "alloc_in_atomic_on_rt",
};

const char *detect_ctx_name(int ctx)
{
	return ctx >= 0 && ctx < DCTX_NR ? ctx_names[ctx] : NULL;
}

const char *detect_misuse_name(int kind)
{
	return kind >= 0 && kind < MIS_NR ? misuse_names[kind] : NULL;
}

bool detect_misuse_is_info(int kind)
{
	return kind == MIS_ATOMIC_IN_PROCESS || kind == MIS_HIGH_ORDER_ATOMIC;
}

/*
 * Where preemption is really off on PREEMPT_RT: a raw_spinlock_t or
 * preempt_disable() (the depth above the baseline), a hard interrupt handler
 * (IRQF_NO_THREAD, the timer, IPIs), an NMI. spinlock_t, rwlock_t and
 * local_lock_t are rtmutexes there and leave the preempt count alone, and RT
 * keeps the softirq count in the task, not in the preempt count: their
 * allocations classify as process context, correctly. A softirq or bh-disabled
 * count, should one show, is not taken for a hard context.
 */
static bool rt_hard_atomic(int ctx)
{
	return ctx == DCTX_PREEMPT_OFF || ctx == DCTX_HARDIRQ || ctx == DCTX_NMI;
}

/* out of line: one allocation in hundreds makes a finding, and inlined it slowed every one */
static __attribute__((noinline, cold)) void misuse_add(struct detect *d, int kind, int ctx,
						       int fam, const struct kms_event *e)
{
	struct detect_misuse key;
	struct detect_misuse *m;
	bool created;
	long i;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.ctx = ctx;
	key.family = fam;
	key.stack_id = e->stack_id < 0 ? -1 : e->stack_id;
	key.site = e->site;
	key.obj = e->obj;
	key.gfp = e->gfp;
	i = kvec__get(&d->misuse, &key, &created);
	if (i < 0)
		return;
	m = kvec__at(&d->misuse, i);
	if (created) {
		m->pc = e->pc;
		m->pid = e->pid;
		m->order = e->order;
		m->first_ts = e->ts;
	}
	m->count++;
}

void detect_misuse_check(struct detect *d, const struct kms_event *e, int fam, int nested)
{
	int base = d->o.baseline_pc[fam];
	int ctx = detect__classify(e->ctx, e->pc, base);
	bool atomic, blocking, gfp_known;

	d->ms.by_ctx[ctx]++;
	if (ctx == DCTX_UNKNOWN) {
		if (!(e->ctx & KMS_CTX_KNOWN))
			d->ms.no_context++;
		else
			d->ms.no_baseline++;
		return;
	}
	/* the outer slab/vmalloc allocation carries the verdict for its pages */
	if (nested >= 0) {
		d->ms.nested_skipped++;
		return;
	}
	d->ms.checked++;
	atomic = ctx != DCTX_PROCESS;
	/*
	 * No GFP from the attach point (vmalloc's and 6.1 percpu's tracepoints),
	 * or 0 (files recorded before KMS_GFP_UNKNOWN): vmalloc may sleep
	 * whatever was asked
	 */
	gfp_known = d->o.gfp_direct_reclaim && e->gfp && e->gfp != KMS_GFP_UNKNOWN;
	blocking = gfp_known && (e->gfp & d->o.gfp_direct_reclaim);
	if (!d->o.gfp_direct_reclaim)
		d->ms.gfp_unknown++;

	if (atomic && fam == KMS_FAM_VMALLOC && (!gfp_known || blocking))
		misuse_add(d, MIS_VMALLOC_IN_ATOMIC, ctx, fam, e);
	else if (atomic && blocking)
		misuse_add(d, MIS_BLOCKING_IN_ATOMIC, ctx, fam, e);
	/*
	 * PREEMPT_RT: every allocator takes a sleeping lock (SLUB's per-CPU
	 * local_lock on each allocation, the page allocator's per-CPU lists and
	 * zone lock, pcpu_lock, vmap_area_lock), so GFP_ATOMIC and GFP_NOWAIT are
	 * bugs there too, and the GFP need not be known
	 */
	else if (d->o.preempt_rt && rt_hard_atomic(ctx))
		misuse_add(d, MIS_ALLOC_IN_ATOMIC_ON_RT, ctx, fam, e);
	if (fam == KMS_FAM_VMALLOC || !gfp_known)
		return;
	if (!atomic && !blocking)
		misuse_add(d, MIS_ATOMIC_IN_PROCESS, ctx, fam, e);
	if (fam == KMS_FAM_PAGE && e->order >= HIGH_ORDER && !blocking)
		misuse_add(d, MIS_HIGH_ORDER_ATOMIC, ctx, fam, e);
}

size_t detect__nr_misuse(const struct detect *d)
{
	return d->misuse.nr;
}

const struct detect_misuse *detect__misuse(const struct detect *d, size_t i)
{
	return i < d->misuse.nr ? kvec__at(&d->misuse, i) : NULL;
}

const struct detect_misuse_stats *detect__misuse_stats(const struct detect *d)
{
	return &d->ms;
}

