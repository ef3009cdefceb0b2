/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The detectors: leaks (objects still outstanding, grouped by stack), atomic-
 * context misuse (a blocking GFP where the kernel cannot sleep) and bad frees
 * (wrong API, wrong cache, double free). Fed the same time-ordered records as
 * the aggregator, with e->site already resolved; pure logic, no BPF, so unit
 * tests drive it with synthetic streams. Stacks and symbols come in through
 * detect_opts and may be absent.
 */
#ifndef KMS_DETECT_H
#define KMS_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"
#include "nest.h"

struct ksyms;
struct detect;
struct live;

#define DETECT_FREED_DEFAULT	65536	/* recently-freed set for double frees */
#define DETECT_FREED_MAX	(1U << 30)
#define DETECT_GROWTH_KEEP	64	/* snapshots kept per group for growth */

struct detect_opts {
	bool leaks;		/* track every allocation until freed */
	bool misuse;		/* atomic-context checks */
	bool bad_frees;		/* wrong API, wrong cache, double free (needs leaks) */
	const struct ksyms *ksyms;	/* stack trimming, retained rules; NULL: none */
	/* stack of a record, innermost first: frames or -errno; NULL: no stacks */
	int (*stack)(void *ctx, int stack_id, __u64 *ips, int max);
	void *stack_ctx;
	struct nest *nest;	/* which allocations are nested; NULL: none known */
	/* preempt count of a plain process-context allocation per family, -1 unknown */
	int baseline_pc[KMS_FAM_MAX];
	__u32 gfp_direct_reclaim;	/* value of __GFP_DIRECT_RECLAIM; 0: unknown */
	/* __GFP_MOVABLE | __GFP_RECLAIMABLE of this kernel (0: unknown): see detect_retained */
	__u32 gfp_retained;
	/*
	 * The kernel's RCU and bulk slab frees (kfree_rcu(), kmem_cache_free_bulk())
	 * are traced: a slab object without a free event was not freed.
	 */
	bool deferred_frees;
	/* the records come from a trace file cut short: frees after its end are unknown */
	bool trace_cut;
	/*
	 * The source holds stacks for some allocations only, or none, by design
	 * (a trace recorded by stat or misuse): a group without one could not
	 * be classified by its callers.
	 */
	bool stacks_partial;
	unsigned int freed_max;		/* recently-freed set size; 0: DETECT_FREED_DEFAULT;
					 * at most DETECT_FREED_MAX */
	/* the store allocations and frees are matched in (the pipeline's): leaks read it */
	const struct live *live;
	unsigned int page_shift;	/* the running kernel's page size, log2; 0: 12 */
	/*
	 * The traced kernel is PREEMPT_RT: its allocators take sleeping locks, so
	 * any allocation where preemption is really off is a bug there
	 */
	bool preempt_rt;
};

/* ---- context of one allocation, from its preempt count ---- */

enum detect_ctx {
	DCTX_PROCESS = 0,	/* could sleep */
	DCTX_PREEMPT_OFF,	/* preempt depth above the family's baseline */
	DCTX_BH_OFF,		/* bottom halves disabled */
	DCTX_SOFTIRQ,		/* serving a softirq */
	DCTX_HARDIRQ,
	DCTX_NMI,
	DCTX_UNKNOWN,		/* no preempt count, or no baseline to compare it with */
	DCTX_NR,
};

const char *detect_ctx_name(int ctx);
/*
 * The context of a record; baseline -1 when unknown. Inline: every
 * allocation asks it (misuse checks), and the call cost as much as the tests.
 */
static inline int detect__classify(__u8 ctx_flags, __u32 pc, int baseline)
{
	if (!(ctx_flags & KMS_CTX_KNOWN))
		return DCTX_UNKNOWN;
	/* interrupt bits are absolute: the tracer adds none of them */
	if (pc & KMS_PC_NMI)
		return DCTX_NMI;
	if (pc & KMS_PC_HARDIRQ)
		return DCTX_HARDIRQ;
	if (pc & KMS_PC_SOFTIRQ_SERVING)
		return DCTX_SOFTIRQ;
	if (pc & KMS_PC_SOFTIRQ)
		return DCTX_BH_OFF;
	/* the depth includes what the tracer itself adds: only the baseline tells */
	if (baseline < 0)
		return DCTX_UNKNOWN;
	if ((int)(pc & KMS_PC_PREEMPT) > baseline)
		return DCTX_PREEMPT_OFF;
	return DCTX_PROCESS;
}

enum detect_misuse_kind {
	MIS_BLOCKING_IN_ATOMIC = 0,	/* __GFP_DIRECT_RECLAIM from atomic context */
	MIS_VMALLOC_IN_ATOMIC,		/* vmalloc may sleep whatever the GFP says */
	MIS_ATOMIC_IN_PROCESS,		/* info: no direct reclaim where it could sleep */
	MIS_HIGH_ORDER_ATOMIC,		/* info: order >= 3 page without direct reclaim */
	/* PREEMPT_RT: any other GFP where preemption is really off (raw lock, hardirq) */
	MIS_ALLOC_IN_ATOMIC_ON_RT,
	MIS_NR,
};

const char *detect_misuse_name(int kind);
bool detect_misuse_is_info(int kind);

struct detect_misuse {
	int kind;
	int ctx;		/* enum detect_ctx */
	int family;
	int stack_id;		/* < 0: grouped by site */
	__u64 site;
	__u64 obj;
	__u32 gfp;
	__u32 pc;		/* example raw preempt count */
	__u32 pid;		/* example process */
	__u32 order;
	__u64 count;
	__u64 first_ts;
};

struct detect_misuse_stats {
	__u64 checked;		/* allocations whose context was classified */
	__u64 by_ctx[DCTX_NR];	/* allocations per context, unknown included */
	__u64 no_context;	/* records without a preempt count */
	__u64 no_baseline;	/* preempt count but no baseline for the family */
	__u64 gfp_unknown;	/* __GFP_DIRECT_RECLAIM unknown: blocking not decidable */
	__u64 nested_skipped;	/* page allocations under slab/vmalloc: judged at the outer one */
	bool preempt_rt;	/* judged by PREEMPT_RT's rules (detect_opts.preempt_rt) */
};

/* ---- bad frees ---- */

enum detect_badfree_kind {
	BF_WRONG_API = 0,	/* kfree of a vmalloc or page address, vfree of a slab object, ... */
	BF_WRONG_CACHE,		/* kmem_cache_free into another cache than the allocation's */
	BF_DOUBLE_FREE,		/* freed again with no allocation in between */
	BF_NR,
};

const char *detect_badfree_name(int kind);
struct detect_badfree {
	int kind;
	int alloc_type;		/* KMS_EV_* of the allocation (or of the first free) */
	int free_type;		/* KMS_EV_* of the bad free */
	int alloc_stack_id;
	__u64 alloc_site;
	__u64 alloc_obj;	/* cache of the allocation */
	__u64 free_site;	/* call site of the bad free */
	__u64 free_obj;		/* cache named by the bad free */
	__u64 first_free_site;	/* double free: the first free's call site */
	__u64 ptr;		/* example address */
	__u32 alloc_pid;
	__u32 free_pid;
	__u64 count;
};

struct detect_free_stats {
	__u64 unmatched[KMS_FAM_MAX];	/* frees of objects allocated before tracing */
	__u64 implicit[KMS_FAM_MAX];	/* live address allocated again: untraced free */
	__u64 freed_evicted;		/* recently-freed entries pushed out (bounded set) */
};

/* ---- leaks ---- */

/*
 * Memory that outlives a trace by design, not a leak: user and page-cache
 * pages (movable, or allocated by the page cache's own functions),
 * reclaimable pages and slab (dentries, inodes: freed under memory pressure,
 * not when their user is done).
 */
enum detect_retained {
	RET_NONE = 0,
	RET_GFP,		/* allocated with __GFP_MOVABLE or __GFP_RECLAIMABLE */
	RET_CACHE,		/* from a reclaimable slab cache, or made with an inode */
	RET_PAGE_CACHE,		/* a page allocated where the page cache is filled */
	RET_LAZY,		/* an object the kernel frees in batches, long after its use */
	RET_MM,			/* freed with a process's mm, when its last reference goes */
	RET_TASK,		/* made for a new task or its exec, freed with the task */
	RET_NR,
};

const char *detect_retained_name(int r);

/* why an outstanding object is not a certain leak: bits */
enum detect_doubt {
	DOUBT_RECORDS_LOST = 1 << 0,	/* lost records could hold its free */
	DOUBT_FREES_UNTRACED = 1 << 1,	/* no free of its site's objects was traced, and
					 * RCU/bulk slab frees are not traced here */
	DOUBT_FEW_FREES = 1 << 2,	/* ... fewer seen freed than still outstanding */
	DOUBT_TRACE_CUT = 1 << 3,	/* read from a trace file cut short (no settle, no end) */
	DOUBT_CACHE_UNTRACED = 1 << 4,	/* an object of its slab cache left untraced */
	DOUBT_CACHE_BULK = 1 << 5,	/* its slab cache is one the kernel also frees in bulk
					 * or through RCU */
	DOUBT_STACK_UNKNOWN = 1 << 6,	/* no stack: the classes that go by the callers
					 * (nested, retained) could not be checked */
	DOUBT_NR_BITS = 7,
};

const char *detect_doubt_name(int bit);
const char *detect_doubt_text(int bit);

/* allocations of one (family, stack or site, cache or device): what leak reports group */
struct detect_group {
	int family;
	int stack_id;		/* < 0: no stack, grouped by site */
	__u64 site;
	__u64 obj;
	int nested;		/* enum nest_kind, -1: not nested */
	int retained;		/* enum detect_retained */
	size_t site_idx;	/* detect__site() */
	__u64 allocs;
	__u64 stack_failed;	/* allocations whose stack capture failed */
	__u64 alloc_bytes;	/* bytes the allocations got (profile.h) */
	__u64 frees;		/* traced frees */
	__u64 implicit_frees;	/* address allocated again while live */
	__u64 outstanding;
	__u64 outstanding_bytes;
	__u32 gfp;		/* first GFP seen */
	bool gfp_mixed;		/* later allocations used another GFP */
	int order;		/* page family: the first allocation's order, else -1 */
	__u32 pid;		/* example process: the first allocation's */
	/* growth: outstanding bytes at the last snapshots, oldest first */
	unsigned int nr_snaps;
	__u64 snaps[DETECT_GROWTH_KEEP];
};

/* one call site: where evidence of untraced frees is collected */
struct detect_site {
	int family;
	__u64 site;
	__u64 obj;
	__u64 allocs;
	__u64 frees;
	__u64 implicit_frees;
};

/* a report row: a group's outstanding objects at least min_age old */
struct detect_leak {
	size_t group;		/* detect__group() */
	__u64 count;
	__u64 bytes;
	__u64 oldest_ts;
	__u64 young;		/* outstanding but younger than min_age */
	__u64 exposed;		/* of count: allocated before records that could hold
				 * their free were lost (KMS_EV_META_LOSS) */
};

struct detect *detect__new(const struct detect_opts *o);
/* the free of ptr comes soon: the slot it will take in the recently-freed set */
void detect__prefetch_free(const struct detect *d, int cls, __u64 ptr);
void detect__free(struct detect *d);
/*
 * What a live session only knows once it runs (symbols, the calibrated
 * baselines, the GFP table): records seen before this are judged without it.
 */
void detect__set_env(struct detect *d, const struct ksyms *ksyms, const int *baseline_pc,
		     __u32 gfp_direct_reclaim);
/*
 * every record with a row in the event table (ei: that row, agg.h's), first:
 * what needs no live object (context, page bookkeeping)
 */
struct kms_ev_info;
void detect__event(struct detect *d, const struct kms_event *e, const struct kms_ev_info *ei);
/*
 * What the live-object store (live.h) found for that record: the pipeline
 * calls these after the aggregator's, which set the object's sizes.
 */
struct live_obj;
void detect__on_alloc(struct detect *d, const struct kms_event *e, struct live_obj *o);
void detect__on_free(struct detect *d, const struct kms_event *e, int cls, const struct live_obj *o,
		     __u32 bytes, bool whole);
void detect__on_implicit_free(struct detect *d, const struct live_obj *old);
void detect__on_unmatched(struct detect *d, const struct kms_event *e);
void detect__meta(struct detect *d, const struct kms_meta *m);

/* misuse */
size_t detect__nr_misuse(const struct detect *d);
const struct detect_misuse *detect__misuse(const struct detect *d, size_t i);
const struct detect_misuse_stats *detect__misuse_stats(const struct detect *d);

/* bad frees */
size_t detect__nr_badfree(const struct detect *d);
const struct detect_badfree *detect__badfree(const struct detect *d, size_t i);
const struct detect_free_stats *detect__free_stats(const struct detect *d);

/* leaks */
size_t detect__nr_groups(const struct detect *d);
const struct detect_group *detect__group(const struct detect *d, size_t i);
const struct detect_site *detect__site(const struct detect *d, size_t i);
/* a site whose objects were freed without a trace event (implicit frees seen) */
bool detect__site_unobservable(const struct detect *d, size_t site_idx);
/* where the leaks report files a group's outstanding objects */
enum detect_leak_class {
	DLC_LEAK = 0,		/* leak candidates */
	DLC_UNOBSERVABLE,	/* from a site whose frees are not traced */
	DLC_RETAINED,		/* retained by design (unless counted as candidates) */
	DLC_NESTED,		/* pages under another allocator: counted there */
	DLC_NR,
};
int detect__leak_class(const struct detect *d, const struct detect_group *g,
		       bool include_retained);
/*
 * Why a leak row of group g is not certain (enum detect_doubt bits, 0:
 * certain); exposed as in struct detect_leak. docs/detectors.md gives the rule.
 */
unsigned int detect__doubts(const struct detect *d, const struct detect_group *g, __u64 exposed);
/* live objects */
__u64 detect__nr_live(const struct detect *d);
/*
 * Rows for every group with outstanding objects, at time now; objects younger
 * than min_age_ns count in ->young only. *rows is malloc'ed (free it).
 */
int detect__leaks(const struct detect *d, __u64 now, __u64 min_age_ns,
		  struct detect_leak **rows, size_t *nr);
/* record every group's outstanding bytes, for growth across intervals */
void detect__snapshot(struct detect *d);
/* intervals in a row (ending at the last snapshot) in which the group grew */
unsigned int detect__growth_run(const struct detect_group *g);

/*
 * The frames to show for a record: its stack with the allocator's own frames
 * (and tracing plumbing) trimmed, so the first is the caller; at most max.
 * Without a stack: the site alone. Returns the number of frames.
 */
int detect__frames(const struct detect *d, int stack_id, __u64 site, __u64 *ips, int max);

/* process name from META_TASK records, NULL when none was seen */
const char *detect__comm(const struct detect *d, __u32 pid);
/* cache or device name from META records, NULL when none was seen */
const char *detect__obj_name(const struct detect *d, __u64 obj);
/* the direct map base learned from large kmallocs, 0 while unknown */
__u64 detect__direct_map(const struct detect *d);

#endif /* KMS_DETECT_H */
