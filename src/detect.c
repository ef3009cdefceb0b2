/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The detectors over one ordered record stream. Live objects sit in an
 * open-addressing table keyed by (class, address); the groups, sites and
 * findings the reports read are dense arrays behind insert-only indexes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "agg.h"
#include "detect.h"
#include "frames.h"
#include "ksyms.h"

#define NR_ORDERS	16
#define SPLIT_MAX_ORDER	10	/* split_page() frees searched up to this order */
#define LAST_PAGE_CPUS	1024
#define DMAP_VOTES	2	/* agreeing large kmallocs before the direct map base is used */
#define DMAP_ALIGN	(1ULL << 21)
#define HIGH_ORDER	3

/* object classes of the event table (agg.h) */
enum obj_class {
	OC_SLAB = KMS_OC_SLAB,
	OC_PAGE = KMS_OC_PAGE,
	OC_VMALLOC = KMS_OC_VMALLOC,
	OC_DMA = KMS_OC_DMA,
	OC_PERCPU = KMS_OC_PERCPU,
	OC_NR = KMS_OC_NR,
};

enum nest_kind {
	NEST_SLAB = 0,
	NEST_VMALLOC,
	NEST_PERCPU,
	NEST_DMA,
};

static const char *const ctx_names[DCTX_NR] = {
	[DCTX_PROCESS] = "process",
	[DCTX_PREEMPT_OFF] = "preempt_disabled",
	[DCTX_BH_OFF] = "bh_disabled",
	[DCTX_SOFTIRQ] = "softirq",
	[DCTX_HARDIRQ] = "hardirq",
	[DCTX_NMI] = "nmi",
	[DCTX_UNKNOWN] = "unknown",
};

static const char *const misuse_names[MIS_NR] = {
	[MIS_BLOCKING_IN_ATOMIC] = "blocking_gfp_in_atomic",
	[MIS_VMALLOC_IN_ATOMIC] = "vmalloc_in_atomic",
	[MIS_ATOMIC_IN_PROCESS] = "atomic_gfp_in_process",
	[MIS_HIGH_ORDER_ATOMIC] = "high_order_atomic",
};

static const char *const badfree_names[BF_NR] = {
	[BF_WRONG_API] = "wrong_api",
	[BF_WRONG_CACHE] = "wrong_cache",
	[BF_DOUBLE_FREE] = "double_free",
};

static const char *const nest_names[] = {
	[NEST_SLAB] = "slab",
	[NEST_VMALLOC] = "vmalloc",
	[NEST_PERCPU] = "percpu",
	[NEST_DMA] = "dma",
};

static const char *const retained_names[] = {
	[RET_NONE] = NULL,
	[RET_GFP] = "movable_or_reclaimable_gfp",
	[RET_CACHE] = "reclaimable_cache",
	[RET_PAGE_CACHE] = "page_cache",
};

static const struct {
	const char *name;
	const char *text;
} doubts[DOUBT_NR_BITS] = {
	{ "records_lost", "records that could hold its free were lost after it was allocated" },
	{ "frees_untraced", "no free of this site's objects was traced, and this kernel's RCU "
			    "and bulk slab frees are not traced" },
	{ "few_frees_traced", "fewer of this site's objects were seen freed than are still "
			      "outstanding, and this kernel's RCU and bulk slab frees are not "
			      "traced" },
};

const char *detect_retained_name(int r)
{
	return r > RET_NONE && r < RET_NR ? retained_names[r] : NULL;
}

const char *detect_doubt_name(int bit)
{
	return bit >= 0 && bit < DOUBT_NR_BITS ? doubts[bit].name : NULL;
}

const char *detect_doubt_text(int bit)
{
	return bit >= 0 && bit < DOUBT_NR_BITS ? doubts[bit].text : NULL;
}

const char *detect_ctx_name(int ctx)
{
	return ctx >= 0 && ctx < DCTX_NR ? ctx_names[ctx] : NULL;
}

const char *detect_misuse_name(int kind)
{
	return kind >= 0 && kind < MIS_NR ? misuse_names[kind] : NULL;
}

bool detect_misuse_is_info(int kind)
{
	return kind == MIS_ATOMIC_IN_PROCESS || kind == MIS_HIGH_ORDER_ATOMIC;
}

const char *detect_badfree_name(int kind)
{
	return kind >= 0 && kind < BF_NR ? badfree_names[kind] : NULL;
}

const char *detect_nest_name(int nest)
{
	return nest >= 0 && nest < (int)(sizeof(nest_names) / sizeof(nest_names[0])) ?
	       nest_names[nest] : NULL;
}

/* the tables' hash: never 0, which marks an empty slot */
#define mix64 kms_hash64

/* ---- object table: live objects and the recently-freed set ---- */

struct orec {
	__u64 hash;		/* 0: empty slot */
	__u64 ptr;
	__u64 ts;		/* allocation (live) or free (freed set) time */
	__u64 site;		/* allocation site */
	__u64 obj;		/* allocation's cache or device */
	__u64 free_site;	/* freed set: the free's call site */
	size_t group;		/* live: detect_group index */
	__u32 bytes;
	__u32 gfp;
	__u32 pid;
	__u32 free_pid;
	__u32 seq;		/* freed set: position in the eviction ring */
	__s32 stack_id;
	__u8 cls;
	__u8 type;		/* allocation's KMS_EV_* */
	__u8 order;
};

struct otab {
	struct orec *slots;
	__u32 mask;
	__u32 count;
};

static __u64 okey(int cls, __u64 ptr)
{
	return mix64(ptr * 0x9e3779b97f4a7c15ULL + cls);
}

static int otab__init(struct otab *t, __u32 cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = cap - 1;
	t->count = 0;
	return 0;
}

static struct orec *otab__find(const struct otab *t, int cls, __u64 ptr)
{
	__u64 h = okey(cls, ptr);
	__u32 i;

	for (i = h & t->mask; t->slots[i].hash; i = (i + 1) & t->mask)
		if (t->slots[i].hash == h && t->slots[i].ptr == ptr && t->slots[i].cls == cls)
			return &t->slots[i];
	return NULL;
}

static int otab__grow(struct otab *t)
{
	struct otab n;
	__u32 i, j;

	if (otab__init(&n, (t->mask + 1) * 2))
		return -ENOMEM;
	for (i = 0; i <= t->mask; i++) {
		if (!t->slots[i].hash)
			continue;
		for (j = t->slots[i].hash & n.mask; n.slots[j].hash; j = (j + 1) & n.mask)
			;
		n.slots[j] = t->slots[i];
	}
	n.count = t->count;
	free(t->slots);
	*t = n;
	return 0;
}

/* the record of (cls, ptr), created zeroed if missing; NULL: no memory */
static struct orec *otab__get(struct otab *t, int cls, __u64 ptr, bool *created)
{
	struct orec *r = otab__find(t, cls, ptr);
	__u32 i;

	*created = false;
	if (r)
		return r;
	if (t->count + 1 > (t->mask + 1) / 10 * 7 && otab__grow(t))
		return NULL;
	for (i = okey(cls, ptr) & t->mask; t->slots[i].hash; i = (i + 1) & t->mask)
		;
	r = &t->slots[i];
	memset(r, 0, sizeof(*r));
	r->hash = okey(cls, ptr);
	r->ptr = ptr;
	r->cls = cls;
	t->count++;
	*created = true;
	return r;
}

/* backward-shift deletion keeps probe runs short without tombstones */
static void otab__delete(struct otab *t, struct orec *r)
{
	__u32 i = r - t->slots, j = i;

	for (;;) {
		__u32 home;

		j = (j + 1) & t->mask;
		if (!t->slots[j].hash)
			break;
		home = t->slots[j].hash & t->mask;
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->count--;
}

/* ---- insert-only keyed vectors: the key is the first ksz bytes of an item ---- */

struct kvec {
	char *items;
	size_t isz, ksz, nr, cap;
	__u32 *slots;		/* item index + 1, 0: empty */
	__u32 mask;
};

static void kvec__init(struct kvec *v, size_t isz, size_t ksz)
{
	memset(v, 0, sizeof(*v));
	v->isz = isz;
	v->ksz = ksz;
}

static void kvec__fini(struct kvec *v)
{
	free(v->items);
	free(v->slots);
}

static __u64 kvec__hash(const void *key, size_t ksz)
{
	const unsigned char *p = key;
	__u64 h = 0x84222325cbf29ce4ULL, w;
	size_t i;

	for (i = 0; i + 8 <= ksz; i += 8) {
		memcpy(&w, p + i, 8);
		h = mix64(h ^ w);
	}
	for (; i < ksz; i++)
		h = mix64(h ^ p[i]);
	return h;
}

static void *kvec__at(const struct kvec *v, size_t i)
{
	return v->items + i * v->isz;
}

static long kvec__find(const struct kvec *v, const void *key)
{
	__u32 i;

	if (!v->slots)
		return -1;
	for (i = kvec__hash(key, v->ksz) & v->mask; v->slots[i]; i = (i + 1) & v->mask)
		if (!memcmp(kvec__at(v, v->slots[i] - 1), key, v->ksz))
			return v->slots[i] - 1;
	return -1;
}

static int kvec__rehash(struct kvec *v, __u32 cap)
{
	__u32 *s = calloc(cap, sizeof(*s)), i, j;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < v->nr; i++) {
		for (j = kvec__hash(kvec__at(v, i), v->ksz) & (cap - 1); s[j]; j = (j + 1) & (cap - 1))
			;
		s[j] = i + 1;
	}
	free(v->slots);
	v->slots = s;
	v->mask = cap - 1;
	return 0;
}

/* index of the item with key, appended zeroed (key copied) if missing; -1: no memory */
static long kvec__get(struct kvec *v, const void *key, bool *created)
{
	long i = kvec__find(v, key);
	__u32 j;

	*created = false;
	if (i >= 0)
		return i;
	if (v->nr + 1 >= v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 64;
		char *n = realloc(v->items, ncap * v->isz);

		if (!n)
			return -1;
		v->items = n;
		v->cap = ncap;
	}
	if (!v->slots || (v->nr + 1) * 10 > (size_t)(v->mask + 1) * 7) {
		if (kvec__rehash(v, v->slots ? (v->mask + 1) * 2 : 128))
			return -1;
	}
	memset(kvec__at(v, v->nr), 0, v->isz);
	memcpy(kvec__at(v, v->nr), key, v->ksz);
	for (j = kvec__hash(key, v->ksz) & v->mask; v->slots[j]; j = (j + 1) & v->mask)
		;
	v->slots[j] = v->nr + 1;
	*created = true;
	return v->nr++;
}

/* ---- the detector ---- */

struct name_item {
	__u64 key;
	char name[KMS_NAME_LEN];
	__u32 flags;		/* KMS_META_* */
};

struct ring_ent {
	__u64 ptr;
	__u32 seq;
	__u8 cls;
};

struct last_page {
	__u64 pfn;
	__u8 order;
	bool valid;
};

struct detect {
	struct detect_opts o;
	struct otab live;
	struct otab freed;
	struct ring_ent *ring;		/* FIFO of the freed set, for eviction */
	unsigned int ring_cap, ring_head, ring_nr;
	__u32 seq;
	struct kvec groups;		/* struct detect_group, key: family..obj */
	struct kvec sites;		/* struct detect_site */
	struct kvec misuse;		/* struct detect_misuse */
	struct kvec badfree;		/* struct detect_badfree */
	struct kvec comms;		/* struct name_item by tgid */
	struct kvec objnames;		/* struct name_item by cache/device pointer */
	struct detect_misuse_stats ms;
	struct detect_free_stats fs;
	__u64 live_pages_by_order[NR_ORDERS];
	struct last_page last_page[LAST_PAGE_CPUS];
	__u64 dmap_cand;
	int dmap_votes;
	__u64 dmap;
	signed char *nest;		/* per stack id: 0 unknown, 1 none, 2 + enum nest_kind */
	size_t nest_cap;
	/*
	 * Loss markers (KMS_EV_META_LOSS): an object of family f allocated at or
	 * before loss_cut[f] may have had its free lost. Records are nearly in
	 * time order, so the newest time seen when the marker came is the cut:
	 * every record before the marker is at or before it.
	 */
	__u64 max_ts;
	__u64 loss_cut[KMS_FAM_MAX];
	bool lossy[KMS_FAM_MAX];
};

struct detect *detect__new(const struct detect_opts *o)
{
	struct detect *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->o = *o;
	if (!d->o.freed_max)
		d->o.freed_max = DETECT_FREED_DEFAULT;
	if (!d->o.page_shift)
		d->o.page_shift = 12;
	if (d->o.bad_frees)
		d->o.leaks = true;	/* bad frees are judged against the live set */
	if (otab__init(&d->live, 1024) || otab__init(&d->freed, 1024))
		goto fail;
	if (d->o.bad_frees) {
		d->ring_cap = d->o.freed_max;
		d->ring = calloc(d->ring_cap, sizeof(*d->ring));
		if (!d->ring)
			goto fail;
	}
	/* keys are the leading __u64/int fields of each item: see the structs in detect.h */
	kvec__init(&d->groups, sizeof(struct detect_group), offsetof(struct detect_group, nested));
	kvec__init(&d->sites, sizeof(struct detect_site), offsetof(struct detect_site, allocs));
	kvec__init(&d->misuse, sizeof(struct detect_misuse), offsetof(struct detect_misuse, pc));
	kvec__init(&d->badfree, sizeof(struct detect_badfree), offsetof(struct detect_badfree, ptr));
	kvec__init(&d->comms, sizeof(struct name_item), sizeof(__u64));
	kvec__init(&d->objnames, sizeof(struct name_item), sizeof(__u64));
	return d;
fail:
	detect__free(d);
	return NULL;
}

void detect__free(struct detect *d)
{
	if (!d)
		return;
	free(d->live.slots);
	free(d->freed.slots);
	free(d->ring);
	kvec__fini(&d->groups);
	kvec__fini(&d->sites);
	kvec__fini(&d->misuse);
	kvec__fini(&d->badfree);
	kvec__fini(&d->comms);
	kvec__fini(&d->objnames);
	free(d->nest);
	free(d);
}

void detect__set_env(struct detect *d, const struct ksyms *ksyms, const int *baseline_pc,
		     __u32 gfp_direct_reclaim)
{
	d->o.ksyms = ksyms;
	if (baseline_pc)
		memcpy(d->o.baseline_pc, baseline_pc, sizeof(d->o.baseline_pc));
	d->o.gfp_direct_reclaim = gfp_direct_reclaim;
}

int detect__classify(__u8 ctx_flags, __u32 pc, int baseline)
{
	if (!(ctx_flags & KMS_CTX_KNOWN))
		return DCTX_UNKNOWN;
	/* interrupt bits are absolute: the tracer adds none of them */
	if (pc & DETECT_PC_NMI)
		return DCTX_NMI;
	if (pc & DETECT_PC_HARDIRQ)
		return DCTX_HARDIRQ;
	if (pc & DETECT_PC_SOFTIRQ_SERVING)
		return DCTX_SOFTIRQ;
	if (pc & DETECT_PC_SOFTIRQ)
		return DCTX_BH_OFF;
	/* the depth includes what the tracer itself adds: only the baseline tells */
	if (baseline < 0)
		return DCTX_UNKNOWN;
	if ((int)(pc & DETECT_PC_PREEMPT) > baseline)
		return DCTX_PREEMPT_OFF;
	return DCTX_PROCESS;
}

static const char *strip_name(const char *f, char *buf, size_t len)
{
	size_t n = strcspn(f, ".");

	if (n >= len)
		n = len - 1;
	memcpy(buf, f, n);
	buf[n] = '\0';
	return buf;
}

/* which allocator an internal frame belongs to, if it makes pages for another one */
static int nest_kind_of(const char *func)
{
	char buf[128];
	const char *f = strip_name(func, buf, sizeof(buf));

	if (strstr(f, "slab") || strstr(f, "kmalloc") || strstr(f, "kmem_cache") ||
	    strstr(f, "sheaf") || strstr(f, "krealloc"))
		return NEST_SLAB;
	if (strstr(f, "vmalloc") || strstr(f, "vzalloc") || strstr(f, "vm_area") ||
	    strstr(f, "vmap"))
		return NEST_VMALLOC;
	if (strstr(f, "pcpu_") || strstr(f, "percpu"))
		return NEST_PERCPU;
	if (strstr(f, "dma_"))
		return NEST_DMA;
	return -1;
}

/*
 * A page allocation whose stack shows slab, vmalloc, percpu or dma internals
 * before the first caller frame is the backing store of another allocation:
 * counting it too would count the same memory twice. -1: not nested or unknown.
 */
static int page_nested(struct detect *d, int stack_id)
{
	__u64 ips[KMS_MAX_STACK];
	int n, i, kind = -1;

	if (stack_id < 0 || !d->o.stack || !d->o.ksyms)
		return -1;
	if ((size_t)stack_id < d->nest_cap && d->nest[stack_id])
		return d->nest[stack_id] - 2;
	n = d->o.stack(d->o.stack_ctx, stack_id, ips, KMS_MAX_STACK);
	for (i = 0; i < n; i++) {
		const struct ksym *s = ips[i] ? ksyms__resolve(d->o.ksyms, ips[i]) : NULL;

		if (!s)
			continue;
		if (!frames__is_internal(s->name))
			break;
		kind = nest_kind_of(s->name);
		if (kind >= 0)
			break;
	}
	if (n < 0)
		return -1;	/* not cached: the stack may be readable later */
	if ((size_t)stack_id >= d->nest_cap && stack_id < (1 << 24)) {
		size_t ncap = d->nest_cap ? d->nest_cap : 1024;
		signed char *p;

		while (ncap <= (size_t)stack_id)
			ncap *= 2;
		p = realloc(d->nest, ncap);
		if (p) {
			memset(p + d->nest_cap, 0, ncap - d->nest_cap);
			d->nest = p;
			d->nest_cap = ncap;
		}
	}
	if ((size_t)stack_id < d->nest_cap)
		d->nest[stack_id] = kind + 2;
	return kind;
}

int detect__frames(const struct detect *d, int stack_id, __u64 site, __u64 *ips, int max)
{
	__u64 raw[KMS_MAX_STACK];
	unsigned long u[KMS_MAX_STACK];
	int n = -1, i, start;

	if (max <= 0)
		return 0;
	if (stack_id >= 0 && d->o.stack)
		n = d->o.stack(d->o.stack_ctx, stack_id, raw, KMS_MAX_STACK);
	if (n <= 0) {
		if (!site)
			return 0;
		ips[0] = site;
		return 1;
	}
	for (i = 0; i < n; i++)
		u[i] = raw[i];
	/* the allocator's own frames go: the first frame shown is the caller */
	start = d->o.ksyms ? frames__pick_site(d->o.ksyms, u, n) : -1;
	if (start < 0)
		start = 0;
	for (i = 0; i < max && start + i < n; i++)
		ips[i] = raw[start + i];
	return i;
}

/* ---- misuse ---- */

static void misuse_add(struct detect *d, int kind, int ctx, int fam, const struct kms_event *e)
{
	struct detect_misuse key;
	struct detect_misuse *m;
	bool created;
	long i;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.ctx = ctx;
	key.family = fam;
	key.stack_id = e->stack_id < 0 ? -1 : e->stack_id;
	key.site = e->site;
	key.obj = e->obj;
	key.gfp = e->gfp;
	i = kvec__get(&d->misuse, &key, &created);
	if (i < 0)
		return;
	m = kvec__at(&d->misuse, i);
	if (created) {
		m->pc = e->pc;
		m->pid = e->pid;
		m->order = e->order;
		m->first_ts = e->ts;
	}
	m->count++;
}

static void misuse_check(struct detect *d, const struct kms_event *e, int fam, int nested)
{
	int base = d->o.baseline_pc[fam];
	int ctx = detect__classify(e->ctx, e->pc, base);
	bool atomic, blocking, gfp_known;

	if (!(e->ctx & KMS_CTX_KNOWN))
		d->ms.no_context++;
	else if (ctx == DCTX_UNKNOWN)
		d->ms.no_baseline++;
	d->ms.by_ctx[ctx]++;
	if (ctx == DCTX_UNKNOWN)
		return;
	/* the outer slab/vmalloc allocation carries the verdict for its pages */
	if (nested >= 0) {
		d->ms.nested_skipped++;
		return;
	}
	d->ms.checked++;
	atomic = ctx != DCTX_PROCESS;
	/* vmalloc's tracepoint has no GFP (0): vmalloc may sleep whatever was asked */
	gfp_known = d->o.gfp_direct_reclaim && e->gfp;
	blocking = gfp_known && (e->gfp & d->o.gfp_direct_reclaim);
	if (!d->o.gfp_direct_reclaim)
		d->ms.gfp_unknown++;

	if (fam == KMS_FAM_VMALLOC) {
		if (atomic && (!gfp_known || blocking))
			misuse_add(d, MIS_VMALLOC_IN_ATOMIC, ctx, fam, e);
		return;
	}
	if (!gfp_known)
		return;
	if (atomic && blocking)
		misuse_add(d, MIS_BLOCKING_IN_ATOMIC, ctx, fam, e);
	else if (!atomic && !blocking)
		misuse_add(d, MIS_ATOMIC_IN_PROCESS, ctx, fam, e);
	if (fam == KMS_FAM_PAGE && e->order >= HIGH_ORDER && !blocking)
		misuse_add(d, MIS_HIGH_ORDER_ATOMIC, ctx, fam, e);
}

/* ---- bad frees ---- */

static void badfree_add(struct detect *d, int kind, const struct orec *a, const struct kms_event *e,
			__u64 first_free_site)
{
	struct detect_badfree key;
	struct detect_badfree *b;
	bool created;
	long i;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.alloc_type = a->type;
	key.free_type = e->type;
	key.alloc_stack_id = a->stack_id;
	key.alloc_site = a->site;
	key.alloc_obj = a->obj;
	key.free_site = e->site;
	key.free_obj = e->type == KMS_EV_CACHE_FREE ? e->obj : 0;
	key.first_free_site = first_free_site;
	i = kvec__get(&d->badfree, &key, &created);
	if (i < 0)
		return;
	b = kvec__at(&d->badfree, i);
	if (created) {
		b->ptr = e->ptr;
		b->alloc_pid = a->pid;
		b->free_pid = e->pid;
	}
	b->count++;
}

static void freed_remember(struct detect *d, const struct orec *a, const struct kms_event *e)
{
	struct ring_ent *slot;
	struct orec *r;
	bool created;

	if (d->ring_nr == d->ring_cap) {
		/* bounded: the oldest free is forgotten */
		struct ring_ent *old = &d->ring[d->ring_head];

		r = otab__find(&d->freed, old->cls, old->ptr);
		if (r && r->seq == old->seq)
			otab__delete(&d->freed, r);
		d->ring_head = (d->ring_head + 1) % d->ring_cap;
		d->ring_nr--;
		d->fs.freed_evicted++;
	}
	r = otab__get(&d->freed, a->cls, a->ptr, &created);
	if (!r)
		return;
	r->ts = e->ts;
	r->site = a->site;
	r->obj = a->obj;
	r->pid = a->pid;
	r->stack_id = a->stack_id;
	r->type = a->type;
	r->free_site = e->site;
	r->free_pid = e->pid;
	r->seq = ++d->seq;
	slot = &d->ring[(d->ring_head + d->ring_nr) % d->ring_cap];
	slot->ptr = a->ptr;
	slot->cls = a->cls;
	slot->seq = r->seq;
	d->ring_nr++;
}

/* ---- leaks ---- */

static long site_get(struct detect *d, int fam, __u64 site, __u64 obj)
{
	struct detect_site key;
	bool created;

	memset(&key, 0, sizeof(key));
	key.family = fam;
	key.site = site;
	key.obj = obj;
	return kvec__get(&d->sites, &key, &created);
}

/*
 * Functions that fill the page cache. Most page-cache pages are movable and
 * caught by their GFP; a block device's (buffer heads, metadata) are not.
 */
static const char *const page_cache_funcs[] = {
	"__filemap_get_folio", "filemap_alloc_folio", "__page_cache_alloc",
	"page_cache_ra_", "grow_dev_folio", "grow_dev_page",
};

static bool page_cache_site(const struct detect *d, __u64 site)
{
	const struct ksym *s = d->o.ksyms && site ? ksyms__resolve(d->o.ksyms, site) : NULL;

	for (size_t i = 0; s && i < sizeof(page_cache_funcs) / sizeof(page_cache_funcs[0]); i++)
		if (!strncmp(s->name, page_cache_funcs[i], strlen(page_cache_funcs[i])))
			return true;
	return false;
}

static int retained_kind(const struct detect *d, const struct kms_event *e, int fam)
{
	if (e->gfp & d->o.gfp_retained)
		return RET_GFP;
	if (fam == KMS_FAM_PAGE && page_cache_site(d, e->site))
		return RET_PAGE_CACHE;
	if (fam == KMS_FAM_CACHE) {
		long i = kvec__find(&d->objnames, &e->obj);

		if (i >= 0 && (((const struct name_item *)kvec__at(&d->objnames, i))->flags &
			       KMS_META_RECLAIMABLE))
			return RET_CACHE;
	}
	return RET_NONE;
}

static long group_get(struct detect *d, const struct kms_event *e, int fam)
{
	struct detect_group key;
	struct detect_group *g;
	bool created;
	long i, s;

	memset(&key, 0, sizeof(key));
	key.family = fam;
	key.stack_id = e->stack_id < 0 ? -1 : e->stack_id;
	key.site = e->site;
	key.obj = (fam == KMS_FAM_CACHE || fam == KMS_FAM_DMA) ? e->obj : 0;
	i = kvec__get(&d->groups, &key, &created);
	if (i < 0 || !created)
		return i;
	s = site_get(d, fam, key.site, key.obj);
	g = kvec__at(&d->groups, i);
	g->nested = fam == KMS_FAM_PAGE ? page_nested(d, key.stack_id) : -1;
	g->retained = retained_kind(d, e, fam);
	g->site_idx = s < 0 ? (size_t)-1 : (size_t)s;
	g->gfp = e->gfp;
	g->pid = e->pid;
	return i;
}

static struct detect_site *group_site(struct detect *d, const struct detect_group *g)
{
	return g->site_idx < d->sites.nr ? kvec__at(&d->sites, g->site_idx) : NULL;
}

/* an object stops being outstanding; bytes: how much of it */
static void release(struct detect *d, struct orec *r, __u64 bytes, bool whole, bool implicit)
{
	struct detect_group *g = kvec__at(&d->groups, r->group);
	struct detect_site *s = group_site(d, g);

	g->outstanding_bytes -= bytes < g->outstanding_bytes ? bytes : g->outstanding_bytes;
	if (!whole)
		return;
	if (g->outstanding)
		g->outstanding--;
	if (implicit) {
		g->implicit_frees++;
		if (s)
			s->implicit_frees++;
		d->fs.implicit[g->family]++;
	} else {
		g->frees++;
		if (s)
			s->frees++;
	}
	if (r->cls == OC_PAGE && r->order < NR_ORDERS && d->live_pages_by_order[r->order])
		d->live_pages_by_order[r->order]--;
}

static void learn_direct_map(struct detect *d, const struct kms_event *e, const struct last_page *lp)
{
	__u64 base;

	/* a large kmalloc is one page block: its page event comes just before it */
	if (!lp->valid || e->bytes_alloc < (2U << d->o.page_shift) ||
	    e->bytes_alloc != (1U << d->o.page_shift) << lp->order)
		return;
	base = e->ptr - (lp->pfn << d->o.page_shift);
	if (base & (DMAP_ALIGN - 1))
		return;
	if (base == d->dmap_cand) {
		if (++d->dmap_votes >= DMAP_VOTES)
			d->dmap = base;
	} else if (!d->dmap) {
		d->dmap_cand = base;
		d->dmap_votes = 1;
	}
}

static void on_alloc(struct detect *d, const struct kms_event *e, int fam, int cls,
		     const struct last_page *prev)
{
	struct detect_group *g;
	struct orec *r;
	int nested = -1;
	bool created;
	long gi;

	if (cls == OC_PAGE) {
		struct last_page *lp = &d->last_page[e->cpu % LAST_PAGE_CPUS];

		lp->pfn = e->ptr;
		lp->order = e->order;
		lp->valid = true;
		nested = page_nested(d, e->stack_id);
	} else if (e->type == KMS_EV_KMALLOC) {
		learn_direct_map(d, e, prev);
	}
	if (d->o.misuse)
		misuse_check(d, e, fam, nested);
	if (!d->o.leaks || !e->ptr)
		return;

	if (d->ring) {
		/* allocated again: an earlier free of this address is no longer a double free */
		r = otab__find(&d->freed, cls, e->ptr);
		if (r)
			otab__delete(&d->freed, r);
	}
	gi = group_get(d, e, fam);
	if (gi < 0)
		return;
	r = otab__get(&d->live, cls, e->ptr, &created);
	if (!r)
		return;
	if (!created) {
		/* a live address handed out again: it was freed without a trace event */
		release(d, r, r->bytes, true, true);
	}
	r->ts = e->ts;
	r->site = e->site;
	r->obj = e->obj;
	r->group = gi;
	r->bytes = e->bytes_alloc;
	r->gfp = e->gfp;
	r->pid = e->pid;
	r->stack_id = e->stack_id;
	r->type = e->type;
	r->order = cls == OC_PAGE ? e->order : 0;
	if (cls == OC_PAGE && r->order < NR_ORDERS)
		d->live_pages_by_order[r->order]++;

	g = kvec__at(&d->groups, gi);
	g->allocs++;
	g->outstanding++;
	g->outstanding_bytes += e->bytes_alloc;
	if (e->gfp != g->gfp)
		g->gfp_mixed = true;
	if (g->site_idx < d->sites.nr)
		((struct detect_site *)kvec__at(&d->sites, g->site_idx))->allocs++;
}

/* split_page() frees the pages of a higher-order block one by one */
static struct orec *page_lookup(struct detect *d, __u64 pfn)
{
	struct orec *r = otab__find(&d->live, OC_PAGE, pfn);
	unsigned int o, max_live = 0;

	if (r)
		return r;
	for (o = NR_ORDERS - 1; o > 0; o--)
		if (d->live_pages_by_order[o]) {
			max_live = o;
			break;
		}
	if (max_live > SPLIT_MAX_ORDER)
		max_live = SPLIT_MAX_ORDER;
	for (o = 1; o <= max_live; o++) {
		__u64 head;

		if (!(pfn & (1ULL << (o - 1))))
			continue;
		head = pfn & ~((1ULL << o) - 1);
		r = otab__find(&d->live, OC_PAGE, head);
		if (r && pfn - head < (1ULL << r->order))
			return r;
	}
	return NULL;
}

/* a free whose address is live in another class: freed through the wrong API */
static struct orec *wrong_class(struct detect *d, const struct kms_event *e, int cls)
{
	struct orec *r;
	int c;

	if (cls == OC_PAGE)
		return NULL;	/* page frees run inside every allocator: never "wrong" */
	for (c = 0; c < OC_NR; c++) {
		if (c == cls || c == OC_PAGE)
			continue;
		r = otab__find(&d->live, c, e->ptr);
		if (r)
			return r;
	}
	/* a direct-map address of a page block, once the base is known */
	if (d->dmap && e->ptr >= d->dmap && !((e->ptr - d->dmap) & ((1ULL << d->o.page_shift) - 1))) {
		r = otab__find(&d->live, OC_PAGE, (e->ptr - d->dmap) >> d->o.page_shift);
		if (r)
			return r;
	}
	return NULL;
}

static void on_free(struct detect *d, const struct kms_event *e, int fam, int cls)
{
	struct orec *r;

	if (!d->o.leaks || !e->ptr)
		return;	/* kfree(NULL) frees nothing */
	r = cls == OC_PAGE ? page_lookup(d, e->ptr) : otab__find(&d->live, cls, e->ptr);
	/* kvfree_rcu() takes vmalloc objects too */
	if (!r && e->type == KMS_EV_RCU_FREE)
		r = otab__find(&d->live, OC_VMALLOC, e->ptr);
	if (r) {
		unsigned int m = e->type == KMS_EV_PAGE_FREE ? e->order : 0;

		if (d->o.bad_frees && e->type == KMS_EV_CACHE_FREE && r->type == KMS_EV_CACHE_ALLOC &&
		    e->obj && r->obj && e->obj != r->obj)
			badfree_add(d, BF_WRONG_CACHE, r, e, 0);
		if (cls == OC_PAGE && m < r->order) {
			__u64 part = (__u64)(1U << d->o.page_shift) << m;

			d->fs.page_split_frees++;
			if (part < r->bytes) {
				r->bytes -= part;
				release(d, r, part, false, false);
				return;
			}
		}
		release(d, r, r->bytes, true, false);
		/* page frames come back through untraced bulk allocations: no double-free check */
		if (d->ring && cls != OC_PAGE) {
			struct orec a = *r;

			otab__delete(&d->live, r);
			freed_remember(d, &a, e);
			return;
		}
		otab__delete(&d->live, r);
		return;
	}
	/* a free by a process outside -p/-- CMD matters only if it frees one of ours */
	if (e->ctx & KMS_CTX_OUTSIDE)
		return;
	if (d->o.bad_frees) {
		r = wrong_class(d, e, cls);
		if (r) {
			/* the kernel did not free it either: it stays live */
			badfree_add(d, BF_WRONG_API, r, e, 0);
			return;
		}
		r = cls == OC_PAGE ? NULL : otab__find(&d->freed, cls, e->ptr);
		if (r) {
			badfree_add(d, BF_DOUBLE_FREE, r, e, r->free_site);
			return;
		}
	}
	if (fam >= 0)
		d->fs.unmatched[fam]++;
}

void detect__event(struct detect *d, const struct kms_event *e)
{
	struct last_page *lp, prev;
	int fam, cls;

	fam = kms_ev_family(e->type);
	cls = kms_ev_class(e->type);
	if (fam < 0 || cls < 0)
		return;
	if (e->ts > d->max_ts)
		d->max_ts = e->ts;
	/* the real free of an object handed to RCU: freed once already, at the handoff */
	if (e->ctx & KMS_CTX_RCU_DONE)
		return;
	/* the last page allocation is only "just before" for the next record of the CPU */
	lp = &d->last_page[e->cpu % LAST_PAGE_CPUS];
	prev = *lp;
	lp->valid = false;
	if (kms_ev_is_alloc(e->type))
		on_alloc(d, e, fam, cls, &prev);
	else if (kms_ev_is_free(e->type))
		on_free(d, e, fam, cls);
}

void detect__meta(struct detect *d, const struct kms_meta *m)
{
	struct name_item *n;
	struct kvec *v;
	bool created;
	__u64 key = m->key;
	long i;

	if (m->type == KMS_EV_META_LOSS) {
		for (int f = 0; f < KMS_FAM_MAX; f++) {
			if (!(m->key & (1U << f)))
				continue;
			d->loss_cut[f] = d->max_ts;
			d->lossy[f] = true;
		}
		return;
	}
	if (m->type == KMS_EV_META_TASK)
		v = &d->comms;
	else if (m->type == KMS_EV_META_CACHE || m->type == KMS_EV_META_DEVICE)
		v = &d->objnames;
	else
		return;
	i = kvec__get(v, &key, &created);
	if (i < 0)
		return;
	n = kvec__at(v, i);
	n->flags = m->flags;
	memcpy(n->name, m->name, sizeof(n->name) - 1);
	n->name[sizeof(n->name) - 1] = '\0';
}

/* ---- read side ---- */

size_t detect__nr_misuse(const struct detect *d)
{
	return d->misuse.nr;
}

const struct detect_misuse *detect__misuse(const struct detect *d, size_t i)
{
	return i < d->misuse.nr ? kvec__at(&d->misuse, i) : NULL;
}

const struct detect_misuse_stats *detect__misuse_stats(const struct detect *d)
{
	return &d->ms;
}

size_t detect__nr_badfree(const struct detect *d)
{
	return d->badfree.nr;
}

const struct detect_badfree *detect__badfree(const struct detect *d, size_t i)
{
	return i < d->badfree.nr ? kvec__at(&d->badfree, i) : NULL;
}

const struct detect_free_stats *detect__free_stats(const struct detect *d)
{
	return &d->fs;
}

size_t detect__nr_groups(const struct detect *d)
{
	return d->groups.nr;
}

const struct detect_group *detect__group(const struct detect *d, size_t i)
{
	return i < d->groups.nr ? kvec__at(&d->groups, i) : NULL;
}

const struct detect_site *detect__site(const struct detect *d, size_t i)
{
	return i < d->sites.nr ? kvec__at(&d->sites, i) : NULL;
}

bool detect__site_unobservable(const struct detect *d, size_t site_idx)
{
	const struct detect_site *s = detect__site(d, site_idx);

	return s && s->implicit_frees > 0;
}

/*
 * The rule (docs/detectors.md). Records lost after an object was allocated
 * could hold its free. Slab objects are also freed through RCU and in bulk,
 * which no tracepoint reports: where those paths are not traced, a site
 * vouches for its outstanding objects only if most of its objects that
 * went away did so through a traced free. Other families have no untraced
 * free path (their deferred frees end in a traced free, which the settle
 * period after the trace waits for).
 */
unsigned int detect__doubts(const struct detect *d, const struct detect_group *g, __u64 exposed)
{
	const struct detect_site *s = g->site_idx < d->sites.nr ? kvec__at(&d->sites, g->site_idx) :
				      NULL;
	unsigned int why = exposed ? DOUBT_RECORDS_LOST : 0;
	__u64 out;

	if (d->o.deferred_frees || (g->family != KMS_FAM_KMALLOC && g->family != KMS_FAM_CACHE))
		return why;
	if (!s || !s->frees)
		return why | DOUBT_FREES_UNTRACED;
	out = s->allocs - s->frees - (s->implicit_frees < s->allocs - s->frees ?
				      s->implicit_frees : s->allocs - s->frees);
	return s->frees < out ? why | DOUBT_FEW_FREES : why;
}

__u64 detect__nr_live(const struct detect *d)
{
	return d->live.count;
}

int detect__leaks(const struct detect *d, __u64 now, __u64 min_age_ns,
		  struct detect_leak **rows, size_t *nr)
{
	struct detect_leak *all, *out;
	size_t i, n = d->groups.nr, k = 0;

	*rows = NULL;
	*nr = 0;
	all = calloc(n ? n : 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i <= d->live.mask; i++) {
		const struct orec *r = &d->live.slots[i];
		struct detect_leak *l;

		int fam;

		if (!r->hash || r->group >= n)
			continue;
		l = &all[r->group];
		if (r->ts + min_age_ns > now) {
			l->young++;
			continue;
		}
		if (!l->count || r->ts < l->oldest_ts)
			l->oldest_ts = r->ts;
		l->count++;
		l->bytes += r->bytes;
		fam = ((const struct detect_group *)kvec__at(&d->groups, r->group))->family;
		if (d->lossy[fam] && r->ts <= d->loss_cut[fam])
			l->exposed++;
	}
	/* compact in place: rows for groups with anything outstanding */
	out = all;
	for (i = 0; i < n; i++) {
		if (!all[i].count && !all[i].young)
			continue;
		out[k] = all[i];
		out[k].group = i;
		k++;
	}
	*rows = out;
	*nr = k;
	return 0;
}

void detect__snapshot(struct detect *d)
{
	size_t i;

	for (i = 0; i < d->groups.nr; i++) {
		struct detect_group *g = kvec__at(&d->groups, i);

		if (g->nr_snaps == DETECT_GROWTH_KEEP) {
			memmove(g->snaps, g->snaps + 1, (DETECT_GROWTH_KEEP - 1) * sizeof(g->snaps[0]));
			g->nr_snaps--;
		}
		g->snaps[g->nr_snaps++] = g->outstanding_bytes;
	}
}

unsigned int detect__growth_run(const struct detect_group *g)
{
	unsigned int run = 0, i;

	for (i = g->nr_snaps; i >= 2 && g->snaps[i - 1] > g->snaps[i - 2]; i--)
		run++;
	return run;
}

static const char *name_lookup(const struct kvec *v, __u64 key)
{
	long i = kvec__find(v, &key);

	return i < 0 ? NULL : ((const struct name_item *)kvec__at(v, i))->name;
}

const char *detect__comm(const struct detect *d, __u32 pid)
{
	return name_lookup(&d->comms, pid);
}

const char *detect__obj_name(const struct detect *d, __u64 obj)
{
	return obj ? name_lookup(&d->objnames, obj) : NULL;
}

__u64 detect__direct_map(const struct detect *d)
{
	return d->dmap;
}
