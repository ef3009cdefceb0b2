/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Insert-only keyed vectors (see kvec.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "kvec.h"

void kvec__init(struct kvec *v, size_t isz, size_t ksz)
{
	memset(v, 0, sizeof(*v));
	v->isz = isz;
	v->ksz = ksz;
}

void kvec__fini(struct kvec *v)
{
	free(v->items);
	free(v->slots);
}

static __u64 kvec__hash(const void *key, size_t ksz)
{
	const unsigned char *p = key;
	__u64 h = 0x84222325cbf29ce4ULL, w;
	size_t i;

	for (i = 0; i + 8 <= ksz; i += 8) {
		memcpy(&w, p + i, 8);
		h = kms_hash64(h ^ w);
	}
	for (; i < ksz; i++)
		h = kms_hash64(h ^ p[i]);
	return h;
}

long kvec__find(const struct kvec *v, const void *key)
{
	__u32 i;

	if (!v->slots)
		return -1;
	for (i = kvec__hash(key, v->ksz) & v->mask; v->slots[i]; i = (i + 1) & v->mask)
		if (!memcmp(kvec__at(v, v->slots[i] - 1), key, v->ksz))
			return v->slots[i] - 1;
	return -1;
}

static int kvec__rehash(struct kvec *v, __u32 cap)
{
	__u32 *s = calloc(cap, sizeof(*s)), i, j;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < v->nr; i++) {
		for (j = kvec__hash(kvec__at(v, i), v->ksz) & (cap - 1); s[j]; j = (j + 1) & (cap - 1))
			;
		s[j] = i + 1;
	}
	free(v->slots);
	v->slots = s;
	v->mask = cap - 1;
	return 0;
}

int kvec__reserve(struct kvec *v)
{
	if (v->nr + 1 >= v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 64;
		char *n = realloc(v->items, ncap * v->isz);

		if (!n)
			return -ENOMEM;
		v->items = n;
		v->cap = ncap;
	}
	if (!v->slots || (v->nr + 1) * 10 > (size_t)(v->mask + 1) * 7)
		return kvec__rehash(v, v->slots ? (v->mask + 1) * 2 : 128);
	return 0;
}

/* index of the item with key, appended zeroed (key copied) if missing; -1: no memory */
long kvec__get(struct kvec *v, const void *key, bool *created)
{
	long i = kvec__find(v, key);
	__u32 j;

	*created = false;
	if (i >= 0)
		return i;
	if (kvec__reserve(v))
		return -1;
	memset(kvec__at(v, v->nr), 0, v->isz);
	memcpy(kvec__at(v, v->nr), key, v->ksz);
	for (j = kvec__hash(key, v->ksz) & v->mask; v->slots[j]; j = (j + 1) & v->mask)
		;
	v->slots[j] = v->nr + 1;
	*created = true;
	return v->nr++;
}

