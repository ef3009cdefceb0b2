/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope leaks: every allocation made while tracing is tracked until it is
 * freed; what is left is reported by stack. The option parsing and the run
 * are shared with kmemscope misuse (misuse.c), which needs no live objects.
 */
#include <argp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "detect.h"
#include "detect_report.h"
#include "export.h"
#include "gfp.h"
#include "log.h"
#include "profile.h"
#include "session.h"


struct detect_env {
	struct session_args sa;
	bool leaks;
	double duration;
	double interval;
	unsigned long min_age_ms;
	double settle;
	bool include_retained;
	unsigned long growth;
	unsigned long depth;
	unsigned long top;
	bool json;
	bool no_misuse;
	const char *output;
	struct export_args ex;	/* leaks only */
	/* filled at run time */
	struct session *s;
	struct detect *d;
	struct detect_report_opts ro;
	unsigned int ticks;
};

static const struct argp_option leaks_options[] = {
	{ NULL, 0, NULL, 0, "What to trace:", 1 },
	{ "duration", 'd', "SEC", 0, "trace for SEC seconds (default: until Ctrl-C, or until "
				     "CMD exits)" },
	{ NULL, 0, NULL, 0, "Leaks:", 2 },
	{ "min-age", 1010, "MS", 0, "report only objects outstanding for at least MS ms" },
	{ "interval", 'I', "SEC", 0, "snapshot outstanding bytes every SEC seconds; report stacks "
				     "that grow across consecutive intervals" },
	{ "growth", 1011, "N", 0, "intervals in a row a stack must grow to be reported (default 3)" },
	{ "settle", 1015, "SEC", 0, "after the trace, go on applying frees for SEC seconds, so "
				    "that objects freed after an RCU grace period are not reported "
				    "(default 1, 0: none)" },
	{ "include-retained", 1016, NULL, 0, "count memory retained by design (user and page-cache "
					     "pages, reclaimable slab) as leak candidates" },
	{ "no-misuse", 1012, NULL, 0, "leave out the atomic-context section" },
	{ "stacks", 1017, "cached|every", 0, "cached (default): one stack captured per call site "
					      "and context, reused, checked again every 64th "
					      "allocation; every: one per allocation (exact, ~1 us "
					      "each)" },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "stack-depth", 1013, "N", 0, "frames shown per stack, 1 to 32 (default 8)" },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{ "top", 'n', "N", 0, "rows per table (default 20, 0: all)" },
	{},
};

static const struct argp_option misuse_options[] = {
	{ NULL, 0, NULL, 0, "What to trace:", 1 },
	{ "duration", 'd', "SEC", 0, "trace for SEC seconds (default: until Ctrl-C, or until "
				     "CMD exits)" },
	{ "site-only", 1014, NULL, 0, "no stack for slab allocations (cheaper): findings are "
				      "grouped by call site" },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "stack-depth", 1013, "N", 0, "frames shown per stack, 1 to 32 (default 8)" },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{ "top", 'n', "N", 0, "rows per table (default 20, 0: all)" },
	{},
};

static error_t detect_parse(int key, char *arg, struct argp_state *state)
{
	struct detect_env *env = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		/* leaks only: misuse has no export options (leaks_argp's second child) */
		if (env->leaks)
			state->child_inputs[1] = &env->ex;
		break;
	case 'd':
		if (cli_parse_seconds(arg, "duration", &env->duration))
			return EINVAL;
		break;
	case 1010:
		if (cli_parse_uint(arg, "minimum age", 1UL << 40, &env->min_age_ms))
			return EINVAL;
		break;
	case 'I':
		if (cli_parse_seconds(arg, "interval", &env->interval))
			return EINVAL;
		if (env->interval <= 0)
			cli_argp_fail(state, "--interval must be above 0");
		break;
	case 1011:
		if (cli_parse_uint(arg, "growth intervals", DETECT_GROWTH_KEEP - 1, &env->growth))
			return EINVAL;
		if (!env->growth)
			cli_argp_fail(state, "--growth takes 1 to %d", DETECT_GROWTH_KEEP - 1);
		break;
	case 1012:
		env->no_misuse = true;
		break;
	case 1015:
		if (cli_parse_settle(arg, &env->settle))
			return EINVAL;
		break;
	case 1016:
		env->include_retained = true;
		break;
	case 1013:
		if (cli_parse_uint(arg, "stack depth", KMS_MAX_STACK, &env->depth))
			return EINVAL;
		if (!env->depth)
			cli_argp_fail(state, "--stack-depth takes 1 to %d", KMS_MAX_STACK);
		break;
	case 1014:
		env->sa.so.stacks_all = false;
		break;
	case 1017:
		if (!strcmp(arg, "cached") || !strcmp(arg, "every"))
			env->sa.so.stack_cache = !strcmp(arg, "cached");
		else
			cli_argp_fail(state, "--stacks takes cached or every");
		break;
	case 'j':
		env->json = true;
		break;
	case 'o':
		env->output = arg;
		break;
	case 'n':
		if (cli_parse_uint(arg, "row count", 1000000, &env->top))
			return EINVAL;
		break;
	case ARGP_KEY_END:
		if (env->sa.so.cmd && env->duration)
			cli_argp_fail(state, "-d and -- CMD do not go together");
		if (env->sa.so.input && env->duration)
			cli_argp_fail(state, "-d has no meaning with -i (see --from, --to)");
		if (env->growth && !env->interval)
			cli_argp_fail(state, "--growth goes with --interval");
		if (env->ex.folded && env->json)
			cli_argp_fail(state, "--folded and --json do not go together");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int tick(struct session *s, void *ctx)
{
	struct detect_env *env = ctx;

	detect__snapshot(env->d);
	env->ticks++;
	/* text mode shows growth as it happens; JSON waits for the one document */
	if (!env->json && env->ticks > env->ro.growth_min)
		detect_report__growth_tick(env->d, &env->ro, env->ticks, stderr);
	return 0;
}

int detect_cmd(int argc, char **argv, bool leaks)
{
	static const struct argp leaks_argp = {
		leaks_options, detect_parse, "[-- CMD [ARGS]]",
		"Track every kernel allocation made while tracing until it is freed, then report "
		"what is still outstanding, grouped by stack (count, bytes, oldest age, family, "
		"GFP, example process). Sites whose frees the kernel does not trace are reported "
		"as such, not as leaks; pages under slab or vmalloc, and allocators' own "
		"kmallocs, are marked nested. Also reports bad frees (wrong API, wrong cache, "
		"double free) and atomic-context misuse.\v"
		"Examples:\n"
		"  kmemscope leaks -d 30 --min-age 5000    outstanding for 5 s or more after 30 s\n"
		"  kmemscope leaks -a -- ./stress          while ./stress runs, every free seen\n"
		"  kmemscope leaks -d 60 -I 5 --json       growth over 5 s intervals, as JSON\n"
		"  kmemscope leaks -d 60 --folded > l.txt  outstanding bytes by stack, folded\n\n"
		"Stacks are captured once per call site, caller chain and context and reused (see "
		"--stacks); each capture costs ~1 us. Lost records mark every verdict uncertain (a lost "
		"free looks like a leak).\n"
		"Exit status: 1 on a runtime failure, 2 on a usage or environment error; "
		"otherwise CMD's exit status with -- CMD (128+N if signal N killed it, 127 if "
		"it cannot run), else 0.",
		export_argp_children,
	};
	static const struct argp misuse_argp = {
		misuse_options, detect_parse, "[-- CMD [ARGS]]",
		"Find allocations that ask for a blocking GFP (__GFP_DIRECT_RECLAIM) in atomic "
		"context: preemption disabled, bottom halves disabled, softirq, hardirq, NMI; "
		"and vmalloc from atomic context. Informational: GFP_ATOMIC/GFP_NOWAIT where "
		"the caller could sleep, and order >= 3 atomic page allocations.\v"
		"Examples:\n"
		"  kmemscope misuse -d 60               whole system for a minute\n"
		"  kmemscope misuse --json -- modprobe foo\n\n"
		"Context comes from the preempt count, compared with a baseline calibrated at "
		"start-up. IRQs disabled without preemption disabled (bare local_irq_save) do "
		"not show in it.\n"
		"Exit status: 1 on a runtime failure, 2 on a usage or environment error; "
		"otherwise CMD's exit status with -- CMD (128+N if signal N killed it, 127 if "
		"it cannot run), else 0.",
		session_report_children,
	};
	struct detect_env env = { .leaks = leaks, .top = 20, .depth = 8, .settle = 1 };
	struct detect_opts dopts = {};
	struct kms_quality q;
	struct session s;
	int err, xerr = 0;
	FILE *out;

	env.sa.so.context = true;
	env.sa.so.stacks_all = true;
	env.sa.so.stack_cache = leaks;
	/* a free the kernel skipped would doubt the leak verdicts */
	env.sa.so.rescue = leaks;
	export__init(&env.ex);
	err = cli_argp_parse(leaks ? &leaks_argp : &misuse_argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	err = cli_check_output(env.output) ?: export__check(&env.ex);
	if (err)
		return err;
	if (leaks)
		env.sa.so.stacks_all = true;	/* grouping by stack needs every allocation's */

	for (int f = 0; f < KMS_FAM_MAX; f++)
		dopts.baseline_pc[f] = -1;
	dopts.leaks = leaks;
	dopts.bad_frees = leaks;
	dopts.misuse = !leaks || !env.no_misuse;
	env.sa.so.detect = &dopts;
	env.s = &s;
	err = session__start(&s, &env.sa.so);
	env.d = s.pipe.detect;
	if (err)
		goto out;
	env.ro.ksyms = s.ksyms;
	env.ro.gfp = s.gfp;
	env.ro.kernel = s.kernel;
	env.ro.source = s.trace ? "file" : "live";
	memcpy(env.ro.baseline_pc, s.baseline_pc, sizeof(env.ro.baseline_pc));
	env.ro.stack_depth = env.depth;
	/* a file's records carry the stacks its recording took, whatever the options here */
	env.ro.stacks = s.stacks;
	env.ro.top = env.top;
	env.ro.min_age_ns = env.min_age_ms * 1000000ULL;
	env.ro.growth_min = env.growth ? env.growth : 3;
	env.ro.misuse = dopts.misuse;
	env.ro.include_retained = env.include_retained;
	if (!s.context)
		kms_warn("no allocation context on this kernel: atomic-context checks report "
			 "\"context unknown\"\n");
	session__feedback(&s, &env.sa.so, env.duration);
	err = session__run(&s, env.duration, leaks ? env.interval : 0, leaks && env.interval ?
			   tick : NULL, &env);
	if (!err && leaks)
		err = session__settle(&s, env.settle);
	err = session__stop(&s) || err;
	/* with --user, the symbols of the process's objects joined them at the stop */
	env.ro.ksyms = s.ksyms;
	if (err)
		goto out;
	session__quality(&s, &q);
	env.ro.quality = &q;
	env.ro.now = s.stop_ns;
	env.ro.snapshots = env.ticks;
	env.ro.settle_ns = s.pipe.settling ? s.stop_ns - s.start_ns - s.window_ns : 0;
	env.ro.after_window = s.pipe.after_window;
	out = cli_open_output(env.output);
	if (!out) {
		err = 1;
		goto out;
	}
	if (leaks && export__wanted(&env.ex)) {
		struct profile_opts po = {
			.scope = PROFILE_LEAKS, .command = "leaks", .now = env.ro.now,
			.min_age_ns = env.ro.min_age_ns, .include_retained = env.include_retained,
		};

		xerr = export__session(&env.ex, &s, &q, &po, PV_INUSE_BYTES, out);
	}
	if (leaks && env.ex.folded)
		err = 0;
	else if (leaks)
		err = env.json ? detect_report__leaks_json(env.d, s.pipe.agg, &env.ro, out) :
				 detect_report__leaks_text(env.d, s.pipe.agg, &env.ro, out);
	else
		err = env.json ? detect_report__misuse_json(env.d, s.pipe.agg, &env.ro, out) :
				 detect_report__misuse_text(env.d, s.pipe.agg, &env.ro, out);
	cli_close_output(out);
	if (err)
		kms_error("Failed to write the report: %s\n", strerror(-err));
	err = err || xerr ? 1 : 0;
out:
	err = cli_cmd_status(&s.cmd, err);
	session__free(&s);
	env.s = NULL;
	return err;
}

int cmd_leaks(int argc, char **argv)
{
	return detect_cmd(argc, argv, true);
}
