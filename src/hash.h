/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KMS_HASH_H
#define KMS_HASH_H

#include <linux/types.h>

/*
 * A 64-bit mixer (the murmur3 finalizer) for the hash tables: every output
 * bit depends on every input bit (htab.h takes the high ones, kvec.c the low).
 */
static inline __u64 kms_hash64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
