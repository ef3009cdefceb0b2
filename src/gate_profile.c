/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One profile per run, from what the reports already say: a JSON report is
 * read as it is; a trace file is replayed through `stat -i` and `leaks -i`
 * (the commands themselves, in a child process each) and their JSON reports
 * are read the same way. The fingerprint comes from the trace's META block
 * or from the report's header.
 *
 * Keys never hold addresses: "function+0x1f [module]" from the reports'
 * symbol strings, the offset dropped by gate_canon() unless --exact-offsets.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "cli.h"
#include "gate.h"
#include "trace.h"

extern const char *argp_program_version;

const char *const gate_kinds[GATE_NR_KINDS] = { "site", "stack", "cache", "family", "order",
						"gfp" };
const char *const gate_metrics[GATE_NR_METRICS] = { "allocs", "bytes", "outstanding",
						    "outstanding_bytes" };

int gate_kind_index(const char *name)
{
	for (int k = 0; k < GATE_NR_KINDS; k++)
		if (!strcmp(gate_kinds[k], name))
			return k;
	return -1;
}

int gate_metric_index(const char *name)
{
	for (int m = 0; m < GATE_NR_METRICS; m++)
		if (!strcmp(gate_metrics[m], name))
			return m;
	return -1;
}

bool gate_metric_is_bytes(int m)
{
	return m == 1 || m == 3;
}

static json_int_t num(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* "func+0x1f [mod]" from a report's SITE (stat's site rows are SITEs too) */
static void site_key(const json_t *site, char *buf, size_t len)
{
	const char *sym = str(site, "symbol"), *mod = str(site, "module");

	snprintf(buf, len, "%s%s%s%s", sym ? sym : "[unknown]", mod ? " [" : "", mod ? mod : "",
		 mod ? "]" : "");
}

/* the object prof.group.kind.key, created empty */
static json_t *member(json_t *prof, const char *group, const char *kind, const char *key)
{
	json_t *k = json_object_get(json_object_get(prof, group), kind), *v;

	v = json_object_get(k, key);
	if (!v) {
		v = json_object();
		json_object_set_new(k, key, v);
	}
	return v;
}

static json_t *slot(json_t *prof, const char *kind, const char *key)
{
	return member(prof, "keys", kind, key);
}

static void add(json_t *o, const char *k, json_int_t n)
{
	json_object_set_new(o, k, json_integer(num(o, k) + n));
}

static void add_metrics(json_t *v, json_int_t allocs, json_int_t bytes, json_int_t out,
			json_int_t out_bytes)
{
	add(v, "allocs", allocs);
	add(v, "bytes", bytes);
	add(v, "outstanding", out);
	add(v, "outstanding_bytes", out_bytes);
}

/*
 * The page size the report counted with: its page family's bytes over its
 * pages (a report does not say it; 4096 when it allocated no pages)
 */
static json_int_t page_size(const json_t *doc)
{
	json_int_t pages = 0, bytes = 0;
	size_t i;
	json_t *it;

	json_array_foreach(json_object_get(doc, "orders"), i, it)
		pages += num(it, "allocs") << num(it, "order");
	json_array_foreach(json_object_get(doc, "families"), i, it)
		if (!strcmp(str(it, "family") ?: "", "page"))
			bytes = num(it, "bytes_alloc");
	return pages && bytes ? bytes / pages : 4096;
}

static void from_stat(json_t *prof, const json_t *doc)
{
	size_t i, j;
	json_t *it, *g;
	char key[512];

	json_array_foreach(json_object_get(doc, "sites"), i, it) {
		json_t *v, *mix;

		/* a nested row's memory is counted in the outer allocation's row or cache */
		if (json_is_true(json_object_get(it, "nested")))
			continue;
		site_key(it, key, sizeof(key));
		v = slot(prof, "site", key);
		add_metrics(v, num(it, "allocs"), num(it, "bytes_alloc"), num(it, "outstanding"),
			    num(it, "outstanding_bytes"));
		if (!json_object_get(v, "gfp"))
			json_object_set_new(v, "gfp", json_object());
		mix = json_object_get(v, "gfp");
		json_array_foreach(json_object_get(it, "gfp"), j, g)
			add(mix, str(g, "flags"), num(g, "allocs"));
		if (num(it, "gfp_other"))
			add(mix, "(other)", num(it, "gfp_other"));
		if (!json_object_get(v, "orders"))
			json_object_set_new(v, "orders", json_object());
		mix = json_object_get(v, "orders");
		json_array_foreach(json_object_get(it, "orders"), j, g) {
			snprintf(key, sizeof(key), "%lld", (long long)num(g, "order"));
			add(mix, key, num(g, "allocs"));
		}
	}
	json_array_foreach(json_object_get(doc, "caches"), i, it)
		add_metrics(slot(prof, "cache", str(it, "name")), num(it, "allocs"),
			    num(it, "allocs") * num(it, "size"), num(it, "outstanding"),
			    num(it, "outstanding_bytes"));
	json_array_foreach(json_object_get(doc, "families"), i, it)
		if (json_is_true(json_object_get(it, "traced")))
			add_metrics(slot(prof, "family", str(it, "family")), num(it, "allocs"),
				    num(it, "bytes_alloc"), num(it, "outstanding"),
				    num(it, "outstanding_bytes"));
	json_array_foreach(json_object_get(doc, "orders"), i, it) {
		json_t *v;

		if (!num(it, "allocs"))
			continue;
		snprintf(key, sizeof(key), "%lld", (long long)num(it, "order"));
		v = slot(prof, "order", key);
		add(v, "allocs", num(it, "allocs"));
		add(v, "bytes", (num(it, "allocs") << num(it, "order")) * page_size(doc));
	}
	json_array_foreach(json_object_get(doc, "gfp"), i, it) {
		json_t *v = slot(prof, "gfp", str(it, "flags"));

		add(v, "allocs", num(it, "allocs"));
		add(v, "bytes", num(it, "bytes_alloc"));
	}
}

/* verdict objects merge: counts add, the stronger label stays */
static json_t *verdict(json_t *prof, const char *kind, const char *key)
{
	return member(prof, "verdicts", kind, key);
}

static void from_misuse(json_t *prof, const json_t *mis)
{
	size_t i;
	json_t *it;
	char site[480], key[512];

	json_array_foreach(json_object_get(mis, "findings"), i, it) {
		json_t *v;

		site_key(json_object_get(it, "site"), site, sizeof(site));
		snprintf(key, sizeof(key), "%s at %s", str(it, "kind"), site);
		v = verdict(prof, "misuse", key);
		add(v, "count", num(it, "count"));
		if (!str(v, "severity") || !strcmp(str(it, "severity"), "error"))
			json_object_set_new(v, "severity", json_string(str(it, "severity")));
	}
}

static void stack_key(const json_t *stack, char *buf, size_t len)
{
	size_t i, off = 0;
	json_t *f;

	buf[0] = '\0';
	json_array_foreach(stack, i, f)
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s", i ? " <- " : "",
				json_string_value(f));
}

/* leaks sees what is outstanding only */
static void add_outstanding(json_t *v, const json_t *leak)
{
	add(v, "outstanding", num(leak, "count"));
	add(v, "outstanding_bytes", num(leak, "bytes"));
}

static void from_leaks(json_t *prof, const json_t *doc)
{
	size_t i;
	json_t *it;
	char key[2048];

	json_array_foreach(json_object_get(doc, "leaks"), i, it) {
		json_t *v;

		stack_key(json_object_get(it, "stack"), key, sizeof(key));
		add_outstanding(slot(prof, "stack", key), it);
		site_key(json_object_get(it, "site"), key, sizeof(key));
		v = verdict(prof, "leak", key);
		add(v, "count", num(it, "count"));
		add(v, "bytes", num(it, "bytes"));
		if (!str(v, "confidence") || !strcmp(str(it, "confidence"), "certain"))
			json_object_set_new(v, "confidence",
					    json_string(str(it, "confidence") ?: "unconfirmed"));
	}
	json_array_foreach(json_object_get(doc, "retained"), i, it) {
		stack_key(json_object_get(it, "stack"), key, sizeof(key));
		add_outstanding(slot(prof, "stack", key), it);
	}
	json_array_foreach(json_object_get(json_object_get(doc, "bad_frees"), "findings"), i, it) {
		char site[480];
		json_t *v;

		site_key(json_object_get(it, "free_site"), site, sizeof(site));
		snprintf(key, sizeof(key), "%s at %s", str(it, "kind"), site);
		v = verdict(prof, "bad_free", key);
		add(v, "count", num(it, "count"));
		if (!str(v, "certainty") || !json_is_true(json_object_get(it, "suspected")))
			json_object_set_new(v, "certainty", json_string(json_is_true(
					    json_object_get(it, "suspected")) ? "suspected" :
					    "confirmed"));
	}
}

static json_t *new_profile(const char *path)
{
	json_t *p = json_pack("{s:s,s:o,s:[],s:{},s:{s:{},s:{},s:{}}}", "source", path,
			      "fingerprint", json_object(), "sections", "keys", "verdicts", "leak",
			      "misuse", "bad_free");

	for (int k = 0; k < GATE_NR_KINDS; k++)
		json_object_set_new(json_object_get(p, "keys"), gate_kinds[k], json_object());
	return p;
}

bool gate_holds(const json_t *prof, const char *section)
{
	size_t i;
	json_t *it;

	json_array_foreach(json_object_get(prof, "sections"), i, it)
		if (!strcmp(json_string_value(it), section))
			return true;
	return false;
}

/*
 * A report document into prof; -1 when it is no report gate reads.
 * "sections" says what prof holds: stat and leaks (their own tables), misuse
 * (the findings, which all three reports carry: read once).
 */
static int add_report(json_t *prof, const json_t *doc)
{
	const char *schema = str(doc, "schema");
	json_t *sections = json_object_get(prof, "sections");
	json_t *fp = json_object_get(prof, "fingerprint");
	char fmt[128];

	if (!schema)
		return -1;
	if (!strcmp(schema, "kmemscope.stat"))
		from_stat(prof, doc);
	else if (!strcmp(schema, "kmemscope.leaks"))
		from_leaks(prof, doc);
	else if (strcmp(schema, "kmemscope.misuse"))
		return -1;
	if (strcmp(schema, "kmemscope.misuse"))
		json_array_append_new(sections, json_string(schema + strlen("kmemscope.")));
	if (json_object_get(doc, "misuse") && !gate_holds(prof, "misuse")) {
		from_misuse(prof, json_object_get(doc, "misuse"));
		json_array_append_new(sections, json_string("misuse"));
	}
	if (!json_object_get(fp, "kernel_release"))
		json_object_set_new(fp, "kernel_release", json_string(str(doc, "kernel") ?: ""));
	/* a report says nothing of the workload; a trace's META does (see load_trace) */
	if (!json_object_get(fp, "format")) {
		snprintf(fmt, sizeof(fmt), "report %s/%lld", schema,
			 (long long)num(doc, "version"));
		json_object_set_new(fp, "format", json_string(fmt));
	}
	return 0;
}

/* `kmemscope CMD -i path --json -n 0` in a child process: its report */
static json_t *replay_report(int (*cmd)(int, char **), const char *name, const char *path)
{
	char *argv[] = { (char *)name, "-i", (char *)path, "--json", "-n", "0", NULL };
	json_error_t jerr;
	json_t *doc;
	int p[2], status;
	pid_t pid;
	FILE *f;

	if (pipe(p))
		return NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	if (!pid) {
		close(p[0]);
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(2);
		close(p[1]);
		_exit(cmd(6, argv));
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	doc = f ? json_loadf(f, 0, &jerr) : NULL;
	if (f)
		fclose(f);
	else
		close(p[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/*
 * What the trace covers and how, beyond its command: "-a" (the whole system
 * while CMD ran), "-p" (chosen processes: their ids change from run to run),
 * "-c COMM", "-F 0x3" (families), and "--stacks MODE": what the leaks report
 * can group by differs with it (record's cached stacks, stat's sites only).
 */
static const char *scope(const json_t *meta, char *buf, size_t len)
{
	const json_t *filter = json_object_get(meta, "filter");
	const char *comm = str(filter, "comm");
	json_int_t fams = num(filter, "families");

	snprintf(buf, len, "%s%s%s%s", json_is_true(json_object_get(filter, "all_cpus")) ?
		 " -a" : "", json_array_size(json_object_get(filter, "pids")) ? " -p" : "",
		 comm ? " -c " : "", comm ?: "");
	if (fams)
		snprintf(buf + strlen(buf), len - strlen(buf), " -F 0x%llx", (long long)fams);
	snprintf(buf + strlen(buf), len - strlen(buf), " --stacks %s", str(meta, "stacks") ?: "?");
	return buf + 1;
}

static int load_trace(const char *path, json_t *runs)
{
	static const struct {
		int (*cmd)(int, char **);
		const char *name;
	} reports[] = { { cmd_stat, "kmemscope stat" }, { cmd_leaks, "kmemscope leaks" } };
	struct trace_reader *r;
	const json_t *meta, *kern, *cmd, *it;
	json_t *prof, *fp;
	char why[256] = "", work[1024] = "", sc[256], fmt[64];
	size_t i, off = 0;
	int err;

	err = trace_reader__open(&r, path, why, sizeof(why));
	if (err) {
		fprintf(stderr, "kmemscope: %s: %s\n", path, why[0] ? why : strerror(-err));
		return -1;
	}
	meta = trace_reader__meta(r);
	kern = json_object_get(meta, "kernel");
	cmd = json_object_get(json_object_get(meta, "filter"), "command");
	json_array_foreach(cmd, i, it)
		off += snprintf(work + off, off < sizeof(work) ? sizeof(work) - off : 0, "%s%s",
				i ? " " : "", json_string_value(it));
	snprintf(fmt, sizeof(fmt), "trace/%d", KMS_TRACE_VERSION);
	prof = new_profile(path);
	fp = json_object_get(prof, "fingerprint");
	json_object_set_new(fp, "kernel_release", json_string(str(kern, "release") ?: ""));
	json_object_set_new(fp, "kernel_build", json_string(str(kern, "version") ?: ""));
	json_object_set_new(fp, "machine", json_string(str(kern, "machine") ?: ""));
	json_object_set_new(fp, "workload", json_string(work));
	json_object_set_new(fp, "scope", json_string(scope(meta, sc, sizeof(sc))));
	json_object_set_new(fp, "tool", json_string(str(meta, "tool") ?: ""));
	json_object_set_new(fp, "format", json_string(fmt));
	trace_reader__free(r);
	for (i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		json_t *doc = replay_report(reports[i].cmd, reports[i].name, path);

		if (!doc) {
			fprintf(stderr, "kmemscope: %s: %s could not replay it\n", path,
				reports[i].name);
			json_decref(prof);
			return -1;
		}
		add_report(prof, doc);
		json_decref(doc);
	}
	json_array_append_new(runs, prof);
	return 0;
}

static int load_baseline(const char *path, const json_t *doc, json_t *runs)
{
	const json_t *list = json_object_get(doc, "runs");
	size_t i;
	json_t *it;

	if (num(doc, "version") != GATE_BASELINE_VERSION) {
		fprintf(stderr, "kmemscope: %s: baseline version %lld, this kmemscope reads "
			"version %d\n", path, (long long)num(doc, "version"),
			GATE_BASELINE_VERSION);
		return -1;
	}
	if (!json_array_size(list)) {
		fprintf(stderr, "kmemscope: %s: baseline has no runs\n", path);
		return -1;
	}
	json_array_foreach(list, i, it) {
		if (!json_is_object(json_object_get(it, "keys")) ||
		    !json_is_object(json_object_get(it, "verdicts")) ||
		    !json_is_object(json_object_get(it, "fingerprint"))) {
			fprintf(stderr, "kmemscope: %s: baseline run %zu lacks keys, verdicts or "
				"fingerprint\n", path, i + 1);
			return -1;
		}
		json_array_append(runs, it);
	}
	return 0;
}

int gate_load(const char *path, json_t *runs)
{
	char magic[sizeof(KMS_TRACE_MAGIC) - 1];
	json_error_t jerr;
	json_t *doc, *prof;
	const char *schema;
	FILE *f = fopen(path, "r");
	int err = -1;

	if (!f) {
		fprintf(stderr, "kmemscope: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fread(magic, 1, sizeof(magic), f) == sizeof(magic) &&
	    !memcmp(magic, KMS_TRACE_MAGIC, sizeof(magic))) {
		fclose(f);
		return load_trace(path, runs);
	}
	rewind(f);
	doc = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!doc) {
		fprintf(stderr, "kmemscope: %s: neither a trace file nor JSON (line %d: %s)\n",
			path, jerr.line, jerr.text);
		return -1;
	}
	schema = str(doc, "schema");
	if (schema && !strcmp(schema, GATE_BASELINE_SCHEMA)) {
		err = load_baseline(path, doc, runs);
	} else {
		prof = new_profile(path);
		if (add_report(prof, doc)) {
			fprintf(stderr, "kmemscope: %s: not a stat, leaks or misuse report, nor a "
				"baseline (schema %s)\n", path, schema ? schema : "missing");
			json_decref(prof);
		} else {
			json_array_append_new(runs, prof);
			err = 0;
		}
	}
	json_decref(doc);
	return err;
}

/*
 * key without what a rebuild changes: every "+0x<hex>" offset, and the
 * suffixes of the compiler's clones of a function (".isra.0",
 * ".constprop.0", ".part.0", ".cold", ".llvm.123"), which come and go with
 * inlining decisions
 */
static void canon_key(const char *key, char *buf, size_t len)
{
	static const char *const clones[] = { ".isra.", ".constprop.", ".part.", ".cold",
					      ".llvm." };
	size_t o = 0;

	for (const char *s = key; *s && o + 1 < len; s++) {
		bool skip = s[0] == '+' && s[1] == '0' && s[2] == 'x';

		for (size_t i = 0; !skip && i < sizeof(clones) / sizeof(clones[0]); i++)
			skip = !strncmp(s, clones[i], strlen(clones[i]));
		if (skip) {
			/* up to the end of the symbol */
			while (s[1] && (isalnum((unsigned char)s[1]) || s[1] == '.'))
				s++;
			continue;
		}
		buf[o++] = *s;
	}
	buf[o] = '\0';
}

/*
 * into += from, member by member: numbers add; of two labels the
 * alphabetically first stays, which is the stronger of "certain" and
 * "unconfirmed", of "error" and "info", and of "confirmed" and "suspected"
 */
static void merge(json_t *into, const json_t *from)
{
	const char *k;
	json_t *v, *old;

	json_object_foreach((json_t *)from, k, v) {
		old = json_object_get(into, k);
		if (!old)
			json_object_set_new(into, k, json_deep_copy(v));
		else if (json_is_integer(v))
			json_object_set_new(into, k, json_integer(json_integer_value(old) +
							       json_integer_value(v)));
		else if (json_is_object(v))
			merge(old, v);
		else if (json_is_string(v) && strcmp(json_string_value(v),
						     json_string_value(old)) < 0)
			json_object_set(into, k, v);
	}
}

static json_t *canon_group(const json_t *group, bool exact)
{
	json_t *out = json_object(), *kind, *v, *slotv;
	const char *name, *key;
	char buf[2048];

	json_object_foreach((json_t *)group, name, kind) {
		json_t *ok = json_object();

		json_object_foreach(kind, key, v) {
			if (exact)
				snprintf(buf, sizeof(buf), "%s", key);
			else
				canon_key(key, buf, sizeof(buf));
			slotv = json_object_get(ok, buf);
			if (!slotv) {
				slotv = json_object();
				json_object_set_new(ok, buf, slotv);
			}
			merge(slotv, v);
		}
		json_object_set_new(out, name, ok);
	}
	return out;
}

json_t *gate_canon(const json_t *profile, bool exact_offsets)
{
	json_t *p = json_copy((json_t *)profile);

	json_object_set_new(p, "keys", canon_group(json_object_get(profile, "keys"),
						   exact_offsets));
	json_object_set_new(p, "verdicts", canon_group(json_object_get(profile, "verdicts"),
						       exact_offsets));
	return p;
}

const char *gate_incomparable(const json_t *b, const json_t *a, char *why, size_t len)
{
	/* kernel_release and kernel_build differ by design: CI compares two kernels */
	static const char *const must_match[] = { "machine", "workload", "scope", "tool",
						   "format" };
	const json_t *fb = json_object_get(b, "fingerprint");
	const json_t *fa = json_object_get(a, "fingerprint");

	for (size_t i = 0; i < sizeof(must_match) / sizeof(must_match[0]); i++) {
		const char *x = str(fb, must_match[i]), *y = str(fa, must_match[i]);

		/* a report has no workload or machine: unknown compares with anything */
		if (x && y && strcmp(x, y)) {
			snprintf(why, len, "%s '%s' (%s) vs '%s' (%s)", must_match[i], x,
				 str(b, "source"), y, str(a, "source"));
			return why;
		}
	}
	return NULL;
}
