/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests' random numbers: xorshift64, the same stream on every run. */
#ifndef KMS_TEST_RND_H
#define KMS_TEST_RND_H

#include <linux/types.h>

static __u64 rnd_state = 0x9e3779b97f4a7c15ULL;

static inline __u64 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

#endif
