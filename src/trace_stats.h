/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a trace file's records are (kmemscope info): every DATA block decoded
 * and its records counted, by part of the recording (calibration before the
 * BEGIN mark, the trace, the settle period after the SETTLE mark), by event
 * type and by family. The trace part is what the reports count.
 */
#ifndef KMS_TRACE_STATS_H
#define KMS_TRACE_STATS_H

#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"

struct trace_reader;

enum trace_part {
	TRACE_PART_CALIBRATION,	/* before the BEGIN mark: start-up calibration */
	TRACE_PART_TRACE,	/* the recording's window */
	TRACE_PART_SETTLE,	/* after the SETTLE mark: frees of the settle period */
	TRACE_PART_NR,
};

struct trace_fam_counts {
	__u64 events, allocs, frees, fails;
};

struct trace_counts {
	__u64 records;		/* every record decoded: events, metadata, marks */
	__u64 meta;		/* metadata records (task names, caches, devices, losses) */
	__u64 events[TRACE_PART_NR];
	__u64 by_type[TRACE_PART_NR][KMS_EV_NR_EVENTS];
	/* an allocation failure counts in the family its record names */
	struct trace_fam_counts fam[TRACE_PART_NR][KMS_FAM_MAX];
	__u64 t_first, t_last;	/* time of the first and last event of the trace part */
};

/*
 * Decode every valid DATA block of r into c. 0, or -EINVAL with why set when
 * a block does not decode: c then counts the records before it.
 */
int trace_stats__count(struct trace_reader *r, struct trace_counts *c, char *why, size_t len);
const char *trace_part_name(enum trace_part p);

#endif
