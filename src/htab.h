/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The open-addressing hash table of the collector's tables (live objects,
 * aggregation, filter). A slot is the caller's struct with its key first and
 * the table's byte last (__u8 meta: 0 empty, else 1 + the slot's distance
 * from its home, linear probing), so a probe compares keys only in slots
 * with its own home, and finds the byte in the line it reads anyway. The
 * live-object store holds millions of slots, hence:
 * - no stored hash: h->hash() recomputes it from the key when growth needs it;
 * - dense tables (HTAB_DENSE) run at 60-75 % load, grown by 5/4; the
 *   others (HTAB_FAST, a few slots each or bounded) at 25-50 %, doubled,
 *   where probe runs are shorter; any capacity (the home is the hash scaled
 *   to it, not masked);
 * - memory from mmap (huge pages where the system gives them: a fault per
 *   4 KiB page costs more than the copy), returned to the system when the
 *   table grows, and released as the growth copies it: the old and the new
 *   table are not both held whole (the peak is the new table, not 2.25 times
 *   the old).
 * The hot functions are always inlined so the key compare has a constant size.
 */
#ifndef KMS_HTAB_H
#define KMS_HTAB_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/types.h>
#include "hash.h"

#define HTAB_DIST_MAX	255		/* meta byte: distance + 1, 255: 254 or more */
#define HTAB_RELEASE	(256 << 10)	/* growth frees the old slots in steps of this */

enum htab_shape {
	HTAB_FAST,		/* at most 50 % full, doubled when it grows */
	HTAB_DENSE,		/* at most 75 % full, grown by 5/4: millions of slots */
};

/* a slot struct ends with its meta byte, padding included */
#define HTAB_SLOT(type) \
	_Static_assert(offsetof(type, meta) == sizeof(type) - 1, #type ": meta is not last")

struct htab {
	char *slots;
	char *end;		/* past the last slot: probes wrap here */
	size_t map_size;
	__u32 slot_size;
	__u32 cap;
	__u32 count;
	__u32 grow_at;
	enum htab_shape shape;
	__u64 (*hash)(const void *slot);	/* the hash of a slot's key */
};

/* h->hash of tables keyed by one __u64 */
static inline __u64 htab__hash_u64(const void *slot)
{
	__u64 k;

	memcpy(&k, slot, sizeof(k));
	return kms_hash64(k);
}

/* a table of at least cap slots (as many as fill its pages); 0 or -ENOMEM */
static inline int htab__init(struct htab *h, __u32 slot_size, __u32 cap, enum htab_shape shape,
			     __u64 (*hash)(const void *slot))
{
	size_t page = sysconf(_SC_PAGESIZE);
	size_t size = ((size_t)cap * slot_size + page - 1) / page * page;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	memset(h, 0, sizeof(*h));
	if (m == MAP_FAILED)
		return -ENOMEM;
	madvise(m, size, MADV_HUGEPAGE);
	h->slots = m;
	h->map_size = size;
	h->slot_size = slot_size;
	h->cap = size / slot_size;
	h->end = h->slots + (size_t)h->cap * slot_size;
	h->grow_at = shape == HTAB_DENSE ? h->cap / 4 * 3 : h->cap / 2;
	h->shape = shape;
	h->hash = hash;
	return 0;
}

static inline void htab__fini(struct htab *h)
{
	if (h->slots)
		munmap(h->slots, h->map_size);
	h->slots = NULL;
}

static inline void *htab__at(const struct htab *h, __u32 i)
{
	return h->slots + (size_t)i * h->slot_size;
}

/* slot i's meta byte, the last of the slot */
static inline __u8 *htab__meta(const struct htab *h, __u32 i)
{
	return (__u8 *)htab__at(h, i) + h->slot_size - 1;
}

static inline bool htab__used(const struct htab *h, __u32 i)
{
	return *htab__meta(h, i);
}

/* the hash scaled to [0, cap): uniform for any capacity, no division */
static inline __u32 htab__home(const struct htab *h, __u64 hash)
{
	return (unsigned __int128)hash * h->cap >> 64;
}

static inline __u32 htab__next(const struct htab *h, __u32 i)
{
	return i + 1 == h->cap ? 0 : i + 1;
}

static inline __u8 htab__dist_meta(__u32 dist)
{
	return dist < HTAB_DIST_MAX - 1 ? dist + 1 : HTAB_DIST_MAX;
}

/* the first empty slot from hash's home, its meta byte in *m */
static inline __u32 htab__empty(const struct htab *h, __u64 hash, __u8 *m)
{
	__u32 i = htab__home(h, hash), d = 0;

	for (; *htab__meta(h, i); i = htab__next(h, i))
		d++;
	*m = htab__dist_meta(d);
	return i;
}

/* the slot after s, ssz bytes each: the hot loops step by a constant, not an index */
static __attribute__((always_inline)) inline char *htab__step(const struct htab *h, char *s,
							      size_t ssz)
{
	s += ssz;
	return s == h->end ? h->slots : s;
}

/* the home slot of hash, fetched for writing: a lookup, insert or delete follows */
static inline void htab__prefetch(const struct htab *h, __u64 hash)
{
	__builtin_prefetch(htab__at(h, htab__home(h, hash)), 1);
}

/*
 * The slot of key, NULL when none. Only a slot whose meta byte equals the
 * probe's own distance has the key's home; past 254 every saturated slot is
 * compared. ksz and ssz (key and slot sizes) are constants at every call
 * site: the probe steps by a constant, as htab__get()'s does.
 */
static __attribute__((always_inline)) inline void *
htab__lookup(const struct htab *h, __u64 hash, const void *key, size_t ksz, size_t ssz)
{
	char *s = h->slots + (size_t)htab__home(h, hash) * ssz;
	__u8 d = 1, m;

	while ((m = s[ssz - 1])) {
		if (m == d && !memcmp(s, key, ksz))
			return s;
		s = htab__step(h, s, ssz);
		d += d < HTAB_DIST_MAX;
	}
	return NULL;
}

static inline int htab__grow(struct htab *h)
{
	struct htab n;
	size_t done = 0;
	__u32 i, j;

	if (htab__init(&n, h->slot_size, h->shape == HTAB_DENSE ? h->cap + h->cap / 4 + 1 : h->cap * 2,
		       h->shape, h->hash))
		return -ENOMEM;
	for (i = 0; i < h->cap; i++) {
		size_t upto;

		if (htab__used(h, i)) {
			const void *s = htab__at(h, i);
			__u8 m;

			j = htab__empty(&n, h->hash(s), &m);
			memcpy(htab__at(&n, j), s, h->slot_size);
			*htab__meta(&n, j) = m;
		}
		/* slots copied: their pages go back to the system now, not at the end */
		upto = (size_t)(i + 1) * h->slot_size / HTAB_RELEASE * HTAB_RELEASE;
		if (upto > done) {
			madvise(h->slots + done, upto - done, MADV_DONTNEED);
			done = upto;
		}
	}
	n.count = h->count;
	htab__fini(h);
	*h = n;
	return 0;
}


/*
 * The slot of key, created zeroed (key set) if missing; NULL: no memory.
 * ksz and ssz (key and slot sizes) are constants at every call site.
 */
static __attribute__((always_inline)) inline void *
htab__get(struct htab *h, __u64 hash, const void *key, size_t ksz, size_t ssz, bool *created)
{
	char *s = h->slots + (size_t)htab__home(h, hash) * ssz;
	__u8 d = 1, m;

	while ((m = s[ssz - 1])) {
		if (m == d && !memcmp(s, key, ksz)) {
			*created = false;
			return s;
		}
		s = htab__step(h, s, ssz);
		d += d < HTAB_DIST_MAX;
	}
	if (h->count >= h->grow_at) {
		if (htab__grow(h))
			return NULL;
		s = htab__at(h, htab__empty(h, hash, &d));
	}
	memset(s, 0, ssz);
	memcpy(s, key, ksz);
	s[ssz - 1] = d;
	h->count++;
	*created = true;
	return s;
}

/* the distance of slot i from its home; a saturated one is recomputed */
static inline __u32 htab__dist(const struct htab *h, __u32 i)
{
	__u8 m = *htab__meta(h, i);
	__u32 home;

	if (m < HTAB_DIST_MAX)
		return m - 1;
	home = htab__home(h, h->hash(htab__at(h, i)));
	return i >= home ? i - home : i + h->cap - home;
}

/* backward-shift deletion: no tombstones, probe runs stay short */
static __attribute__((always_inline)) inline void
htab__delete(struct htab *h, void *slot, size_t ssz)
{
	char *hole = slot, *s = slot;
	__u32 gap = 0;
	__u8 m;

	for (;;) {
		__u32 dist;

		s = htab__step(h, s, ssz);
		gap++;
		m = s[ssz - 1];
		if (!m)
			break;
		dist = m < HTAB_DIST_MAX ? m - 1u : htab__dist(h, (s - h->slots) / ssz);
		/* s's home is at or before the hole: it moves there, closer to home */
		if (dist >= gap) {
			memcpy(hole, s, ssz);
			hole[ssz - 1] = htab__dist_meta(dist - gap);
			hole = s;
			gap = 0;
		}
	}
	hole[ssz - 1] = 0;
	h->count--;
}

#endif
