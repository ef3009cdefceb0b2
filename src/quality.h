/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Data quality: what every report prints next to its verdicts. */
#ifndef KMS_QUALITY_H
#define KMS_QUALITY_H

#include <stdbool.h>
#include <linux/types.h>
#include "kmemscope.h"

#define KMS_QUALITY_MAX_EVENTS 32

/* recursion misses of the programs of one event (kmalloc, kfree, ...) */
struct kms_event_misses {
	const char *name;	/* as in processes[].events */
	__u64 misses;		/* before rescue: an upper bound of that event's loss */
};

struct kms_quality {
	__u64 events;		/* records delivered to the aggregator */
	__u64 lost;		/* records the kernel could not ship (ring buffer full) */
	__u64 misses;		/* program runs the kernel skipped (recursion_misses), less rescued */
	__u64 rescued;		/* ... skipped runs whose event a shadow program recorded */
	bool rescue;		/* shadow programs ran after the hot handlers (--rescue on) */
	__u64 stack_failures;	/* stack captures that failed */
	__u64 out_of_order;	/* records that arrived after their time slot */
	__u64 filtered;		/* events excluded by -p/-c/-- filters */
	__u64 self_excluded;	/* kmemscope's own allocations, left out */
	bool self_traced;	/* kmemscope's own process is traced (--trace-self) */
	__u64 pending_lost;	/* function returns whose entry was not seen */
	__u64 bulk_lost;	/* pointers of bulk frees past the BPF handler's bound */
	__u64 kmalloc_twice;	/* the kernel's second event of one large kmalloc(), dropped */
	bool softirq_witness;	/* softirqs no handler saw are counted (softirqs_unseen) */
	__u64 softirqs_unseen;	/* softirq runs in a context where the kernel ran no handler */
	bool task_witness;	/* task runs no handler saw are counted (tasks_unseen) */
	__u64 tasks_unseen;	/* runs of tasks in whose context the kernel ran no handler */
	const char *unseen_tasks; /* ... their processes: "PID (COMM), ...", NULL: none */
	__u64 duration_ns;
	bool traced[KMS_FAM_MAX];	/* family has working alloc and free events */
	bool skipped[KMS_FAM_MAX];	/* family left out on request (-F): not a failure */
	const char *method[KMS_FAM_MAX];/* attach method of the family's alloc event */
	/* per traced event: a shortfall in one event is judged by its own programs' misses */
	struct kms_event_misses event_misses[KMS_QUALITY_MAX_EVENTS];
	int nr_event_misses;
	bool deferred_traced;	/* RCU handoffs and bulk frees are seen (function probes) */
	bool cut_short;		/* read from a trace file that was cut short or damaged */
	const char *deferred_method;
	/* --user: the objects that give the allocation functions (user__allocator()) */
	const char *user_allocator;
};

static inline bool kms_quality_complete(const struct kms_quality *q)
{
	return !q->lost && !q->misses && !q->out_of_order && !q->pending_lost && !q->bulk_lost &&
	       !q->softirqs_unseen && !q->tasks_unseen && !q->cut_short;
}

#endif
