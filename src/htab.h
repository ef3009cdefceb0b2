/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The open-addressing hash table of the collector's tables (aggregation,
 * filter). A slot is { __u64 hash; key; value } laid out by the caller's slot
 * struct; hash 0 marks an empty slot (kms_hash64() never returns 0). The hot
 * functions are always inlined so the key compare has a constant size.
 */
#ifndef KMS_HTAB_H
#define KMS_HTAB_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include "hash.h"

struct htab {
	char *slots;
	__u32 slot_size;
	__u32 mask;		/* capacity - 1, capacity a power of two */
	__u32 count;
	__u32 grow_at;
};

static inline int htab__init(struct htab *h, __u32 slot_size, __u32 cap)
{
	h->slots = calloc(cap, slot_size);
	if (!h->slots)
		return -ENOMEM;
	h->slot_size = slot_size;
	h->mask = cap - 1;
	h->count = 0;
	h->grow_at = cap / 10 * 7;	/* 70 % load */
	return 0;
}

static inline void htab__fini(struct htab *h)
{
	free(h->slots);
	h->slots = NULL;
}

static inline __u64 *htab__at(const struct htab *h, __u32 i)
{
	return (__u64 *)(h->slots + (size_t)i * h->slot_size);
}

static __attribute__((always_inline)) inline void *
htab__lookup(const struct htab *h, __u64 hash, const void *key, size_t ksz)
{
	__u32 i = hash & h->mask;

	for (;;) {
		__u64 *s = htab__at(h, i);

		if (!*s)
			return NULL;
		if (*s == hash && !memcmp(s + 1, key, ksz))
			return s;
		i = (i + 1) & h->mask;
	}
}

static inline int htab__grow(struct htab *h)
{
	struct htab n;
	__u32 i, j;

	if (htab__init(&n, h->slot_size, (h->mask + 1) * 2))
		return -ENOMEM;
	for (i = 0; i <= h->mask; i++) {
		__u64 *s = htab__at(h, i);

		if (!*s)
			continue;
		/* the stored hash places the slot: no key rehash */
		for (j = *s & n.mask; *htab__at(&n, j); j = (j + 1) & n.mask)
			;
		memcpy(htab__at(&n, j), s, h->slot_size);
	}
	n.count = h->count;
	free(h->slots);
	*h = n;
	return 0;
}

/*
 * The slot of key, created zeroed (hash and key set) if missing; NULL: no
 * memory. ksz and ssz (key and slot sizes) are constants at every call site.
 */
static __attribute__((always_inline)) inline void *
htab__get(struct htab *h, __u64 hash, const void *key, size_t ksz, size_t ssz, bool *created)
{
	__u32 i = hash & h->mask;
	__u64 *s;

	for (;;) {
		s = htab__at(h, i);
		if (!*s)
			break;
		if (*s == hash && !memcmp(s + 1, key, ksz)) {
			*created = false;
			return s;
		}
		i = (i + 1) & h->mask;
	}
	if (h->count >= h->grow_at) {
		if (htab__grow(h))
			return NULL;
		/* one more probe run in the bigger table: the key is not there */
		for (i = hash & h->mask; *htab__at(h, i); i = (i + 1) & h->mask)
			;
		s = htab__at(h, i);
	}
	memset(s, 0, ssz);
	*s = hash;
	memcpy(s + 1, key, ksz);
	h->count++;
	*created = true;
	return s;
}

/* backward-shift deletion: no tombstones, probe runs stay short */
static __attribute__((always_inline)) inline void
htab__delete(struct htab *h, void *slot, size_t ssz)
{
	__u32 i = ((char *)slot - h->slots) / h->slot_size;
	__u32 j = i;

	for (;;) {
		__u64 *s;
		__u32 home;

		j = (j + 1) & h->mask;
		s = htab__at(h, j);
		if (!*s)
			break;
		home = *s & h->mask;
		/* move s back to the hole unless its home lies cyclically in (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			memcpy(htab__at(h, i), s, ssz);
			i = j;
		}
	}
	memset(htab__at(h, i), 0, ssz);
	h->count--;
}

#endif
