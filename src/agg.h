/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The aggregation core. Fed records in time order, from the live collector
 * or from a trace file; it never knows which. Everything a report prints is
 * read from here.
 */
#ifndef KMS_AGG_H
#define KMS_AGG_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include "kmemscope.h"

struct agg;

/* records come through the filter stage (filter.h): the aggregator counts all it is fed */
struct agg *agg__new(void);
void agg__free(struct agg *a);

/* e->cpu is set and e->site already resolved (from the stack when the event had none) */
void agg__event(struct agg *a, const struct kms_event *e);

/*
 * What the live-object store (live.h) found for the record agg__event() was
 * just given: the pipeline calls these.
 */
struct live_obj;
/*
 * An allocation added to the store as o (NULL: not tracked): sets o's site
 * and sizes. nested: another allocator's backing store (nest.h), counted in a
 * row of its own at the site (obj KMS_OBJ_NESTED).
 */
void agg__on_alloc(struct agg *a, const struct kms_event *e, struct live_obj *o, bool nested);
/* a free of o: bytes of it when not whole (split: part of a split page block) */
void agg__on_free(struct agg *a, const struct kms_event *e, const struct live_obj *o,
		  __u32 bytes, bool whole, bool split);
/* old was still live when its address was allocated again: its free was not traced */
void agg__on_implicit_free(struct agg *a, const struct live_obj *old);
/* a free of nothing the store holds */
void agg__on_unmatched(struct agg *a, const struct kms_event *e);
/* a vmap area vmalloc did not make (KMS_X_MAPPING): counted apart, nothing else */
void agg__on_mapping(struct agg *a);
void agg__meta(struct agg *a, const struct kms_meta *m);

/* what a free event can free: kfree takes kmalloc and kmem_cache objects alike */
enum kms_obj_class {
	KMS_OC_SLAB = 0,
	KMS_OC_PAGE,
	KMS_OC_VMALLOC,
	KMS_OC_DMA,
	KMS_OC_PERCPU,
	KMS_OC_USER,		/* the traced process's heap (one process: --user) */
	KMS_OC_UMAP,		/* ... and its mappings */
	KMS_OC_NR,
};

/*
 * The one table of event types (agg.c), read through these: they are inline
 * because every record asks several of them on its way through the pipeline.
 */
struct kms_ev_info {
	const char *name;	/* as in docs/json-schema.md */
	signed char family;	/* KMS_FAM_*, -1 for none */
	signed char cls;	/* KMS_OC_*, -1 for none */
	bool alloc;
	bool free;
	bool deferred;		/* a free the kernel makes with no per-object tracepoint
				 * (RCU, bulk), seen through function probes */
};

extern const struct kms_ev_info kms_ev_table[KMS_EV_NR_EVENTS];

/* the row of an event type; NULL for KMS_EV_NONE, metadata and anything else */
static inline const struct kms_ev_info *kms_ev_info(int type)
{
	return (unsigned int)type - 1 < KMS_EV_NR_EVENTS - 1 ? &kms_ev_table[type] : NULL;
}

static inline int kms_ev_family(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i ? i->family : -1;
}

static inline int kms_ev_class(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i ? i->cls : -1;
}

static inline bool kms_ev_is_alloc(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i && i->alloc;
}

/* a vmap area vmalloc did not make (KMS_X_MAPPING): an event, but no vmalloc allocation */
static inline bool kms_ev_is_mapping(const struct kms_event *e)
{
	return e->type == KMS_EV_VMALLOC && (e->extra & KMS_X_MAPPING);
}

static inline bool kms_ev_is_free(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i && i->free;
}

static inline bool kms_ev_is_deferred(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i && i->deferred;
}

static inline bool kms_family_is_user(int fam)
{
	return fam == KMS_FAM_USER || fam == KMS_FAM_UMAP;
}

const char *kms_ev_name(int type);
const char *kms_family_name(int fam);

/* ---- read side, for reports: valid until the next agg__event/agg__meta ---- */

#define AGG_NR_ORDERS	16	/* page orders kept; higher orders count in the last */
#define AGG_SITE_GFP	4	/* distinct GFP values kept per site; the rest: gfp_other */
#define AGG_NR_SIZES	33	/* size buckets: [0], [1], [2,3], ... [2^31, 2^32-1] */
#define AGG_MAX_NODES	1024	/* node ids at or above this are not counted per node */

/* totals of one family; frees are matched ones, attributed to the allocating family */
struct agg_counts {
	__u64 allocs;
	__u64 frees;
	__u64 unmatched_frees;	/* frees with no allocation seen (charged to the freeing event) */
	__u64 fails;
	__u64 bytes_req;
	__u64 bytes_alloc;
	__u64 outstanding;
	__u64 outstanding_bytes;
	__u64 realloc_without_free;	/* live object allocated again: its free was lost */
	__u64 deferred_frees;	/* of frees: through RCU or a bulk free (kms_ev_is_deferred) */
};

struct agg_site_gfp {
	__u32 value;		/* raw gfp_t */
	__u64 allocs;
};

/* one (family, call site, cache or device) */
struct agg_site {
	int family;
	__u64 addr;		/* call site, 0 when unknown */
	__u64 obj;		/* kmem_cache (kmem_cache) or device (dma), 0 for the others */
	__u64 allocs;
	__u64 frees;		/* frees of allocations made here, wherever freed */
	__u64 deferred_frees;	/* of frees: through RCU or a bulk free */
	__u64 fails;
	__u64 bytes_req;
	__u64 bytes_alloc;
	__u64 outstanding;
	__u64 outstanding_bytes;
	unsigned int nr_gfp;
	struct agg_site_gfp gfp[AGG_SITE_GFP];
	__u64 gfp_other;	/* allocs whose GFP value did not fit in gfp[] */
	__u64 orders[AGG_NR_ORDERS];	/* page family: allocs by order */
};

struct agg_gfp {
	__u32 value;		/* raw gfp_t of the traced kernel */
	__u64 allocs;
	__u64 bytes_alloc;
};

struct agg_order {
	__u64 allocs;		/* mm_page_alloc by order */
	__u64 frees;		/* page free events by their order, matched or not */
};

struct agg_cache {
	__u64 ptr;		/* struct kmem_cache * */
	bool known;		/* a CACHE meta record named it */
	char name[KMS_NAME_LEN];
	__u32 object_size;
	__u32 size;
	__u32 flags;		/* KMS_META_* */
	__u64 allocs;
	__u64 frees;
	__u64 unmatched_frees;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

struct agg_proc {
	__u32 pid;		/* tgid */
	char comm[KMS_COMM_LEN];	/* latest TASK meta, "" when none was seen */
	__u64 allocs;
	__u64 bytes_alloc;
	__u64 events[KMS_EV_NR_EVENTS];	/* every record of this process, by type */
};

struct agg_node {
	__u64 allocs;
	__u64 bytes_alloc;
};

struct agg_stats {
	__u64 events;		/* kms_event records fed */
	__u64 metas;		/* kms_meta records fed */
	__u64 invalid;		/* records of unknown type or family */
	__u64 filtered;		/* frees from outside the filters that freed none of ours */
	__u64 self;		/* frees by kmemscope itself that freed none of ours */
	__u64 unmatched_frees;	/* all families */
	__u64 exit_frees;	/* user frees at thread exit matching nothing (KMS_CTX_UEXIT) */
	__u64 realloc_without_free;	/* all families */
	__u64 rcu_completed;	/* real frees of objects already handed to RCU: not counted again */
	__u64 page_split_frees;	/* page frees that freed part of a higher-order allocation */
	__u64 vmap_mappings;	/* vmap areas vmalloc did not make (KMS_X_MAPPING): not counted */
	__u64 nomem;		/* events not fully counted: a table could not grow */
	__u64 first_ts;
	__u64 last_ts;
};


/* node_of_cpu[cpu] for events with no node (default: node 0); copied */
int agg__set_cpu_nodes(struct agg *a, const int *node_of_cpu, int nr_cpus);

const struct agg_stats *agg__stats(const struct agg *a);
/* summed over the family's sites when asked after records: ask again after more */
const struct agg_counts *agg__family(const struct agg *a, int fam);
size_t agg__nr_sites(const struct agg *a);
const struct agg_site *agg__site(const struct agg *a, size_t i);
size_t agg__nr_gfp(const struct agg *a);
const struct agg_gfp *agg__gfp(const struct agg *a, size_t i);
/* order 0 .. AGG_NR_ORDERS - 1, NULL outside */
const struct agg_order *agg__order(const struct agg *a, int order);
/* allocs in size bucket i (0 .. AGG_NR_SIZES - 1), its bounds in *min and *max */
__u64 agg__size_bucket(const struct agg *a, int i, __u64 *min, __u64 *max);
size_t agg__nr_caches(const struct agg *a);
const struct agg_cache *agg__cache(const struct agg *a, size_t i);
size_t agg__nr_procs(const struct agg *a);
const struct agg_proc *agg__proc(const struct agg *a, size_t i);
/* highest node id counted + 1 */
int agg__nr_nodes(const struct agg *a);
const struct agg_node *agg__node(const struct agg *a, int node);
/* names from META records, NULL when none was seen */
const char *agg__cache_name(const struct agg *a, __u64 cache);
/* a cache a META record named, NULL when none did */
const struct agg_cache *agg__find_cache(const struct agg *a, __u64 cache);
const char *agg__device_name(const struct agg *a, __u64 dev);
/* the comm the latest TASK record gave pid, NULL when none did */
const char *agg__proc_comm(const struct agg *a, __u32 pid);

#endif
