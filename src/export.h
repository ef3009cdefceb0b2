/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The export options stat and leaks share (--folded, --flamegraph, ...), as
 * one argp group, and the writing of what they ask for from a profile
 * (profile.h). An exporter adds its option and its write here, once.
 */
#ifndef KMS_EXPORT_H
#define KMS_EXPORT_H

#include <stdbool.h>
#include <stdio.h>

struct argp;
struct argp_child;
struct kms_quality;
struct profile;
struct profile_opts;
struct session;

struct export_args {
	bool folded;		/* --folded: folded stacks instead of the report */
	int folded_value;	/* PV_*, -1: the command's default */
	const char *flamegraph;	/* --flamegraph FILE */
	int flame_value;	/* --flamegraph-value, -1: --folded's, else the default */
	const char *pprof;	/* --pprof FILE */
};

/*
 * The options: a command lists export_argp_children (the session's options,
 * then these) as its argp's children, with child_inputs[0] its struct
 * session_args and child_inputs[1] its struct export_args.
 */
extern const struct argp export_argp;
extern const struct argp_child export_argp_children[];

/* nothing asked yet: call before parsing */
void export__init(struct export_args *a);
/* anything asked: the session must keep its allocations by stack */
bool export__wanted(const struct export_args *a);
/* the files asked for can be written: 0, or 2 with the error said */
int export__check(const struct export_args *a);
/*
 * Everything asked, value def where the options name none; folded stacks go
 * to report_out (in place of the report). 0, or 1 with the error said.
 */
int export__write(const struct export_args *a, const struct profile *p, int def,
		  FILE *report_out);
/*
 * The profile of a finished session (po: its scope; the rest is filled from
 * s and q), then export__write(). 0, or 1 with the error said.
 */
int export__session(const struct export_args *a, const struct session *s,
		    const struct kms_quality *q, struct profile_opts *po, int def,
		    FILE *report_out);

#endif
