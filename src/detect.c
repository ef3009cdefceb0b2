/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The detectors over one ordered record stream: leaks and bad frees here,
 * atomic-context misuse in detect_misuse.c. Live objects are the pipeline's
 * store (live.h), each holding the index of its group; the groups, sites
 * and findings the reports read are keyed vectors (kvec.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "detect_int.h"
#include "frames.h"
#include "ksyms.h"

#define DMAP_VOTES	2	/* agreeing large kmallocs before the direct map base is used */
#define DMAP_ALIGN	(1ULL << 21)

static const char *const badfree_names[BF_NR] = {
	[BF_WRONG_API] = "wrong_api",
	[BF_WRONG_CACHE] = "wrong_cache",
	[BF_DOUBLE_FREE] = "double_free",
};

static const char *const retained_names[] = {
	[RET_NONE] = NULL,
	[RET_GFP] = "movable_or_reclaimable_gfp",
	[RET_CACHE] = "reclaimable_cache",
	[RET_PAGE_CACHE] = "page_cache",
	[RET_LAZY] = "lazily_freed",
	[RET_MM] = "freed_with_mm",
	[RET_TASK] = "freed_with_task",
};

/*
 * Caches whose objects outlive their use by design. vmap_area: vfree() ends
 * the mapping (its traced free), but the area's descriptor waits on a purge
 * list until enough lazily freed address space piles up (lazy_max_pages(),
 * tens of MB), so a run that vmallocs ends with descriptors of freed areas.
 * TCP's sockets: a closed connection's socket goes when the protocol's timers
 * say (FIN_WAIT2, LAST_ACK retransmits, then TIME_WAIT for 60 s); on the 6.18
 * host a closed loopback connection's socket was a certain leak in 1 run of 3.
 */
static const char *const lazily_freed_caches[] = {
	"vmap_area", "TCP", "TCPv6", "tw_sock_TCP", "tw_sock_TCPv6", "request_sock_TCP",
	"request_sock_TCPv6", NULL,
};

static const struct {
	const char *name;
	const char *text;
} doubts[DOUBT_NR_BITS] = {
	{ "records_lost", "its free could have gone unseen after it was allocated: records "
			  "lost, handler runs skipped or softirqs no handler saw (the verdict "
			  "counts them)" },
	{ "frees_untraced", "no free of this site's objects was traced, and this kernel's RCU "
			    "and bulk slab frees are not traced" },
	{ "few_frees_traced", "fewer of this site's objects were seen freed than are still "
			      "outstanding, and this kernel's RCU and bulk slab frees are not "
			      "traced" },
	{ "trace_cut_short", "the trace file was cut short: its frees after the last whole "
			     "block are not in it" },
	{ "cache_frees_untraced", "an object of the same slab cache went away without a "
				  "traced free (its address was allocated again), and this "
				  "kernel's RCU and bulk slab frees are not traced" },
	{ "cache_frees_in_bulk", "the kernel also frees this slab cache's objects in bulk or "
				 "after RCU (the maple tree's nodes, networking's packet heads), "
				 "which this kernel does not trace" },
	{ "stack_unknown", "its stack is not known (a capture failed: quality.stack_failures; "
			   "or the trace file holds none for it), so whether it is another "
			   "allocation's backing store or freed with a task, an mm or an inode "
			   "could not be told" },
};

/*
 * Caches whose objects leave by a traced kmem_cache_free() on some paths and
 * in bulk or through RCU on others: the maple tree frees nodes with
 * kfree_rcu(), networking returns packet heads to the slab in bulk from its
 * per-CPU cache. A site's own traced frees do not vouch for them where those
 * paths are not traced (measured on the 6.18 host: one certain leak at
 * mas_push_data in each of 3 runs of gzip, one skb head at udp_sendmsg in
 * each of 3 runs of getent hosts localhost).
 */
static const char *const bulk_freed_caches[] = {
	"maple_node", "skbuff_head_cache", "skbuff_fclone_cache", "skbuff_small_head", NULL,
};

const char *detect_retained_name(int r)
{
	return r > RET_NONE && r < RET_NR ? retained_names[r] : NULL;
}

const char *detect_doubt_name(int bit)
{
	return bit >= 0 && bit < DOUBT_NR_BITS ? doubts[bit].name : NULL;
}

const char *detect_doubt_text(int bit)
{
	return bit >= 0 && bit < DOUBT_NR_BITS ? doubts[bit].text : NULL;
}

const char *detect_badfree_name(int kind)
{
	return kind >= 0 && kind < BF_NR ? badfree_names[kind] : NULL;
}

/*
 * ---- the recently-freed set ----
 * Live objects are the pipeline's store (live.h); each holds the index of
 * its group here. Frees are remembered, one table per object class, for the
 * double frees that come after them. An address allocated again keeps its
 * entry: only an unmatched free consults the set, and while the address is
 * live in the store its free matches; once freed again, the entry is that
 * free's. So the allocation, the hot path, never touches the set.
 *
 * The set holds the last freed_max frees. An entry's age is its distance in
 * frees from the newest (seq): one freed_max frees old or more is forgotten
 * as it is read (freed_valid()), and the tables are swept of such entries
 * once they hold 2 * freed_max (freed_sweep()). Evicting the oldest free at
 * every free instead read a slot of a table of freed_max entries written
 * freed_max frees before: a cache miss per free, on the collector's hot path.
 */
/* a free remembered for double frees: bounded, so it can afford the detail */
struct freed_slot {
	__u64 ptr;
	__u64 site;		/* allocation site */
	__u64 obj;		/* allocation's cache or device */
	__u64 free_site;
	__u32 pid;		/* allocating process */
	__u32 seq;		/* d->seq when it was freed: its age */
	__s32 stack_id;
	__u8 type;
	__u8 pad[2];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct freed_slot);

/* what a bad-free finding says of the allocation, from either table */
struct alloc_view {
	int type;
	int stack_id;
	__u64 site;
	__u64 obj;
	__u32 pid;
};

static struct freed_slot *freed_find(const struct htab *t, __u64 ptr)
{
	return htab__lookup(t, kms_hash64(ptr), &ptr, sizeof(ptr), sizeof(struct freed_slot));
}

#define FREED_SWEEP_MASK	((1ULL << 31) - 1)

/* one of the last freed_max frees (an entry keeps seq's low 32 bits: see freed_remember()) */
static bool freed_valid(const struct detect *d, const struct freed_slot *f)
{
	return (__u32)d->seq - f->seq < d->o.freed_max;
}

/* drop every forgotten entry: the sets hold at most freed_max after it */
static void freed_sweep(struct detect *d)
{
	for (int c = 0; c < OC_NR; c++) {
		struct htab *t = &d->freed[c];

		for (__u32 i = 0; i < t->cap && t->count;) {
			struct freed_slot *f = htab__at(t, i);

			/* a deletion shifts the next entry into this slot: look again */
			if (f->meta && !freed_valid(d, f))
				htab__delete(t, f, sizeof(*f));
			else
				i++;
		}
	}
	d->freed_nr = 0;
	for (int c = 0; c < OC_NR; c++)
		d->freed_nr += d->freed[c].count;
}

/* ---- the detector ---- */

struct detect *detect__new(const struct detect_opts *o)
{
	struct detect *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->o = *o;
	d->ms.preempt_rt = o->preempt_rt;
	if (!d->o.freed_max)
		d->o.freed_max = DETECT_FREED_DEFAULT;
	/* an entry's 32-bit age must not wrap between sweeps (freed_remember()) */
	if (d->o.freed_max > DETECT_FREED_MAX)
		d->o.freed_max = DETECT_FREED_MAX;
	if (!d->o.page_shift)
		d->o.page_shift = 12;
	if (d->o.bad_frees)
		d->o.leaks = true;	/* bad frees are judged against the live set */
	for (int c = 0; c < OC_NR; c++)
		if (htab__init(&d->freed[c], sizeof(struct freed_slot), 64, HTAB_FAST, htab__hash_u64))
			goto fail;
	/* keys are the leading __u64/int fields of each item: see the structs in detect.h */
	kvec__init(&d->groups, sizeof(struct detect_group), offsetof(struct detect_group, nested));
	kvec__init(&d->sites, sizeof(struct detect_site), offsetof(struct detect_site, allocs));
	kvec__init(&d->untraced_caches, sizeof(__u64), sizeof(__u64));
	kvec__init(&d->misuse, sizeof(struct detect_misuse), offsetof(struct detect_misuse, pc));
	kvec__init(&d->badfree, sizeof(struct detect_badfree), offsetof(struct detect_badfree, ptr));
	kvec__init(&d->comms, sizeof(struct name_item), sizeof(__u64));
	kvec__init(&d->objnames, sizeof(struct name_item), sizeof(__u64));
	return d;
fail:
	detect__free(d);
	return NULL;
}

void detect__free(struct detect *d)
{
	if (!d)
		return;
	for (int c = 0; c < OC_NR; c++) {
		htab__fini(&d->freed[c]);
	}
	kvec__fini(&d->groups);
	kvec__fini(&d->sites);
	kvec__fini(&d->untraced_caches);
	kvec__fini(&d->misuse);
	kvec__fini(&d->badfree);
	kvec__fini(&d->comms);
	kvec__fini(&d->objnames);
	free(d);
}

void detect__set_env(struct detect *d, const struct ksyms *ksyms, const int *baseline_pc,
		     __u32 gfp_direct_reclaim)
{
	d->o.ksyms = ksyms;
	if (baseline_pc)
		memcpy(d->o.baseline_pc, baseline_pc, sizeof(d->o.baseline_pc));
	d->o.gfp_direct_reclaim = gfp_direct_reclaim;
}

int detect__frames(const struct detect *d, int stack_id, __u64 site, __u64 *ips, int max)
{
	__u64 raw[KMS_MAX_STACK];
	unsigned long u[KMS_MAX_STACK];
	int n = -1, i, start;

	if (max <= 0)
		return 0;
	if (stack_id >= 0 && d->o.stack)
		n = d->o.stack(d->o.stack_ctx, stack_id, raw, KMS_MAX_STACK);
	if (n <= 0) {
		if (!site)
			return 0;
		ips[0] = site;
		return 1;
	}
	for (i = 0; i < n; i++)
		u[i] = raw[i];
	/* the allocator's own frames go: the first frame shown is the caller */
	start = d->o.ksyms ? frames__pick_site(d->o.ksyms, u, n) : -1;
	if (start < 0)
		start = 0;
	for (i = 0; i < max && start + i < n; i++)
		ips[i] = raw[start + i];
	return i;
}

/* ---- bad frees ---- */

static void badfree_add(struct detect *d, int kind, const struct alloc_view *a,
			const struct kms_event *e, __u64 first_free_site)
{
	struct detect_badfree key;
	struct detect_badfree *b;
	bool created;
	long i;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.alloc_type = a->type;
	key.free_type = e->type;
	key.alloc_stack_id = a->stack_id;
	key.alloc_site = a->site;
	key.alloc_obj = a->obj;
	key.free_site = e->site;
	key.free_obj = e->type == KMS_EV_CACHE_FREE ? e->obj : 0;
	key.first_free_site = first_free_site;
	i = kvec__get(&d->badfree, &key, &created);
	if (i < 0)
		return;
	b = kvec__at(&d->badfree, i);
	if (created) {
		b->ptr = e->ptr;
		b->alloc_pid = a->pid;
		b->free_pid = e->pid;
	}
	b->count++;
}

void detect__prefetch_free(const struct detect *d, int cls, __u64 ptr)
{
	if (d->o.bad_frees && cls >= 0 && cls < OC_NR)
		htab__prefetch(&d->freed[cls], kms_hash64(ptr));
}

static void freed_remember(struct detect *d, int cls, __u64 ptr, const struct alloc_view *a,
			   const struct kms_event *e)
{
	struct freed_slot *r;
	bool created;

	r = htab__get(&d->freed[cls], kms_hash64(ptr), &ptr, sizeof(ptr), sizeof(*r), &created);
	if (!r)
		return;
	r->site = a->site;
	r->obj = a->obj;
	r->pid = a->pid;
	r->stack_id = a->stack_id;
	r->type = a->type;
	r->free_site = e->site;
	r->seq = ++d->seq;
	/* bounded: the free freed_max before this one is forgotten now */
	if (d->seq > d->o.freed_max)
		d->fs.freed_evicted++;
	/*
	 * Sweep once the tables hold twice what is remembered, and every 2^31
	 * frees, so that no entry left in a table lives to see its 32-bit age wrap.
	 */
	if ((created && ++d->freed_nr >= 2 * (__u64)d->o.freed_max) || !(d->seq & FREED_SWEEP_MASK))
		freed_sweep(d);
}

/* ---- leaks ---- */

static long site_get(struct detect *d, int fam, __u64 site, __u64 obj)
{
	struct detect_site key;
	bool created;

	memset(&key, 0, sizeof(key));
	key.family = fam;
	key.site = site;
	key.obj = obj;
	return kvec__get(&d->sites, &key, &created);
}

/*
 * Functions that fill the page cache. Most page-cache pages are movable and
 * caught by their GFP; a block device's (buffer heads, metadata) are not.
 */
static const char *const page_cache_funcs[] = {
	"__filemap_get_folio", "filemap_alloc_folio", "__page_cache_alloc",
	"page_cache_ra_", "grow_dev_folio", "grow_dev_page", NULL,
};

/*
 * Where a vmalloc'ed thread stack is allocated (alloc_thread_stack_node(),
 * inlined into its callers on some builds). An exiting task's stack goes to
 * a per-CPU cache of two (cached_stacks) rather than to vfree(): retained by
 * design, as a live task's stack is in use; neither is a leak.
 */
static const char *const thread_stack_funcs[] = {
	"alloc_thread_stack_node", "dup_task_struct", "copy_process", NULL,
};

/*
 * The bind buckets a TIME_WAIT socket keeps its port in stay as long as it
 * (60 s) and go with its timer: on the 6.18 host a loopback connection made
 * and closed by the traced command left its inet_bind2_bucket as a certain
 * leak in each of 3 runs. By call site: their caches are often merged with
 * others under another name. The functions that create them may be inlined
 * into the two that bind a port (6.18: a connect()'s bucket is allocated at
 * __inet_hash_connect+0x2ae), which allocate nothing else.
 */
static const char *const time_wait_funcs[] = {
	"inet_bind_bucket_create", "inet_bind2_bucket_create", "__inet_hash_connect",
	"inet_csk_get_port", NULL,
};

/*
 * A network namespace's struct net (net_alloc(), inlined into copy_net_ns() on
 * some builds): its teardown, cleanup_net() on a workqueue, queues it and frees
 * it only in the next teardown, after that one's rcu_barrier()
 * (net_complete_free(), 6.13 and stable kernels), so the last namespaces to go
 * stay until another one does. On the 6.18 host 20 runs of `unshare -n true`
 * left 2 of them as certain leaks, with a 1 s and with a 6 s settle period. By
 * call site: the cache may be merged with others under another name.
 */
static const char *const netns_funcs[] = { "net_alloc", "copy_net_ns", NULL };

/* the site's function starts with one of funcs (NULL-terminated) */
static bool site_in(const struct detect *d, __u64 site, const char *const *funcs)
{
	const struct ksym *s = d->o.ksyms && site ? ksyms__resolve(d->o.ksyms, site) : NULL;

	for (; s && *funcs; funcs++)
		if (!strncmp(s->name, *funcs, strlen(*funcs)))
			return true;
	return false;
}

/*
 * What __mmdrop() frees: a process's mm_struct and what mm_init() allocated
 * for it (its top page table, its percpu counters and ids). That happens when
 * the last reference to the mm goes, not when the process exits: a CPU that
 * last ran it holds one (lazy TLB) until it runs another user task, and on the
 * 6.18 host some mms went away with no traced free at all (in a 25 s
 * system-wide recording, 1 of 604 mm_structs, and its pgd page, was allocated
 * again at the same address with nothing lost or missed in between), so the
 * settle period's visit to every CPU does not always see them freed.
 */
static const char *const mm_funcs[] = { "mm_init", "pgd_alloc", "_pgd_alloc", NULL };
static const char *const mm_caches[] = { "mm_struct", NULL };

/*
 * A process's lower page tables, by call site (whole names: the kernel's own
 * page tables, pte_alloc_one_kernel() and the like, are not a process's):
 * exit_mmap() frees them when the mm's last user goes, which is not always
 * the process's exit, through the page that tlb_remove_table() fills with
 * them and frees with them after an RCU grace period. On the 6.18 host, with
 * QEMU guests busy beside it, a python3 command's 15 page tables were still
 * there at the end of a 1 s settle period (1 run in 12), and one such page
 * of `timeout 1 yes` (1 run in 7).
 */
static const char *const pgtable_funcs[] = {
	"pte_alloc_one", "__pte_alloc", "__pmd_alloc", "__pud_alloc", "__p4d_alloc",
	"tlb_remove_table", NULL,
};

/*
 * The nodes of a process's VMA tree (the maple tree of its mm), by the mm
 * code among their callers: exit_mmap() destroys the tree with the mm, in
 * bulk (__mt_destroy(), kmem_cache_free_bulk()), and a node the tree no
 * longer needs goes after RCU; neither is traced where function probes are
 * not. On the 6.18 host each short command left tens of them as unconfirmed
 * leak candidates (`cat` of four /proc files: 101 nodes in 42 stacks, at
 * __mmap_region, __split_vma, do_vmi_align_munmap, do_brk_flags, vma_link...).
 * Prefixes: the names move between kernels (6.1's mmap_region and
 * do_mas_align_munmap). Other maple trees (a tmpfs directory's offsets) are
 * judged as before.
 */
static const char *const vma_tree_funcs[] = {
	"vma_", "__vma_", "vms_", "do_vmi_", "do_mas_", "__split_vma", "split_vma",
	"mmap_region", "__mmap_region", "do_brk_flags", "insert_vm_struct", "expand_downwards",
	"expand_upwards", "commit_merge", "relocate_vma_down", "dup_mmap", NULL,
};
static const char *const vma_tree_caches[] = { "maple_node", NULL };

/*
 * What an inode's allocation makes for it (its LSM blob at
 * security_inode_alloc, the filesystem's own inode), and what a filesystem
 * reads in with the inode (ext4's cached target of a fast symlink, a kmalloc
 * under __ext4_iget), lives as long as the inode, which the inode cache keeps
 * after its last user, as it keeps the dentry: reclaimed under memory
 * pressure (a file a traced command created stays cached). On the 6.18 host a
 * `tar` of /usr/share/doc left 124 symlink targets as certain leaks.
 */
static const char *const inode_funcs[] = { "alloc_inode", "__ext4_iget", NULL };

/*
 * What fork makes for a new task (its task_struct, signal_struct, creds and
 * their LSM blobs, pid) and exec's new creds are freed when the task's last
 * reference goes: after an RCU grace period that follows its reaping and its
 * last context switch, and after whatever else holds the task. On the 6.18
 * host 3 task_structs and their signal_structs of a shell's exited, reaped
 * children were still there at the end of a 1 s settle period (1 run in 32 of
 * `leaks -- python3 -c ...` through pyenv's shell shim), with every RCU
 * callback queued before it run (likely freed where no handler runs:
 * docs/detectors.md, the sandbox agent's threads). unshare() and setns() make
 * the same for the calling task (creds, namespaces): in 1 run of 15 of
 * `unshare -imnpuUC -f --mount-proc true` 10 times, its creds, their LSM blob
 * and its pid namespace were still there.
 */
static const char *const task_funcs[] = {
	"copy_process", "prepare_exec_creds", "prepare_bprm_creds", "ksys_unshare",
	"__do_sys_setns", NULL,
};

/* the site's function is one of funcs, whole (frames__named()) */
static bool site_is(const struct detect *d, __u64 site, const char *const *funcs)
{
	const struct ksym *s = d->o.ksyms && site ? ksyms__resolve(d->o.ksyms, site) : NULL;

	return s && frames__named(s->name, funcs);
}

/* the name a record gave key (a task, a cache, a device), NULL if none did */
static const struct name_item *name_item(const struct kvec *v, __u64 key)
{
	long i = kvec__find(v, &key);

	return i >= 0 ? kvec__at(v, i) : NULL;
}

/* n's name is one of names (NULL-terminated, as the function lists) */
static bool name_in(const struct name_item *n, const char *const *names)
{
	for (size_t k = 0; n && names[k]; k++)
		if (!strcmp(n->name, names[k]))
			return true;
	return false;
}

/* one of frames (the site, then its callers) is in funcs */
static bool frames_in(const struct detect *d, const __u64 *frames, int n,
		      const char *const *funcs)
{
	for (int i = 0; i < n; i++)
		if (site_in(d, frames[i], funcs))
			return true;
	return false;
}

static int retained_kind(const struct detect *d, const struct kms_event *e,
			 const struct detect_group *key)
{
	int fam = key->family;
	const struct name_item *cache = fam == KMS_FAM_CACHE ? name_item(&d->objnames, e->obj) :
							     NULL;
	__u64 frames[KMS_MAX_STACK];
	int n = detect__frames(d, key->stack_id, key->site, frames, KMS_MAX_STACK);
	/* the site the report shows: the record's may be inside the allocator (a vmalloc probe's) */
	__u64 site = n ? frames[0] : key->site;

	if (e->gfp != KMS_GFP_UNKNOWN && (e->gfp & d->o.gfp_retained))
		return RET_GFP;
	if ((cache && (cache->flags & KMS_META_RECLAIMABLE)) ||
	    frames_in(d, frames, n, inode_funcs))
		return RET_CACHE;
	if (name_in(cache, mm_caches) || frames_in(d, frames, n, mm_funcs) ||
	    (fam == KMS_FAM_PAGE && site_is(d, site, pgtable_funcs)) ||
	    (name_in(cache, vma_tree_caches) && frames_in(d, frames, n, vma_tree_funcs)))
		return RET_MM;
	if (fam == KMS_FAM_VMALLOC && site_in(d, site, thread_stack_funcs))
		return RET_LAZY;
	if (fam == KMS_FAM_PAGE && site_in(d, site, page_cache_funcs))
		return RET_PAGE_CACHE;
	if (name_in(cache, lazily_freed_caches) ||
	    site_in(d, site, time_wait_funcs) ||
	    (fam == KMS_FAM_CACHE && site_is(d, site, netns_funcs)))
		return RET_LAZY;
	if (frames_in(d, frames, n, task_funcs))
		return RET_TASK;
	return RET_NONE;
}

static __attribute__((noinline)) long group_find(struct detect *d, const struct kms_event *e,
						 const struct detect_group *key)
{
	struct detect_group *g;
	bool created;
	long i, s;

	i = kvec__get(&d->groups, key, &created);
	if (i < 0 || !created)
		return i;
	s = site_get(d, key->family, key->site, key->obj);
	g = kvec__at(&d->groups, i);
	g->nested = nest__event(d->o.nest, e, key->family);
	g->retained = retained_kind(d, e, key);
	g->site_idx = s < 0 ? (size_t)-1 : (size_t)s;
	g->gfp = e->gfp;
	g->order = key->family == KMS_FAM_PAGE ? e->order : -1;
	g->pid = e->pid;
	return i;
}

/*
 * Every allocation asks for its group: a direct-mapped cache of the busy ones
 * in front of the kvec (a group's index never changes once made).
 */
static long group_get(struct detect *d, const struct kms_event *e, int fam)
{
	int stack_id = e->stack_id < 0 ? -1 : e->stack_id;
	__u64 obj = (fam == KMS_FAM_CACHE || fam == KMS_FAM_DMA) ? e->obj : 0;
	struct group_cache *c;

	/* vmalloc's own page array: a group of its own, nested (as agg__on_alloc() keys it) */
	if (fam == KMS_FAM_VMALLOC && (e->extra & KMS_X_NESTED))
		obj = KMS_OBJ_NESTED;
	struct detect_group key;
	long i;

	c = &d->group_cache[((e->site ^ obj ^ ((__u64)stack_id << 8 | fam)) * 0x9e3779b97f4a7c15ULL) >>
			    (64 - GROUP_CACHE_BITS)];
	if (c->idx && c->site == e->site && c->obj == obj && c->stack_id == stack_id &&
	    c->family == fam)
		return c->idx - 1;
	memset(&key, 0, sizeof(key));
	key.family = fam;
	key.stack_id = stack_id;
	key.site = e->site;
	key.obj = obj;
	i = group_find(d, e, &key);
	if (i >= 0)
		*c = (struct group_cache){ .site = e->site, .obj = obj, .family = fam,
					   .stack_id = stack_id, .idx = i + 1 };
	return i;
}

static struct detect_site *group_site(struct detect *d, const struct detect_group *g)
{
	return g->site_idx < d->sites.nr ? kvec__at(&d->sites, g->site_idx) : NULL;
}

/* an object stops being outstanding; bytes: how much of it */
static void release(struct detect *d, const struct live_obj *r, __u64 bytes, bool whole,
		    bool implicit)
{
	struct detect_group *g = kvec__at(&d->groups, r->group);
	struct detect_site *s = group_site(d, g);

	g->outstanding_bytes -= bytes < g->outstanding_bytes ? bytes : g->outstanding_bytes;
	if (!whole)
		return;
	if (g->outstanding)
		g->outstanding--;
	if (implicit) {
		bool created;

		g->implicit_frees++;
		if (s)
			s->implicit_frees++;
		d->fs.implicit[g->family]++;
		if (g->family == KMS_FAM_CACHE && g->obj &&
		    kvec__get(&d->untraced_caches, &g->obj, &created) < 0)
			d->untraced_caches_full = true;
	} else {
		g->frees++;
		if (s)
			s->frees++;
	}
}

/* a live object as a bad-free finding names it: its group holds the rest */
static struct alloc_view live_view(const struct detect *d, const struct live_obj *r)
{
	const struct detect_group *g = kvec__at(&d->groups, r->group);
	struct alloc_view v = {
		.type = r->type, .stack_id = g->stack_id, .site = g->site, .obj = g->obj,
		.pid = r->pid,
	};

	return v;
}

static void learn_direct_map(struct detect *d, const struct kms_event *e, const struct last_page *lp)
{
	__u64 base;

	/* a large kmalloc is one page block: its page event comes just before it */
	if (!lp->valid || lp->order >= LIVE_ORDERS || e->bytes_alloc < (2U << d->o.page_shift) ||
	    e->bytes_alloc != (__u64)(1U << d->o.page_shift) << lp->order)
		return;
	base = e->ptr - (lp->pfn << d->o.page_shift);
	if (base & (DMAP_ALIGN - 1))
		return;
	if (base == d->dmap_cand) {
		if (++d->dmap_votes >= DMAP_VOTES)
			d->dmap = base;
	} else if (!d->dmap) {
		d->dmap_cand = base;
		d->dmap_votes = 1;
	}
}

/* what an allocation tells before any live object: context, page bookkeeping */
static void on_alloc_record(struct detect *d, const struct kms_event *e, int fam, int cls,
			    const struct last_page *prev)
{
	int nested = -1;

	if (cls == OC_PAGE) {
		if (d->o.bad_frees) {
			struct last_page *lp = &d->last_page[e->cpu % LAST_PAGE_CPUS];

			lp->pfn = e->ptr;
			lp->order = e->order;
			lp->valid = true;
		}
		if (d->o.misuse)
			nested = nest__of(d->o.nest, e->stack_id, KMS_FAM_PAGE);
	} else if (e->type == KMS_EV_KMALLOC && d->o.bad_frees) {
		learn_direct_map(d, e, prev);
	}
	if (d->o.misuse)
		detect_misuse_check(d, e, fam, nested);
}

void detect__on_alloc(struct detect *d, const struct kms_event *e, struct live_obj *o)
{
	int fam = kms_ev_family(e->type), cls = kms_ev_class(e->type);
	struct detect_group *g;
	struct freed_slot *f;
	long gi;

	if (!d->o.leaks || !o)
		return;
	gi = group_get(d, e, fam);
	if (gi < 0) {
		/* untracked, its free is not remembered: an earlier one must not stand for it */
		f = d->o.bad_frees ? freed_find(&d->freed[cls], e->ptr) : NULL;
		if (f) {
			htab__delete(&d->freed[cls], f, sizeof(*f));
			d->freed_nr--;
		}
		return;
	}
	o->group = gi;
	g = kvec__at(&d->groups, gi);
	g->allocs++;
	/* -1: none asked for; below, the kernel's error (stack map full, a collision) */
	if (e->stack_id < -1)
		g->stack_failed++;
	g->alloc_bytes += o->bytes_alloc;
	g->outstanding++;
	g->outstanding_bytes += o->bytes_alloc;
	if (e->gfp != g->gfp)
		g->gfp_mixed = true;
	if (g->site_idx < d->sites.nr)
		((struct detect_site *)kvec__at(&d->sites, g->site_idx))->allocs++;
}

void detect__on_implicit_free(struct detect *d, const struct live_obj *old)
{
	/* a live address handed out again: it was freed without a trace event */
	if (old->group != LIVE_NO_GROUP)
		release(d, old, old->bytes_alloc, true, true);
}

/* the tracked live object of class cls at ptr, copied to *r */
static bool tracked(const struct detect *d, int cls, __u64 ptr, struct live_obj *r)
{
	const struct live_slot *s = live__find(d->o.live, cls, ptr);

	if (!s)
		return false;
	live__get(d->o.live, s, r);
	return r->group != LIVE_NO_GROUP;
}

/* a free whose address is live in another class: freed through the wrong API */
static bool wrong_class(struct detect *d, const struct kms_event *e, int cls, struct live_obj *r)
{
	int c;

	if (cls == OC_PAGE)
		return false;	/* page frees run inside every allocator: never "wrong" */
	for (c = 0; c < OC_NR; c++)
		if (c != cls && c != OC_PAGE && tracked(d, c, e->ptr, r))
			return true;
	/* a direct-map address of a page block, once the base is known */
	return d->dmap && e->ptr >= d->dmap &&
	       !((e->ptr - d->dmap) & ((1ULL << d->o.page_shift) - 1)) &&
	       tracked(d, OC_PAGE, (e->ptr - d->dmap) >> d->o.page_shift, r);
}

void detect__on_free(struct detect *d, const struct kms_event *e, int cls, const struct live_obj *o,
		     __u32 bytes, bool whole)
{
	struct alloc_view a;

	if (!d->o.leaks || o->group == LIVE_NO_GROUP)
		return;
	a = live_view(d, o);
	if (d->o.bad_frees && e->type == KMS_EV_CACHE_FREE && o->type == KMS_EV_CACHE_ALLOC &&
	    e->obj && a.obj && e->obj != a.obj)
		badfree_add(d, BF_WRONG_CACHE, &a, e, 0);
	release(d, o, bytes, whole, false);
	/* page frames come back through untraced bulk allocations: no double-free check */
	if (whole && d->o.bad_frees && cls != OC_PAGE)
		freed_remember(d, cls, o->ptr, &a, e);
}

void detect__on_unmatched(struct detect *d, const struct kms_event *e)
{
	int fam = kms_ev_family(e->type), cls = kms_ev_class(e->type);
	struct freed_slot *f;
	struct live_obj r;

	if (!d->o.leaks)
		return;
	/* a free by a process outside the filters matters only if it frees one of ours */
	if (e->ctx & KMS_CTX_OUTSIDE)
		return;
	/*
	 * The C library's thread cache released at thread exit: blocks freed
	 * once already (not a double free), and the cache itself (not one
	 * allocated before tracing). The aggregator counts them (exit_frees).
	 */
	if (e->ctx & KMS_CTX_UEXIT)
		return;
	if (d->o.bad_frees) {
		if (wrong_class(d, e, cls, &r)) {
			struct alloc_view a = live_view(d, &r);

			/* the kernel did not free it either: it stays live */
			badfree_add(d, BF_WRONG_API, &a, e, 0);
			return;
		}
		f = cls == OC_PAGE ? NULL : freed_find(&d->freed[cls], e->ptr);
		if (f && freed_valid(d, f)) {
			struct alloc_view a = {
				.type = f->type, .stack_id = f->stack_id, .site = f->site,
				.obj = f->obj, .pid = f->pid,
			};

			badfree_add(d, BF_DOUBLE_FREE, &a, e, f->free_site);
			return;
		}
	}
	if (fam >= 0)
		d->fs.unmatched[fam]++;
}

void detect__event(struct detect *d, const struct kms_event *e, const struct kms_ev_info *ei)
{
	struct last_page prev = {};

	if (ei->family < 0 || ei->cls < 0)
		return;
	/* the loss markers' cut (leaks), and the direct map (bad frees): not for misuse */
	if (d->o.leaks && e->ts > d->max_ts)
		d->max_ts = e->ts;
	/* the real free of an object handed to RCU: freed once already, at the handoff */
	if (e->ctx & KMS_CTX_RCU_DONE)
		return;
	/* the last page allocation is only "just before" for the next record of the CPU */
	if (d->o.bad_frees) {
		struct last_page *lp = &d->last_page[e->cpu % LAST_PAGE_CPUS];

		if (lp->valid) {
			prev = *lp;
			lp->valid = false;
		}
	}
	if (ei->alloc)
		on_alloc_record(d, e, ei->family, ei->cls, &prev);
}

void detect__meta(struct detect *d, const struct kms_meta *m)
{
	struct name_item *n;
	struct kvec *v;
	bool created;
	__u64 key = m->key;
	long i;

	if (m->type == KMS_EV_META_LOSS) {
		for (int f = 0; f < KMS_FAM_MAX; f++) {
			if (!(m->key & (1U << f)))
				continue;
			d->loss_cut[f] = d->max_ts;
			d->lossy[f] = true;
		}
		return;
	}
	if (m->type == KMS_EV_META_TASK)
		v = &d->comms;
	else if (m->type == KMS_EV_META_CACHE || m->type == KMS_EV_META_DEVICE)
		v = &d->objnames;
	else
		return;
	i = kvec__get(v, &key, &created);
	if (i < 0)
		return;
	n = kvec__at(v, i);
	n->flags = m->flags;
	memcpy(n->name, m->name, sizeof(n->name) - 1);
	n->name[sizeof(n->name) - 1] = '\0';
}

/* ---- read side ---- */

size_t detect__nr_badfree(const struct detect *d)
{
	return d->badfree.nr;
}

const struct detect_badfree *detect__badfree(const struct detect *d, size_t i)
{
	return i < d->badfree.nr ? kvec__at(&d->badfree, i) : NULL;
}

const struct detect_free_stats *detect__free_stats(const struct detect *d)
{
	return &d->fs;
}

size_t detect__nr_groups(const struct detect *d)
{
	return d->groups.nr;
}

const struct detect_group *detect__group(const struct detect *d, size_t i)
{
	return i < d->groups.nr ? kvec__at(&d->groups, i) : NULL;
}

const struct detect_site *detect__site(const struct detect *d, size_t i)
{
	return i < d->sites.nr ? kvec__at(&d->sites, i) : NULL;
}

bool detect__site_unobservable(const struct detect *d, size_t site_idx)
{
	const struct detect_site *s = detect__site(d, site_idx);

	return s && s->implicit_frees > 0;
}

int detect__leak_class(const struct detect *d, const struct detect_group *g,
		       bool include_retained)
{
	return g->nested >= 0 ? DLC_NESTED :
	       detect__site_unobservable(d, g->site_idx) ? DLC_UNOBSERVABLE :
	       g->retained && !include_retained ? DLC_RETAINED : DLC_LEAK;
}

/*
 * The rule (docs/detectors.md). Records lost after an object was allocated
 * could hold its free. Slab objects are also freed through RCU and in bulk,
 * which no tracepoint reports: where those paths are not traced, a site
 * vouches for its outstanding objects only if most of its objects that
 * went away did so through a traced free, and, for a dedicated cache, if
 * no object of the cache was seen to go away untraced: how a cache's objects
 * are freed (kfree_rcu(), sheaves) belongs to the cache's user, not to one
 * call site (the maple tree frees its nodes both ways). Not for kmalloc's
 * caches, which every subsystem shares. Other families have no untraced
 * free path (their deferred frees end in a traced free, which the settle
 * period after the trace waits for). In every family, a group without the
 * stack its run should have had is not classified by its callers (nested,
 * retained): what it is cannot be told.
 */
unsigned int detect__doubts(const struct detect *d, const struct detect_group *g, __u64 exposed)
{
	const struct detect_site *s = g->site_idx < d->sites.nr ? kvec__at(&d->sites, g->site_idx) :
				      NULL;
	unsigned int why = (exposed ? DOUBT_RECORDS_LOST : 0) |
			   (d->o.trace_cut ? DOUBT_TRACE_CUT : 0);
	__u64 out;

	/* the nesting and retained rules read the callers: without them, no class is sure */
	if (g->stack_id < 0 && (g->stack_failed || d->o.stacks_partial))
		why |= DOUBT_STACK_UNKNOWN;

	if (d->o.deferred_frees || (g->family != KMS_FAM_KMALLOC && g->family != KMS_FAM_CACHE))
		return why;
	if (g->family == KMS_FAM_CACHE &&
	    (d->untraced_caches_full || kvec__find(&d->untraced_caches, &g->obj) >= 0))
		why |= DOUBT_CACHE_UNTRACED;
	if (g->family == KMS_FAM_CACHE &&
	    name_in(name_item(&d->objnames, g->obj), bulk_freed_caches))
		why |= DOUBT_CACHE_BULK;
	if (!s || !s->frees)
		return why | DOUBT_FREES_UNTRACED;
	out = s->allocs - s->frees - (s->implicit_frees < s->allocs - s->frees ?
				      s->implicit_frees : s->allocs - s->frees);
	return s->frees < out ? why | DOUBT_FEW_FREES : why;
}

__u64 detect__nr_live(const struct detect *d)
{
	return d->o.live ? live__count(d->o.live) : 0;
}

struct leaks_walk {
	const struct detect *d;
	struct detect_leak *all;
	size_t n;
	__u64 now, min_age_ns;
};

static int leaks_add(int cls, const struct live_obj *r, void *ctx)
{
	struct leaks_walk *w = ctx;
	const struct detect *d = w->d;
	struct detect_leak *l;
	int fam;

	if (r->group >= w->n)
		return 0;
	l = &w->all[r->group];
	if (r->ts + w->min_age_ns > w->now) {
		l->young++;
		return 0;
	}
	if (!l->count || r->ts < l->oldest_ts)
		l->oldest_ts = r->ts;
	l->count++;
	l->bytes += r->bytes_alloc;
	fam = ((const struct detect_group *)kvec__at(&d->groups, r->group))->family;
	if (d->lossy[fam] && r->ts <= d->loss_cut[fam])
		l->exposed++;
	return 0;
}

int detect__leaks(const struct detect *d, __u64 now, __u64 min_age_ns,
		  struct detect_leak **rows, size_t *nr)
{
	struct leaks_walk w = { .d = d, .n = d->groups.nr, .now = now, .min_age_ns = min_age_ns };
	struct detect_leak *out;
	size_t i, k = 0;

	*rows = NULL;
	*nr = 0;
	w.all = calloc(w.n ? w.n : 1, sizeof(*w.all));
	if (!w.all)
		return -ENOMEM;
	if (d->o.live)
		live__foreach(d->o.live, leaks_add, &w);
	/* compact in place: rows for groups with anything outstanding */
	out = w.all;
	for (i = 0; i < w.n; i++) {
		if (!w.all[i].count && !w.all[i].young)
			continue;
		out[k] = w.all[i];
		out[k].group = i;
		k++;
	}
	*rows = out;
	*nr = k;
	return 0;
}

void detect__snapshot(struct detect *d)
{
	size_t i;

	for (i = 0; i < d->groups.nr; i++) {
		struct detect_group *g = kvec__at(&d->groups, i);

		if (g->nr_snaps == DETECT_GROWTH_KEEP) {
			memmove(g->snaps, g->snaps + 1, (DETECT_GROWTH_KEEP - 1) * sizeof(g->snaps[0]));
			g->nr_snaps--;
		}
		g->snaps[g->nr_snaps++] = g->outstanding_bytes;
	}
}

unsigned int detect__growth_run(const struct detect_group *g)
{
	unsigned int run = 0, i;

	for (i = g->nr_snaps; i >= 2 && g->snaps[i - 1] > g->snaps[i - 2]; i--)
		run++;
	return run;
}

static const char *name_lookup(const struct kvec *v, __u64 key)
{
	const struct name_item *n = name_item(v, key);

	return n ? n->name : NULL;
}

const char *detect__comm(const struct detect *d, __u32 pid)
{
	return name_lookup(&d->comms, pid);
}

const char *detect__obj_name(const struct detect *d, __u64 obj)
{
	return obj ? name_lookup(&d->objnames, obj) : NULL;
}

__u64 detect__direct_map(const struct detect *d)
{
	return d->dmap;
}
