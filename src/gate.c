/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope diff, baseline and check: the kernel-CI gate's commands
 * (docs/ci.md). The work is in gate_*.c; this file parses options, loads
 * the two sides and runs the command; gate_output.c prints.
 */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "cli.h"
#include "gate.h"

extern const char *argp_program_version;

/* ---- loading two sides ---- */

struct side {
	json_t *raw;		/* profiles as loaded */
	json_t *runs;		/* canonical (gate_canon) */
	json_t *sources;
};

static void side_free(struct side *s)
{
	json_decref(s->raw);
	json_decref(s->runs);
	json_decref(s->sources);
}

/* 0, GATE_USAGE (a file is unreadable) or GATE_NOT_COMPARABLE (runs differ) */
static int side_load(struct side *s, char **paths, int n, bool exact)
{
	char why[1024];
	size_t i;
	json_t *it;

	s->raw = json_array();
	s->runs = json_array();
	s->sources = json_array();
	for (int p = 0; p < n; p++) {
		if (gate_load(paths[p], s->raw))
			return GATE_USAGE;
		json_array_append_new(s->sources, json_string(paths[p]));
	}
	json_array_foreach(s->raw, i, it) {
		if (gate_incomparable(json_array_get(s->raw, 0), it, why, sizeof(why))) {
			fprintf(stderr, "kmemscope: runs not comparable with each other: %s\n",
				why);
			return GATE_NOT_COMPARABLE;
		}
		json_array_append_new(s->runs, gate_canon(it, exact));
	}
	return 0;
}

static json_t *side_json(const struct side *s)
{
	return json_pack("{s:O,s:I,s:O}", "sources", s->sources, "runs",
			 (json_int_t)json_array_size(s->runs), "fingerprint",
			 json_object_get(json_array_get(s->raw, 0), "fingerprint"));
}

/* both sides' first runs: a one-line reason in why when not comparable */
static const char *sides_incomparable(const struct side *b, const struct side *a, char *why,
				      size_t len)
{
	return gate_incomparable(json_array_get(b->raw, 0), json_array_get(a->raw, 0), why, len);
}

/* ---- diff ---- */

static struct {
	const char *kind, *output;
	bool json, exact;
	unsigned long top;
	char *paths[2];
	int nr_paths;
} diff_env;

enum { OPT_EXACT = 2001, OPT_MAX_INCREASE, OPT_MIN_DELTA, OPT_FAIL_ON, OPT_RULES, OPT_JUNIT,
       OPT_KTAP, OPT_IGNORE_FP, OPT_ALPHA, OPT_RUNS, OPT_TRACES };

static const struct argp_option diff_options[] = {
	{ "key", 'k', "KIND", 0, "compare by KIND: site (default), stack, cache, family, order, "
				 "gfp" },
	{ "exact-offsets", OPT_EXACT, NULL, 0, "a site whose offset in its function moved is "
					       "another site" },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{ "top", 'n', "N", 0, "text: changed keys shown (default 20, 0: all)" },
	{},
};

static error_t diff_parse(int key, char *arg, struct argp_state *state)
{
	char why[160];
	unsigned int kinds;

	switch (key) {
	case 'k':
		if (gate_parse_kinds(&kinds, arg, why, sizeof(why)) || (kinds & (kinds - 1)))
			cli_argp_fail(state, "--key takes one of site, stack, cache, family, "
				      "order, gfp");
		diff_env.kind = arg;
		break;
	case OPT_EXACT:
		diff_env.exact = true;
		break;
	case 'j':
		diff_env.json = true;
		break;
	case 'o':
		diff_env.output = arg;
		break;
	case 'n':
		if (cli_parse_uint(arg, "row count", 1000000, &diff_env.top))
			return EINVAL;
		break;
	case ARGP_KEY_ARG:
		if (diff_env.nr_paths == 2)
			cli_argp_fail(state, "diff takes two files, BASE and CURRENT");
		diff_env.paths[diff_env.nr_paths++] = arg;
		break;
	case ARGP_KEY_END:
		if (diff_env.nr_paths != 2)
			cli_argp_fail(state, "diff takes two files, BASE and CURRENT");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	static const struct argp argp = {
		diff_options, diff_parse, "BASE CURRENT",
		"Compare two runs per key: allocations, bytes, outstanding objects, page order "
		"and GFP mix, with absolute and relative change; new and vanished keys; new leak, "
		"misuse and bad-free verdicts.\v"
		"BASE and CURRENT are trace files (--record), JSON reports (stat, leaks or "
		"misuse --json) or baselines (kmemscope baseline): a side with several runs is "
		"compared by its medians. Text lists the changed keys by the size of the "
		"change; JSON lists every key. Keys hold symbols and modules, never addresses.\n\n"
		"Examples:\n"
		"  kmemscope diff old.kmt new.kmt\n"
		"  kmemscope diff --key cache --json base.json new.kmt\n\n"
		"Exit status: 0, 1 on a runtime failure, 2 on a usage error or unreadable file.",
	};
	struct side b = {}, a = {};
	char why[1024];
	json_t *doc, *rows;
	FILE *out;
	int err;

	diff_env.top = 20;
	err = cli_argp_parse(&argp, argc, argv, NULL);
	if (err)
		return err;
	if (!diff_env.kind)
		diff_env.kind = "site";
	err = cli_check_output(diff_env.output);
	if (err)
		return err;
	err = side_load(&b, diff_env.paths, 1, diff_env.exact);
	if (!err)
		err = side_load(&a, diff_env.paths + 1, 1, diff_env.exact);
	if (err) {
		side_free(&b);
		side_free(&a);
		return GATE_USAGE;
	}
	if (sides_incomparable(&b, &a, why, sizeof(why)))
		fprintf(stderr, "kmemscope: note: check would call these not comparable: %s\n",
			why);
	rows = gate_diff_rows(b.runs, a.runs, diff_env.kind);
	doc = json_pack("{s:s,s:i,s:s,s:b,s:o,s:o,s:o,s:o}", "schema", "kmemscope.diff",
			"version", 1, "key", diff_env.kind, "exact_offsets", diff_env.exact,
			"base", side_json(&b), "current", side_json(&a), "rows",
			rows ?: json_null(), "verdicts", gate_diff_verdicts(b.runs, a.runs));
	if (!rows)
		json_object_set_new(doc, "note", json_string(strcmp(diff_env.kind, "stack") ?
				    "both sides need stat reports (or traces)" :
				    "both sides need leaks reports (or traces)"));
	out = cli_open_output(diff_env.output);
	if (out) {
		if (diff_env.json)
			json_dumpf(doc, out, JSON_INDENT(1)), fputc('\n', out);
		else
			gate_print_diff(out, doc, diff_env.top);
		cli_close_output(out);
	}
	json_decref(doc);
	side_free(&b);
	side_free(&a);
	return out ? 0 : 1;
}

/* ---- baseline ---- */

/* RUN words, wherever they stand among the options */
static int add_path(char ***paths, int *n, char *arg)
{
	char **grown = realloc(*paths, (*n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	grown[(*n)++] = arg;
	*paths = grown;
	return 0;
}

static struct {
	const char *output;
	char **paths;
	int nr_paths;
} base_env;

static const struct argp_option baseline_options[] = {
	{ "output", 'o', "FILE", 0, "write the baseline to FILE (default: standard output)" },
	{},
};

static error_t baseline_parse(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case 'o':
		base_env.output = arg;
		break;
	case ARGP_KEY_ARG:
		if (add_path(&base_env.paths, &base_env.nr_paths, arg))
			return ENOMEM;
		break;
	case ARGP_KEY_NO_ARGS:
		cli_argp_fail(state, "no RUN given");
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cmd_baseline(int argc, char **argv)
{
	static const struct argp argp = {
		baseline_options, baseline_parse, "RUN...",
		"Store the per-key values of every run (trace files, JSON reports or other "
		"baselines) and their fingerprint (kernel, workload, kmemscope and format "
		"version) in one file for kmemscope check --baseline.\v"
		"The runs must be comparable with each other (the same workload, machine, "
		"kmemscope and input format). Format: docs/ci.md.\n\n"
		"Example:\n"
		"  kmemscope baseline -o base.json run1.kmt run2.kmt run3.kmt\n\n"
		"Exit status: 0; 2 on a usage error or an unreadable RUN; 3 when the runs "
		"are not comparable.",
	};
	struct side s = {};
	json_t *doc;
	FILE *out;
	int err;

	err = cli_argp_parse(&argp, argc, argv, NULL);
	if (err)
		return err;
	err = cli_check_output(base_env.output);
	if (err)
		return err;
	err = side_load(&s, base_env.paths, base_env.nr_paths, false);
	if (err) {
		side_free(&s);
		return err;
	}
	doc = json_pack("{s:s,s:i,s:s,s:O,s:O}", "schema", GATE_BASELINE_SCHEMA, "version",
			GATE_BASELINE_VERSION, "tool", argp_program_version, "fingerprint",
			json_object_get(json_array_get(s.raw, 0), "fingerprint"), "runs", s.raw);
	out = cli_open_output(base_env.output);
	if (out) {
		json_dumpf(doc, out, JSON_INDENT(1));
		fputc('\n', out);
		cli_close_output(out);
	}
	json_decref(doc);
	side_free(&s);
	free(base_env.paths);
	return out ? 0 : 1;
}

/* ---- check ---- */

static struct {
	const char *baseline, *output, *junit, *rules_file, *traces;
	bool json, ktap, ignore_fp, kinds_given;
	char **paths;
	int nr_paths;
	char **cmd;		/* -- CMD */
	bool recorded;		/* paths are the runs of CMD, ours to free */
	unsigned long runs;
	struct gate_rules r;
} check_env;

static const struct argp_option check_options[] = {
	{ NULL, 0, NULL, 0, "What to compare:", 1 },
	{ "baseline", 'b', "FILE", 0, "the baseline (kmemscope baseline), a trace or a report" },
	{ "key", 'k', "LIST", 0, "key kinds the thresholds apply to, comma-separated (default "
				 "site; rules file lines add their own)" },
	{ "exact-offsets", OPT_EXACT, NULL, 0, "a site whose offset in its function moved is "
					       "another site" },
	{ "ignore-fingerprint", OPT_IGNORE_FP, NULL, 0, "compare runs whose fingerprints differ" },
	{ "runs", OPT_RUNS, "N", 0, "with -- CMD: run CMD N times (default: as many runs as the "
				    "baseline has)" },
	{ "traces", OPT_TRACES, "DIR", 0, "with -- CMD: keep the traces of the runs in DIR "
					  "(default: a temporary directory, removed)" },
	{ NULL, 0, NULL, 0, "Rules (docs/ci.md):", 2 },
	{ "max-increase", OPT_MAX_INCREASE, "LIST", 0, "largest allowed increase per key, e.g. "
						      "bytes=10%,allocs=5%,outstanding=+100 "
						      "(default bytes=10%,allocs=10%)" },
	{ "min-delta", OPT_MIN_DELTA, "BYTES", 0, "a relative change counts only when the key's "
						  "bytes moved by more than BYTES (default "
						  "4096)" },
	{ "fail-on", OPT_FAIL_ON, "LIST", 0, "leak, misuse, bad-free, new-site, new-order or none "
					     "(default leak,misuse,bad-free)" },
	{ "rules", OPT_RULES, "FILE", 0, "per-key budgets, one a line" },
	{ "alpha", OPT_ALPHA, "P", 0, "significance level of the U test (default 0.05)" },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "json", 'j', NULL, 0, "JSON result (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the result to FILE" },
	{ "junit", OPT_JUNIT, "FILE", 0, "also write JUnit XML to FILE" },
	{ "ktap", OPT_KTAP, NULL, 0, "KTAP output (kselftest)" },
	{},
};

static error_t check_parse(int key, char *arg, struct argp_state *state)
{
	char why[256];
	int err = 0;

	switch (key) {
	case 'b':
		check_env.baseline = arg;
		break;
	case 'k':
		err = gate_parse_kinds(&check_env.r.kinds, arg, why, sizeof(why));
		check_env.kinds_given = true;
		break;
	case OPT_EXACT:
		check_env.r.exact_offsets = true;
		break;
	case OPT_IGNORE_FP:
		check_env.ignore_fp = true;
		break;
	case OPT_MAX_INCREASE:
		err = gate_parse_max_increase(&check_env.r, arg, why, sizeof(why));
		break;
	case OPT_MIN_DELTA:
		err = gate_parse_min_delta(&check_env.r, arg, why, sizeof(why));
		break;
	case OPT_FAIL_ON:
		err = gate_parse_fail_on(&check_env.r, arg, why, sizeof(why));
		break;
	case OPT_RULES:
		check_env.rules_file = arg;
		break;
	case OPT_ALPHA: {
		char *end;

		check_env.r.alpha = strtod(arg, &end);
		if (*end || end == arg || !(check_env.r.alpha > 0 && check_env.r.alpha < 1))
			cli_argp_fail(state, "--alpha takes a probability between 0 and 1");
		break;
	}
	case 'j':
		check_env.json = true;
		break;
	case 'o':
		check_env.output = arg;
		break;
	case OPT_JUNIT:
		check_env.junit = arg;
		break;
	case OPT_KTAP:
		check_env.ktap = true;
		break;
	case OPT_RUNS:
		if (cli_parse_uint(arg, "run count", 1000, &check_env.runs) || !check_env.runs)
			cli_argp_fail(state, "--runs takes a count from 1 to 1000");
		break;
	case OPT_TRACES:
		check_env.traces = arg;
		break;
	case ARGP_KEY_ARG:
		/* words after -- are the command (cli_argp_parse keeps the order) */
		if (state->quoted && state->next - 1 >= state->quoted) {
			check_env.cmd = state->argv + state->next - 1;
			state->next = state->argc;
		} else if (add_path(&check_env.paths, &check_env.nr_paths, arg)) {
			return ENOMEM;
		}
		break;
	case ARGP_KEY_NO_ARGS:
		cli_argp_fail(state, "no RUN given, and no -- CMD");
	case ARGP_KEY_END:
		if (!check_env.baseline)
			cli_argp_fail(state, "--baseline is required");
		if (check_env.cmd && check_env.nr_paths)
			cli_argp_fail(state, "RUN files and -- CMD do not go together");
		if (!check_env.cmd && (check_env.runs || check_env.traces))
			cli_argp_fail(state, "--runs and --traces go with -- CMD");
		if (check_env.json && check_env.ktap)
			cli_argp_fail(state, "--json and --ktap both want the output");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	if (err)
		cli_argp_fail(state, "%s", why);
	return 0;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	int c;
	FILE *m;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	if (!m) {
		fclose(f);
		return NULL;
	}
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

static int load_rules(const char *path, struct gate_rules *r)
{
	char *text = read_text(path), why[2400];
	int err;

	if (!text) {
		fprintf(stderr, "kmemscope: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	err = gate_parse_rules(r, text, why, sizeof(why));
	if (err)
		fprintf(stderr, "kmemscope: %s: %s\n", path, why);
	free(text);
	return err;
}

/*
 * check -- CMD: each run is `kmemscope record -o DIR/runI.kmt -- CMD`, this
 * very binary, so a run is recorded exactly as a baseline's runs are. CMD's
 * output goes to stderr: stdout is the verdict's. 0, or GATE_USAGE after one
 * line saying which run failed.
 */
static int record_runs(const char *dir, unsigned long runs)
{
	int nw = 0;

	while (check_env.cmd[nw])
		nw++;
	check_env.recorded = true;
	for (unsigned long i = 0; i < runs; i++) {
		char path[4096], *argv[nw + 6];
		int status = 0;
		pid_t pid;

		snprintf(path, sizeof(path), "%s/run%lu.kmt", dir, i + 1);
		memcpy(argv, (char *[]){ "kmemscope", "record", "-o", path, "--" },
		       5 * sizeof(char *));
		memcpy(argv + 5, check_env.cmd, (nw + 1) * sizeof(char *));
		fflush(NULL);
		pid = fork();
		if (!pid) {
			dup2(STDERR_FILENO, STDOUT_FILENO);
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "kmemscope check: run %lu of %lu: kmemscope record -- %s "
				"failed (%s %d)\n", i + 1, runs, check_env.cmd[0],
				WIFSIGNALED(status) ? "signal" : "exit status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			return GATE_USAGE;
		}
		if (add_path(&check_env.paths, &check_env.nr_paths, strdup(path)))
			return GATE_USAGE;
	}
	return 0;
}

/* the temporary directory of check -- CMD, and the traces in it */
static void remove_traces(const char *dir)
{
	for (int i = 0; i < check_env.nr_paths; i++)
		unlink(check_env.paths[i]);
	rmdir(dir);
}

int cmd_check(int argc, char **argv)
{
	static const struct argp argp = {
		check_options, check_parse,
		"--baseline BASE RUN...\n--baseline BASE [--runs N] -- CMD [ARGS]",
		"Compare runs with a baseline and decide: within budget, or a regression naming "
		"each key with its value before -> after and the rule it broke.\v"
		"RUN: trace files, JSON reports or baselines of the same workload as the "
		"baseline. With several runs on each side a change counts only when it is beyond "
		"the thresholds and the Mann-Whitney U test calls it clear at --alpha (it needs "
		"4 runs a side at 0.05); with one run per side, thresholds alone decide. A leak "
		"fails only when certain in every current run. Under GitHub Actions "
		"(GITHUB_ACTIONS=true) failures are also ::error annotations and a Markdown "
		"summary goes to $GITHUB_STEP_SUMMARY. docs/ci.md has the details.\n\n"
		"Examples:\n"
		"  kmemscope check --baseline base.json run.kmt\n"
		"  kmemscope check -b base.json --max-increase bytes=5% --fail-on leak,new-site "
		"r1.kmt r2.kmt r3.kmt r4.kmt\n"
		"  kmemscope check -b base.json --runs 4 -- ./workload.sh\n\n"
		"Exit status: 0 within budget, 1 on a regression, 2 on a usage error or an "
		"unreadable baseline, run or rules file, 3 when the runs are not comparable "
		"(their fingerprints differ; see --ignore-fingerprint).\n"
		"With -- CMD, check runs CMD --runs times under kmemscope record (root "
		"needed, as for record) and checks those runs; a run that fails is exit 2.",
	};
	struct side b = {}, a = {};
	char why[1024], tmpdir[4096] = "";
	json_t *doc = NULL, *skipped;
	FILE *out = NULL;
	int err;

	gate_rules_init(&check_env.r);
	err = cli_argp_parse(&argp, argc, argv, NULL);
	if (err)
		goto out;
	err = GATE_USAGE;
	if (check_env.rules_file && load_rules(check_env.rules_file, &check_env.r))
		goto out;
	/* a budget for keys this check does not compare would pass unnoticed */
	for (size_t i = 0; i < check_env.r.nr_rules; i++) {
		const struct gate_rule *rule = &check_env.r.rules[i];

		if (!(check_env.r.kinds & (1u << gate_kind_index(rule->kind))))
			fprintf(stderr, "kmemscope check: warning: %s line %d: %s keys are not "
				"compared (add --key %s)\n", check_env.rules_file, rule->line,
				rule->kind, rule->kind);
	}
	if (cli_check_output(check_env.output))
		goto out;
	err = side_load(&b, (char **)&check_env.baseline, 1, check_env.r.exact_offsets);
	if (!err && check_env.cmd) {
		const char *tmp = getenv("TMPDIR");

		if (!check_env.traces) {
			snprintf(tmpdir, sizeof(tmpdir), "%s/kmemscope-check.XXXXXX",
				 tmp && *tmp ? tmp : "/tmp");
			if (!mkdtemp(tmpdir)) {
				fprintf(stderr, "kmemscope check: cannot create %s: %s\n", tmpdir,
					strerror(errno));
				tmpdir[0] = '\0';
				err = GATE_USAGE;
				goto out;
			}
		} else if (mkdir(check_env.traces, 0755) && errno != EEXIST) {
			fprintf(stderr, "kmemscope check: cannot create %s: %s\n",
				check_env.traces, strerror(errno));
			err = GATE_USAGE;
			goto out;
		}
		err = record_runs(check_env.traces ?: tmpdir, check_env.runs ?:
				  json_array_size(b.runs));
	}
	if (!err)
		err = side_load(&a, check_env.paths, check_env.nr_paths, check_env.r.exact_offsets);
	if (err)
		goto out;
	if (sides_incomparable(&b, &a, why, sizeof(why)) && !check_env.ignore_fp) {
		fprintf(stderr, "kmemscope check: not comparable: %s (--ignore-fingerprint to "
			"compare anyway)\n", why);
		err = GATE_NOT_COMPARABLE;
		goto out;
	}
	skipped = json_array();
	for (int k = 0; k < GATE_NR_KINDS; k++) {
		const char *why = k == 1 ? "both sides need leaks reports or traces" :
				  "both sides need stat reports or traces";

		if (!(check_env.r.kinds & (1u << k)) ||
		    gate_kind_held(b.runs, a.runs, gate_kinds[k]))
			continue;
		/* asked for by name: a gate that compares nothing must not pass */
		if (check_env.kinds_given) {
			fprintf(stderr, "kmemscope check: --key %s: %s\n", gate_kinds[k], why);
			json_decref(skipped);
			err = GATE_USAGE;
			goto out;
		}
		json_array_append_new(skipped, json_pack("{s:s,s:s}", "kind", gate_kinds[k],
							 "why", why));
	}
	doc = gate_check(b.runs, a.runs, &check_env.r);
	json_object_set_new(doc, "base", side_json(&b));
	json_object_set_new(doc, "current", side_json(&a));
	json_object_set_new(doc, "not_compared", skipped);
	err = json_integer_value(json_object_get(doc, "exit"));
	if (check_env.junit && gate_write_junit(check_env.junit, doc))
		err = GATE_USAGE;
	out = cli_open_output(check_env.output);
	if (!out) {
		err = GATE_USAGE;
		goto out;
	}
	if (check_env.json) {
		json_dumpf(doc, out, JSON_INDENT(1));
		fputc('\n', out);
	} else if (check_env.ktap) {
		gate_print_ktap(out, doc);
	} else {
		gate_print_check(out, doc, "");
	}
	if (!strcmp(getenv("GITHUB_ACTIONS") ?: "", "true"))
		gate_print_github(out, doc);
	cli_close_output(out);
out:
	json_decref(doc);
	side_free(&b);
	side_free(&a);
	gate_rules_free(&check_env.r);
	if (tmpdir[0])
		remove_traces(tmpdir);
	/* the recorded runs' paths are ours, RUN words are argv's */
	for (int i = 0; check_env.recorded && i < check_env.nr_paths; i++)
		free(check_env.paths[i]);
	free(check_env.paths);
	return err;
}
