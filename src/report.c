/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `kmemscope stat` reports: a perf-kmem-like text layout and the versioned
 * JSON of docs/json-schema.md. Both read the aggregation through agg.h and
 * both always carry the data-quality block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jsonw.h"
#include "report.h"
#include "gfp.h"
#include "ksyms.h"

#define SCHEMA_STAT	"kmemscope.stat"
#define SCHEMA_VERSION	1
#define ORDERS_ALWAYS	11	/* orders 0..10 are always listed */
#define SYM_LEN		256
#define GFP_LEN		512
#define TEXT_SYM_WIDTH	40

/* ---- sort keys (perf kmem style: a table of {name, compare}) ---- */

typedef int (*site_cmp_t)(const struct agg_site *a, const struct agg_site *b);

static int cmp_u64_desc(__u64 a, __u64 b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int cmp_allocs(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->allocs, b->allocs);
}

static int cmp_bytes(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->bytes_alloc, b->bytes_alloc);
}

static int cmp_req(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->bytes_req, b->bytes_req);
}

static __u64 site_waste(const struct agg_site *s)
{
	return s->bytes_alloc > s->bytes_req ? s->bytes_alloc - s->bytes_req : 0;
}

static int cmp_waste(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(site_waste(a), site_waste(b));
}

static int cmp_outstanding(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->outstanding, b->outstanding);
}

static int cmp_outstanding_bytes(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->outstanding_bytes, b->outstanding_bytes);
}

static int cmp_frees(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->frees, b->frees);
}

static int cmp_fails(const struct agg_site *a, const struct agg_site *b)
{
	return cmp_u64_desc(a->fails, b->fails);
}

static const struct sort_key {
	const char *name;
	site_cmp_t cmp;
} sort_keys[] = {
	{ "allocs", cmp_allocs },
	{ "count", cmp_allocs },	/* perf kmem's name */
	{ "bytes", cmp_bytes },
	{ "req", cmp_req },
	{ "waste", cmp_waste },
	{ "outstanding", cmp_outstanding },
	{ "outstanding_bytes", cmp_outstanding_bytes },
	{ "frees", cmp_frees },
	{ "fails", cmp_fails },
};

#define NR_SORT_KEYS (sizeof(sort_keys) / sizeof(sort_keys[0]))

const char *report__sort_keys(void)
{
	return "allocs,count,bytes,req,waste,outstanding,outstanding_bytes,frees,fails";
}

int report__parse_sort(const char *spec, struct report_opts *o, const char **bad)
{
	/* *bad must outlive the call: the offending key is kept here */
	static char bad_key[64];
	const char *p = spec ? spec : "";
	int nr = 0;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		size_t i;

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		for (i = 0; i < NR_SORT_KEYS; i++)
			if (strlen(sort_keys[i].name) == len && !strncmp(sort_keys[i].name, p, len))
				break;
		if (i == NR_SORT_KEYS || nr == REPORT_MAX_SORT) {
			snprintf(bad_key, sizeof(bad_key), "%.*s", (int)len, p);
			if (bad)
				*bad = bad_key;
			return -EINVAL;
		}
		o->sort[nr++] = i;
		if (!end)
			break;
		p = end + 1;
	}
	o->nr_sort = nr;
	return 0;
}

static int site_order(const void *pa, const void *pb, void *ctx)
{
	const struct agg_site *a = *(const struct agg_site *const *)pa;
	const struct agg_site *b = *(const struct agg_site *const *)pb;
	const struct report_opts *o = ctx;
	int i, r;

	for (i = 0; i < o->nr_sort; i++) {
		if (o->sort[i] < 0 || o->sort[i] >= (int)NR_SORT_KEYS)
			continue;
		r = sort_keys[o->sort[i]].cmp(a, b);
		if (r)
			return r;
	}
	if (!o->nr_sort) {
		/* no keys given: bytes, then allocs */
		r = cmp_bytes(a, b);
		if (r)
			return r;
		r = cmp_allocs(a, b);
		if (r)
			return r;
	}
	/* stable across runs: by address, family, object */
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->family != b->family)
		return a->family - b->family;
	return a->obj < b->obj ? -1 : a->obj > b->obj;
}

/* sites in report order; *nr is how many to show (top) */
static const struct agg_site **sorted_sites(const struct agg *a, const struct report_opts *o,
					    size_t *nr, size_t *total)
{
	size_t n = agg__nr_sites(a), i;
	const struct agg_site **v = malloc((n ? n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = agg__site(a, i);
	qsort_r(v, n, sizeof(*v), site_order, (void *)o);
	*total = n;
	*nr = o->top > 0 && (size_t)o->top < n ? (size_t)o->top : n;
	return v;
}

static int gfp_order(const void *pa, const void *pb)
{
	const struct agg_gfp *a = *(const struct agg_gfp *const *)pa;
	const struct agg_gfp *b = *(const struct agg_gfp *const *)pb;
	int r = cmp_u64_desc(a->allocs, b->allocs);

	if (r)
		return r;
	return a->value < b->value ? -1 : a->value > b->value;
}

static int cache_order(const void *pa, const void *pb)
{
	const struct agg_cache *a = *(const struct agg_cache *const *)pa;
	const struct agg_cache *b = *(const struct agg_cache *const *)pb;
	int r = cmp_u64_desc(a->allocs, b->allocs);

	if (r)
		return r;
	r = cmp_u64_desc(a->outstanding_bytes, b->outstanding_bytes);
	if (r)
		return r;
	return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

static int proc_order(const void *pa, const void *pb)
{
	const struct agg_proc *a = *(const struct agg_proc *const *)pa;
	const struct agg_proc *b = *(const struct agg_proc *const *)pb;
	int r = cmp_u64_desc(a->bytes_alloc, b->bytes_alloc);

	if (r)
		return r;
	r = cmp_u64_desc(a->allocs, b->allocs);
	if (r)
		return r;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

/* generic "pointers to rows, sorted, limited to top" for the smaller tables */
static const void **sorted_rows(const struct agg *a, size_t n,
				const void *(*get)(const struct agg *, size_t),
				bool (*keep)(const void *), int (*cmp)(const void *, const void *),
				int top, size_t *nr)
{
	const void **v = malloc((n ? n : 1) * sizeof(*v));
	size_t i, k = 0;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++) {
		const void *r = get(a, i);

		if (!keep || keep(r))
			v[k++] = r;
	}
	qsort(v, k, sizeof(*v), cmp);
	*nr = top > 0 && (size_t)top < k ? (size_t)top : k;
	return v;
}

static const void *get_gfp(const struct agg *a, size_t i)
{
	return agg__gfp(a, i);
}

static const void *get_cache(const struct agg *a, size_t i)
{
	return agg__cache(a, i);
}

static const void *get_proc(const struct agg *a, size_t i)
{
	return agg__proc(a, i);
}

/* processes known only by name (a free by another process, a comm record) are not rows */
static bool proc_keep(const void *r)
{
	const struct agg_proc *p = r;
	__u64 n = 0;

	for (int t = 0; t < KMS_EV_NR_EVENTS; t++)
		n += p->events[t];
	return n;
}

/* ---- shared helpers ---- */

struct site_sym {
	char symbol[SYM_LEN];	/* "func+0x1f", "" when unresolved */
	char text[SYM_LEN];	/* "func+0x1f [mod]" or "0xffff..." */
	const char *function;
	const char *module;
};

static void site_symbol(const struct report_opts *o, __u64 addr, struct site_sym *s)
{
	const struct ksym *k = NULL;

	s->symbol[0] = '\0';
	s->function = NULL;
	s->module = NULL;
	if (o->ksyms && addr)
		k = ksyms__resolve(o->ksyms, addr);
	if (k) {
		snprintf(s->symbol, sizeof(s->symbol), "%s+0x%lx", k->name,
			 (unsigned long)(addr - k->addr));
		s->function = k->name;
		s->module = k->module;
		ksyms__format(o->ksyms, addr, s->text, sizeof(s->text));
	} else if (addr) {
		snprintf(s->text, sizeof(s->text), "0x%llx", (unsigned long long)addr);
	} else {
		snprintf(s->text, sizeof(s->text), "[unknown]");
	}
}

static void gfp_name(const struct report_opts *o, __u32 value, char *buf, size_t len)
{
	if (o->gfp)
		gfp_table__decode(o->gfp, value, buf, len);
	else
		snprintf(buf, len, "0x%x", value);
}

static const char *site_obj_name(const struct agg *a, const struct agg_site *s)
{
	if (!s->obj)
		return NULL;
	if (s->family == KMS_FAM_CACHE)
		return agg__cache_name(a, s->obj);
	if (s->family == KMS_FAM_DMA)
		return agg__device_name(a, s->obj);
	if (s->family == KMS_FAM_VMALLOC && s->obj == KMS_OBJ_NESTED)
		return "(nested)";
	return NULL;
}

/* the quality the report prints: the collector's, plus what only agg knows */
struct quality_view {
	struct kms_quality q;
	__u64 unmatched_frees;
	__u64 realloc_without_free;
	__u64 page_split_frees;
	__u64 not_counted;	/* events a table could not grow for */
	bool complete;
};

static void quality_view(const struct agg *a, const struct report_opts *o,
			 struct quality_view *v)
{
	const struct agg_stats *st = agg__stats(a);
	int f;

	memset(v, 0, sizeof(*v));
	if (o->quality) {
		v->q = *o->quality;
	} else {
		/* no collector numbers (a bare aggregation): what agg saw */
		v->q.events = st->events + st->metas;
		v->q.duration_ns = st->last_ts > st->first_ts ? st->last_ts - st->first_ts : 0;
		for (f = 0; f < KMS_FAM_MAX; f++)
			v->q.traced[f] = true;
	}
	/* frees from outside the filters that freed nothing of ours */
	v->q.filtered += st->filtered;
	v->unmatched_frees = st->unmatched_frees;
	v->realloc_without_free = st->realloc_without_free;
	v->page_split_frees = st->page_split_frees;
	v->not_counted = st->nomem;
	v->complete = kms_quality_complete(&v->q) && !v->not_counted;
}

static const char *method_name(const struct kms_quality *q, int f)
{
	return q->method[f] ? q->method[f] : "-";
}

/* ---- text ---- */

static void text_families(const struct agg *a, const struct quality_view *v, FILE *out)
{
	int f;

	fprintf(out, "Families\n");
	fprintf(out, "  %-10s %-6s %-7s %10s %10s %9s %7s %13s %13s %12s %11s %13s\n",
		"family", "traced", "method", "allocs", "frees", "unmatched", "fails",
		"bytes_req", "bytes_alloc", "waste", "outstanding", "outst_bytes");
	for (f = 0; f < KMS_FAM_MAX; f++) {
		const struct agg_counts *c = agg__family(a, f);

		fprintf(out, "  %-10s %-6s %-7s %10llu %10llu %9llu %7llu %13llu %13llu %12llu "
			"%11llu %13llu\n",
			kms_family_name(f), v->q.traced[f] ? "yes" : v->q.skipped[f] ? "off" : "NO",
			method_name(&v->q, f),
			(unsigned long long)c->allocs, (unsigned long long)c->frees,
			(unsigned long long)c->unmatched_frees, (unsigned long long)c->fails,
			(unsigned long long)c->bytes_req, (unsigned long long)c->bytes_alloc,
			(unsigned long long)(c->bytes_alloc > c->bytes_req ?
					     c->bytes_alloc - c->bytes_req : 0),
			(unsigned long long)c->outstanding,
			(unsigned long long)c->outstanding_bytes);
	}
}

static void sort_desc(const struct report_opts *o, char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	if (!o->nr_sort) {
		snprintf(buf, len, "bytes,allocs");
		return;
	}
	for (i = 0; i < o->nr_sort && off < len; i++) {
		if (o->sort[i] < 0 || o->sort[i] >= (int)NR_SORT_KEYS)
			continue;
		off += snprintf(buf + off, len - off, "%s%s", off ? "," : "",
				sort_keys[o->sort[i]].name);
	}
}

static int text_sites(const struct agg *a, const struct report_opts *o, FILE *out)
{
	const struct agg_site **v;
	size_t nr, total, i;
	char keys[128];

	v = sorted_sites(a, o, &nr, &total);
	if (!v)
		return -ENOMEM;
	sort_desc(o, keys, sizeof(keys));
	fprintf(out, "\nTop call sites by %s (%zu of %zu)\n", keys, nr, total);
	fprintf(out, "  %-*s %-10s %-20s %10s %10s %13s %13s %12s %11s %13s\n",
		TEXT_SYM_WIDTH, "call site", "family", "cache/device", "allocs", "frees",
		"bytes_req", "bytes_alloc", "waste", "outstanding", "outst_bytes");
	for (i = 0; i < nr; i++) {
		const struct agg_site *s = v[i];
		const char *obj = site_obj_name(a, s);
		struct site_sym sym;
		char objbuf[24];

		site_symbol(o, s->addr, &sym);
		if (!obj && s->obj) {
			snprintf(objbuf, sizeof(objbuf), "0x%llx", (unsigned long long)s->obj);
			obj = objbuf;
		}
		fprintf(out, "  %-*.*s %-10s %-20.20s %10llu %10llu %13llu %13llu %12llu %11llu "
			"%13llu\n",
			TEXT_SYM_WIDTH, TEXT_SYM_WIDTH, sym.text, kms_family_name(s->family),
			obj ? obj : "-",
			(unsigned long long)s->allocs, (unsigned long long)s->frees,
			(unsigned long long)s->bytes_req, (unsigned long long)s->bytes_alloc,
			(unsigned long long)site_waste(s), (unsigned long long)s->outstanding,
			(unsigned long long)s->outstanding_bytes);
	}
	if (!total)
		fprintf(out, "  (no allocations)\n");
	free(v);
	return 0;
}

static int text_gfp(const struct agg *a, const struct report_opts *o, FILE *out)
{
	const void **v;
	size_t nr, i;
	char buf[GFP_LEN];

	v = sorted_rows(a, agg__nr_gfp(a), get_gfp, NULL, gfp_order, o->top, &nr);
	if (!v)
		return -ENOMEM;
	fprintf(out, "\nGFP flags (%zu of %zu)\n", nr, agg__nr_gfp(a));
	fprintf(out, "  %10s %13s %-10s %s\n", "allocs", "bytes_alloc", "value", "flags");
	for (i = 0; i < nr; i++) {
		const struct agg_gfp *g = v[i];
		char hex[16];

		gfp_name(o, g->value, buf, sizeof(buf));
		snprintf(hex, sizeof(hex), "0x%x", g->value);
		fprintf(out, "  %10llu %13llu %-10s %s\n", (unsigned long long)g->allocs,
			(unsigned long long)g->bytes_alloc, hex, buf);
	}
	free(v);
	return 0;
}

static void text_orders(const struct agg *a, FILE *out)
{
	__u64 any = 0;
	int i;

	fprintf(out, "\nPage orders\n");
	for (i = 0; i < AGG_NR_ORDERS; i++)
		any |= agg__order(a, i)->allocs | agg__order(a, i)->frees;
	if (!any) {
		fprintf(out, "  (no page events)\n");
		return;
	}
	fprintf(out, "  %5s %10s %10s\n", "order", "allocs", "frees");
	for (i = 0; i < AGG_NR_ORDERS; i++) {
		const struct agg_order *r = agg__order(a, i);

		if (i >= ORDERS_ALWAYS && !r->allocs && !r->frees)
			continue;
		fprintf(out, "  %5d %10llu %10llu\n", i, (unsigned long long)r->allocs,
			(unsigned long long)r->frees);
	}
}

static void text_sizes(const struct agg *a, FILE *out)
{
	bool any = false;
	int i;

	fprintf(out, "\nAllocation sizes (bytes_alloc)\n");
	fprintf(out, "  %23s %10s\n", "bytes", "allocs");
	for (i = 0; i < AGG_NR_SIZES; i++) {
		__u64 min, max, n = agg__size_bucket(a, i, &min, &max);
		char range[32];

		if (!n)
			continue;
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)min,
			 (unsigned long long)max);
		fprintf(out, "  %23s %10llu\n", range, (unsigned long long)n);
		any = true;
	}
	if (!any)
		fprintf(out, "  (no allocations)\n");
}

static int text_caches(const struct agg *a, const struct report_opts *o, FILE *out)
{
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_caches(a), get_cache, NULL, cache_order, o->top, &nr);
	if (!v)
		return -ENOMEM;
	fprintf(out, "\nSlab caches (%zu of %zu)\n", nr, agg__nr_caches(a));
	fprintf(out, "  %-24s %8s %8s %10s %10s %11s %13s\n", "cache", "objsize", "size",
		"allocs", "frees", "outstanding", "outst_bytes");
	for (i = 0; i < nr; i++) {
		const struct agg_cache *c = v[i];
		char name[KMS_NAME_LEN + 4];

		if (c->known)
			snprintf(name, sizeof(name), "%s", c->name);
		else
			snprintf(name, sizeof(name), "0x%llx", (unsigned long long)c->ptr);
		fprintf(out, "  %-24s %8u %8u %10llu %10llu %11llu %13llu\n", name,
			c->object_size, c->size, (unsigned long long)c->allocs,
			(unsigned long long)c->frees, (unsigned long long)c->outstanding,
			(unsigned long long)c->outstanding_bytes);
	}
	free(v);
	return 0;
}

static int text_procs(const struct agg *a, const struct report_opts *o, FILE *out)
{
	const void **v;
	size_t nr, i, total = 0;

	v = sorted_rows(a, agg__nr_procs(a), get_proc, proc_keep, proc_order, o->top, &nr);
	if (!v)
		return -ENOMEM;
	for (i = 0; i < agg__nr_procs(a); i++)
		total += proc_keep(agg__proc(a, i));
	fprintf(out, "\nProcesses (%zu of %zu)\n", nr, total);
	fprintf(out, "  %8s %-16s %10s %13s %10s\n", "pid", "comm", "allocs", "bytes_alloc",
		"events");
	for (i = 0; i < nr; i++) {
		const struct agg_proc *p = v[i];
		__u64 events = 0;
		int t;

		for (t = 0; t < KMS_EV_NR_EVENTS; t++)
			events += p->events[t];
		fprintf(out, "  %8u %-16s %10llu %13llu %10llu\n", p->pid,
			p->comm[0] ? p->comm : "?", (unsigned long long)p->allocs,
			(unsigned long long)p->bytes_alloc, (unsigned long long)events);
	}
	free(v);
	return 0;
}

static void text_nodes(const struct agg *a, FILE *out)
{
	int n;

	fprintf(out, "\nNUMA nodes\n");
	fprintf(out, "  %4s %10s %13s\n", "node", "allocs", "bytes_alloc");
	for (n = 0; n < agg__nr_nodes(a); n++) {
		const struct agg_node *r = agg__node(a, n);

		fprintf(out, "  %4d %10llu %13llu\n", n, (unsigned long long)r->allocs,
			(unsigned long long)r->bytes_alloc);
	}
}

static void text_quality(const struct quality_view *v, FILE *out)
{
	const struct kms_quality *q = &v->q;
	bool any = false;
	int f;

	fprintf(out, "\nData quality\n");
	fprintf(out, "  duration              %llu.%03llu s\n",
		(unsigned long long)(q->duration_ns / 1000000000ULL),
		(unsigned long long)(q->duration_ns % 1000000000ULL / 1000000ULL));
	fprintf(out, "  events                %llu\n", (unsigned long long)q->events);
	fprintf(out, "  lost                  %llu\n", (unsigned long long)q->lost);
	fprintf(out, "  misses                %llu\n", (unsigned long long)q->misses);
	for (int i = 0; i < q->nr_event_misses; i++)
		if (q->event_misses[i].misses)
			fprintf(out, "    %-19s %llu\n", q->event_misses[i].name,
				(unsigned long long)q->event_misses[i].misses);
	if (q->rescued)
		fprintf(out, "  rescued               %llu (recorded by shadow programs, not missed)\n",
			(unsigned long long)q->rescued);
	fprintf(out, "  stack failures        %llu\n", (unsigned long long)q->stack_failures);
	fprintf(out, "  out of order          %llu\n", (unsigned long long)q->out_of_order);
	fprintf(out, "  returns without entry %llu\n", (unsigned long long)q->pending_lost);
	fprintf(out, "  filtered              %llu\n", (unsigned long long)q->filtered);
	fprintf(out, "  unmatched frees       %llu (allocated before tracing, or alloc lost)\n",
		(unsigned long long)v->unmatched_frees);
	fprintf(out, "  realloc without free  %llu (a live address allocated again)\n",
		(unsigned long long)v->realloc_without_free);
	if (v->not_counted)
		fprintf(out, "  not counted           %llu (out of memory)\n",
			(unsigned long long)v->not_counted);
	fprintf(out, "  families not traced   ");
	for (f = 0; f < KMS_FAM_MAX; f++) {
		if (q->traced[f] || q->skipped[f])
			continue;
		fprintf(out, "%s%s", any ? ", " : "", kms_family_name(f));
		any = true;
	}
	fprintf(out, "%s\n", any ? "" : "none");
	fprintf(out, "  complete              %s\n", v->complete ? "yes" : "NO");
	if (!v->complete)
		fprintf(out, "\n!!! INCOMPLETE DATA: %llu records lost, %llu program runs missed, "
			"%llu out of order, %llu returns without entry, %llu not counted: every "
			"count above is a lower bound and frees may show as unmatched !!!\n",
			(unsigned long long)q->lost, (unsigned long long)q->misses,
			(unsigned long long)q->out_of_order, (unsigned long long)q->pending_lost,
			(unsigned long long)v->not_counted);
}

int report__stat_text(const struct agg *a, const struct report_opts *o, FILE *out)
{
	struct quality_view v;
	int err;

	quality_view(a, o, &v);
	fprintf(out, "kmemscope stat: kernel %s, %s, %llu.%03llu s\n\n",
		o->kernel ? o->kernel : "?", o->source ? o->source : "live",
		(unsigned long long)(v.q.duration_ns / 1000000000ULL),
		(unsigned long long)(v.q.duration_ns % 1000000000ULL / 1000000ULL));
	text_families(a, &v, out);
	err = text_sites(a, o, out);
	if (!err)
		err = text_gfp(a, o, out);
	if (err)
		return err;
	text_orders(a, out);
	text_sizes(a, out);
	err = text_caches(a, o, out);
	if (!err)
		err = text_procs(a, o, out);
	if (err)
		return err;
	text_nodes(a, out);
	if (o->extra_text) {
		err = o->extra_text(o->extra_ctx, out);
		if (err)
			return err;
	}
	text_quality(&v, out);
	fflush(out);
	return ferror(out) ? -EIO : 0;
}

/* ---- JSON ---- */

static json_t *json_families(const struct agg *a, const struct quality_view *v, bool *fail)
{
	json_t *arr = json_array();
	int f;

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (f = 0; f < KMS_FAM_MAX; f++) {
		const struct agg_counts *c = agg__family(a, f);
		json_t *o = json_object();

		if (!o) {
			*fail = true;
			break;
		}
		jset(o, "family", json_string(kms_family_name(f)), fail);
		jset(o, "traced", json_boolean(v->q.traced[f]), fail);
		jset(o, "requested", json_boolean(!v->q.skipped[f]), fail);
		jset(o, "method", j_str_or_null(v->q.method[f]), fail);
		jset(o, "allocs", j_u64(c->allocs), fail);
		jset(o, "frees", j_u64(c->frees), fail);
		jset(o, "fails", j_u64(c->fails), fail);
		jset(o, "unmatched_frees", j_u64(c->unmatched_frees), fail);
		jset(o, "bytes_req", j_u64(c->bytes_req), fail);
		jset(o, "bytes_alloc", j_u64(c->bytes_alloc), fail);
		jset(o, "waste", j_u64(c->bytes_alloc > c->bytes_req ?
				       c->bytes_alloc - c->bytes_req : 0), fail);
		jset(o, "outstanding", j_u64(c->outstanding), fail);
		jset(o, "outstanding_bytes", j_u64(c->outstanding_bytes), fail);
		jset(o, "realloc_without_free", j_u64(c->realloc_without_free), fail);
		jpush(arr, o, fail);
	}
	return arr;
}

static json_t *json_site(const struct agg *a, const struct report_opts *o,
			 const struct agg_site *s, bool *fail)
{
	json_t *j = json_object(), *gfp = json_array(), *orders = json_array();
	char buf[GFP_LEN];
	struct site_sym sym;
	unsigned int i;

	if (!j || !gfp || !orders) {
		json_decref(j);
		json_decref(gfp);
		json_decref(orders);
		*fail = true;
		return NULL;
	}
	site_symbol(o, s->addr, &sym);
	jset(j, "family", json_string(kms_family_name(s->family)), fail);
	jset(j, "addr", j_hex(s->addr), fail);
	jset(j, "symbol", sym.symbol[0] ? json_string(sym.symbol) : json_null(), fail);
	jset(j, "function", j_str_or_null(sym.function), fail);
	jset(j, "module", j_str_or_null(sym.module), fail);
	jset(j, "cache", j_str_or_null(s->family == KMS_FAM_CACHE ? site_obj_name(a, s) : NULL),
	     fail);
	jset(j, "nested", json_boolean(s->family == KMS_FAM_VMALLOC && s->obj == KMS_OBJ_NESTED),
	     fail);
	jset(j, "device", j_str_or_null(s->family == KMS_FAM_DMA ? site_obj_name(a, s) : NULL),
	     fail);
	jset(j, "allocs", j_u64(s->allocs), fail);
	jset(j, "frees", j_u64(s->frees), fail);
	jset(j, "bytes_req", j_u64(s->bytes_req), fail);
	jset(j, "bytes_alloc", j_u64(s->bytes_alloc), fail);
	jset(j, "waste", j_u64(site_waste(s)), fail);
	jset(j, "outstanding", j_u64(s->outstanding), fail);
	jset(j, "outstanding_bytes", j_u64(s->outstanding_bytes), fail);
	jset(j, "fails", j_u64(s->fails), fail);
	if (s->obj)
		jset(j, "obj", j_hex(s->obj), fail);
	for (i = 0; i < s->nr_gfp; i++) {
		json_t *g = json_object();

		if (!g) {
			*fail = true;
			break;
		}
		gfp_name(o, s->gfp[i].value, buf, sizeof(buf));
		jset(g, "flags", json_string(buf), fail);
		jset(g, "value", j_hex(s->gfp[i].value), fail);
		jset(g, "allocs", j_u64(s->gfp[i].allocs), fail);
		jpush(gfp, g, fail);
	}
	jset(j, "gfp", gfp, fail);
	jset(j, "gfp_other", j_u64(s->gfp_other), fail);
	for (i = 0; i < AGG_NR_ORDERS; i++) {
		json_t *r;

		if (!s->orders[i])
			continue;
		r = json_object();
		if (!r) {
			*fail = true;
			break;
		}
		jset(r, "order", json_integer(i), fail);
		jset(r, "allocs", j_u64(s->orders[i]), fail);
		jpush(orders, r, fail);
	}
	jset(j, "orders", orders, fail);
	return j;
}

static json_t *json_sites(const struct agg *a, const struct report_opts *o, bool *fail)
{
	const struct agg_site **v;
	json_t *arr = json_array();
	size_t nr, total, i;

	v = sorted_sites(a, o, &nr, &total);
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		*fail = true;
		return NULL;
	}
	for (i = 0; i < nr && !*fail; i++)
		jpush(arr, json_site(a, o, v[i], fail), fail);
	free(v);
	return arr;
}

static json_t *json_gfp(const struct agg *a, const struct report_opts *o, bool *fail)
{
	json_t *arr = json_array();
	char buf[GFP_LEN];
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_gfp(a), get_gfp, NULL, gfp_order, o->top, &nr);
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		*fail = true;
		return NULL;
	}
	for (i = 0; i < nr; i++) {
		const struct agg_gfp *g = v[i];
		json_t *j = json_object();

		if (!j) {
			*fail = true;
			break;
		}
		gfp_name(o, g->value, buf, sizeof(buf));
		jset(j, "flags", json_string(buf), fail);
		jset(j, "value", j_hex(g->value), fail);
		jset(j, "allocs", j_u64(g->allocs), fail);
		jset(j, "bytes_alloc", j_u64(g->bytes_alloc), fail);
		jpush(arr, j, fail);
	}
	free(v);
	return arr;
}

static json_t *json_orders(const struct agg *a, bool *fail)
{
	json_t *arr = json_array();
	int i;

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (i = 0; i < AGG_NR_ORDERS; i++) {
		const struct agg_order *r = agg__order(a, i);
		json_t *j;

		if (i >= ORDERS_ALWAYS && !r->allocs && !r->frees)
			continue;
		j = json_object();
		if (!j) {
			*fail = true;
			break;
		}
		jset(j, "order", json_integer(i), fail);
		jset(j, "allocs", j_u64(r->allocs), fail);
		jset(j, "frees", j_u64(r->frees), fail);
		jpush(arr, j, fail);
	}
	return arr;
}

static json_t *json_sizes(const struct agg *a, bool *fail)
{
	json_t *arr = json_array();
	int i;

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (i = 0; i < AGG_NR_SIZES; i++) {
		__u64 min, max, n = agg__size_bucket(a, i, &min, &max);
		json_t *j;

		if (!n)
			continue;
		j = json_object();
		if (!j) {
			*fail = true;
			break;
		}
		jset(j, "min", j_u64(min), fail);
		jset(j, "max", j_u64(max), fail);
		jset(j, "allocs", j_u64(n), fail);
		jpush(arr, j, fail);
	}
	return arr;
}

static json_t *json_caches(const struct agg *a, const struct report_opts *o, bool *fail)
{
	json_t *arr = json_array();
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_caches(a), get_cache, NULL, cache_order, o->top, &nr);
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		*fail = true;
		return NULL;
	}
	for (i = 0; i < nr; i++) {
		const struct agg_cache *c = v[i];
		json_t *j = json_object();

		if (!j) {
			*fail = true;
			break;
		}
		jset(j, "name", c->known ? json_string(c->name) : json_null(), fail);
		jset(j, "addr", j_hex(c->ptr), fail);
		jset(j, "object_size", j_u64(c->object_size), fail);
		jset(j, "size", j_u64(c->size), fail);
		jset(j, "allocs", j_u64(c->allocs), fail);
		jset(j, "frees", j_u64(c->frees), fail);
		jset(j, "unmatched_frees", j_u64(c->unmatched_frees), fail);
		jset(j, "outstanding", j_u64(c->outstanding), fail);
		jset(j, "outstanding_bytes", j_u64(c->outstanding_bytes), fail);
		jpush(arr, j, fail);
	}
	free(v);
	return arr;
}

static json_t *json_procs(const struct agg *a, const struct report_opts *o, bool *fail)
{
	json_t *arr = json_array();
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_procs(a), get_proc, proc_keep, proc_order, o->top, &nr);
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		*fail = true;
		return NULL;
	}
	for (i = 0; i < nr; i++) {
		const struct agg_proc *p = v[i];
		json_t *j = json_object(), *ev = json_object();
		int t;

		if (!j || !ev) {
			json_decref(j);
			json_decref(ev);
			*fail = true;
			break;
		}
		jset(j, "pid", json_integer(p->pid), fail);
		jset(j, "comm", json_string(p->comm), fail);
		jset(j, "allocs", j_u64(p->allocs), fail);
		jset(j, "bytes_alloc", j_u64(p->bytes_alloc), fail);
		/* every event name, zeros included: scripts index it without a default */
		for (t = KMS_EV_NONE + 1; t < KMS_EV_NR_EVENTS; t++)
			jset(ev, kms_ev_name(t), j_u64(p->events[t]), fail);
		jset(j, "events", ev, fail);
		jpush(arr, j, fail);
	}
	free(v);
	return arr;
}

static json_t *json_nodes(const struct agg *a, bool *fail)
{
	json_t *arr = json_array();
	int n;

	if (!arr) {
		*fail = true;
		return NULL;
	}
	for (n = 0; n < agg__nr_nodes(a); n++) {
		const struct agg_node *r = agg__node(a, n);
		json_t *j = json_object();

		if (!j) {
			*fail = true;
			break;
		}
		jset(j, "node", json_integer(n), fail);
		jset(j, "allocs", j_u64(r->allocs), fail);
		jset(j, "bytes_alloc", j_u64(r->bytes_alloc), fail);
		jpush(arr, j, fail);
	}
	return arr;
}

static json_t *json_quality(const struct quality_view *v, bool *fail)
{
	const struct kms_quality *q = &v->q;
	json_t *j = json_object(), *nt = json_array(), *by_event = json_object();
	int f;

	if (!j || !nt || !by_event) {
		json_decref(j);
		json_decref(nt);
		json_decref(by_event);
		*fail = true;
		return NULL;
	}
	for (int i = 0; i < q->nr_event_misses; i++)
		jset(by_event, q->event_misses[i].name, j_u64(q->event_misses[i].misses), fail);
	jset(j, "events", j_u64(q->events), fail);
	jset(j, "lost", j_u64(q->lost), fail);
	jset(j, "misses", j_u64(q->misses), fail);
	jset(j, "misses_by_event", by_event, fail);
	jset(j, "rescued", j_u64(q->rescued), fail);
	jset(j, "stack_failures", j_u64(q->stack_failures), fail);
	jset(j, "unmatched_frees", j_u64(v->unmatched_frees), fail);
	jset(j, "out_of_order", j_u64(q->out_of_order), fail);
	jset(j, "filtered", j_u64(q->filtered), fail);
	for (f = 0; f < KMS_FAM_MAX; f++)
		if (!q->traced[f] && !q->skipped[f])
			jpush(nt, json_string(kms_family_name(f)), fail);
	jset(j, "families_not_traced", nt, fail);
	jset(j, "complete", json_boolean(v->complete), fail);
	jset(j, "pending_lost", j_u64(q->pending_lost), fail);
	jset(j, "realloc_without_free", j_u64(v->realloc_without_free), fail);
	jset(j, "page_split_frees", j_u64(v->page_split_frees), fail);
	jset(j, "not_counted", j_u64(v->not_counted), fail);
	return j;
}

/* the data-quality block alone, for the detectors' reports */
void report__quality_text(const struct agg *a, const struct report_opts *o, FILE *out)
{
	struct quality_view v;

	quality_view(a, o, &v);
	text_quality(&v, out);
}

json_t *report__quality_json(const struct agg *a, const struct report_opts *o)
{
	struct quality_view v;
	bool fail = false;
	json_t *j;

	quality_view(a, o, &v);
	j = json_quality(&v, &fail);
	if (fail) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int report__stat_json(const struct agg *a, const struct report_opts *o, FILE *out)
{
	struct quality_view v;
	bool fail = false;
	json_t *root;
	int err = 0;

	quality_view(a, o, &v);
	root = json_object();
	if (!root)
		return -ENOMEM;
	jset(root, "schema", json_string(SCHEMA_STAT), &fail);
	jset(root, "version", json_integer(SCHEMA_VERSION), &fail);
	jset(root, "kernel", j_str_or_null(o->kernel), &fail);
	jset(root, "source", json_string(o->source ? o->source : "live"), &fail);
	jset(root, "duration_ns", j_u64(v.q.duration_ns), &fail);
	jset(root, "families", json_families(a, &v, &fail), &fail);
	jset(root, "sites", json_sites(a, o, &fail), &fail);
	jset(root, "gfp", json_gfp(a, o, &fail), &fail);
	jset(root, "orders", json_orders(a, &fail), &fail);
	jset(root, "sizes", json_sizes(a, &fail), &fail);
	jset(root, "caches", json_caches(a, o, &fail), &fail);
	jset(root, "processes", json_procs(a, o, &fail), &fail);
	jset(root, "nodes", json_nodes(a, &fail), &fail);
	if (o->extra_key)
		jset(root, o->extra_key, o->extra_json(o->extra_ctx), &fail);
	jset(root, "quality", json_quality(&v, &fail), &fail);
	if (fail) {
		err = -ENOMEM;
		goto out;
	}
	if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF)
		err = -EIO;
	else if (fflush(out) || ferror(out))
		err = -EIO;
out:
	json_decref(root);
	return err;
}
