/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `kmemscope leaks`: what is still allocated at the end, grouped by stack. Leak
 * groups with the same displayed stack (after trimming and --stack-depth) are merged,
 * so each stack shows once; every row says how sure it is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "detect_report.h"
#include "ksyms.h"
#include "report.h"
#include "rows.h"

#define SCHEMA_LEAKS	"kmemscope.leaks"
/* leaks 2: rows judged one by one (confidence, reasons), retained memory apart */
#define SCHEMA_LEAKS_VERSION	2
#define SYM_LEN		256
#define SITE_WIDTH	44

static const char *const notes[] = {
	"frees_not_observable: an address of these sites was handed out again while the "
	"tracer still held it live, so their objects are freed by a path the kernel does "
	"not trace (RCU bulk frees, bulk slab frees). Their outstanding counts are upper "
	"bounds, not leaks.",
	"allocated_before_trace counts frees of objects allocated before tracing began, "
	"or by kmem_cache_alloc_bulk(), which fires no allocation event: expected, never "
	"an error.",
};

static const char stacks_note[] =
	"stacks cached: one stack is captured per call site (page, vmalloc and dma events, "
	"which have none: per event type), chain of callers (their return "
	"addresses read off the kernel stack) and context (preempt count), and reused for the "
	"next allocations with the same; every 64th reuse is captured again and compared from "
	"the site on, and a site found with a stack its callers did not tell apart is captured "
	"every time from then on. --stacks every captures one per allocation, at about 1 us "
	"each.";
_Static_assert(KMS_STACK_CHECK == 64, "stacks_note says every 64th");

/* what a trace file recorded by another command lacks (leaks -i FILE) */
static const char sites_note[] =
	"stacks sites: the trace holds a stack only where the call site comes from one (page, "
	"vmalloc, dma; recorded by kmemscope stat or misuse --site-only): kmalloc and "
	"kmem_cache rows are grouped by call site alone. kmemscope leaks --record records a "
	"stack for every allocation.";
static const char no_stacks_note[] =
	"stacks none: the trace holds no stacks (recorded by kmemscope stat --no-stacks): rows "
	"are grouped by call site, and page, vmalloc and dma sites are unknown.";
static const char no_settle_note[] =
	"settle ms 0: no frees were applied after the trace (a trace recorded by stat or "
	"misuse, or --settle 0): objects freed a grace period later (call_rcu) show as "
	"outstanding.";

/* ---- leak rows: groups merged by displayed stack ---- */

struct lrow {
	int family;
	int nested;
	__u64 obj;
	int nframes;
	__u64 frames[KMS_MAX_STACK];
	__u64 site;
	size_t site_idx;
	__u64 count;
	__u64 bytes;
	__u64 oldest_ts;
	__u64 young;
	__u32 gfp;
	bool gfp_mixed;
	__u32 pid;
	__u64 pid_count;	/* count of the row the example pid came from */
	unsigned int stacks;	/* distinct kernel stacks merged */
	unsigned int growth;	/* intervals in a row of growth (best merged stack) */
	unsigned int doubts;	/* enum detect_doubt bits of any merged group: 0 certain */
	__u64 exposed;		/* objects allocated before records were lost */
	int retained;		/* enum detect_retained */
};

static int lrow_key_cmp(const struct lrow *a, const struct lrow *b)
{
	if (a->family != b->family)
		return a->family - b->family;
	if (a->nested != b->nested)
		return a->nested - b->nested;
	if (a->obj != b->obj)
		return a->obj < b->obj ? -1 : 1;
	if (a->nframes != b->nframes)
		return a->nframes - b->nframes;
	return memcmp(a->frames, b->frames, a->nframes * sizeof(a->frames[0]));
}

static int lrow_key_order(const void *pa, const void *pb)
{
	return lrow_key_cmp(pa, pb);
}

/*
 * Certain rows first, then the most bytes: a table cut at --top must not
 * show doubtful rows in place of certain ones.
 */
static int lrow_bytes_order(const void *pa, const void *pb)
{
	const struct lrow *a = pa, *b = pb;

	if (!a->doubts != !b->doubts)
		return a->doubts ? 1 : -1;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return lrow_key_cmp(a, b);
}

struct leak_view {
	struct lrow *rows[DLC_NR];
	size_t nr[DLC_NR];
	__u64 count[DLC_NR];
	__u64 bytes[DLC_NR];
	__u64 young;
	/* of the leak candidates: those nothing casts a doubt on */
	__u64 certain_count, certain_bytes;
	size_t certain_rows;
};

static void leak_view_free(struct leak_view *v)
{
	for (int c = 0; c < DLC_NR; c++)
		free(v->rows[c]);
}

static int leak_view(const struct detect *d, const struct detect_report_opts *o,
		     struct leak_view *v)
{
	struct detect_leak *rows;
	size_t nr, i;
	int err, c;

	memset(v, 0, sizeof(*v));
	err = detect__leaks(d, o->now, o->min_age_ns, &rows, &nr);
	if (err)
		return err;
	for (c = 0; c < DLC_NR; c++) {
		v->rows[c] = calloc(nr ? nr : 1, sizeof(struct lrow));
		if (!v->rows[c]) {
			free(rows);
			leak_view_free(v);
			return -ENOMEM;
		}
	}
	for (i = 0; i < nr; i++) {
		const struct detect_group *g = detect__group(d, rows[i].group);
		struct lrow *r;

		v->young += rows[i].young;
		if (!rows[i].count)
			continue;
		c = detect__leak_class(d, g, o->include_retained);
		r = &v->rows[c][v->nr[c]++];
		r->family = g->family;
		r->nested = g->nested;
		r->obj = g->obj;
		r->site = g->site;
		r->site_idx = g->site_idx;
		r->nframes = detect__frames(d, g->stack_id, g->site, r->frames,
					    detect_report__depth(o));
		r->count = rows[i].count;
		r->bytes = rows[i].bytes;
		r->oldest_ts = rows[i].oldest_ts;
		r->gfp = g->gfp;
		r->gfp_mixed = g->gfp_mixed;
		r->pid = g->pid;
		r->pid_count = rows[i].count;
		r->stacks = 1;
		r->growth = detect__growth_run(g);
		r->exposed = rows[i].exposed;
		/* only leak candidates are judged (and ordered by it) */
		r->doubts = c == DLC_LEAK ? detect__doubts(d, g, r->exposed) : 0;
		r->retained = g->retained;
		v->count[c] += r->count;
		v->bytes[c] += r->bytes;
	}
	free(rows);
	/* merge rows whose shown stacks are equal */
	for (c = 0; c < DLC_NR; c++) {
		struct lrow *a = v->rows[c];
		size_t k = 0;

		qsort(a, v->nr[c], sizeof(*a), lrow_key_order);
		for (i = 0; i < v->nr[c]; i++) {
			struct lrow *m = k ? &a[k - 1] : NULL;

			if (!m || lrow_key_cmp(m, &a[i])) {
				a[k++] = a[i];
				continue;
			}
			m->count += a[i].count;
			m->bytes += a[i].bytes;
			if (a[i].oldest_ts < m->oldest_ts)
				m->oldest_ts = a[i].oldest_ts;
			if (a[i].gfp != m->gfp || a[i].gfp_mixed)
				m->gfp_mixed = true;
			if (a[i].pid_count > m->pid_count) {
				m->pid = a[i].pid;
				m->pid_count = a[i].pid_count;
			}
			if (a[i].growth > m->growth)
				m->growth = a[i].growth;
			m->doubts |= a[i].doubts;
			m->exposed += a[i].exposed;
			m->stacks++;
		}
		v->nr[c] = k;
		qsort(a, k, sizeof(*a), lrow_bytes_order);
	}
	for (i = 0; i < v->nr[DLC_LEAK]; i++) {
		const struct lrow *r = &v->rows[DLC_LEAK][i];

		if (r->doubts)
			continue;
		v->certain_count += r->count;
		v->certain_bytes += r->bytes;
		v->certain_rows++;
	}
	return 0;
}

/* frees-not-observable rows, one per site */
struct urow {
	size_t site_idx;
	__u64 count;
	__u64 bytes;
	__u64 oldest_ts;
};

static int urow_order(const void *pa, const void *pb)
{
	const struct urow *a = pa, *b = pb;

	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return a->site_idx < b->site_idx ? -1 : a->site_idx > b->site_idx;
}

static struct urow *unobservable_sites(const struct leak_view *v, size_t *nr)
{
	struct urow *u = calloc(v->nr[DLC_UNOBSERVABLE] + 1, sizeof(*u));
	size_t i, j, k = 0;

	if (!u)
		return NULL;
	for (i = 0; i < v->nr[DLC_UNOBSERVABLE]; i++) {
		const struct lrow *r = &v->rows[DLC_UNOBSERVABLE][i];

		for (j = 0; j < k && u[j].site_idx != r->site_idx; j++)
			;
		if (j == k) {
			u[k].site_idx = r->site_idx;
			u[k].oldest_ts = r->oldest_ts;
			k++;
		}
		u[j].count += r->count;
		u[j].bytes += r->bytes;
		if (r->oldest_ts < u[j].oldest_ts)
			u[j].oldest_ts = r->oldest_ts;
	}
	qsort(u, k, sizeof(*u), urow_order);
	*nr = k;
	return u;
}

static __u64 age(const struct detect_report_opts *o, __u64 ts)
{
	return o->now > ts ? o->now - ts : 0;
}

/* ---- sections ---- */

enum {
	L_FAMILY, L_NESTED_IN, L_CACHE, L_DEVICE, L_SITE, L_COUNT, L_BYTES, L_AGE, L_GFP,
	L_GFP_VALUE, L_GFP_MIXED, L_EXAMPLE, L_MERGED, L_GROWTH, L_CONFIDENCE, L_REASONS,
	L_EXPOSED, L_RETAINED, L_UNCERTAIN, L_STACK, L_NR,
};

static const struct row_col leak_cols[L_NR] = {
	[L_FAMILY] = { "family", "family", RK_STR },
	[L_NESTED_IN] = { "nested_in", "nested in", RK_STR },
	[L_CACHE] = { "cache", "cache", RK_STR },
	[L_DEVICE] = { "device", "device", RK_STR },
	[L_SITE] = { "site", "site", RK_SITE },
	[L_COUNT] = { "count", "objects", RK_U64 },
	[L_BYTES] = { "bytes", "bytes", RK_U64 },
	[L_AGE] = { "oldest_age_ns", "oldest", RK_NS },
	[L_GFP] = { "gfp", "gfp", RK_GFP },
	[L_GFP_VALUE] = { "gfp_value", "gfp_value", RK_HEX },
	[L_GFP_MIXED] = { "gfp_mixed", "gfp mixed", RK_BOOL },
	[L_EXAMPLE] = { "example", "pid", RK_PROC },
	[L_MERGED] = { "stacks_merged", "stacks merged", RK_U64 },
	[L_GROWTH] = { "growth_intervals", "growing for", RK_U64 },
	/* leak candidates only: retained and nested rows are not judged */
	[L_CONFIDENCE] = { "confidence", "confidence", RK_STR },
	[L_REASONS] = { "reasons", "reasons", RK_NAMES },
	[L_EXPOSED] = { "exposed_to_loss", "exposed to loss", RK_U64 },
	[L_RETAINED] = { "retained", "retained by design", RK_STR },
	[L_UNCERTAIN] = { "uncertain", "uncertain", RK_BOOL },
	[L_STACK] = { "stack", "stack", RK_STACK },
};

/* judged: leak candidates, with a confidence; other classes are not leaks */
static struct rows *lrows(const struct detect *d, const struct detect_report_opts *o,
			  const char *key, const char *title, const struct lrow *rows, size_t nr,
			  bool judged)
{
	struct rows *t = rows__new(key, title, RS_BLOCKS, false, leak_cols, L_NR);
	const char *doubts[DOUBT_NR_BITS];
	unsigned int seen = 0;
	size_t i;

	rows__total(t, nr);
	rows__empty(t, "(none)");
	for (i = 0; i < nr && (o->top <= 0 || i < (size_t)o->top); i++) {
		const struct lrow *l = &rows[i];
		struct row_cell *r = rows__add(t);
		int n = 0;

		if (!r)
			break;
		r[L_FAMILY].s = kms_family_name(l->family);
		r[L_NESTED_IN].s = nest_name(l->nested);
		r[L_NESTED_IN].null = !r[L_NESTED_IN].s;
		r[L_CACHE].s = l->family == KMS_FAM_CACHE ? detect__obj_name(d, l->obj) : NULL;
		r[L_CACHE].null = !r[L_CACHE].s;
		r[L_DEVICE].s = l->family == KMS_FAM_DMA ? detect__obj_name(d, l->obj) : NULL;
		r[L_DEVICE].null = !r[L_DEVICE].s;
		r[L_SITE].u = l->nframes ? l->frames[0] : l->site;
		r[L_COUNT].u = l->count;
		r[L_BYTES].u = l->bytes;
		r[L_AGE].u = age(o, l->oldest_ts);
		r[L_GFP].u = l->gfp;
		r[L_GFP_VALUE].u = l->gfp;
		r[L_GFP_VALUE].null = l->gfp == KMS_GFP_UNKNOWN;
		r[L_GFP_MIXED].u = l->gfp_mixed;
		r[L_EXAMPLE].u = l->pid;
		r[L_EXAMPLE].s = detect__comm(d, l->pid);
		r[L_MERGED].u = l->stacks;
		r[L_GROWTH].u = l->growth;
		r[L_CONFIDENCE].s = !judged ? NULL : l->doubts ? "unconfirmed" : "certain";
		r[L_CONFIDENCE].null = !judged;
		for (int b = 0; judged && b < DOUBT_NR_BITS; b++)
			if (l->doubts & (1U << b))
				doubts[n++] = detect_doubt_name(b);
		r[L_REASONS].names = rows__keep(t, doubts, n * sizeof(doubts[0]));
		r[L_REASONS].n = n;
		r[L_EXPOSED].u = l->exposed;
		r[L_RETAINED].s = detect_retained_name(l->retained);
		r[L_RETAINED].null = !r[L_RETAINED].s;
		r[L_UNCERTAIN].u = judged && l->doubts;
		seen |= judged ? l->doubts : 0;
		r[L_STACK].v = rows__keep(t, l->frames, l->nframes * sizeof(l->frames[0]));
		r[L_STACK].n = l->nframes;
	}
	/* the reasons shown, by name, once: what each means */
	for (int b = 0; b < DOUBT_NR_BITS; b++)
		if (seen & (1U << b))
			rows__remark(t, "  reason %s: %s", detect_doubt_name(b),
				     detect_doubt_text(b));
	return t;
}

enum {
	U_SITE, U_FAMILY, U_CACHE, U_ALLOCS, U_FREES, U_IMPLICIT, U_OUTST, U_OUTST_BYTES, U_AGE,
	U_NR,
};

static const struct row_col unobservable_cols[U_NR] = {
	[U_SITE] = { "site", "site", RK_SITE, .max_width = SITE_WIDTH },
	[U_FAMILY] = { "family", "family", RK_STR },
	[U_CACHE] = { "cache", "cache", RK_STR },
	[U_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[U_FREES] = { "frees", "frees", RK_U64 },
	[U_IMPLICIT] = { "implicit_frees", "implicit", RK_U64 },
	[U_OUTST] = { "outstanding", "outstanding", RK_U64 },
	[U_OUTST_BYTES] = { "outstanding_bytes", "outst_bytes", RK_U64 },
	[U_AGE] = { "oldest_age_ns", "oldest", RK_NS },
};

static struct rows *unobservable(const struct detect *d, const struct detect_report_opts *o,
				 const struct urow *u, size_t nu)
{
	struct rows *t = rows__new("frees_not_observable", "Frees not observable", RS_TABLE,
				   false, unobservable_cols, U_NR);

	rows__total(t, nu);
	rows__empty(t, "(none)");
	for (size_t i = 0; i < nu && (o->top <= 0 || i < (size_t)o->top); i++) {
		const struct detect_site *s = detect__site(d, u[i].site_idx);
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[U_SITE].u = s->site;
		r[U_FAMILY].s = kms_family_name(s->family);
		r[U_CACHE].s = s->family == KMS_FAM_CACHE ? detect__obj_name(d, s->obj) : NULL;
		r[U_CACHE].null = !r[U_CACHE].s;
		r[U_ALLOCS].u = s->allocs;
		r[U_FREES].u = s->frees;
		r[U_IMPLICIT].u = s->implicit_frees;
		r[U_OUTST].u = u[i].count;
		r[U_OUTST_BYTES].u = u[i].bytes;
		r[U_AGE].u = age(o, u[i].oldest_ts);
	}
	return t;
}

enum { G_SITE, G_FAMILY, G_BYTES, G_GROWTH, G_STACK, G_NR };

static const struct row_col growth_cols[G_NR] = {
	[G_SITE] = { "site", "site", RK_SITE, .max_width = SITE_WIDTH },
	[G_FAMILY] = { "family", "family", RK_STR },
	[G_BYTES] = { "bytes", "bytes", RK_U64 },
	[G_GROWTH] = { "growth_intervals", "grew for", RK_U64 },
	[G_STACK] = { "stack", "stack", RK_STACK },
};

static struct rows *growth(const struct detect_report_opts *o, const struct leak_view *v)
{
	char title[128];
	struct rows *t;

	snprintf(title, sizeof(title), "Growth over %u snapshots (outstanding bytes grew %u "
		 "intervals in a row)", o->snapshots, o->growth_min);
	t = rows__new("growth", title, RS_TABLE, false, growth_cols, G_NR);
	rows__empty(t, o->snapshots ? "(no stack grew)" : "(no snapshots: see --interval)");
	for (size_t i = 0; i < v->nr[DLC_LEAK] && o->snapshots; i++) {
		const struct lrow *l = &v->rows[DLC_LEAK][i];
		struct row_cell *r;

		if (l->growth < o->growth_min)
			continue;
		r = rows__add(t);
		if (!r)
			break;
		r[G_SITE].u = l->nframes ? l->frames[0] : l->site;
		r[G_FAMILY].s = kms_family_name(l->family);
		r[G_BYTES].u = l->bytes;
		r[G_GROWTH].u = l->growth;
		r[G_STACK].v = rows__keep(t, l->frames, l->nframes * sizeof(l->frames[0]));
		r[G_STACK].n = l->nframes;
	}
	return t;
}

enum {
	S_LEAK_OBJ, S_LEAK_BYTES, S_LEAK_STACKS, S_CERT_OBJ, S_CERT_BYTES, S_CERT_STACKS,
	S_RET_OBJ, S_RET_BYTES, S_RET_STACKS, S_UNOBS_OBJ, S_UNOBS_BYTES, S_UNOBS_SITES,
	S_NESTED_OBJ, S_NESTED_BYTES, S_YOUNG, S_LIVE, S_SETTLE, S_SETTLING, S_IMPLICIT,
	S_BEFORE, S_SPLIT, S_NR,
};

static const struct row_col summary_cols[S_NR] = {
	[S_LEAK_OBJ] = { "leak_objects", "leak candidates", RK_U64, .note = "objects" },
	[S_LEAK_BYTES] = { "leak_bytes", "  bytes", RK_U64 },
	[S_LEAK_STACKS] = { "leak_stacks", "  stacks", RK_U64 },
	[S_CERT_OBJ] = { "certain_leak_objects", "  certain", RK_U64,
			 .note = "objects (the rest unconfirmed: each row says why)" },
	[S_CERT_BYTES] = { "certain_leak_bytes", "    bytes", RK_U64 },
	[S_CERT_STACKS] = { "certain_leak_stacks", "    stacks", RK_U64 },
	[S_RET_OBJ] = { "retained_objects", "retained by design", RK_U64,
			.note = "objects (user, page-cache pages, reclaimable slab: not leaks)" },
	[S_RET_BYTES] = { "retained_bytes", "  bytes", RK_U64 },
	[S_RET_STACKS] = { "retained_stacks", "  stacks", RK_U64 },
	[S_UNOBS_OBJ] = { "unobservable_objects", "frees not observable", RK_U64,
			  .note = "objects (not leaks)" },
	[S_UNOBS_BYTES] = { "unobservable_bytes", "  bytes", RK_U64 },
	[S_UNOBS_SITES] = { "unobservable_sites", "  sites", RK_U64 },
	[S_NESTED_OBJ] = { "nested_objects", "nested", RK_U64,
			   .note = "pages under slab/vmalloc/percpu/dma (not in the totals)" },
	[S_NESTED_BYTES] = { "nested_bytes", "  bytes", RK_U64 },
	[S_YOUNG] = { "younger_than_min_age", "younger than min age", RK_U64, .note = "objects" },
	[S_LIVE] = { "live_objects", "live objects", RK_U64, .note = "(tracked at the end)" },
	[S_SETTLE] = { "settle_ms", "settle ms", RK_U64,
		       .note = "(frees applied after the window)" },
	[S_SETTLING] = { "allocated_while_settling", "allocated while settling", RK_U64,
			 .note = "(not tracked)" },
	[S_IMPLICIT] = { "implicit_frees", "implicit frees", RK_COUNTS,
			 .note = "(a live address allocated again)" },
	[S_BEFORE] = { "allocated_before_trace", "allocated before trace", RK_COUNTS,
		       .note = "(freed, allocation not seen: expected)" },
	[S_SPLIT] = { "page_split_frees", "page split frees", RK_U64 },
};

static struct rows *summary(const struct detect *d, const struct agg *a,
			    const struct detect_report_opts *o, const struct leak_view *v, size_t nu)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	struct rows *t = rows__new("summary", "Summary", RS_LINES, true, summary_cols, S_NR);
	struct row_cell *r = rows__add(t);

	if (!r)
		return t;
	r[S_LEAK_OBJ].u = v->count[DLC_LEAK];
	r[S_LEAK_BYTES].u = v->bytes[DLC_LEAK];
	r[S_LEAK_STACKS].u = v->nr[DLC_LEAK];
	r[S_CERT_OBJ].u = v->certain_count;
	r[S_CERT_BYTES].u = v->certain_bytes;
	r[S_CERT_STACKS].u = v->certain_rows;
	r[S_RET_OBJ].u = v->count[DLC_RETAINED];
	r[S_RET_BYTES].u = v->bytes[DLC_RETAINED];
	r[S_RET_STACKS].u = v->nr[DLC_RETAINED];
	r[S_UNOBS_OBJ].u = v->count[DLC_UNOBSERVABLE];
	r[S_UNOBS_BYTES].u = v->bytes[DLC_UNOBSERVABLE];
	r[S_UNOBS_SITES].u = nu;
	r[S_NESTED_OBJ].u = v->count[DLC_NESTED];
	r[S_NESTED_BYTES].u = v->bytes[DLC_NESTED];
	r[S_YOUNG].u = v->young;
	r[S_LIVE].u = detect__nr_live(d);
	r[S_SETTLE].u = o->settle_ns / 1000000;
	r[S_SETTLING].u = o->after_window;
	r[S_IMPLICIT].names = detect_report__family_names(t);
	r[S_IMPLICIT].v = fs->implicit;
	r[S_IMPLICIT].n = KMS_FAM_MAX;
	r[S_BEFORE].names = r[S_IMPLICIT].names;
	r[S_BEFORE].v = fs->unmatched;
	r[S_BEFORE].n = KMS_FAM_MAX;
	/* the store splits page blocks; the aggregator counts it */
	r[S_SPLIT].u = agg__stats(a)->page_split_frees;
	return t;
}

enum {
	H_SCHEMA, H_VERSION, H_KERNEL, H_SOURCE, H_DURATION, H_MIN_AGE, H_DEPTH, H_STACKS,
	H_SNAPSHOTS, H_NR,
};

static const struct row_col header_cols[H_NR] = {
	[H_SCHEMA] = { "schema", "schema", RK_STR },
	[H_VERSION] = { "version", "version", RK_INT },
	[H_KERNEL] = { "kernel", "kernel", RK_STR },
	[H_SOURCE] = { "source", "source", RK_STR },
	[H_DURATION] = { "duration_ns", "duration", RK_NS },
	[H_MIN_AGE] = { "min_age_ms", "min age ms", RK_U64 },
	[H_DEPTH] = { "stack_depth", "stack depth", RK_INT },
	[H_STACKS] = { "stacks", "stacks", RK_STR },
	[H_SNAPSHOTS] = { "snapshots", "snapshots", RK_U64 },
};

enum { N_NOTES, N_NR };

static const struct row_col notes_cols[N_NR] = {
	[N_NOTES] = { "notes", "notes", RK_LINES },
};

/* unset: a stack for every allocation, as a report built without a session has */
static const char *report_stacks(const struct detect_report_opts *o)
{
	return o->stacks ? o->stacks : "every";
}

/* the document's notes: the bad-free section says its own too, in text */
static struct rows *doc_notes(const struct detect_report_opts *o)
{
	struct rows *t = rows__new(NULL, "Notes", RS_LINES, true, notes_cols, N_NR);
	struct row_cell *r = rows__add(t);
	const char *all[6] = {
		notes[0], notes[1], detect_report__badfree_note(0), detect_report__badfree_note(1),
	};
	const char *stacks = report_stacks(o);
	int n = 4;

	if (!r)
		return t;
	if (!strcmp(stacks, "cached"))
		all[n++] = stacks_note;
	else if (!strcmp(stacks, "sites"))
		all[n++] = sites_note;
	else if (!strcmp(stacks, "none"))
		all[n++] = no_stacks_note;
	if (!o->settle_ns)
		all[n++] = no_settle_note;
	r[N_NOTES].names = rows__keep(t, all, sizeof(all));
	r[N_NOTES].n = n;
	return t;
}

static struct rows *leaks_doc(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, const struct leak_view *v)
{
	struct rows *doc = rows__new(NULL, "kmemscope leaks", RS_INLINE, true, header_cols, H_NR);
	struct row_cell *r = rows__add(doc);
	struct urow *u;
	size_t nu;

	u = unobservable_sites(v, &nu);
	if (!r || !u) {
		free(u);
		rows__free(doc);
		return NULL;
	}
	r[H_SCHEMA].s = SCHEMA_LEAKS;
	r[H_VERSION].i = SCHEMA_LEAKS_VERSION;
	r[H_KERNEL].s = o->kernel;
	r[H_KERNEL].null = !o->kernel;
	r[H_SOURCE].s = o->source ? o->source : "live";
	r[H_DURATION].u = o->quality ? o->quality->duration_ns : 0;
	r[H_MIN_AGE].u = o->min_age_ns / 1000000ULL;
	r[H_DEPTH].i = detect_report__depth(o);
	r[H_STACKS].s = report_stacks(o);
	r[H_SNAPSHOTS].u = o->snapshots;
	rows__child(doc, detect_report__verdict(o));
	rows__child(doc, summary(d, a, o, v, nu));
	rows__child(doc, lrows(d, o, "leaks", "Leak candidates by stack", v->rows[DLC_LEAK],
			       v->nr[DLC_LEAK], true));
	rows__child(doc, lrows(d, o, "retained", "Retained by design", v->rows[DLC_RETAINED],
			       v->nr[DLC_RETAINED], false));
	rows__child(doc, unobservable(d, o, u, nu));
	rows__child(doc, lrows(d, o, "nested", "Nested allocations", v->rows[DLC_NESTED],
			       v->nr[DLC_NESTED], false));
	rows__child(doc, growth(o, v));
	rows__child(doc, detect_report__badfrees(d, o));
	if (o->misuse)
		rows__child(doc, detect_report__misuse(d, o));
	rows__child(doc, report__quality(a, o->quality));
	rows__child(doc, doc_notes(o));
	free(u);
	return doc;
}

struct rows *detect_report__leaks(const struct detect *d, const struct agg *a,
				  const struct detect_report_opts *o)
{
	struct leak_view v;
	struct rows *doc;

	if (leak_view(d, o, &v))
		return NULL;
	/* the rows keep copies of what they need from the view */
	doc = leaks_doc(d, a, o, &v);
	leak_view_free(&v);
	return doc;
}

int detect_report__leaks_text(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out)
{
	return detect_report__out(detect_report__leaks(d, a, o), o, false, out);
}

int detect_report__leaks_json(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out)
{
	return detect_report__out(detect_report__leaks(d, a, o), o, true, out);
}

/* progress for --interval ticks (text, stderr): not a report section */
void detect_report__growth_tick(const struct detect *d, const struct detect_report_opts *o,
				unsigned int tick, FILE *out)
{
	char sym[SYM_LEN];
	size_t i, n = detect__nr_groups(d), g = 0;

	for (i = 0; i < n; i++) {
		const struct detect_group *gr = detect__group(d, i);
		__u64 ips[1];

		if (gr->nested >= 0 || detect__growth_run(gr) < o->growth_min)
			continue;
		if (!g++)
			fprintf(out, "interval %u: growing stacks\n", tick);
		if (detect__frames(d, gr->stack_id, gr->site, ips, 1) < 1)
			ips[0] = gr->site;
		if (!ips[0])
			snprintf(sym, sizeof(sym), "[unknown]");
		else if (o->ksyms)
			ksyms__format(o->ksyms, ips[0], sym, sizeof(sym));
		else
			snprintf(sym, sizeof(sym), "0x%llx", (unsigned long long)ips[0]);
		fprintf(out, "  %-44s %-10s %llu bytes outstanding, grew %u intervals in a row\n",
			sym, kms_family_name(gr->family), (unsigned long long)gr->outstanding_bytes,
			detect__growth_run(gr));
	}
	if (!g)
		fprintf(out, "interval %u: no stack grew %u intervals in a row\n", tick,
			o->growth_min);
	fflush(out);
}
