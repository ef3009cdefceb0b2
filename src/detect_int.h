/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The detector's state, shared by its files: detect.c (leaks, bad frees,
 * names) and detect_misuse.c (atomic-context checks). Not for other users:
 * they read the detector through detect.h.
 */
#ifndef KMS_DETECT_INT_H
#define KMS_DETECT_INT_H

#include "agg.h"
#include "detect.h"
#include "htab.h"
#include "kvec.h"
#include "live.h"

#define LAST_PAGE_CPUS	1024

/* object classes of the event table (agg.h) */
enum obj_class {
	OC_SLAB = KMS_OC_SLAB,
	OC_PAGE = KMS_OC_PAGE,
	OC_VMALLOC = KMS_OC_VMALLOC,
	OC_DMA = KMS_OC_DMA,
	OC_PERCPU = KMS_OC_PERCPU,
	OC_NR = KMS_OC_NR,
};

struct name_item {
	__u64 key;
	char name[KMS_NAME_LEN];
	__u32 flags;		/* KMS_META_* */
};

struct last_page {
	__u64 pfn;
	__u8 order;
	bool valid;
};

#define GROUP_CACHE_BITS 8

/* a group's key and index, cached (detect.c: group_get()) */
struct group_cache {
	__u64 site;
	__u64 obj;
	int family;
	int stack_id;
	__u32 idx;		/* group index + 1, 0: empty */
};

struct detect {
	struct detect_opts o;
	struct htab freed[OC_NR];	/* struct freed_slot: the recently-freed set */
	__u64 freed_nr;			/* entries in the freed tables, forgotten ones too */
	__u64 seq;			/* frees remembered */
	struct kvec groups;		/* struct detect_group, key: family..obj */
	struct group_cache group_cache[1 << GROUP_CACHE_BITS];
	struct kvec sites;		/* struct detect_site */
	/*
	 * __u64 slab cache pointers: caches one of whose objects went away
	 * without a traced free (its address was allocated again while live).
	 * If one cannot be added, every cache is taken as such.
	 */
	struct kvec untraced_caches;
	bool untraced_caches_full;
	struct kvec misuse;		/* struct detect_misuse */
	struct kvec badfree;		/* struct detect_badfree */
	struct kvec comms;		/* struct name_item by tgid */
	struct kvec objnames;		/* struct name_item by cache/device pointer */
	struct detect_misuse_stats ms;
	struct detect_free_stats fs;
	struct last_page last_page[LAST_PAGE_CPUS];
	__u64 dmap_cand;
	int dmap_votes;
	__u64 dmap;
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

/* atomic-context checks of one allocation (detect_misuse.c); nested: page under another */
void detect_misuse_check(struct detect *d, const struct kms_event *e, int fam, int nested);

#endif
