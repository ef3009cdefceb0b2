/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope BPF side: one small handler per allocator event, several attach
 * flavours per event (tracepoint first, then fentry/fexit, then kprobes). The
 * collector probes which flavour works on the running kernel and loads only
 * those (see src/plan.c).
 *
 * One object, three files, each included once, in this order:
 *   kmemscope.bpf.c  settings, maps, the handlers shared by every attach
 *                    flavour (on_*()), the tracepoint programs
 *   stage.bpf.h      per-CPU staging, order keys, flush, direct records, the
 *                    pid filter, context capture
 *   funcprobe.bpf.h  fentry/fexit and kprobe programs, for kernels without the
 *                    vmalloc:/dma: tracepoints; deferred frees (kvfree_call_rcu,
 *                    kmem_cache_free_bulk)
 *   user.bpf.h       user space (--user): the C library's allocator through
 *                    uprobes, mmap/munmap/mremap/brk through syscall tracepoints
 * The headers use the settings and maps defined here and are not meant to be
 * included anywhere else.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kmemscope.h"

char LICENSE[] SEC("license") = "GPL";

/* 6.2+; weak: where it is missing, the code calling it is dead (pc_cast) */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* settings, written by the collector between open and load */
const volatile bool filter_pids = false;	/* only tgids in the pids map */
const volatile __u64 stack_types = 0;		/* bit (1 << KMS_EV_*): capture a stack */
const volatile bool use_seq = false;		/* order by a global counter, not ktime */
const volatile bool rescue = false;		/* shadow programs catch recursion misses */
const volatile bool want_ctx = false;		/* read the preempt count (read_ctx()) */
const volatile __u8 stack_cache = KMS_STACK_CACHE_NONE; /* which stack ids are reused (stack_of()) */
const volatile __u64 pcpu_rq_off = 0;		/* offset of runqueues in .data..percpu */
const volatile __s64 pcpu_pc_off = -1;		/* offset of the preempt count, -1: unknown */
const volatile bool pc_cast = false;		/* the kernel has bpf_rdonly_cast() */
const volatile __u64 pcpu_sirq_off = 0;		/* offset of kstat.softirqs (0: no witness) */

/* the running kernel's page size (sysconf(_SC_PAGESIZE)), set by the collector */
const volatile __u32 page_size = 4096;

/* kvfree_call_rcu() passes the object itself, 6.2+ (see rcu_obj()) */
const volatile bool rcu_ptr_arg = false;

/* a large kmalloc() may fire kmem:kmalloc twice (see kmalloc_first()) */
const volatile bool kmalloc_twice = false;

/* the global order counter (use_seq); one cache line of its own */
__u64 seq_counter SEC(".data.seq") __attribute__((aligned(64)));

/* struct kms_stage is in kmemscope.h: the collector reads it too */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kms_stage);
} stage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);	/* resized by the collector */
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KMS_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);	/* resized by the collector */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, KMS_MAX_STACK * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

/* bumped by the collector when it changes the filter */
__u32 filter_gen;

/*
 * Allocator wrappers (mempool, ioremap, ...): [wrap_lo[i], wrap_hi[i]),
 * sorted, from kallsyms (src/frames.c). A call site in one of them is not
 * the caller: the allocation gets a stack (ev_end()). Written by the
 * collector once kallsyms is read, which the load does not wait for; 0
 * without stacks. nr_wrap is written last.
 */
__u32 nr_wrap;
__u64 wrap_lo[KMS_WRAP_MAX];
__u64 wrap_hi[KMS_WRAP_MAX];
/* bit (page % KMS_WRAP_PAGES): a wrapper lies in that page (in_wrapper()) */
__u64 wrap_pages[KMS_WRAP_PAGES / 64];

/*
 * 0 until the collector starts tracing: the plan's trial attaches the
 * programs once and the run keeps those links (patching kernel text again
 * for the run would race with the kernel, see issue 11), so handlers run
 * from the trial on and make no record before this is set.
 */
__u32 armed;

/*
 * kmemscope's own process, left out of what it traces (0: traced). Written
 * by the collector once its calibration, which measures kmemscope's own
 * allocations, is over.
 */
__u32 self_tgid;

/*
 * A typed kernel pointer as a plain number. tp_btf arguments are typed and the
 * verifier refuses arithmetic on them; reloading the spilled value in two
 * halves gives scalars (needs CAP_PERFMON, which tracing needs anyway).
 */
static __always_inline __u64 ptr_val(const void *p)
{
	volatile __u64 v = (__u64)p;
	__u32 lo = *((volatile __u32 *)&v), hi = *((volatile __u32 *)&v + 1);

	return ((__u64)hi << 32) | lo;
}

#include "stage.bpf.h"

/*
 * ---- one large kmalloc(), traced twice ----
 * Where the kernel has __kmalloc_large_node_noprof() (measured: 6.12 and
 * 6.18; 6.1 has not, and traces once), a kmalloc() past
 * KMALLOC_MAX_CACHE_SIZE through __do_kmalloc_node() (__kmalloc_noprof,
 * __kmalloc_node_noprof, __kmalloc_node_track_caller_noprof: so kvmalloc()
 * and krealloc() too) fires kmem:kmalloc twice: first in
 * __kmalloc_large_node_noprof(), whose call site is its return address
 * inside the allocator, then in __do_kmalloc_node() with the caller's. The
 * two carry the same pointer (NULL for a failure), size, GFP and node, from
 * the same thread, back to back on one CPU. A constant-size kmalloc() that
 * calls __kmalloc_large_node_noprof() itself is traced once.
 *
 * So, where the plan says the kernel has that function (kmalloc_twice; the
 * verifier drops this code elsewhere): a staged large kmalloc record whose
 * site is in an allocator function (the wrapper ranges) is held
 * (kmalloc_first()); the next large kmalloc event on that CPU, if the held
 * record is still in the stage, at most TWICE_GAP records back, none of
 * those in between names its address, and it matches it field for field
 * from another site and the same thread, is the second trace
 * (kmalloc_second()): it gives the held record its site and makes no record
 * of its own. Records in between are an interrupt's (an RCU softirq freeing
 * a batch on its way out, seen on 6.12): the object itself is the
 * allocator's until the second trace, so none of them can be its free. A
 * new allocation of the same address is never taken for the second trace:
 * freed on this CPU, its free names the address; freed on another CPU, it
 * would have to come back to the same thread with the same size, GFP and
 * node, from another call site, within TWICE_GAP records here. The
 * collector's paced flush of a quiet CPU leaves a held record in its stage
 * for TWICE_WAIT_NS (flush_stage()): that CPU may be stopped between the two
 * traces (seen under QEMU: 5 ms). Missed (both counted): more records in
 * between, a longer stop, a migration, a handler nested in another, and
 * what comes before the collector has read kallsyms.
 */
#define TWICE_GAP 8
/* SLUB serves kmalloc() from caches up to two pages (KMALLOC_MAX_CACHE_SIZE) */
static __always_inline bool kmalloc_large(__u64 req)
{
	return req > 2 * (__u64)page_size;
}

static __always_inline bool kmalloc_first(struct ev_slot *es, struct kms_event *e)
{
	if (!kmalloc_twice || !es->s || !kmalloc_large(e->bytes_req) || !in_wrapper(e->site))
		return false;
	es->s->twice_key = e->ts;
	es->s->twice_at = bpf_ktime_get_ns();
	es->s->twice_idx = es->s->b.count;	/* e's slot: counted in ev_end() */
	es->s->twice_site = e->site;
	es->s->twice_tid = (__u32)bpf_get_current_pid_tgid();
	return true;
}

static __always_inline bool kmalloc_second(__u64 site, __u64 ptr, __u64 req, __u64 alloc,
					   __u64 gfp, int node)
{
	struct kms_stage *s;
	struct kms_event *e;
	__u32 n, idx;
	bool same;

	if (!kmalloc_twice || !kmalloc_large(req))
		return false;
	s = stage_get();
	if (!s || s->busy || !s->twice_key)
		return false;
	/* an interrupt's handler now ships directly: the held record stays put */
	s->busy = 1;
	barrier();
	n = s->b.count;
	idx = s->twice_idx;
	e = &s->b.ev[idx & (KMS_BATCH - 1)];
	same = idx < n && n - idx <= TWICE_GAP + 1 && e->ts == s->twice_key &&
	       site != s->twice_site &&
	       s->twice_tid == (__u32)bpf_get_current_pid_tgid() &&
	       e->type == (ptr ? KMS_EV_KMALLOC : KMS_EV_ALLOC_FAIL) && e->ptr == ptr &&
	       e->bytes_req == (__u32)req && e->bytes_alloc == (__u32)alloc &&
	       e->gfp == (__u32)gfp && e->node == (__s16)node;
	/* meta records in between hold a tgid or a cache there, never this object */
	for (__u32 i = 1; i <= TWICE_GAP && same && idx + i < n; i++)
		same = s->b.ev[(idx + i) & (KMS_BATCH - 1)].ptr != ptr;
	if (same) {
		/* a wrapper's caller comes from the stack the held record has */
		e->site = stack_types && in_wrapper(site) ? 0 : site;
		s->twice_key = 0;
		cnt_add(KMS_CNT_KMALLOC_TWICE, 1);
	}
	barrier();
	s->busy = 0;
	return same;
}

/* ---- handlers shared by every attach flavour ---- */

static __always_inline int on_kmalloc(void *ctx, __u64 site, __u64 ptr, __u64 req, __u64 alloc,
				      __u64 gfp, int node)
{
	struct ev_slot es = {};
	struct kms_event *e;

	if (kmalloc_second(site, ptr, req, alloc, gfp, node))
		return 0;
	e = ev_begin(ctx, &es, ptr ? KMS_EV_KMALLOC : KMS_EV_ALLOC_FAIL, 0, EV_STAGED);
	if (!e)
		return 0;
	e->site = site;
	e->ptr = ptr;
	e->bytes_req = req;
	e->bytes_alloc = alloc;
	e->gfp = gfp;
	e->node = node;
	if (!ptr)
		e->order = KMS_FAM_KMALLOC;
	es.hold = kmalloc_first(&es, e);
	ev_end(&es, e);
	return 0;
}

/* frees of NULL are recorded too: they are events the kernel counts */
static __always_inline int on_free(void *ctx, __u8 type, __u64 site, __u64 ptr, __u64 obj,
				   enum ev_path how)
{
	struct ev_slot es = {};
	struct kms_event *e;

	e = ev_begin(ctx, &es, type, obj, how);
	if (!e)
		return 0;
	e->site = site;
	e->ptr = ptr;
	ev_end(&es, e);
	return 0;
}

static __always_inline int on_cache_alloc(void *ctx, __u64 site, __u64 ptr, __u64 cache,
					  __u64 gfp, int node)
{
	struct ev_slot es = {};
	struct kms_event *e = ev_begin(ctx, &es, ptr ? KMS_EV_CACHE_ALLOC : KMS_EV_ALLOC_FAIL,
				       cache, EV_STAGED);

	if (!e)
		return 0;
	e->site = site;
	e->ptr = ptr;
	e->gfp = gfp;
	e->node = node;
	if (!ptr)
		e->order = KMS_FAM_CACHE;
	ev_end(&es, e);
	return 0;
}

/* struct page pointers divided by the struct size: a frame key that keeps pfn alignment */
static __always_inline __u64 page_key(__u64 page)
{
	return page / bpf_core_type_size(struct page);
}

static __always_inline int on_page_alloc(void *ctx, __u64 page, __u32 order, __u64 gfp,
					 int migratetype)
{
	struct ev_slot es = {};
	struct kms_event *e = ev_begin(ctx, &es, page ? KMS_EV_PAGE_ALLOC : KMS_EV_ALLOC_FAIL, 0,
				       EV_STAGED);

	if (!e)
		return 0;
	e->ptr = page ? page_key(page) : 0;
	e->order = page ? order : KMS_FAM_PAGE;
	e->bytes_req = e->bytes_alloc = page_size << (order & 31);
	e->gfp = gfp;
	e->extra = migratetype;
	ev_end(&es, e);
	return 0;
}

static __always_inline int on_page_free(void *ctx, __u8 type, __u64 page, __u32 order)
{
	struct ev_slot es = {};
	struct kms_event *e;

	if (!page)
		return 0;
	e = ev_begin(ctx, &es, type, 0, EV_STAGED);
	if (!e)
		return 0;
	e->ptr = page_key(page);
	e->order = order;
	e->bytes_alloc = page_size << (order & 31);
	ev_end(&es, e);
	return 0;
}

/*
 * req: what the caller asked for; area: the pages the area holds, its guard
 * page excluded (docs/json-schema.md). gfp: KMS_GFP_UNKNOWN where the attach
 * point carries none.
 */
static __always_inline int on_vmalloc(void *ctx, __u64 site, __u64 addr, __u64 req, __u64 area,
				      __u64 gfp, bool failed, bool nested, enum ev_path how)
{
	struct ev_slot es = {};
	struct kms_event *e = ev_begin(ctx, &es, failed ? KMS_EV_ALLOC_FAIL : KMS_EV_VMALLOC, 0,
				       how);

	if (!e)
		return 0;
	e->site = site;
	e->ptr = addr;
	e->bytes_req = req;
	e->bytes_alloc = area;
	e->gfp = gfp;
	if (failed) {
		e->order = KMS_FAM_VMALLOC;
		e->extra = KMS_X_FAILED;
	}
	if (nested)
		e->extra |= KMS_X_NESTED;
	ev_end(&es, e);
	return 0;
}

static __always_inline int on_dma_alloc(void *ctx, __u64 site, __u64 dev, __u64 virt,
					__u64 size, __u64 gfp, enum ev_path how)
{
	struct ev_slot es = {};
	struct kms_event *e = ev_begin(ctx, &es, virt ? KMS_EV_DMA_ALLOC : KMS_EV_ALLOC_FAIL, dev,
				       how);

	if (!e)
		return 0;
	e->site = site;
	e->ptr = virt;
	e->bytes_req = e->bytes_alloc = size;
	e->gfp = gfp;
	if (!virt)
		e->order = KMS_FAM_DMA;
	ev_end(&es, e);
	return 0;
}

static __always_inline int on_percpu_alloc(void *ctx, __u64 site, __u64 ptr, __u64 size,
					   __u64 bytes_alloc, __u64 gfp, bool atomic, bool reserved)
{
	struct ev_slot es = {};
	struct kms_event *e = ev_begin(ctx, &es, ptr ? KMS_EV_PERCPU_ALLOC : KMS_EV_ALLOC_FAIL, 0,
				       EV_STAGED);

	if (!e)
		return 0;
	e->site = site;
	e->ptr = ptr;
	e->bytes_req = size;
	e->bytes_alloc = bytes_alloc ? bytes_alloc : size;
	e->gfp = gfp;
	e->extra = (atomic ? KMS_X_ATOMIC : 0) | (reserved ? KMS_X_RESERVED : 0);
	if (!ptr)
		e->order = KMS_FAM_PERCPU;
	ev_end(&es, e);
	return 0;
}

/*
 * ---- tracepoints ----
 * tp_btf first (cheapest); raw_tp where tp_btf will not load (6.1 refuses
 * tp_btf access to 'const void *' arguments). Both see the same arguments.
 */
#define TP_PAIR(name, args, body)					\
	SEC("tp_btf/" #name) int BPF_PROG(tb_##name, args) { body }	\
	SEC("raw_tp/" #name) int BPF_PROG(rt_##name, args) { body }

/*
 * Events whose handler needs a struct pointer argument as a number (a cache,
 * a page, a device) are raw_tp only: tp_btf types those arguments, and the
 * verifier refuses to let a typed pointer become a number.
 */
#define TP_RAW(name, args, body)					\
	SEC("raw_tp/" #name) int BPF_PROG(rt_##name, args) { body }

#define A(...) __VA_ARGS__

TP_PAIR(kmalloc, A(unsigned long site, const void *ptr, size_t req, size_t alloc, gfp_t gfp,
		   int node),
	rescue_mark(KMS_EV_KMALLOC, ptr_val(ptr));
	return on_kmalloc(ctx, site, ptr_val(ptr), req, alloc, gfp, node);)

TP_PAIR(kfree, A(unsigned long site, const void *ptr),
	rescue_mark(KMS_EV_KFREE, ptr_val(ptr));
	return on_free(ctx, KMS_EV_KFREE, site, ptr_val(ptr), 0, EV_STAGED);)

TP_RAW(kmem_cache_alloc, A(unsigned long site, const void *ptr, struct kmem_cache *s, gfp_t gfp,
			    int node),
	rescue_mark(KMS_EV_CACHE_ALLOC, ptr_val(ptr));
	return on_cache_alloc(ctx, site, ptr_val(ptr), ptr_val(s), gfp, node);)

TP_RAW(kmem_cache_free, A(unsigned long site, const void *ptr, const struct kmem_cache *s),
	rescue_mark(KMS_EV_CACHE_FREE, ptr_val(ptr));
	return on_free(ctx, KMS_EV_CACHE_FREE, site, ptr_val(ptr), ptr_val(s), EV_STAGED);)

TP_RAW(mm_page_alloc, A(struct page *page, unsigned int order, gfp_t gfp, int migratetype),
	rescue_mark(KMS_EV_PAGE_ALLOC, ptr_val(page));
	return on_page_alloc(ctx, ptr_val(page), order, gfp, migratetype);)

TP_RAW(mm_page_free, A(struct page *page, unsigned int order),
	rescue_mark(KMS_EV_PAGE_FREE, ptr_val(page));
	return on_page_free(ctx, KMS_EV_PAGE_FREE, ptr_val(page), order);)

TP_RAW(mm_page_free_batched, A(struct page *page),
	rescue_mark(KMS_EV_PAGE_FREE_BATCHED, ptr_val(page));
	return on_page_free(ctx, KMS_EV_PAGE_FREE_BATCHED, ptr_val(page), 0);)

/*
 * A vmap area: no GFP, no requested size, and size counts the guard page
 * that __get_vm_area_node() adds (areas made with VM_NO_GUARD, which x86
 * does not use for vmalloc, read one page short). The plan takes it only
 * where no vmalloc function probe works (src/plan.c).
 */
TP_PAIR(alloc_vmap_area, A(unsigned long addr, unsigned long size, unsigned long align,
			   unsigned long vstart, unsigned long vend, int failed),
	__u64 area = size > page_size ? size - page_size : size;
	return on_vmalloc(ctx, 0, addr, area, area, KMS_GFP_UNKNOWN, failed, false, EV_STAGED);)

TP_PAIR(free_vmap_area_noflush, A(unsigned long va_start, unsigned long nr_lazy,
				  unsigned long nr_lazy_max),
	return on_free(ctx, KMS_EV_VFREE, 0, va_start, 0, EV_STAGED);)

TP_RAW(dma_alloc, A(struct device *dev, void *virt, dma_addr_t dma, size_t size, int dir,
		     gfp_t gfp, unsigned long attrs),
	return on_dma_alloc(ctx, 0, ptr_val(dev), ptr_val(virt), size, gfp, EV_STAGED);)

TP_RAW(dma_alloc_pages, A(struct device *dev, void *virt, dma_addr_t dma, size_t size, int dir,
			   gfp_t gfp, unsigned long attrs),
	return on_dma_alloc(ctx, 0, ptr_val(dev), ptr_val(virt), size, gfp, EV_STAGED);)

TP_RAW(dma_free, A(struct device *dev, void *virt, dma_addr_t dma, size_t size, int dir,
		    unsigned long attrs),
	return on_free(ctx, KMS_EV_DMA_FREE, 0, ptr_val(virt), ptr_val(dev), EV_STAGED);)

TP_RAW(dma_free_pages, A(struct device *dev, void *virt, dma_addr_t dma, size_t size, int dir,
			  unsigned long attrs),
	return on_free(ctx, KMS_EV_DMA_FREE, 0, ptr_val(virt), ptr_val(dev), EV_STAGED);)

/*
 * percpu_alloc_percpu grew call_site, bytes_alloc and gfp_flags after 6.1;
 * the field test picks the argument layout of the running kernel. Arguments
 * are read inside each branch so the verifier never sees an access past the
 * end of the older, shorter argument list.
 */
static __always_inline int percpu_alloc(__u64 *ctx)
{
	if (bpf_core_field_exists(struct trace_event_raw_percpu_alloc_percpu, call_site))
		/* call_site, reserved, is_atomic, size, align, base, off, ptr, bytes_alloc, gfp */
		return on_percpu_alloc(ctx, ctx[0], ctx[7], ctx[3], ctx[8], ctx[9], ctx[2], ctx[1]);
	/* reserved, is_atomic, size, align, base, off, ptr; no GFP */
	return on_percpu_alloc(ctx, 0, ctx[6], ctx[2], 0, KMS_GFP_UNKNOWN, ctx[1], ctx[0]);
}

SEC("tp_btf/percpu_alloc_percpu")
int tb_percpu_alloc_percpu(__u64 *ctx)
{
	return percpu_alloc(ctx);
}

SEC("raw_tp/percpu_alloc_percpu")
int rt_percpu_alloc_percpu(__u64 *ctx)
{
	return percpu_alloc(ctx);
}

TP_PAIR(percpu_free_percpu, A(void *base, int off, void *ptr),
	return on_free(ctx, KMS_EV_PERCPU_FREE, 0, ptr_val(ptr), 0, EV_STAGED);)

/* rescue: shadows of the hot tracepoints (see rescue_mark()); addr is the event's ctx[1] or page */
#define SHADOW(name, type, addr, call)						\
	SEC("raw_tp/" #name) int sh_##name(__u64 *ctx)				\
	{									\
		if (!rescue_missed(type, addr))					\
			return 0;						\
		cnt_add(type_is_free(type) ? KMS_CNT_RESCUED_FREE : KMS_CNT_RESCUED, 1); \
		return call;							\
	}

SHADOW(kmalloc, KMS_EV_KMALLOC, ctx[1],
       on_kmalloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3], ctx[4], (int)ctx[5]))
SHADOW(kfree, KMS_EV_KFREE, ctx[1], on_free(ctx, KMS_EV_KFREE, ctx[0], ctx[1], 0, EV_STAGED))
SHADOW(kmem_cache_alloc, KMS_EV_CACHE_ALLOC, ctx[1],
       on_cache_alloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3], (int)ctx[4]))
SHADOW(kmem_cache_free, KMS_EV_CACHE_FREE, ctx[1],
       on_free(ctx, KMS_EV_CACHE_FREE, ctx[0], ctx[1], ctx[2], EV_STAGED))
SHADOW(mm_page_alloc, KMS_EV_PAGE_ALLOC, ctx[0],
       on_page_alloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3]))
SHADOW(mm_page_free, KMS_EV_PAGE_FREE, ctx[0],
       on_page_free(ctx, KMS_EV_PAGE_FREE, ctx[0], ctx[1]))
SHADOW(mm_page_free_batched, KMS_EV_PAGE_FREE_BATCHED, ctx[0],
       on_page_free(ctx, KMS_EV_PAGE_FREE_BATCHED, ctx[0], 0))

/* process-tree filter for `kmemscope ... -- CMD` */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u8 one = 1;

	if (filter_pids && bpf_map_lookup_elem(&pids, &ptgid) &&
	    !bpf_map_update_elem(&pids, &ctgid, &one, BPF_NOEXIST))
		/* pids are reused: a CPU may hold a stale "no" for this one */
		__sync_fetch_and_add(&filter_gen, 1);
	return 0;
}

/*
 * A traced process is gone: its pid may be reused by one that is not traced.
 * Not at exit, whose tracepoint comes before the exit path frees the
 * process's memory, but when the thread-group leader's task is freed, after
 * every thread of the group has been reaped.
 */
SEC("tp_btf/sched_process_free")
int BPF_PROG(forget_pid, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (!filter_pids || p->pid != p->tgid)
		return 0;
	if (!bpf_map_delete_elem(&pids, &tgid))
		__sync_fetch_and_add(&filter_gen, 1);
	return 0;
}

/* a comm changes at exec: announce it again so reports name the new program */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct kms_stage *s = stage_get();

	if (!s || s->busy || (filter_pids && !pid_ok(s, tgid)))
		return 0;
	s->busy = 1;
	stage_room(s, 1);
	meta_task(stage_slot(s), tgid, order_key());
	s->last_pid = tgid;
	stage_done(s);
	return 0;
}

/*
 * The witness of softirqs no handler saw (docs/detectors.md, "Known blind
 * spots"). The kernel counts each softirq run in the CPU's kstat.softirqs[]
 * just before the run's softirq_entry event, and softirqs on one CPU do not
 * nest, so between two runs of this handler on a CPU the sum moves by one
 * unless a run went by without it. A kernel may run a tracepoint without
 * its BPF programs in some task's context and count no miss (the 6.18 host
 * does so for the sandbox agent's threads): a free in such a softirq (an
 * RCU callback, a block I/O completion) is never seen, so every object
 * allocated before one is unconfirmed (check_losses() in src/collector.c).
 * The sum is modulo 2^32, as the kernel's per-vector counters are.
 */
SEC("tp_btf/softirq_entry")
int BPF_PROG(see_softirq, unsigned int vec)
{
	struct kms_stage *s = stage_get();
	__u32 n[KMS_NR_SOFTIRQS], sum = 0;
	__u64 base;

	if (!s || !pcpu_sirq_off)
		return 0;
	base = pcpu_base(s);
	if (!base || bpf_probe_read_kernel(n, sizeof(n), (void *)(base + pcpu_sirq_off)))
		return 0;
	for (int i = 0; i < KMS_NR_SOFTIRQS; i++)
		sum += n[i];
	if (s->softirqs && sum - s->softirqs > 1 && *(volatile __u32 *)&armed)
		cnt_add(KMS_CNT_SOFTIRQ_UNSEEN, sum - s->softirqs - 1);
	s->softirqs = sum;
	return 0;
}

/* the thread ids of tasks in which no handler ran (see_switch()), the first ones */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KMS_UNSEEN_TASKS);
	__type(key, __u32);
	__type(value, __u8);
} unseen_tasks SEC(".maps");

/*
 * The witness of task runs no handler saw, the process-context side of
 * see_softirq(). Each CPU's sched_switch events chain: the task one switches
 * in is the next one's prev. A task in whose context the kernel runs no
 * handler breaks the chain: its switch in is seen, its switch out is not, and
 * the next switch seen has another prev. What it ran in between (a read of
 * a pipe a traced command wrote, freeing its pages; a reaped child's task)
 * is not seen, so every object allocated before is unconfirmed.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(see_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct kms_stage *s = stage_get();
	__u32 hidden;
	__u8 one = 1;

	if (!s)
		return 0;
	if (s->task_in && s->task_in != (__u32)prev->pid + 1 && *(volatile __u32 *)&armed) {
		cnt_add(KMS_CNT_TASK_UNSEEN, 1);
		hidden = s->task_in - 1;
		bpf_map_update_elem(&unseen_tasks, &hidden, &one, BPF_NOEXIST);
	}
	s->task_in = (__u32)next->pid + 1;
	return 0;
}

#include "funcprobe.bpf.h"
#include "user.bpf.h"
