/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A live tracing session: attach plan, collector, symbols, GFP names and the
 * aggregator, wired together. stat, top and the detectors all run one.
 */
#ifndef KMS_SESSION_H
#define KMS_SESSION_H

#include <stdbool.h>
#include "agg.h"
#include "cli.h"
#include "ksyms.h"
#include "kvec.h"
#include "pipeline.h"
#include "quality.h"

struct argp;
struct argp_child;

struct plan;
struct collector;
struct gfp_table;
struct detect;
struct detect_opts;
struct trace_reader;
struct trace_writer;
struct user_tracer;

enum session_order {
	SESSION_ORDER_AUTO = 0,	/* seq on up to 8 CPUs, else time */
	SESSION_ORDER_SEQ,
	SESSION_ORDER_TIME,
};

struct session_opts {
	unsigned int families;	/* 0: all */
	pid_t *pids;		/* -p: trace only these processes (and their children) */
	int nr_pids;
	const char *comm;	/* -c */
	char **cmd;		/* -- CMD ARGS (NULL: none) */
	bool all_cpus;		/* -a: system-wide even with a command */
	unsigned int ring_mb;
	bool no_stacks;		/* no stack capture (page/vmalloc/dma sites unknown) */
	enum session_order order;
	bool context;		/* capture allocation context (atomic-context checks) */
	bool stacks_all;	/* a stack for every allocation (leak detection) */
	bool stack_cache;	/* with stacks_all: reuse a stack per call site and context */
	bool rescue;		/* shadow programs catch recursion misses (one more run/event) */
	bool rescue_given;	/* ... as --rescue said, not by the command's default */
	bool trace_self;	/* trace kmemscope's own process too (left out by default) */
	bool user;		/* --user: the process's malloc family and mappings too (user.h) */
	const char *record;	/* --record: also write what the reports count to this file */
	const char *input;	/* -i: read the records from this trace file, not the kernel */
	double from, to;	/* with input: the time window, seconds after the trace began */
	/*
	 * Detectors to run on the same ordered stream (NULL: none). The session
	 * makes them, gives them its stacks, symbols, GFP names and calibrated
	 * baselines, and frees them: see session.detect.
	 */
	const struct detect_opts *detect;
	bool no_reports;	/* record: the file is the output, the pipeline counts nothing */
};

#define SESSION_MAX_PIDS 64

/* what the shared "What to trace" options fill in */
struct session_args {
	struct session_opts so;
	pid_t pids[SESSION_MAX_PIDS];
};

/*
 * The options tracing commands share, as an argp child: a command lists one of
 * these as its argp's children and points child_inputs[0] at its struct
 * session_args. All take the filters (-p, -c, -F, -v, and -- CMD); then
 * reports (stat, top, leaks, misuse): live tracing, --record and -i FILE;
 * tracing (record, probe): live tracing; file (script): -i FILE.
 */
extern const struct argp_child session_report_children[];
/* the reports' groups, for a command that adds groups of its own (export.h) */
extern const struct argp session_report_argp;
extern const struct argp_child session_tracing_children[];
extern const struct argp_child session_file_children[];

struct session {
	struct plan *plan;
	struct collector *coll;
	struct ksyms_loader syms;	/* reads kallsyms while the programs load */
	const char *kernel;		/* release of the traced kernel */
	/* it is PREEMPT_RT: spinlock_t sleeps, softirqs run in threads (detect_opts) */
	bool preempt_rt;
	struct ksyms *ksyms;		/* syms' symbols, once attached (NULL: none) */
	/* --user: the process's objects, and at the end the symbols with theirs added */
	struct user_tracer *user;
	struct ksyms *user_ksyms;
	/* --user: the user sites and stack ids seen, whose frames get source lines */
	struct kvec user_sites, user_stacks;
	struct gfp_table *gfp;
	/* filter stage, aggregator, detectors: see pipeline.h */
	struct pipeline pipe;
	struct cli_cmd cmd;
	__u64 *site_cache;	/* per stack id: resolved site + 1, 0 = not yet */
	/* per stack id: 0 not yet, 1 through __vmalloc_node_range(), 2 not (vmap_level) */
	__u8 *vmalloc_cache;
	/* vmalloc is traced at the vmap-area level: areas vmalloc did not make are told apart */
	bool vmap_level;
	unsigned int stack_entries;
	/*
	 * User stacks BPF took without their call site (KMS_CTX_USKIP), as
	 * (site, stack id) pairs: pair i is the whole stack, id stack_entries + i.
	 */
	struct kvec joined;
	__u64 start_ns;
	__u64 stop_ns;
	__u64 cpu_start_ns;	/* this process's CPU time (all threads) at start_ns */
	bool context;		/* records carry their preempt count */
	/* context capture was asked for (stat reports misuse then, even if the kernel lacks it) */
	bool context_requested;
	/* which allocations carry a stack: "none", "sites", "every" or "cached" */
	const char *stacks;
	/*
	 * preempt count of a plain process-context allocation, per family, as
	 * measured at start-up (-1: unknown): what the tracer itself adds
	 */
	int baseline_pc[KMS_FAM_MAX];
	pid_t self;
	bool self_traced;	/* kmemscope's own allocations are reported (--trace-self) */
	__u64 window_ns;	/* the window's length when settling, else 0 */
	/* session__run's tick interval (0: none); a file: its recording's */
	__u64 interval_ns;
	bool calibrating;
	int calib_min[KMS_FAM_MAX];
	int *cpu_nodes;		/* node of each CPU of the traced system */
	int nr_cpu_nodes;
	/* recording (--record): see session_trace.h */
	struct trace_writer *rec;
	const char *rec_path;
	__u64 rec_flushed;
	/* a session on a trace file (-i): its reader, and the recording's data quality */
	struct trace_reader *trace;
	const char *input;
	double from, to;
	struct kms_quality trace_q;
	/* the trace time replayed so far (session__now), and how fast: see top -i --speed */
	__u64 trace_now;
	double speed;		/* trace seconds per second of wall time, 0: unpaced */
	bool progress;		/* a file: show how far the replay is (see session__feedback) */
	/* a file: CLOCK_REALTIME minus the trace's clock when it was recorded (0: unknown) */
	__u64 trace_realtime;
};

struct collector_opts;

/* which allocations the options give a stack ("none", "sites", "every", "cached") */
const char *session__stacks(const struct session_opts *o);
/* a live session's stack of a record, innermost first: frames or -errno (ctx: the session) */
int session__stack(void *ctx, int stack_id, __u64 *ips, int max);
/* that name as session__stacks() returns it; "none" for any other (a file's) */
const char *session__stacks_named(const char *name);
/* the collector's configuration for these options: the session's, and what probe checks */
void session__collector_opts(const struct session_opts *o, struct collector_opts *co);
/* exit status on failure (2: environment or usage, 1: runtime), 0 on success */
int session__start(struct session *s, const struct session_opts *o);
/*
 * Before session__run, in a command that reports at the end: live, the line
 * saying what it traces and that Ctrl-C ends it (when it waits for Ctrl-C);
 * on a file, progress on a terminal
 */
void session__feedback(struct session *s, const struct session_opts *o, double duration);
/*
 * Live: poll until duration (0: none) is over, the command exits, or a
 * signal. A trace file: replay it (duration does not apply).
 */
int session__run(struct session *s, double duration, double interval,
		 int (*tick)(struct session *s, void *ctx), void *ctx);
/* after session__run: apply the frees of seconds more (see session.c), 0 or 1 */
int session__settle(struct session *s, double seconds);
int session__stop(struct session *s);
void session__quality(struct session *s, struct kms_quality *q);
/* the session's clock: now when live; on a file, the trace time replayed so far */
__u64 session__now(const struct session *s);
void session__free(struct session *s);

#endif
