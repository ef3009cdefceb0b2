/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The data-quality block every report carries (docs/json-schema.md, QUALITY). */
#include <string.h>
#include "report.h"
#include "rows.h"

enum {
	Q_DURATION, Q_EVENTS, Q_LOST, Q_MISSES, Q_BY_EVENT, Q_RESCUE, Q_RESCUED, Q_STACK_FAILURES,
	Q_OUT_OF_ORDER, Q_PENDING_LOST, Q_FILTERED, Q_SELF_TRACED, Q_SELF_EXCLUDED, Q_UNMATCHED,
	Q_EXIT_FREES, Q_REALLOC, Q_SPLIT, Q_MAPPINGS, Q_NOT_COUNTED, Q_DEFERRED, Q_RCU_DONE,
	Q_BULK_LOST, Q_KMALLOC_TWICE, Q_SIRQ_WITNESS, Q_SIRQ_UNSEEN, Q_TASK_WITNESS,
	Q_TASKS_UNSEEN, Q_UNSEEN_TASKS, Q_NOT_TRACED, Q_USER_ALLOC, Q_CUT_SHORT, Q_COMPLETE, Q_NR,
};

static const struct row_col quality_cols[Q_NR] = {
	[Q_DURATION] = { "duration_ns", "duration", RK_NS },
	[Q_EVENTS] = { "events", "events", RK_U64 },
	[Q_LOST] = { "lost", "lost", RK_U64, .note = "(ring buffer full)" },
	[Q_MISSES] = { "misses", "misses", RK_U64,
		       .note = "(program runs the kernel skipped, less those rescued)" },
	[Q_BY_EVENT] = { "misses_by_event", "misses by event", RK_COUNTS },
	[Q_RESCUE] = { "rescue", "rescue", RK_BOOL,
		       .note = "(shadow programs after the hot handlers: --rescue on)" },
	[Q_RESCUED] = { "rescued", "rescued", RK_U64,
			.note = "(recorded by shadow programs, not missed)" },
	[Q_STACK_FAILURES] = { "stack_failures", "stack failures", RK_U64 },
	[Q_OUT_OF_ORDER] = { "out_of_order", "out of order", RK_U64 },
	[Q_PENDING_LOST] = { "pending_lost", "returns without entry", RK_U64 },
	[Q_FILTERED] = { "filtered", "filtered", RK_U64, .note = "(excluded, not lost)" },
	[Q_SELF_TRACED] = { "self_traced", "kmemscope traced", RK_BOOL,
			    .note = "(its own process; --trace-self puts it back)" },
	[Q_SELF_EXCLUDED] = { "self_excluded", "kmemscope's own", RK_U64,
			      .note = "(its events left out, not lost)" },
	[Q_UNMATCHED] = { "unmatched_frees", "unmatched frees", RK_U64,
			  .note = "(allocated before tracing, in bulk, or alloc lost)" },
	[Q_EXIT_FREES] = { "exit_frees", "exit frees", RK_U64,
			   .note = "(the C library's thread cache released at thread exit)" },
	[Q_REALLOC] = { "realloc_without_free", "realloc without free", RK_U64,
			.note = "(a live address allocated again)" },
	[Q_SPLIT] = { "page_split_frees", "page split frees", RK_U64,
		      .note = "(order-0 frees inside a larger allocation)" },
	[Q_MAPPINGS] = { "vmap_mappings", "vmap mappings", RK_U64,
			 .note = "(ioremap, vmap: left out of vmalloc)" },
	[Q_NOT_COUNTED] = { "not_counted", "not counted", RK_U64, .note = "(out of memory)" },
	[Q_DEFERRED] = { "deferred_traced", "deferred frees traced", RK_BOOL,
			 .note = "(kfree_rcu, bulk frees: see 'kmemscope probe')" },
	[Q_RCU_DONE] = { "rcu_completed", "rcu frees completed", RK_U64,
			 .note = "(real frees of objects handed to RCU, not counted again)" },
	[Q_BULK_LOST] = { "bulk_lost", "bulk pointers lost", RK_U64,
			  .note = "(bulk-freed pointers not recorded)" },
	[Q_KMALLOC_TWICE] = { "kmalloc_twice", "kmalloc traced twice", RK_U64,
			      .note = "(the kernel's second event of one large kmalloc, dropped)" },
	[Q_SIRQ_WITNESS] = { "softirq_witness", "softirq witness", RK_BOOL,
			     .note = "(softirqs no handler saw are counted)" },
	[Q_SIRQ_UNSEEN] = { "softirqs_unseen", "softirqs unseen", RK_U64,
			    .note = "(ran in a task where the kernel runs no handler)" },
	[Q_TASK_WITNESS] = { "task_witness", "task witness", RK_BOOL,
			     .note = "(task runs no handler saw are counted)" },
	[Q_TASKS_UNSEEN] = { "tasks_unseen", "task runs unseen", RK_U64,
			     .note = "(of tasks where the kernel runs no handler)" },
	[Q_UNSEEN_TASKS] = { "unseen_tasks", "unseen tasks", RK_STR,
			     .note = "(their processes, as pid (comm))" },
	[Q_NOT_TRACED] = { "families_not_traced", "families not traced", RK_NAMES },
	[Q_USER_ALLOC] = { "user_allocator", "user allocator", RK_STR,
			   .note = "(--user: the objects that give malloc and the rest)" },
	[Q_CUT_SHORT] = { "cut_short", "trace cut short", RK_BOOL,
			  .note = "(read from a damaged or unfinished trace file)" },
	[Q_COMPLETE] = { "complete", "complete", RK_BOOL, ROW_LOUD_FALSE },
};

struct rows *report__quality(const struct agg *a, const struct kms_quality *quality)
{
	const struct agg_stats *st = agg__stats(a);
	struct rows *t = rows__new("quality", "Data quality", RS_LINES, true, quality_cols, Q_NR);
	const char *not_traced[KMS_FAM_MAX], *ev_names[KMS_QUALITY_MAX_EVENTS];
	__u64 ev_misses[KMS_QUALITY_MAX_EVENTS];
	struct kms_quality q;
	struct row_cell *r;
	int f, n = 0;

	r = rows__add(t);
	if (!r)
		return t;
	if (quality) {
		q = *quality;
	} else {
		/* no collector numbers (a bare aggregation): what agg saw */
		memset(&q, 0, sizeof(q));
		q.events = st->events + st->metas;
		q.duration_ns = st->last_ts > st->first_ts ? st->last_ts - st->first_ts : 0;
		for (f = 0; f < KMS_FAM_MAX; f++)
			q.traced[f] = true;
		q.self_traced = true;
	}
	for (f = 0; f < KMS_FAM_MAX; f++)
		if (!q.traced[f] && !q.skipped[f])
			not_traced[n++] = kms_family_name(f);
	for (f = 0; f < q.nr_event_misses; f++) {
		ev_names[f] = q.event_misses[f].name;
		ev_misses[f] = q.event_misses[f].misses;
	}
	r[Q_DURATION].u = q.duration_ns;
	r[Q_EVENTS].u = q.events;
	r[Q_LOST].u = q.lost;
	r[Q_MISSES].u = q.misses;
	r[Q_BY_EVENT].n = q.nr_event_misses;
	r[Q_BY_EVENT].names = rows__keep(t, ev_names, f * sizeof(ev_names[0]));
	r[Q_BY_EVENT].v = rows__keep(t, ev_misses, f * sizeof(ev_misses[0]));
	r[Q_RESCUE].u = q.rescue;
	r[Q_RESCUED].u = q.rescued;
	r[Q_STACK_FAILURES].u = q.stack_failures;
	r[Q_OUT_OF_ORDER].u = q.out_of_order;
	r[Q_PENDING_LOST].u = q.pending_lost;
	/* frees from outside the filters that freed nothing of ours */
	r[Q_FILTERED].u = q.filtered + st->filtered;
	r[Q_SELF_TRACED].u = q.self_traced;
	/* its allocations, and its frees that freed nothing traced */
	r[Q_SELF_EXCLUDED].u = q.self_excluded + st->self;
	r[Q_UNMATCHED].u = st->unmatched_frees;
	r[Q_EXIT_FREES].u = st->exit_frees;
	r[Q_REALLOC].u = st->realloc_without_free;
	r[Q_SPLIT].u = st->page_split_frees;
	r[Q_MAPPINGS].u = st->vmap_mappings;
	r[Q_NOT_COUNTED].u = st->nomem;
	r[Q_DEFERRED].u = quality ? q.deferred_traced : false;
	r[Q_RCU_DONE].u = st->rcu_completed;
	r[Q_BULK_LOST].u = q.bulk_lost;
	r[Q_KMALLOC_TWICE].u = q.kmalloc_twice;
	r[Q_SIRQ_WITNESS].u = q.softirq_witness;
	r[Q_SIRQ_UNSEEN].u = q.softirqs_unseen;
	r[Q_TASK_WITNESS].u = q.task_witness;
	r[Q_TASKS_UNSEEN].u = q.tasks_unseen;
	r[Q_UNSEEN_TASKS].s = q.unseen_tasks;
	r[Q_NOT_TRACED].n = n;
	r[Q_NOT_TRACED].names = rows__keep(t, not_traced, n * sizeof(not_traced[0]));
	r[Q_USER_ALLOC].s = q.user_allocator;
	r[Q_CUT_SHORT].u = q.cut_short;
	r[Q_COMPLETE].u = kms_quality_complete(&q) && !st->nomem;
	if (q.cut_short)
		rows__remark(t, "\n!!! TRACE FILE CUT SHORT: the counts cover the records read "
			     "before the damage or the end of the file !!!");
	if (q.lost || q.misses || q.out_of_order || q.pending_lost || q.bulk_lost ||
	    q.softirqs_unseen || q.tasks_unseen || st->nomem)
		rows__remark(t, "\n!!! INCOMPLETE DATA: %llu records lost, %llu program runs "
			     "missed, %llu out of order, %llu returns without entry, %llu not "
			     "counted, %llu bulk-freed pointers not recorded, %llu softirqs and "
			     "%llu task runs unseen: every count above is a lower bound and frees "
			     "may show as unmatched !!!",
			     (unsigned long long)q.lost, (unsigned long long)q.misses,
			     (unsigned long long)q.out_of_order, (unsigned long long)q.pending_lost,
			     (unsigned long long)st->nomem, (unsigned long long)q.bulk_lost,
			     (unsigned long long)q.softirqs_unseen,
			     (unsigned long long)q.tasks_unseen);
	return t;
}
