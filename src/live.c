/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The live-object store (see live.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include "live.h"

/*
 * One live object in its table: 32 bytes, the address first (the key, whose
 * hash is recomputed rather than stored). The site and group indexes and the
 * page size come in few combinations (per call stack, not per object): the
 * object holds the index of its combination, its origin.
 */
struct live_slot {
	__u64 ptr;
	__u64 ts;
	__u32 bytes_alloc;
	__u32 origin;		/* index into live.origins */
	__u32 pid;
	__u8 type;
	__u8 order;
	__u8 pad;
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct live_slot);

struct live_origin {
	__u32 site;
	__u32 group;
	__u32 page_bytes;
	__u32 pad;
};

_Static_assert(sizeof(struct live_slot) == 32, "a live object is 32 bytes");

int live__init(struct live *l)
{
	memset(l, 0, sizeof(*l));
	kvec__init(&l->origins, sizeof(struct live_origin), sizeof(struct live_origin));
	for (int c = 0; c < KMS_OC_NR; c++)
		if (htab__init(&l->tab[c], sizeof(struct live_slot), 1024, HTAB_DENSE, htab__hash_u64))
			return -ENOMEM;
	return 0;
}

void live__fini(struct live *l)
{
	for (int c = 0; c < KMS_OC_NR; c++)
		htab__fini(&l->tab[c]);
	kvec__fini(&l->origins);
}

struct live_slot *live__find(const struct live *l, int cls, __u64 ptr)
{
	return htab__lookup(&l->tab[cls], kms_hash64(ptr), &ptr, sizeof(ptr),
			    sizeof(struct live_slot));
}

/*
 * split_page() turns an order-N block into order-0 pages freed one by one:
 * a frame with no block of its own may be inside a live higher-order block,
 * whose head is the frame with its low bits cleared.
 */
struct live_slot *live__page(const struct live *l, __u64 pfn)
{
	struct live_slot *s = live__find(l, KMS_OC_PAGE, pfn);
	unsigned int ord, max = 0;

	if (s)
		return s;
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
		s = live__find(l, KMS_OC_PAGE, head);
		if (s && pfn - head < (1ULL << s->order))
			return s;
	}
	return NULL;
}

void live__get(const struct live *l, const struct live_slot *s, struct live_obj *o)
{
	const struct live_origin *org = kvec__at(&l->origins, s->origin);

	*o = (struct live_obj){
		.ptr = s->ptr, .ts = s->ts, .site = org->site, .group = org->group,
		.bytes_alloc = s->bytes_alloc, .page_bytes = org->page_bytes, .pid = s->pid,
		.type = s->type, .order = s->order,
	};
}

static void count_page(struct live *l, int cls, __u8 order, int delta)
{
	if (cls == KMS_OC_PAGE && order < LIVE_ORDERS)
		l->pages_by_order[order] += delta;
}

struct live_slot *live__add(struct live *l, int cls, __u64 ptr, __u8 type, __u8 order,
			    struct live_obj *o, struct live_obj *old, bool *replaced)
{
	struct live_slot *s;
	bool created;

	*replaced = false;
	/* live__set() makes the object's origin: it must not fail then */
	if (!l->origin_room && kvec__reserve(&l->origins))
		return NULL;
	l->origin_room = true;
	s = htab__get(&l->tab[cls], kms_hash64(ptr), &ptr, sizeof(ptr), sizeof(*s), &created);
	if (!s)
		return NULL;
	if (!created) {
		live__get(l, s, old);
		*replaced = true;
		count_page(l, cls, old->order, -1);
	}
	*o = (struct live_obj){
		.ptr = ptr, .type = type, .order = cls == KMS_OC_PAGE ? order : 0,
		.group = LIVE_NO_GROUP,
	};
	s->type = o->type;
	s->order = o->order;
	count_page(l, cls, o->order, 1);
	return s;
}

void live__set(struct live *l, struct live_slot *s, const struct live_obj *o)
{
	/*
	 * Field by field (relaxed atomic loads, which the compiler does not merge):
	 * the consumers have just stored them one by one, and one wider load over
	 * two of those stores cannot be forwarded from them; it stalls (measured:
	 * a tenth of `stat -i`'s samples sat on that load).
	 */
	__u32 site = __atomic_load_n(&o->site, __ATOMIC_RELAXED);
	__u32 group = __atomic_load_n(&o->group, __ATOMIC_RELAXED);
	__u32 page_bytes = __atomic_load_n(&o->page_bytes, __ATOMIC_RELAXED);
	__u32 *c = &l->origin_cache[(site * 0x9e3779b1U ^ group * 0x85ebca6bU ^ page_bytes) %
				    LIVE_ORIGIN_CACHE];
	const struct live_origin *org = *c ? kvec__at(&l->origins, *c - 1) : NULL;

	/* the busy origins are few: a cache in front of the kvec lookup */
	if (!org || org->site != site || org->group != group || org->page_bytes != page_bytes) {
		struct live_origin key = { .site = site, .group = group, .page_bytes = page_bytes };
		bool created;

		*c = kvec__get(&l->origins, &key, &created) + 1;
		if (created)
			l->origin_room = false;
	}
	s->ts = o->ts;
	s->bytes_alloc = o->bytes_alloc;
	s->origin = *c - 1;
	s->pid = o->pid;
}

void live__remove(struct live *l, int cls, struct live_slot *s)
{
	count_page(l, cls, s->order, -1);
	htab__delete(&l->tab[cls], s, sizeof(*s));
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
		for (__u32 i = 0; i < l->tab[c].cap; i++) {
			struct live_obj o;
			int err;

			if (!htab__used(&l->tab[c], i))
				continue;
			live__get(l, htab__at(&l->tab[c], i), &o);
			err = fn(c, &o, ctx);
			if (err)
				return err;
		}
	}
	return 0;
}
