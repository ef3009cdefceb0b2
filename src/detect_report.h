/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reports of the detectors: `kmemscope leaks` and `kmemscope misuse`, built as rows
 * (rows.h) and rendered as text or versioned JSON (docs/json-schema.md), each with the
 * data-quality block.
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
struct rows;

struct detect_report_opts {
	const struct ksyms *ksyms;	/* NULL: addresses stay hex */
	const struct gfp_table *gfp;	/* NULL: GFP values stay hex */
	const char *kernel;
	const char *source;		/* "live" or "file" */
	const struct kms_quality *quality;	/* NULL: none known */
	int baseline_pc[KMS_FAM_MAX];	/* as calibrated, -1 unknown */
	int stack_depth;		/* frames shown per stack (1..KMS_MAX_STACK) */
	/*
	 * which allocations carry a stack (session__stacks(): "cached", "every",
	 * "sites", "none"; NULL: "every")
	 */
	const char *stacks;
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

/* the two documents as rows (rows.h), for the renderers and the tests */
struct rows *detect_report__leaks(const struct detect *d, const struct agg *a,
				  const struct detect_report_opts *o);
struct rows *detect_report__misuse_doc(const struct detect *d, const struct agg *a,
				       const struct detect_report_opts *o);
/* sections as rows (rows.h), for other reports: stat embeds misuse, leaks all three */
struct rows *detect_report__misuse(const struct detect *d, const struct detect_report_opts *o);
struct rows *detect_report__badfrees(const struct detect *d, const struct detect_report_opts *o);
/* the bad-free notes (0, 1), which the leaks document lists with its own */
const char *detect_report__badfree_note(int i);
/* "verdict": is the record stream complete */
struct rows *detect_report__verdict(const struct detect_report_opts *o);
/* frames shown per stack */
int detect_report__depth(const struct detect_report_opts *o);
/* the family names, kept in t: keys of per-family counts (RK_COUNTS) */
const char *const *detect_report__family_names(struct rows *t);
/* renders doc as text or JSON with o's symbols, then frees it */
int detect_report__out(struct rows *doc, const struct detect_report_opts *o, bool json,
		       FILE *out);

/* the body of `kmemscope leaks` (leaks true) and `kmemscope misuse` (false) */
int detect_cmd(int argc, char **argv, bool leaks);

#endif
