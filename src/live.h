/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one live-object store: every allocation seen and not yet freed, keyed
 * by object class and address, in the tables of htab.h. The pipeline
 * (pipeline.c) matches each free with its allocation here, once, and tells
 * the consumers what happened: an allocation, a free (whole, or part of a
 * page block that split_page() frees page by page), an implicit free (a live
 * address handed out again: its free was not traced), an unmatched free. The
 * aggregator and the detectors keep their own index in each object.
 */
#ifndef KMS_LIVE_H
#define KMS_LIVE_H

#include <stdbool.h>
#include <linux/types.h>
#include "agg.h"
#include "htab.h"

#define LIVE_ORDERS	16	/* page orders counted; split frees look up to LIVE_SPLIT_MAX */
#define LIVE_SPLIT_MAX	10
#define LIVE_NO_GROUP	0xffffffffU

/* one live object: 48 bytes, millions of them in a long leaks run */
struct live_obj {
	__u64 hash;		/* 0: empty slot */
	__u64 ptr;		/* address; page frame key for pages */
	__u64 ts;		/* allocation time */
	__u32 site;		/* the aggregator's site index */
	__u32 group;		/* the detector's group index, LIVE_NO_GROUP: not tracked */
	__u32 bytes_req;
	__u32 bytes_alloc;	/* still allocated (pages: what split frees left) */
	__u32 pid;
	__u8 type;		/* KMS_EV_* of the allocation */
	__u8 order;		/* pages: order of the block */
	__u16 pad;
};

struct live {
	struct htab tab[KMS_OC_NR];
	__u64 pages_by_order[LIVE_ORDERS];	/* live page blocks by order */
};

/* 0 or -ENOMEM; live__fini() cleans up either way */
int live__init(struct live *l);
void live__fini(struct live *l);
/* the live object of class cls at ptr, NULL when none */
struct live_obj *live__find(const struct live *l, int cls, __u64 ptr);
/* the live page block holding frame pfn: the frame's own, or a split block's head */
struct live_obj *live__page(const struct live *l, __u64 pfn);
/*
 * A zeroed object at ptr (hash, ptr, order and type set). When one was live
 * there, it is copied to *old and *replaced set. NULL: no memory.
 */
struct live_obj *live__add(struct live *l, int cls, __u64 ptr, __u8 type, __u8 order,
			   struct live_obj *old, bool *replaced);
void live__remove(struct live *l, int cls, struct live_obj *o);
__u64 live__count(const struct live *l);
/* fn for every live object until it returns non-zero, which is returned */
int live__foreach(const struct live *l, int (*fn)(int cls, const struct live_obj *o, void *ctx),
		  void *ctx);

#endif
