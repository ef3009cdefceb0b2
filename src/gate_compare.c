/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * diff and check on two sets of canonical profiles (gate_canon()). A key
 * absent from a run counts 0 in that run; each side is summed up by its
 * median, so that one run per side compares plainly and several runs compare
 * their typical values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gate.h"

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* medians of integers are integers or halves: JSON integers where they can be */
static json_t *jnum(double v)
{
	return v == floor(v) && fabs(v) < 9e15 ? json_integer((json_int_t)v) : json_real(v);
}

static double dval(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static const char *const kind_section[GATE_NR_KINDS] = { "stat", "leaks", "stat", "stat",
							 "stat", "stat" };

/* every run of both sides holds what the kind is made of */
static bool both_hold(const json_t *base, const json_t *cur, const char *section)
{
	const json_t *sides[] = { base, cur };
	size_t i;
	json_t *it;

	for (int s = 0; s < 2; s++)
		json_array_foreach(sides[s], i, it)
			if (!gate_holds(it, section))
				return false;
	return true;
}

/* the union of member names of path[0].path[1] over the runs of both sides */
static json_t *union_keys(const json_t *base, const json_t *cur, const char *group,
			  const char *kind)
{
	const json_t *sides[] = { base, cur };
	json_t *u = json_object(), *it, *v;
	const char *k;
	size_t i;

	for (int s = 0; s < 2; s++)
		json_array_foreach(sides[s], i, it)
			json_object_foreach(json_object_get(json_object_get(it, group), kind), k, v)
				json_object_set_new(u, k, json_true());
	return u;
}

/* v[i]: member name of obj[i] (0 when absent); how many runs have obj */
static size_t values(const json_t *objs[], size_t n, const char *name, double *v, bool *any)
{
	size_t present = 0;

	for (size_t i = 0; i < n; i++) {
		json_t *x = json_object_get(objs[i], name);

		v[i] = json_number_value(x);
		if (x)
			*any = true;
		present += objs[i] != NULL;
	}
	return present;
}

static json_t *json_array_of(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jnum(v[i]));
	return a;
}

static json_t *metric(const double *b, size_t nb, const double *c, size_t nc)
{
	double mb = gate_median(b, nb), mc = gate_median(c, nc);

	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "before", jnum(mb), "after", jnum(mc),
			 "delta", jnum(mc - mb), "relative", mb ? json_real((mc - mb) / mb) :
			 json_null(), "base", json_array_of(b, nb), "current",
			 json_array_of(c, nc));
}

/* a page order or GFP mix of one key: per member, medians and runs that have it */
static json_t *mix(const json_t *bo[], size_t nb, const json_t *co[], size_t nc,
		   const char *name)
{
	json_t *u = json_object(), *out = json_object(), *v;
	const json_t *sub[nb + nc];
	double vb[nb ? nb : 1], vc[nc ? nc : 1];
	const char *k;
	bool any = false;

	for (size_t i = 0; i < nb + nc; i++) {
		sub[i] = json_object_get(i < nb ? bo[i] : co[i - nb], name);
		json_object_foreach((json_t *)sub[i], k, v)
			json_object_set_new(u, k, json_true());
	}
	json_object_foreach(u, k, v) {
		size_t pb = 0, pc = 0;

		for (size_t i = 0; i < nb + nc; i++) {
			json_int_t x = json_integer_value(json_object_get(sub[i], k));

			if (i < nb)
				vb[i] = x, pb += x > 0;
			else
				vc[i - nb] = x, pc += x > 0;
		}
		json_object_set_new(out, k, json_pack("{s:o,s:o,s:I,s:I}", "before",
				    jnum(gate_median(vb, nb)), "after", jnum(gate_median(vc, nc)),
				    "base_runs", (json_int_t)pb, "current_runs", (json_int_t)pc));
		any = true;
	}
	json_decref(u);
	if (!any) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static double row_delta(const json_t *row, const char *m)
{
	return fabs(dval(json_object_get(json_object_get(row, "metrics"), m), "delta"));
}

/* by the size of the change: bytes, then outstanding bytes, then counts */
static int cmp_rows(const void *a, const void *b)
{
	static const char *const order[] = { "bytes", "outstanding_bytes", "allocs",
					      "outstanding" };
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		double dx = row_delta(x, order[i]), dy = row_delta(y, order[i]);

		if (dx != dy)
			return dx < dy ? 1 : -1;
	}
	return strcmp(str(x, "key"), str(y, "key"));
}

bool gate_kind_held(const json_t *base, const json_t *cur, const char *kind)
{
	int ki = gate_kind_index(kind);

	return ki >= 0 && both_hold(base, cur, kind_section[ki]);
}

json_t *gate_diff_rows(const json_t *base, const json_t *cur, const char *kind)
{
	size_t nb = json_array_size(base), nc = json_array_size(cur), n = 0;
	json_t *u, *rows, *it, **sorted;
	const char *key;

	if (!gate_kind_held(base, cur, kind))
		return NULL;
	u = union_keys(base, cur, "keys", kind);
	sorted = calloc(json_object_size(u) + 1, sizeof(*sorted));
	json_object_foreach(u, key, it) {
		const json_t *bo[nb], *co[nc];
		double vb[nb], vc[nc];
		json_t *row, *ms = json_object(), *mx;
		size_t pb = 0, pc = 0;

		for (size_t i = 0; i < nb; i++) {
			bo[i] = json_object_get(json_object_get(json_object_get(
					json_array_get(base, i), "keys"), kind), key);
			pb += bo[i] != NULL;
		}
		for (size_t i = 0; i < nc; i++) {
			co[i] = json_object_get(json_object_get(json_object_get(
					json_array_get(cur, i), "keys"), kind), key);
			pc += co[i] != NULL;
		}
		for (int m = 0; m < GATE_NR_METRICS; m++) {
			bool any = false;

			values(bo, nb, gate_metrics[m], vb, &any);
			values(co, nc, gate_metrics[m], vc, &any);
			if (any)
				json_object_set_new(ms, gate_metrics[m], metric(vb, nb, vc, nc));
		}
		row = json_pack("{s:s,s:s,s:{s:I,s:I},s:o}", "key", key, "status",
				!pb ? "new" : !pc ? "vanished" : "present", "runs", "base",
				(json_int_t)pb, "current", (json_int_t)pc, "metrics", ms);
		if ((mx = mix(bo, nb, co, nc, "orders")))
			json_object_set_new(row, "orders", mx);
		if ((mx = mix(bo, nb, co, nc, "gfp")))
			json_object_set_new(row, "gfp", mx);
		sorted[n++] = row;
	}
	json_decref(u);
	qsort(sorted, n, sizeof(*sorted), cmp_rows);
	rows = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(rows, sorted[i]);
	free(sorted);
	return rows;
}

static const char *const verdict_kinds[] = { "leak", "misuse", "bad_free" };
static const char *const verdict_section[] = { "leaks", "misuse", "leaks" };
/* a leak is certain, a misuse finding an error, a bad free confirmed */
static const char *const strong_label[] = { "confidence", "severity", "certainty" };
static const char *const strong_value[] = { "certain", "error", "confirmed" };
static const char *const strong_name[] = { "certain_runs", "error_runs", "confirmed_runs" };

json_t *gate_diff_verdicts(const json_t *base, const json_t *cur)
{
	const json_t *sides[] = { base, cur };
	json_t *out = json_object();

	for (size_t vk = 0; vk < sizeof(verdict_kinds) / sizeof(verdict_kinds[0]); vk++) {
		json_t *u, *list, *it;
		const char *key;

		if (!both_hold(base, cur, verdict_section[vk]))
			continue;
		u = union_keys(base, cur, "verdicts", verdict_kinds[vk]);
		list = json_array();
		json_object_foreach(u, key, it) {
			/* current runs where the verdict is at its strongest */
			size_t runs[2] = {}, strong = 0;
			double counts[json_array_size(cur) + 1];
			size_t i;
			json_t *p, *v;

			for (int s = 0; s < 2; s++)
				json_array_foreach(sides[s], i, p) {
					v = json_object_get(json_object_get(json_object_get(p,
							"verdicts"), verdict_kinds[vk]), key);
					if (s)
						counts[i] = json_number_value(json_object_get(v,
										  "count"));
					if (!v)
						continue;
					runs[s]++;
					strong += s && !strcmp(str(v, strong_label[vk]) ?: "",
							       strong_value[vk]);
				}
			v = json_pack("{s:s,s:s,s:I,s:I,s:o}", "key", key, "status",
				      !runs[0] ? "new" : !runs[1] ? "gone" : "persisting",
				      "base_runs", (json_int_t)runs[0], "current_runs",
				      (json_int_t)runs[1], "count",
				      jnum(gate_median(counts, json_array_size(cur))));
			json_object_set_new(v, strong_name[vk], json_integer(strong));
			json_array_append_new(list, v);
		}
		json_decref(u);
		json_object_set_new(out, verdict_kinds[vk], list);
	}
	return out;
}

/* ---- check ---- */

struct check {
	const struct gate_rules *r;
	size_t nb, nc;
	double page;		/* the page size the current runs counted with */
	bool tested;		/* the U test decides what is clear */
	json_t *results;
	int regressions, warnings;
};

static void result(struct check *c, json_t *res, const char *verdict)
{
	json_object_set_new(res, "verdict", json_string(verdict));
	c->regressions += !strcmp(verdict, "fail");
	c->warnings += !strcmp(verdict, "warn");
	json_array_append_new(c->results, res);
}

/*
 * A result's common members: what was judged (kind, key, rule, where the rule
 * came from) and, for a value, which one and its change (a diff CHANGE)
 */
static json_t *new_result(const char *kind, const char *key, const char *rule, const char *src,
			  const char *metric, const json_t *change)
{
	json_t *res = json_pack("{s:s,s:s,s:s,s:s}", "kind", kind, "key", key, "rule", rule,
				"source", src);

	if (metric) {
		json_object_set_new(res, "metric", json_string(metric));
		json_object_set(res, "before", json_object_get(change, "before"));
		json_object_set(res, "after", json_object_get(change, "after"));
		json_object_set(res, "delta", json_object_get(change, "delta"));
		json_object_set(res, "relative", json_object_get(change, "relative"));
	}
	return res;
}

/* the U test's p-value of a metric's runs; JSON null without the test */
static json_t *p_value(const struct check *c, const json_t *m)
{
	const json_t *jb = json_object_get(m, "base"), *jc = json_object_get(m, "current");
	double b[c->nb], v[c->nc];

	if (!c->tested)
		return json_null();
	for (size_t i = 0; i < c->nb; i++)
		b[i] = json_number_value(json_array_get(jb, i));
	for (size_t i = 0; i < c->nc; i++)
		v[i] = json_number_value(json_array_get(jc, i));
	return json_real(gate_mw_p(b, c->nb, v, c->nc));
}

/* the bytes that moved with metric m: bytes for counts of allocations, else outstanding */
static double bytes_moved(const json_t *ms, int m)
{
	return dval(json_object_get(ms, gate_metrics[m < 2 ? 1 : 3]), "delta");
}

static void check_metric(struct check *c, const char *kind, const json_t *row, int m,
			 const struct gate_limit *l, const struct gate_rule *rule)
{
	const json_t *ms = json_object_get(row, "metrics");
	const json_t *mj = json_object_get(ms, gate_metrics[m]);
	double b = dval(mj, "before"), a = dval(mj, "after"), d = a - b;
	const char *verdict = "pass", *why = "within budget";
	char name[64], src[32];
	json_t *res, *p;
	bool over;

	if (!mj)
		return;
	gate_limit_name(l, m, name, sizeof(name));
	if (rule)
		snprintf(src, sizeof(src), "rules line %d", rule->line);
	else
		snprintf(src, sizeof(src), "--max-increase");
	over = l->type == GATE_LIMIT_RELATIVE ? (b > 0 ? d * 100 > l->value * b : d > 0) :
	       l->type == GATE_LIMIT_INCREASE ? d > l->value : a > l->value;
	p = l->type == GATE_LIMIT_MAX ? json_null() : p_value(c, mj);
	if (over) {
		if (l->type == GATE_LIMIT_RELATIVE && bytes_moved(ms, m) <= c->r->min_delta) {
			why = "under --min-delta";
		} else if (json_is_real(p) && json_real_value(p) > c->r->alpha) {
			why = "not statistically clear";
		} else {
			verdict = "fail";
			why = "over budget";
		}
	}
	res = new_result(kind, str(row, "key"), name, src, gate_metrics[m], mj);
	json_object_set_new(res, "p", p);
	json_object_set_new(res, "reason", json_string(why));
	result(c, res, verdict);
}

/* a new key is a regression when it is in every current run and big enough */
static void check_new(struct check *c, const char *kind, const json_t *row)
{
	const json_t *ms = json_object_get(row, "metrics");
	const char *metric = json_object_get(ms, "bytes") ? "bytes" : "outstanding_bytes";
	const json_t *mj = json_object_get(ms, metric);
	json_int_t runs = json_integer_value(json_object_get(json_object_get(row, "runs"),
							     "current"));
	const char *verdict = "fail", *why = "new";
	json_t *p = mj ? p_value(c, mj) : json_null(), *res;

	if ((size_t)runs < c->nc)
		verdict = "pass", why = "not in every current run";
	else if (dval(mj, "after") <= c->r->min_delta)
		verdict = "pass", why = "under --min-delta";
	else if (json_is_real(p) && json_real_value(p) > c->r->alpha)
		verdict = "pass", why = "not statistically clear";
	res = new_result(kind, str(row, "key"), "new-site", "--fail-on", mj ? metric : NULL, mj);
	json_object_set_new(res, "p", p);
	json_object_set_new(res, "reason", json_string(why));
	result(c, res, verdict);
}

/* the page size of the current runs: an order row's bytes over its pages (4096 if none) */
static double page_bytes(const json_t *cur)
{
	size_t i;
	const json_t *prof, *o;
	const char *order;

	json_array_foreach(cur, i, prof)
		json_object_foreach(json_object_get(json_object_get(prof, "keys"), "order"), order, o) {
			double pages = dval(o, "allocs") * (double)(1ULL << (atoi(order) & 31));

			if (pages > 0 && dval(o, "bytes") > 0)
				return dval(o, "bytes") / pages;
		}
	return 4096;
}

/*
 * Page orders a key allocates in every current run and in no baseline run,
 * with more than --min-delta bytes (median per run), as a new site needs: a
 * slab cache that happens to refill in one run allocates an order-0 page at
 * the site that asked for the object (seen at vm_area_alloc between clean
 * runs of the 6.1 guest), which is noise, not a new page order.
 */
static void check_orders(struct check *c, const char *kind, const json_t *row)
{
	const char *order;
	json_t *o, *res;

	json_object_foreach(json_object_get(row, "orders"), order, o) {
		bool small = dval(o, "after") * c->page * (double)(1ULL << (atoi(order) & 31)) <=
			     c->r->min_delta;

		if (json_integer_value(json_object_get(o, "base_runs")) ||
		    (size_t)json_integer_value(json_object_get(o, "current_runs")) < c->nc)
			continue;
		res = new_result(kind, str(row, "key"), "new-order", "--fail-on", "allocs", o);
		json_object_set_new(res, "delta", json_deep_copy(json_object_get(o, "after")));
		json_object_set_new(res, "relative", json_null());
		json_object_set_new(res, "order", json_string(order));
		json_object_set_new(res, "reason", json_string(small ? "under --min-delta" :
							       "new page order"));
		result(c, res, small ? "pass" : "fail");
	}
}

static void check_kind(struct check *c, const json_t *base, const json_t *cur, int k)
{
	const char *kind = gate_kinds[k];
	json_t *rows = gate_diff_rows(base, cur, kind), *row;
	bool global = c->r->kinds & (1u << k);
	size_t i;

	json_array_foreach(rows, i, row) {
		const struct gate_rule *rule = gate_rule_for(c->r, kind, str(row, "key"));
		const char *status = str(row, "status");

		if ((!rule && !global) || (rule && rule->ignore) || !strcmp(status, "vanished"))
			continue;
		if (!strcmp(status, "new")) {
			if (c->r->fail_on & GATE_FAIL_NEW_SITE)
				check_new(c, kind, row);
			/* a new order of the whole run (the order key) */
			if (k == 4 && (c->r->fail_on & GATE_FAIL_NEW_ORDER) &&
			    (size_t)json_integer_value(json_object_get(json_object_get(row,
						"runs"), "current")) == c->nc)
				result(c, new_result(kind, str(row, "key"), "new-order",
						     "--fail-on", "allocs",
						     json_object_get(json_object_get(row,
								     "metrics"), "allocs")),
				       "fail");
			continue;
		}
		for (int m = 0; m < GATE_NR_METRICS; m++) {
			const struct gate_limit *l = rule && rule->limit[m].type ?
						     &rule->limit[m] : &c->r->max_increase[m];

			if (l->type != GATE_LIMIT_NONE)
				check_metric(c, kind, row, m, l, rule && rule->limit[m].type ?
					     rule : NULL);
		}
		if (c->r->fail_on & GATE_FAIL_NEW_ORDER)
			check_orders(c, kind, row);
	}
	json_decref(rows);
}

static void check_verdicts(struct check *c, const json_t *base, const json_t *cur)
{
	static const struct {
		const char *kind, *rule;
		unsigned int flag;
	} vk[] = {
		{ "leak", "leak", GATE_FAIL_LEAK },
		{ "misuse", "misuse", GATE_FAIL_MISUSE },
		{ "bad_free", "bad-free", GATE_FAIL_BAD_FREE },
	};
	json_t *vd = gate_diff_verdicts(base, cur), *it, *res;
	size_t i;

	for (size_t k = 0; k < sizeof(vk) / sizeof(vk[0]); k++) {
		if (!(c->r->fail_on & vk[k].flag))
			continue;
		json_array_foreach(json_object_get(vd, vk[k].kind), i, it) {
			size_t runs = json_integer_value(json_object_get(it, "current_runs"));
			const char *verdict = "fail", *why;

			if (strcmp(str(it, "status"), "new"))
				continue;
			if (k == 0) {
				/* a leak must persist in every run, and be certain in each */
				size_t certain = json_integer_value(json_object_get(it,
									"certain_runs"));

				why = runs < c->nc ? "not in every current run" :
				      certain < c->nc ?
				      "unconfirmed (records lost or frees untraced)" :
				      "certain in every current run";
				verdict = runs < c->nc ? "pass" : certain < c->nc ? "warn" : "fail";
			} else if (k == 1 &&
				   !json_integer_value(json_object_get(it, "error_runs"))) {
				verdict = "pass";
				why = "informational finding";
			} else if (k == 2 && !json_integer_value(json_object_get(it,
									 "confirmed_runs"))) {
				verdict = "warn";
				why = "suspected (the free may be of a reused address)";
			} else {
				why = "new finding";
			}
			res = new_result(vk[k].kind, str(it, "key"), vk[k].rule, "--fail-on", NULL,
					 NULL);
			json_object_set(res, "count", json_object_get(it, "count"));
			json_object_set(res, "base_runs", json_object_get(it, "base_runs"));
			json_object_set_new(res, "current_runs", json_integer(runs));
			json_object_set_new(res, "reason", json_string(why));
			result(c, res, verdict);
		}
	}
	json_decref(vd);
}

json_t *gate_check(const json_t *base, const json_t *cur, const struct gate_rules *r)
{
	struct check c = { .r = r, .nb = json_array_size(base), .nc = json_array_size(cur),
			   .page = page_bytes(cur), .results = json_array() };
	double min_p = gate_mw_min_p(c.nb, c.nc);
	const char *test;
	unsigned int kinds = r->kinds;

	if (c.nb > 1 && c.nc > 1)
		test = min_p <= r->alpha ? "mann-whitney" : "too-few-runs";
	else
		test = "thresholds";
	c.tested = !strcmp(test, "mann-whitney");
	for (size_t i = 0; i < r->nr_rules; i++)
		kinds |= 1u << gate_kind_index(r->rules[i].kind);
	for (int k = 0; k < GATE_NR_KINDS; k++)
		if (kinds & (1u << k))
			check_kind(&c, base, cur, k);
	check_verdicts(&c, base, cur);
	return json_pack("{s:s,s:i,s:s,s:i,s:s,s:f,s:f,s:{s:I,s:I},s:i,s:i,s:o}",
			 "schema", "kmemscope.check", "version", 1, "status",
			 c.regressions ? "fail" : "pass", "exit",
			 c.regressions ? GATE_REGRESSION : GATE_PASS, "test", test, "alpha",
			 r->alpha, "min_p", min_p, "runs", "base", (json_int_t)c.nb, "current",
			 (json_int_t)c.nc, "regressions", c.regressions, "warnings", c.warnings,
			 "results", c.results);
}
