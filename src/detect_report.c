/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Leak, misuse and bad-free reports. Leak groups with the same displayed
 * stack (after trimming and --stack-depth) are merged, so each stack shows
 * once. Every report says how sure it is: lost records make every verdict
 * uncertain, because a lost free looks exactly like a leak.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jsonw.h"
#include "detect_report.h"
#include "gfp.h"
#include "ksyms.h"
#include "report.h"

#define SCHEMA_LEAKS	"kmemscope.leaks"
#define SCHEMA_MISUSE	"kmemscope.misuse"
/* leaks 2: rows judged one by one (confidence, reasons), retained memory apart */
#define SCHEMA_LEAKS_VERSION	2
#define SCHEMA_MISUSE_VERSION	1
#define SYM_LEN		256
#define GFP_LEN		512

static const char *const notes_irqs =
	"Interrupts disabled without preemption disabled (a bare local_irq_save() or "
	"local_irq_disable()) do not show in the preempt count on these kernels: such "
	"allocations look like process context. spin_lock_irqsave() disables preemption "
	"and is seen.";
static const char *const notes_rcu =
	"rcu_read_lock() does not change the preempt count with CONFIG_PREEMPT_RCU: a "
	"blocking allocation inside an RCU read-side section is not seen.";
static const char *const notes_free_stacks =
	"Free stacks are not captured: bad frees show the free's call site and the "
	"allocation's stack.";
static const char *const notes_unobservable =
	"frees_not_observable: an address of these sites was handed out again while the "
	"tracer still held it live, so their objects are freed by a path the kernel does "
	"not trace (RCU bulk frees, bulk slab frees). Their outstanding counts are upper "
	"bounds, not leaks.";
static const char *const notes_double_slab =
	"Double frees of slab objects are suspected, not proven: kmem_cache_alloc_bulk() "
	"(e.g. the networking skb caches) hands out objects without a trace event, so an "
	"object freed, reallocated in bulk and freed again looks like a double free.";
static const char *const notes_before =
	"allocated_before_trace counts frees of objects allocated before tracing began: "
	"expected, never an error.";

struct quality_sum {
	bool certain;
	__u64 possibly_lost;	/* records or program runs the kernel did not deliver */
};

static void quality_sum(const struct detect_report_opts *o, struct quality_sum *s)
{
	const struct kms_quality *q = o->quality;

	s->possibly_lost = q ? q->lost + q->misses + q->pending_lost : 0;
	s->certain = !q || kms_quality_complete(q);
}

static void fmt_site(const struct detect_report_opts *o, __u64 addr, char *buf, size_t len)
{
	if (!addr)
		snprintf(buf, len, "[unknown]");
	else if (o->ksyms)
		ksyms__format(o->ksyms, addr, buf, len);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
}

static void fmt_gfp(const struct detect_report_opts *o, __u32 v, char *buf, size_t len)
{
	if (o->gfp)
		gfp_table__decode(o->gfp, v, buf, len);
	else
		snprintf(buf, len, "0x%x", v);
}

static void fmt_age(__u64 ns, char *buf, size_t len)
{
	snprintf(buf, len, "%llu.%03llu s", (unsigned long long)(ns / 1000000000ULL),
		 (unsigned long long)(ns % 1000000000ULL / 1000000ULL));
}

static int depth(const struct detect_report_opts *o)
{
	if (o->stack_depth <= 0)
		return 8;
	return o->stack_depth > KMS_MAX_STACK ? KMS_MAX_STACK : o->stack_depth;
}

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

static int lrow_bytes_order(const void *pa, const void *pb)
{
	const struct lrow *a = pa, *b = pb;

	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return lrow_key_cmp(a, b);
}

enum lclass {
	LC_LEAK = 0,
	LC_UNOBSERVABLE,
	LC_RETAINED,
	LC_NESTED,
	LC_NR,
};

struct leak_view {
	struct lrow *rows[LC_NR];
	size_t nr[LC_NR];
	__u64 count[LC_NR];
	__u64 bytes[LC_NR];
	__u64 young;
	/* of the leak candidates: those nothing casts a doubt on */
	__u64 certain_count, certain_bytes;
	size_t certain_rows;
};

static void leak_view_free(struct leak_view *v)
{
	for (int c = 0; c < LC_NR; c++)
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
	for (c = 0; c < LC_NR; c++) {
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
		c = g->nested >= 0 ? LC_NESTED :
		    detect__site_unobservable(d, g->site_idx) ? LC_UNOBSERVABLE :
		    g->retained && !o->include_retained ? LC_RETAINED : LC_LEAK;
		r = &v->rows[c][v->nr[c]++];
		r->family = g->family;
		r->nested = g->nested;
		r->obj = g->obj;
		r->site = g->site;
		r->site_idx = g->site_idx;
		r->nframes = detect__frames(d, g->stack_id, g->site, r->frames, depth(o));
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
		r->doubts = detect__doubts(d, g, r->exposed);
		r->retained = g->retained;
		v->count[c] += r->count;
		v->bytes[c] += r->bytes;
	}
	free(rows);
	/* merge rows whose shown stacks are equal */
	for (c = 0; c < LC_NR; c++) {
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
	for (i = 0; i < v->nr[LC_LEAK]; i++) {
		const struct lrow *r = &v->rows[LC_LEAK][i];

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
	struct urow *u = calloc(v->nr[LC_UNOBSERVABLE] + 1, sizeof(*u));
	size_t i, j, k = 0;

	if (!u)
		return NULL;
	for (i = 0; i < v->nr[LC_UNOBSERVABLE]; i++) {
		const struct lrow *r = &v->rows[LC_UNOBSERVABLE][i];

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

static size_t shown(const struct detect_report_opts *o, size_t n)
{
	return o->top > 0 && (size_t)o->top < n ? (size_t)o->top : n;
}

static __u64 sum_fam(const __u64 *v)
{
	__u64 s = 0;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		s += v[f];
	return s;
}

static const char *comm_or(const struct detect *d, __u32 pid)
{
	const char *c = detect__comm(d, pid);

	return c && *c ? c : "?";
}

/* ---- text ---- */

static void text_frames(const struct detect_report_opts *o, const __u64 *ips, int n,
			const char *indent, FILE *out)
{
	char sym[SYM_LEN];

	for (int i = 0; i < n; i++) {
		fmt_site(o, ips[i], sym, sizeof(sym));
		fprintf(out, "%s%s\n", indent, sym);
	}
	if (!n)
		fprintf(out, "%s[no stack, no site]\n", indent);
}

/* how sure a row is, and why not more */
static void text_confidence(const struct lrow *r, FILE *out)
{
	const char *sep = "";

	if (!r->doubts) {
		fprintf(out, "        confidence: certain\n");
		return;
	}
	fprintf(out, "        confidence: UNCONFIRMED: ");
	for (int b = 0; b < DOUBT_NR_BITS; b++) {
		if (!(r->doubts & (1U << b)))
			continue;
		fprintf(out, "%s%s", sep, detect_doubt_text(b));
		if (b == 0)
			fprintf(out, " (%llu of %llu objects)", (unsigned long long)r->exposed,
				(unsigned long long)r->count);
		sep = "; ";
	}
	fputc('\n', out);
}

static void text_lrows(const struct detect *d, const struct detect_report_opts *o,
		       const struct lrow *rows, size_t nr, bool judged, FILE *out)
{
	char gfp[GFP_LEN], age[32];
	size_t i;

	for (i = 0; i < shown(o, nr); i++) {
		const struct lrow *r = &rows[i];
		const char *obj = detect__obj_name(d, r->obj);

		fmt_gfp(o, r->gfp, gfp, sizeof(gfp));
		fmt_age(o->now > r->oldest_ts ? o->now - r->oldest_ts : 0, age, sizeof(age));
		fprintf(out, "  #%zu %s%s%s%s  %llu objects, %llu bytes, oldest %s, gfp %s%s, "
			"pid %u (%s)%s\n", i + 1, kms_family_name(r->family),
			r->obj ? " " : "", r->obj ? (obj ? obj : "?") : "",
			r->nested >= 0 ? " (nested)" : "",
			(unsigned long long)r->count, (unsigned long long)r->bytes, age, gfp,
			r->gfp_mixed ? " (and others)" : "", r->pid, comm_or(d, r->pid),
			r->growth ? " GROWING" : "");
		if (judged)
			text_confidence(r, out);
		if (r->retained)
			fprintf(out, "        retained by design: %s\n",
				detect_retained_name(r->retained));
		text_frames(o, r->frames, r->nframes, "        ", out);
	}
	if (nr > shown(o, nr))
		fprintf(out, "  ... %zu more\n", nr - shown(o, nr));
}

/* slab objects come back through untraced bulk allocations; lost records hide allocations */
static bool badfree_suspected(const struct detect_badfree *b, const struct quality_sum *qs)
{
	int fam = kms_ev_family(b->alloc_type);

	return !qs->certain || (b->kind == BF_DOUBLE_FREE &&
				(fam == KMS_FAM_KMALLOC || fam == KMS_FAM_CACHE));
}

static void text_badfrees(const struct detect *d, const struct detect_report_opts *o, FILE *out)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	__u64 by_kind[BF_NR] = {};
	char a[SYM_LEN], f[SYM_LEN], ff[SYM_LEN];
	__u64 ips[KMS_MAX_STACK];
	size_t i, n = detect__nr_badfree(d);

	for (i = 0; i < n; i++)
		by_kind[detect__badfree(d, i)->kind] += detect__badfree(d, i)->count;
	struct quality_sum qs;

	quality_sum(o, &qs);
	fprintf(out, "\nBad frees\n");
	fprintf(out, "  wrong API %llu, wrong cache %llu, double free %llu; freed but allocated "
		"before tracing %llu\n", (unsigned long long)by_kind[BF_WRONG_API],
		(unsigned long long)by_kind[BF_WRONG_CACHE],
		(unsigned long long)by_kind[BF_DOUBLE_FREE],
		(unsigned long long)sum_fam(fs->unmatched));
	for (i = 0; i < shown(o, n); i++) {
		const struct detect_badfree *b = detect__badfree(d, i);
		int nf;

		fmt_site(o, b->alloc_site, a, sizeof(a));
		fmt_site(o, b->free_site, f, sizeof(f));
		fprintf(out, "  #%zu %s%s: %s of a %s object, %llu times (e.g. 0x%llx)\n", i + 1,
			detect_badfree_name(b->kind), badfree_suspected(b, &qs) ? " (suspected)" : "",
			kms_ev_name(b->free_type),
			kms_ev_name(b->alloc_type), (unsigned long long)b->count,
			(unsigned long long)b->ptr);
		fprintf(out, "      allocated at %s by pid %u (%s)\n", a, b->alloc_pid,
			comm_or(d, b->alloc_pid));
		if (b->kind == BF_DOUBLE_FREE) {
			fmt_site(o, b->first_free_site, ff, sizeof(ff));
			fprintf(out, "      freed first at %s\n", ff);
		}
		if (b->kind == BF_WRONG_CACHE)
			fprintf(out, "      allocated from cache %s, freed into cache %s\n",
				detect__obj_name(d, b->alloc_obj) ?: "?",
				detect__obj_name(d, b->free_obj) ?: "?");
		fprintf(out, "      freed %sat %s by pid %u (%s)\n",
			b->kind == BF_DOUBLE_FREE ? "again " : "", f, b->free_pid,
			comm_or(d, b->free_pid));
		nf = detect__frames(d, b->alloc_stack_id, b->alloc_site, ips, depth(o));
		if (nf > 1) {
			fprintf(out, "      allocation stack:\n");
			text_frames(o, ips, nf, "        ", out);
		}
	}
	fprintf(out, "  note: %s\n  note: %s\n", notes_free_stacks, notes_double_slab);
}

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

static int text_misuse(const struct detect *d, const struct detect_report_opts *o, FILE *out)
{
	const struct detect_misuse_stats *ms = detect__misuse_stats(d);
	struct detect_misuse *v;
	__u64 ips[KMS_MAX_STACK];
	char gfp[GFP_LEN], sym[SYM_LEN];
	size_t n, i, errs = 0, infos = 0, shown_err = 0, shown_info = 0;
	int c, f;

	v = sorted_misuse(d, &n);
	if (!v)
		return -ENOMEM;
	fprintf(out, "\nAtomic-context misuse\n");
	fprintf(out, "  allocations by context:");
	for (c = 0; c < DCTX_NR; c++)
		fprintf(out, " %s %llu%s", detect_ctx_name(c), (unsigned long long)ms->by_ctx[c],
			c + 1 < DCTX_NR ? "," : "\n");
	fprintf(out, "  context unknown: %llu without a preempt count, %llu without a baseline; "
		"%llu nested page allocations judged at their outer allocation\n",
		(unsigned long long)ms->no_context, (unsigned long long)ms->no_baseline,
		(unsigned long long)ms->nested_skipped);
	fprintf(out, "  baseline preempt count:");
	for (f = 0; f < KMS_FAM_MAX; f++) {
		if (o->baseline_pc[f] < 0)
			fprintf(out, " %s unknown", kms_family_name(f));
		else
			fprintf(out, " %s %d", kms_family_name(f), o->baseline_pc[f]);
	}
	fprintf(out, "\n");
	if (ms->gfp_unknown)
		fprintf(out, "  __GFP_DIRECT_RECLAIM unknown on this kernel: blocking GFP not "
			"judged\n");
	for (i = 0; i < n; i++) {
		if (detect_misuse_is_info(v[i].kind))
			infos++;
		else
			errs++;
	}
	if (!errs)
		fprintf(out, "  no blocking allocation in atomic context seen\n");
	for (i = 0; i < n; i++) {
		const struct detect_misuse *m = &v[i];
		bool info = detect_misuse_is_info(m->kind);
		int nf;

		if (info ? shown_info >= shown(o, infos) : shown_err >= shown(o, errs))
			continue;
		if (info && !shown_info)
			fprintf(out, "  informational (by call site):\n");
		fmt_gfp(o, m->gfp, gfp, sizeof(gfp));
		if (info) {
			fmt_site(o, m->site, sym, sizeof(sym));
			fprintf(out, "    %-22s %-16s %-10s %8llu  %s  %s%s\n",
				detect_misuse_name(m->kind), detect_ctx_name(m->ctx),
				kms_family_name(m->family), (unsigned long long)m->count, sym, gfp,
				m->kind == MIS_HIGH_ORDER_ATOMIC ? " (order >= 3)" : "");
			shown_info++;
			continue;
		}
		shown_err++;
		fprintf(out, "  #%zu %s in %s: %s, %llu times, gfp %s, preempt count 0x%x, "
			"pid %u (%s)\n", shown_err, detect_misuse_name(m->kind),
			detect_ctx_name(m->ctx), kms_family_name(m->family),
			(unsigned long long)m->count, gfp, m->pc, m->pid, comm_or(d, m->pid));
		nf = detect__frames(d, m->stack_id, m->site, ips, depth(o));
		text_frames(o, ips, nf, "        ", out);
	}
	if (errs > shown_err || infos > shown_info)
		fprintf(out, "  ... %zu more\n", errs - shown_err + infos - shown_info);
	fprintf(out, "  note: %s\n  note: %s\n", notes_irqs, notes_rcu);
	free(v);
	return 0;
}

static void text_verdict(const struct quality_sum *qs, FILE *out)
{
	if (qs->certain)
		fprintf(out, "  records               complete: no record was lost\n");
	else
		fprintf(out, "  records               INCOMPLETE: %llu records or program runs lost; "
			"any of them may be a free: objects allocated before a loss are "
			"unconfirmed\n", (unsigned long long)qs->possibly_lost);
}

static void report_opts_for_quality(const struct detect_report_opts *o, struct report_opts *ro)
{
	memset(ro, 0, sizeof(*ro));
	ro->ksyms = o->ksyms;
	ro->gfp = o->gfp;
	ro->kernel = o->kernel;
	ro->source = "live";
	ro->quality = o->quality;
}

int detect_report__leaks_text(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	struct report_opts ro;
	struct quality_sum qs;
	struct leak_view v;
	struct urow *u;
	char sym[SYM_LEN], age[32];
	size_t nu, i;
	int err;

	quality_sum(o, &qs);
	err = leak_view(d, o, &v);
	if (err)
		return err;
	u = unobservable_sites(&v, &nu);
	if (!u) {
		leak_view_free(&v);
		return -ENOMEM;
	}
	fprintf(out, "kmemscope leaks: kernel %s, live, %llu.%03llu s, min age %llu ms\n\n",
		o->kernel ? o->kernel : "?",
		(unsigned long long)(o->quality ? o->quality->duration_ns / 1000000000ULL : 0),
		(unsigned long long)(o->quality ? o->quality->duration_ns % 1000000000ULL / 1000000ULL : 0),
		(unsigned long long)(o->min_age_ns / 1000000ULL));
	fprintf(out, "Summary\n");
	fprintf(out, "  leak candidates       %llu objects, %llu bytes at %zu stacks\n",
		(unsigned long long)v.count[LC_LEAK], (unsigned long long)v.bytes[LC_LEAK],
		v.nr[LC_LEAK]);
	fprintf(out, "    certain             %llu objects, %llu bytes at %zu stacks\n",
		(unsigned long long)v.certain_count, (unsigned long long)v.certain_bytes,
		v.certain_rows);
	fprintf(out, "    unconfirmed         %llu objects, %llu bytes at %zu stacks (each row "
		"says why)\n", (unsigned long long)(v.count[LC_LEAK] - v.certain_count),
		(unsigned long long)(v.bytes[LC_LEAK] - v.certain_bytes),
		v.nr[LC_LEAK] - v.certain_rows);
	fprintf(out, "  retained by design    %llu objects, %llu bytes at %zu stacks (user and "
		"page-cache pages, reclaimable slab: not leaks)\n",
		(unsigned long long)v.count[LC_RETAINED], (unsigned long long)v.bytes[LC_RETAINED],
		v.nr[LC_RETAINED]);
	fprintf(out, "  frees not observable  %llu objects, %llu bytes at %zu sites (not leaks)\n",
		(unsigned long long)v.count[LC_UNOBSERVABLE],
		(unsigned long long)v.bytes[LC_UNOBSERVABLE], nu);
	fprintf(out, "  nested                %llu pages, %llu bytes under slab/vmalloc/percpu/dma "
		"(not in the totals above)\n", (unsigned long long)v.count[LC_NESTED],
		(unsigned long long)v.bytes[LC_NESTED]);
	fprintf(out, "  younger than min age  %llu objects\n", (unsigned long long)v.young);
	if (o->settle_ns)
		fprintf(out, "  settle                %llu ms of frees after the window; %llu "
			"allocations then not tracked\n", (unsigned long long)(o->settle_ns / 1000000),
			(unsigned long long)o->after_window);
	fprintf(out, "  implicit frees        %llu (a live address allocated again)\n",
		(unsigned long long)sum_fam(fs->implicit));
	fprintf(out, "  allocated before trace %llu (freed, allocation not seen: expected)\n",
		(unsigned long long)sum_fam(fs->unmatched));
	text_verdict(&qs, out);

	fprintf(out, "\nLeak candidates by stack (%zu of %zu)\n", shown(o, v.nr[LC_LEAK]),
		v.nr[LC_LEAK]);
	if (!v.nr[LC_LEAK])
		fprintf(out, "  (none)\n");
	text_lrows(d, o, v.rows[LC_LEAK], v.nr[LC_LEAK], true, out);

	fprintf(out, "\nRetained by design (%zu of %zu stacks)\n", shown(o, v.nr[LC_RETAINED]),
		v.nr[LC_RETAINED]);
	if (!v.nr[LC_RETAINED])
		fprintf(out, "  (none)\n");
	text_lrows(d, o, v.rows[LC_RETAINED], v.nr[LC_RETAINED], false, out);

	fprintf(out, "\nFrees not observable (%zu of %zu sites)\n", shown(o, nu), nu);
	if (nu)
		fprintf(out, "  %-44s %-10s %9s %9s %9s %11s %12s\n", "site", "family", "allocs",
			"frees", "implicit", "outstanding", "oldest");
	for (i = 0; i < shown(o, nu); i++) {
		const struct detect_site *s = detect__site(d, u[i].site_idx);

		fmt_site(o, s->site, sym, sizeof(sym));
		fmt_age(o->now > u[i].oldest_ts ? o->now - u[i].oldest_ts : 0, age, sizeof(age));
		fprintf(out, "  %-44.44s %-10s %9llu %9llu %9llu %11llu %12s\n", sym,
			kms_family_name(s->family), (unsigned long long)s->allocs,
			(unsigned long long)s->frees, (unsigned long long)s->implicit_frees,
			(unsigned long long)u[i].count, age);
	}
	if (!nu)
		fprintf(out, "  (none)\n");

	fprintf(out, "\nNested allocations (%zu of %zu stacks)\n", shown(o, v.nr[LC_NESTED]),
		v.nr[LC_NESTED]);
	if (!v.nr[LC_NESTED])
		fprintf(out, "  (none)\n");
	text_lrows(d, o, v.rows[LC_NESTED], v.nr[LC_NESTED], false, out);

	if (o->snapshots) {
		size_t g = 0;

		fprintf(out, "\nGrowth over %u snapshots (outstanding bytes grew %u intervals in a "
			"row)\n", o->snapshots, o->growth_min);
		for (i = 0; i < v.nr[LC_LEAK]; i++)
			if (v.rows[LC_LEAK][i].growth >= o->growth_min)
				g++;
		if (!g)
			fprintf(out, "  (no stack grew)\n");
		for (i = 0; i < v.nr[LC_LEAK]; i++) {
			const struct lrow *r = &v.rows[LC_LEAK][i];

			if (r->growth < o->growth_min)
				continue;
			fmt_site(o, r->nframes ? r->frames[0] : r->site, sym, sizeof(sym));
			fprintf(out, "  %-44s %-10s %llu bytes now, grew %u intervals in a row\n", sym,
				kms_family_name(r->family), (unsigned long long)r->bytes, r->growth);
		}
	}
	free(u);
	leak_view_free(&v);

	text_badfrees(d, o, out);
	if (o->misuse) {
		err = text_misuse(d, o, out);
		if (err)
			return err;
	}
	report_opts_for_quality(o, &ro);
	report__quality_text(a, &ro, out);
	fprintf(out, "\nNotes\n  %s\n  %s\n", notes_unobservable, notes_before);
	fflush(out);
	return ferror(out) ? -EIO : 0;
}

int detect_report__misuse_text(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out)
{
	struct report_opts ro;
	struct quality_sum qs;
	int err;

	quality_sum(o, &qs);
	fprintf(out, "kmemscope misuse: kernel %s, live, %llu.%03llu s\n",
		o->kernel ? o->kernel : "?",
		(unsigned long long)(o->quality ? o->quality->duration_ns / 1000000000ULL : 0),
		(unsigned long long)(o->quality ? o->quality->duration_ns % 1000000000ULL / 1000000ULL : 0));
	if (!qs.certain)
		fprintf(out, "UNCERTAIN: %llu records or program runs lost: allocations may be "
			"missing from the counts below\n", (unsigned long long)qs.possibly_lost);
	err = text_misuse(d, o, out);
	if (err)
		return err;
	report_opts_for_quality(o, &ro);
	report__quality_text(a, &ro, out);
	fflush(out);
	return ferror(out) ? -EIO : 0;
}

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
		fmt_site(o, ips[0], sym, sizeof(sym));
		fprintf(out, "  %-44s %-10s %llu bytes outstanding, grew %u intervals in a row\n",
			sym, kms_family_name(gr->family), (unsigned long long)gr->outstanding_bytes,
			detect__growth_run(gr));
	}
	if (!g)
		fprintf(out, "interval %u: no stack grew %u intervals in a row\n", tick,
			o->growth_min);
	fflush(out);
}

/* ---- JSON ---- */

static json_t *j_site(const struct detect_report_opts *o, __u64 addr, bool *fail)
{
	const struct ksym *k = o->ksyms && addr ? ksyms__resolve(o->ksyms, addr) : NULL;
	json_t *j = json_object();
	char buf[SYM_LEN];

	if (!j) {
		*fail = true;
		return NULL;
	}
	jset(j, "addr", j_hex(addr), fail);
	if (k) {
		snprintf(buf, sizeof(buf), "%s+0x%lx", k->name, (unsigned long)(addr - k->addr));
		jset(j, "symbol", json_string(buf), fail);
		jset(j, "function", json_string(k->name), fail);
	} else {
		jset(j, "symbol", json_null(), fail);
		jset(j, "function", json_null(), fail);
	}
	jset(j, "module", j_str_or_null(k ? k->module : NULL), fail);
	return j;
}

static json_t *j_stack(const struct detect_report_opts *o, const __u64 *ips, int n, bool *fail)
{
	json_t *arr = json_array();
	char sym[SYM_LEN];

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		fmt_site(o, ips[i], sym, sizeof(sym));
		jpush(arr, json_string(sym), fail);
	}
	return arr;
}

static json_t *j_gfp(const struct detect_report_opts *o, __u32 v)
{
	char buf[GFP_LEN];

	fmt_gfp(o, v, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *j_proc(const struct detect *d, __u32 pid, bool *fail)
{
	json_t *j = json_object();

	if (!j) {
		*fail = true;
		return NULL;
	}
	jset(j, "pid", json_integer(pid), fail);
	jset(j, "comm", j_str_or_null(detect__comm(d, pid)), fail);
	return j;
}

static json_t *j_doubts(unsigned int doubts, bool *fail)
{
	json_t *arr = json_array();

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (int b = 0; b < DOUBT_NR_BITS; b++)
		if (doubts & (1U << b))
			jpush(arr, json_string(detect_doubt_name(b)), fail);
	return arr;
}

/* judged: leak candidates, with a confidence; other classes are not leaks */
static json_t *j_lrows(const struct detect *d, const struct detect_report_opts *o,
		       const struct lrow *rows, size_t nr, bool judged, bool *fail)
{
	json_t *arr = json_array();
	size_t i;

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (i = 0; i < shown(o, nr) && !*fail; i++) {
		const struct lrow *r = &rows[i];
		json_t *j = json_object();

		if (!j) {
			*fail = true;
			break;
		}
		jset(j, "family", json_string(kms_family_name(r->family)), fail);
		jset(j, "nested_in", j_str_or_null(detect_nest_name(r->nested)), fail);
		jset(j, "cache", j_str_or_null(r->family == KMS_FAM_CACHE ?
					       detect__obj_name(d, r->obj) : NULL), fail);
		jset(j, "device", j_str_or_null(r->family == KMS_FAM_DMA ?
						detect__obj_name(d, r->obj) : NULL), fail);
		jset(j, "site", j_site(o, r->nframes ? r->frames[0] : r->site, fail), fail);
		jset(j, "stack", j_stack(o, r->frames, r->nframes, fail), fail);
		jset(j, "stacks_merged", json_integer(r->stacks), fail);
		jset(j, "count", j_u64(r->count), fail);
		jset(j, "bytes", j_u64(r->bytes), fail);
		jset(j, "oldest_age_ns", j_u64(o->now > r->oldest_ts ? o->now - r->oldest_ts : 0),
		     fail);
		jset(j, "gfp", j_gfp(o, r->gfp), fail);
		jset(j, "gfp_value", j_hex(r->gfp), fail);
		jset(j, "gfp_mixed", json_boolean(r->gfp_mixed), fail);
		jset(j, "example", j_proc(d, r->pid, fail), fail);
		jset(j, "growth_intervals", json_integer(r->growth), fail);
		jset(j, "confidence", !judged ? json_null() :
		     json_string(r->doubts ? "unconfirmed" : "certain"), fail);
		jset(j, "reasons", j_doubts(judged ? r->doubts : 0, fail), fail);
		jset(j, "exposed_to_loss", j_u64(r->exposed), fail);
		jset(j, "retained", j_str_or_null(detect_retained_name(r->retained)), fail);
		jset(j, "uncertain", json_boolean(judged && r->doubts), fail);
		jpush(arr, j, fail);
	}
	return arr;
}

static json_t *j_fam_counts(const __u64 *v, bool *fail)
{
	json_t *j = json_object();

	if (!j) {
		*fail = true;
		return NULL;
	}
	for (int f = 0; f < KMS_FAM_MAX; f++)
		jset(j, kms_family_name(f), j_u64(v[f]), fail);
	return j;
}

static json_t *j_badfrees(const struct detect *d, const struct detect_report_opts *o, bool *fail)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	json_t *j = json_object(), *arr = json_array();
	__u64 by_kind[BF_NR] = {};
	__u64 ips[KMS_MAX_STACK];
	struct quality_sum qs;
	size_t i, n = detect__nr_badfree(d);

	if (!j || !arr) {
		json_decref(j);
		json_decref(arr);
		*fail = true;
		return NULL;
	}
	for (i = 0; i < n; i++)
		by_kind[detect__badfree(d, i)->kind] += detect__badfree(d, i)->count;
	for (i = 0; i < BF_NR; i++)
		jset(j, detect_badfree_name(i), j_u64(by_kind[i]), fail);
	jset(j, "allocated_before_trace", j_fam_counts(fs->unmatched, fail), fail);
	jset(j, "freed_set_evicted", j_u64(fs->freed_evicted), fail);
	jset(j, "free_stacks", json_false(), fail);
	quality_sum(o, &qs);
	for (i = 0; i < shown(o, n) && !*fail; i++) {
		const struct detect_badfree *b = detect__badfree(d, i);
		json_t *r = json_object();
		int nf;

		if (!r) {
			*fail = true;
			break;
		}
		nf = detect__frames(d, b->alloc_stack_id, b->alloc_site, ips, depth(o));
		jset(r, "kind", json_string(detect_badfree_name(b->kind)), fail);
		jset(r, "alloc_event", json_string(kms_ev_name(b->alloc_type)), fail);
		jset(r, "free_event", json_string(kms_ev_name(b->free_type)), fail);
		jset(r, "count", j_u64(b->count), fail);
		jset(r, "suspected", json_boolean(badfree_suspected(b, &qs)), fail);
		jset(r, "ptr", j_hex(b->ptr), fail);
		jset(r, "alloc_site", j_site(o, b->alloc_site, fail), fail);
		jset(r, "alloc_stack", j_stack(o, ips, nf, fail), fail);
		jset(r, "alloc_cache", j_str_or_null(detect__obj_name(d, b->alloc_obj)), fail);
		jset(r, "alloc_process", j_proc(d, b->alloc_pid, fail), fail);
		jset(r, "free_site", j_site(o, b->free_site, fail), fail);
		jset(r, "free_cache", j_str_or_null(detect__obj_name(d, b->free_obj)), fail);
		jset(r, "first_free_site", b->kind == BF_DOUBLE_FREE ?
		     j_site(o, b->first_free_site, fail) : json_null(), fail);
		jset(r, "free_process", j_proc(d, b->free_pid, fail), fail);
		jpush(arr, r, fail);
	}
	jset(j, "findings", arr, fail);
	return j;
}

static json_t *j_misuse(const struct detect *d, const struct detect_report_opts *o, bool *fail)
{
	const struct detect_misuse_stats *ms = detect__misuse_stats(d);
	json_t *j = json_object(), *ctx = json_object(), *base = json_object();
	json_t *arr = json_array(), *notes = json_array();
	struct detect_misuse *v;
	__u64 ips[KMS_MAX_STACK];
	size_t n, i, errs = 0, infos = 0, ne = 0, ni = 0;
	int c;

	v = sorted_misuse(d, &n);
	if (!j || !ctx || !base || !arr || !notes || !v) {
		json_decref(j);
		json_decref(ctx);
		json_decref(base);
		json_decref(arr);
		json_decref(notes);
		free(v);
		*fail = true;
		return NULL;
	}
	for (c = 0; c < DCTX_NR; c++)
		jset(ctx, detect_ctx_name(c), j_u64(ms->by_ctx[c]), fail);
	for (c = 0; c < KMS_FAM_MAX; c++)
		jset(base, kms_family_name(c), o->baseline_pc[c] < 0 ? json_null() :
		     json_integer(o->baseline_pc[c]), fail);
	jset(j, "checked", j_u64(ms->checked), fail);
	jset(j, "contexts", ctx, fail);
	jset(j, "context_unknown", j_u64(ms->by_ctx[DCTX_UNKNOWN]), fail);
	jset(j, "no_preempt_count", j_u64(ms->no_context), fail);
	jset(j, "no_baseline", j_u64(ms->no_baseline), fail);
	jset(j, "gfp_known", json_boolean(!ms->gfp_unknown), fail);
	jset(j, "nested_skipped", j_u64(ms->nested_skipped), fail);
	jset(j, "baseline_pc", base, fail);
	for (i = 0; i < n; i++) {
		if (detect_misuse_is_info(v[i].kind))
			infos++;
		else
			errs++;
	}
	for (i = 0; i < n && !*fail; i++) {
		const struct detect_misuse *m = &v[i];
		bool info = detect_misuse_is_info(m->kind);
		json_t *r;
		int nf;

		if (info ? ni >= shown(o, infos) : ne >= shown(o, errs))
			continue;
		if (info)
			ni++;
		else
			ne++;
		r = json_object();
		if (!r) {
			*fail = true;
			break;
		}
		nf = detect__frames(d, m->stack_id, m->site, ips, depth(o));
		jset(r, "kind", json_string(detect_misuse_name(m->kind)), fail);
		jset(r, "severity", json_string(info ? "info" : "error"), fail);
		jset(r, "context", json_string(detect_ctx_name(m->ctx)), fail);
		jset(r, "family", json_string(kms_family_name(m->family)), fail);
		jset(r, "count", j_u64(m->count), fail);
		jset(r, "gfp", j_gfp(o, m->gfp), fail);
		jset(r, "gfp_value", j_hex(m->gfp), fail);
		jset(r, "preempt_count", j_hex(m->pc), fail);
		if (m->family == KMS_FAM_PAGE)
			jset(r, "order", json_integer(m->order), fail);
		jset(r, "site", j_site(o, m->site, fail), fail);
		jset(r, "stack", j_stack(o, ips, nf, fail), fail);
		jset(r, "cache", j_str_or_null(m->family == KMS_FAM_CACHE ?
					       detect__obj_name(d, m->obj) : NULL), fail);
		jset(r, "example", j_proc(d, m->pid, fail), fail);
		jpush(arr, r, fail);
	}
	jset(j, "errors", j_u64(errs), fail);
	jset(j, "findings", arr, fail);
	jpush(notes, json_string(notes_irqs), fail);
	jpush(notes, json_string(notes_rcu), fail);
	jset(j, "notes", notes, fail);
	free(v);
	return j;
}

static json_t *j_root(const char *schema, int version, const struct detect_report_opts *o,
		      bool *fail)
{
	json_t *root = json_object();

	if (!root) {
		*fail = true;
		return NULL;
	}
	jset(root, "schema", json_string(schema), fail);
	jset(root, "version", json_integer(version), fail);
	jset(root, "kernel", j_str_or_null(o->kernel), fail);
	jset(root, "source", json_string("live"), fail);
	jset(root, "duration_ns", j_u64(o->quality ? o->quality->duration_ns : 0), fail);
	return root;
}

static int j_dump(json_t *root, bool fail, FILE *out)
{
	int err = 0;

	if (fail)
		err = -ENOMEM;
	else if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF)
		err = -EIO;
	else if (fflush(out) || ferror(out))
		err = -EIO;
	json_decref(root);
	return err;
}

static json_t *j_verdict(const struct quality_sum *qs, bool *fail)
{
	json_t *j = json_object();

	if (!j) {
		*fail = true;
		return NULL;
	}
	jset(j, "certain", json_boolean(qs->certain), fail);
	jset(j, "records_lost", j_u64(qs->possibly_lost), fail);
	jset(j, "reason", qs->certain ? json_null() :
	     json_string("records were lost: a lost free looks like a leak, so objects "
			 "allocated before a loss are unconfirmed"), fail);
	return j;
}

int detect_report__leaks_json(const struct detect *d, const struct agg *a,
			      const struct detect_report_opts *o, FILE *out)
{
	const struct detect_free_stats *fs = detect__free_stats(d);
	struct report_opts ro;
	struct quality_sum qs;
	struct leak_view v;
	struct urow *u;
	json_t *root, *sum, *un, *growth, *notes;
	bool fail = false;
	size_t nu, i;
	int err;

	quality_sum(o, &qs);
	err = leak_view(d, o, &v);
	if (err)
		return err;
	u = unobservable_sites(&v, &nu);
	root = j_root(SCHEMA_LEAKS, SCHEMA_LEAKS_VERSION, o, &fail);
	sum = json_object();
	un = json_array();
	growth = json_array();
	notes = json_array();
	if (!u || !root || !sum || !un || !growth || !notes) {
		json_decref(root);
		json_decref(sum);
		json_decref(un);
		json_decref(growth);
		json_decref(notes);
		free(u);
		leak_view_free(&v);
		return -ENOMEM;
	}
	jset(root, "min_age_ms", j_u64(o->min_age_ns / 1000000ULL), &fail);
	jset(root, "stack_depth", json_integer(depth(o)), &fail);
	jset(root, "verdict", j_verdict(&qs, &fail), &fail);
	jset(sum, "leak_objects", j_u64(v.count[LC_LEAK]), &fail);
	jset(sum, "leak_bytes", j_u64(v.bytes[LC_LEAK]), &fail);
	jset(sum, "leak_stacks", j_u64(v.nr[LC_LEAK]), &fail);
	jset(sum, "certain_leak_objects", j_u64(v.certain_count), &fail);
	jset(sum, "certain_leak_bytes", j_u64(v.certain_bytes), &fail);
	jset(sum, "certain_leak_stacks", j_u64(v.certain_rows), &fail);
	jset(sum, "retained_objects", j_u64(v.count[LC_RETAINED]), &fail);
	jset(sum, "retained_bytes", j_u64(v.bytes[LC_RETAINED]), &fail);
	jset(sum, "retained_stacks", j_u64(v.nr[LC_RETAINED]), &fail);
	jset(sum, "settle_ms", j_u64(o->settle_ns / 1000000), &fail);
	jset(sum, "allocated_while_settling", j_u64(o->after_window), &fail);
	jset(sum, "unobservable_objects", j_u64(v.count[LC_UNOBSERVABLE]), &fail);
	jset(sum, "unobservable_bytes", j_u64(v.bytes[LC_UNOBSERVABLE]), &fail);
	jset(sum, "unobservable_sites", j_u64(nu), &fail);
	jset(sum, "nested_objects", j_u64(v.count[LC_NESTED]), &fail);
	jset(sum, "nested_bytes", j_u64(v.bytes[LC_NESTED]), &fail);
	jset(sum, "younger_than_min_age", j_u64(v.young), &fail);
	jset(sum, "live_objects", j_u64(detect__nr_live(d)), &fail);
	jset(sum, "implicit_frees", j_fam_counts(fs->implicit, &fail), &fail);
	jset(sum, "allocated_before_trace", j_fam_counts(fs->unmatched, &fail), &fail);
	jset(sum, "page_split_frees", j_u64(fs->page_split_frees), &fail);
	jset(root, "summary", sum, &fail);
	jset(root, "leaks", j_lrows(d, o, v.rows[LC_LEAK], v.nr[LC_LEAK], true, &fail), &fail);
	jset(root, "retained", j_lrows(d, o, v.rows[LC_RETAINED], v.nr[LC_RETAINED], false, &fail),
	     &fail);
	for (i = 0; i < shown(o, nu) && !fail; i++) {
		const struct detect_site *s = detect__site(d, u[i].site_idx);
		json_t *r = json_object();

		if (!r) {
			fail = true;
			break;
		}
		jset(r, "family", json_string(kms_family_name(s->family)), &fail);
		jset(r, "site", j_site(o, s->site, &fail), &fail);
		jset(r, "cache", j_str_or_null(s->family == KMS_FAM_CACHE ?
					       detect__obj_name(d, s->obj) : NULL), &fail);
		jset(r, "allocs", j_u64(s->allocs), &fail);
		jset(r, "frees", j_u64(s->frees), &fail);
		jset(r, "implicit_frees", j_u64(s->implicit_frees), &fail);
		jset(r, "outstanding", j_u64(u[i].count), &fail);
		jset(r, "outstanding_bytes", j_u64(u[i].bytes), &fail);
		jset(r, "oldest_age_ns", j_u64(o->now > u[i].oldest_ts ? o->now - u[i].oldest_ts : 0),
		     &fail);
		jpush(un, r, &fail);
	}
	jset(root, "frees_not_observable", un, &fail);
	jset(root, "nested", j_lrows(d, o, v.rows[LC_NESTED], v.nr[LC_NESTED], false, &fail), &fail);
	for (i = 0; i < v.nr[LC_LEAK] && o->snapshots && !fail; i++) {
		const struct lrow *r = &v.rows[LC_LEAK][i];
		json_t *g;

		if (r->growth < o->growth_min)
			continue;
		g = json_object();
		if (!g) {
			fail = true;
			break;
		}
		jset(g, "family", json_string(kms_family_name(r->family)), &fail);
		jset(g, "site", j_site(o, r->nframes ? r->frames[0] : r->site, &fail), &fail);
		jset(g, "stack", j_stack(o, r->frames, r->nframes, &fail), &fail);
		jset(g, "bytes", j_u64(r->bytes), &fail);
		jset(g, "growth_intervals", json_integer(r->growth), &fail);
		jpush(growth, g, &fail);
	}
	jset(root, "snapshots", json_integer(o->snapshots), &fail);
	jset(root, "growth", growth, &fail);
	jset(root, "bad_frees", j_badfrees(d, o, &fail), &fail);
	if (o->misuse)
		jset(root, "misuse", j_misuse(d, o, &fail), &fail);
	report_opts_for_quality(o, &ro);
	jset(root, "quality", report__quality_json(a, &ro), &fail);
	jpush(notes, json_string(notes_unobservable), &fail);
	jpush(notes, json_string(notes_before), &fail);
	jpush(notes, json_string(notes_free_stacks), &fail);
	jpush(notes, json_string(notes_double_slab), &fail);
	jset(root, "notes", notes, &fail);
	free(u);
	leak_view_free(&v);
	return j_dump(root, fail, out);
}

int detect_report__misuse_json(const struct detect *d, const struct agg *a,
			       const struct detect_report_opts *o, FILE *out)
{
	struct report_opts ro;
	struct quality_sum qs;
	bool fail = false;
	json_t *root;

	quality_sum(o, &qs);
	root = j_root(SCHEMA_MISUSE, SCHEMA_MISUSE_VERSION, o, &fail);
	if (!root)
		return -ENOMEM;
	jset(root, "stack_depth", json_integer(depth(o)), &fail);
	jset(root, "verdict", j_verdict(&qs, &fail), &fail);
	jset(root, "misuse", j_misuse(d, o, &fail), &fail);
	report_opts_for_quality(o, &ro);
	jset(root, "quality", report__quality_json(a, &ro), &fail);
	return j_dump(root, fail, out);
}

int detect_report__misuse_section_text(const struct detect *d, const struct detect_report_opts *o,
				       FILE *out)
{
	return text_misuse(d, o, out);
}

json_t *detect_report__misuse_section_json(const struct detect *d,
					   const struct detect_report_opts *o)
{
	bool fail = false;
	json_t *j = j_misuse(d, o, &fail);

	if (fail) {
		json_decref(j);
		return NULL;
	}
	return j;
}
