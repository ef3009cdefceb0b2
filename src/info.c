/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope info: what a trace file holds, from its blocks (trace_reader),
 * its META and END objects and its records decoded and counted
 * (trace_stats). Reads the file only: no root, no BPF. A file cut short is
 * described as far as it reads, saying so.
 */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "agg.h"
#include "cli.h"
#include "log.h"
#include "rows.h"
#include "trace.h"
#include "trace_stats.h"

#define SCHEMA_INFO "kmemscope.info"
#define SCHEMA_INFO_VERSION 1

struct info_env {
	const char *input;
	const char *output;
	bool json;
};

static const struct argp_option info_options[] = {
	{ "input", 'i', "FILE", 0, "the trace file to describe (required)" },
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the description to FILE" },
	{},
};

static error_t info_parse(int key, char *arg, struct argp_state *state)
{
	struct info_env *env = state->input;

	switch (key) {
	case 'i':
		env->input = arg;
		break;
	case 'j':
		env->json = true;
		break;
	case 'o':
		env->output = arg;
		break;
	case ARGP_KEY_ARG:
		cli_argp_fail(state, "unexpected argument '%s' (the file goes after -i)", arg);
	case ARGP_KEY_END:
		if (!env->input)
			cli_argp_fail(state, "-i FILE is required (the trace file to describe)");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* ---- what the file says, gathered once ---- */

struct info {
	const char *path;
	const struct trace_read_info *ri;
	const json_t *meta, *end;
	struct trace_counts c;
	int decode_err;
	char decode_why[192];
};

static __u64 j_u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (__u64)v : 0;
}

static const char *j_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* strings the cells point at, owned by the section */
static const char *keep_str(struct rows *t, const char *s)
{
	return s ? rows__keep(t, s, strlen(s) + 1) : NULL;
}

/* "2026-12-02 05:09:01.123 UTC" */
static const char *utc(struct rows *t, __u64 ns)
{
	time_t sec = ns / 1000000000ULL;
	char buf[64], frac[16];
	struct tm tm;

	if (!ns || !gmtime_r(&sec, &tm))
		return NULL;
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), ".%03llu UTC", (unsigned long long)(ns % 1000000000ULL / 1000000));
	strncat(buf, frac, sizeof(buf) - strlen(buf) - 1);
	return keep_str(t, buf);
}

/* a JSON array of words as one line, quoting the words a shell would split */
static const char *words(struct rows *t, const json_t *a)
{
	size_t i, len = 0;
	json_t *it;
	char *s = NULL;
	const char *kept;
	FILE *f = open_memstream(&s, &len);

	if (!f || !json_array_size(a)) {
		if (f)
			fclose(f);
		free(s);
		return NULL;
	}
	json_array_foreach(a, i, it) {
		const char *w = json_string_value(it);

		if (!w)
			w = "?";
		fprintf(f, i ? " " : "");
		/* the first word is the program ("kmemscope record"), not an argument */
		if (!i || (*w && !strpbrk(w, " \t\n'\"\\$`*?&;|<>()[]{}")))
			fputs(w, f);
		else
			fprintf(f, "'%s'", w);
	}
	fclose(f);
	kept = keep_str(t, s);
	free(s);
	return kept;
}

/* the monotonic time t of the recording, on the wall clock (META's clock pair) */
static __u64 wall(const struct info *in, __u64 t)
{
	const json_t *clk = json_object_get(in->meta, "clock");
	__u64 mono = j_u64(clk, "monotonic_ns"), real = j_u64(clk, "realtime_ns");

	return t && real ? real - mono + t : 0;
}

/* ---- sections ---- */

enum { H_SCHEMA, H_VERSION, H_FILE, H_NR };
static const struct row_col header_cols[H_NR] = {
	[H_SCHEMA] = { "schema", "schema", RK_STR },
	[H_VERSION] = { "version", "version", RK_INT },
	[H_FILE] = { "file", "file", RK_STR },
};

enum {
	R_TOOL, R_FORMAT, R_ABI, R_CREATED, R_CREATED_NS, R_HOST, R_RELEASE, R_KVERSION, R_BUILD_ID,
	R_MACHINE, R_CPUS, R_PAGE_SIZE, R_CMDLINE, R_NR,
};
static const struct row_col recording_cols[R_NR] = {
	[R_TOOL] = { "tool", "recorded by", RK_STR },
	[R_FORMAT] = { "format_version", "format version", RK_U64 },
	[R_ABI] = { "abi", "record ABI", RK_U64 },
	[R_CREATED] = { "created", "created", RK_STR },
	[R_CREATED_NS] = { "created_ns", "created (ns)", RK_U64, .note = "(CLOCK_REALTIME)" },
	[R_HOST] = { "host", "host", RK_STR },
	[R_RELEASE] = { "kernel_release", "kernel release", RK_STR },
	[R_KVERSION] = { "kernel_version", "kernel version", RK_STR },
	[R_BUILD_ID] = { "build_id", "kernel build id", RK_STR },
	[R_MACHINE] = { "machine", "machine", RK_STR },
	[R_CPUS] = { "cpus", "CPUs", RK_U64 },
	[R_PAGE_SIZE] = { "page_size", "page size", RK_U64 },
	[R_CMDLINE] = { "command_line", "command line", RK_STR },
};

static struct rows *recording(const struct info *in)
{
	struct rows *t = rows__new("recording", "Recording", RS_LINES, true, recording_cols, R_NR);
	const json_t *k = json_object_get(in->meta, "kernel");
	struct row_cell *r = rows__add(t);

	if (!r)
		return t;
	r[R_TOOL].s = j_str(in->meta, "tool");
	r[R_FORMAT].u = KMS_TRACE_VERSION;	/* the reader opens no other */
	r[R_ABI].u = KMS_ABI_VERSION;
	r[R_CREATED].s = utc(t, in->ri->created);
	r[R_CREATED_NS].u = in->ri->created;
	r[R_HOST].s = j_str(in->meta, "host");
	r[R_RELEASE].s = j_str(k, "release");
	r[R_KVERSION].s = j_str(k, "version");
	r[R_BUILD_ID].s = j_str(k, "build_id");
	r[R_MACHINE].s = j_str(k, "machine");
	r[R_CPUS].u = j_u64(in->meta, "cpus");
	r[R_PAGE_SIZE].u = 1ULL << (j_u64(in->meta, "page_shift") & 63);
	r[R_CMDLINE].s = words(t, json_object_get(in->meta, "command_line"));
	for (int i = 0; i < R_NR; i++)
		if (recording_cols[i].kind == RK_STR && !r[i].s)
			r[i].null = true;
	return t;
}

enum {
	T_COMMAND, T_ALL_CPUS, T_PIDS, T_COMM, T_FAMILIES, T_STACKS, T_CONTEXT, T_SELF,
	T_DEFERRED, T_DEFERRED_METHOD, T_NR,
};
static const struct row_col traced_cols[T_NR] = {
	[T_COMMAND] = { "command", "command", RK_STR, .note = "(-- CMD: its process tree)" },
	[T_ALL_CPUS] = { "whole_system", "whole system", RK_BOOL,
			 .note = "(no -p, no -- CMD, or -a with it)" },
	[T_PIDS] = { "pids", "pids", RK_NAMES },
	[T_COMM] = { "comm", "comm", RK_STR },
	[T_FAMILIES] = { "families", "families", RK_NAMES },
	[T_STACKS] = { "stacks", "stacks", RK_STR },
	[T_CONTEXT] = { "context", "context captured", RK_BOOL },
	[T_SELF] = { "self_traced", "kmemscope traced", RK_BOOL },
	[T_DEFERRED] = { "deferred_frees", "deferred frees traced", RK_BOOL },
	[T_DEFERRED_METHOD] = { "deferred_method", "deferred frees method", RK_STR },
};

static struct rows *traced(const struct info *in)
{
	struct rows *t = rows__new("traced", "Traced", RS_LINES, true, traced_cols, T_NR);
	const json_t *flt = json_object_get(in->meta, "filter");
	const json_t *pids = json_object_get(flt, "pids");
	const json_t *def = json_object_get(in->meta, "deferred");
	const char *fams[KMS_FAM_MAX], *pid_names[64];
	unsigned int mask = j_u64(flt, "families");
	struct row_cell *r = rows__add(t);
	int n = 0;
	size_t i;
	json_t *it;

	if (!r)
		return t;
	r[T_COMMAND].s = words(t, json_object_get(flt, "command"));
	r[T_COMMAND].null = !r[T_COMMAND].s;
	r[T_ALL_CPUS].u = r[T_COMMAND].s ? json_is_true(json_object_get(flt, "all_cpus")) :
			  !json_array_size(pids);
	json_array_foreach(pids, i, it) {
		char buf[24];

		if (n == 64)
			break;
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(it));
		pid_names[n++] = keep_str(t, buf);
	}
	r[T_PIDS].n = n;
	r[T_PIDS].names = rows__keep(t, pid_names, n * sizeof(pid_names[0]));
	r[T_COMM].s = j_str(flt, "comm");
	r[T_COMM].null = !r[T_COMM].s;
	n = 0;
	for (int f = 0; f < KMS_FAM_MAX; f++)
		if (!mask || (mask & (1u << f)))
			fams[n++] = kms_family_name(f);
	r[T_FAMILIES].n = n;
	r[T_FAMILIES].names = rows__keep(t, fams, n * sizeof(fams[0]));
	r[T_STACKS].s = j_str(in->meta, "stacks");
	r[T_STACKS].null = !r[T_STACKS].s;
	r[T_CONTEXT].u = json_is_true(json_object_get(in->meta, "context"));
	r[T_SELF].u = json_is_true(json_object_get(in->meta, "self_traced"));
	r[T_DEFERRED].u = json_is_true(json_object_get(def, "traced"));
	r[T_DEFERRED_METHOD].s = j_str(def, "method");
	r[T_DEFERRED_METHOD].null = !r[T_DEFERRED_METHOD].s || !*r[T_DEFERRED_METHOD].s;
	return t;
}

enum { A_FAMILY, A_TRACED, A_METHOD, A_NR };
static const struct row_col attach_cols[A_NR] = {
	[A_FAMILY] = { "family", "family", RK_STR },
	[A_TRACED] = { "traced", "traced", RK_BOOL, ROW_LOUD_FALSE },
	[A_METHOD] = { "method", "method", RK_STR },
};

static struct rows *attach(const struct info *in)
{
	struct rows *t = rows__new("attach", "Attach plan", RS_TABLE, false, attach_cols, A_NR);
	size_t i;
	json_t *it;

	json_array_foreach(json_object_get(in->meta, "families"), i, it) {
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[A_FAMILY].s = j_str(it, "family");
		r[A_TRACED].u = json_is_true(json_object_get(it, "traced"));
		r[A_METHOD].s = j_str(it, "method");
		r[A_METHOD].null = !r[A_METHOD].s || !*r[A_METHOD].s;
	}
	return t;
}

enum { TM_START, TM_END, TM_START_NS, TM_END_NS, TM_DURATION, TM_WINDOW, TM_SETTLE, TM_NR };
static const struct row_col time_cols[TM_NR] = {
	[TM_START] = { "start", "start", RK_STR },
	[TM_END] = { "end", "end", RK_STR },
	[TM_START_NS] = { "start_ns", "start (ns)", RK_U64, .note = "(CLOCK_MONOTONIC)" },
	[TM_END_NS] = { "end_ns", "end (ns)", RK_U64 },
	[TM_DURATION] = { "duration_ns", "duration", RK_NS },
	[TM_WINDOW] = { "window_ns", "window", RK_NS, .note = "(before the settle period)" },
	[TM_SETTLE] = { "settle_ns", "settle period", RK_NS },
};

static struct rows *span(const struct info *in)
{
	struct rows *t = rows__new("time", "Time", RS_LINES, true, time_cols, TM_NR);
	struct row_cell *r = rows__add(t);
	__u64 start = j_u64(in->meta, "start_ns"), stop, window;

	if (!r)
		return t;
	/* a file cut short ends with its last record */
	stop = in->end ? j_u64(in->end, "stop_ns") : in->ri->t_last;
	if (stop < start)
		stop = start;
	window = in->end ? j_u64(in->end, "window_ns") : 0;
	r[TM_START].s = utc(t, wall(in, start));
	r[TM_START].null = !r[TM_START].s;
	r[TM_END].s = utc(t, wall(in, stop));
	r[TM_END].null = !r[TM_END].s;
	r[TM_START_NS].u = start;
	r[TM_END_NS].u = stop;
	r[TM_DURATION].u = stop - start;
	r[TM_WINDOW].u = window;
	r[TM_WINDOW].null = !window;
	r[TM_SETTLE].u = window ? stop - start - window : 0;
	r[TM_SETTLE].null = !window;
	return t;
}

enum { B_TOTAL, B_META, B_SYMS, B_STACKS, B_DATA, B_END, B_SYMBOLS, B_STACKS_HELD, B_NR };
static const struct row_col block_cols[B_NR] = {
	[B_TOTAL] = { "total", "blocks", RK_U64 },
	[B_META] = { "meta", "META", RK_U64 },
	[B_SYMS] = { "syms", "SYMS", RK_U64 },
	[B_STACKS] = { "stacks", "STACKS", RK_U64 },
	[B_DATA] = { "data", "DATA", RK_U64 },
	[B_END] = { "end", "END", RK_U64 },
	[B_SYMBOLS] = { "symbols", "symbols", RK_U64,
			.note = "(each a kallsyms line, with the next symbol's as its boundary)" },
	[B_STACKS_HELD] = { "stacks_recorded", "stacks recorded", RK_U64 },
};

static struct rows *blocks(const struct info *in)
{
	static const int type[B_NR] = {
		[B_META] = KMS_BLK_META, [B_SYMS] = KMS_BLK_SYMS, [B_STACKS] = KMS_BLK_STACKS,
		[B_DATA] = KMS_BLK_DATA, [B_END] = KMS_BLK_END,
	};
	struct rows *t = rows__new("blocks", "Blocks", RS_LINES, true, block_cols, B_NR);
	struct row_cell *r = rows__add(t);

	if (!r)
		return t;
	r[B_TOTAL].u = in->ri->blocks;
	for (int i = B_META; i <= B_END; i++)
		r[i].u = in->ri->type_blocks[type[i]];
	r[B_SYMBOLS].u = in->ri->symbols;
	r[B_STACKS_HELD].u = in->ri->stacks;
	return t;
}

enum { E_RECORDS, E_META, E_EVENTS, E_CALIB, E_TRACE, E_SETTLE, E_NR };
static const struct row_col record_cols[E_NR] = {
	[E_RECORDS] = { "records", "records", RK_U64, .note = "(events, metadata, marks)" },
	[E_META] = { "metadata", "metadata records", RK_U64,
		     .note = "(task names, caches, devices, losses)" },
	[E_EVENTS] = { "events", "events", RK_U64 },
	[E_CALIB] = { "calibration_events", "calibration events", RK_U64,
		      .note = "(start-up, before the trace began: not reported)" },
	[E_TRACE] = { "trace_events", "trace events", RK_U64, .note = "(what the reports count)" },
	[E_SETTLE] = { "settle_events", "settle events", RK_U64,
		       .note = "(after the window: frees only are applied)" },
};

static struct rows *records(const struct info *in)
{
	struct rows *t = rows__new("records", "Records", RS_LINES, true, record_cols, E_NR);
	struct row_cell *r = rows__add(t);
	const struct trace_counts *c = &in->c;

	if (!r)
		return t;
	r[E_RECORDS].u = c->records;
	r[E_META].u = c->meta;
	r[E_EVENTS].u = c->events[TRACE_PART_CALIBRATION] + c->events[TRACE_PART_TRACE] +
			c->events[TRACE_PART_SETTLE];
	r[E_CALIB].u = c->events[TRACE_PART_CALIBRATION];
	r[E_TRACE].u = c->events[TRACE_PART_TRACE];
	r[E_SETTLE].u = c->events[TRACE_PART_SETTLE];
	return t;
}

enum { F_FAMILY, F_EVENTS, F_ALLOCS, F_FREES, F_FAILS, F_SETTLE_FREES, F_CALIB, F_NR };
static const struct row_col fam_cols[F_NR] = {
	[F_FAMILY] = { "family", "family", RK_STR },
	[F_EVENTS] = { "events", "events", RK_U64 },
	[F_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[F_FREES] = { "frees", "frees", RK_U64 },
	[F_FAILS] = { "fails", "fails", RK_U64 },
	[F_SETTLE_FREES] = { "settle_frees", "settle frees", RK_U64 },
	[F_CALIB] = { "calibration_events", "calibration", RK_U64 },
};

static struct rows *families(const struct info *in)
{
	struct rows *t = rows__new("families", "Events by family (trace)", RS_TABLE, false,
				   fam_cols, F_NR);

	for (int f = 0; f < KMS_FAM_MAX; f++) {
		const struct trace_fam_counts *k = &in->c.fam[TRACE_PART_TRACE][f];
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[F_FAMILY].s = kms_family_name(f);
		r[F_EVENTS].u = k->events;
		r[F_ALLOCS].u = k->allocs;
		r[F_FREES].u = k->frees;
		r[F_FAILS].u = k->fails;
		r[F_SETTLE_FREES].u = in->c.fam[TRACE_PART_SETTLE][f].frees;
		r[F_CALIB].u = in->c.fam[TRACE_PART_CALIBRATION][f].events;
	}
	return t;
}

enum { V_EVENT, V_TRACE, V_CALIB, V_SETTLE, V_NR };
static const struct row_col type_cols[V_NR] = {
	[V_EVENT] = { "event", "event", RK_STR },
	[V_TRACE] = { "trace", "trace", RK_U64 },
	[V_CALIB] = { "calibration", "calibration", RK_U64 },
	[V_SETTLE] = { "settle", "settle", RK_U64 },
};

static struct rows *event_types(const struct info *in)
{
	struct rows *t = rows__new("event_types", "Events by type", RS_TABLE, false, type_cols,
				   V_NR);
	const struct trace_counts *c = &in->c;

	rows__empty(t, "no events");
	for (int e = KMS_EV_NONE + 1; e < KMS_EV_NR_EVENTS; e++) {
		struct row_cell *r;

		if (!c->by_type[TRACE_PART_TRACE][e] && !c->by_type[TRACE_PART_CALIBRATION][e] &&
		    !c->by_type[TRACE_PART_SETTLE][e])
			continue;
		r = rows__add(t);
		if (!r)
			break;
		r[V_EVENT].s = kms_ev_name(e);
		r[V_TRACE].u = c->by_type[TRACE_PART_TRACE][e];
		r[V_CALIB].u = c->by_type[TRACE_PART_CALIBRATION][e];
		r[V_SETTLE].u = c->by_type[TRACE_PART_SETTLE][e];
	}
	return t;
}

enum { S_FILE, S_PER_EVENT, S_DECODED, S_STORED, S_DECODED_PER_EVENT, S_RATIO, S_NR };
static const struct row_col size_cols[S_NR] = {
	[S_FILE] = { "file_bytes", "file bytes", RK_U64 },
	[S_PER_EVENT] = { "bytes_per_event", "bytes per event", RK_REAL, .note = "(on disk)" },
	[S_DECODED] = { "data_decoded_bytes", "DATA decoded", RK_U64, .note = "(bytes)" },
	[S_STORED] = { "data_stored_bytes", "DATA stored", RK_U64, .note = "(bytes)" },
	[S_DECODED_PER_EVENT] = { "decoded_bytes_per_event", "decoded bytes per event", RK_REAL,
				  .note = "(before compression)" },
	[S_RATIO] = { "compression_ratio", "compression ratio", RK_REAL,
		      .note = "(DATA decoded / stored)" },
};

static struct rows *size(const struct info *in)
{
	struct rows *t = rows__new("size", "Size", RS_LINES, true, size_cols, S_NR);
	struct row_cell *r = rows__add(t);
	const struct trace_counts *c = &in->c;
	__u64 events = c->events[TRACE_PART_CALIBRATION] + c->events[TRACE_PART_TRACE] +
		       c->events[TRACE_PART_SETTLE];

	if (!r)
		return t;
	r[S_FILE].u = in->ri->size;
	r[S_PER_EVENT].d = events ? (double)in->ri->size / events : 0;
	r[S_PER_EVENT].null = !events;
	r[S_DECODED].u = in->ri->raw_bytes;
	r[S_STORED].u = in->ri->stored_bytes;
	r[S_DECODED_PER_EVENT].d = events ? (double)in->ri->raw_bytes / events : 0;
	r[S_DECODED_PER_EVENT].null = !events;
	r[S_RATIO].d = in->ri->stored_bytes ? (double)in->ri->raw_bytes / in->ri->stored_bytes : 0;
	r[S_RATIO].null = !in->ri->stored_bytes;
	return t;
}

enum { L_SOURCE, L_LOST, L_MISSES, L_NOT_WRITTEN, L_STACK_FAILURES, L_NR };
static const struct row_col loss_cols[L_NR] = {
	[L_SOURCE] = { "source", "counted by", RK_STR },
	[L_LOST] = { "lost", "lost", RK_U64, .note = "(ring buffer full; with no end block: "
						       "lost and missed together)" },
	[L_MISSES] = { "misses", "missed", RK_U64, .note = "(program runs the kernel skipped)" },
	[L_NOT_WRITTEN] = { "not_written", "not written", RK_U64,
			    .note = "(records not written after a write error)" },
	[L_STACK_FAILURES] = { "stack_failures", "stack failures", RK_U64 },
};

static struct rows *losses(const struct info *in)
{
	struct rows *t = rows__new("losses", "Losses", RS_LINES, true, loss_cols, L_NR);
	const json_t *q = json_object_get(in->end, "quality");
	struct row_cell *r = rows__add(t);

	if (!r)
		return t;
	if (in->end) {
		r[L_SOURCE].s = "end block";
		r[L_LOST].u = j_u64(q, "lost");
		r[L_MISSES].u = j_u64(q, "misses");
		r[L_NOT_WRITTEN].u = j_u64(json_object_get(in->end, "written"), "dropped");
		r[L_STACK_FAILURES].u = j_u64(q, "stack_failures");
	} else {
		/* every block carries the count so far: the last one read is the best known */
		r[L_SOURCE].s = "last block";
		r[L_LOST].u = in->ri->lost;
		r[L_MISSES].null = r[L_NOT_WRITTEN].null = r[L_STACK_FAILURES].null = true;
	}
	return t;
}

enum { C_ENDED, C_CUT, C_REASON, C_BLOCKS, C_RECORDS, C_DECODE, C_NR };
static const struct row_col end_cols[C_NR] = {
	[C_ENDED] = { "ended", "ended cleanly", RK_BOOL, ROW_LOUD_FALSE,
		      .note = "(an END block closes the file)" },
	[C_CUT] = { "cut_short", "cut short", RK_BOOL },
	[C_REASON] = { "reason", "reading stopped", RK_STR },
	[C_BLOCKS] = { "recovered_blocks", "blocks read", RK_U64 },
	[C_RECORDS] = { "recovered_records", "records read", RK_U64 },
	[C_DECODE] = { "decode_error", "decode error", RK_STR },
};

static struct rows *ending(const struct info *in)
{
	struct rows *t = rows__new("end", "End", RS_LINES, true, end_cols, C_NR);
	struct row_cell *r = rows__add(t);
	bool cut = !in->ri->ended || in->decode_err;

	if (!r)
		return t;
	r[C_ENDED].u = in->ri->ended;
	r[C_CUT].u = cut;
	r[C_REASON].s = in->ri->cut;
	r[C_REASON].null = !in->ri->cut[0];
	r[C_BLOCKS].u = in->ri->blocks;
	r[C_RECORDS].u = in->c.records;
	r[C_DECODE].s = in->decode_why;
	r[C_DECODE].null = !in->decode_err;
	if (cut)
		rows__remark(t, "\n!!! TRACE FILE CUT SHORT: %s; recovered %llu blocks, %llu "
			     "records: the counts above cover what was recovered !!!",
			     in->decode_err ? in->decode_why : in->ri->cut,
			     (unsigned long long)in->ri->blocks, (unsigned long long)in->c.records);
	return t;
}

static struct rows *document(const struct info *in)
{
	struct rows *doc = rows__new(NULL, "kmemscope info", RS_INLINE, true, header_cols, H_NR);
	struct row_cell *r = rows__add(doc);

	if (!r) {
		rows__free(doc);
		return NULL;
	}
	r[H_SCHEMA].s = SCHEMA_INFO;
	r[H_VERSION].i = SCHEMA_INFO_VERSION;
	r[H_FILE].s = in->path;
	rows__child(doc, recording(in));
	rows__child(doc, traced(in));
	rows__child(doc, attach(in));
	rows__child(doc, span(in));
	rows__child(doc, blocks(in));
	rows__child(doc, records(in));
	rows__child(doc, families(in));
	rows__child(doc, event_types(in));
	rows__child(doc, size(in));
	rows__child(doc, losses(in));
	rows__child(doc, ending(in));
	return doc;
}

int cmd_info(int argc, char **argv)
{
	static const struct argp argp = {
		info_options, info_parse, "-i FILE",
		"Describe a trace file (kmemscope record, --record): the kmemscope and format "
		"that wrote it, the system and kernel it was recorded on, the command line, "
		"filters and attach plan, the time span, its blocks, records and events per "
		"family (decoded), bytes per event, losses, and whether it ended cleanly. A file "
		"cut short is described as far as it reads. No root needed.\v"
		"Examples:\n"
		"  kmemscope info -i trace.kmt\n"
		"  kmemscope info -i trace.kmt --json | jq .families\n\n"
		"Exit status: 0 (also for a file cut short, which the description says), 2 on "
		"a usage error or a file that is not a readable trace, 1 when the description "
		"cannot be written.",
	};
	struct info_env env = {};
	struct info in = {};
	struct trace_reader *r = NULL;
	struct rows_ctx rc = {};
	struct rows *doc = NULL;
	char why[192];
	FILE *out;
	int err;

	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	err = cli_check_output(env.output);
	if (err)
		return err;
	if (trace_reader__open(&r, env.input, why, sizeof(why))) {
		kms_error("%s: %s\n", env.input, why);
		return 2;
	}
	in.path = env.input;
	in.ri = trace_reader__info(r);
	in.meta = trace_reader__meta(r);
	in.end = trace_reader__end(r);
	in.decode_err = trace_stats__count(r, &in.c, in.decode_why, sizeof(in.decode_why));
	doc = document(&in);
	out = doc ? cli_open_output(env.output) : NULL;
	err = 1;
	if (out) {
		err = env.json ? rows__json_dump(doc, &rc, out) : rows__text(doc, &rc, out);
		cli_close_output(out);
		if (err)
			kms_error("Failed to write the description: %s\n", strerror(-err));
		err = err ? 1 : 0;
	}
	rows__free(doc);
	trace_reader__free(r);
	return err;
}
