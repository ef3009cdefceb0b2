/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The export options of stat and leaks, and their writing (export.h). */
#include <argp.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "export.h"
#include "flame.h"
#include "log.h"
#include "pprof.h"
#include "profile.h"
#include "session.h"

static const struct argp_option export_options[] = {
	{ NULL, 0, NULL, 0, "Export (values: alloc_bytes, alloc_count, inuse_bytes, "
			    "inuse_count):", 4 },
	{ "folded", 1201, "VALUE", OPTION_ARG_OPTIONAL,
	  "print folded stacks (\"frame;frame;... value\", root first: flamegraph.pl, "
	  "speedscope, Perfetto) instead of the report; VALUE defaults to alloc_bytes for "
	  "stat, inuse_bytes for leaks" },
	{ "flamegraph", 1202, "FILE.svg", 0, "also write an interactive SVG flame graph" },
	{ "flamegraph-value", 1203, "VALUE", 0, "what the flame graph measures (default: "
						"--folded's VALUE, else as --folded)" },
	{ "pprof", 1204, "FILE", 0, "also write a gzipped pprof profile (go tool pprof, Parca, "
				    "Pyroscope) with all four values" },
	{},
};

static int parse_value(struct argp_state *state, const char *opt, const char *arg)
{
	int v = profile_value_parse(arg);

	if (v < 0)
		argp_error(state, "%s takes alloc_bytes, alloc_count, inuse_bytes or inuse_count",
			   opt);
	return v;
}

static error_t export_parse(int key, char *arg, struct argp_state *state)
{
	struct export_args *a = state->input;

	switch (key) {
	case 1201:
		a->folded = true;
		if (arg && (a->folded_value = parse_value(state, "--folded", arg)) < 0)
			return EINVAL;
		break;
	case 1202:
		a->flamegraph = arg;
		break;
	case 1203:
		if ((a->flame_value = parse_value(state, "--flamegraph-value", arg)) < 0)
			return EINVAL;
		break;
	case 1204:
		a->pprof = arg;
		break;
	case ARGP_KEY_END:
		if (a->flame_value >= 0 && !a->flamegraph)
			cli_argp_fail(state, "--flamegraph-value goes with --flamegraph");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

const struct argp export_argp = { export_options, export_parse };

const struct argp_child export_argp_children[] = {
	{ &session_argp, 0, NULL, 1 },
	{ &export_argp, 0, NULL, 4 },
	{},
};

void export__init(struct export_args *a)
{
	memset(a, 0, sizeof(*a));
	a->folded_value = -1;
	a->flame_value = -1;
}

bool export__wanted(const struct export_args *a)
{
	return a->folded || a->flamegraph || a->pprof;
}

int export__check(const struct export_args *a)
{
	return cli_check_output(a->flamegraph) ?: cli_check_output(a->pprof);
}

static int write_flamegraph(const struct export_args *a, const struct profile *p, int value)
{
	struct flame f;
	FILE *out;
	int err;

	err = flame__build(&f, p, value);
	if (!err) {
		out = fopen(a->flamegraph, "w");
		if (!out) {
			err = -errno;
		} else {
			err = flame__svg(&f, p, out);
			if (fclose(out) && !err)
				err = -errno;
		}
	}
	flame__free(&f);
	if (err)
		kms_error("Failed to write the flame graph %s: %s\n", a->flamegraph, strerror(-err));
	return err ? 1 : 0;
}

int export__write(const struct export_args *a, const struct profile *p, int def, FILE *report_out)
{
	int folded = a->folded_value >= 0 ? a->folded_value : def;
	int err = 0;

	if (a->flamegraph)
		err = write_flamegraph(a, p, a->flame_value >= 0 ? a->flame_value : folded);
	/* pprof shows def first: the file holds every value */
	if (a->pprof && pprof__write(p, def, a->pprof))
		err = 1;
	if (a->folded) {
		struct flame f;
		int ferr = flame__build(&f, p, folded);

		if (!ferr)
			ferr = flame__folded(&f, report_out);
		flame__free(&f);
		if (ferr) {
			kms_error("Failed to write folded stacks: %s\n", strerror(-ferr));
			err = 1;
		}
	}
	return err;
}

/* the wall clock at the session's start: a file's as recorded, a live one's now */
static __u64 start_realtime(const struct session *s)
{
	struct timespec ts;

	if (s->trace)
		return s->trace_realtime ? s->trace_realtime + s->start_ns : 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec - (cli_now_ns() - s->start_ns);
}

int export__session(const struct export_args *a, const struct session *s,
		    const struct kms_quality *q, struct profile_opts *po, int def,
		    FILE *report_out)
{
	struct profile p;
	int err;

	po->kernel = s->kernel;
	po->source = s->trace ? "file" : "live";
	po->quality = q;
	po->start_realtime_ns = start_realtime(s);
	po->ksyms = s->ksyms;
	po->gfp = s->gfp;
	err = profile__build(&p, s->pipe.detect, po);
	if (err)
		kms_error("Failed to build the profile: %s\n", strerror(-err));
	else
		err = export__write(a, &p, def, report_out);
	profile__free(&p);
	return err ? 1 : 0;
}
