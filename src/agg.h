/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The aggregation core. Fed records in time order, from the live collector
 * or from a trace file; it never knows which. Everything a report prints is
 * read from here.
 */
#ifndef KMS_AGG_H
#define KMS_AGG_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include "kmemscope.h"

struct agg;

struct agg_opts {
	const char *comm;	/* only events of processes with this comm (NULL: all) */
	unsigned int families;	/* bit (1 << KMS_FAM_*): families to count (0: all) */
};

struct agg *agg__new(const struct agg_opts *opts);
void agg__free(struct agg *a);

/* e->cpu is set and e->site already resolved (from the stack when the event had none) */
void agg__event(struct agg *a, const struct kms_event *e);
void agg__meta(struct agg *a, const struct kms_meta *m);

/* family of an event type, -1 for none; event name as in docs/json-schema.md */
int kms_ev_family(int type);
const char *kms_ev_name(int type);
const char *kms_family_name(int fam);
bool kms_ev_is_alloc(int type);

#endif
