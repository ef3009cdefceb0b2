/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope top: a refreshing view of the busiest allocation sites. The
 * aggregation only ever grows, so each window is the difference of two
 * snapshots of it. On a terminal the view is ncurses; otherwise (or with
 * --batch/--once) one plain text block per interval goes to stdout.
 */
#include <argp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curses.h>
#include "cli.h"
#include "ksyms.h"
#include "log.h"
#include "session.h"
#include "top.h"
#include "detect.h"
#include "gfp.h"

/* ---- pure part: snapshots, windows, rows, rendering ---- */

static const char *const key_names[TOP_KEY_NR] = {
	[TOP_KEY_BYTES] = "bytes",
	[TOP_KEY_ALLOCS] = "allocs",
	[TOP_KEY_FREES] = "frees",
	[TOP_KEY_OUTSTANDING] = "outstanding",
	[TOP_KEY_WASTE] = "waste",
	[TOP_KEY_FAILS] = "fails",
};

const char *top__key_name(enum top_key key)
{
	return key >= 0 && key < TOP_KEY_NR ? key_names[key] : "?";
}

int top__parse_key(const char *name)
{
	if (!strcmp(name, "count"))
		return TOP_KEY_ALLOCS;
	for (int i = 0; i < TOP_KEY_NR; i++)
		if (!strcmp(name, key_names[i]))
			return i;
	return -1;
}

const char *top__family_short(int fam)
{
	static const char *const names[KMS_FAM_MAX] = {
		"kmalloc", "cache", "page", "vmalloc", "dma", "percpu", "user", "umap",
	};

	return fam >= 0 && fam < KMS_FAM_MAX ? names[fam] : "?";
}

int top__snap_take(struct top_snap *snap, const struct agg *a, __u64 ts_ns, __u64 events,
		   __u64 lost)
{
	size_t n = agg__nr_sites(a);

	if (n > snap->cap) {
		size_t cap = n + n / 2 + 64;
		struct top_site *v = realloc(snap->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		snap->v = v;
		snap->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		const struct agg_site *s = agg__site(a, i);
		struct top_site *t = &snap->v[i];

		t->family = s->family;
		t->addr = s->addr;
		t->obj = s->obj;
		t->allocs = s->allocs;
		t->frees = s->frees;
		t->fails = s->fails;
		t->bytes_req = s->bytes_req;
		t->bytes_alloc = s->bytes_alloc;
		t->outstanding = s->outstanding;
		t->outstanding_bytes = s->outstanding_bytes;
	}
	snap->nr = n;
	for (int f = 0; f < KMS_FAM_MAX; f++)
		snap->fam[f] = *agg__family(a, f);
	snap->ts_ns = ts_ns;
	snap->events = events;
	snap->lost = lost;
	return 0;
}

int top__snap_copy(struct top_snap *snap, const struct top_snap *other)
{
	struct top_site *v = snap->v;
	size_t cap = snap->cap;

	if (other->nr > cap) {
		cap = other->nr;
		v = realloc(v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	*snap = *other;
	snap->v = v;
	snap->cap = cap;
	if (other->nr)
		memcpy(v, other->v, other->nr * sizeof(*v));
	return 0;
}

void top__snap_free(struct top_snap *snap)
{
	free(snap->v);
	memset(snap, 0, sizeof(*snap));
}

double top__window(const struct top_snap *base, const struct top_snap *cur)
{
	/* a zero-length window (reset just now) gives zero rates, not a division by 0 */
	if (cur->ts_ns <= base->ts_ns)
		return 1e-9;
	return (cur->ts_ns - base->ts_ns) / 1e9;
}

/* counters only grow; a smaller value means a different site, counted from 0 */
static __u64 sub(__u64 cur, __u64 base)
{
	return cur > base ? cur - base : 0;
}

static double row_key(const struct top_row *r, enum top_key key)
{
	switch (key) {
	case TOP_KEY_ALLOCS:
		return r->allocs;
	case TOP_KEY_FREES:
		return r->frees;
	case TOP_KEY_OUTSTANDING:
		return r->outstanding;
	case TOP_KEY_WASTE:
		return r->waste;
	case TOP_KEY_FAILS:
		return r->fails;
	case TOP_KEY_BYTES:
	default:
		return r->bytes;
	}
}

static int row_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct top_row *a = pa, *b = pb;
	enum top_key key = *(const enum top_key *)ctx;
	double ka = row_key(a, key), kb = row_key(b, key);

	if (ka != kb)
		return ka < kb ? 1 : -1;
	if (a->allocs != b->allocs)
		return a->allocs < b->allocs ? 1 : -1;
	/* stable from one refresh to the next: rows do not flicker on ties */
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->family != b->family)
		return a->family - b->family;
	return a->obj < b->obj ? -1 : a->obj > b->obj;
}

void top__sort(struct top_row *rows, size_t nr, enum top_key key)
{
	qsort_r(rows, nr, sizeof(*rows), row_cmp, &key);
}

long top__rows(const struct top_snap *base, const struct top_snap *cur, unsigned int fam_mask,
	       enum top_key key, struct top_row **rows, size_t *cap)
{
	static const struct top_site zero;
	double secs = top__window(base, cur);
	size_t nr = 0;

	if (*cap < cur->nr || !*rows) {
		size_t n = cur->nr ? cur->nr : 1;
		struct top_row *v = realloc(*rows, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		*rows = v;
		*cap = n;
	}
	for (size_t i = 0; i < cur->nr; i++) {
		const struct top_site *c = &cur->v[i], *b = &zero;
		struct top_row *r;
		__u64 da, df, dfail, dreq, dbytes;

		if (fam_mask && !(fam_mask & (1u << c->family)))
			continue;
		if (i < base->nr && base->v[i].family == c->family && base->v[i].addr == c->addr &&
		    base->v[i].obj == c->obj)
			b = &base->v[i];
		da = sub(c->allocs, b->allocs);
		df = sub(c->frees, b->frees);
		dfail = sub(c->fails, b->fails);
		if (!da && !df && !dfail && !(key == TOP_KEY_OUTSTANDING && c->outstanding))
			continue;
		dbytes = sub(c->bytes_alloc, b->bytes_alloc);
		dreq = sub(c->bytes_req, b->bytes_req);
		r = &(*rows)[nr++];
		r->idx = i;
		r->family = c->family;
		r->addr = c->addr;
		r->obj = c->obj;
		r->allocs = da / secs;
		r->frees = df / secs;
		r->fails = dfail / secs;
		r->bytes = dbytes / secs;
		r->waste = (dbytes > dreq ? dbytes - dreq : 0) / secs;
		r->outstanding = c->outstanding;
		r->outstanding_bytes = c->outstanding_bytes;
	}
	top__sort(*rows, nr, key);
	return nr;
}

void top__families(const struct top_snap *base, const struct top_snap *cur,
		   struct top_fam *fam)
{
	double secs = top__window(base, cur);

	for (int f = 0; f < KMS_FAM_MAX; f++) {
		const struct agg_counts *c = &cur->fam[f], *b = &base->fam[f];

		fam[f].allocs = sub(c->allocs, b->allocs) / secs;
		fam[f].frees = sub(c->frees, b->frees) / secs;
		fam[f].bytes = sub(c->bytes_alloc, b->bytes_alloc) / secs;
		fam[f].outstanding = c->outstanding;
		fam[f].outstanding_bytes = c->outstanding_bytes;
	}
}

void top__fmt_num(double v, char *buf, size_t len)
{
	static const char units[] = " KMGTPE";	/* a __u64 ends below 18.5E */
	int u = 0;

	if (!(v > 0)) {
		snprintf(buf, len, "0");
		return;
	}
	/* small fractional rates (an event every few seconds) keep one decimal */
	if (v < 99.95 && v != (double)(__u64)v) {
		snprintf(buf, len, "%.1f", v);
		return;
	}
	if (v < 9999.5) {
		snprintf(buf, len, "%.0f", v);
		return;
	}
	while (u < 6 && v >= 999.95) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, v < 99.995 ? "%.2f%c" : "%.1f%c", v, units[u]);
}

/*
 * Columns: five numbers of at most 6 characters, then what was allocated and
 * where. Below WIDE_COLS the family and cache columns merge into one ("the
 * cache, else the family"), so that an 80-column terminal still shows the
 * call site, which is what the table is for.
 */
#define WIDE_COLS	110
#define NUMS_FMT	"%7s %7s %7s %7s %7s "
#define WIDE_FMT	NUMS_FMT "%-7s %-18.18s %s"
#define NARROW_FMT	NUMS_FMT "%-14.14s %s"

static bool narrow(int width)
{
	return width > 0 && width < WIDE_COLS;
}

static int cut(char *buf, size_t len, int n, int width)
{
	if (width > 0 && (size_t)width < len && n > width) {
		buf[width] = '\0';
		return width;
	}
	return n;
}

int top__render_header(char *buf, size_t len, int width)
{
	int n;

	if (narrow(width))
		n = snprintf(buf, len, NARROW_FMT, "ALLOC/s", "BYTES/s", "FREES/s", "OUTST",
			     "WASTE/s", "CACHE/FAMILY", "SITE");
	else
		n = snprintf(buf, len, WIDE_FMT, "ALLOC/s", "BYTES/s", "FREES/s", "OUTST",
			     "WASTE/s", "FAMILY", "CACHE", "SITE");
	return cut(buf, len, n, width);
}

int top__render_row(const struct top_row *r, const char *cache, const char *site, char *buf,
		    size_t len, int width)
{
	char a[16], b[16], f[16], o[16], w[16];
	const char *fam = top__family_short(r->family);
	bool has_cache = cache && *cache;
	int n;

	top__fmt_num(r->allocs, a, sizeof(a));
	top__fmt_num(r->bytes, b, sizeof(b));
	top__fmt_num(r->frees, f, sizeof(f));
	top__fmt_num(r->outstanding, o, sizeof(o));
	top__fmt_num(r->waste, w, sizeof(w));
	if (narrow(width))
		n = snprintf(buf, len, NARROW_FMT, a, b, f, o, w, has_cache ? cache : fam, site);
	else
		n = snprintf(buf, len, WIDE_FMT, a, b, f, o, w, fam, has_cache ? cache : "-", site);
	return cut(buf, len, n, width);
}

/* ---- the command ---- */

#define LINE_MAX_LEN 512
/* how often keys are read on a terminal, whatever the refresh interval */
#define KEY_POLL_SEC 0.05

struct top_env {
	struct session_args sa;
	double interval;
	int key;
	long rows;		/* -n; -1: default */
	unsigned long count;	/* --count; 0: until stopped */
	bool batch;
	bool no_context;	/* --no-context */
	double speed;		/* --speed, with -i */
	bool speed_given;
};

struct top {
	struct top_env *env;
	struct session *s;
	struct detect *d;	/* atomic-context checks, for the quality line */
	bool tty;
	struct top_snap old, now, reset;
	struct top_row *rows;
	size_t rows_cap;
	long nr_rows;
	struct top_fam fam[KMS_FAM_MAX];
	struct kms_quality q;
	double ev_rate;
	double window;
	__u64 next_ns;
	unsigned long blocks;
	enum top_key key;
	unsigned int fam_mask;	/* family filter of the table, 0: all */
	bool paused;
	bool totals;		/* since start or 'r' instead of the last interval */
};

static const struct argp_option top_options[] = {
	{ NULL, 0, NULL, 0, "What to trace:", 1 },
	{ "no-stacks", 1001, NULL, 0, "no stack capture: page, vmalloc and dma sites stay unknown" },
	{ NULL, 0, NULL, 0, "Display:", 2 },
	{ "interval", 'I', "SEC", 0, "refresh every SEC seconds (default 1)" },
	{ "sort", 's', "KEY", 0, "sort sites by KEY: bytes (default), allocs, frees, outstanding, "
				 "waste, fails" },
	{ "rows", 'n', "ROWS", 0, "site rows (default: what fits the screen; 20 in batch mode; "
				  "0: all)" },
	{ "batch", 'b', NULL, 0, "plain text blocks to stdout even on a terminal" },
	{ "count", 1010, "N", 0, "stop after N refreshes" },
	{ "no-context", 1012, NULL, 0, "no atomic-context checks (the misuse count on the quality "
				       "line): a little cheaper" },
	{ "once", 1011, NULL, 0, "one block of plain text after one interval (--batch --count 1)" },
	{ "speed", 1013, "X", 0, "with -i: replay X seconds of the trace per second (default 1: "
				 "as recorded; 0: as fast as it reads)" },
	{},
};

static error_t top_parse(int key, char *arg, struct argp_state *state)
{
	struct top_env *env = state->input;
	unsigned long v;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		break;
	case 1001:
		env->sa.so.no_stacks = true;
		break;
	case 'I':
		if (cli_parse_interval(arg, &env->interval))
			return EINVAL;
		break;
	case 's':
		env->key = top__parse_key(arg);
		if (env->key < 0)
			cli_argp_fail(state, "unknown sort key '%s' (one of: bytes, allocs, frees, "
				      "outstanding, waste, fails)", arg);
		break;
	case 'n':
		if (cli_parse_uint(arg, "row count", 1000000, &v))
			return EINVAL;
		env->rows = v;
		break;
	case 'b':
		env->batch = true;
		break;
	case 1010:
		if (cli_parse_uint(arg, "count", 1000000000, &v))
			return EINVAL;
		if (!v)
			cli_argp_fail(state, "--count must be at least 1");
		env->count = v;
		break;
	case 1011:
		env->batch = true;
		env->count = 1;
		break;
	case 1012:
		env->no_context = true;
		break;
	case 1013: {
		char *end;

		errno = 0;
		env->speed = strtod(arg, &end);
		if (errno || end == arg || *end || !(env->speed >= 0) || env->speed > 1e6)
			cli_argp_fail(state, "--speed takes a factor from 0 to 1000000 (0: as fast "
				      "as possible), got '%s'", arg);
		env->speed_given = true;
		break;
	}
	case ARGP_KEY_END:
		if (env->speed_given && !env->sa.so.input)
			cli_argp_fail(state, "--speed goes with -i (a recorded trace)");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* events so far: on a file, the quality's count is the whole recording's, so what was replayed */
static __u64 top_events(const struct top *t)
{
	return t->s->trace ? agg__stats(t->s->pipe.agg)->events : t->q.events;
}

/* a new window: snapshot the aggregation, rates against the previous snapshot */
static int top_sample(struct top *t)
{
	struct top_snap tmp;
	int err;

	session__quality(t->s, &t->q);
	tmp = t->old;
	t->old = t->now;
	t->now = tmp;
	err = top__snap_take(&t->now, t->s->pipe.agg, session__now(t->s), top_events(t),
			     t->q.lost);
	if (err)
		return err;
	t->window = top__window(&t->old, &t->now);
	return 0;
}

/* rows and family rates for what is shown: the last interval, or totals since reset */
static int top_compute(struct top *t)
{
	const struct top_snap *base = t->totals ? &t->reset : &t->old;

	t->nr_rows = top__rows(base, &t->now, t->fam_mask, t->key, &t->rows, &t->rows_cap);
	if (t->nr_rows < 0)
		return t->nr_rows;
	top__families(base, &t->now, t->fam);
	t->ev_rate = (t->now.events - base->events) / top__window(base, &t->now);
	return 0;
}

static void site_text(struct top *t, const struct top_row *r, char *buf, size_t len)
{
	if (!r->addr)
		snprintf(buf, len, "[unknown]");
	else if (t->s->ksyms)
		ksyms__format(t->s->ksyms, r->addr, buf, len);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)r->addr);
}

static const char *obj_text(struct top *t, const struct top_row *r)
{
	if (r->family == KMS_FAM_CACHE)
		return agg__cache_name(t->s->pipe.agg, r->obj);
	if (r->family == KMS_FAM_DMA)
		return agg__device_name(t->s->pipe.agg, r->obj);
	return r->obj == KMS_OBJ_NESTED ? "(nested)" : NULL;
}

static void fmt_elapsed(__u64 ns, char *buf, size_t len)
{
	unsigned long sec = ns / 1000000000ULL;

	if (sec < 60)
		snprintf(buf, len, "%.1fs", ns / 1e9);
	else
		snprintf(buf, len, "%lu:%02lu:%02lu", sec / 3600, sec / 60 % 60, sec % 60);
}

static int top_header(struct top *t, char *buf, size_t len)
{
	char el[32], ev[16], win[32];

	fmt_elapsed(t->now.ts_ns - t->s->start_ns, el, sizeof(el));
	top__fmt_num(t->ev_rate, ev, sizeof(ev));
	if (t->totals)
		fmt_elapsed(t->now.ts_ns - t->reset.ts_ns, win, sizeof(win));
	else
		snprintf(win, sizeof(win), "%.2fs", t->window);
	/* what changes first; the kernel last, where a narrow terminal cuts */
	return snprintf(buf, len, "events/s %s  %s %s  sort %s  family %s  elapsed %s  kernel %s",
			ev, t->totals ? "totals over" : "window", win, top__key_name(t->key),
			t->fam_mask ? top__family_short(__builtin_ctz(t->fam_mask)) : "all", el,
			t->s->kernel ? t->s->kernel : "?");
}

/* the data-quality line; false when events were lost or reordered */
static bool top_quality(struct top *t, char *buf, size_t len)
{
	const struct kms_quality *q = &t->q;
	bool ok = kms_quality_complete(q);
	int n;

	n = snprintf(buf, len, "%s: lost %llu, misses %llu, out of order %llu",
		     ok ? "quality: complete" : "quality: INCOMPLETE, rates undercount",
		     (unsigned long long)q->lost, (unsigned long long)q->misses,
		     (unsigned long long)q->out_of_order);
	if (q->pending_lost && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, ", returns without entry %llu",
			      (unsigned long long)q->pending_lost);
	if (q->softirqs_unseen && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, ", softirqs unseen %llu",
			      (unsigned long long)q->softirqs_unseen);
	if (q->tasks_unseen && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, ", task runs unseen %llu",
			      (unsigned long long)q->tasks_unseen);
	if (t->d && n > 0 && (size_t)n < len) {
		__u64 bad = 0;
		size_t sites = 0;

		/* blocking allocations in atomic context so far (kmemscope misuse for the list) */
		for (size_t i = 0; i < detect__nr_misuse(t->d); i++) {
			const struct detect_misuse *m = detect__misuse(t->d, i);

			if (!detect_misuse_is_info(m->kind)) {
				bad += m->count;
				sites++;
			}
		}
		snprintf(buf + n, len - n, "  |  misuse: %llu blocking in atomic at %zu sites",
			 (unsigned long long)bad, sites);
	}
	return ok;
}

static bool fam_shown(struct top *t, int f)
{
	return !t->env->sa.so.families || (t->env->sa.so.families & (1u << f));
}

static void fam_line(struct top *t, int f, char *buf, size_t len)
{
	const struct top_fam *fa = &t->fam[f];
	char a[16], fr[16], b[16], o[16], ob[16];

	if (!t->q.traced[f]) {
		snprintf(buf, len, "%-10s NOT TRACED on this kernel", kms_family_name(f));
		return;
	}
	top__fmt_num(fa->allocs, a, sizeof(a));
	top__fmt_num(fa->frees, fr, sizeof(fr));
	top__fmt_num(fa->bytes, b, sizeof(b));
	top__fmt_num(fa->outstanding, o, sizeof(o));
	top__fmt_num(fa->outstanding_bytes, ob, sizeof(ob));
	snprintf(buf, len, "%-10s %8s %8s %8s %8s %11s", kms_family_name(f), a, fr, b, o, ob);
}

static void fam_header(char *buf, size_t len)
{
	snprintf(buf, len, "%-10s %8s %8s %8s %8s %11s", "FAMILY", "ALLOCS/s", "FREES/s",
		 "BYTES/s", "OUTST", "OUTST_BYTES");
}

/* ---- batch: one text block per interval ---- */

static void top_print_block(struct top *t, FILE *out)
{
	char line[LINE_MAX_LEN], site[256], stamp[32];
	/* a file's blocks are dated when their window was recorded */
	time_t wall = t->s->trace_realtime ?
		      (time_t)((t->s->trace_realtime + t->now.ts_ns) / 1000000000ULL) : time(NULL);
	struct tm tm;
	long limit = t->env->rows < 0 ? 20 : t->env->rows;

	localtime_r(&wall, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	top_header(t, line, sizeof(line));
	fprintf(out, "kmemscope top %s  %s\n", stamp, line);
	top_quality(t, line, sizeof(line));
	fprintf(out, "%s\n", line);
	fam_header(line, sizeof(line));
	fprintf(out, "%s\n", line);
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		if (!fam_shown(t, f))
			continue;
		fam_line(t, f, line, sizeof(line));
		fprintf(out, "%s\n", line);
	}
	fprintf(out, "sites: %ld active, by %s\n", t->nr_rows, top__key_name(t->key));
	top__render_header(line, sizeof(line), 0);
	fprintf(out, "%s\n", line);
	for (long i = 0; i < t->nr_rows && (!limit || i < limit); i++) {
		site_text(t, &t->rows[i], site, sizeof(site));
		top__render_row(&t->rows[i], obj_text(t, &t->rows[i]), site, line, sizeof(line), 0);
		fprintf(out, "%s\n", line);
	}
	fprintf(out, "\n");
	fflush(out);
}

static int batch_tick(struct session *s, void *ctx)
{
	struct top *t = ctx;

	if (top_sample(t) || top_compute(t)) {
		kms_error("Failed to compute the view: %s\n", strerror(ENOMEM));
		return -1;
	}
	top_print_block(t, stdout);
	t->blocks++;
	/* > 0 stops session__run without an error */
	return t->env->count && t->blocks >= t->env->count ? 1 : 0;
}

/* ---- terminal ---- */

static const char footer[] =
	" q quit  s sort  1-6 family  f next family  0 all  p pause  t interval/totals  r reset ";

static void put_line(int y, const char *text, int attr)
{
	if (y >= LINES)
		return;
	attron(attr);
	mvaddnstr(y, 0, text, COLS);
	/* the reverse-video bars span the whole width */
	if (attr & A_REVERSE)
		for (int x = strlen(text); x < COLS; x++)
			mvaddch(y, x, ' ');
	attroff(attr);
}

static void top_draw(struct top *t)
{
	char line[LINE_MAX_LEN], site[256];
	int y = 0, width = COLS < LINE_MAX_LEN - 1 ? COLS : LINE_MAX_LEN - 1;
	int rows_room;
	bool ok;

	erase();
	top_header(t, line, sizeof(line));
	{
		char full[LINE_MAX_LEN + 32];

		snprintf(full, sizeof(full), "kmemscope top %s %s", t->paused ? "[PAUSED]" : "", line);
		put_line(y++, full, A_BOLD);
	}
	ok = top_quality(t, line, sizeof(line));
	put_line(y++, line, ok ? A_NORMAL : (A_BOLD | A_REVERSE | (has_colors() ? COLOR_PAIR(1) : 0)));
	/* the family block only when the table still gets room */
	if (LINES >= 18) {
		fam_header(line, sizeof(line));
		put_line(y++, line, A_UNDERLINE);
		for (int f = 0; f < KMS_FAM_MAX; f++) {
			if (!fam_shown(t, f))
				continue;
			fam_line(t, f, line, sizeof(line));
			put_line(y++, line, A_NORMAL);
		}
	}
	y++;
	top__render_header(line, sizeof(line), width);
	put_line(y++, line, A_REVERSE);
	rows_room = LINES - 1 - y;
	if (t->env->rows > 0 && t->env->rows < rows_room)
		rows_room = t->env->rows;
	for (long i = 0; i < t->nr_rows && i < rows_room; i++) {
		site_text(t, &t->rows[i], site, sizeof(site));
		top__render_row(&t->rows[i], obj_text(t, &t->rows[i]), site, line, sizeof(line),
				width);
		put_line(y++, line, A_NORMAL);
	}
	if (!t->nr_rows)
		put_line(y, "  (no allocation in this window)", A_DIM);
	put_line(LINES - 1, footer, A_REVERSE);
	refresh();
}

/* a key; 1 to quit */
static int top_key(struct top *t, int ch)
{
	switch (ch) {
	case 'q':
	case 'Q':
		return 1;
	case 's':
		t->key = (t->key + 1) % TOP_KEY_NR;
		break;
	case 'S':
		t->key = (t->key + TOP_KEY_NR - 1) % TOP_KEY_NR;
		break;
	case '0':
	case 'a':
		t->fam_mask = 0;
		break;
	case '1' ... '6':
		t->fam_mask = 1u << (ch - '1');
		break;
	case 'f':
		/* all -> kmalloc -> ... -> percpu -> all */
		if (!t->fam_mask)
			t->fam_mask = 1;
		else
			t->fam_mask = t->fam_mask << 1 >= (1u << KMS_FAM_MAX) ? 0 : t->fam_mask << 1;
		break;
	case 'p':
	case ' ':
		t->paused = !t->paused;
		break;
	case 't':
		t->totals = !t->totals;
		break;
	case 'r':
		if (top__snap_copy(&t->reset, &t->now))
			return -1;
		break;
	case KEY_RESIZE:
	case 12:	/* ^L */
		clear();
		break;
	default:
		return 0;
	}
	return top_compute(t) ? -1 : 0;
}

static int tty_tick(struct session *s, void *ctx)
{
	struct top *t = ctx;
	bool dirty = false;
	__u64 now = session__now(s);
	int ch;

	while ((ch = getch()) != ERR) {
		int r = top_key(t, ch);

		if (r)
			return r;
		dirty = true;
	}
	/* paused: no new window, so that keys re-sort the frozen one */
	if (now >= t->next_ns) {
		t->next_ns += t->env->interval * 1e9;
		if (t->next_ns < now)
			t->next_ns = now + t->env->interval * 1e9;
		if (!t->paused) {
			if (top_sample(t) || top_compute(t))
				return -1;
			t->blocks++;
			dirty = true;
		}
	}
	if (dirty)
		top_draw(t);
	return t->env->count && t->blocks >= t->env->count ? 1 : 0;
}

static SCREEN *tty_open(void)
{
	SCREEN *scr;

	/* newterm, not initscr: a bad TERM must not exit the program */
	scr = newterm(NULL, stdout, stdin);
	if (!scr)
		return NULL;
	cbreak();	/* not raw: ^C stays SIGINT, which session__run honours */
	noecho();
	nodelay(stdscr, TRUE);
	keypad(stdscr, TRUE);
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_WHITE, COLOR_RED);
	}
	return scr;
}

int cmd_top(int argc, char **argv)
{
	static const struct argp argp = {
		top_options, top_parse, "[-- CMD [ARGS]]",
		"A live view of the busiest kernel allocation sites: rates per call site over "
		"the last interval, per-family totals and the data quality of the run.\v"
		"Keys: q quit, s/S next/previous sort key, 1-6 show one family (kmalloc, "
		"kmem_cache, page, vmalloc, dma, percpu), f next family, 0 all families, "
		"p pause, t last interval / totals since start or reset, r reset the totals.\n\n"
		"When stdout is not a terminal, or with --batch or --once, top prints one text "
		"block per interval instead.\n\n"
		"Examples:\n"
		"  kmemscope top                          whole system, refresh every second\n"
		"  kmemscope top -s allocs -F slab        slab sites by allocation rate\n"
		"  kmemscope top -I 0.5 --count 3 | less  three text blocks\n"
		"  kmemscope top --once -n 10             one block, top 10 sites\n"
		"  kmemscope top -- make -j4              sites of a build, until it ends\n"
		"  kmemscope top -i rec.kmt --speed 10    replay a recorded trace 10x faster\n\n"
		"Exit status: 1 on a runtime failure, 2 on a usage or environment error; "
		"otherwise CMD's exit status with -- CMD (128+N if signal N killed it, 127 if "
		"it cannot run), else 0.",
		session_report_children,
	};
	struct top_env env = { .interval = 1, .key = TOP_KEY_BYTES, .rows = -1, .speed = 1 };
	struct detect_opts dopts = { .misuse = true };
	struct top t = {};
	struct session s;
	SCREEN *scr = NULL;
	int err;

	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	/* the atomic-context checks, counted on the quality line */
	if (!env.no_context) {
		env.sa.so.context = true;
		env.sa.so.detect = &dopts;
	}
	t.env = &env;
	t.s = &s;
	t.key = env.key;
	t.tty = !env.batch && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);

	err = session__start(&s, &env.sa.so);
	t.d = s.pipe.detect;
	if (err)
		goto out;
	s.speed = env.speed;
	session__quality(&s, &t.q);
	if (top__snap_take(&t.now, s.pipe.agg, session__now(&s), top_events(&t), t.q.lost) ||
	    top__snap_copy(&t.reset, &t.now) || top__snap_copy(&t.old, &t.now)) {
		err = 1;
		goto out_stop;
	}
	if (t.tty) {
		scr = tty_open();
		if (!scr)
			t.tty = false;
	}
	if (t.tty) {
		t.next_ns = session__now(&s) + env.interval * 1e9;
		if (top_compute(&t) == 0)
			top_draw(&t);
		/*
		 * Tick often for the keys; tty_tick refreshes once per interval. A
		 * file's ticks are in trace time: at --speed X, KEY_POLL_SEC of wall
		 * time is X times that (unpaced, one tick per refresh).
		 */
		err = session__run(&s, 0, !s.trace ? KEY_POLL_SEC : env.speed > 0 ?
				   fmin(KEY_POLL_SEC * env.speed, env.interval) : env.interval,
				   tty_tick, &t);
	} else {
		/* a file's blocks are its progress */
		if (!env.count && !s.trace)
			session__feedback(&s, &env.sa.so, 0);
		err = session__run(&s, 0, env.interval, batch_tick, &t);
		/* the command or the file ended mid-interval: its last part still gets a block */
		if (!err && (env.sa.so.cmd || s.trace) && (!env.count || t.blocks < env.count) &&
		    session__now(&s) - t.now.ts_ns > 50 * 1000 * 1000ULL)
			err = batch_tick(&s, &t) < 0;
	}
out_stop:
	if (scr) {
		endwin();
		delscreen(scr);
	}
	err = session__stop(&s) || err;
out:
	top__snap_free(&t.old);
	top__snap_free(&t.now);
	top__snap_free(&t.reset);
	free(t.rows);
	err = cli_cmd_status(&s.cmd, err);
	session__free(&s);
	return err;
}
