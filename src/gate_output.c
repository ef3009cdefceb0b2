/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * How diff and check documents are written for people and CI systems: text,
 * KTAP, JUnit XML and GitHub workflow commands. Each renders the jansson
 * document gate_compare.c built; none decides anything.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gate.h"

/* ---- numbers for people ---- */

static void fmt_num(double v, char *buf, size_t len)
{
	if (v == floor(v))
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.1f", v);
}

static void fmt_change(const json_t *m, char *buf, size_t len)
{
	const json_t *rel = json_object_get(m, "relative");
	double d = json_number_value(json_object_get(m, "delta"));
	char n[32];

	fmt_num(fabs(d), n, sizeof(n));
	if (json_is_number(rel))
		snprintf(buf, len, "%s%s, %+.1f%%", d < 0 ? "-" : "+", n,
			 json_number_value(rel) * 100);
	else
		snprintf(buf, len, "%s%s", d < 0 ? "-" : "+", n);
}

/* "allocs 2000 -> 4000 (+2000, +100.0%)" */
static int fmt_metric(const char *name, const json_t *m, char *buf, size_t len)
{
	char b[32], a[32], ch[64];

	fmt_num(json_number_value(json_object_get(m, "before")), b, sizeof(b));
	fmt_num(json_number_value(json_object_get(m, "after")), a, sizeof(a));
	fmt_change(m, ch, sizeof(ch));
	return snprintf(buf, len, "%s %s -> %s (%s)", name, b, a, ch);
}

static void print_mix(FILE *out, const char *name, const json_t *mix)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach((json_t *)mix, k, v) {
		double b = json_number_value(json_object_get(v, "before"));
		double a = json_number_value(json_object_get(v, "after"));
		char sb[32], sa[32];

		if (a == b)
			continue;
		fmt_num(b, sb, sizeof(sb));
		fmt_num(a, sa, sizeof(sa));
		fprintf(out, "%s%s %s -> %s", first ? "\n          " : ", ", k, sb, sa);
		first = false;
	}
	if (!first)
		fprintf(out, "  (%s)", name);
}

void gate_print_diff(FILE *out, const json_t *doc, unsigned long top)
{
	const json_t *rows = json_object_get(doc, "rows"), *vd = json_object_get(doc, "verdicts");
	const json_t *fb = json_object_get(json_object_get(doc, "base"), "fingerprint");
	const json_t *fa = json_object_get(json_object_get(doc, "current"), "fingerprint");
	const char *kind = json_string_value(json_object_get(doc, "key")), *vk;
	size_t i, shown = 0, same = 0;
	json_t *row, *list;

	fprintf(out, "%s keys: base %lld run(s), kernel %s; current %lld run(s), kernel %s\n", kind,
		json_integer_value(json_object_get(json_object_get(doc, "base"), "runs")),
		json_string_value(json_object_get(fb, "kernel_release")) ?: "?",
		json_integer_value(json_object_get(json_object_get(doc, "current"), "runs")),
		json_string_value(json_object_get(fa, "kernel_release")) ?: "?");
	if (!json_is_array(rows))
		fprintf(out, "  not compared: %s\n",
			json_string_value(json_object_get(doc, "note")));
	json_array_foreach(rows, i, row) {
		const char *status = json_string_value(json_object_get(row, "status"));
		const json_t *ms = json_object_get(row, "metrics");
		bool changed = strcmp(status, "present");
		const char *mk;
		json_t *m;

		json_object_foreach((json_t *)ms, mk, m)
			changed |= json_number_value(json_object_get(m, "delta")) != 0;
		if (!changed) {
			same++;
			continue;
		}
		if (top && shown++ >= top)
			continue;
		fprintf(out, "%-8s %s\n", strcmp(status, "present") ? status : "changed",
			json_string_value(json_object_get(row, "key")));
		fprintf(out, "        ");
		json_object_foreach((json_t *)ms, mk, m) {
			char buf[160];

			if (!json_number_value(json_object_get(m, "delta")))
				continue;
			fmt_metric(mk, m, buf, sizeof(buf));
			fprintf(out, "  %s", buf);
		}
		print_mix(out, "page orders", json_object_get(row, "orders"));
		print_mix(out, "GFP", json_object_get(row, "gfp"));
		fprintf(out, "\n");
	}
	if (top && shown > top)
		fprintf(out, "... %zu more changed keys (-n 0 shows all)\n", shown - top);
	if (json_is_array(rows))
		fprintf(out, "%zu keys unchanged\n", same);
	json_object_foreach((json_t *)vd, vk, list) {
		size_t persisting = 0;

		json_array_foreach(list, i, row) {
			const char *st = json_string_value(json_object_get(row, "status"));
			const char *strong = NULL;
			const char *mk;
			json_t *m;

			if (!strcmp(st, "persisting")) {
				persisting++;
				continue;
			}
			/* certain_runs, error_runs or confirmed_runs */
			json_object_foreach(row, mk, m)
				if (strstr(mk, "_runs") && strncmp(mk, "base", 4) &&
				    strncmp(mk, "current", 7))
					strong = mk;
			fprintf(out, "%s %s: %s (in %lld of the base runs, %lld of the current",
				vk, st, json_string_value(json_object_get(row, "key")),
				json_integer_value(json_object_get(row, "base_runs")),
				json_integer_value(json_object_get(row, "current_runs")));
			/* how strong it is now, for one that is new */
			if (!strcmp(st, "new"))
				fprintf(out, "; %s: %lld", strong,
					json_integer_value(json_object_get(row, strong)));
			fprintf(out, ")\n");
		}
		if (persisting)
			fprintf(out, "%s: %zu in both (--json lists them)\n", vk, persisting);
	}
}

/* one line for a result: "site f: bytes 10 -> 20 (+10, +100.0%) broke bytes=10% (...)" */
static void describe(const json_t *res, char *buf, size_t len)
{
	const char *kind = json_string_value(json_object_get(res, "kind"));
	const char *key = json_string_value(json_object_get(res, "key"));
	const char *rule = json_string_value(json_object_get(res, "rule"));
	const char *src = json_string_value(json_object_get(res, "source"));
	const char *reason = json_string_value(json_object_get(res, "reason"));
	const char *metric = json_string_value(json_object_get(res, "metric"));
	const char *verdict = json_string_value(json_object_get(res, "verdict"));
	const json_t *p = json_object_get(res, "p");
	int off;

	off = snprintf(buf, len, "%s %s: ", kind, key);
	if (json_object_get(res, "order"))
		off += snprintf(buf + off, len - off, "page order %s ",
				json_string_value(json_object_get(res, "order")));
	if (metric)
		off += fmt_metric(metric, res, buf + off, len - off);
	else
		off += snprintf(buf + off, len - off, "in %lld base run(s) -> %lld current run(s)",
				json_integer_value(json_object_get(res, "base_runs")),
				json_integer_value(json_object_get(res, "current_runs")));
	if ((size_t)off >= len)
		return;
	off += snprintf(buf + off, len - off, " %s %s (%s", !strcmp(verdict, "fail") ? "broke" :
			!strcmp(verdict, "warn") ? "not failed by" : "within", rule, src);
	if ((size_t)off < len && json_is_number(p))
		off += snprintf(buf + off, len - off, ", p=%.3g", json_number_value(p));
	if ((size_t)off < len && reason && strcmp(verdict, "fail"))
		snprintf(buf + off, len - off, ": %s)", reason);
	else if ((size_t)off < len)
		snprintf(buf + off, len - off, ")");
}

static void summary_line(const json_t *doc, char *buf, size_t len)
{
	size_t n = json_array_size(json_object_get(doc, "results"));
	const json_t *runs = json_object_get(doc, "runs");
	bool failed = !strcmp(json_string_value(json_object_get(doc, "status")), "fail");

	snprintf(buf, len, "%s: %lld regression(s), %lld warning(s) in %zu check(s) "
		 "(base %lld run(s), current %lld run(s); %s)",
		 failed ? "FAIL" : "PASS",
		 json_integer_value(json_object_get(doc, "regressions")),
		 json_integer_value(json_object_get(doc, "warnings")), n,
		 json_integer_value(json_object_get(runs, "base")),
		 json_integer_value(json_object_get(runs, "current")),
		 json_string_value(json_object_get(doc, "test")));
}

void gate_print_check(FILE *out, const json_t *doc, const char *prefix)
{
	const json_t *skipped = json_object_get(doc, "not_compared");
	char line[4096];
	size_t i;
	json_t *res;

	summary_line(doc, line, sizeof(line));
	fprintf(out, "%skmemscope check: %s\n", prefix, line);
	json_array_foreach(json_object_get(doc, "results"), i, res) {
		const char *v = json_string_value(json_object_get(res, "verdict"));

		if (!strcmp(v, "pass"))
			continue;
		describe(res, line, sizeof(line));
		fprintf(out, "%s  %s%s\n", prefix, strcmp(v, "fail") ? "warning: " : "", line);
	}
	json_array_foreach(skipped, i, res)
		fprintf(out, "%s  not compared: %s keys (%s)\n", prefix,
			json_string_value(json_object_get(res, "kind")),
			json_string_value(json_object_get(res, "why")));
}

/* KTAP version 1 (Documentation/dev-tools/ktap.rst): one test per result */
void gate_print_ktap(FILE *out, const json_t *doc)
{
	const json_t *results = json_object_get(doc, "results");
	char line[4096];
	size_t i;
	json_t *res;

	fprintf(out, "KTAP version 1\n1..%zu\n", json_array_size(results));
	json_array_foreach(results, i, res) {
		const char *v = json_string_value(json_object_get(res, "verdict"));

		describe(res, line, sizeof(line));
		/* '#' starts a directive in a KTAP result line */
		for (char *c = line; *c; c++)
			if (*c == '#')
				*c = '_';
		fprintf(out, "%s %zu %s\n", strcmp(v, "fail") ? "ok" : "not ok", i + 1, line);
	}
	gate_print_check(out, doc, "# ");
}

static void xml_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

int gate_write_junit(const char *path, const json_t *doc)
{
	const json_t *results = json_object_get(doc, "results");
	FILE *f = fopen(path, "w");
	char line[4096];
	size_t i;
	json_t *res;

	if (!f) {
		fprintf(stderr, "kmemscope: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
		"<testsuite name=\"kmemscope check\" tests=\"%zu\" failures=\"%lld\">\n",
		json_array_size(results), json_integer_value(json_object_get(doc, "regressions")));
	json_array_foreach(results, i, res) {
		const char *v = json_string_value(json_object_get(res, "verdict"));

		fputs("<testcase classname=\"kmemscope.", f);
		xml_escaped(f, json_string_value(json_object_get(res, "kind")));
		fputs("\" name=\"", f);
		xml_escaped(f, json_string_value(json_object_get(res, "key")));
		fputs(" ", f);
		xml_escaped(f, json_string_value(json_object_get(res, "rule")));
		fputs("\">", f);
		describe(res, line, sizeof(line));
		if (!strcmp(v, "fail")) {
			fputs("<failure message=\"", f);
			xml_escaped(f, line);
			fputs("\"/>", f);
		} else {
			fputs("<system-out>", f);
			xml_escaped(f, line);
			fputs("</system-out>", f);
		}
		fputs("</testcase>\n", f);
	}
	fputs("</testsuite>\n</testsuites>\n", f);
	return fclose(f) ? -1 : 0;
}

/* workflow commands take their message to the end of the line: escape it */
static void gh_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '%')
			fputs("%25", f);
		else if (*s == '\n')
			fputs("%0A", f);
		else if (*s == '\r')
			fputs("%0D", f);
		else
			fputc(*s, f);
	}
}

/* under GitHub Actions: ::error lines and a Markdown step summary */
void gate_print_github(FILE *out, const json_t *doc)
{
	const char *path = getenv("GITHUB_STEP_SUMMARY");
	char line[4096];
	size_t i;
	json_t *res;
	FILE *md = path && *path ? fopen(path, "a") : NULL;

	summary_line(doc, line, sizeof(line));
	if (md)
		fprintf(md, "### kmemscope check: %s\n\n", line);
	json_array_foreach(json_object_get(doc, "results"), i, res) {
		const char *v = json_string_value(json_object_get(res, "verdict"));

		if (!strcmp(v, "pass"))
			continue;
		describe(res, line, sizeof(line));
		fprintf(out, "::%s title=kmemscope check::",
			strcmp(v, "fail") ? "warning" : "error");
		gh_escaped(out, line);
		fputc('\n', out);
		if (md) {
			fprintf(md, "- %s ", strcmp(v, "fail") ? "warning:" : "**regression**:");
			for (char *c = line; *c; c++) {
				/* '|', '*' and '_' are Markdown; kernel symbols hold '_' */
				if (strchr("|*_", *c))
					fputc('\\', md);
				fputc(*c, md);
			}
			fputc('\n', md);
		}
	}
	if (md) {
		fputc('\n', md);
		fclose(md);
	}
}
