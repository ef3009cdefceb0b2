/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The filter stage: what of an ordered record stream the consumers (the
 * aggregator, the detectors) see. It runs once, before all of them, on live
 * records and on records read back from a file alike.
 *
 * An allocation outside the filter is dropped. A free outside it is passed on
 * flagged KMS_CTX_OUTSIDE, as the BPF pid filter does: RCU callbacks and
 * workers free what the traced processes allocated, so a consumer counts such
 * a free only when it frees one of the objects it tracks.
 */
#ifndef KMS_FILTER_H
#define KMS_FILTER_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>
#include "kmemscope.h"

struct filter;

struct filter_opts {
	const char *comm;	/* only processes with this comm (NULL: all) */
	unsigned int families;	/* bit (1 << KMS_FAM_*): families to keep (0: all) */
	/* only these processes (tgids; replay: live, BPF filters pids and their children) */
	const pid_t *pids;
	int nr_pids;
};

struct filter_stats {
	__u64 filtered;		/* allocations of processes outside the comm or pid filter */
	__u64 skipped;		/* records of families left out */
};

/* NULL with errno set */
struct filter *filter__new(const struct filter_opts *o);
void filter__free(struct filter *f);
/* false: drop the record; true: pass it on (a free maybe flagged KMS_CTX_OUTSIDE) */
bool filter__event(struct filter *f, struct kms_event *e);
/* task names decide the comm filter: feed every metadata record */
void filter__meta(struct filter *f, const struct kms_meta *m);
const struct filter_stats *filter__stats(const struct filter *f);

#endif
