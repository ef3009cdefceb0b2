/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Deferred frees, one stage before every consumer. kfree_rcu() frees an
 * object twice in the record stream: when the caller hands it to RCU
 * (KMS_EV_RCU_FREE, the free that counts: the caller is done with it) and
 * when the RCU worker really frees it a grace period later (kfree_bulk(),
 * vfree() or kfree()). This stage marks the second one KMS_CTX_RCU_DONE so
 * that the aggregator and the detectors count one free, not a double or an
 * unmatched one.
 */
#ifndef KMS_DEFERRED_H
#define KMS_DEFERRED_H

#include <linux/types.h>
#include "kmemscope.h"

struct deferred;

struct deferred_stats {
	__u64 handoffs;		/* objects handed to RCU */
	__u64 completed;	/* of those, real frees seen and marked */
	__u64 reused;		/* real free not seen, but the address was allocated again */
	__u64 pending;		/* handed over, real free not seen yet */
	__u64 nomem;		/* handoffs not remembered: their real free counts as unmatched */
};

struct deferred *deferred__new(void);
void deferred__free(struct deferred *d);
/* call for every record, in order, before the consumers see it; may set e->ctx */
void deferred__event(struct deferred *d, struct kms_event *e);
const struct deferred_stats *deferred__stats(const struct deferred *d);

#endif
