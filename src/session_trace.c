/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A session and trace files: recording what a live session sees (--record,
 * kmemscope record), and a session whose records come from a file (-i). The
 * file's META and END blocks are JSON objects; their members are described
 * in docs/trace-format.md, and both directions of each live here, so the
 * schema has one home.
 */
#include <argp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "collector.h"
#include "gfp.h"
#include "log.h"
#include "plan.h"
#include "session.h"
#include "session_trace.h"
#include "trace.h"

/* the trace writer seals a block at least this often: a kill loses at most this much */
#define FLUSH_NS (1000ULL * 1000 * 1000)

/* ---- kms_quality as JSON: counters by name ---- */

static const struct {
	const char *name;
	size_t off;
} quality_u64[] = {
#define Q(f) { #f, offsetof(struct kms_quality, f) }
	Q(events), Q(lost), Q(misses), Q(rescued), Q(stack_failures), Q(out_of_order),
	Q(filtered), Q(self_excluded), Q(pending_lost), Q(bulk_lost), Q(kmalloc_twice),
	Q(softirqs_unseen), Q(tasks_unseen), Q(duration_ns),
#undef Q
};

static json_t *quality_json(const struct kms_quality *q)
{
	json_t *j = json_object(), *fams = json_object(), *ev = json_array();

	for (size_t i = 0; i < sizeof(quality_u64) / sizeof(quality_u64[0]); i++)
		json_object_set_new(j, quality_u64[i].name,
				    json_integer(*(const __u64 *)((const char *)q +
								 quality_u64[i].off)));
	json_object_set_new(j, "self_traced", json_boolean(q->self_traced));
	json_object_set_new(j, "rescue", json_boolean(q->rescue));
	json_object_set_new(j, "deferred_traced", json_boolean(q->deferred_traced));
	json_object_set_new(j, "softirq_witness", json_boolean(q->softirq_witness));
	json_object_set_new(j, "task_witness", json_boolean(q->task_witness));
	json_object_set_new(j, "unseen_tasks", json_string(q->unseen_tasks ? q->unseen_tasks : ""));
	json_object_set_new(j, "deferred_method", json_string(q->deferred_method ?
							     q->deferred_method : ""));
	json_object_set_new(j, "user_allocator", json_string(q->user_allocator ?
							    q->user_allocator : ""));
	for (int f = 0; f < KMS_FAM_MAX; f++)
		json_object_set_new(fams, kms_family_name(f),
				    json_pack("{s:b,s:b,s:s}", "traced", q->traced[f], "skipped",
					      q->skipped[f], "method",
					      q->method[f] ? q->method[f] : ""));
	json_object_set_new(j, "families", fams);
	for (int i = 0; i < q->nr_event_misses; i++)
		json_array_append_new(ev, json_pack("{s:s,s:I}", "event", q->event_misses[i].name,
						    "misses", (json_int_t)q->event_misses[i].misses));
	json_object_set_new(j, "event_misses", ev);
	return j;
}

static __u64 get_u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (__u64)v : 0;
}

static const char *get_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : NULL;
}

/* strings point into j, which the session keeps */
static void quality_from_json(const json_t *j, struct kms_quality *q)
{
	const json_t *fams = json_object_get(j, "families"), *ev = json_object_get(j, "event_misses");
	size_t i;
	json_t *it;

	for (i = 0; i < sizeof(quality_u64) / sizeof(quality_u64[0]); i++)
		*(__u64 *)((char *)q + quality_u64[i].off) = get_u64(j, quality_u64[i].name);
	q->self_traced = json_is_true(json_object_get(j, "self_traced"));
	q->rescue = json_is_true(json_object_get(j, "rescue"));
	q->deferred_traced = json_is_true(json_object_get(j, "deferred_traced"));
	q->softirq_witness = json_is_true(json_object_get(j, "softirq_witness"));
	q->task_witness = json_is_true(json_object_get(j, "task_witness"));
	q->unseen_tasks = get_str(j, "unseen_tasks");
	q->deferred_method = get_str(j, "deferred_method");
	q->user_allocator = get_str(j, "user_allocator");
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		const json_t *fj = json_object_get(fams, kms_family_name(f));

		q->traced[f] = json_is_true(json_object_get(fj, "traced"));
		/* a family newer than the file (user, user_map) was not asked for */
		q->skipped[f] = !fj || json_is_true(json_object_get(fj, "skipped"));
		q->method[f] = get_str(fj, "method");
	}
	q->nr_event_misses = 0;
	json_array_foreach(ev, i, it) {
		const char *name = get_str(it, "event");

		if (!name || q->nr_event_misses >= KMS_QUALITY_MAX_EVENTS)
			continue;
		q->event_misses[q->nr_event_misses].name = name;
		q->event_misses[q->nr_event_misses++].misses = get_u64(it, "misses");
	}
}

/* ---- recording ---- */

static json_t *gfp_json(const struct gfp_table *t)
{
	json_t *a = json_array();

	for (size_t i = 0; t && i < gfp_table__count(t); i++) {
		const char *name;
		unsigned long v;

		if (!gfp_table__entry(t, i, &name, &v) && name)
			json_array_append_new(a, json_pack("[s,I]", name, (json_int_t)v));
	}
	return a;
}

/*
 * The running kernel's build id (the GNU build-id note of vmlinux, which the
 * kernel shows in /sys/kernel/notes), as hex; "" when it has none. It names
 * the exact build a trace came from, where the release string may not.
 */
static void kernel_build_id(char *out, size_t len)
{
	unsigned char notes[4096];
	size_t n, off = 0;
	FILE *f = fopen("/sys/kernel/notes", "rb");

	out[0] = '\0';
	if (!f)
		return;
	n = fread(notes, 1, sizeof(notes), f);
	fclose(f);
	while (off + sizeof(Elf64_Nhdr) <= n) {
		Elf64_Nhdr h;
		size_t name, desc;

		memcpy(&h, notes + off, sizeof(h));
		name = (h.n_namesz + 3) & ~3UL;
		desc = (h.n_descsz + 3) & ~3UL;
		if (h.n_namesz > n || h.n_descsz > n || off + sizeof(h) + name + desc > n)
			return;
		if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 &&
		    !memcmp(notes + off + sizeof(h), "GNU", 4)) {
			for (size_t i = 0; i < h.n_descsz && 2 * i + 2 < len; i++)
				snprintf(out + 2 * i, 3, "%02x", notes[off + sizeof(h) + name + i]);
			return;
		}
		off += sizeof(h) + name + desc;
	}
}

static json_t *meta_json(const struct session *s, const struct session_opts *o)
{
	json_t *m = json_object(), *fams = json_array(), *pc = json_array(), *nodes = json_array();
	json_t *cmd = json_array(), *pids = json_array(), *argv = json_array();
	struct timespec mono, real;
	char host[256] = "";
	struct utsname u = {};
	char build_id[2 * 64 + 1];
	int argc;
	char **args = cli_argv(&argc);

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	for (int i = 0; i < argc; i++)
		json_array_append_new(argv, json_string(args[i]));
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		json_array_append_new(fams, json_pack("{s:s,s:b,s:s}", "family", kms_family_name(f),
						      "traced", s->plan->fam_traced[f], "method",
						      s->plan->fam_method[f] ?
						      s->plan->fam_method[f] : ""));
		json_array_append_new(pc, json_integer(s->baseline_pc[f]));
	}
	for (int i = 0; i < s->nr_cpu_nodes; i++)
		json_array_append_new(nodes, json_integer(s->cpu_nodes[i]));
	for (int i = 0; o->cmd && o->cmd[i]; i++)
		json_array_append_new(cmd, json_string(o->cmd[i]));
	for (int i = 0; i < o->nr_pids; i++)
		json_array_append_new(pids, json_integer(o->pids[i]));
	json_object_set_new(m, "tool", json_string(argp_program_version));
	json_object_set_new(m, "command_line", argv);
	json_object_set_new(m, "host", json_string(host));
	kernel_build_id(build_id, sizeof(build_id));
	json_object_set_new(m, "kernel", json_pack("{s:s,s:s,s:s,s:s,s:b}", "release", u.release,
						   "version", u.version, "machine", u.machine,
						   "build_id", build_id, "preempt_rt", s->preempt_rt));
	json_object_set_new(m, "cpus", json_integer(libbpf_num_possible_cpus()));
	json_object_set_new(m, "cpu_nodes", nodes);
	json_object_set_new(m, "page_shift", json_integer(__builtin_ctzl(sysconf(_SC_PAGESIZE))));
	json_object_set_new(m, "clock", json_pack("{s:I,s:I}", "monotonic_ns",
				(json_int_t)(mono.tv_sec * 1000000000LL + mono.tv_nsec), "realtime_ns",
				(json_int_t)(real.tv_sec * 1000000000LL + real.tv_nsec)));
	json_object_set_new(m, "start_ns", json_integer(s->start_ns));
	json_object_set_new(m, "families", fams);
	json_object_set_new(m, "deferred", json_pack("{s:b,s:s}", "traced",
				s->plan->deferred_traced, "method", s->plan->deferred_method ?
				s->plan->deferred_method : ""));
	json_object_set_new(m, "context", json_boolean(s->context));
	json_object_set_new(m, "context_requested", json_boolean(s->context_requested));
	json_object_set_new(m, "baseline_pc", pc);
	json_object_set_new(m, "stacks", json_string(s->stacks));
	json_object_set_new(m, "self_traced", json_boolean(s->self_traced));
	json_object_set_new(m, "gfp_flags", gfp_json(s->gfp));
	json_object_set_new(m, "filter", json_pack("{s:o,s:s?,s:i,s:o,s:b}", "pids", pids, "comm",
				o->comm, "families", o->families, "command", cmd, "all_cpus",
				o->all_cpus));
	return m;
}

/* the writer takes what passes the filter stage, and the calibration before the trace */
static void rec_event(void *ctx, const struct kms_event *e)
{
	trace_writer__event(ctx, e);
}

static void rec_meta(void *ctx, const struct kms_meta *m)
{
	trace_writer__meta(ctx, m);
}

static void rec_settle(void *ctx)
{
	trace_writer__settle(ctx);
}

int session_trace__record(struct session *s, const struct session_opts *o)
{
	struct trace_writer_opts wo = { .stack = session__stack, .stack_ctx = s };
	int err;

	err = trace_writer__open(&s->rec, o->record, &wo);
	if (err) {
		kms_error("Failed to create %s: %s\n", o->record, strerror(-err));
		return 1;
	}
	s->rec_path = o->record;
	s->pipe.tap = (struct pipeline_tap){ .event = rec_event, .observe = rec_event,
					     .meta = rec_meta, .settle = rec_settle, .ctx = s->rec };
	return 0;
}

int session_trace__begin(struct session *s, const struct session_opts *o)
{
	json_t *meta;
	int err;

	if (!s->rec)
		return 0;
	meta = meta_json(s, o);
	err = meta ? trace_writer__begin(s->rec, meta) : -ENOMEM;
	json_decref(meta);
	if (err) {
		kms_error("Failed to write %s: %s\n", s->rec_path, strerror(-err));
		return 1;
	}
	s->rec_flushed = s->start_ns;
	return 0;
}

int session_trace__tick(struct session *s, __u64 now)
{
	struct kms_quality q = {};
	int err;

	if (!s->rec || now - s->rec_flushed < FLUSH_NS)
		return 0;
	s->rec_flushed = now;
	collector__quality(s->coll, &q);
	trace_writer__set_lost(s->rec, q.lost + q.misses);
	err = trace_writer__flush(s->rec);
	if (err) {
		kms_error("Failed to write %s: %s; it holds what came before\n", s->rec_path,
			  strerror(-err));
		/* recording stops here, said once: the file keeps its whole blocks, no END */
		s->pipe.tap = (struct pipeline_tap){};
		trace_writer__free(s->rec);
		s->rec = NULL;
		return 1;
	}
	return 0;
}

int session_trace__finish(struct session *s, const struct kms_quality *q)
{
	const struct trace_write_stats *st;
	json_t *end;
	int err;

	if (!s->rec)
		return 0;
	s->pipe.tap = (struct pipeline_tap){};
	st = trace_writer__stats(s->rec);
	end = json_pack("{s:I,s:I,s:I,s:o,s:{s:I,s:I,s:I}}", "stop_ns", (json_int_t)s->stop_ns,
			"window_ns", (json_int_t)s->window_ns, "interval_ns",
			(json_int_t)s->interval_ns, "quality", quality_json(q),
			"written", "records", (json_int_t)st->records, "events",
			(json_int_t)st->events, "dropped", (json_int_t)st->dropped);
	err = trace_writer__error(s->rec);
	if (err || !end) {
		trace_writer__free(s->rec);
		err = err ? err : -ENOMEM;
	} else {
		trace_writer__set_lost(s->rec, q->lost + q->misses);
		err = trace_writer__close(s->rec, end);
	}
	json_decref(end);
	s->rec = NULL;
	if (err) {
		kms_error("Failed to finish %s: %s\n", s->rec_path, strerror(-err));
		return 1;
	}
	return 0;
}

/* ---- replay ---- */

/* the recorded kernel's GFP names, in their decode order, as a tracepoint format line */
static struct gfp_table *gfp_from_json(const json_t *a)
{
	struct gfp_table *t = NULL;
	size_t i, len = 0, cap = 256;
	char *text = malloc(cap);
	json_t *it;
	bool ok = text != NULL;

	if (ok)
		len = snprintf(text, cap, "__print_flags(REC->gfp_flags, \"|\"");
	json_array_foreach(a, i, it) {
		const char *name = json_string_value(json_array_get(it, 0));
		json_int_t v = json_integer_value(json_array_get(it, 1));
		size_t need;

		if (!ok || !name || strpbrk(name, "\"\\"))
			continue;
		need = strlen(name) + 40;
		if (len + need + 2 > cap) {
			char *n = realloc(text, cap = 2 * (len + need + 2));

			if (!n) {
				ok = false;
				continue;
			}
			text = n;
		}
		len += snprintf(text + len, cap - len, ", {0x%llxUL, \"%s\"}",
				(unsigned long long)v, name);
	}
	if (ok && len + 2 <= cap) {
		strcpy(text + len, ")");
		if (gfp_table__load_format(&t, text))
			t = NULL;
	}
	free(text);
	return t;
}

static int replay_stack(void *ctx, int stack_id, __u64 *ips, int max)
{
	struct session *s = ctx;

	return trace_reader__stack(s->trace, stack_id, ips, max);
}

int session_trace__open(struct session *s, const struct session_opts *o)
{
	const struct trace_read_info *info;
	const json_t *meta, *end, *fams, *pc;
	__u64 page_shift;
	char why[192];
	size_t i;
	json_t *it;
	int err;

	err = trace_reader__open(&s->trace, o->input, why, sizeof(why));
	if (err) {
		kms_error("%s: %s\n", o->input, why);
		return 2;
	}
	info = trace_reader__info(s->trace);
	meta = trace_reader__meta(s->trace);
	end = trace_reader__end(s->trace);
	if (info->cut[0])
		kms_warn("%s: %s; %s %llu blocks, %llu records\n", o->input, info->cut,
			 info->ended ? "read" : "recovered", (unsigned long long)info->blocks,
			 (unsigned long long)info->records);
	s->kernel = get_str(json_object_get(meta, "kernel"), "release");
	/*
	 * judged as the recorded kernel was: files written before META had
	 * preempt_rt carry its version string, which says the same
	 */
	it = json_object_get(json_object_get(meta, "kernel"), "preempt_rt");
	s->preempt_rt = json_is_boolean(it) ? json_is_true(it) :
			cli_kernel_is_rt(get_str(json_object_get(meta, "kernel"), "version"));
	s->ksyms = trace_reader__ksyms(s->trace);
	s->gfp = gfp_from_json(json_object_get(meta, "gfp_flags"));
	if (!s->gfp)
		kms_warn("%s: no GFP flag names recorded; GFP stays hex\n", o->input);
	s->context = json_is_true(json_object_get(meta, "context"));
	/* files written before META had it: context asked for where it was captured */
	it = json_object_get(meta, "context_requested");
	s->context_requested = it ? json_is_true(it) : s->context;
	s->stacks = session__stacks_named(get_str(meta, "stacks"));
	s->self_traced = json_is_true(json_object_get(meta, "self_traced"));
	s->start_ns = get_u64(meta, "start_ns");
	pc = json_object_get(meta, "baseline_pc");
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		json_t *v = json_array_get(pc, f);

		s->baseline_pc[f] = json_is_integer(v) ? json_integer_value(v) : -1;
	}
	/* the quality of the recording: its END, or what the blocks tell of a file cut short */
	if (end) {
		quality_from_json(json_object_get(end, "quality"), &s->trace_q);
		s->stop_ns = get_u64(end, "stop_ns");
		s->window_ns = get_u64(end, "window_ns");
		s->interval_ns = get_u64(end, "interval_ns");
	} else {
		fams = json_object_get(meta, "families");
		json_array_foreach(fams, i, it) {
			if (i >= KMS_FAM_MAX)
				break;
			s->trace_q.traced[i] = json_is_true(json_object_get(it, "traced"));
			s->trace_q.method[i] = get_str(it, "method");
			s->trace_q.skipped[i] = o->families && !(o->families & (1u << i));
		}
		/* the user families are asked for with --user alone, and older files lack them */
		for (int f = 0; f < KMS_FAM_MAX; f++)
			if (kms_family_is_user(f) && !s->trace_q.traced[f])
				s->trace_q.skipped[f] = true;
		s->trace_q.lost = info->lost;
		s->trace_q.self_traced = s->self_traced;
		s->trace_q.deferred_traced = json_is_true(json_object_get(
					json_object_get(meta, "deferred"), "traced"));
		s->stop_ns = info->t_last > s->start_ns ? info->t_last : s->start_ns;
	}
	s->trace_q.cut_short = !info->ended || info->cut[0];
	s->trace_now = s->start_ns + (__u64)(s->from * 1e9);
	it = json_object_get(meta, "clock");
	if (get_u64(it, "realtime_ns") > get_u64(it, "monotonic_ns"))
		s->trace_realtime = get_u64(it, "realtime_ns") - get_u64(it, "monotonic_ns");
	/* 4 KiB to 1 MiB pages: anything else is not a recording of a kernel */
	page_shift = get_u64(meta, "page_shift");
	if (page_shift < 12 || page_shift > 20) {
		kms_error("%s: the metadata's page_shift %llu is not a page size\n", o->input,
			  (unsigned long long)page_shift);
		return 2;
	}
	it = json_object_get(meta, "cpu_nodes");
	s->nr_cpu_nodes = json_array_size(it);
	s->cpu_nodes = calloc(s->nr_cpu_nodes + 1, sizeof(*s->cpu_nodes));
	if (!s->cpu_nodes)
		return 1;
	for (i = 0; i < (size_t)s->nr_cpu_nodes; i++)
		s->cpu_nodes[i] = json_integer_value(json_array_get(it, i));
	return session__pipeline(s, o, json_is_true(json_object_get(json_object_get(meta,
				 "deferred"), "traced")), page_shift,
				 replay_stack);
}

struct replay {
	struct session *s;
	__u64 from, to;		/* the time window, absolute (0: open) */
	__u64 every, next_tick;
	int (*tick)(struct session *s, void *ctx);
	void *ctx;
	__u64 origin;		/* trace time of the first window's start */
	__u64 wall0;		/* wall time when the replay began (--speed) */
	__u64 end;		/* the recording's window: a live session ticks up to there */
	bool begun;		/* past the BEGIN mark: before it, calibration */
	bool marks;		/* tick at the recording's TICK marks, not by trace time */
	/*
	 * Every record goes straight to the pipeline: past the BEGIN mark, no
	 * time window, no ticks by trace time, no progress line (set_plain())
	 */
	bool plain;
	unsigned long ticks;	/* taken so far */
	__u64 events;		/* events read */
	__u64 shown;		/* when progress was last shown (0: not yet) */
	int err;
};

/*
 * Once a second on a terminal, from the first second on (a short replay
 * shows nothing): the share of the file's records read.
 */
static void show_progress(struct replay *r)
{
	__u64 now = cli_now_ns(), total = trace_reader__info(r->s->trace)->records;

	if (now - (r->shown ? r->shown : r->wall0) < 1000000000ULL)
		return;
	r->shown = now;
	fprintf(stderr, "\r\033[K%s: %.0f%% read (%llu of %llu records)\r", r->s->input,
		total ? 100.0 * (r->events < total ? r->events : total) / total : 0.0, (unsigned long long)r->events,
		(unsigned long long)total);
}

/*
 * Paced replay (top -i --speed X): trace time t is shown (t - origin) / X
 * after the replay began, so the tick sleeps until then; the records in
 * between are read at full speed. false when the user quit meanwhile.
 */
static bool pace(struct replay *r, __u64 t)
{
	__u64 due, now;

	if (r->s->speed <= 0)
		return !cli_exiting();
	due = r->wall0 + (__u64)((t - r->origin) / r->s->speed);
	while ((now = cli_now_ns()) < due && !cli_exiting()) {
		struct timespec left = { (due - now) / 1000000000, (due - now) % 1000000000 };

		/* a signal (Ctrl-C, a resize) wakes it early: the loop looks again */
		nanosleep(&left, NULL);
	}
	return !cli_exiting();
}

/*
 * Intervals a replay snapshots at most: ten million is 11 days at 0.1 s. The
 * times of a damaged or forged file must not make it tick for ever.
 */
#define REPLAY_TICKS_MAX 10000000

/* one tick, at trace time t, paced; false to stop reading */
static bool tick_at(struct replay *r, __u64 t)
{
	if (++r->ticks > REPLAY_TICKS_MAX) {
		kms_warn("%s: more than %d intervals: no more snapshots\n", r->s->input,
			 REPLAY_TICKS_MAX);
		r->tick = NULL;
		return true;
	}
	if (!pace(r, t)) {
		r->err = 1;	/* quit: the report covers what was read */
		return false;
	}
	r->s->trace_now = t;
	r->err = r->tick(r->s, r->ctx);
	r->next_tick += r->every;
	return !r->err;
}

/* the ticks due by trace time t, each at its own time (none where the file marks them) */
static bool ticks_until(struct replay *r, __u64 t)
{
	/* the recording's window ends the snapshots, whatever a record's time says */
	if (t > r->end)
		t = r->end;
	while (r->tick && !r->marks && t >= r->next_tick)
		if (!tick_at(r, r->next_tick))
			return false;
	return true;
}

/* whether replay_event() can skip its checks: one test per record instead of six */
static void set_plain(struct replay *r)
{
	r->plain = r->begun && !r->from && !r->to && !(r->tick && !r->marks) && !r->s->progress;
}

static bool replay_event(void *ctx, struct kms_event *e)
{
	struct replay *r = ctx;

	if (r->err)
		return false;
	/* as the collector counted them: calibration too */
	r->events++;
	if (r->plain) {
		pipeline__event(&r->s->pipe, e);
		return true;
	}
	if (r->s->progress && !(r->events & 0xffff))
		show_progress(r);
	/*
	 * [from, to): two adjacent windows count each record once. Records come in
	 * stream order, their times only nearly so (a batch is dated by its flush):
	 * one past the window does not end it.
	 */
	if (r->to && e->ts >= r->to)
		return true;
	/* before the trace or the window: only the deferred-free stage learns from it */
	if (!r->begun || e->ts < r->from) {
		pipeline__observe(&r->s->pipe, e);
		return true;
	}
	if (!ticks_until(r, e->ts))
		return false;
	pipeline__event(&r->s->pipe, e);
	return true;
}

static void replay_meta(void *ctx, const struct kms_meta *m)
{
	struct replay *r = ctx;

	pipeline__meta(&r->s->pipe, m);
}

static void replay_settle(void *ctx)
{
	struct replay *r = ctx;

	/* the window is over: its last ticks, then none while settling, as live */
	if (!r->err)
		ticks_until(r, r->end);
	r->tick = NULL;
	pipeline__settle(&r->s->pipe);
}

static void replay_tick(void *ctx)
{
	struct replay *r = ctx;

	if (r->tick && r->marks && !r->err)
		tick_at(r, r->next_tick);
}

static void replay_begin(void *ctx)
{
	struct replay *r = ctx;

	r->begun = true;
	set_plain(r);
	pipeline__begin(&r->s->pipe);
}

int session_trace__replay(struct session *s, double interval,
			  int (*tick)(struct session *s, void *ctx), void *ctx)
{
	struct replay r = { .s = s, .tick = interval > 0 ? tick : NULL, .ctx = ctx };
	struct trace_sink sink = { replay_event, replay_meta, replay_settle, replay_begin, &r,
				   replay_tick };
	const struct trace_read_info *ti;
	char why[192];
	__u64 cpu0;
	int err;

	if (s->from > 0)
		r.from = s->start_ns + (__u64)(s->from * 1e9);
	if (s->to > 0)
		r.to = s->start_ns + (__u64)(s->to * 1e9);
	r.every = interval > 0 ? (__u64)(interval * 1e9) : 0;
	/* the first window begins where the time window does */
	r.origin = s->trace_now;
	r.next_tick = r.origin + r.every;
	r.wall0 = cli_now_ns();
	r.end = s->window_ns ? s->start_ns + s->window_ns : s->stop_ns;
	if (r.to && r.to < r.end)
		r.end = r.to;
	/* the recording ticked at this interval: its snapshots, where it took them (whole file) */
	r.marks = r.every && r.every == s->interval_ns && !r.from && !r.to;
	cpu0 = cli_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	err = trace_reader__replay(s->trace, &sink, why, sizeof(why));
	if (r.shown)
		fputs("\r\033[K", stderr);
	/* the decoding lanes' CPU and the pipeline's: what sets the pace (bench/peak.py reads it) */
	ti = trace_reader__info(s->trace);
	kms_info("%s: %llu records replayed; CPU: %.3f s decoding, %.3f s in the pipeline; "
		 "waits: decoding %llu, pipeline %llu\n", s->input, (unsigned long long)r.events,
		 ti->decode_cpu_ns / 1e9, (cli_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e9,
		 (unsigned long long)ti->decoder_waits, (unsigned long long)ti->sink_waits);
	if (err) {
		kms_warn("%s: %s; the report covers the records before it\n", s->input, why);
		s->trace_q.cut_short = true;
	}
	/* the ticks of the quiet end of the recording, after its last record */
	if (!err && !r.err)
		ticks_until(&r, r.end);
	/* no END block, no final count: the events of the trace are those read */
	if (!trace_reader__end(s->trace))
		s->trace_q.events = r.events;
	if (r.err)
		return r.err > 0 ? 0 : 1;
	/* the window ends the trace where it asks to */
	if (r.to && r.to < s->stop_ns)
		s->stop_ns = r.to;
	if (r.from > s->start_ns)
		s->start_ns = r.from;
	s->trace_now = s->stop_ns;
	return 0;
}
