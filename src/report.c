/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `kmemscope stat`: the sections of the report as rows (rows.h), built once from
 * the aggregation and rendered as a perf-kmem-like text layout or as the versioned
 * JSON of docs/json-schema.md. Both always carry the data-quality block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "report.h"
#include "rows.h"

#define SCHEMA_STAT	"kmemscope.stat"
#define SCHEMA_VERSION	1
#define ORDERS_ALWAYS	11	/* orders 0..10 are always listed */
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

static const char *site_obj_name(const struct agg *a, const struct agg_site *s)
{
	if (!s->obj)
		return NULL;
	if (s->family == KMS_FAM_CACHE)
		return agg__cache_name(a, s->obj);
	if (s->family == KMS_FAM_DMA)
		return agg__device_name(a, s->obj);
	if (s->obj == KMS_OBJ_NESTED)
		return "(nested)";
	return NULL;
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

/* ---- sections ---- */

enum { H_SCHEMA, H_VERSION, H_KERNEL, H_SOURCE, H_DURATION, H_NR };

static const struct row_col header_cols[H_NR] = {
	[H_SCHEMA] = { "schema", "schema", RK_STR },
	[H_VERSION] = { "version", "version", RK_INT },
	[H_KERNEL] = { "kernel", "kernel", RK_STR },
	[H_SOURCE] = { "source", "source", RK_STR },
	[H_DURATION] = { "duration_ns", "duration", RK_NS },
};

enum {
	F_FAMILY, F_TRACED, F_REQUESTED, F_METHOD, F_ALLOCS, F_FREES, F_DEFERRED, F_UNMATCHED,
	F_FAILS, F_REQ, F_ALLOC, F_WASTE, F_OUTST, F_OUTST_BYTES, F_REALLOC, F_NR,
};

static const struct row_col family_cols[F_NR] = {
	[F_FAMILY] = { "family", "family", RK_STR },
	[F_TRACED] = { "traced", "traced", RK_BOOL },
	[F_REQUESTED] = { "requested", "requested", RK_BOOL },
	[F_METHOD] = { "method", "method", RK_STR },
	[F_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[F_FREES] = { "frees", "frees", RK_U64 },
	/* of frees: through RCU or a bulk free, seen by function probes */
	[F_DEFERRED] = { "deferred_frees", "deferred", RK_U64 },
	[F_UNMATCHED] = { "unmatched_frees", "unmatched", RK_U64 },
	[F_FAILS] = { "fails", "fails", RK_U64 },
	[F_REQ] = { "bytes_req", "bytes_req", RK_U64 },
	[F_ALLOC] = { "bytes_alloc", "bytes_alloc", RK_U64 },
	[F_WASTE] = { "waste", "waste", RK_U64 },
	[F_OUTST] = { "outstanding", "outstanding", RK_U64 },
	[F_OUTST_BYTES] = { "outstanding_bytes", "outst_bytes", RK_U64 },
	[F_REALLOC] = { "realloc_without_free", "realloc_no_free", RK_U64 },
};

static struct rows *families(const struct agg *a, const struct kms_quality *q)
{
	struct rows *t = rows__new("families", "Families", RS_TABLE, false, family_cols, F_NR);
	int f;

	for (f = 0; f < KMS_FAM_MAX; f++) {
		const struct agg_counts *c = agg__family(a, f);
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[F_FAMILY].s = kms_family_name(f);
		/* a bare aggregation (no collector): every family counts as traced */
		r[F_TRACED].u = q ? q->traced[f] : true;
		r[F_REQUESTED].u = q ? !q->skipped[f] : true;
		r[F_METHOD].s = q ? q->method[f] : NULL;
		r[F_METHOD].null = !r[F_METHOD].s;
		r[F_ALLOCS].u = c->allocs;
		r[F_FREES].u = c->frees;
		r[F_DEFERRED].u = c->deferred_frees;
		r[F_UNMATCHED].u = c->unmatched_frees;
		r[F_FAILS].u = c->fails;
		r[F_REQ].u = c->bytes_req;
		r[F_ALLOC].u = c->bytes_alloc;
		r[F_WASTE].u = c->bytes_alloc > c->bytes_req ? c->bytes_alloc - c->bytes_req : 0;
		r[F_OUTST].u = c->outstanding;
		r[F_OUTST_BYTES].u = c->outstanding_bytes;
		r[F_REALLOC].u = c->realloc_without_free;
	}
	return t;
}

enum { SG_FLAGS, SG_VALUE, SG_ALLOCS, SG_NR };

static const struct row_col site_gfp_cols[SG_NR] = {
	[SG_FLAGS] = { "flags", "flags", RK_GFP },
	[SG_VALUE] = { "value", "value", RK_HEX },
	[SG_ALLOCS] = { "allocs", "allocs", RK_U64 },
};

enum { SO_ORDER, SO_ALLOCS, SO_NR };

static const struct row_col site_order_cols[SO_NR] = {
	[SO_ORDER] = { "order", "order", RK_INT },
	[SO_ALLOCS] = { "allocs", "allocs", RK_U64 },
};

enum {
	S_SITE, S_FAMILY, S_CACHE, S_DEVICE, S_NESTED, S_OBJ, S_ALLOCS, S_FREES, S_DEFERRED,
	S_FAILS, S_REQ, S_ALLOC, S_WASTE, S_OUTST, S_OUTST_BYTES, S_GFP_OTHER, S_GFP, S_ORDERS,
	S_NR,
};

static const struct row_col site_cols[S_NR] = {
	[S_SITE] = { "addr", "call site", RK_SITE_FLAT, .max_width = TEXT_SYM_WIDTH },
	[S_FAMILY] = { "family", "family", RK_STR },
	[S_CACHE] = { "cache", "cache", RK_STR },
	[S_DEVICE] = { "device", "device", RK_STR },
	[S_NESTED] = { "nested", "nested", RK_BOOL },
	/* the cache or device pointer, for those without a name */
	[S_OBJ] = { "obj", "obj", RK_HEX, ROW_OMIT_NULL },
	[S_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[S_FREES] = { "frees", "frees", RK_U64 },
	[S_DEFERRED] = { "deferred_frees", "deferred", RK_U64 },
	[S_FAILS] = { "fails", "fails", RK_U64 },
	[S_REQ] = { "bytes_req", "bytes_req", RK_U64 },
	[S_ALLOC] = { "bytes_alloc", "bytes_alloc", RK_U64 },
	[S_WASTE] = { "waste", "waste", RK_U64 },
	[S_OUTST] = { "outstanding", "outstanding", RK_U64 },
	[S_OUTST_BYTES] = { "outstanding_bytes", "outst_bytes", RK_U64 },
	[S_GFP_OTHER] = { "gfp_other", "gfp_other", RK_U64 },
	[S_GFP] = { "gfp", "gfp (flags value allocs)", RK_ROWS, .sub = site_gfp_cols,
		    .nsub = SG_NR },
	[S_ORDERS] = { "orders", "orders (order allocs)", RK_ROWS, .sub = site_order_cols,
		       .nsub = SO_NR },
};

static struct rows *site_gfp(const struct agg_site *s)
{
	struct rows *t = rows__new("gfp", NULL, RS_TABLE, false, site_gfp_cols, SG_NR);

	for (unsigned int i = 0; i < s->nr_gfp; i++) {
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[SG_FLAGS].u = s->gfp[i].value;
		r[SG_VALUE].u = s->gfp[i].value;
		r[SG_VALUE].null = s->gfp[i].value == KMS_GFP_UNKNOWN;
		r[SG_ALLOCS].u = s->gfp[i].allocs;
	}
	return t;
}

static struct rows *site_orders(const struct agg_site *s)
{
	struct rows *t = rows__new("orders", NULL, RS_TABLE, false, site_order_cols, SO_NR);

	for (int i = 0; i < AGG_NR_ORDERS; i++) {
		struct row_cell *r;

		if (!s->orders[i])
			continue;
		r = rows__add(t);
		if (!r)
			break;
		r[SO_ORDER].i = i;
		r[SO_ALLOCS].u = s->orders[i];
	}
	return t;
}

static struct rows *sites(const struct agg *a, const struct report_opts *o)
{
	const struct agg_site **v;
	size_t nr, total, i;
	struct rows *t;
	char keys[128], title[160];

	sort_desc(o, keys, sizeof(keys));
	snprintf(title, sizeof(title), "Top call sites by %s", keys);
	t = rows__new("sites", title, RS_TABLE, false, site_cols, S_NR);
	v = sorted_sites(a, o, &nr, &total);
	if (!v) {
		rows__fail(t);
		return t;
	}
	rows__total(t, total);
	rows__empty(t, "(no allocations)");
	for (i = 0; i < nr; i++) {
		const struct agg_site *s = v[i];
		struct row_cell *r = rows__add(t);
		const char *obj = site_obj_name(a, s);

		if (!r)
			break;
		r[S_SITE].u = s->addr;
		r[S_FAMILY].s = kms_family_name(s->family);
		r[S_CACHE].s = s->family == KMS_FAM_CACHE ? obj : NULL;
		r[S_CACHE].null = !r[S_CACHE].s;
		r[S_DEVICE].s = s->family == KMS_FAM_DMA ? obj : NULL;
		r[S_DEVICE].null = !r[S_DEVICE].s;
		r[S_NESTED].u = s->obj == KMS_OBJ_NESTED;
		r[S_OBJ].u = s->obj;
		/* a nested row's key (KMS_OBJ_NESTED) is no object: the nested column says it */
		r[S_OBJ].null = !s->obj || s->obj == KMS_OBJ_NESTED;
		r[S_ALLOCS].u = s->allocs;
		r[S_FREES].u = s->frees;
		r[S_DEFERRED].u = s->deferred_frees;
		r[S_FAILS].u = s->fails;
		r[S_REQ].u = s->bytes_req;
		r[S_ALLOC].u = s->bytes_alloc;
		r[S_WASTE].u = site_waste(s);
		r[S_OUTST].u = s->outstanding;
		r[S_OUTST_BYTES].u = s->outstanding_bytes;
		r[S_GFP_OTHER].u = s->gfp_other;
		r[S_GFP].sub = site_gfp(s);
		r[S_ORDERS].sub = site_orders(s);
		if (!r[S_GFP].sub || !r[S_ORDERS].sub)
			rows__fail(t);
	}
	free(v);
	return t;
}

enum { G_ALLOCS, G_BYTES, G_VALUE, G_FLAGS, G_NR };

static const struct row_col gfp_cols[G_NR] = {
	[G_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[G_BYTES] = { "bytes_alloc", "bytes_alloc", RK_U64 },
	[G_VALUE] = { "value", "value", RK_HEX },
	[G_FLAGS] = { "flags", "flags", RK_GFP },
};

static struct rows *gfps(const struct agg *a, const struct report_opts *o)
{
	struct rows *t = rows__new("gfp", "GFP flags", RS_TABLE, false, gfp_cols, G_NR);
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_gfp(a), get_gfp, NULL, gfp_order, o->top, &nr);
	if (!v) {
		rows__fail(t);
		return t;
	}
	rows__total(t, agg__nr_gfp(a));
	for (i = 0; i < nr; i++) {
		const struct agg_gfp *g = v[i];
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[G_ALLOCS].u = g->allocs;
		r[G_BYTES].u = g->bytes_alloc;
		r[G_VALUE].u = g->value;
		r[G_VALUE].null = g->value == KMS_GFP_UNKNOWN;
		r[G_FLAGS].u = g->value;
	}
	free(v);
	return t;
}

enum { O_ORDER, O_ALLOCS, O_FREES, O_NR };

static const struct row_col order_cols[O_NR] = {
	[O_ORDER] = { "order", "order", RK_INT },
	[O_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[O_FREES] = { "frees", "frees", RK_U64 },
};

static struct rows *orders(const struct agg *a)
{
	struct rows *t = rows__new("orders", "Page orders", RS_TABLE, false, order_cols, O_NR);

	for (int i = 0; i < AGG_NR_ORDERS; i++) {
		const struct agg_order *o = agg__order(a, i);
		struct row_cell *r;

		if (i >= ORDERS_ALWAYS && !o->allocs && !o->frees)
			continue;
		r = rows__add(t);
		if (!r)
			break;
		r[O_ORDER].i = i;
		r[O_ALLOCS].u = o->allocs;
		r[O_FREES].u = o->frees;
	}
	return t;
}

enum { Z_MIN, Z_MAX, Z_ALLOCS, Z_NR };

static const struct row_col size_cols[Z_NR] = {
	[Z_MIN] = { "min", "min", RK_U64 },
	[Z_MAX] = { "max", "max", RK_U64 },
	[Z_ALLOCS] = { "allocs", "allocs", RK_U64 },
};

static struct rows *sizes(const struct agg *a)
{
	struct rows *t = rows__new("sizes", "Allocation sizes (bytes_alloc)", RS_TABLE, false,
				   size_cols, Z_NR);

	rows__empty(t, "(no allocations)");
	for (int i = 0; i < AGG_NR_SIZES; i++) {
		__u64 min, max, n = agg__size_bucket(a, i, &min, &max);
		struct row_cell *r;

		if (!n)
			continue;
		r = rows__add(t);
		if (!r)
			break;
		r[Z_MIN].u = min;
		r[Z_MAX].u = max;
		r[Z_ALLOCS].u = n;
	}
	return t;
}

enum {
	C_NAME, C_ADDR, C_OBJSIZE, C_SIZE, C_ALLOCS, C_FREES, C_UNMATCHED, C_OUTST,
	C_OUTST_BYTES, C_NR,
};

static const struct row_col cache_cols[C_NR] = {
	[C_NAME] = { "name", "cache", RK_STR },
	[C_ADDR] = { "addr", "addr", RK_HEX },
	[C_OBJSIZE] = { "object_size", "objsize", RK_U64 },
	[C_SIZE] = { "size", "size", RK_U64 },
	[C_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[C_FREES] = { "frees", "frees", RK_U64 },
	[C_UNMATCHED] = { "unmatched_frees", "unmatched", RK_U64 },
	[C_OUTST] = { "outstanding", "outstanding", RK_U64 },
	[C_OUTST_BYTES] = { "outstanding_bytes", "outst_bytes", RK_U64 },
};

static struct rows *caches(const struct agg *a, const struct report_opts *o)
{
	struct rows *t = rows__new("caches", "Slab caches", RS_TABLE, false, cache_cols, C_NR);
	const void **v;
	size_t nr, i;

	v = sorted_rows(a, agg__nr_caches(a), get_cache, NULL, cache_order, o->top, &nr);
	if (!v) {
		rows__fail(t);
		return t;
	}
	rows__total(t, agg__nr_caches(a));
	for (i = 0; i < nr; i++) {
		const struct agg_cache *c = v[i];
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[C_NAME].s = c->known ? c->name : NULL;
		r[C_NAME].null = !c->known;
		r[C_ADDR].u = c->ptr;
		r[C_OBJSIZE].u = c->object_size;
		r[C_SIZE].u = c->size;
		r[C_ALLOCS].u = c->allocs;
		r[C_FREES].u = c->frees;
		r[C_UNMATCHED].u = c->unmatched_frees;
		r[C_OUTST].u = c->outstanding;
		r[C_OUTST_BYTES].u = c->outstanding_bytes;
	}
	free(v);
	return t;
}

enum { P_PID, P_COMM, P_ALLOCS, P_BYTES, P_EVENTS, P_NR };

static const struct row_col proc_cols[P_NR] = {
	[P_PID] = { "pid", "pid", RK_U64 },
	[P_COMM] = { "comm", "comm", RK_STR },
	[P_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[P_BYTES] = { "bytes_alloc", "bytes_alloc", RK_U64 },
	[P_EVENTS] = { "events", "events", RK_COUNTS },
};

static struct rows *procs(const struct agg *a, const struct report_opts *o)
{
	struct rows *t = rows__new("processes", "Processes", RS_TABLE, false, proc_cols, P_NR);
	const char *names[KMS_EV_NR_EVENTS];
	const char *const *kept;
	const void **v;
	size_t nr, i, total = 0;
	int n = 0;

	/* every event name, zeros included: scripts index it without a default */
	for (int e = KMS_EV_NONE + 1; e < KMS_EV_NR_EVENTS; e++)
		names[n++] = kms_ev_name(e);
	kept = rows__keep(t, names, n * sizeof(names[0]));
	v = sorted_rows(a, agg__nr_procs(a), get_proc, proc_keep, proc_order, o->top, &nr);
	if (!v || !kept) {
		free(v);
		rows__fail(t);
		return t;
	}
	for (i = 0; i < agg__nr_procs(a); i++)
		total += proc_keep(agg__proc(a, i));
	rows__total(t, total);
	for (i = 0; i < nr; i++) {
		const struct agg_proc *p = v[i];
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[P_PID].u = p->pid;
		r[P_COMM].s = p->comm;
		r[P_ALLOCS].u = p->allocs;
		r[P_BYTES].u = p->bytes_alloc;
		r[P_EVENTS].names = kept;
		r[P_EVENTS].v = &p->events[KMS_EV_NONE + 1];
		r[P_EVENTS].n = n;
	}
	free(v);
	return t;
}

enum { N_NODE, N_ALLOCS, N_BYTES, N_NR };

static const struct row_col node_cols[N_NR] = {
	[N_NODE] = { "node", "node", RK_INT },
	[N_ALLOCS] = { "allocs", "allocs", RK_U64 },
	[N_BYTES] = { "bytes_alloc", "bytes_alloc", RK_U64 },
};

static struct rows *nodes(const struct agg *a)
{
	struct rows *t = rows__new("nodes", "NUMA nodes", RS_TABLE, false, node_cols, N_NR);

	for (int n = 0; n < agg__nr_nodes(a); n++) {
		const struct agg_node *nd = agg__node(a, n);
		struct row_cell *r = rows__add(t);

		if (!r)
			break;
		r[N_NODE].i = n;
		r[N_ALLOCS].u = nd->allocs;
		r[N_BYTES].u = nd->bytes_alloc;
	}
	return t;
}

struct rows *report__stat(const struct agg *a, const struct report_opts *o)
{
	const struct agg_stats *st = agg__stats(a);
	struct rows *doc = rows__new(NULL, "kmemscope stat", RS_INLINE, true, header_cols, H_NR);
	struct row_cell *r = rows__add(doc);

	if (!r) {
		rows__free(doc);
		return NULL;
	}
	r[H_SCHEMA].s = SCHEMA_STAT;
	r[H_VERSION].i = SCHEMA_VERSION;
	r[H_KERNEL].s = o->kernel;
	r[H_KERNEL].null = !o->kernel;
	r[H_SOURCE].s = o->source ? o->source : "live";
	r[H_DURATION].u = o->quality ? o->quality->duration_ns :
			  st->last_ts > st->first_ts ? st->last_ts - st->first_ts : 0;
	rows__child(doc, families(a, o->quality));
	rows__child(doc, sites(a, o));
	rows__child(doc, gfps(a, o));
	rows__child(doc, orders(a));
	rows__child(doc, sizes(a));
	rows__child(doc, caches(a, o));
	rows__child(doc, procs(a, o));
	rows__child(doc, nodes(a));
	if (o->extra)
		rows__child(doc, o->extra(o->extra_ctx));
	rows__child(doc, report__quality(a, o->quality));
	return doc;
}

static int stat_out(const struct agg *a, const struct report_opts *o, bool json, FILE *out)
{
	const struct rows_ctx c = { .ksyms = o->ksyms, .gfp = o->gfp };
	struct rows *doc = report__stat(a, o);
	int err;

	if (!doc)
		return -ENOMEM;
	err = json ? rows__json_dump(doc, &c, out) : rows__text(doc, &c, out);
	rows__free(doc);
	if (!err && (fflush(out) || ferror(out)))
		err = -EIO;
	return err;
}

int report__stat_text(const struct agg *a, const struct report_opts *o, FILE *out)
{
	return stat_out(a, o, false, out);
}

int report__stat_json(const struct agg *a, const struct report_opts *o, FILE *out)
{
	return stat_out(a, o, true, out);
}
