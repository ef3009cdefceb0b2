/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Insert-only keyed vectors: items in a dense array (reports index them),
 * found by a key made of the first ksz bytes of an item, through an
 * open-addressing index of item numbers. The detector's groups, sites and
 * findings live in these.
 */
#ifndef KMS_KVEC_H
#define KMS_KVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct kvec {
	char *items;
	size_t isz, ksz, nr, cap;
	__u32 *slots;		/* item index + 1, 0: empty */
	__u32 mask;
};

void kvec__init(struct kvec *v, size_t isz, size_t ksz);
void kvec__fini(struct kvec *v);
/* inline: every live object's origin is read through it */
static inline void *kvec__at(const struct kvec *v, size_t i)
{
	return v->items + i * v->isz;
}

/* index of the item with key, -1 when none */
long kvec__find(const struct kvec *v, const void *key);
/* index of the item with key, appended zeroed (key copied) if missing; -1: no memory */
long kvec__get(struct kvec *v, const void *key, bool *created);
/* room for one more item: the next kvec__get() cannot fail; 0 or -ENOMEM */
int kvec__reserve(struct kvec *v);

#endif
