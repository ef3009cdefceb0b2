/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reports over an aggregation, as rows (rows.h): text and versioned JSON (docs/json-schema.md). */
#ifndef KMS_REPORT_H
#define KMS_REPORT_H

#include <stdio.h>
#include "agg.h"
#include "quality.h"

struct ksyms;
struct gfp_table;
struct rows;

#define REPORT_MAX_SORT 4

struct report_opts {
	const struct ksyms *ksyms;	/* NULL: addresses stay hex */
	const struct gfp_table *gfp;	/* NULL: GFP values stay hex */
	const char *kernel;		/* uname -r of the traced system */
	const char *source;		/* "live" or "file" */
	const struct kms_quality *quality;
	int sort[REPORT_MAX_SORT];	/* sort keys for sites, from report__parse_sort() */
	int nr_sort;
	int top;			/* rows per table, 0: all */
	/* a section another module adds (stat's misuse summary), before the quality block */
	struct rows *(*extra)(void *ctx);
	void *extra_ctx;
};

/* "bytes,count" -> keys; returns 0 or -EINVAL with the bad key in *bad */
int report__parse_sort(const char *spec, struct report_opts *o, const char **bad);
/* comma-separated list of the valid sort key names, for --help and errors */
const char *report__sort_keys(void);

int report__stat_text(const struct agg *a, const struct report_opts *o, FILE *out);
int report__stat_json(const struct agg *a, const struct report_opts *o, FILE *out);

/* the whole report as rows (rows.h), for the two renderers and the tests */
struct rows *report__stat(const struct agg *a, const struct report_opts *o);
/*
 * The data-quality block of every report ("quality"), for other reports to embed;
 * quality NULL: what the aggregation saw alone.
 */
struct rows *report__quality(const struct agg *a, const struct kms_quality *quality);

#endif
