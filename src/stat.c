/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* kmemscope stat: trace for a while, then one aggregated report. */
#include <argp.h>
#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "log.h"
#include "report.h"
#include "session.h"
#include "detect.h"
#include "detect_report.h"
#include "export.h"
#include "gfp.h"
#include "profile.h"


struct stat_env {
	struct session_args sa;
	double duration;
	bool json;
	const char *output;
	const char *sort;
	unsigned long top;
	bool bad;
	struct export_args ex;
};

static const struct argp_option stat_options[] = {
	{ NULL, 0, NULL, 0, "What to trace:", 1 },
	{ "duration", 'd', "SEC", 0, "trace for SEC seconds (default: until Ctrl-C, or until "
				     "CMD exits)" },
	{ "no-stacks", 1001, NULL, 0, "no stack capture: page, vmalloc and dma sites stay unknown" },
	{ "no-context", 1004, NULL, 0, "do not capture the allocation context (no atomic-context "
				       "checks; a little cheaper)" },
	{ NULL, 0, NULL, 0, "Output:", 2 },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{ "sort", 's', "KEYS", 0, "sort call sites by KEYS, comma-separated (default: bytes,allocs)" },
	{ "top", 'n', "N", 0, "rows per table (default 20, 0: all)" },
	{},
};

static error_t stat_parse(int key, char *arg, struct argp_state *state)
{
	struct stat_env *env = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		state->child_inputs[1] = &env->ex;
		break;
	case 'd':
		if (cli_parse_seconds(arg, "duration", &env->duration))
			return EINVAL;
		break;
	case 1001:
		env->sa.so.no_stacks = true;
		break;
	case 1004:
		env->sa.so.context = false;
		break;
	case 'j':
		env->json = true;
		break;
	case 'o':
		env->output = arg;
		break;
	case 's':
		env->sort = arg;
		break;
	case 'n':
		if (cli_parse_uint(arg, "row count", 1000000, &env->top))
			return EINVAL;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* stat's misuse summary: the detectors' context checks, no leak tracking */
struct stat_misuse {
	struct detect *d;
	struct detect_report_opts ro;
};

static struct rows *misuse_rows(void *ctx)
{
	struct stat_misuse *m = ctx;

	return detect_report__misuse(m->d, &m->ro);
}

int cmd_stat(int argc, char **argv)
{
	static const struct argp argp = {
		stat_options, stat_parse, "[-- CMD [ARGS]]",
		"Trace kernel memory allocations, then print per-family totals, the top call "
		"sites, GFP flags, page orders, sizes, slab caches, processes, NUMA nodes and the "
		"data quality of the run.\v"
		"Examples:\n"
		"  kmemscope stat -d 10                  whole system, 10 seconds\n"
		"  kmemscope stat -- tar xf l.tar        what tar and its children allocate\n"
		"  kmemscope stat -a -- sleep 5          whole system while 'sleep 5' runs\n"
		"  kmemscope stat -p 1234 -s waste -n 10 waste of pid 1234, top 10 sites\n"
		"  kmemscope stat -F slab --json -o out.json -d 5\n\n"
		"Exit status: 1 on a runtime failure, 2 on a usage or environment error (not "
		"root, no BTF, no tracefs); otherwise CMD's exit status with -- CMD (128+N if "
		"signal N killed it, 127 if it cannot run), else 0.",
		export_argp_children,
	};
	struct stat_env env = { .top = 20, .sa.so.context = true };
	struct report_opts ro = {};
	struct stat_misuse mis = {};
	struct detect_opts dopts = {};
	struct kms_quality q;
	struct session s;
	const char *bad;
	FILE *out;
	int err;

	export__init(&env.ex);
	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	if (env.sa.so.input && env.duration) {
		fprintf(stderr, "kmemscope: -d has no meaning with -i (see --from, --to)\n");
		return 2;
	}
	if (export__wanted(&env.ex) && env.sa.so.no_stacks) {
		fprintf(stderr, "kmemscope: --no-stacks leaves no stacks to export\n");
		return 2;
	}
	if (env.ex.folded && env.json) {
		fprintf(stderr, "kmemscope: --folded and --json do not go together\n");
		return 2;
	}
	err = cli_check_output(env.output) ?: export__check(&env.ex);
	if (err)
		return err;
	if (report__parse_sort(env.sort ? env.sort : "bytes,allocs", &ro, &bad)) {
		fprintf(stderr, "kmemscope: unknown sort key '%s' (one of: %s)\n", bad,
			report__sort_keys());
		return 2;
	}
	dopts.misuse = env.sa.so.context;
	if (export__wanted(&env.ex)) {
		/* allocations by stack: the detector's groups, a stack for each (cached per site) */
		dopts.leaks = true;
		env.sa.so.stacks_all = true;
		env.sa.so.stack_cache = true;
	}
	if (dopts.misuse || dopts.leaks)
		env.sa.so.detect = &dopts;
	err = session__start(&s, &env.sa.so);
	if (err)
		goto out;
	/* a file recorded with --no-context has no misuse section either */
	mis.d = s.context_requested ? s.pipe.detect : NULL;
	if (mis.d) {
		mis.ro.ksyms = s.ksyms;
		mis.ro.gfp = s.gfp;
		mis.ro.kernel = s.kernel;
		mis.ro.source = s.trace ? "file" : "live";
		memcpy(mis.ro.baseline_pc, s.baseline_pc, sizeof(mis.ro.baseline_pc));
		mis.ro.stack_depth = 1;
		mis.ro.top = env.top;
		mis.ro.misuse = true;
		ro.extra = misuse_rows;
		ro.extra_ctx = &mis;
	}
	if (!env.duration && !env.sa.so.cmd && !env.json && !env.sa.so.input)
		fprintf(stderr, "Tracing kernel allocations... Ctrl-C to stop.\n");
	err = session__run(&s, env.duration, 0, NULL, NULL);
	err = session__stop(&s) || err;
	if (err)
		goto out;
	session__quality(&s, &q);
	ro.ksyms = s.ksyms;
	ro.gfp = s.gfp;
	ro.kernel = s.kernel;
	ro.source = s.trace ? "file" : "live";
	ro.quality = &q;
	ro.top = env.top;
	out = cli_open_output(env.output);
	if (!out) {
		err = 1;
		goto out;
	}
	if (export__wanted(&env.ex)) {
		struct profile_opts po = { .scope = PROFILE_ALL, .command = "stat" };

		err = export__session(&env.ex, &s, &q, &po, PV_ALLOC_BYTES, out);
	}
	if (!env.ex.folded)
		err = (env.json ? report__stat_json(s.pipe.agg, &ro, out) :
				  report__stat_text(s.pipe.agg, &ro, out)) || err;
	cli_close_output(out);
	err = err ? 1 : 0;
out:
	err = cli_cmd_status(&s.cmd, err);
	session__free(&s);
	return err;
}
