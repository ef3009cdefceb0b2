/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The aggregation core: counters. One pass over records in time order;
 * everything is counted in htab.h tables that map a key to a dense array
 * index. Which allocation a free frees is the live-object store's answer
 * (live.h), given through the agg__on_*() hooks. No allocation per event
 * once the tables are warm, no string work per event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "htab.h"
#include "agg.h"
#include "live.h"

/* ---- growable dense arrays ---- */

static int vec__reserve(void **arr, size_t *cap, size_t nr, size_t elem)
{
	size_t ncap;
	void *p;

	if (nr < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return 0;
}

/* ---- tables of the aggregation ---- */

struct site_key {
	__u64 addr;
	__u64 obj;
	__u32 family;
	__u32 pad;
};

struct site_slot {
	struct site_key key;
	__u32 idx;
	__u8 pad[3];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct site_slot);

struct u64_slot {		/* caches, devices, processes, gfp values */
	__u64 key;
	__u32 idx;
	__u8 pad[3];
	__u8 meta;
};
HTAB_SLOT(struct u64_slot);

static __u64 site_hash(const struct site_key *k)
{
	return kms_hash64(k->addr ^ (k->obj * 0x9e3779b97f4a7c15ULL) ^ ((__u64)k->family << 56));
}

static __u64 site_slot_hash(const void *slot)
{
	return site_hash(&((const struct site_slot *)slot)->key);
}

struct site {
	struct agg_site pub;
	int cache;		/* index into caches, -1 when none */
	__u32 obj_req;		/* kmem_cache sites: object_size once known */
	__u32 obj_alloc;	/* ... and size */
};

struct proc {
	struct agg_proc pub;
};

#define AGG_SITE_CACHE_BITS 10
#define AGG_PROC_CACHE 64

struct proc_cache {
	__u32 pid;
	__u32 idx;		/* process index + 1, 0: empty */
};

struct site_cache {
	struct site_key key;
	__u32 idx;		/* site index + 1, 0: empty */
};

/* agg__family()'s answers, summed over the sites when one is asked after a change */
struct fam_sums {
	bool valid;
	struct agg_counts fam[KMS_FAM_MAX];
};

struct agg {

	struct agg_stats stats;
	/*
	 * Per family, only what has no site (unmatched frees, failures, implicit
	 * frees): the rest is the sum of the family's sites, made when a report
	 * reads it (agg__family()), not counted twice per allocation and free.
	 */
	struct agg_counts fam[KMS_FAM_MAX];
	struct fam_sums *sums;

	struct htab site_tab;
	struct site_cache site_cache[1 << AGG_SITE_CACHE_BITS];
	struct site *sites;
	size_t nr_sites, cap_sites;

	struct htab cache_tab;
	struct agg_cache *caches;
	size_t nr_caches, cap_caches;

	struct htab dev_tab;
	struct dev { __u64 ptr; char name[KMS_NAME_LEN]; } *devs;
	size_t nr_devs, cap_devs;

	struct htab proc_tab;
	struct agg_proc *procs;
	size_t nr_procs, cap_procs;
	struct proc_cache proc_cache[AGG_PROC_CACHE];
	/* the process of the record agg__event() was last given: its allocation asks again */
	struct agg_proc *cur_proc;

	struct htab gfp_tab;
	struct agg_gfp *gfps;
	size_t nr_gfps, cap_gfps;
	__u32 last_gfp;
	__s64 last_gfp_idx;

	struct agg_order orders[AGG_NR_ORDERS];
	__u64 sizes[AGG_NR_SIZES];

	int *cpu_node;
	int nr_cpus;
	struct agg_node nodes[AGG_MAX_NODES];
	int nr_nodes;
};

/* ---- event type table ---- */

/* kmalloc and kmem_cache share KMS_OC_SLAB: kfree may free a cache object */
const struct kms_ev_info kms_ev_table[KMS_EV_NR_EVENTS] = {
	[KMS_EV_NONE]		   = { NULL, -1, -1, false, false },
	[KMS_EV_KMALLOC]	   = { "kmalloc", KMS_FAM_KMALLOC, KMS_OC_SLAB, true, false },
	[KMS_EV_KFREE]		   = { "kfree", KMS_FAM_KMALLOC, KMS_OC_SLAB, false, true },
	[KMS_EV_CACHE_ALLOC]	   = { "kmem_cache_alloc", KMS_FAM_CACHE, KMS_OC_SLAB, true, false },
	[KMS_EV_CACHE_FREE]	   = { "kmem_cache_free", KMS_FAM_CACHE, KMS_OC_SLAB, false, true },
	[KMS_EV_PAGE_ALLOC]	   = { "mm_page_alloc", KMS_FAM_PAGE, KMS_OC_PAGE, true, false },
	[KMS_EV_PAGE_FREE]	   = { "mm_page_free", KMS_FAM_PAGE, KMS_OC_PAGE, false, true },
	[KMS_EV_PAGE_FREE_BATCHED] = { "mm_page_free_batched", KMS_FAM_PAGE, KMS_OC_PAGE, false, true },
	[KMS_EV_VMALLOC]	   = { "vmalloc", KMS_FAM_VMALLOC, KMS_OC_VMALLOC, true, false },
	[KMS_EV_VFREE]		   = { "vfree", KMS_FAM_VMALLOC, KMS_OC_VMALLOC, false, true },
	[KMS_EV_DMA_ALLOC]	   = { "dma_alloc", KMS_FAM_DMA, KMS_OC_DMA, true, false },
	[KMS_EV_DMA_FREE]	   = { "dma_free", KMS_FAM_DMA, KMS_OC_DMA, false, true },
	[KMS_EV_PERCPU_ALLOC]	   = { "percpu_alloc", KMS_FAM_PERCPU, KMS_OC_PERCPU, true, false },
	[KMS_EV_PERCPU_FREE]	   = { "percpu_free", KMS_FAM_PERCPU, KMS_OC_PERCPU, false, true },
	[KMS_EV_ALLOC_FAIL]	   = { "alloc_fail", -1, -1, false, false },
	/* kvfree_rcu() may hand over a vmalloc object too: see pipeline.c */
	[KMS_EV_RCU_FREE]	   = { "kfree_rcu", KMS_FAM_KMALLOC, KMS_OC_SLAB, false, true, true },
	[KMS_EV_BULK_FREE]	   = { "kfree_bulk", KMS_FAM_KMALLOC, KMS_OC_SLAB, false, true, true },
	[KMS_EV_CACHE_BULK_FREE]   = { "kmem_cache_free_bulk", KMS_FAM_CACHE, KMS_OC_SLAB, false, true,
				       true },
	[KMS_EV_UALLOC]		   = { "malloc", KMS_FAM_USER, KMS_OC_USER, true, false },
	[KMS_EV_UFREE]		   = { "free", KMS_FAM_USER, KMS_OC_USER, false, true },
	[KMS_EV_UMMAP]		   = { "mmap", KMS_FAM_UMAP, KMS_OC_UMAP, true, false },
	[KMS_EV_UMUNMAP]	   = { "munmap", KMS_FAM_UMAP, KMS_OC_UMAP, false, true },
	[KMS_EV_UBRK]		   = { "brk", KMS_FAM_UMAP, KMS_OC_UMAP, true, false },
};

static const char *const fam_names[KMS_FAM_MAX] = {
	[KMS_FAM_KMALLOC] = "kmalloc",
	[KMS_FAM_CACHE] = "kmem_cache",
	[KMS_FAM_PAGE] = "page",
	[KMS_FAM_VMALLOC] = "vmalloc",
	[KMS_FAM_DMA] = "dma",
	[KMS_FAM_PERCPU] = "percpu",
	[KMS_FAM_USER] = "user",
	[KMS_FAM_UMAP] = "user_map",
};

const char *kms_ev_name(int type)
{
	const struct kms_ev_info *i = kms_ev_info(type);

	return i ? i->name : NULL;
}

const char *kms_family_name(int fam)
{
	if (fam < 0 || fam >= KMS_FAM_MAX)
		return NULL;
	return fam_names[fam];
}

/* ---- lifetime ---- */

struct agg *agg__new(void)
{
	struct agg *a = calloc(1, sizeof(*a));
	int err = 0;

	if (!a)
		return NULL;
	a->last_gfp_idx = -1;
	a->sums = calloc(1, sizeof(*a->sums));
	if (!a->sums)
		goto fail;
	err |= htab__init(&a->site_tab, sizeof(struct site_slot), 1024, HTAB_FAST, site_slot_hash);
	err |= htab__init(&a->cache_tab, sizeof(struct u64_slot), 256, HTAB_FAST, htab__hash_u64);
	err |= htab__init(&a->dev_tab, sizeof(struct u64_slot), 64, HTAB_FAST, htab__hash_u64);
	err |= htab__init(&a->proc_tab, sizeof(struct u64_slot), 256, HTAB_FAST, htab__hash_u64);
	err |= htab__init(&a->gfp_tab, sizeof(struct u64_slot), 64, HTAB_FAST, htab__hash_u64);
	if (err)
		goto fail;
	return a;
fail:
	agg__free(a);
	errno = ENOMEM;
	return NULL;
}

void agg__free(struct agg *a)
{
	if (!a)
		return;
	htab__fini(&a->site_tab);
	htab__fini(&a->cache_tab);
	htab__fini(&a->dev_tab);
	htab__fini(&a->proc_tab);
	htab__fini(&a->gfp_tab);
	free(a->sites);
	free(a->caches);
	free(a->devs);
	free(a->procs);
	free(a->gfps);
	free(a->cpu_node);
	free(a->sums);
	free(a);
}

int agg__set_cpu_nodes(struct agg *a, const int *node_of_cpu, int nr_cpus)
{
	int *copy = NULL;

	if (nr_cpus < 0)
		return -EINVAL;
	if (nr_cpus) {
		copy = malloc(nr_cpus * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, node_of_cpu, nr_cpus * sizeof(*copy));
	}
	free(a->cpu_node);
	a->cpu_node = copy;
	a->nr_cpus = nr_cpus;
	return 0;
}

/* ---- lookups that create ---- */

/* the table lookup behind proc_get(), out of line: nearly every record hits the cache */
static __attribute__((noinline)) struct agg_proc *proc_find(struct agg *a, __u32 pid)
{
	struct proc_cache *c = &a->proc_cache[pid % AGG_PROC_CACHE];
	struct u64_slot *s;
	__u64 key = pid;
	bool created;

	s = htab__get(&a->proc_tab, kms_hash64(key), &key, sizeof(key), sizeof(*s), &created);
	if (!s)
		return NULL;
	if (created) {
		if (vec__reserve((void **)&a->procs, &a->cap_procs, a->nr_procs,
				 sizeof(*a->procs))) {
			htab__delete(&a->proc_tab, s, sizeof(*s));
			return NULL;
		}
		s->idx = a->nr_procs++;
		a->procs[s->idx].pid = pid;
		/* the array may have moved */
		a->cur_proc = NULL;
	}
	c->pid = pid;
	c->idx = s->idx + 1;
	return &a->procs[s->idx];
}

/*
 * Every record asks for its process, and the busy ones are few (CPUs
 * interleave them): a direct-mapped cache by pid in front of the table.
 */
static inline struct agg_proc *proc_get(struct agg *a, __u32 pid)
{
	const struct proc_cache *c = &a->proc_cache[pid % AGG_PROC_CACHE];

	if (c->idx && c->pid == pid)
		return &a->procs[c->idx - 1];
	return proc_find(a, pid);
}

static int cache_get(struct agg *a, __u64 ptr)
{
	struct u64_slot *s;
	bool created;

	s = htab__get(&a->cache_tab, kms_hash64(ptr), &ptr, sizeof(ptr), sizeof(*s), &created);
	if (!s)
		return -1;
	if (created) {
		if (vec__reserve((void **)&a->caches, &a->cap_caches, a->nr_caches,
				 sizeof(*a->caches))) {
			htab__delete(&a->cache_tab, s, sizeof(*s));
			return -1;
		}
		s->idx = a->nr_caches++;
		a->caches[s->idx].ptr = ptr;
	}
	return s->idx;
}

static __attribute__((noinline)) __s64 site_find(struct agg *a, const struct site_key *key)
{
	struct site_slot *s;
	struct site *st;
	bool created;

	s = htab__get(&a->site_tab, site_hash(key), key, sizeof(*key), sizeof(*s), &created);
	if (!s)
		return -1;
	if (!created)
		return s->idx;
	if (vec__reserve((void **)&a->sites, &a->cap_sites, a->nr_sites, sizeof(*a->sites))) {
		htab__delete(&a->site_tab, s, sizeof(*s));
		return -1;
	}
	s->idx = a->nr_sites++;
	st = &a->sites[s->idx];
	st->pub.family = key->family;
	st->pub.addr = key->addr;
	st->pub.obj = key->obj;
	st->cache = key->family == KMS_FAM_CACHE && key->obj ? cache_get(a, key->obj) : -1;
	return s->idx;
}

/*
 * Every allocation asks for its site: a direct-mapped cache of the busy ones
 * in front of the table (a site's index never changes once made). 1024
 * entries (32 KiB): with 256, a system-wide recording missed on one
 * allocation in five, conflicts between its ~1000 busy sites (callgrind, stat
 * -i: 196 k table lookups of 977 k allocations; 656 with 1024).
 */
static inline __s64 site_get(struct agg *a, int fam, __u64 addr, __u64 obj)
{
	struct site_key key = { .addr = addr, .obj = obj, .family = fam };
	struct site_cache *c;
	__s64 idx;

	c = &a->site_cache[((addr ^ obj ^ fam) * 0x9e3779b97f4a7c15ULL) >> (64 - AGG_SITE_CACHE_BITS)];
	if (c->idx && c->key.addr == addr && c->key.obj == obj && c->key.family == (__u32)fam)
		return c->idx - 1;
	idx = site_find(a, &key);
	if (idx >= 0) {
		c->key = key;
		c->idx = idx + 1;
	}
	return idx;
}

static void gfp_count(struct agg *a, __u32 gfp, __u32 bytes)
{
	struct u64_slot *s;
	__u64 key = gfp;
	bool created;

	if (a->last_gfp_idx < 0 || a->last_gfp != gfp) {
		s = htab__get(&a->gfp_tab, kms_hash64(key), &key, sizeof(key), sizeof(*s), &created);
		if (!s) {
			a->stats.nomem++;
			return;
		}
		if (created) {
			if (vec__reserve((void **)&a->gfps, &a->cap_gfps, a->nr_gfps,
					 sizeof(*a->gfps))) {
				htab__delete(&a->gfp_tab, s, sizeof(*s));
				a->stats.nomem++;
				return;
			}
			s->idx = a->nr_gfps++;
			a->gfps[s->idx].value = gfp;
		}
		a->last_gfp = gfp;
		a->last_gfp_idx = s->idx;
	}
	a->gfps[a->last_gfp_idx].allocs++;
	a->gfps[a->last_gfp_idx].bytes_alloc += bytes;
}

static inline void site_gfp(struct agg_site *s, __u32 gfp)
{
	unsigned int i;

	for (i = 0; i < s->nr_gfp; i++) {
		if (s->gfp[i].value == gfp) {
			s->gfp[i].allocs++;
			return;
		}
	}
	if (s->nr_gfp < AGG_SITE_GFP) {
		s->gfp[s->nr_gfp].value = gfp;
		s->gfp[s->nr_gfp++].allocs = 1;
		return;
	}
	s->gfp_other++;
}

static inline int size_bucket(__u32 bytes)
{
	return bytes ? 32 - __builtin_clz(bytes) : 0;
}

static inline int event_node(struct agg *a, const struct kms_event *e)
{
	if (e->node >= 0)
		return e->node;
	if (e->cpu < a->nr_cpus)
		return a->cpu_node[e->cpu];
	return 0;
}

static inline unsigned int clamp_order(unsigned int o)
{
	return o < AGG_NR_ORDERS ? o : AGG_NR_ORDERS - 1;
}

/* ---- accounting ---- */

/* bytes of one object leave the live set; whole: the object is gone */
static void account_release(struct agg *a, __u32 site, __u32 bytes, bool whole)
{
	struct site *s = &a->sites[site];

	a->sums->valid = false;
	s->pub.outstanding_bytes -= bytes;
	if (s->cache >= 0)
		a->caches[s->cache].outstanding_bytes -= bytes;
	if (!whole)
		return;
	s->pub.outstanding--;
	if (s->cache >= 0)
		a->caches[s->cache].outstanding--;
}

static void account_free(struct agg *a, __u32 site, __u32 bytes, bool whole)
{
	struct site *s = &a->sites[site];

	account_release(a, site, bytes, whole);
	if (!whole)
		return;
	s->pub.frees++;
	if (s->cache >= 0)
		a->caches[s->cache].frees++;
}

void agg__on_alloc(struct agg *a, const struct kms_event *e, struct live_obj *o, bool nested)
{
	int fam = kms_ev_family(e->type);
	struct agg_proc *p = a->cur_proc && a->cur_proc->pid == e->pid ? a->cur_proc :
			     proc_get(a, e->pid);
	__u64 obj = nested ? KMS_OBJ_NESTED :
		    (fam == KMS_FAM_CACHE || fam == KMS_FAM_DMA) ? e->obj : 0;
	__u32 req = e->bytes_req, alloc = e->bytes_alloc;
	unsigned int order = 0;
	struct site *s;
	__s64 idx;
	int node;

	idx = site_get(a, fam, e->site, obj);
	if (idx < 0 || !p) {
		a->stats.nomem++;
		return;
	}
	s = &a->sites[idx];

	/* kmem_cache events carry no sizes: the cache's, once its meta is seen */
	if (fam == KMS_FAM_CACHE && !alloc) {
		if (!s->obj_alloc && s->cache >= 0 && a->caches[s->cache].known) {
			s->obj_req = a->caches[s->cache].object_size;
			s->obj_alloc = a->caches[s->cache].size;
		}
		req = s->obj_req;
		alloc = s->obj_alloc;
	}
	if (fam == KMS_FAM_PAGE) {
		order = clamp_order(e->order);
		s->pub.orders[order]++;
		a->orders[order].allocs++;
	}

	s->pub.allocs++;
	s->pub.bytes_req += req;
	s->pub.bytes_alloc += alloc;
	s->pub.outstanding++;
	s->pub.outstanding_bytes += alloc;
	site_gfp(&s->pub, e->gfp);

	a->sums->valid = false;

	if (s->cache >= 0) {
		struct agg_cache *c = &a->caches[s->cache];

		c->allocs++;
		c->outstanding++;
		c->outstanding_bytes += alloc;
	}

	gfp_count(a, e->gfp, alloc);
	a->sizes[size_bucket(alloc)]++;
	node = event_node(a, e);
	if (node >= 0 && node < AGG_MAX_NODES) {
		a->nodes[node].allocs++;
		a->nodes[node].bytes_alloc += alloc;
		if (node >= a->nr_nodes)
			a->nr_nodes = node + 1;
	}
	p->allocs++;
	p->bytes_alloc += alloc;

	if (!o) {
		/* not tracked (no memory, or no address): totals stay consistent */
		account_release(a, idx, alloc, true);
		if (e->ptr)
			a->stats.nomem++;
		return;
	}
	o->site = idx;
	o->pid = e->pid;
	o->bytes_alloc = alloc;
	o->ts = e->ts;
}

void agg__on_implicit_free(struct agg *a, const struct live_obj *old)
{
	account_release(a, old->site, old->bytes_alloc, true);
	a->fam[a->sites[old->site].pub.family].realloc_without_free++;
	a->stats.realloc_without_free++;
}

void agg__on_mapping(struct agg *a)
{
	a->stats.vmap_mappings++;
}

void agg__on_unmatched(struct agg *a, const struct kms_event *e)
{
	int fam = kms_ev_family(e->type);

	/* a free by a process outside the filters counts only if it frees one of ours */
	if (e->ctx & KMS_CTX_OUTSIDE) {
		if (e->ctx & KMS_CTX_SELF)
			a->stats.self++;
		else
			a->stats.filtered++;
		return;
	}
	/* the C library releasing its thread cache: not the program's, counted apart */
	if (e->ctx & KMS_CTX_UEXIT) {
		a->stats.exit_frees++;
		return;
	}
	a->fam[fam].unmatched_frees++;
	a->sums->valid = false;
	a->stats.unmatched_frees++;
	if (e->type == KMS_EV_CACHE_FREE && e->obj) {
		int c = cache_get(a, e->obj);

		if (c >= 0)
			a->caches[c].unmatched_frees++;
	}
}

void agg__on_free(struct agg *a, const struct kms_event *e, const struct live_obj *o,
		  __u32 bytes, bool whole, bool split)
{
	struct site *s = &a->sites[o->site];

	if (split)
		a->stats.page_split_frees++;
	if (!whole) {
		account_release(a, o->site, bytes, false);
		return;
	}
	account_free(a, o->site, o->bytes_alloc, true);
	if (kms_ev_is_deferred(e->type)) {
		s->pub.deferred_frees++;
	}
}

void agg__event(struct agg *a, const struct kms_event *e)
{
	unsigned int type = e->type;
	const struct kms_ev_info *ei;
	struct agg_proc *p;
	int fam;

	ei = kms_ev_info(type);
	if (!ei) {
		a->stats.invalid++;
		return;
	}
	fam = type == KMS_EV_ALLOC_FAIL ? e->order : ei->family;
	if (fam >= KMS_FAM_MAX) {
		a->stats.invalid++;
		return;
	}
	a->stats.events++;
	if (!a->stats.first_ts)
		a->stats.first_ts = e->ts;
	if (e->ts > a->stats.last_ts)
		a->stats.last_ts = e->ts;

	/* the real free of an object handed to RCU earlier: it was freed at the handoff */
	if (e->ctx & KMS_CTX_RCU_DONE) {
		a->stats.rcu_completed++;
		return;
	}

	/* a free from outside the filters: agg__on_free() or agg__on_unmatched() count it */
	if (e->ctx & KMS_CTX_OUTSIDE)
		return;

	p = proc_get(a, e->pid);
	if (!p) {
		a->stats.nomem++;
		return;
	}
	a->cur_proc = p;
	p->events[type]++;
	if (ei->cls == KMS_OC_PAGE && ei->free)
		a->orders[type == KMS_EV_PAGE_FREE ? clamp_order(e->order) : 0].frees++;

	if (!ei->alloc && !ei->free) {
		/* allocation failure */
		__u64 obj = (fam == KMS_FAM_CACHE || fam == KMS_FAM_DMA) ? e->obj : 0;
		__s64 idx = site_get(a, fam, e->site, obj);

		a->fam[fam].fails++;
		a->sums->valid = false;
		if (idx >= 0)
			a->sites[idx].pub.fails++;
		else
			a->stats.nomem++;
	}
}

void agg__meta(struct agg *a, const struct kms_meta *m)
{
	struct agg_proc *p;
	struct u64_slot *s;
	bool created;
	int c;

	a->stats.metas++;
	switch (m->type) {
	case KMS_EV_META_TASK:
		p = proc_get(a, (__u32)m->key);
		if (!p) {
			a->stats.nomem++;
			return;
		}
		memcpy(p->comm, m->name, KMS_COMM_LEN - 1);
		p->comm[KMS_COMM_LEN - 1] = '\0';
		break;
	case KMS_EV_META_CACHE:
		c = cache_get(a, m->key);
		if (c < 0) {
			a->stats.nomem++;
			return;
		}
		memcpy(a->caches[c].name, m->name, KMS_NAME_LEN - 1);
		a->caches[c].name[KMS_NAME_LEN - 1] = '\0';
		a->caches[c].object_size = m->a;
		a->caches[c].size = m->b;
		a->caches[c].flags = m->flags;
		a->caches[c].known = true;
		break;
	case KMS_EV_META_DEVICE:
		s = htab__get(&a->dev_tab, kms_hash64(m->key), &m->key, sizeof(m->key), sizeof(*s), &created);
		if (!s) {
			a->stats.nomem++;
			return;
		}
		if (created) {
			if (vec__reserve((void **)&a->devs, &a->cap_devs, a->nr_devs,
					 sizeof(*a->devs))) {
				htab__delete(&a->dev_tab, s, sizeof(*s));
				a->stats.nomem++;
				return;
			}
			s->idx = a->nr_devs++;
			a->devs[s->idx].ptr = m->key;
		}
		memcpy(a->devs[s->idx].name, m->name, KMS_NAME_LEN - 1);
		a->devs[s->idx].name[KMS_NAME_LEN - 1] = '\0';
		break;
	default:
		a->stats.invalid++;
		break;
	}
}

/* ---- read side ---- */

const struct agg_stats *agg__stats(const struct agg *a)
{
	return &a->stats;
}

const struct agg_counts *agg__family(const struct agg *a, int fam)
{
	if (fam < 0 || fam >= KMS_FAM_MAX)
		return NULL;
	if (!a->sums->valid) {
		struct agg_counts *sum = a->sums->fam;

		for (int f = 0; f < KMS_FAM_MAX; f++) {
			sum[f] = (struct agg_counts){
				.unmatched_frees = a->fam[f].unmatched_frees,
				.fails = a->fam[f].fails,
				.realloc_without_free = a->fam[f].realloc_without_free,
			};
		}
		for (size_t i = 0; i < a->nr_sites; i++) {
			const struct agg_site *st = &a->sites[i].pub;
			struct agg_counts *f = &sum[st->family];

			f->allocs += st->allocs;
			f->frees += st->frees;
			f->deferred_frees += st->deferred_frees;
			f->bytes_req += st->bytes_req;
			f->bytes_alloc += st->bytes_alloc;
			f->outstanding += st->outstanding;
			f->outstanding_bytes += st->outstanding_bytes;
		}
		a->sums->valid = true;
	}
	return &a->sums->fam[fam];
}

size_t agg__nr_sites(const struct agg *a)
{
	return a->nr_sites;
}

const struct agg_site *agg__site(const struct agg *a, size_t i)
{
	return i < a->nr_sites ? &a->sites[i].pub : NULL;
}

size_t agg__nr_gfp(const struct agg *a)
{
	return a->nr_gfps;
}

const struct agg_gfp *agg__gfp(const struct agg *a, size_t i)
{
	return i < a->nr_gfps ? &a->gfps[i] : NULL;
}

const struct agg_order *agg__order(const struct agg *a, int order)
{
	if (order < 0 || order >= AGG_NR_ORDERS)
		return NULL;
	return &a->orders[order];
}

__u64 agg__size_bucket(const struct agg *a, int i, __u64 *min, __u64 *max)
{
	if (i < 0 || i >= AGG_NR_SIZES)
		return 0;
	if (min)
		*min = i ? 1ULL << (i - 1) : 0;
	if (max)
		*max = i ? (1ULL << i) - 1 : 0;
	return a->sizes[i];
}

size_t agg__nr_caches(const struct agg *a)
{
	return a->nr_caches;
}

const struct agg_cache *agg__cache(const struct agg *a, size_t i)
{
	return i < a->nr_caches ? &a->caches[i] : NULL;
}

size_t agg__nr_procs(const struct agg *a)
{
	return a->nr_procs;
}

const struct agg_proc *agg__proc(const struct agg *a, size_t i)
{
	return i < a->nr_procs ? &a->procs[i] : NULL;
}

int agg__nr_nodes(const struct agg *a)
{
	return a->nr_nodes;
}

const struct agg_node *agg__node(const struct agg *a, int node)
{
	if (node < 0 || node >= AGG_MAX_NODES)
		return NULL;
	return &a->nodes[node];
}

const struct agg_cache *agg__find_cache(const struct agg *a, __u64 cache)
{
	const struct u64_slot *s;

	s = htab__lookup(&a->cache_tab, kms_hash64(cache), &cache, sizeof(cache), sizeof(*s));
	if (!s || !a->caches[s->idx].known)
		return NULL;
	return &a->caches[s->idx];
}

const char *agg__cache_name(const struct agg *a, __u64 cache)
{
	const struct agg_cache *c = agg__find_cache(a, cache);

	return c ? c->name : NULL;
}

const char *agg__device_name(const struct agg *a, __u64 dev)
{
	const struct u64_slot *s;

	s = htab__lookup(&a->dev_tab, kms_hash64(dev), &dev, sizeof(dev), sizeof(*s));
	return s ? a->devs[s->idx].name : NULL;
}

const char *agg__proc_comm(const struct agg *a, __u32 pid)
{
	const struct u64_slot *s;
	__u64 key = pid;

	s = htab__lookup(&a->proc_tab, kms_hash64(key), &key, sizeof(key), sizeof(*s));
	return s && a->procs[s->idx].comm[0] ? a->procs[s->idx].comm : NULL;
}

