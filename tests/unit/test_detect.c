/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* detect: synthetic record streams through the leak, bad-free and misuse detectors */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "agg.h"
#include "deferred.h"
#include "detect.h"
#include "detect_report.h"
#include "ksyms.h"
#include "kallsyms_text.h"
#include "pipe.h"

#define SITE_A	0xffffffff81001010ULL	/* in caller_a */
#define SITE_B	0xffffffff81002010ULL	/* in caller_b */
#define SITE_E	0xffffffff81003010ULL	/* in do_epoll_create */
#define CACHE1	0xffff888000100000ULL
#define CACHE2	0xffff888000200000ULL
#define SLAB1	0xffff888012340000ULL
#define VMA1	0xffffc90000100000ULL
#define DMAP	0xffff888000000000ULL
#define GFP_DR	0x400U		/* __GFP_DIRECT_RECLAIM in this synthetic kernel */
#define GFP_K	(0xc00U | 0xc0U)	/* GFP_KERNEL: reclaim bits + IO/FS */
#define GFP_NOWAIT_ 0x800U	/* kswapd reclaim only */

/* a little kernel: two callers, allocator internals, a slab and a vmalloc path */
static const char kallsyms_text[] =
	"ffffffff81001000 T caller_a\n"
	"ffffffff81002000 T caller_b\n"
	"ffffffff81003000 t do_epoll_create\n"
	"ffffffff81004000 T pipe_write\n"
	"ffffffff81005000 T __x64_sys_foo\n"
	"ffffffff81006000 T __filemap_get_folio\n"
	"ffffffff81007000 T copy_process\n"
	"ffffffff81008000 t mm_init\n"
	"ffffffff81009000 T pgd_alloc\n"
	"ffffffff81009800 t alloc_slab_obj_exts\n"
	"ffffffff81009a00 T __memcg_slab_post_alloc_hook\n"
	"ffffffff81009b00 t alloc_empty_sheaf\n"
	"ffffffff81009c00 T inet_bind2_bucket_create\n"
	"ffffffff81009d00 T pte_alloc_one\n"
	"ffffffff81009e00 T pte_alloc_one_kernel\n"
	"ffffffff8100a000 T __percpu_counter_init_many\n"
	"ffffffff8100a800 T __ioremap_caller\n"
	"ffffffff8100b000 T mm_alloc\n"
	"ffffffff8100c000 t __get_vm_area_node\n"
	"ffffffff8100d000 T __kvmalloc_node_noprof\n"
	"ffffffff8100e000 T alloc_inode\n"
	"ffffffff8100f000 T security_inode_alloc\n"
	"ffffffff81010000 T __alloc_pages_noprof\n"
	"ffffffff81011000 T alloc_pages_noprof\n"
	"ffffffff81012000 t allocate_slab\n"
	"ffffffff81013000 t ___slab_alloc\n"
	"ffffffff81014000 T kmem_cache_alloc_noprof\n"
	"ffffffff81015000 T __vmalloc_node_range_noprof\n"
	"ffffffff81016000 t __vmalloc_area_node\n"
	"ffffffff81017000 T __kmalloc_noprof\n"
	"ffffffff81017400 T mas_preallocate\n"
	"ffffffff81017800 T __mmap_region\n"
	"ffffffff81017c00 T simple_offset_add\n"
	"ffffffff81017e00 T copy_net_ns\n"
	"ffffffff81017f00 T __inet_hash_connect\n"
	"ffffffff81017f40 T prepare_creds\n"
	"ffffffff81017f80 T ksys_unshare\n"
	"ffffffff81017fa0 t ext4_cache_fast_symlink\n"
	"ffffffff81017fc0 T __ext4_iget\n"
	"ffffffff81018000 T _etext\n";

#define IP_ALLOC_PAGES	0xffffffff81010020ULL
#define IP_ALLOC_PAGES2	0xffffffff81011020ULL
#define IP_ALLOC_SLAB	0xffffffff81012020ULL
#define IP_SLAB_ALLOC	0xffffffff81013020ULL
#define IP_CACHE_ALLOC	0xffffffff81014020ULL
#define IP_VM_RANGE	0xffffffff81015020ULL
#define IP_VM_AREA	0xffffffff81016020ULL
#define IP_KMALLOC	0xffffffff81017020ULL
#define IP_PIPE_WRITE	0xffffffff81004020ULL
#define IP_SYS_FOO	0xffffffff81005020ULL
#define IP_COPY_PROCESS	0xffffffff81007020ULL
#define IP_MM_INIT	0xffffffff81008020ULL
#define IP_PGD_ALLOC	0xffffffff81009020ULL
#define IP_PCPU_INIT	0xffffffff8100a020ULL
#define IP_MM_ALLOC	0xffffffff8100b020ULL
#define IP_VM_AREA_GET	0xffffffff8100c020ULL
#define IP_KVMALLOC	0xffffffff8100d020ULL
#define IP_ALLOC_INODE	0xffffffff8100e020ULL
#define IP_SEC_INODE	0xffffffff8100f020ULL
#define IP_OBJ_EXTS	0xffffffff81009820ULL
#define IP_MEMCG_HOOK	0xffffffff81009a20ULL
#define IP_SHEAF	0xffffffff81009b20ULL
#define IP_BIND2	0xffffffff81009c20ULL
#define IP_PTE		0xffffffff81009d20ULL
#define IP_PTE_KERNEL	0xffffffff81009e20ULL
#define IP_IOREMAP	0xffffffff8100a820ULL
#define IP_MAS_PREALLOC	0xffffffff81017420ULL
#define IP_MMAP_REGION	0xffffffff81017820ULL
#define IP_OFFSET_ADD	0xffffffff81017c20ULL
#define IP_COPY_NET_NS	0xffffffff81017e20ULL
#define IP_HASH_CONNECT	0xffffffff81017f20ULL
#define IP_PREPARE_CREDS	0xffffffff81017f50ULL
#define IP_UNSHARE	0xffffffff81017f90ULL
#define IP_FAST_SYMLINK	0xffffffff81017fa8ULL
#define IP_EXT4_IGET	0xffffffff81017fc8ULL

/* synthetic stack map */
enum {
	STK_SLAB_PAGE = 1,	/* page under kmem_cache_alloc, called from caller_a */
	STK_PLAIN_PAGE,		/* page from pipe_write */
	STK_VMALLOC_PAGE,	/* page under vmalloc, called from caller_b */
	STK_KMALLOC_A,		/* kmalloc from caller_a, via __x64_sys_foo */
	STK_KMALLOC_A2,		/* another kernel stack, same shown frames at depth 1 */
	STK_PGD,		/* a process's top page table, made by mm_init() */
	STK_MM_PCPU,		/* its percpu counters, made by mm_init() */
	STK_PTE,		/* one of its lower page tables */
	STK_PTE_KERNEL,		/* a page table of the kernel's own */
	STK_VM_STRUCT,		/* vmalloc's vm_struct for a thread stack (kmalloc) */
	STK_KVMALLOC,		/* a kmalloc kvmalloc() chose for caller_a */
	STK_INODE_BLOB,		/* an inode's LSM blob */
	STK_OBJ_EXTS,		/* a new slab's obj_exts vector (kmalloc) */
	STK_OBJ_EXTS_LAZY,	/* one made at a slab's first accounted object */
	STK_SHEAF,		/* a cache's sheaf, made for a kmalloc's caller */
	STK_FORK_BLOB,		/* a kmalloc for a new task (caller_b, under copy_process) */
	STK_IOREMAP,		/* ioremap()'s vm_struct: its caller's (pipe_write) */
	STK_THREAD_STACK,	/* a vmalloc'ed thread stack, seen from inside vmalloc */
	STK_VMA_NODE,		/* a node of a process's VMA tree (maple_node), made by mmap */
	STK_OFFSET_NODE,	/* a node of a tmpfs directory's offset tree (maple_node) */
	STK_UNSHARE_CRED,	/* the creds unshare() makes for the calling task */
	STK_SYMLINK,		/* an ext4 inode's cached symlink target, read in with it */
	STK_NR,
};

static const __u64 stacks[STK_NR][6] = {
	[STK_SLAB_PAGE] = { IP_ALLOC_PAGES, IP_ALLOC_SLAB, IP_SLAB_ALLOC, IP_CACHE_ALLOC, SITE_A,
			    IP_SYS_FOO },
	[STK_PLAIN_PAGE] = { IP_ALLOC_PAGES, IP_ALLOC_PAGES2, IP_PIPE_WRITE, IP_SYS_FOO },
	[STK_VMALLOC_PAGE] = { IP_ALLOC_PAGES, IP_VM_AREA, IP_VM_RANGE, SITE_B, IP_SYS_FOO },
	[STK_KMALLOC_A] = { IP_KMALLOC, SITE_A, IP_SYS_FOO },
	[STK_KMALLOC_A2] = { IP_KMALLOC, SITE_A, IP_PIPE_WRITE },
	[STK_PGD] = { IP_ALLOC_PAGES, IP_ALLOC_PAGES2, IP_PGD_ALLOC, IP_MM_INIT, IP_MM_ALLOC },
	[STK_MM_PCPU] = { IP_PCPU_INIT, IP_MM_INIT, IP_MM_ALLOC },
	[STK_PTE] = { IP_ALLOC_PAGES, IP_ALLOC_PAGES2, IP_PTE, IP_SYS_FOO },
	[STK_PTE_KERNEL] = { IP_ALLOC_PAGES, IP_ALLOC_PAGES2, IP_PTE_KERNEL, IP_SYS_FOO },
	[STK_VM_STRUCT] = { IP_KMALLOC, IP_VM_AREA_GET, IP_VM_RANGE, IP_COPY_PROCESS },
	[STK_KVMALLOC] = { IP_KMALLOC, IP_KVMALLOC, SITE_A, IP_SYS_FOO },
	[STK_INODE_BLOB] = { IP_CACHE_ALLOC, IP_SEC_INODE, IP_ALLOC_INODE, IP_SYS_FOO },
	[STK_OBJ_EXTS] = { IP_KMALLOC, IP_OBJ_EXTS, IP_ALLOC_SLAB, IP_SLAB_ALLOC, IP_CACHE_ALLOC,
			   SITE_B },
	[STK_OBJ_EXTS_LAZY] = { IP_KMALLOC, IP_OBJ_EXTS, IP_MEMCG_HOOK, IP_CACHE_ALLOC, SITE_A,
				IP_SYS_FOO },
	[STK_SHEAF] = { IP_KMALLOC, IP_SHEAF, SITE_A, IP_SYS_FOO },
	[STK_FORK_BLOB] = { IP_KMALLOC, SITE_B, IP_COPY_PROCESS, IP_SYS_FOO },
	[STK_IOREMAP] = { IP_KMALLOC, IP_VM_AREA_GET, IP_IOREMAP, IP_PIPE_WRITE, IP_SYS_FOO },
	[STK_THREAD_STACK] = { IP_VM_RANGE, IP_COPY_PROCESS, IP_SYS_FOO },
	[STK_VMA_NODE] = { IP_CACHE_ALLOC, IP_MAS_PREALLOC, IP_MMAP_REGION, IP_SYS_FOO },
	[STK_OFFSET_NODE] = { IP_CACHE_ALLOC, IP_MAS_PREALLOC, IP_OFFSET_ADD, IP_SYS_FOO },
	[STK_UNSHARE_CRED] = { IP_CACHE_ALLOC, IP_PREPARE_CREDS, IP_UNSHARE, IP_SYS_FOO },
	[STK_SYMLINK] = { IP_KMALLOC, IP_FAST_SYMLINK, IP_EXT4_IGET, IP_SYS_FOO },
};

static int stack_reads;

static int fake_stack(void *ctx, int id, __u64 *ips, int max)
{
	int n = 0;

	stack_reads++;
	if (id <= 0 || id >= STK_NR)
		return -ENOENT;
	while (n < 6 && n < max && stacks[id][n]) {
		ips[n] = stacks[id][n];
		n++;
	}
	return n;
}

static struct ksyms *ks;
static __u64 now = 1000;

static int group_setup(void **state)
{
	ks = ksyms_from_text(kallsyms_text);
	return ks ? 0 : -1;
}

static int group_teardown(void **state)
{
	ksyms__free(ks);
	return 0;
}

static struct detect *new_detect(bool leaks, bool misuse, unsigned int freed_max)
{
	struct detect_opts o = {
		.leaks = leaks, .bad_frees = leaks, .misuse = misuse, .ksyms = ks,
		.stack = fake_stack, .gfp_direct_reclaim = GFP_DR, .freed_max = freed_max,
	};
	struct detect *d;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		o.baseline_pc[f] = 1;
	d = pipe_detect(&o);
	assert_non_null(d);
	return d;
}

static struct kms_event ev(int type, __u64 ptr, __u64 site, __u32 bytes)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .site = site, .bytes_req = bytes,
		.bytes_alloc = bytes, .gfp = GFP_K, .pid = 100, .node = -1,
		.stack_id = -1, .ctx = KMS_CTX_KNOWN, .pc = 1,
	};

	e.ts = now++;
	return e;
}

static void feed(struct detect *d, struct kms_event e)
{
	pipe_event(&e);
}

static const struct detect_group *find_group(const struct detect *d, int fam, __u64 site)
{
	for (size_t i = 0; i < detect__nr_groups(d); i++) {
		const struct detect_group *g = detect__group(d, i);

		if (g->family == fam && g->site == site)
			return g;
	}
	return NULL;
}

/* an allocation with a stack from the synthetic stack map */
static void feed_stacked(struct detect *d, int type, __u64 ptr, __u64 site, __u32 bytes, int stack)
{
	struct kms_event e = ev(type, ptr, site, bytes);

	e.stack_id = stack;
	feed(d, e);
}

/* the group of site is nested in the allocator named, or not nested (NULL) */
static void assert_nested(const struct detect *d, int fam, __u64 site, const char *in)
{
	const struct detect_group *g = find_group(d, fam, site);

	assert_non_null(g);
	if (in) {
		assert_int_not_equal(g->nested, -1);
		assert_string_equal(nest_name(g->nested), in);
	}
	else
		assert_int_equal(g->nested, -1);
}

static __u64 badfree_count(const struct detect *d, int kind)
{
	__u64 n = 0;

	for (size_t i = 0; i < detect__nr_badfree(d); i++)
		if (detect__badfree(d, i)->kind == kind)
			n += detect__badfree(d, i)->count;
	return n;
}

static __u64 misuse_count(const struct detect *d, int kind, int ctx)
{
	__u64 n = 0;

	for (size_t i = 0; i < detect__nr_misuse(d); i++) {
		const struct detect_misuse *m = detect__misuse(d, i);

		if (m->kind == kind && (ctx < 0 || m->ctx == ctx))
			n += m->count;
	}
	return n;
}

/* ---- context ---- */

static void test_classify(void **state)
{
	assert_int_equal(detect__classify(0, 1, 1), DCTX_UNKNOWN);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 1, 1), DCTX_PROCESS);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 2, 1), DCTX_PREEMPT_OFF);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 2, -1), DCTX_UNKNOWN);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x201, 1), DCTX_BH_OFF);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x101, 1), DCTX_SOFTIRQ);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x301, 1), DCTX_SOFTIRQ);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x10101, 1), DCTX_HARDIRQ);
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x110001, 1), DCTX_NMI);
	/* interrupt bits need no baseline */
	assert_int_equal(detect__classify(KMS_CTX_KNOWN, 0x10001, -1), DCTX_HARDIRQ);
	assert_string_equal(detect_ctx_name(DCTX_BH_OFF), "bh_disabled");
}

/* ---- leaks ---- */

static void test_leaks_outstanding(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct detect_leak *rows;
	const struct detect_group *g;
	struct kms_event second;
	size_t nr;

	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	second = ev(KMS_EV_KMALLOC, SLAB1 + 64, SITE_A, 64);
	feed(d, second);
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 128, SITE_B, 32));
	feed(d, ev(KMS_EV_KFREE, SLAB1, 0, 0));
	feed(d, ev(KMS_EV_KFREE, 0, 0, 0));	/* kfree(NULL): nothing */
	assert_int_equal(detect__nr_live(d), 2);
	g = find_group(d, KMS_FAM_KMALLOC, SITE_A);
	assert_non_null(g);
	assert_int_equal(g->allocs, 2);
	assert_int_equal(g->frees, 1);
	assert_int_equal(g->outstanding, 1);
	assert_int_equal(g->outstanding_bytes, 64);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_KMALLOC], 0);

	/* min age: only the older of the two live objects is old enough */
	assert_int_equal(detect__leaks(d, now, 0, &rows, &nr), 0);
	assert_int_equal(nr, 2);
	free(rows);
	assert_int_equal(detect__leaks(d, now, now - second.ts, &rows, &nr), 0);
	{
		__u64 count = 0, young = 0;

		for (size_t i = 0; i < nr; i++) {
			count += rows[i].count;
			young += rows[i].young;
		}
		assert_int_equal(count, 1);
		assert_int_equal(young, 1);
	}
	free(rows);
	pipe_done();
}

static void test_before_trace(void **state)
{
	struct detect *d = new_detect(true, false, 0);

	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_B, 0));
	feed(d, ev(KMS_EV_CACHE_FREE, SLAB1 + 64, SITE_B, 0));
	feed(d, ev(KMS_EV_VFREE, VMA1, SITE_B, 0));
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_KMALLOC], 1);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_CACHE], 1);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_VMALLOC], 1);
	/* never an error */
	assert_int_equal(detect__nr_badfree(d), 0);
	pipe_done();
}

/* epoll: 10000 kmallocs, addresses reused by the slab, no kfree ever traced */
static void test_untraced_frees(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	const struct detect_group *e, *a;
	int i;

	for (i = 0; i < 10000; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + (i % 300) * 256, SITE_E, 256));
	/* a site with traced frees and one real leak */
	for (i = 0; i < 50; i++) {
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x100000 + i * 64, SITE_A, 64));
		if (i)
			feed(d, ev(KMS_EV_KFREE, SLAB1 + 0x100000 + i * 64, SITE_A, 0));
	}
	e = find_group(d, KMS_FAM_KMALLOC, SITE_E);
	a = find_group(d, KMS_FAM_KMALLOC, SITE_A);
	assert_non_null(e);
	assert_non_null(a);
	assert_int_equal(e->allocs, 10000);
	assert_int_equal(e->implicit_frees, 10000 - 300);
	assert_int_equal(e->outstanding, 300);
	assert_true(detect__site_unobservable(d, e->site_idx));
	assert_false(detect__site_unobservable(d, a->site_idx));
	assert_int_equal(a->outstanding, 1);
	assert_int_equal(detect__free_stats(d)->implicit[KMS_FAM_KMALLOC], 9700);
	pipe_done();
}

/* vmalloc's own page array (KMS_X_NESTED) at the caller's site: a group of its own, nested */
static void test_nested_vmalloc(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct kms_event e;
	const struct detect_group *outer = NULL, *inner = NULL;

	for (int i = 0; i < 2; i++) {
		e = ev(KMS_EV_VMALLOC, 0xffffc90000100000ULL + i * 0x1000000, SITE_A, 4 << 20);
		feed(d, e);
		e = ev(KMS_EV_VMALLOC, 0xffffc90000900000ULL + i * 0x1000000, SITE_A, 8192);
		e.extra = KMS_X_NESTED;
		feed(d, e);
	}
	for (size_t i = 0; i < detect__nr_groups(d); i++) {
		const struct detect_group *g = detect__group(d, i);

		if (g->family == KMS_FAM_VMALLOC && g->site == SITE_A)
			*(g->obj == KMS_OBJ_NESTED ? &inner : &outer) = g;
	}
	assert_non_null(outer);
	assert_non_null(inner);
	assert_int_equal(outer->allocs, 2);
	assert_int_equal(outer->nested, -1);
	assert_int_equal(inner->allocs, 2);
	assert_string_equal(nest_name(inner->nested), "vmalloc");
	/* a leak of the page array is judged at its area, not on its own */
	assert_int_equal(detect__leak_class(d, inner, false), DLC_NESTED);
	pipe_done();
}

/* the obj key of the aggregator's one page row at site */
static __u64 page_row_obj(__u64 site)
{
	const struct agg_site *row = NULL;

	for (size_t i = 0; i < agg__nr_sites(test_pipe.agg); i++) {
		const struct agg_site *r = agg__site(test_pipe.agg, i);

		if (r->family == KMS_FAM_PAGE && r->addr == site) {
			assert_null(row);
			row = r;
		}
	}
	assert_non_null(row);
	return row->obj;
}

static void test_nested_pages(void **state)
{
	struct detect *d = new_detect(true, true, 0);
	__u64 ips[KMS_MAX_STACK];
	int n;

	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x1000, SITE_A, 4096, STK_SLAB_PAGE);
	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x2000, IP_PIPE_WRITE, 4096, STK_PLAIN_PAGE);
	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x3000, SITE_B, 4096, STK_VMALLOC_PAGE);

	assert_nested(d, KMS_FAM_PAGE, SITE_A, "slab");
	assert_nested(d, KMS_FAM_PAGE, IP_PIPE_WRITE, NULL);
	assert_nested(d, KMS_FAM_PAGE, SITE_B, "vmalloc");
	/* nested pages are judged at the outer allocation, not twice */
	assert_int_equal(detect__misuse_stats(d)->nested_skipped, 2);
	/* and stat counts them in a row of their own at the site */
	assert_int_equal(page_row_obj(SITE_A), KMS_OBJ_NESTED);
	assert_int_equal(page_row_obj(IP_PIPE_WRITE), 0);
	assert_int_equal(page_row_obj(SITE_B), KMS_OBJ_NESTED);

	/* trimmed: the first frame shown is the caller, depth honoured */
	n = detect__frames(d, STK_SLAB_PAGE, 0, ips, KMS_MAX_STACK);
	assert_int_equal(n, 2);
	assert_int_equal(ips[0], SITE_A);
	assert_int_equal(ips[1], IP_SYS_FOO);
	n = detect__frames(d, STK_SLAB_PAGE, 0, ips, 1);
	assert_int_equal(n, 1);
	/* no stack: the site alone */
	n = detect__frames(d, -1, SITE_B, ips, 8);
	assert_int_equal(n, 1);
	assert_int_equal(ips[0], SITE_B);
	pipe_done();
}

static void test_page_split_free(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct kms_event e = ev(KMS_EV_PAGE_ALLOC, 0x4000, SITE_A, 4 * 4096);

	e.order = 2;
	feed(d, e);
	for (int i = 0; i < 3; i++)
		feed(d, ev(KMS_EV_PAGE_FREE, 0x4000 + i, 0, 0));
	assert_int_equal(detect__nr_live(d), 1);
	assert_int_equal(find_group(d, KMS_FAM_PAGE, SITE_A)->outstanding_bytes, 4096);
	feed(d, ev(KMS_EV_PAGE_FREE_BATCHED, 0x4003, 0, 0));
	assert_int_equal(detect__nr_live(d), 0);
	assert_int_equal(find_group(d, KMS_FAM_PAGE, SITE_A)->outstanding, 0);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_PAGE], 0);
	pipe_done();
}

/* 64 KiB pages (arm64, ppc64): a split free releases one page of the kernel's size */
static void test_page_split_free_64k(void **state)
{
	struct detect_opts o = { .leaks = true, .page_shift = 16 };
	struct detect *d = pipe_detect(&o);
	struct kms_event e = ev(KMS_EV_PAGE_ALLOC, 0x4000, SITE_A, 4 << 16);

	assert_non_null(d);
	e.order = 2;
	feed(d, e);
	feed(d, ev(KMS_EV_PAGE_FREE, 0x4001, 0, 0));
	assert_int_equal(detect__nr_live(d), 1);
	assert_int_equal(find_group(d, KMS_FAM_PAGE, SITE_A)->outstanding_bytes, 3 << 16);
	pipe_done();
}

static void test_growth(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	const struct detect_group *g;
	int i;

	for (i = 0; i < 4; i++) {
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x10000 + i * 64, SITE_B, 64));
		if (i)	/* SITE_B: freed again each interval, flat */
			feed(d, ev(KMS_EV_KFREE, SLAB1 + 0x10000 + (i - 1) * 64, 0, 0));
		detect__snapshot(d);
	}
	g = find_group(d, KMS_FAM_KMALLOC, SITE_A);
	assert_int_equal(g->nr_snaps, 4);
	assert_int_equal(detect__growth_run(g), 3);
	assert_int_equal(detect__growth_run(find_group(d, KMS_FAM_KMALLOC, SITE_B)), 0);
	/* one flat interval ends the run */
	detect__snapshot(d);
	assert_int_equal(detect__growth_run(g), 0);
	pipe_done();
}

/* ---- bad frees ---- */

static void test_double_free(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	const struct detect_badfree *b;

	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_B, 0));
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_E, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);
	b = detect__badfree(d, 0);
	assert_int_equal(b->alloc_site, SITE_A);
	assert_int_equal(b->first_free_site, SITE_B);
	assert_int_equal(b->free_site, SITE_E);

	/* an allocation in between makes the second free a normal one */
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 64, SITE_A, 64));
	feed(d, ev(KMS_EV_KFREE, SLAB1 + 64, SITE_B, 0));
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 64, SITE_A, 64));
	feed(d, ev(KMS_EV_KFREE, SLAB1 + 64, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);
	pipe_done();
}

static void test_freed_set_bounded(void **state)
{
	struct detect *d = new_detect(true, false, 4);
	int i;

	for (i = 0; i < 5; i++) {
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
		feed(d, ev(KMS_EV_KFREE, SLAB1 + i * 64, SITE_B, 0));
	}
	assert_int_equal(detect__free_stats(d)->freed_evicted, 1);
	/* the first free was forgotten: its second free counts as before-trace */
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 0);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_KMALLOC], 1);
	/* the last one is still remembered */
	feed(d, ev(KMS_EV_KFREE, SLAB1 + 4 * 64, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);
	pipe_done();
}

/*
 * An address allocated and freed again keeps one entry, the newest free's:
 * evicting its older free from the bounded set leaves it.
 */
static void test_freed_set_realloc(void **state)
{
	struct detect *d = new_detect(true, false, 4);
	const struct detect_badfree *b;

	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_B, 0));
	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_E, 0));
	for (int i = 1; i <= 3; i++) {
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
		feed(d, ev(KMS_EV_KFREE, SLAB1 + i * 64, SITE_B, 0));
	}
	/* the first free of SLAB1 is out of the set, the second is not */
	assert_int_equal(detect__free_stats(d)->freed_evicted, 1);
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_A, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);
	b = detect__badfree(d, 0);
	assert_int_equal(b->first_free_site, SITE_E);
	pipe_done();
}

/*
 * Many more addresses freed than the set remembers: its tables are swept of
 * forgotten frees as they fill, and exactly the last freed_max stay.
 */
static void test_freed_set_swept(void **state)
{
	struct detect *d = new_detect(true, false, 4);
	int i;

	for (i = 0; i < 40; i++) {
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
		feed(d, ev(KMS_EV_KFREE, SLAB1 + i * 64, SITE_B, 0));
	}
	assert_int_equal(detect__free_stats(d)->freed_evicted, 36);
	/* the fifth newest and older: forgotten, swept or not */
	for (i = 0; i < 36; i++)
		feed(d, ev(KMS_EV_KFREE, SLAB1 + i * 64, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 0);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_KMALLOC], 36);
	/* the four newest: remembered */
	for (i = 36; i < 40; i++)
		feed(d, ev(KMS_EV_KFREE, SLAB1 + i * 64, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 4);
	pipe_done();
}

static void test_wrong_api(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	const struct detect_badfree *b;
	struct kms_event e;

	feed(d, ev(KMS_EV_VMALLOC, VMA1, SITE_A, 8192));
	feed(d, ev(KMS_EV_KFREE, VMA1, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_WRONG_API), 1);
	b = detect__badfree(d, 0);
	assert_int_equal(b->alloc_type, KMS_EV_VMALLOC);
	assert_int_equal(b->free_type, KMS_EV_KFREE);
	/* the kernel did not free it: still live, and vfree then frees it */
	assert_int_equal(detect__nr_live(d), 1);
	feed(d, ev(KMS_EV_VFREE, VMA1, SITE_A, 0));
	assert_int_equal(detect__nr_live(d), 0);

	/* vfree of a slab object */
	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed(d, ev(KMS_EV_VFREE, SLAB1, SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_WRONG_API), 2);

	/* kfree of a page: the direct map is learned from two large kmallocs */
	assert_int_equal(detect__direct_map(d), 0);
	for (int i = 0; i < 2; i++) {
		e = ev(KMS_EV_PAGE_ALLOC, 0x100 + i * 2, 0, 8192);
		e.order = 1;
		e.cpu = 3;
		feed(d, e);
		e = ev(KMS_EV_KMALLOC, DMAP + ((0x100ULL + i * 2) << 12), SITE_A, 8192);
		e.cpu = 3;
		feed(d, e);
	}
	assert_int_equal(detect__direct_map(d), DMAP);
	e = ev(KMS_EV_PAGE_ALLOC, 0x200, SITE_A, 4096);
	feed(d, e);
	feed(d, ev(KMS_EV_KFREE, DMAP + (0x200ULL << 12), SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_WRONG_API), 3);
	/* the large kmalloc itself is a slab object: kfree of it is fine */
	feed(d, ev(KMS_EV_KFREE, DMAP + (0x100ULL << 12), SITE_B, 0));
	assert_int_equal(badfree_count(d, BF_WRONG_API), 3);
	pipe_done();
}

static void test_wrong_cache(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct kms_event e;

	e = ev(KMS_EV_CACHE_ALLOC, SLAB1, SITE_A, 128);
	e.obj = CACHE1;
	feed(d, e);
	e = ev(KMS_EV_CACHE_FREE, SLAB1, SITE_B, 0);
	e.obj = CACHE2;
	feed(d, e);
	assert_int_equal(badfree_count(d, BF_WRONG_CACHE), 1);
	assert_int_equal(detect__badfree(d, 0)->alloc_obj, CACHE1);
	assert_int_equal(detect__badfree(d, 0)->free_obj, CACHE2);
	/* same cache: fine; kfree of a cache object: fine */
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1, SITE_A, 128);
	e.obj = CACHE1;
	feed(d, e);
	e = ev(KMS_EV_CACHE_FREE, SLAB1, SITE_B, 0);
	e.obj = CACHE1;
	feed(d, e);
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1, SITE_A, 128);
	e.obj = CACHE1;
	feed(d, e);
	feed(d, ev(KMS_EV_KFREE, SLAB1, SITE_B, 0));
	assert_int_equal(detect__nr_badfree(d), 1);
	pipe_done();
}

/* ---- misuse ---- */

static void test_misuse(void **state)
{
	struct detect *d = new_detect(false, true, 0);
	const struct detect_misuse_stats *ms = detect__misuse_stats(d);
	struct kms_event e;

	/* GFP_KERNEL under a spinlock: preempt depth 2 > baseline 1 */
	e = ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64);
	e.pc = 2;
	feed(d, e);
	feed(d, e);
	/* GFP_KERNEL in hardirq and softirq */
	e.pc = 0x10001;
	feed(d, e);
	e.pc = 0x101;
	feed(d, e);
	/* bottom halves disabled */
	e.pc = 0x201;
	feed(d, e);
	/* GFP_KERNEL from process context: fine */
	e.pc = 1;
	feed(d, e);
	/* GFP_NOWAIT from process context: informational */
	e.gfp = GFP_NOWAIT_;
	feed(d, e);
	/* GFP_NOWAIT under a lock: fine */
	e.pc = 2;
	feed(d, e);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, DCTX_PREEMPT_OFF), 2);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, DCTX_HARDIRQ), 1);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, DCTX_SOFTIRQ), 1);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, DCTX_BH_OFF), 1);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, -1), 5);
	assert_int_equal(misuse_count(d, MIS_ATOMIC_IN_PROCESS, -1), 1);
	assert_true(detect_misuse_is_info(MIS_ATOMIC_IN_PROCESS));

	/* vmalloc (no GFP on its tracepoint) with preemption off */
	e = ev(KMS_EV_VMALLOC, VMA1, SITE_B, 8192);
	e.gfp = 0;
	e.pc = 2;
	feed(d, e);
	e.pc = 1;
	feed(d, e);
	assert_int_equal(misuse_count(d, MIS_VMALLOC_IN_ATOMIC, DCTX_PREEMPT_OFF), 1);

	/* order-3 page without direct reclaim */
	e = ev(KMS_EV_PAGE_ALLOC, 0x8000, SITE_B, 8 * 4096);
	e.order = 3;
	e.gfp = GFP_NOWAIT_;
	e.pc = 2;
	feed(d, e);
	assert_int_equal(misuse_count(d, MIS_HIGH_ORDER_ATOMIC, -1), 1);

	/* unknown: no preempt count, or no baseline: counted, not guessed */
	e = ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64);
	e.ctx = 0;
	e.pc = 5;
	feed(d, e);
	assert_int_equal(ms->no_context, 1);
	assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, -1), 5);
	assert_int_equal(ms->by_ctx[DCTX_UNKNOWN], 1);
	pipe_done();

	/* baseline unknown for the family */
	{
		struct detect_opts o = { .misuse = true, .gfp_direct_reclaim = GFP_DR };

		for (int f = 0; f < KMS_FAM_MAX; f++)
			o.baseline_pc[f] = -1;
		d = pipe_detect(&o);
		assert_non_null(d);
		e = ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64);
		e.pc = 3;
		feed(d, e);
		e.pc = 0x10003;	/* hardirq needs no baseline */
		feed(d, e);
		assert_int_equal(detect__misuse_stats(d)->no_baseline, 1);
		assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, DCTX_HARDIRQ), 1);
		assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, -1), 1);
		pipe_done();
	}
}

/*
 * PREEMPT_RT: a non-blocking allocation where preemption is really off (raw
 * lock, hardirq, NMI) is an error there, whatever its GFP; spinlock_t and
 * softirqs leave the preempt count alone on RT, so their process context stays
 * clean. The same stream on a kernel that is not RT gives no such finding.
 */
static void test_misuse_rt(void **state)
{
	for (int rt = 0; rt < 2; rt++) {
		struct detect_opts o = { .misuse = true, .gfp_direct_reclaim = GFP_DR,
					 .preempt_rt = rt };
		struct detect *d;
		struct kms_event e;

		for (int f = 0; f < KMS_FAM_MAX; f++)
			o.baseline_pc[f] = 1;
		d = pipe_detect(&o);
		assert_non_null(d);
		assert_int_equal(detect__misuse_stats(d)->preempt_rt, rt);
		/*
		 * GFP_NOWAIT under a raw spinlock (depth 2 over the baseline 1) twice,
		 * in a hard interrupt handler, in an NMI; under spin_lock() (no
		 * preempt count on RT) or in a softirq thread; a softirq count,
		 * should one show, is not a hard context
		 */
		static const __u32 pcs[] = { 2, 2, 0x10001, 0x100001, 1, 0x101 };

		e = ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64);
		e.gfp = GFP_NOWAIT_;
		for (size_t i = 0; i < sizeof(pcs) / sizeof(pcs[0]); i++) {
			e.pc = pcs[i];
			feed(d, e);
		}
		/* GFP_KERNEL under a raw lock: blocking_gfp_in_atomic, and only that */
		e.gfp = GFP_K;
		e.pc = 2;
		feed(d, e);
		/* percpu without a GFP (6.1's tracepoint): any GFP is a bug there on RT */
		e = ev(KMS_EV_PERCPU_ALLOC, VMA1 + 0x100000, SITE_B, 64);
		e.gfp = KMS_GFP_UNKNOWN;
		e.pc = 2;
		feed(d, e);
		/* vmalloc with an explicit GFP_NOWAIT under a raw lock */
		e = ev(KMS_EV_VMALLOC, VMA1, SITE_B, 8192);
		e.gfp = GFP_NOWAIT_;
		e.pc = 2;
		feed(d, e);

		assert_int_equal(misuse_count(d, MIS_ALLOC_IN_ATOMIC_ON_RT, DCTX_PREEMPT_OFF),
				 rt ? 4 : 0);
		assert_int_equal(misuse_count(d, MIS_ALLOC_IN_ATOMIC_ON_RT, DCTX_HARDIRQ), rt);
		assert_int_equal(misuse_count(d, MIS_ALLOC_IN_ATOMIC_ON_RT, DCTX_NMI), rt);
		assert_int_equal(misuse_count(d, MIS_ALLOC_IN_ATOMIC_ON_RT, -1), rt ? 6 : 0);
		assert_int_equal(misuse_count(d, MIS_BLOCKING_IN_ATOMIC, -1), 1);
		assert_int_equal(misuse_count(d, MIS_VMALLOC_IN_ATOMIC, -1), 0);
		/* GFP_NOWAIT where it could sleep: the info, on both */
		assert_int_equal(misuse_count(d, MIS_ATOMIC_IN_PROCESS, DCTX_PROCESS), 1);
		assert_false(detect_misuse_is_info(MIS_ALLOC_IN_ATOMIC_ON_RT));
		assert_string_equal(detect_misuse_name(MIS_ALLOC_IN_ATOMIC_ON_RT),
				    "alloc_in_atomic_on_rt");
		pipe_done();
	}
}

/* ---- reports: lost records make every verdict uncertain ---- */

static const char *report_stacks = "every";	/* what leaks_json() tells the report */

static json_t *leaks_json(const struct detect *d, const struct kms_quality *q)
{
	struct detect_report_opts o = { .ksyms = ks, .stack_depth = 4, .now = now,
					.quality = q, .misuse = true, .stacks = report_stacks };
	struct agg *a = test_pipe.agg;
	json_error_t jerr;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *j;

	assert_non_null(f);
	for (int i = 0; i < KMS_FAM_MAX; i++)
		o.baseline_pc[i] = 1;
	assert_int_equal(detect_report__leaks_json(d, a, &o, f), 0);
	fclose(f);
	j = json_loads(buf, 0, &jerr);
	free(buf);
	assert_non_null(j);
	return j;
}

/*
 * A bad free is suspected when a record that could undo it may be missing: a
 * miss of an event of the object's class, any lost record; not a miss of
 * another class's event (a kmem_cache_free skipped in an interrupt says
 * nothing of a vmalloc area freed twice)
 */
static void test_badfree_suspected(void **state)
{
	static const struct {
		const char *event;
		__u64 lost;
		bool suspected;
	} cases[] = {
		{ NULL, 0, false },
		{ "kmem_cache_free", 0, false },
		{ "vfree", 0, true },
		{ "vmalloc", 0, true },
		{ "an_event_this_build_lacks", 0, true },
		{ NULL, 1, true },
	};
	struct detect *d = new_detect(true, false, 0);
	const __u64 area = 0xffffc90000100000ULL;

	feed(d, ev(KMS_EV_VMALLOC, area, SITE_A, 8192));
	feed(d, ev(KMS_EV_VFREE, area, SITE_B, 0));
	feed(d, ev(KMS_EV_VFREE, area, SITE_E, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kms_quality q = { .events = 100, .lost = cases[i].lost };
		json_t *j, *f;

		if (cases[i].event) {
			q.misses = 1;
			q.event_misses[0] = (struct kms_event_misses){ cases[i].event, 1 };
			q.nr_event_misses = 1;
		}
		j = leaks_json(d, &q);
		f = json_array_get(json_object_get(json_object_get(j, "bad_frees"), "findings"), 0);
		assert_non_null(f);
		assert_string_equal(json_string_value(json_object_get(f, "kind")), "double_free");
		if (json_is_true(json_object_get(f, "suspected")) != cases[i].suspected)
			fail_msg("case %zu (%s, lost %llu): suspected %d", i,
				 cases[i].event ? cases[i].event : "no miss",
				 (unsigned long long)cases[i].lost, !cases[i].suspected);
		json_decref(j);
	}
	pipe_done();
}

static void test_report_quality(void **state)
{
	struct detect *d = new_detect(true, true, 0);
	struct kms_quality q = { .events = 100 };
	struct kms_event e;
	json_t *j, *leaks, *l;
	const char *reason;
	int i;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	/* two kernel stacks that show the same frames at depth 1: one row */
	for (i = 0; i < 3; i++) {
		e = ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64);
		e.stack_id = i ? STK_KMALLOC_A : STK_KMALLOC_A2;
		feed(d, e);
	}
	for (i = 0; i < 20; i++)	/* an untraced-free site */
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x1000 + (i % 4) * 64, SITE_E, 64));
	e = ev(KMS_EV_PAGE_ALLOC, 0x1000, SITE_A, 4096);
	e.stack_id = STK_SLAB_PAGE;
	feed(d, e);

	j = leaks_json(d, &q);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "kmemscope.leaks");
	assert_true(json_is_true(json_object_get(json_object_get(j, "verdict"), "certain")));
	leaks = json_object_get(j, "leaks");
	assert_int_equal(json_array_size(leaks), 2);	/* two stacks at depth 4 */
	l = json_array_get(leaks, 0);
	/* no traced free at its site, and RCU/bulk frees are not traced: unconfirmed */
	assert_true(json_is_true(json_object_get(l, "uncertain")));
	assert_string_equal(json_string_value(json_object_get(l, "confidence")), "unconfirmed");
	assert_string_equal(json_string_value(json_array_get(json_object_get(l, "reasons"), 0)),
			    "frees_untraced");
	assert_string_equal(json_string_value(json_object_get(json_object_get(l, "site"),
							       "function")), "caller_a");
	assert_int_equal(json_array_size(json_object_get(j, "frees_not_observable")), 1);
	assert_int_equal(json_integer_value(json_object_get(
		json_array_get(json_object_get(j, "frees_not_observable"), 0), "outstanding")), 4);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"),
							    "nested_objects")), 1);
	assert_non_null(json_object_get(j, "misuse"));
	assert_non_null(json_object_get(j, "quality"));
	json_decref(j);

	/* lost records: the run is incomplete, and by how many */
	q.lost = 7;
	j = leaks_json(d, &q);
	assert_true(json_is_false(json_object_get(json_object_get(j, "verdict"), "certain")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "verdict"),
							    "records_lost")), 7);
	assert_false(json_is_true(json_object_get(json_object_get(j, "quality"), "complete")));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "verdict"),
								 "reason")),
			       "7 records lost (ring buffer full): "));
	json_decref(j);

	/* handler runs the kernel skipped are named as such, not as lost records */
	q.lost = 0;
	q.misses = 3;
	j = leaks_json(d, &q);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "verdict"),
							    "records_lost")), 3);
	reason = json_string_value(json_object_get(json_object_get(j, "verdict"), "reason"));
	assert_non_null(strstr(reason, "3 handler runs the kernel skipped: "));
	assert_null(strstr(reason, "ring buffer"));
	json_decref(j);
	pipe_done();
}

/*
 * The report says how stacks were captured and what that means: caching them,
 * or a trace file recorded by stat (a stack only for page/vmalloc/dma sites, or none)
 */
static void test_report_stacks(void **state)
{
	static const char *const modes[][2] = {
		{ "every", NULL }, { "cached", "stacks cached:" }, { "sites", "stacks sites:" },
		{ "none", "stacks none:" },
	};
	struct kms_quality q = { .events = 1 };

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct detect *d = new_detect(true, true, 0);
		json_t *j, *notes;
		int said = 0;
		size_t i;

		feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
		report_stacks = modes[m][0];
		j = leaks_json(d, &q);
		report_stacks = "every";
		assert_string_equal(json_string_value(json_object_get(j, "stacks")), modes[m][0]);
		notes = json_object_get(j, "notes");
		/* one note on stacks at most, the mode's own */
		for (i = 0; i < json_array_size(notes); i++) {
			const char *n = json_string_value(json_array_get(notes, i));

			if (!strncmp(n, "stacks ", 7)) {
				assert_non_null(modes[m][1]);
				assert_true(!strncmp(n, modes[m][1], strlen(modes[m][1])));
				said++;
			}
		}
		assert_int_equal(said, modes[m][1] != NULL);
		json_decref(j);
		pipe_done();
	}
}

#define GFP_MOV	0x8U	/* __GFP_MOVABLE in this synthetic kernel */

/* stacks_partial: as for a file stat recorded (slab allocations without stacks) */
static struct detect *verdict_detect_stacks(bool deferred, bool stacks_partial)
{
	struct detect_opts o = {
		.leaks = true, .ksyms = ks, .stack = fake_stack, .gfp_direct_reclaim = GFP_DR,
		.gfp_retained = GFP_MOV, .deferred_frees = deferred,
		.stacks_partial = stacks_partial,
	};
	struct detect *d = pipe_detect(&o);

	assert_non_null(d);
	return d;
}

static struct detect *verdict_detect(bool deferred)
{
	return verdict_detect_stacks(deferred, false);
}

static void loss_marker(struct detect *d, unsigned int fams)
{
	struct kms_meta m = { .type = KMS_EV_META_LOSS, .key = fams };

	pipe_meta(&m);
}

/* the leak row of a site in a leaks report */
static json_t *row_of(json_t *rows, const char *function)
{
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		const char *f = json_string_value(json_object_get(json_object_get(r, "site"),
								  "function"));

		if (f && !strcmp(f, function))
			return r;
	}
	fail_msg("no row for %s", function);
	return NULL;
}

static bool has_reason(json_t *row, const char *why)
{
	json_t *a = json_object_get(row, "reasons");

	for (size_t i = 0; i < json_array_size(a); i++)
		if (!strcmp(json_string_value(json_array_get(a, i)), why))
			return true;
	return false;
}

/* docs/detectors.md: when an outstanding object is a certain leak */
static void test_verdict_rule(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	json_t *j, *leaks, *r;
	int i, n;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	/* caller_a: 10 slab objects, none seen freed */
	for (i = 0; i < 10; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
	/* caller_b: 10, 6 freed by a traced free: it vouches for its 4 others */
	for (i = 0; i < 10; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x10000 + i * 64, SITE_B, 64));
	for (i = 0; i < 6; i++)
		feed(d, ev(KMS_EV_KFREE, SLAB1 + 0x10000 + i * 64, 0, 0));
	/* pipe_write: 10, 2 freed: most left without a traced free */
	for (i = 0; i < 10; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x20000 + i * 64, IP_PIPE_WRITE, 64));
	for (i = 0; i < 2; i++)
		feed(d, ev(KMS_EV_KFREE, SLAB1 + 0x20000 + i * 64, 0, 0));
	/* __x64_sys_foo: vmalloc has no untraced free path: certain */
	feed(d, ev(KMS_EV_VMALLOC, VMA1, IP_SYS_FOO, 8192));
	/* do_epoll_create: a page-cache-like movable page: retained, not a leak */
	{
		struct kms_event e = ev(KMS_EV_PAGE_ALLOC, 0x77, SITE_E, 4096);

		e.gfp = GFP_MOV | GFP_K;
		feed(d, e);
	}

	/* a page the page cache allocated without __GFP_MOVABLE (a block device's) */
	feed(d, ev(KMS_EV_PAGE_ALLOC, 0x99, 0xffffffff81006020ULL, 4096));
	/* a thread stack (kept in the per-CPU stack cache) and its vmap_area (purged lazily) */
	feed(d, ev(KMS_EV_VMALLOC, VMA1 + 0x40000, IP_COPY_PROCESS, 20480));
	{
		struct kms_meta m = { .type = KMS_EV_META_CACHE, .key = CACHE2, .a = 72, .b = 72,
				      .name = "vmap_area" };
		struct kms_event e = ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x30000, IP_COPY_PROCESS, 72);

		pipe_meta(&m);
		e.obj = CACHE2;
		feed(d, e);
	}

	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	assert_int_equal(json_array_size(leaks), 4);
	r = row_of(leaks, "caller_a");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "unconfirmed");
	assert_true(has_reason(r, "frees_untraced"));
	r = row_of(leaks, "caller_b");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	assert_int_equal(json_integer_value(json_object_get(r, "count")), 4);
	r = row_of(leaks, "pipe_write");
	assert_true(has_reason(r, "few_frees_traced"));
	assert_int_equal(json_integer_value(json_object_get(r, "count")), 8);
	r = row_of(leaks, "__x64_sys_foo");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	/* certain rows first (a --top cut keeps them), then by bytes: caller_b's 256 before 640 */
	assert_ptr_equal(json_array_get(leaks, 0), r);
	assert_ptr_equal(json_array_get(leaks, 1), row_of(leaks, "caller_b"));
	assert_int_equal(json_array_size(json_object_get(j, "retained")), 4);
	for (i = 0, n = 0; i < 4; i++) {
		json_t *row = json_array_get(json_object_get(j, "retained"), i);
		const char *f = json_string_value(json_object_get(json_object_get(row, "site"),
								  "function"));

		if (strcmp(f, "copy_process"))
			continue;
		assert_string_equal(json_string_value(json_object_get(row, "retained")),
				    "lazily_freed");
		n++;
	}
	assert_int_equal(n, 2);	/* the stack and its vmap_area */
	r = row_of(json_object_get(j, "retained"), "do_epoll_create");
	assert_string_equal(json_string_value(json_object_get(r, "retained")),
			    "movable_or_reclaimable_gfp");
	assert_true(json_is_null(json_object_get(r, "confidence")));
	r = row_of(json_object_get(j, "retained"), "__filemap_get_folio");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "page_cache");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"),
							    "certain_leak_objects")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"),
							    "retained_objects")), 4);
	json_decref(j);

	/*
	 * A loss of vmalloc records: the vmalloc object allocated before it is
	 * exposed, one allocated after it is not; slab rows are not touched.
	 */
	loss_marker(d, 1U << KMS_FAM_VMALLOC);
	feed(d, ev(KMS_EV_VMALLOC, VMA1 + 0x10000, IP_SYS_FOO, 8192));
	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	r = row_of(leaks, "__x64_sys_foo");
	assert_int_equal(json_integer_value(json_object_get(r, "count")), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "exposed_to_loss")), 1);
	assert_true(has_reason(r, "records_lost"));
	r = row_of(leaks, "caller_b");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	json_decref(j);
	pipe_done();

	/* where RCU and bulk slab frees are traced, a site needs no traced frees of its own */
	d = verdict_detect(true);
	for (i = 0; i < 3; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64));
	j = leaks_json(d, &q);
	r = row_of(json_object_get(j, "leaks"), "caller_a");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	assert_int_equal(json_array_size(json_object_get(r, "reasons")), 0);
	json_decref(j);
	pipe_done();
}

/*
 * docs/detectors.md: what the kernel frees with a process's mm (__mmdrop())
 * is retained, not a leak: the mm_struct, and what mm_init() made for it,
 * found by its stack (the percpu counters' site is a shared function), and
 * its lower page tables (exit_mmap()), by their site, whole: the kernel's
 * own page tables are judged.
 */
static void test_freed_with_mm(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	struct kms_meta m = { .type = KMS_EV_META_CACHE, .key = CACHE1, .a = 1568, .b = 1600,
			      .name = "mm_struct" };
	struct kms_event e;
	json_t *j, *ret;
	int i;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	pipe_meta(&m);
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1, IP_MM_ALLOC, 1568);
	e.obj = CACHE1;
	feed(d, e);
	e = ev(KMS_EV_PAGE_ALLOC, 0x55, IP_PGD_ALLOC, 8192);
	e.stack_id = STK_PGD;
	feed(d, e);
	e = ev(KMS_EV_PERCPU_ALLOC, DMAP + 0x1000, IP_PCPU_INIT, 64);
	e.stack_id = STK_MM_PCPU;
	feed(d, e);
	e = ev(KMS_EV_PAGE_ALLOC, 0x57, IP_PTE, 4096);
	e.stack_id = STK_PTE;
	feed(d, e);
	/* the same shared function called from elsewhere is judged as usual */
	e = ev(KMS_EV_PERCPU_ALLOC, DMAP + 0x2000, IP_PCPU_INIT, 64);
	feed(d, e);
	e = ev(KMS_EV_PAGE_ALLOC, 0x58, IP_PTE_KERNEL, 4096);
	e.stack_id = STK_PTE_KERNEL;
	feed(d, e);

	j = leaks_json(d, &q);
	ret = json_object_get(j, "retained");
	assert_int_equal(json_array_size(ret), 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(ret, i),
								       "retained")),
				    "freed_with_mm");
	assert_int_equal(json_array_size(json_object_get(j, "leaks")), 2);
	row_of(json_object_get(j, "leaks"), "pte_alloc_one_kernel");
	assert_string_equal(json_string_value(json_object_get(
				    row_of(json_object_get(j, "leaks"), "__percpu_counter_init_many"),
				    "confidence")),
			    "certain");
	json_decref(j);
	pipe_done();
}

/*
 * docs/detectors.md: the kernel's own bookkeeping is not a leak of its caller.
 * vmalloc's vm_struct (a kmalloc under vmalloc internals) is nested in its
 * area, a slab's obj_exts vector in the slab (made with the slab or at its
 * first accounted object, whoever allocated that), a cache's sheaf in the
 * slab whoever asked for it; a kmalloc kvmalloc() chose, and ioremap()'s
 * vm_struct (an area, not a vmalloc), are their caller's own; an inode's LSM
 * blob and what a filesystem reads in with an inode are retained with the
 * inode, what fork makes for a new task, and unshare() for the calling one,
 * with the task.
 */
static void test_kernel_bookkeeping(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	struct kms_event e;
	json_t *j, *r;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1, IP_COPY_PROCESS, 72, STK_VM_STRUCT);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x100, SITE_A, 4096, STK_KVMALLOC);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x300, IP_OBJ_EXTS, 64, STK_OBJ_EXTS);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x380, IP_OBJ_EXTS, 64, STK_OBJ_EXTS_LAZY);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x3c0, IP_SHEAF, 512, STK_SHEAF);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x400, SITE_B, 32, STK_FORK_BLOB);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x500, IP_PIPE_WRITE, 96, STK_IOREMAP);
	/* a function probe's site is inside vmalloc (6.1's fexit): the shown site decides */
	feed_stacked(d, KMS_EV_VMALLOC, VMA1, IP_VM_RANGE, 16384, STK_THREAD_STACK);
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x200, IP_SEC_INODE, 32);
	e.obj = CACHE2;
	e.stack_id = STK_INODE_BLOB;
	feed(d, e);
	feed_stacked(d, KMS_EV_KMALLOC, SLAB1 + 0x700, IP_FAST_SYMLINK, 16, STK_SYMLINK);
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x600, IP_PREPARE_CREDS, 192);
	e.obj = CACHE2;
	e.stack_id = STK_UNSHARE_CRED;
	feed(d, e);

	assert_nested(d, KMS_FAM_KMALLOC, IP_COPY_PROCESS, "vmalloc");
	assert_nested(d, KMS_FAM_KMALLOC, IP_OBJ_EXTS, "slab");
	assert_nested(d, KMS_FAM_KMALLOC, IP_SHEAF, "slab");
	assert_nested(d, KMS_FAM_KMALLOC, SITE_A, NULL);
	assert_nested(d, KMS_FAM_KMALLOC, IP_PIPE_WRITE, NULL);

	j = leaks_json(d, &q);
	assert_int_equal(json_array_size(json_object_get(j, "nested")), 4);
	r = row_of(json_object_get(j, "leaks"), "caller_a");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "unconfirmed");
	row_of(json_object_get(j, "leaks"), "pipe_write");
	r = row_of(json_object_get(j, "retained"), "security_inode_alloc");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "reclaimable_cache");
	r = row_of(json_object_get(j, "retained"), "caller_b");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "freed_with_task");
	r = row_of(json_object_get(j, "retained"), "ext4_cache_fast_symlink");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "reclaimable_cache");
	r = row_of(json_object_get(j, "retained"), "prepare_creds");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "freed_with_task");
	r = row_of(json_object_get(j, "retained"), "copy_process");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "lazily_freed");
	assert_int_equal(json_array_size(json_object_get(j, "leaks")), 2);
	json_decref(j);
	pipe_done();
}

/*
 * docs/detectors.md: a dedicated slab cache whose objects were seen leaving
 * without a traced free vouches for none of its sites; kmalloc's shared
 * caches keep the per-site rule.
 */
static struct kms_event cache_ev(int type, __u64 ptr, __u64 site, __u64 cache)
{
	struct kms_event e = ev(type, ptr, site, 256);

	e.obj = cache;
	return e;
}

/* 4 objects of CACHE1 at site1 and of CACHE2 at site2, 2 of each freed by a traced free */
static void half_freed(struct detect *d, __u64 site1, __u64 site2)
{
	for (int i = 0; i < 4; i++) {
		feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + i * 256, site1, CACHE1));
		feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x10000 + i * 256, site2, CACHE2));
	}
	for (int i = 0; i < 2; i++) {
		feed(d, cache_ev(KMS_EV_CACHE_FREE, SLAB1 + i * 256, 0, CACHE1));
		feed(d, cache_ev(KMS_EV_CACHE_FREE, SLAB1 + 0x10000 + i * 256, 0, CACHE2));
	}
}

static void test_cache_untraced(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	struct kms_meta m1 = { .type = KMS_EV_META_CACHE, .key = CACHE1, .a = 256, .b = 256,
			       .name = "maple_node" };
	struct kms_meta m2 = { .type = KMS_EV_META_CACHE, .key = CACHE2, .a = 256, .b = 256,
			       .name = "other_node" };
	json_t *j, *leaks, *r;
	int i, n = 0;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	pipe_meta(&m1);
	pipe_meta(&m2);
	/* caller_a, in both caches: 4 objects each, 2 freed by a traced free */
	half_freed(d, SITE_A, SITE_A);
	/* caller_b, in maple_node only: an address handed out again while live */
	feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x20000, SITE_B, CACHE1));
	feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x20000, SITE_B, CACHE1));
	/* kmalloc: __x64_sys_foo vouches (4 objects, 2 traced frees) while pipe_write shows an
	 * address handed out again: the shared caches are not judged whole */
	for (i = 0; i < 4; i++)
		feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x30000 + i * 64, IP_SYS_FOO, 64));
	for (i = 0; i < 2; i++)
		feed(d, ev(KMS_EV_KFREE, SLAB1 + 0x30000 + i * 64, 0, 0));
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x40000, IP_PIPE_WRITE, 64));
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x40000, IP_PIPE_WRITE, 64));

	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	for (i = 0; i < (int)json_array_size(leaks); i++) {
		const char *cache;

		r = json_array_get(leaks, i);
		cache = json_string_value(json_object_get(r, "cache"));
		if (!cache || strcmp(json_string_value(json_object_get(json_object_get(r, "site"),
									"function")), "caller_a"))
			continue;
		assert_int_equal(json_integer_value(json_object_get(r, "count")), 2);
		n++;
		if (!strcmp(cache, "maple_node")) {
			assert_string_equal(json_string_value(json_object_get(r, "confidence")),
					    "unconfirmed");
			assert_true(has_reason(r, "cache_frees_untraced"));
		} else {
			assert_string_equal(cache, "other_node");
			assert_string_equal(json_string_value(json_object_get(r, "confidence")),
					    "certain");
		}
	}
	assert_int_equal(n, 2);
	r = row_of(leaks, "__x64_sys_foo");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	json_decref(j);
	pipe_done();
}

/*
 * docs/detectors.md: caches known to be freed in bulk or through RCU too are
 * never certain where those paths are not traced, even when no address came
 * back; a closed TCP socket and its bind bucket are retained (timers free them).
 */
static void test_cache_bulk(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	struct kms_meta m1 = { .type = KMS_EV_META_CACHE, .key = CACHE1, .a = 232, .b = 256,
			       .name = "skbuff_head_cache" };
	struct kms_meta m2 = { .type = KMS_EV_META_CACHE, .key = CACHE2, .a = 232, .b = 256,
			       .name = "other_head" };
	json_t *j, *leaks, *r;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	pipe_meta(&m1);
	pipe_meta(&m2);
	/* caller_a in the first cache, caller_b in the other: 4 objects each, 2 freed */
	half_freed(d, SITE_A, SITE_B);
	feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x20000, IP_BIND2, CACHE2));
	/* a bind bucket allocated inline in the function that binds a connect()'s port */
	feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x28000, IP_HASH_CONNECT, CACHE2));
	{
		struct kms_meta m3 = { .type = KMS_EV_META_CACHE, .key = CACHE1 + 0x100,
				       .a = 2400, .b = 2432, .name = "TCP" };

		pipe_meta(&m3);
		feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x30000, SITE_E, CACHE1 + 0x100));
	}

	/* a network namespace's struct net waits for the next namespace's teardown */
	feed(d, cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x40000, IP_COPY_NET_NS, CACHE2));
	/* what else that function allocates is judged as usual */
	feed(d, ev(KMS_EV_KMALLOC, SLAB1 + 0x50000, IP_COPY_NET_NS, 64));

	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	r = row_of(json_object_get(j, "retained"), "copy_net_ns");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "lazily_freed");
	assert_string_equal(json_string_value(json_object_get(r, "family")), "kmem_cache");
	r = row_of(leaks, "copy_net_ns");
	assert_string_equal(json_string_value(json_object_get(r, "family")), "kmalloc");
	r = row_of(leaks, "caller_a");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "unconfirmed");
	assert_true(has_reason(r, "cache_frees_in_bulk"));
	assert_false(has_reason(r, "cache_frees_untraced"));
	r = row_of(leaks, "caller_b");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	r = row_of(json_object_get(j, "retained"), "inet_bind2_bucket_create");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "lazily_freed");
	r = row_of(json_object_get(j, "retained"), "__inet_hash_connect");
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "lazily_freed");
	r = row_of(json_object_get(j, "retained"), "do_epoll_create");	/* the TCP socket */
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "lazily_freed");
	json_decref(j);
	pipe_done();
}

/*
 * docs/detectors.md: a process's VMA tree nodes go with its mm (bulk and RCU
 * frees), another maple tree's are judged as the cache's other objects are
 */
static void test_vma_tree_nodes(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(false);
	struct kms_meta m = { .type = KMS_EV_META_CACHE, .key = CACHE1, .a = 256, .b = 256,
			      .name = "maple_node" };
	struct kms_event e;
	json_t *j, *r;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	pipe_meta(&m);
	for (int i = 0; i < 3; i++) {
		e = cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + i * 256, IP_MAS_PREALLOC, CACHE1);
		e.stack_id = STK_VMA_NODE;
		feed(d, e);
	}
	e = cache_ev(KMS_EV_CACHE_ALLOC, SLAB1 + 0x10000, IP_MAS_PREALLOC, CACHE1);
	e.stack_id = STK_OFFSET_NODE;
	feed(d, e);

	j = leaks_json(d, &q);
	assert_int_equal(json_array_size(json_object_get(j, "retained")), 1);
	r = json_array_get(json_object_get(j, "retained"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "retained")), "freed_with_mm");
	assert_int_equal(json_integer_value(json_object_get(r, "count")), 3);
	assert_int_equal(json_array_size(json_object_get(j, "leaks")), 1);
	r = json_array_get(json_object_get(j, "leaks"), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "count")), 1);
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "unconfirmed");
	assert_true(has_reason(r, "cache_frees_in_bulk"));
	json_decref(j);
	pipe_done();
}

/* a row without a stack cannot be classified by its callers: never certain */
static void test_stack_failed(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect(true);
	json_t *j, *leaks, *r;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	/* a page whose capture failed (-EEXIST: a collision in the stack map), one with a stack */
	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x10000, 0, 4096, -EEXIST);
	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x20000, 0, 4096, STK_PLAIN_PAGE);
	/* no stack asked for (-1): grouped by site, judged as before */
	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));

	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	assert_int_equal(json_array_size(leaks), 3);
	for (size_t i = 0; i < json_array_size(leaks); i++) {
		const char *fn;

		r = json_array_get(leaks, i);
		fn = json_string_value(json_object_get(json_object_get(r, "site"), "function"));
		if (!fn) {
			assert_string_equal(json_string_value(json_object_get(r, "confidence")),
					    "unconfirmed");
			assert_true(has_reason(r, "stack_unknown"));
		} else {
			assert_string_equal(json_string_value(json_object_get(r, "confidence")),
					    "certain");
		}
	}
	assert_non_null(row_of(leaks, "pipe_write"));
	assert_non_null(row_of(leaks, "caller_a"));
	json_decref(j);
	pipe_done();
}

/* a trace recorded by stat: slab allocations have no stack by design */
static void test_stacks_partial(void **state)
{
	struct kms_quality q = { .events = 100 };
	struct detect *d = verdict_detect_stacks(true, true);
	json_t *j, *leaks, *r;

	for (int f = 0; f < KMS_FAM_MAX; f++)
		q.traced[f] = true;
	feed(d, ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed_stacked(d, KMS_EV_PAGE_ALLOC, 0x20000, 0, 4096, STK_PLAIN_PAGE);

	j = leaks_json(d, &q);
	leaks = json_object_get(j, "leaks");
	r = row_of(leaks, "caller_a");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "unconfirmed");
	assert_true(has_reason(r, "stack_unknown"));
	r = row_of(leaks, "pipe_write");
	assert_string_equal(json_string_value(json_object_get(r, "confidence")), "certain");
	json_decref(j);
	pipe_done();
}

static void test_report_merge_depth(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct detect_report_opts o = { .ksyms = ks, .stack_depth = 1, .now = now };
	struct agg *a = test_pipe.agg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct kms_event e;

	for (int i = 0; i < KMS_FAM_MAX; i++)
		o.baseline_pc[i] = -1;
	for (int i = 0; i < 3; i++) {
		e = ev(KMS_EV_KMALLOC, SLAB1 + i * 64, SITE_A, 64);
		e.stack_id = i ? STK_KMALLOC_A : STK_KMALLOC_A2;
		feed(d, e);
	}
	o.now = now;
	assert_int_equal(detect_report__leaks_text(d, a, &o, f), 0);
	fclose(f);
	print_message("%s", getenv("KMS_TEST_VERBOSE") ? buf : "");
	/* at depth 1 both kernel stacks show as caller_a: merged into one row of 3 */
	assert_non_null(strstr(buf, "objects 3, bytes 192"));
	assert_non_null(strstr(buf, "caller_a+0x10"));
	assert_null(strstr(buf, "#2 "));
	assert_non_null(strstr(buf, "Data quality"));
	free(buf);
	pipe_done();
}

/* ---- deferred frees: one stage, then both consumers, as the session runs them ---- */

/* the session's order: the deferred-free stage, then the store and both consumers */
static void feed3(struct kms_event e)
{
	pipe_event(&e);
}

static void test_rcu_handoff(void **state)
{
	struct detect *d = new_detect(true, false, 0);
	struct agg *a = test_pipe.agg;
	const struct agg_counts *km, *vm, *kc;
	const struct detect_group *g;
	struct kms_event e;

	assert_non_null(a);
	/* kfree_rcu(): the handoff frees, the RCU worker's kfree_bulk() later is the same free */
	feed3(ev(KMS_EV_KMALLOC, SLAB1, SITE_A, 64));
	feed3(ev(KMS_EV_RCU_FREE, SLAB1, SITE_B, 0));
	feed3(ev(KMS_EV_BULK_FREE, SLAB1, 0, 0));
	/* kvfree_rcu() of a vmalloc object, really freed by vfree() */
	feed3(ev(KMS_EV_VMALLOC, VMA1, SITE_A, 8192));
	feed3(ev(KMS_EV_RCU_FREE, VMA1, SITE_B, 0));
	feed3(ev(KMS_EV_VFREE, VMA1, 0, 0));
	/* kmem_cache_free_bulk() with no RCU in front: a plain deferred free */
	e = ev(KMS_EV_CACHE_ALLOC, SLAB1 + 128, SITE_A, 0);
	e.obj = CACHE1;
	feed3(e);
	e = ev(KMS_EV_CACHE_BULK_FREE, SLAB1 + 128, 0, 0);
	e.obj = CACHE1;
	feed3(e);

	km = agg__family(a, KMS_FAM_KMALLOC);
	vm = agg__family(a, KMS_FAM_VMALLOC);
	kc = agg__family(a, KMS_FAM_CACHE);
	assert_int_equal(km->frees, 1);
	assert_int_equal(km->deferred_frees, 1);
	assert_int_equal(vm->frees, 1);
	assert_int_equal(vm->deferred_frees, 1);
	assert_int_equal(kc->frees, 1);
	assert_int_equal(kc->deferred_frees, 1);
	assert_int_equal(agg__stats(a)->unmatched_frees, 0);
	assert_int_equal(agg__stats(a)->rcu_completed, 2);
	assert_int_equal(deferred__stats(test_pipe.defer)->completed, 2);
	assert_int_equal(deferred__stats(test_pipe.defer)->pending, 0);
	assert_int_equal(detect__nr_badfree(d), 0);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_KMALLOC], 0);
	assert_int_equal(detect__free_stats(d)->unmatched[KMS_FAM_VMALLOC], 0);
	g = find_group(d, KMS_FAM_KMALLOC, SITE_A);
	assert_non_null(g);
	assert_int_equal(g->frees, 1);
	assert_int_equal(g->outstanding, 0);

	/* the real free was never seen, the address comes back: no lost free, no leak */
	feed3(ev(KMS_EV_KMALLOC, SLAB1 + 64, SITE_A, 64));
	feed3(ev(KMS_EV_RCU_FREE, SLAB1 + 64, SITE_B, 0));
	feed3(ev(KMS_EV_KMALLOC, SLAB1 + 64, SITE_A, 64));
	assert_int_equal(deferred__stats(test_pipe.defer)->reused, 1);
	assert_int_equal(agg__stats(a)->realloc_without_free, 0);
	feed3(ev(KMS_EV_KFREE, SLAB1 + 64, SITE_B, 0));
	km = agg__family(a, KMS_FAM_KMALLOC);
	assert_int_equal(km->frees, 3);
	assert_int_equal(km->deferred_frees, 2);
	assert_int_equal(km->outstanding, 0);

	/* kfree_rcu() twice on one object is still a double free */
	feed3(ev(KMS_EV_KMALLOC, SLAB1 + 192, SITE_A, 64));
	feed3(ev(KMS_EV_RCU_FREE, SLAB1 + 192, SITE_B, 0));
	feed3(ev(KMS_EV_RCU_FREE, SLAB1 + 192, SITE_E, 0));
	assert_int_equal(badfree_count(d, BF_DOUBLE_FREE), 1);

	pipe_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_leaks_outstanding),
		cmocka_unit_test(test_before_trace),
		cmocka_unit_test(test_untraced_frees),
		cmocka_unit_test(test_nested_pages),
		cmocka_unit_test(test_nested_vmalloc),
		cmocka_unit_test(test_page_split_free),
		cmocka_unit_test(test_page_split_free_64k),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_double_free),
		cmocka_unit_test(test_badfree_suspected),
		cmocka_unit_test(test_freed_set_realloc),
		cmocka_unit_test(test_freed_set_bounded),
		cmocka_unit_test(test_freed_set_swept),
		cmocka_unit_test(test_wrong_api),
		cmocka_unit_test(test_wrong_cache),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_misuse_rt),
		cmocka_unit_test(test_report_quality),
		cmocka_unit_test(test_report_stacks),
		cmocka_unit_test(test_verdict_rule),
		cmocka_unit_test(test_freed_with_mm),
		cmocka_unit_test(test_kernel_bookkeeping),
		cmocka_unit_test(test_cache_bulk),
		cmocka_unit_test(test_vma_tree_nodes),
		cmocka_unit_test(test_stack_failed),
		cmocka_unit_test(test_stacks_partial),
		cmocka_unit_test(test_cache_untraced),
		cmocka_unit_test(test_report_merge_depth),
		cmocka_unit_test(test_rcu_handoff),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
