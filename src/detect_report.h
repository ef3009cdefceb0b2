/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reports of the detectors: `kmemscope leaks` and `kmemscope misuse`, text and
 * versioned JSON (docs/json-schema.md), each with the data-quality block.
 */
#ifndef KMS_DETECT_REPORT_H
#define KMS_DETECT_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include "agg.h"
#include "detect.h"
#include "quality.h"

struct ksyms;
struct gfp_table;

struct detect_report_opts {
	const struct ksyms *ksyms;	/* NULL: addresses stay hex */
	const struct gfp_table *gfp;	/* NULL: GFP values stay hex */
	const char *kernel;
	const struct kms_quality *quality;	/* NULL: none known */
	int baseline_pc[KMS_FAM_MAX];	/* as calibrated, -1 unknown */
	int stack_depth;		/* frames shown per stack (1..KMS_MAX_STACK) */
	int top;			/* rows per table, 0: all */
	__u64 now;			/* end of the trace, the clock of the records */
	__u64 min_age_ns;		/* leaks younger than this are not reported */
	unsigned int growth_min;	/* intervals in a row of growth to report a stack */
	unsigned int snapshots;		/* interval snapshots taken (0: no growth data) */
	bool misuse;			/* include the misuse section */
	bool include_retained;		/* memory retained by design counts as leak candidates */
	__u64 settle_ns;		/* frees applied this long after the window */
	__u64 after_window;		/* allocations made while settling (not tracked) */
};

int detect_report__leaks_text(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out);
int detect_report__leaks_json(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out);
int detect_report__misuse_text(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out);
int detect_report__misuse_json(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out);
/* one line per stack growing for growth_min intervals in a row, for --interval ticks */
void detect_report__growth_tick(const struct detect *d, const struct detect_report_opts *o,
				unsigned int tick, FILE *out);

/* the misuse section alone, for other reports (stat) */
int detect_report__misuse_section_text(const struct detect *d, const struct detect_report_opts *o,
				       FILE *out);
struct json_t *detect_report__misuse_section_json(const struct detect *d,
						  const struct detect_report_opts *o);

/* the body of `kmemscope leaks` (leaks true) and `kmemscope misuse` (false) */
int detect_cmd(int argc, char **argv, bool leaks);

#endif
