/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Nested allocations, told by their stacks (nest.h). */
#include <stdlib.h>
#include <string.h>
#include "frames.h"
#include "kmemscope.h"
#include "ksyms.h"
#include "nest.h"

/* a stack id past this is from a damaged file: judged, not remembered */
#define NEST_MEMO_MAX (1 << 24)

static const char *const names[] = {
	[NEST_SLAB] = "slab",
	[NEST_VMALLOC] = "vmalloc",
	[NEST_PERCPU] = "percpu",
	[NEST_DMA] = "dma",
};

const char *nest_name(int kind)
{
	return kind >= 0 && kind < (int)(sizeof(names) / sizeof(names[0])) ? names[kind] : NULL;
}

static const char *strip_name(const char *f, char *buf, size_t len)
{
	size_t n = strcspn(f, ".");

	if (n >= len)
		n = len - 1;
	memcpy(buf, f, n);
	buf[n] = '\0';
	return buf;
}

/* which allocator an internal frame belongs to, if it makes pages for another one */
static int kind_of(const char *func)
{
	char buf[128];
	const char *f = strip_name(func, buf, sizeof(buf));

	/* kvmalloc() picks kmalloc or vmalloc for its caller: the frame below tells which */
	if (strstr(f, "kvmalloc") || strstr(f, "kvzalloc") || strstr(f, "kvrealloc"))
		return -1;
	if (strstr(f, "slab") || strstr(f, "kmalloc") || strstr(f, "kmem_cache") ||
	    strstr(f, "sheaf") || strstr(f, "krealloc"))
		return NEST_SLAB;
	if (strstr(f, "vmalloc") || strstr(f, "vzalloc") || strstr(f, "vm_area") ||
	    strstr(f, "vmap"))
		return NEST_VMALLOC;
	if (strstr(f, "pcpu_") || strstr(f, "percpu"))
		return NEST_PERCPU;
	if (strstr(f, "dma_"))
		return NEST_DMA;
	return -1;
}

/*
 * Callers, to frames.c (no allocation API), whose kmallocs are an allocator's
 * own bookkeeping whoever called them:
 * - a slab's obj_exts vector (before 6.10 memcg_alloc_slab_cgroups()'s),
 *   made with a new slab or, lazily, at the slab's first accounted object
 *   (__memcg_slab_post_alloc_hook(), from any kmem_cache_alloc()), freed
 *   with the slab;
 * - a cache's sheaf (6.18), the per-CPU array of objects that a
 *   kmem_cache_alloc(), a kfree_rcu() or a maple tree preallocation may
 *   make, kept in the cache's barn.
 * Before this, on the 6.18 host, the lazy vector showed as a certain leak of
 * `dd bs=1M count=50` at alloc_buffer_head(), a sheaf as one of a python3
 * that made and removed 300 files, under kvfree_call_rcu().
 */
static int helper_kind(const char *func)
{
	static const char *const slab_helpers[] = { "alloc_slab_obj_exts",
						    "memcg_alloc_slab_cgroups",
						    "alloc_empty_sheaf", NULL };

	return frames__named(func, slab_helpers) ? NEST_SLAB : -1;
}

/*
 * The internal frames before the first caller frame tell: a page under any
 * allocator's internals, a kmalloc under another allocator's (past the
 * kmalloc's own slab frames), under a helper they call (the caller frame's
 * caller is internal) or made by a bookkeeping helper (helper_kind()).
 */
static int classify(const struct ksyms *k, const __u64 *ips, int n, int fam)
{
	int kind = -1;

	for (int i = 0; i < n; i++) {
		const struct ksym *s = ips[i] ? ksyms__resolve(k, ips[i]) : NULL;

		if (!s)
			continue;
		if (!frames__is_internal(s->name)) {
			if (fam != KMS_FAM_KMALLOC)
				break;
			kind = helper_kind(s->name);
			s = kind < 0 && i + 1 < n && ips[i + 1] ? ksyms__resolve(k, ips[i + 1]) : NULL;
			if (s && frames__is_internal(s->name))
				kind = kind_of(s->name);
			break;
		}
		kind = kind_of(s->name);
		/*
		 * A vm_struct is nested in a vmalloc, which carries the verdict,
		 * not in the bare area reservation ioremap() also makes: its
		 * vm_struct is its caller's (tests/qemu/scenarios.txt ioremap).
		 */
		if (fam == KMS_FAM_KMALLOC && strstr(s->name, "get_vm_area"))
			kind = -1;
		if (kind >= 0 && (fam == KMS_FAM_PAGE || kind != NEST_SLAB))
			break;
		kind = -1;
	}
	return kind;
}

int nest__classify(struct nest *n, int stack_id, int fam)
{
	__u64 ips[KMS_MAX_STACK];
	int nr, kind;

	if (!n->stack || !n->ksyms)
		return -1;
	nr = n->stack(n->stack_ctx, stack_id, ips, KMS_MAX_STACK);
	if (nr < 0)
		return -1;	/* not remembered: the stack may be readable later */
	kind = classify(n->ksyms, ips, nr, fam);
	if ((size_t)stack_id >= n->cap && stack_id < NEST_MEMO_MAX) {
		size_t cap = n->cap ? n->cap : 1024;
		signed char *p;

		while (cap <= (size_t)stack_id)
			cap *= 2;
		p = realloc(n->memo, cap);
		if (p) {
			memset(p + n->cap, 0, cap - n->cap);
			n->memo = p;
			n->cap = cap;
		}
	}
	if ((size_t)stack_id < n->cap)
		n->memo[stack_id] = kind + 2;
	return kind;
}

void nest__fini(struct nest *n)
{
	free(n->memo);
	n->memo = NULL;
	n->cap = 0;
}
