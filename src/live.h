/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one live-object store: every allocation seen and not yet freed, keyed
 * by object class and address, in the tables of htab.h. The pipeline
 * (pipeline.c) matches each free with its allocation here, once, and tells
 * the consumers what happened: an allocation, a free (whole, or part of a
 * page block that split_page() frees page by page), an implicit free (a live
 * address handed out again: its free was not traced), an unmatched free. The
 * aggregator and the detectors keep their own index in each object.
 *
 * A long leaks run holds millions of objects, so the store keeps each in a
 * 32-byte slot (live.c) and hands out a struct live_obj copy: what objects
 * share (the consumers' indexes, the page size) is kept once, as an origin.
 */
#ifndef KMS_LIVE_H
#define KMS_LIVE_H

#include <stdbool.h>
#include <linux/types.h>
#include "agg.h"
#include "htab.h"
#include "kvec.h"

#define LIVE_ORDERS	16	/* page orders counted; split frees look up to LIVE_SPLIT_MAX */
#define LIVE_SPLIT_MAX	10
#define LIVE_NO_GROUP	0xffffffffU
#define LIVE_ORIGIN_CACHE 256	/* origins found without the kvec lookup */

/* one live object as the consumers see it */
struct live_obj {
	__u64 ptr;		/* address; page frame key for pages */
	__u64 ts;		/* allocation time */
	__u32 site;		/* the aggregator's site index */
	__u32 group;		/* the detector's group index, LIVE_NO_GROUP: not tracked */
	__u32 bytes_alloc;	/* still allocated (pages: what split frees left) */
	__u32 page_bytes;	/* pages: bytes of one page of the block, a split free's unit */
	__u32 pid;
	__u8 type;		/* KMS_EV_* of the allocation */
	__u8 order;		/* pages: order of the block */
};

struct live_slot;		/* an object in the store (live.c) */

struct live {
	struct htab tab[KMS_OC_NR];
	struct kvec origins;	/* what objects share: site, group, page size */
	bool origin_room;	/* origins has room for one more (kvec__reserve()) */
	__u32 origin_cache[LIVE_ORIGIN_CACHE];	/* origins index + 1 by origin hash, 0: none */
	__u64 pages_by_order[LIVE_ORDERS];	/* live page blocks by order */
};

/* 0 or -ENOMEM; live__fini() cleans up either way */
int live__init(struct live *l);
void live__fini(struct live *l);
/* the first slot live__find() and live__add() will read for ptr, fetched into the cache */
static inline void live__prefetch(const struct live *l, int cls, __u64 ptr)
{
	htab__prefetch(&l->tab[cls], kms_hash64(ptr));
}
/* the live object of class cls at ptr, NULL when none */
struct live_slot *live__find(const struct live *l, int cls, __u64 ptr);
/* the live page block holding frame pfn: the frame's own, or a split block's head */
struct live_slot *live__page(const struct live *l, __u64 pfn);
/* a copy of what s holds */
void live__get(const struct live *l, const struct live_slot *s, struct live_obj *o);
/*
 * The slot of a new object at ptr, and in *o the object with ptr, type and
 * order set, no group and the rest zero; live__set() stores it once the
 * consumers have filled it. When one was live there, it is copied to *old
 * and *replaced set. NULL: no memory.
 */
struct live_slot *live__add(struct live *l, int cls, __u64 ptr, __u8 type, __u8 order,
			    struct live_obj *o, struct live_obj *old, bool *replaced);
/* store o (its ptr, type and order unchanged) in s, from live__add() or live__find() */
void live__set(struct live *l, struct live_slot *s, const struct live_obj *o);
void live__remove(struct live *l, int cls, struct live_slot *s);
__u64 live__count(const struct live *l);
/* fn for every live object until it returns non-zero, which is returned */
int live__foreach(const struct live *l, int (*fn)(int cls, const struct live_obj *o, void *ctx),
		  void *ctx);

#endif
