/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope: a live tracer and profiler of kernel memory allocations.
 * Subcommands in the style of perf and bpftool; each has its own argp table.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "ksyms.h"
#include "log.h"
#include "collector.h"
#include "plan.h"
#include "session.h"
#include "tracefs.h"
#include "user_proc.h"
#include "version.h"

/* the release: trace files and the gate's fingerprints name it */
const char *argp_program_version = "kmemscope " KMS_RELEASE;
const char *argp_program_bug_address = "the kmemscope issue tracker";

/* kmemscope --version, and every command's -V: the build, and the libbpf it runs with */
static void print_version(FILE *out, struct argp_state *state)
{
	fprintf(out, "%s%s%s%s\nlibbpf %s\n", argp_program_version, KMS_GIT[0] ? " (git " : "",
		KMS_GIT, KMS_GIT[0] ? ")" : "", libbpf_version_string());
}

/* ---- subcommand table ---- */

static int cmd_probe(int argc, char **argv);

static const struct cli_subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} subcmds[] = {
	{ "stat", cmd_stat, "trace for a while, then report per family, site, GFP, order, size, "
			    "cache, process and node" },
	{ "top", cmd_top, "live view of the busiest allocation sites, refreshed every interval" },
	{ "leaks", cmd_leaks, "objects still outstanding by stack, bad frees, atomic-context misuse" },
	{ "misuse", cmd_misuse, "blocking allocations in atomic context, by stack" },
	{ "record", cmd_record, "record what a session sees to a trace file, for the reports' -i" },
	{ "info", cmd_info, "what a trace file holds: system, command, time span, events, losses" },
	{ "script", cmd_script, "print a trace file's records, one per line (text or NDJSON)" },
	{ "diff", cmd_diff, "compare two runs (trace files or reports) per site, stack, cache, "
			    "family, order or GFP" },
	{ "baseline", cmd_baseline, "store the per-key values of runs for check --baseline" },
	{ "check", cmd_check, "CI gate: compare runs with a baseline; exit 1 on a regression" },
	{ "serve", cmd_serve, "serve the counts over HTTP for Prometheus, for as long as it runs" },
	{ "probe", cmd_probe, "show how each allocator event is attached on this kernel" },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: kmemscope COMMAND [OPTIONS] [-- CMD [ARGS]]\n\n"
		"Trace and profile Linux kernel memory allocations (kmalloc, kmem_cache, page,\n"
		"vmalloc, dma, percpu) with BPF.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		if (subcmds[i].fn)
			fprintf(out, "  %-8s %s\n", subcmds[i].name, subcmds[i].help);
	fprintf(out, "\nRun 'kmemscope COMMAND --help' for a command's options.\n"
		"Examples:\n"
		"  kmemscope stat -d 10                 all allocations for 10 seconds\n"
		"  kmemscope stat --json -- make -j2    allocations made on behalf of a build\n"
		"  kmemscope top --sort bytes           live view, sorted by bytes\n"
		"  kmemscope record -o t.kmt -d 10      record 10 seconds to a trace file\n"
		"  kmemscope stat -i t.kmt              report on it later, anywhere, no root\n"
		"  kmemscope script -i t.kmt --json     its records, one JSON object per line\n"
		"  kmemscope probe                      attach plan for this kernel\n"
		"  kmemscope check -b base.json run.kmt CI gate (docs/ci.md)\n");
}

/* ---- probe ---- */

static struct {
	bool json;
	const char *output;
	struct session_args sa;
} probe_env;

static const struct argp_option probe_options[] = {
	{ NULL, 0, NULL, 0, "What to check:", 1 },
	{ "for", 1001, "COMMAND", 0, "the configuration COMMAND loads with the tracing options "
				     "given: stat (default), top, leaks or misuse" },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{},
};

/* the session options each command starts from (see their files) */
static int probe_for(const char *cmd, struct session_opts *so)
{
	if (!strcmp(cmd, "stat") || !strcmp(cmd, "top")) {
		so->context = true;
	} else if (!strcmp(cmd, "leaks") || !strcmp(cmd, "misuse")) {
		so->context = true;
		so->stacks_all = true;
		so->stack_cache = !strcmp(cmd, "leaks");
		if (!so->rescue_given)
			so->rescue = !strcmp(cmd, "leaks");
	} else {
		return -EINVAL;
	}
	return 0;
}

static error_t probe_parse(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &probe_env.sa;
		probe_for("stat", &probe_env.sa.so);
		break;
	case 1001:
		if (probe_for(arg, &probe_env.sa.so))
			cli_argp_fail(state, "--for takes stat, top, leaks or misuse");
		break;
	case 'j':
		probe_env.json = true;
		break;
	case 'o':
		probe_env.output = arg;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int cmd_probe(int argc, char **argv)
{
	static const struct argp argp = {
		probe_options, probe_parse, "[-- CMD [ARGS]]",
		"Show, for every allocator event, the attach method kmemscope uses on the "
		"running kernel and why each better candidate was rejected.\v"
		"Candidates are tried in order: tracepoint (tp_btf, then raw_tp), fentry/fexit, "
		"kprobe. Each is loaded and attached for real, in an object configured exactly "
		"as the command named by --for configures its own with the same tracing options "
		"(filters, ordering, stacks, context, rescue): what probe prints is what that "
		"command uses. CMD is not run. Every command also probes its own configuration "
		"when it starts.",
		session_tracing_children,
	};
	struct ksyms_loader syms = {};	/* read only if kprobe targets are checked */
	struct collector_opts co;
	struct plan *plan = NULL;
	FILE *out;
	int err;

	err = cli_argp_parse(&argp, argc, argv, NULL);
	if (err)
		return err;
	err = cli_preflight();
	if (err)
		return err;
	session__collector_opts(&probe_env.sa.so, &co);
	err = plan__probe(&plan, &co, &syms);
	ksyms__loader_fini(&syms);
	if (err) {
		kms_error("Failed to probe attach points: %s\n", strerror(-err));
		return 1;
	}
	/* --user with one running process: where it finds malloc and the rest */
	if (probe_env.sa.so.user && probe_env.sa.so.nr_pids == 1 && !probe_env.sa.so.cmd &&
	    user_procs__describe(probe_env.sa.so.pids[0], plan->user_allocator,
				 sizeof(plan->user_allocator))) {
		plan__free(plan);
		return 1;
	}
	out = cli_open_output(probe_env.output);
	if (!out) {
		plan__free(plan);
		return 1;
	}
	if (probe_env.json)
		err = plan__print_json(plan, cli_kernel_release(), out);
	else
		err = plan__print_text(plan, out);
	cli_close_output(out);
	plan__free(plan);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = cli_on_signal };

	argp_err_exit_status = 2;
	argp_program_version_hook = print_version;
	libbpf_set_print(kms_libbpf_print);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		print_version(stdout, NULL);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		/* unique prefixes work, as in bpftool */
		size_t n = strlen(argv[1]);
		int hits = 0, hit = -1;

		for (size_t j = 0; j < sizeof(subcmds) / sizeof(subcmds[0]); j++)
			if (!strncmp(subcmds[j].name, argv[1], n)) {
				hits++;
				hit = j;
				if (strlen(subcmds[j].name) == n) {
					hits = 1;
					break;
				}
			}
		if (hits == 1) {
			/* "kmemscope stat" in usage and error lines */
			char name[64];

			if (!subcmds[hit].fn) {
				fprintf(stderr, "kmemscope: %s is not in this build (the static "
					"binary has no HTTP server)\n", subcmds[hit].name);
				return 2;
			}
			snprintf(name, sizeof(name), "kmemscope %s", subcmds[hit].name);
			argv[1] = name;
			return subcmds[hit].fn(argc - 1, argv + 1);
		}
		break;
	}
	fprintf(stderr, "kmemscope: unknown command '%s' (try 'kmemscope --help')\n", argv[1]);
	return 2;
}
