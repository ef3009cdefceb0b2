/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel-CI gate (docs/ci.md): a profile of each run (per-key values and
 * verdicts, from a trace file or a JSON report), the comparison of two sets
 * of runs (diff), and the rules that turn it into a verdict (check).
 *
 * Profiles, diffs and check results are jansson documents: the baseline file
 * stores profiles as they are, and every output is rendered from them.
 */
#ifndef KMS_GATE_H
#define KMS_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

/* exit statuses of check (docs/ci.md) */
enum {
	GATE_PASS = 0,
	GATE_REGRESSION = 1,
	GATE_USAGE = 2,
	GATE_NOT_COMPARABLE = 3,
};

#define GATE_BASELINE_SCHEMA	"kmemscope.baseline"
#define GATE_BASELINE_VERSION	1

/* the key kinds, in the order diff and check list them */
extern const char *const gate_kinds[];
#define GATE_NR_KINDS 6
/* the values every key has, and which of them count bytes */
extern const char *const gate_metrics[];
#define GATE_NR_METRICS 4
int gate_kind_index(const char *name);
int gate_metric_index(const char *name);
bool gate_metric_is_bytes(int m);

/* ---- statistics (gate_stats.c) ---- */
double gate_median(const double *v, size_t n);
/* Mann-Whitney U of y against x: pairs with y > x, ties counting one half */
double gate_mw_u(const double *x, size_t m, const double *y, size_t n);
/* two-sided p-value of U for samples of m and n */
double gate_mw_p(const double *x, size_t m, const double *y, size_t n);
/* the smallest two-sided p-value m and n runs can give (no ties) */
double gate_mw_min_p(size_t m, size_t n);

/* ---- profiles (gate_profile.c) ---- */
/*
 * Append the profiles in path to runs: one for a trace file or a JSON report,
 * every run of a baseline. 0, or -1 after printing one line saying why.
 */
int gate_load(const char *path, json_t *runs);
/* the profile holds a report's tables: "stat", "leaks" or "misuse" */
bool gate_holds(const json_t *prof, const char *section);
/*
 * offsets and compiler clone suffixes dropped from every key
 * ("f.isra.0+0x1f [m]" -> "f [m]"), the values of keys that become one added
 */
json_t *gate_canon(const json_t *profile, bool exact_offsets);
/*
 * NULL when b and a are comparable, else what differs ("workload: 'x' vs 'y'")
 * in why.
 */
const char *gate_incomparable(const json_t *b, const json_t *a, char *why, size_t len);

/* ---- comparison (gate_compare.c) ---- */
/* every run of both sides holds the reports the key kind is made of */
bool gate_kind_held(const json_t *base, const json_t *cur, const char *kind);
/* diff of two sets of canonical profiles for one key kind: kmemscope.diff rows, or NULL */
json_t *gate_diff_rows(const json_t *base, const json_t *cur, const char *kind);
/* new, vanished and persisting leak, misuse and bad-free verdicts */
json_t *gate_diff_verdicts(const json_t *base, const json_t *cur);

/* ---- rules (gate_rules.c) ---- */
enum gate_limit_type {
	GATE_LIMIT_NONE,
	GATE_LIMIT_RELATIVE,	/* "10%": at most 10 % more than the baseline */
	GATE_LIMIT_INCREASE,	/* "+4096": at most 4096 more */
	GATE_LIMIT_MAX,		/* "1M": the current value at most 1 MiB */
};

struct gate_limit {
	enum gate_limit_type type;
	double value;
};

enum {
	GATE_FAIL_LEAK = 1 << 0,
	GATE_FAIL_MISUSE = 1 << 1,
	GATE_FAIL_BAD_FREE = 1 << 2,
	GATE_FAIL_NEW_SITE = 1 << 3,
	GATE_FAIL_NEW_ORDER = 1 << 4,
};

struct gate_rule {		/* one line of a rules file */
	char *kind;
	char *key;		/* canonical key, as diff prints it */
	int line;
	bool ignore;		/* never fails */
	struct gate_limit limit[GATE_NR_METRICS];
};

struct gate_rules {
	struct gate_limit max_increase[GATE_NR_METRICS];
	/* a change counts only when the key's bytes moved by this much */
	double min_delta;
	unsigned int fail_on;
	unsigned int kinds;			/* bit i: gate_kinds[i] is checked */
	double alpha;
	bool exact_offsets;
	struct gate_rule *rules;
	size_t nr_rules;
};

void gate_rules_init(struct gate_rules *r);
void gate_rules_free(struct gate_rules *r);
/* the option values; 0, or -1 with why set */
int gate_parse_max_increase(struct gate_rules *r, const char *s, char *why, size_t len);
int gate_parse_min_delta(struct gate_rules *r, const char *s, char *why, size_t len);
int gate_parse_fail_on(struct gate_rules *r, const char *s, char *why, size_t len);
int gate_parse_kinds(unsigned int *kinds, const char *s, char *why, size_t len);
/* a rules file's text; 0, or -1 with why naming the line */
int gate_parse_rules(struct gate_rules *r, const char *text, char *why, size_t len);
/* the rule line for (kind, key), NULL when none */
const struct gate_rule *gate_rule_for(const struct gate_rules *r, const char *kind,
				      const char *key);
/* "bytes=10%" */
void gate_limit_name(const struct gate_limit *l, int metric, char *buf, size_t len);

/* ---- the decision (gate_compare.c) ---- */
/*
 * kmemscope.check document: every evaluated (key, rule) in "results", the
 * count of failures in "regressions".
 */
json_t *gate_check(const json_t *base, const json_t *cur, const struct gate_rules *r);

/* ---- output (gate_output.c): renderings of diff and check documents ---- */
/* top: changed keys shown, 0 for all */
void gate_print_diff(FILE *out, const json_t *doc, unsigned long top);
/* every line starts with prefix ("# " inside KTAP) */
void gate_print_check(FILE *out, const json_t *doc, const char *prefix);
/* KTAP version 1 (Documentation/dev-tools/ktap.rst): one test per result */
void gate_print_ktap(FILE *out, const json_t *doc);
/* 0, or -1 with the error printed */
int gate_write_junit(const char *path, const json_t *doc);
/* under GitHub Actions: ::error lines and a Markdown step summary */
void gate_print_github(FILE *out, const json_t *doc);

#endif
