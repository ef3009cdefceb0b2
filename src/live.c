/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The live-object store (see live.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include "live.h"

int live__init(struct live *l)
{
	memset(l, 0, sizeof(*l));
	for (int c = 0; c < KMS_OC_NR; c++)
		if (htab__init(&l->tab[c], sizeof(struct live_obj), 1024))
			return -ENOMEM;
	return 0;
}

void live__fini(struct live *l)
{
	for (int c = 0; c < KMS_OC_NR; c++)
		htab__fini(&l->tab[c]);
}

struct live_obj *live__find(const struct live *l, int cls, __u64 ptr)
{
	return htab__lookup(&l->tab[cls], kms_hash64(ptr), &ptr, sizeof(ptr));
}

/*
 * split_page() turns an order-N block into order-0 pages freed one by one:
 * a frame with no block of its own may be inside a live higher-order block,
 * whose head is the frame with its low bits cleared.
 */
struct live_obj *live__page(const struct live *l, __u64 pfn)
{
	struct live_obj *o = live__find(l, KMS_OC_PAGE, pfn);
	unsigned int ord, max = 0;

	if (o)
		return o;
	for (ord = LIVE_ORDERS - 1; ord > 0; ord--)
		if (l->pages_by_order[ord]) {
			max = ord;
			break;
		}
	if (max > LIVE_SPLIT_MAX)
		max = LIVE_SPLIT_MAX;
	for (ord = 1; ord <= max; ord++) {
		__u64 head;

		/* the head only changes when bit ord-1 of the frame is set */
		if (!(pfn & (1ULL << (ord - 1))))
			continue;
		head = pfn & ~((1ULL << ord) - 1);
		o = live__find(l, KMS_OC_PAGE, head);
		if (o && pfn - head < (1ULL << o->order))
			return o;
	}
	return NULL;
}

struct live_obj *live__add(struct live *l, int cls, __u64 ptr, __u8 type, __u8 order,
			   struct live_obj *old, bool *replaced)
{
	struct live_obj *o;
	bool created;

	o = htab__get(&l->tab[cls], kms_hash64(ptr), &ptr, sizeof(ptr), sizeof(*o), &created);
	*replaced = o && !created;
	if (!o)
		return NULL;
	if (!created) {
		*old = *o;
		if (cls == KMS_OC_PAGE && old->order < LIVE_ORDERS)
			l->pages_by_order[old->order]--;
		memset(&o->ts, 0, sizeof(*o) - offsetof(struct live_obj, ts));
	}
	o->type = type;
	o->order = cls == KMS_OC_PAGE ? order : 0;
	o->group = LIVE_NO_GROUP;
	if (cls == KMS_OC_PAGE && o->order < LIVE_ORDERS)
		l->pages_by_order[o->order]++;
	return o;
}

void live__remove(struct live *l, int cls, struct live_obj *o)
{
	if (cls == KMS_OC_PAGE && o->order < LIVE_ORDERS && l->pages_by_order[o->order])
		l->pages_by_order[o->order]--;
	htab__delete(&l->tab[cls], o, sizeof(*o));
}

__u64 live__count(const struct live *l)
{
	__u64 n = 0;

	for (int c = 0; c < KMS_OC_NR; c++)
		n += l->tab[c].count;
	return n;
}

int live__foreach(const struct live *l, int (*fn)(int cls, const struct live_obj *o, void *ctx),
		  void *ctx)
{
	for (int c = 0; c < KMS_OC_NR; c++) {
		for (__u32 i = 0; i <= l->tab[c].mask; i++) {
			const struct live_obj *o = (const void *)htab__at(&l->tab[c], i);
			int err;

			if (!o->hash)
				continue;
			err = fn(c, o, ctx);
			if (err)
				return err;
		}
	}
	return 0;
}
