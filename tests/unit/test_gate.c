/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The CI gate's pure parts: medians and the Mann-Whitney U test against
 * values worked out by hand from the definition, the rules' parsers, and
 * diff/check on profiles built here.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gate.h"

/* ---- statistics ---- */

static void test_median(void **state)
{
	double odd[] = { 5, 1, 3 }, even[] = { 4, 1, 3, 2 };

	assert_true(gate_median(odd, 3) == 3);
	assert_true(gate_median(even, 4) == 2.5);
	assert_true(gate_median(odd, 0) == 0);
}

static void test_mw_u(void **state)
{
	double x[] = { 1, 2, 3 }, y[] = { 2, 4 };

	/* y=2: beats 1, ties 2 -> 1.5; y=4: beats all three -> 3 */
	assert_true(gate_mw_u(x, 3, y, 2) == 4.5);
	assert_true(gate_mw_u(y, 2, x, 3) == 6 - 4.5);
}

static void test_mw_exact(void **state)
{
	double a[] = { 10, 11, 12, 13 }, b[] = { 20, 21, 22, 23 }, c[] = { 10, 20, 11, 21 };
	double same[] = { 7, 7, 7, 7 };

	/* full separation of 4 and 4: 2 of the C(8,4) = 70 orderings */
	assert_true(fabs(gate_mw_p(a, 4, b, 4) - 2.0 / 70) < 1e-12);
	assert_true(fabs(gate_mw_p(b, 4, a, 4) - 2.0 / 70) < 1e-12);
	/* all tied: no evidence at all */
	assert_true(gate_mw_p(same, 4, same, 4) == 1);
	/* interleaved: far from clear */
	assert_true(gate_mw_p(a, 4, c, 4) > 0.2);
	/* 3 and 3 cannot go below 2/20 */
	assert_true(fabs(gate_mw_min_p(3, 3) - 0.1) < 1e-12);
	assert_true(fabs(gate_mw_min_p(4, 4) - 2.0 / 70) < 1e-12);
	assert_true(gate_mw_min_p(1, 5) == 1.0 / 3);
}

static void test_mw_exact_distribution(void **state)
{
	/* m = 2, n = 2: U counts 1,1,2,1,1 over u = 0..4 (6 orderings) */
	double x[] = { 1, 4 }, y[] = { 2, 3 };	/* U = 2: the centre, p = 1 */
	double x2[] = { 1, 3 }, y2[] = { 2, 4 };	/* U = 3: |U-2| >= 1 in 4 of 6 */

	assert_true(gate_mw_p(x, 2, y, 2) == 1);
	assert_true(fabs(gate_mw_p(x2, 2, y2, 2) - 4.0 / 6) < 1e-12);
}

static void test_mw_normal(void **state)
{
	double x[30], y[30];

	for (int i = 0; i < 30; i++) {
		x[i] = i;
		y[i] = i + 100;
	}
	/* 60 values: the normal approximation; separated samples, tiny p */
	assert_true(gate_mw_p(x, 30, y, 30) < 1e-6);
	assert_true(gate_mw_p(x, 30, x, 30) > 0.9);
}

/* ---- rules ---- */

static void test_parse_options(void **state)
{
	struct gate_rules r;
	char why[256];

	gate_rules_init(&r);
	assert_int_equal(gate_parse_max_increase(&r, "bytes=5%,outstanding=+100", why,
						 sizeof(why)), 0);
	assert_int_equal(r.max_increase[1].type, GATE_LIMIT_RELATIVE);
	assert_true(r.max_increase[1].value == 5);
	assert_int_equal(r.max_increase[0].type, GATE_LIMIT_NONE);
	assert_int_equal(r.max_increase[2].type, GATE_LIMIT_INCREASE);
	assert_true(r.max_increase[2].value == 100);
	assert_int_equal(gate_parse_max_increase(&r, "bites=5%", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "unknown metric 'bites'"));
	/* an absolute ceiling is for rules files, not an increase */
	assert_int_equal(gate_parse_max_increase(&r, "bytes=1M", why, sizeof(why)), -1);
	assert_int_equal(gate_parse_min_delta(&r, "64K", why, sizeof(why)), 0);
	assert_true(r.min_delta == 65536);
	assert_int_equal(gate_parse_min_delta(&r, "-3", why, sizeof(why)), -1);
	assert_int_equal(gate_parse_fail_on(&r, "leak,new-order", why, sizeof(why)), 0);
	assert_int_equal(r.fail_on, GATE_FAIL_LEAK | GATE_FAIL_NEW_ORDER);
	assert_int_equal(gate_parse_fail_on(&r, "leaks", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'leaks'"));
	assert_int_equal(gate_parse_kinds(&r.kinds, "site,cache", why, sizeof(why)), 0);
	assert_int_equal(r.kinds, 1 | 4);
	assert_int_equal(gate_parse_kinds(&r.kinds, "sites", why, sizeof(why)), -1);
	gate_rules_free(&r);
}

static void test_rules_file(void **state)
{
	struct gate_rules r;
	const struct gate_rule *rule;
	char why[256];

	gate_rules_init(&r);
	assert_int_equal(gate_parse_rules(&r, "# budgets\n\n"
					  "site alloc_pipe_info bytes=20% allocs=+100\n"
					  "site foo_alloc [mymod] outstanding_bytes=1M\n"
					  "cache dentry ignore\n", why, sizeof(why)), 0);
	assert_int_equal(r.nr_rules, 3);
	rule = gate_rule_for(&r, "site", "alloc_pipe_info");
	assert_non_null(rule);
	assert_int_equal(rule->line, 3);
	assert_int_equal(rule->limit[1].type, GATE_LIMIT_RELATIVE);
	assert_int_equal(rule->limit[0].type, GATE_LIMIT_INCREASE);
	rule = gate_rule_for(&r, "site", "foo_alloc [mymod]");
	assert_non_null(rule);
	assert_int_equal(rule->limit[3].type, GATE_LIMIT_MAX);
	assert_true(rule->limit[3].value == 1048576);
	assert_true(gate_rule_for(&r, "cache", "dentry")->ignore);
	assert_null(gate_rule_for(&r, "cache", "filp"));
	gate_rules_free(&r);

	/* each error names its line */
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "site a bytes=1%\nslab b bytes=1%\n", "line 2: unknown key kind 'slab'" },
		{ "\n\nsite a bytes=ten%\n", "line 3: bad limit 'ten%'" },
		{ "site a\n", "line 1: no limit" },
		{ "site bytes=1%\n", "line 1: no key" },
		{ "site a bytes=1% b\n", "line 1: 'b' after the limits" },
		{ "site a bytes=1%\nsite a allocs=1%\n", "line 2: site 'a' has a rule already" },
		{ "cache x sizes=1%\n", "line 1: unknown metric 'sizes'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gate_rules_init(&r);
		why[0] = '\0';
		assert_int_equal(gate_parse_rules(&r, bad[i].text, why, sizeof(why)), -1);
		if (!strstr(why, bad[i].want))
			fail_msg("rules %zu: '%s' does not say '%s'", i, why, bad[i].want);
		gate_rules_free(&r);
	}
}

/* ---- profiles, diff, check ---- */

/* a canonical profile with one site and the given values */
static json_t *prof(const char *site, long allocs, long bytes)
{
	json_t *p = json_pack("{s:s,s:{},s:[s,s,s],s:{s:{},s:{},s:{},s:{},s:{},s:{}},"
			      "s:{s:{},s:{},s:{}}}", "source", "test", "fingerprint", "sections",
			      "stat", "leaks", "misuse", "keys", "site", "stack", "cache",
			      "family", "order", "gfp", "verdicts", "leak", "misuse", "bad_free");

	if (site)
		json_object_set_new(json_object_get(json_object_get(p, "keys"), "site"), site,
				    json_pack("{s:I,s:I,s:i,s:i}", "allocs", (json_int_t)allocs,
					      "bytes", (json_int_t)bytes, "outstanding", 0,
					      "outstanding_bytes", 0));
	return p;
}

static void add_site(json_t *p, const char *site, long allocs, long bytes)
{
	json_object_set_new(json_object_get(json_object_get(p, "keys"), "site"), site,
			    json_pack("{s:I,s:I}", "allocs", (json_int_t)allocs, "bytes",
				      (json_int_t)bytes));
}

static void add_verdict(json_t *p, const char *kind, const char *key, const char *label,
			const char *value)
{
	json_object_set_new(json_object_get(json_object_get(p, "verdicts"), kind), key,
			    json_pack("{s:i,s:s}", "count", 1, label, value));
}

static json_t *runs(json_t *a, ...)
{
	json_t *arr = json_array(), *p;
	va_list ap;

	va_start(ap, a);
	for (p = a; p; p = va_arg(ap, json_t *))
		json_array_append_new(arr, p);
	va_end(ap);
	return arr;
}

/* the results that failed, as "key rule" lines */
static int failures(const json_t *doc, const char *key, const char *rule)
{
	size_t i;
	json_t *res;
	int n = 0;

	json_array_foreach(json_object_get(doc, "results"), i, res)
		if (!strcmp(json_string_value(json_object_get(res, "verdict")), "fail") &&
		    (!key || !strcmp(json_string_value(json_object_get(res, "key")), key)) &&
		    (!rule || !strcmp(json_string_value(json_object_get(res, "rule")), rule)))
			n++;
	return n;
}

static const char *reason_of(const json_t *doc, const char *key, const char *metric)
{
	size_t i;
	json_t *res;

	json_array_foreach(json_object_get(doc, "results"), i, res)
		if (!strcmp(json_string_value(json_object_get(res, "key")), key) &&
		    (!metric || !strcmp(json_string_value(json_object_get(res, "metric")) ?: "",
					metric)))
			return json_string_value(json_object_get(res, "reason"));
	return NULL;
}

static void test_canon(void **state)
{
	json_t *p = prof("f+0x10 [m]", 1, 100), *c, *site;

	add_site(p, "f+0x24 [m]", 2, 200);
	add_site(p, "f.isra.0+0x8 [m]", 4, 400);
	add_site(p, "g+0x1", 8, 800);
	add_site(p, "h.constprop.0.cold+0x3 <- k.part.1+0x10", 16, 1600);
	c = gate_canon(p, false);
	site = json_object_get(json_object_get(c, "keys"), "site");
	assert_int_equal(json_object_size(site), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(site, "f [m]"),
							    "bytes")), 700);
	assert_non_null(json_object_get(site, "h <- k"));
	assert_non_null(json_object_get(site, "g"));
	json_decref(c);
	c = gate_canon(p, true);
	assert_int_equal(json_object_size(json_object_get(json_object_get(c, "keys"), "site")), 5);
	json_decref(c);
	json_decref(p);
}

static void test_diff_rows(void **state)
{
	json_t *b = runs(prof("kept", 10, 1000), NULL), *a = runs(prof("kept", 15, 1500), NULL);
	json_t *rows, *row;

	add_site(json_array_get(b, 0), "gone", 1, 10);
	add_site(json_array_get(a, 0), "fresh", 2, 20);
	rows = gate_diff_rows(b, a, "site");
	assert_int_equal(json_array_size(rows), 3);
	/* by the size of the change: kept (+500) first */
	row = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(row, "key")), "kept");
	assert_string_equal(json_string_value(json_object_get(row, "status")), "present");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(row,
			 "metrics"), "bytes"), "delta")), 500);
	assert_true(json_real_value(json_object_get(json_object_get(json_object_get(row,
		    "metrics"), "bytes"), "relative")) == 0.5);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "key")),
			    "fresh");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "status")),
			    "new");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 2), "status")),
			    "vanished");
	json_decref(rows);
	/* a kind neither side holds is not compared */
	json_array_clear(json_object_get(json_array_get(b, 0), "sections"));
	assert_null(gate_diff_rows(b, a, "stack"));
	json_decref(b);
	json_decref(a);
}

static json_t *check(json_t *b, json_t *a, const char *max, const char *fail_on, double floor)
{
	struct gate_rules r;
	char why[128];
	json_t *doc;

	gate_rules_init(&r);
	if (max)
		assert_int_equal(gate_parse_max_increase(&r, max, why, sizeof(why)), 0);
	if (fail_on)
		assert_int_equal(gate_parse_fail_on(&r, fail_on, why, sizeof(why)), 0);
	r.min_delta = floor;
	doc = gate_check(b, a, &r);
	gate_rules_free(&r);
	json_decref(b);
	json_decref(a);
	return doc;
}

static void test_check_thresholds(void **state)
{
	json_t *doc;

	/* +5 %: within 10 % */
	doc = check(runs(prof("s", 100, 100000), NULL), runs(prof("s", 105, 105000), NULL),
		    NULL, NULL, 0);
	assert_int_equal(json_integer_value(json_object_get(doc, "regressions")), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "status")), "pass");
	json_decref(doc);
	/* bytes +20 % with allocs flat: the bytes rule fails, naming the site */
	doc = check(runs(prof("s", 100, 100000), NULL), runs(prof("s", 100, 120000), NULL),
		    "bytes=10%,allocs=10%", NULL, 0);
	assert_int_equal(failures(doc, "s", "bytes=10%"), 1);
	assert_int_equal(failures(doc, "s", "allocs=10%"), 0);
	assert_int_equal(json_integer_value(json_object_get(doc, "exit")), GATE_REGRESSION);
	json_decref(doc);
	/* allocs +50 % in smaller objects: bytes +1 % */
	doc = check(runs(prof("s", 100, 100000), NULL), runs(prof("s", 150, 101000), NULL),
		    "bytes=10%,allocs=10%", NULL, 0);
	assert_int_equal(failures(doc, "s", "allocs=10%"), 1);
	assert_int_equal(failures(doc, "s", "bytes=10%"), 0);
	json_decref(doc);
	/* +100 % but only 100 bytes: under the floor */
	doc = check(runs(prof("s", 1, 100), NULL), runs(prof("s", 2, 200), NULL), NULL, NULL,
		    4096);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	assert_string_equal(reason_of(doc, "s", "bytes"), "under --min-delta");
	json_decref(doc);
}

static void test_check_keys(void **state)
{
	json_t *doc, *b, *a;

	/* a new site fails only with --fail-on new-site; a vanished one never */
	b = runs(prof("old", 10, 10000), NULL);
	a = runs(prof("new", 10, 10000), NULL);
	doc = check(json_deep_copy(b), json_deep_copy(a), NULL, NULL, 4096);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	json_decref(doc);
	doc = check(b, a, NULL, "new-site", 4096);
	assert_int_equal(failures(doc, "new", "new-site"), 1);
	assert_int_equal(failures(doc, "old", NULL), 0);
	json_decref(doc);
	/* a new site under the floor passes */
	doc = check(runs(prof(NULL, 0, 0), NULL), runs(prof("tiny", 1, 64), NULL), NULL,
		    "new-site", 4096);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	json_decref(doc);
	/* a page order a site never used before */
	b = runs(prof("p", 10, 40960), NULL);
	a = runs(prof("p", 10, 40960), NULL);
	json_object_set_new(json_object_get(json_object_get(json_object_get(json_array_get(b, 0),
			    "keys"), "site"), "p"), "orders", json_pack("{s:i}", "0", 10));
	json_object_set_new(json_object_get(json_object_get(json_object_get(json_array_get(a, 0),
			    "keys"), "site"), "p"), "orders", json_pack("{s:i,s:i}", "0", 9,
									  "3", 1));
	doc = check(json_deep_copy(b), json_deep_copy(a), NULL, "new-order", 4096);
	assert_int_equal(failures(doc, "p", "new-order"), 1);
	json_decref(doc);
	/* its one order-3 allocation is 32 KiB: at or under the floor it passes (a slab refill) */
	doc = check(json_deep_copy(b), json_deep_copy(a), NULL, "new-order", 32768);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	json_decref(doc);
	doc = check(json_deep_copy(b), json_deep_copy(a), NULL, "new-order", 32767);
	assert_int_equal(failures(doc, "p", "new-order"), 1);
	json_decref(doc);
	doc = check(b, a, NULL, "none", 4096);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	json_decref(doc);
}

static void test_check_verdicts(void **state)
{
	json_t *doc, *b, *a;

	/* a certain leak in every current run fails */
	b = runs(prof("s", 1, 1), prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), prof("s", 1, 1), NULL);
	add_verdict(json_array_get(a, 0), "leak", "leaky", "confidence", "certain");
	add_verdict(json_array_get(a, 1), "leak", "leaky", "confidence", "certain");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, "leaky", "leak"), 1);
	json_decref(doc);
	/* in one of two runs: it does not persist, it passes */
	b = runs(prof("s", 1, 1), prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), prof("s", 1, 1), NULL);
	add_verdict(json_array_get(a, 1), "leak", "leaky", "confidence", "certain");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	assert_string_equal(reason_of(doc, "leaky", NULL), "not in every current run");
	json_decref(doc);
	/* unconfirmed everywhere: a warning */
	b = runs(prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), NULL);
	add_verdict(json_array_get(a, 0), "leak", "leaky", "confidence", "unconfirmed");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(doc, "warnings")), 1);
	json_decref(doc);
	/* a leak the baseline had already is no regression */
	b = runs(prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), NULL);
	add_verdict(json_array_get(b, 0), "leak", "leaky", "confidence", "certain");
	add_verdict(json_array_get(a, 0), "leak", "leaky", "confidence", "certain");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, NULL, NULL), 0);
	json_decref(doc);
	/* a new misuse error fails; a new info finding does not */
	b = runs(prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), NULL);
	add_verdict(json_array_get(a, 0), "misuse", "blocking_gfp_in_atomic at f", "severity",
		    "error");
	add_verdict(json_array_get(a, 0), "misuse", "atomic_gfp_in_process at g", "severity",
		    "info");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, "blocking_gfp_in_atomic at f", "misuse"), 1);
	assert_int_equal(failures(doc, NULL, NULL), 1);
	json_decref(doc);
	/* a confirmed bad free fails, a suspected one warns */
	b = runs(prof("s", 1, 1), NULL);
	a = runs(prof("s", 1, 1), NULL);
	add_verdict(json_array_get(a, 0), "bad_free", "double_free at f", "certainty",
		    "confirmed");
	add_verdict(json_array_get(a, 0), "bad_free", "double_free at g", "certainty",
		    "suspected");
	doc = check(b, a, NULL, NULL, 0);
	assert_int_equal(failures(doc, "double_free at f", "bad-free"), 1);
	assert_int_equal(failures(doc, NULL, NULL), 1);
	assert_int_equal(json_integer_value(json_object_get(doc, "warnings")), 1);
	json_decref(doc);
}

static void test_check_noise(void **state)
{
	/* five runs a side: a median +12 % but overlapping runs is noise */
	static const long base[] = { 1000, 1300, 900, 1200, 1100 };
	static const long noisy[] = { 1250, 950, 1350, 1150, 1232 };
	static const long shifted[] = { 1500, 1520, 1480, 1510, 1490 };
	json_t *b = json_array(), *a = json_array(), *doc;

	for (int i = 0; i < 5; i++) {
		json_array_append_new(b, prof("s", base[i], base[i] * 100));
		json_array_append_new(a, prof("s", noisy[i], noisy[i] * 100));
	}
	doc = check(json_deep_copy(b), a, NULL, NULL, 4096);
	assert_string_equal(json_string_value(json_object_get(doc, "test")), "mann-whitney");
	assert_int_equal(failures(doc, NULL, NULL), 0);
	assert_string_equal(reason_of(doc, "s", "bytes"), "not statistically clear");
	json_decref(doc);
	a = json_array();
	for (int i = 0; i < 5; i++)
		json_array_append_new(a, prof("s", shifted[i], shifted[i] * 100));
	doc = check(b, a, NULL, NULL, 4096);
	assert_int_equal(failures(doc, "s", "bytes=10%"), 1);
	assert_int_equal(failures(doc, "s", "allocs=10%"), 1);
	json_decref(doc);
	/* two runs a side cannot reach alpha: thresholds decide, and say so */
	doc = check(runs(prof("s", 10, 10000), prof("s", 10, 10000), NULL),
		    runs(prof("s", 20, 20000), prof("s", 20, 20000), NULL), NULL, NULL, 4096);
	assert_string_equal(json_string_value(json_object_get(doc, "test")), "too-few-runs");
	assert_int_equal(failures(doc, "s", NULL), 2);
	json_decref(doc);
}

static void test_check_rules_file(void **state)
{
	struct gate_rules r;
	char why[128];
	json_t *b = runs(prof("loose", 100, 100000), NULL), *a = runs(prof("loose", 150, 150000),
								       NULL);
	json_t *doc;

	add_site(json_array_get(b, 0), "quiet", 100, 100000);
	add_site(json_array_get(a, 0), "quiet", 200, 200000);
	add_site(json_array_get(b, 0), "capped", 10, 10000);
	add_site(json_array_get(a, 0), "capped", 10, 30000);
	gate_rules_init(&r);
	assert_int_equal(gate_parse_rules(&r, "site loose bytes=60% allocs=60%\n"
					  "site quiet ignore\nsite capped bytes=20K\n", why,
					  sizeof(why)), 0);
	doc = gate_check(b, a, &r);
	assert_int_equal(failures(doc, "loose", NULL), 0);
	assert_int_equal(failures(doc, "quiet", NULL), 0);
	/* the ceiling of line 3 replaces bytes=10 %; allocs keeps the default */
	assert_int_equal(failures(doc, "capped", "bytes=20480"), 1);
	assert_int_equal(failures(doc, "capped", NULL), 1);
	json_decref(doc);
	gate_rules_free(&r);
	json_decref(b);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_median),
		cmocka_unit_test(test_mw_u),
		cmocka_unit_test(test_mw_exact),
		cmocka_unit_test(test_mw_exact_distribution),
		cmocka_unit_test(test_mw_normal),
		cmocka_unit_test(test_parse_options),
		cmocka_unit_test(test_rules_file),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_diff_rows),
		cmocka_unit_test(test_check_thresholds),
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_check_verdicts),
		cmocka_unit_test(test_check_noise),
		cmocka_unit_test(test_check_rules_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
