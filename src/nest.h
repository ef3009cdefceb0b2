/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Nested allocations: the backing store one allocator takes from another.
 * A page under slab, vmalloc, percpu or dma internals (a new slab, a large
 * kmalloc's block, a vmalloc area's pages, a percpu chunk, a dma-direct
 * buffer), or a kmalloc made by vmalloc, percpu or dma internals (vmalloc's
 * vm_struct and page array, a new slab's obj_exts vector), is counted in the
 * outer allocation already. The reports keep it apart (stat's site table, the
 * leak classes, the misuse checks) so that no memory is counted twice.
 *
 * It is told by the stack, so it is decided once per stack id: every record
 * of a session (live or a file's) comes with the same ids.
 */
#ifndef KMS_NEST_H
#define KMS_NEST_H

#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"

struct ksyms;

/* what a nested allocation was made under; -1: not nested, or unknown */
enum nest_kind {
	NEST_SLAB = 0,
	NEST_VMALLOC,
	NEST_PERCPU,
	NEST_DMA,
};

/* "slab", "vmalloc", "percpu", "dma"; NULL for anything else */
const char *nest_name(int kind);

struct nest {
	const struct ksyms *ksyms;	/* NULL: nothing is known nested */
	/* stack of a record, innermost first: frames or -errno */
	int (*stack)(void *ctx, int stack_id, __u64 *ips, int max);
	void *stack_ctx;
	signed char *memo;		/* per stack id: 0 unknown, 1 none, 2 + enum nest_kind */
	size_t cap;
};

/* nest__of() for a stack id not remembered yet */
int nest__classify(struct nest *n, int stack_id, int fam);

/*
 * Whether an allocation of family fam (KMS_FAM_PAGE or KMS_FAM_KMALLOC; any
 * other: -1) with this stack is nested, and in what. Inline: the record path
 * asks for every allocation.
 */
static inline int nest__of(struct nest *n, int stack_id, int fam)
{
	if ((fam != KMS_FAM_PAGE && fam != KMS_FAM_KMALLOC) || stack_id < 0 || !n)
		return -1;
	if ((size_t)stack_id < n->cap && n->memo[stack_id])
		return n->memo[stack_id] - 2;
	return nest__classify(n, stack_id, fam);
}

/*
 * An allocation record's: a vmalloc BPF marked as made inside another
 * (KMS_X_NESTED, vmalloc's own page array) is nested in vmalloc, any other
 * goes by its stack (nest__of()). fam: its family.
 */
static inline int nest__event(struct nest *n, const struct kms_event *e, int fam)
{
	if (fam == KMS_FAM_VMALLOC && (e->extra & KMS_X_NESTED))
		return NEST_VMALLOC;
	return nest__of(n, e->stack_id, fam);
}

void nest__fini(struct nest *n);

#endif
