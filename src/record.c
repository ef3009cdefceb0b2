/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope record: a live session that writes what it sees to a trace file
 * (what --record writes) and reports nothing; stat, leaks and misuse read the
 * file with -i, info says what it holds. The session is the cheapest that
 * still serves every report: no detectors; context captured (misuse) and a
 * stack for every allocation (leaks groups by stack), one per call site and
 * context unless --stacks says otherwise. docs/record.md has the costs.
 */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "log.h"
#include "session.h"
#include "trace.h"

struct record_env {
	struct session_args sa;
	const char *output;
	double duration;
	double settle;
	/* a progress line on stderr, refreshed every second */
	bool progress;
};

static const struct argp_option record_options[] = {
	{ NULL, 0, NULL, 0, "What to record:", 1 },
	{ "output", 'o', "FILE", 0, "the trace file to write (required; mode 0600)" },
	{ "duration", 'd', "SEC", 0, "record for SEC seconds (default: until Ctrl-C, or until "
				     "CMD exits)" },
	{ "stacks", 1020, "MODE", 0, "cached (default): a stack for every allocation, captured "
				     "once per call site, callers and context, reused (leaks groups by "
				     "it); every: one captured per allocation; sites: only where "
				     "the event has no call site (page, vmalloc, dma), as stat; "
				     "none: no stacks" },
	{ "settle", 1021, "SEC", 0, "after the window, go on recording frees for SEC seconds, "
				    "so that objects freed after an RCU grace period are freed in "
				    "the file too (default 1, 0: none), as leaks --settle" },
	{ "no-context", 1022, NULL, 0, "do not capture the allocation context (misuse then "
				       "reports \"context unknown\")" },
	{},
};

static error_t record_parse(int key, char *arg, struct argp_state *state)
{
	struct record_env *env = state->input;
	struct session_opts *so = &env->sa.so;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		break;
	case 'o':
		env->output = arg;
		break;
	case 'd':
		if (cli_parse_seconds(arg, "duration", &env->duration))
			return EINVAL;
		break;
	case 1020:
		if (!strcmp(arg, "none") || !strcmp(arg, "sites")) {
			so->no_stacks = !strcmp(arg, "none");
			so->stacks_all = false;
		} else if (!strcmp(arg, "every") || !strcmp(arg, "cached")) {
			so->no_stacks = false;
			so->stacks_all = true;
			so->stack_cache = !strcmp(arg, "cached");
		} else {
			cli_argp_fail(state, "--stacks takes none, sites, every or cached");
		}
		break;
	case 1021:
		if (cli_parse_settle(arg, &env->settle))
			return EINVAL;
		break;
	case 1022:
		so->context = false;
		break;
	case ARGP_KEY_END:
		if (!env->output)
			cli_argp_fail(state, "-o FILE is required (the trace file to write)");
		if (so->cmd && env->duration)
			cli_argp_fail(state, "-d and -- CMD do not go together");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static double mib(__u64 bytes)
{
	return bytes / (1024.0 * 1024.0);
}

/* once a second on a terminal: how far the recording is */
static int progress(struct session *s, void *ctx)
{
	const struct trace_write_stats *st;
	struct kms_quality q;

	if (!s->rec)
		return 0;
	st = trace_writer__stats(s->rec);
	session__quality(s, &q);
	/* the cursor goes back to the start: a message that comes next writes over it */
	fprintf(stderr, "\r\033[K%6.0f s  %llu events  %.1f MiB written  lost %llu  missed %llu"
		"  not written %llu\r", (cli_now_ns() - s->start_ns) / 1e9,
		(unsigned long long)st->events, mib(st->bytes), (unsigned long long)q.lost,
		(unsigned long long)q.misses, (unsigned long long)st->dropped);
	return 0;
}

static __u64 json_u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (__u64)v : 0;
}

/* the summary, from the file as written: it reads back, and says what it holds */
static int summary(const char *path)
{
	const struct trace_read_info *info;
	const json_t *end, *written, *q;
	struct trace_reader *r;
	__u64 events, start, stop;
	char why[192];
	int err;

	err = trace_reader__open(&r, path, why, sizeof(why));
	if (err) {
		kms_error("%s does not read back: %s\n", path, why);
		return 1;
	}
	info = trace_reader__info(r);
	end = trace_reader__end(r);
	written = json_object_get(end, "written");
	q = json_object_get(end, "quality");
	events = json_u64(written, "events");
	start = json_u64(trace_reader__meta(r), "start_ns");
	stop = json_u64(end, "stop_ns");
	fprintf(stderr, "Recorded %llu events (%llu records, %llu blocks) in %.1f s to %s: "
		"%.1f MiB (%llu bytes), %.1f bytes per event. Lost %llu (ring buffer full), "
		"missed %llu (handler skipped by the kernel), not written %llu.%s%s\n",
		(unsigned long long)events, (unsigned long long)info->records,
		(unsigned long long)info->blocks, stop > start ? (stop - start) / 1e9 : 0.0, path,
		mib(info->size), (unsigned long long)info->size,
		events ? (double)info->size / events : 0.0, (unsigned long long)json_u64(q, "lost"),
		(unsigned long long)json_u64(q, "misses"),
		(unsigned long long)json_u64(written, "dropped"),
		info->cut[0] ? " Note: " : "", info->cut);
	trace_reader__free(r);
	return 0;
}

int cmd_record(int argc, char **argv)
{
	static const struct argp argp = {
		record_options, record_parse, "-o FILE [-- CMD [ARGS]]",
		"Record every kernel allocation event the session sees (after the -p, -c and -F "
		"filters) to a trace file, with the symbols and stacks it refers to, for stat, "
		"leaks and misuse to report on later with -i, on any machine, without root. "
		"Nothing is reported: on a terminal a progress line shows the elapsed time, the "
		"events and bytes written and what was lost; a summary follows at the end.\v"
		"Examples:\n"
		"  kmemscope record -o trace.kmt -d 10       the whole system for 10 seconds\n"
		"  kmemscope record -o build.kmt -- make -j2 what a build allocates\n"
		"  kmemscope stat -i trace.kmt               the stat report of the recording\n"
		"  kmemscope leaks -i trace.kmt --min-age 1000\n"
		"  kmemscope info -i trace.kmt               what the file holds\n\n"
		"Ctrl-C (SIGINT) or SIGTERM ends the recording cleanly. A killed recorder leaves "
		"a file readable up to its last whole block (a block is sealed every second). "
		"The format is docs/trace-format.md.\n"
		"Exit status: 1 on a runtime failure (a write error: the file keeps what came "
		"before), 2 on a usage or environment error; otherwise CMD's exit status with "
		"-- CMD (128+N if signal N killed it, 127 if it cannot run), else 0.",
		session_tracing_children,
	};
	struct record_env env = { .settle = 1 };
	struct session s;
	int err;

	/* what leaks and misuse need on replay; stacks per call site and context */
	env.sa.so.context = true;
	env.sa.so.stacks_all = true;
	env.sa.so.stack_cache = true;
	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	env.sa.so.record = env.output;
	env.sa.so.no_reports = true;
	env.progress = isatty(STDERR_FILENO);
	err = session__start(&s, &env.sa.so);
	if (err)
		goto out;
	session__feedback(&s, &env.sa.so, env.duration);
	err = session__run(&s, env.duration, env.progress ? 1 : 0,
			   env.progress ? progress : NULL, &env);
	if (!err)
		err = session__settle(&s, env.settle);
	if (env.progress) {
		progress(&s, &env);
		fputc('\n', stderr);
	}
	err = session__stop(&s) || err;
	if (!err)
		err = summary(env.output);
out:
	err = cli_cmd_status(&s.cmd, err);
	session__free(&s);
	return err;
}
