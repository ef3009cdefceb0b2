/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Atomic-context misuse: `kmemscope misuse` and the section stat and leaks embed.
 * Errors come first; informational findings are merged by call site.
 */
#include <errno.h>
#include <stdlib.h>
#include "detect_report.h"
#include "report.h"
#include "rows.h"

#define SCHEMA_MISUSE		"kmemscope.misuse"
#define SCHEMA_MISUSE_VERSION	1

static const char *const notes[] = {
	"Interrupts disabled without preemption disabled (a bare local_irq_save() or "
	"local_irq_disable()) do not show in the preempt count on these kernels: such "
	"allocations look like process context. spin_lock_irqsave() disables preemption "
	"and is seen.",
	"rcu_read_lock() does not change the preempt count with CONFIG_PREEMPT_RCU: a "
	"blocking allocation inside an RCU read-side section is not seen.",
};

static int misuse_order(const void *pa, const void *pb)
{
	const struct detect_misuse *a = pa, *b = pb;
	bool ia = detect_misuse_is_info(a->kind), ib = detect_misuse_is_info(b->kind);

	if (ia != ib)
		return ia - ib;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	if (a->kind != b->kind)
		return a->kind - b->kind;
	return a->first_ts < b->first_ts ? -1 : a->first_ts > b->first_ts;
}

/* info rows are shown by call site: merge their stacks */
static bool info_same(const struct detect_misuse *a, const struct detect_misuse *b)
{
	return a->kind == b->kind && a->ctx == b->ctx && a->family == b->family &&
	       a->site == b->site && a->obj == b->obj && a->gfp == b->gfp;
}

static int info_key_order(const void *pa, const void *pb)
{
	const struct detect_misuse *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind - b->kind;
	if (a->ctx != b->ctx)
		return a->ctx - b->ctx;
	if (a->family != b->family)
		return a->family - b->family;
	if (a->site != b->site)
		return a->site < b->site ? -1 : 1;
	if (a->obj != b->obj)
		return a->obj < b->obj ? -1 : 1;
	return a->gfp < b->gfp ? -1 : a->gfp > b->gfp;
}

/* findings, errors first; a copy (info rows merged by site) for the caller to free */
static struct detect_misuse *sorted_misuse(const struct detect *d, size_t *nr)
{
	size_t n = detect__nr_misuse(d), i, k = 0;
	struct detect_misuse *v = malloc((n ? n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = *detect__misuse(d, i);
	qsort(v, n, sizeof(*v), info_key_order);
	for (i = 0; i < n; i++) {
		if (k && detect_misuse_is_info(v[i].kind) && info_same(&v[k - 1], &v[i])) {
			v[k - 1].count += v[i].count;
			v[k - 1].stack_id = -1;
			continue;
		}
		v[k++] = v[i];
	}
	qsort(v, k, sizeof(*v), misuse_order);
	*nr = k;
	return v;
}

enum {
	M_KIND, M_SEVERITY, M_CONTEXT, M_FAMILY, M_COUNT, M_GFP, M_GFP_VALUE, M_PC, M_ORDER,
	M_SITE, M_CACHE, M_EXAMPLE, M_STACK, M_NR,
};

static const struct row_col finding_cols[M_NR] = {
	[M_KIND] = { "kind", "kind", RK_STR },
	[M_SEVERITY] = { "severity", "severity", RK_STR },
	[M_CONTEXT] = { "context", "context", RK_STR },
	[M_FAMILY] = { "family", "family", RK_STR },
	[M_COUNT] = { "count", "count", RK_U64 },
	[M_GFP] = { "gfp", "gfp", RK_GFP },
	[M_GFP_VALUE] = { "gfp_value", "gfp_value", RK_HEX },
	[M_PC] = { "preempt_count", "preempt_count", RK_HEX },
	/* page allocations only */
	[M_ORDER] = { "order", "order", RK_INT, ROW_OMIT_NULL },
	[M_SITE] = { "site", "site", RK_SITE },
	[M_CACHE] = { "cache", "cache", RK_STR },
	[M_EXAMPLE] = { "example", "pid", RK_PROC },
	[M_STACK] = { "stack", "stack", RK_STACK },
};

static void finding(struct rows *t, const struct detect *d, const struct detect_report_opts *o,
		    const struct detect_misuse *m)
{
	struct row_cell *r = rows__add(t);
	__u64 ips[KMS_MAX_STACK];
	int nf;

	if (!r)
		return;
	nf = detect__frames(d, m->stack_id, m->site, ips, detect_report__depth(o));
	r[M_KIND].s = detect_misuse_name(m->kind);
	r[M_SEVERITY].s = detect_misuse_is_info(m->kind) ? "info" : "error";
	r[M_CONTEXT].s = detect_ctx_name(m->ctx);
	r[M_FAMILY].s = kms_family_name(m->family);
	r[M_COUNT].u = m->count;
	r[M_GFP].u = m->gfp;
	r[M_GFP_VALUE].u = m->gfp;
	r[M_GFP_VALUE].null = m->gfp == KMS_GFP_UNKNOWN;
	r[M_PC].u = m->pc;
	r[M_ORDER].i = m->order;
	r[M_ORDER].null = m->family != KMS_FAM_PAGE;
	r[M_SITE].u = m->site;
	r[M_CACHE].s = m->family == KMS_FAM_CACHE ? detect__obj_name(d, m->obj) : NULL;
	r[M_CACHE].null = !r[M_CACHE].s;
	r[M_EXAMPLE].u = m->pid;
	r[M_EXAMPLE].s = detect__comm(d, m->pid);
	r[M_STACK].n = nf > 0 ? nf : 0;
	r[M_STACK].v = rows__keep(t, ips, r[M_STACK].n * sizeof(ips[0]));
}

static struct rows *findings(const struct detect *d, const struct detect_report_opts *o,
			     size_t *errors)
{
	struct rows *t = rows__new("findings", "Misuse findings", RS_BLOCKS, false, finding_cols,
				   M_NR);
	size_t top = o->top > 0 ? (size_t)o->top : (size_t)-1;
	size_t n, i, errs = 0, ne = 0, ni = 0;
	struct detect_misuse *v = sorted_misuse(d, &n);

	*errors = 0;
	if (!v) {
		rows__fail(t);
		return t;
	}
	/* --top applies to errors and to info rows apart */
	for (i = 0; i < n; i++) {
		bool info = detect_misuse_is_info(v[i].kind);

		errs += !info;
		if (info ? ni++ >= top : ne++ >= top)
			continue;
		finding(t, d, o, &v[i]);
	}
	rows__total(t, n);
	if (!errs)
		rows__remark(t, detect__misuse_stats(d)->preempt_rt ?
			     "  no allocation in hard atomic context seen" :
			     "  no blocking allocation in atomic context seen");
	free(v);
	*errors = errs;
	return t;
}

enum {
	S_CHECKED, S_PREEMPT_RT, S_CONTEXTS, S_CTX_UNKNOWN, S_NO_PC, S_NO_BASELINE, S_GFP_KNOWN, S_NESTED,
	S_ERRORS, S_NOTES, S_NR,
};

static const struct row_col misuse_cols[S_NR] = {
	[S_CHECKED] = { "checked", "checked", RK_U64, .note = "allocations" },
	[S_PREEMPT_RT] = { "preempt_rt", "PREEMPT_RT rules", RK_BOOL,
			   .note = "(there any GFP under a raw lock or in a hard interrupt is an error)" },
	[S_CONTEXTS] = { "contexts", "by context", RK_COUNTS },
	[S_CTX_UNKNOWN] = { "context_unknown", "context unknown", RK_U64 },
	[S_NO_PC] = { "no_preempt_count", "no preempt count", RK_U64 },
	[S_NO_BASELINE] = { "no_baseline", "no baseline", RK_U64 },
	[S_GFP_KNOWN] = { "gfp_known", "blocking GFP known", RK_BOOL, ROW_LOUD_FALSE,
			  .note = "(__GFP_DIRECT_RECLAIM on this kernel; else not judged)" },
	[S_NESTED] = { "nested_skipped", "nested skipped", RK_U64,
		       .note = "(page allocations judged at their outer allocation)" },
	[S_ERRORS] = { "errors", "errors", RK_U64, .note = "(error rows before --top)" },
	[S_NOTES] = { "notes", "notes", RK_LINES },
};

/* the baseline preempt count per family, null where unknown: built from the family table */
static struct rows *baseline(struct rows *parent, const struct detect_report_opts *o)
{
	struct row_col cols[KMS_FAM_MAX] = {};
	const struct row_col *kept;
	struct row_cell *r;
	struct rows *t;
	int f;

	for (f = 0; f < KMS_FAM_MAX; f++) {
		cols[f].key = kms_family_name(f);
		cols[f].head = kms_family_name(f);
		cols[f].kind = RK_INT;
	}
	kept = rows__keep(parent, cols, sizeof(cols));
	if (!kept)
		return NULL;
	t = rows__new("baseline_pc", "  baseline preempt count", RS_INLINE, true, kept,
		      KMS_FAM_MAX);
	r = rows__add(t);
	for (f = 0; r && f < KMS_FAM_MAX; f++) {
		r[f].i = o->baseline_pc[f];
		r[f].null = o->baseline_pc[f] < 0;
	}
	return t;
}

struct rows *detect_report__misuse(const struct detect *d, const struct detect_report_opts *o)
{
	const struct detect_misuse_stats *ms = detect__misuse_stats(d);
	struct rows *t = rows__new("misuse", "Atomic-context misuse", RS_LINES, true, misuse_cols,
				   S_NR);
	const char *ctx[DCTX_NR];
	struct row_cell *r;
	size_t errors;
	int c;

	r = rows__add(t);
	if (!r)
		return t;
	for (c = 0; c < DCTX_NR; c++)
		ctx[c] = detect_ctx_name(c);
	r[S_CHECKED].u = ms->checked;
	r[S_PREEMPT_RT].u = ms->preempt_rt;
	r[S_CONTEXTS].names = rows__keep(t, ctx, sizeof(ctx));
	r[S_CONTEXTS].v = ms->by_ctx;
	r[S_CONTEXTS].n = DCTX_NR;
	r[S_CTX_UNKNOWN].u = ms->by_ctx[DCTX_UNKNOWN];
	r[S_NO_PC].u = ms->no_context;
	r[S_NO_BASELINE].u = ms->no_baseline;
	r[S_GFP_KNOWN].u = !ms->gfp_unknown;
	r[S_NESTED].u = ms->nested_skipped;
	r[S_NOTES].names = notes;
	r[S_NOTES].n = sizeof(notes) / sizeof(notes[0]);
	rows__child(t, baseline(t, o));
	rows__child(t, findings(d, o, &errors));
	r[S_ERRORS].u = errors;
	return t;
}

enum { H_SCHEMA, H_VERSION, H_KERNEL, H_SOURCE, H_DURATION, H_DEPTH, H_NR };

static const struct row_col header_cols[H_NR] = {
	[H_SCHEMA] = { "schema", "schema", RK_STR },
	[H_VERSION] = { "version", "version", RK_INT },
	[H_KERNEL] = { "kernel", "kernel", RK_STR },
	[H_SOURCE] = { "source", "source", RK_STR },
	[H_DURATION] = { "duration_ns", "duration", RK_NS },
	[H_DEPTH] = { "stack_depth", "stack depth", RK_INT },
};

struct rows *detect_report__misuse_doc(const struct detect *d, const struct agg *a,
				       const struct detect_report_opts *o)
{
	struct rows *doc = rows__new(NULL, "kmemscope misuse", RS_INLINE, true, header_cols,
				     H_NR);
	struct row_cell *r = rows__add(doc);

	if (!r) {
		rows__free(doc);
		return NULL;
	}
	r[H_SCHEMA].s = SCHEMA_MISUSE;
	r[H_VERSION].i = SCHEMA_MISUSE_VERSION;
	r[H_KERNEL].s = o->kernel;
	r[H_KERNEL].null = !o->kernel;
	r[H_SOURCE].s = o->source ? o->source : "live";
	r[H_DURATION].u = o->quality ? o->quality->duration_ns : 0;
	r[H_DEPTH].i = detect_report__depth(o);
	rows__child(doc, detect_report__verdict(o));
	rows__child(doc, detect_report__misuse(d, o));
	rows__child(doc, report__quality(a, o->quality));
	return doc;
}

int detect_report__misuse_text(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out)
{
	return detect_report__out(detect_report__misuse_doc(d, a, o), o, false, out);
}

int detect_report__misuse_json(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out)
{
	return detect_report__out(detect_report__misuse_doc(d, a, o), o, true, out);
}
