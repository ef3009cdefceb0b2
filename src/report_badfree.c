/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Bad frees (wrong API, wrong cache, double free), the section `kmemscope leaks` embeds. */
#include <string.h>
#include "detect_report.h"
#include "rows.h"

static const char *const notes[] = {
	"Free stacks are not captured: bad frees show the free's call site and the "
	"allocation's stack.",
	"Double frees of slab objects are suspected, not proven: kmem_cache_alloc_bulk() "
	"(e.g. the networking skb caches) hands out objects without a trace event, so an "
	"object freed, reallocated in bulk and freed again looks like a double free.",
};

const char *detect_report__badfree_note(int i)
{
	return i >= 0 && i < (int)(sizeof(notes) / sizeof(notes[0])) ? notes[i] : NULL;
}

/*
 * Misses that could have made a finding: those of an event of the object
 * class of its allocation or of its free (a skipped allocation between two
 * frees, a skipped free of an object still thought live), or of an event
 * this build does not know. A miss of another class's event cannot.
 */
static bool class_missed(const struct kms_quality *q, int cls_a, int cls_b)
{
	for (int i = 0; i < q->nr_event_misses; i++) {
		const struct kms_event_misses *m = &q->event_misses[i];
		int t = 1;

		if (!m->misses)
			continue;
		while (t < KMS_EV_NR_EVENTS &&
		       !(kms_ev_table[t].name && !strcmp(kms_ev_table[t].name, m->name)))
			t++;
		if (t == KMS_EV_NR_EVENTS || kms_ev_class(t) == cls_a || kms_ev_class(t) == cls_b)
			return true;
	}
	return false;
}

/*
 * Slab objects come back through untraced bulk allocations; lost or
 * out-of-order records, function returns without their entry, and softirqs
 * and task runs no handler saw can hide any allocation or free; misses only those of
 * their own class.
 */
static bool suspected(const struct detect_badfree *b, const struct detect_report_opts *o)
{
	const struct kms_quality *q = o->quality;
	int fam = kms_ev_family(b->alloc_type);

	if (q && (q->lost || q->out_of_order || q->pending_lost || q->bulk_lost || q->cut_short ||
		  q->softirqs_unseen || q->tasks_unseen ||
		  (q->misses && class_missed(q, kms_ev_class(b->alloc_type),
					     kms_ev_class(b->free_type)))))
		return true;
	return b->kind == BF_DOUBLE_FREE && (fam == KMS_FAM_KMALLOC || fam == KMS_FAM_CACHE);
}

enum {
	F_KIND, F_ALLOC_EVENT, F_FREE_EVENT, F_COUNT, F_SUSPECTED, F_PTR, F_ALLOC_SITE,
	F_ALLOC_CACHE, F_ALLOC_PROC, F_FREE_SITE, F_FREE_CACHE, F_FIRST_FREE, F_FREE_PROC,
	F_ALLOC_STACK, F_NR,
};

static const struct row_col finding_cols[F_NR] = {
	[F_KIND] = { "kind", "kind", RK_STR },
	[F_ALLOC_EVENT] = { "alloc_event", "allocated by", RK_STR },
	[F_FREE_EVENT] = { "free_event", "freed by", RK_STR },
	[F_COUNT] = { "count", "count", RK_U64 },
	[F_SUSPECTED] = { "suspected", "suspected", RK_BOOL },
	[F_PTR] = { "ptr", "e.g.", RK_HEX },
	[F_ALLOC_SITE] = { "alloc_site", "allocated at", RK_SITE },
	[F_ALLOC_CACHE] = { "alloc_cache", "alloc cache", RK_STR },
	[F_ALLOC_PROC] = { "alloc_process", "alloc pid", RK_PROC },
	[F_FREE_SITE] = { "free_site", "freed at", RK_SITE },
	[F_FREE_CACHE] = { "free_cache", "free cache", RK_STR },
	/* double frees: where the first free was */
	[F_FIRST_FREE] = { "first_free_site", "freed first at", RK_SITE },
	[F_FREE_PROC] = { "free_process", "free pid", RK_PROC },
	[F_ALLOC_STACK] = { "alloc_stack", "allocation stack", RK_STACK },
};

static void finding(struct rows *t, const struct detect *d, const struct detect_report_opts *o,
		    const struct detect_badfree *b)
{
	struct row_cell *r = rows__add(t);
	__u64 ips[KMS_MAX_STACK];
	int nf;

	if (!r)
		return;
	nf = detect__frames(d, b->alloc_stack_id, b->alloc_site, ips, detect_report__depth(o));
	r[F_KIND].s = detect_badfree_name(b->kind);
	r[F_ALLOC_EVENT].s = kms_ev_name(b->alloc_type);
	r[F_FREE_EVENT].s = kms_ev_name(b->free_type);
	r[F_COUNT].u = b->count;
	r[F_SUSPECTED].u = suspected(b, o);
	r[F_PTR].u = b->ptr;
	r[F_ALLOC_SITE].u = b->alloc_site;
	r[F_ALLOC_CACHE].s = detect__obj_name(d, b->alloc_obj);
	r[F_ALLOC_CACHE].null = !r[F_ALLOC_CACHE].s;
	r[F_ALLOC_PROC].u = b->alloc_pid;
	r[F_ALLOC_PROC].s = detect__comm(d, b->alloc_pid);
	r[F_FREE_SITE].u = b->free_site;
	r[F_FREE_CACHE].s = detect__obj_name(d, b->free_obj);
	r[F_FREE_CACHE].null = !r[F_FREE_CACHE].s;
	r[F_FIRST_FREE].u = b->first_free_site;
	r[F_FIRST_FREE].null = b->kind != BF_DOUBLE_FREE;
	r[F_FREE_PROC].u = b->free_pid;
	r[F_FREE_PROC].s = detect__comm(d, b->free_pid);
	r[F_ALLOC_STACK].n = nf > 0 ? nf : 0;
	r[F_ALLOC_STACK].v = rows__keep(t, ips, r[F_ALLOC_STACK].n * sizeof(ips[0]));
}

enum { B_WRONG_API, B_WRONG_CACHE, B_DOUBLE_FREE, B_BEFORE, B_EVICTED, B_FREE_STACKS, B_NR };

static const struct row_col badfree_cols[B_NR] = {
	[B_WRONG_API] = { "wrong_api", "wrong API", RK_U64 },
	[B_WRONG_CACHE] = { "wrong_cache", "wrong cache", RK_U64 },
	[B_DOUBLE_FREE] = { "double_free", "double free", RK_U64 },
	[B_BEFORE] = { "allocated_before_trace", "allocated before trace", RK_COUNTS,
		       .note = "(freed, allocation not seen: expected)" },
	[B_EVICTED] = { "freed_set_evicted", "freed set evicted", RK_U64,
			.note = "(recently freed addresses forgotten: double frees may hide)" },
	[B_FREE_STACKS] = { "free_stacks", "free stacks", RK_BOOL },
};

_Static_assert((int)B_WRONG_API == (int)BF_WRONG_API &&
	       (int)B_WRONG_CACHE == (int)BF_WRONG_CACHE &&
	       (int)B_DOUBLE_FREE == (int)BF_DOUBLE_FREE, "bad free kinds index their columns");

struct rows *detect_report__badfrees(const struct detect *d, const struct detect_report_opts *o)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	struct rows *t = rows__new("bad_frees", "Bad frees", RS_LINES, true, badfree_cols, B_NR);
	struct rows *f = rows__new("findings", "Bad free findings", RS_BLOCKS, false,
				   finding_cols, F_NR);
	struct row_cell *r = rows__add(t);
	size_t i, n = detect__nr_badfree(d);

	rows__child(t, f);
	if (!r)
		return t;
	for (i = 0; i < n; i++) {
		const struct detect_badfree *b = detect__badfree(d, i);

		/* the kinds are the first three columns, in enum order */
		r[b->kind].u += b->count;
		if (o->top <= 0 || i < (size_t)o->top)
			finding(f, d, o, b);
	}
	r[B_BEFORE].names = detect_report__family_names(t);
	r[B_BEFORE].v = fs->unmatched;
	r[B_BEFORE].n = KMS_FAM_MAX;
	r[B_EVICTED].u = fs->freed_evicted;
	r[B_FREE_STACKS].u = false;
	/* the notes are the document's (detect_report__badfree_note) */
	rows__total(f, n);
	return t;
}
