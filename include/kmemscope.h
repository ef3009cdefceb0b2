/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one contract between bpf/ and src/: every record the BPF side emits.
 * Fixed-width fields, explicit padding, a version number. Trace files store
 * these records as they are, so any change here bumps KMS_ABI_VERSION.
 */
#ifndef KMEMSCOPE_H
#define KMEMSCOPE_H

#define KMS_ABI_VERSION 3

/* records staged per CPU before one bpf_ringbuf_output() ships them */
#define KMS_BATCH 128
#define KMS_COMM_LEN 16
#define KMS_NAME_LEN 32
#define KMS_MAX_STACK 32
/*
 * The per-site stack cache (leaks): slots per CPU, and how many reuses of a
 * learnt stack id come between two full captures that check it.
 */
#define KMS_STACK_SLOTS 512
#define KMS_STACK_CHECK 64

/* which stacks the BPF stack cache holds (bpf/stage.bpf.h stack_of()) */
enum kms_stack_cache {
	KMS_STACK_CACHE_NONE = 0,	/* none: one capture per stack */
	KMS_STACK_CACHE_SITELESS,	/* page, vmalloc and dma events' (stat: to name their site) */
	KMS_STACK_CACHE_ALL,		/* and those of events with a call site (leaks) */
};

enum kms_family {
	KMS_FAM_KMALLOC = 0,
	KMS_FAM_CACHE,
	KMS_FAM_PAGE,
	KMS_FAM_VMALLOC,
	KMS_FAM_DMA,
	KMS_FAM_PERCPU,
	KMS_FAM_USER,		/* the C library's malloc family, through uprobes (--user) */
	KMS_FAM_UMAP,		/* the process's mmap/munmap/mremap/brk (--user) */
	KMS_FAM_MAX,
};

enum kms_ev_type {
	KMS_EV_NONE = 0,
	KMS_EV_KMALLOC,		/* kmem:kmalloc */
	KMS_EV_KFREE,		/* kmem:kfree */
	KMS_EV_CACHE_ALLOC,	/* kmem:kmem_cache_alloc; obj = struct kmem_cache * */
	KMS_EV_CACHE_FREE,	/* kmem:kmem_cache_free; obj = struct kmem_cache * */
	KMS_EV_PAGE_ALLOC,	/* kmem:mm_page_alloc; ptr = page frame key, order */
	KMS_EV_PAGE_FREE,	/* kmem:mm_page_free */
	KMS_EV_PAGE_FREE_BATCHED, /* kmem:mm_page_free_batched (order 0) */
	KMS_EV_VMALLOC,		/* vmalloc:alloc_vmap_area or __vmalloc_node_range return */
	KMS_EV_VFREE,		/* vmalloc:free_vmap_area_noflush or vfree() */
	KMS_EV_DMA_ALLOC,	/* dma:dma_alloc* or dma_alloc_attrs return; obj = device */
	KMS_EV_DMA_FREE,	/* dma:dma_free* or dma_free_attrs */
	KMS_EV_PERCPU_ALLOC,	/* percpu:percpu_alloc_percpu */
	KMS_EV_PERCPU_FREE,	/* percpu:percpu_free_percpu */
	KMS_EV_ALLOC_FAIL,	/* an allocation that returned NULL; family in ->order */
	/*
	 * Deferred frees: no per-object tracepoint fires for them, so they come
	 * from function probes where the kernel allows those (fentry, kprobes).
	 */
	KMS_EV_RCU_FREE,	/* kvfree_call_rcu(): kfree_rcu()/kvfree_rcu() hands ptr to RCU */
	KMS_EV_BULK_FREE,	/* kmem_cache_free_bulk(NULL, ...) (kfree_bulk): one per pointer */
	KMS_EV_CACHE_BULK_FREE,	/* kmem_cache_free_bulk(s, ...); obj = struct kmem_cache * */
	/*
	 * User space (--user), appended so that files of earlier versions keep
	 * their type numbers. site is the return address in the caller and
	 * stack_id a user stack; extra is the API (KMS_U_*).
	 */
	KMS_EV_UALLOC,		/* malloc() and friends returned ptr; a realloc's new block */
	KMS_EV_UFREE,		/* free(ptr); a realloc's old block (extra KMS_U_REALLOC) */
	KMS_EV_UMMAP,		/* mmap() or mremap()'s new range: ptr, bytes_req = length */
	KMS_EV_UMUNMAP,		/* munmap() or mremap()'s old range */
	KMS_EV_UBRK,		/* brk() grew the heap: ptr = old end, bytes_req = growth */
	KMS_EV_NR_EVENTS,	/* last real event; metadata types follow */
	KMS_EV_META_TASK = 64,	/* key = tgid, name = comm */
	KMS_EV_META_CACHE,	/* key = struct kmem_cache *, name, a = object_size, b = size */
	KMS_EV_META_DEVICE,	/* key = struct device *, name = dev_name() */
	/*
	 * Made by the collector, not BPF: records of the families in key (bit
	 * per KMS_FAM_*) may have been lost before this point of the stream.
	 */
	KMS_EV_META_LOSS,
};

/* kms_event.ctx: what the program knew about the context it ran in */
#define KMS_CTX_KNOWN		0x01	/* ->pc holds the raw preempt_count (context capture) */
#define KMS_CTX_SELF		0x02	/* a free by kmemscope itself (with KMS_CTX_OUTSIDE) */
/*
 * A user free made after the thread's own code ended: glibc's start_thread
 * (and exit()) had called __call_tls_dtors. There glibc releases its thread
 * cache (tcache): blocks the program freed into it, and the cache itself,
 * which it allocated without going through malloc. A bit that was always 0
 * before: files of the same ABI version read as they did.
 */
#define KMS_CTX_UEXIT		0x04
/*
 * A user stack taken without its first frame, the call site (->site): the
 * whole one's bucket in the stack map held another stack. Set by BPF; the
 * collector gives the record the whole stack under an id of its own and
 * clears it, so no file holds it.
 */
#define KMS_CTX_USKIP		0x08
#define KMS_CTX_RCU_DONE	0x20	/* set by user space, not BPF: the real free of an
					 * object already handed to RCU (KMS_EV_RCU_FREE) */
#define KMS_CTX_OUTSIDE		0x40	/* a free by a process outside the pid filter */
#define KMS_CTX_NESTED		0x80	/* emitted while another record was being staged */

/* kms_event.extra bits */
#define KMS_X_FAILED		0x01	/* vmalloc area allocation failed */
#define KMS_X_ATOMIC		0x02	/* percpu is_atomic */
#define KMS_X_RESERVED		0x04	/* percpu reserved chunk */
#define KMS_X_NESTED		0x08	/* vmalloc made inside another vmalloc (its page array) */
#define KMS_X_MAPPING		0x10	/* set by user space: a vmap area vmalloc did not make
					 * (ioremap, vmap, vm_map_ram); its free is found by address */

/*
 * kms_event.gfp of an allocation whose attach point carries no GFP (the
 * vmap-area tracepoint): reports print "unknown". All ones, because 0 is a
 * GFP a caller can pass.
 */
#define KMS_GFP_UNKNOWN		0xffffffffU

/*
 * Address ranges of allocator wrappers (mempool, ioremap, ...; src/frames.c)
 * BPF is given: with stacks, an allocation whose reported call site falls in
 * one gets a stack, so the site becomes the wrapper's caller; and a large
 * kmalloc event reported from one may be the kernel's first of two
 * (bpf/kmemscope.bpf.c: kmalloc_first()).
 */
#define KMS_WRAP_MAX		256
/*
 * ... and which pages they lie in, as a bitmap indexed by page number modulo
 * its size: a site whose bit is clear is in none, without a search. 16 Ki
 * bits cover 64 MiB of kernel text with no two pages sharing a bit.
 */
#define KMS_WRAP_PAGE_SHIFT	12
#define KMS_WRAP_PAGES		16384

/* kms_event.extra of user events: which C library function */
enum kms_user_api {
	KMS_U_MALLOC = 0,
	KMS_U_CALLOC,
	KMS_U_REALLOC,
	KMS_U_REALLOCARRAY,
	KMS_U_POSIX_MEMALIGN,
	KMS_U_ALIGNED_ALLOC,
	KMS_U_MEMALIGN,
	KMS_U_VALLOC,
	KMS_U_PVALLOC,
	KMS_U_FREE,
	KMS_U_MMAP,
	KMS_U_MUNMAP,
	KMS_U_MREMAP,
	KMS_U_BRK,
	KMS_U_NR,
};

/* --user: why the BPF side stopped a process (the ustopped map, src/user_proc.c) */
enum kms_user_stop {
	U_STOP_FORK = 1,	/* a new process, at its return from fork */
	U_STOP_LOADER,		/* an exec'd process, at its loader's announcement */
};

/* kms_event.obj of a nested vmalloc, as the aggregator keys it: no real pointer is 1 */
#define KMS_OBJ_NESTED		1ULL

/* One allocator event. 64 bytes, one cache line. */
struct kms_event {
	__u8 type;		/* enum kms_ev_type */
	__u8 ctx;		/* KMS_CTX_* */
	__u8 order;		/* page order; family for KMS_EV_ALLOC_FAIL */
	__u8 extra;		/* KMS_X_*; migratetype for page events */
	__s16 node;		/* requested NUMA node, else the CPU's node */
	__u16 cpu;
	__u64 ts;		/* from BPF: the order key (see KMS_BATCH_SEQ); after the
				 * collector: CLOCK_MONOTONIC ns */
	__u64 ptr;		/* object address; page frame key for page events */
	__u64 site;		/* return address in the caller, 0 if unknown */
	__u64 obj;		/* kmem_cache or device pointer, 0 otherwise */
	__u32 bytes_req;
	__u32 bytes_alloc;
	__u32 gfp;		/* raw gfp_t of the running kernel, or KMS_GFP_UNKNOWN */
	__u32 pid;		/* tgid */
	__s32 stack_id;		/* stack map id, <0: none (-errno if capture failed) */
	__u32 pc;		/* raw preempt_count if KMS_CTX_KNOWN, tracepoint's +1 included */
};

/* Metadata record, same size and type offset as kms_event. */
struct kms_meta {
	__u8 type;		/* KMS_EV_META_* */
	__u8 pad0;
	__u16 cpu;
	__u32 flags;		/* KMS_META_*: set by the collector, 0 from BPF */
	__u64 ts;
	__u64 key;
	__u32 a;
	__u32 b;
	char name[KMS_NAME_LEN];
};

/* kms_meta.flags of a META_CACHE record */
#define KMS_META_RECLAIMABLE	0x1	/* a reclaimable cache (SLAB_RECLAIM_ACCOUNT) */

/* kms_batch.flags */
#define KMS_BATCH_NESTED	0x1	/* a direct record (struct kms_direct): no watermark */
#define KMS_BATCH_FORCED	0x2	/* flushed by the collector's flush program */
#define KMS_BATCH_SEQ		0x4	/* order keys are a global sequence, not ns */

/*
 * What one ring-buffer record carries: up to KMS_BATCH records staged on one
 * CPU, in order. Records carry an order key: bpf_ktime_get_ns(), or (with
 * KMS_BATCH_SEQ) a number from one global counter, which costs ~4 ns instead
 * of ~29 ns per event here but bounces a cache line between busy CPUs.
 * flush_key says that every staged record of this CPU with a smaller key has
 * been shipped (in this batch or an earlier one): no flush comes between a
 * handler taking its key and staging its record. flush_ts is the time of the
 * flush, which in SEQ mode dates the batch's records. Direct records
 * (KMS_BATCH_NESTED) are not staged; see merge.h for why they are safe.
 */
struct kms_batch {
	__u32 cpu;
	__u16 count;
	__u16 flags;
	__u64 flush_ts;
	__u64 flush_key;
	struct kms_event ev[KMS_BATCH];
};

/* a direct record: a batch of one, shipped on its own (KMS_BATCH_NESTED) */
struct kms_direct {
	__u32 cpu;
	__u16 count;
	__u16 flags;
	__u64 flush_ts;
	__u64 flush_key;
	struct kms_event ev;
};

/* caches and devices each CPU remembers having announced */
#define KMS_NR_SEEN 64

/*
 * The per-CPU stage (BPF map "stage"): where records wait for their batch,
 * and the per-CPU state of the handlers. The collector reads 'filtered'.
 * Not stored in trace files, so not covered by KMS_ABI_VERSION.
 */
struct kms_stage {
	__u32 busy;		/* a handler on this CPU is staging */
	__u32 last_pid;		/* tgid whose comm was last announced */
	__u32 filter_pid;	/* last pid-filter answer: for this tgid ... */
	__u32 filter_ok;	/* ... this */
	__u64 filtered;		/* events dropped by the pid filter */
	__u32 filter_gen;	/* filter_gen the cached answer belongs to */
	__u32 softirqs;		/* the softirq witness: kstat's sum at its last run */
	__u64 pcpu_base;	/* this CPU's per-CPU area (context capture), 0 = unknown */
	/*
	 * a staged large kmalloc the kernel may trace a second time
	 * (bpf/kmemscope.bpf.c: kmalloc_first()): its order key (0: none),
	 * its call site inside the allocator, the thread that made it, its
	 * slot in the stage, and when it was held (bpf_ktime_get_ns())
	 */
	__u64 twice_key;
	__u64 twice_at;
	__u64 twice_site;
	__u32 twice_tid;
	__u32 twice_idx;
	__u32 task_in;		/* the task witness: pid + 1 of the task last switched in, 0: none */
	__u32 pad;
	__u64 rescue_tok[4];	/* rescue: the last event per context level its handler saw */
	__u64 seen[KMS_NR_SEEN];	/* caches and devices announced from this CPU */
	struct kms_batch b;
};

/* slot indices are masked with these: powers of two only */
_Static_assert((KMS_BATCH & (KMS_BATCH - 1)) == 0, "KMS_BATCH must be a power of two");
_Static_assert(KMS_BATCH <= 0xffff, "kms_batch.count is 16 bits");
_Static_assert((KMS_NR_SEEN & (KMS_NR_SEEN - 1)) == 0, "KMS_NR_SEEN must be a power of two");
_Static_assert((KMS_STACK_SLOTS & (KMS_STACK_SLOTS - 1)) == 0,
	       "KMS_STACK_SLOTS must be a power of two");
_Static_assert(sizeof(struct kms_event) == 64, "kms_event is one cache line");
_Static_assert(sizeof(struct kms_meta) == sizeof(struct kms_event),
	       "metadata records share the event slots");
_Static_assert(__builtin_offsetof(struct kms_direct, ev) ==
	       __builtin_offsetof(struct kms_batch, ev), "a direct record is a batch of one");

/* distinct tasks the task witness names (see_switch() in bpf/) */
#define KMS_UNSEEN_TASKS 64

/*
 * preempt_count()'s layout (include/linux/preempt.h), the same on every arch:
 * the handlers tell interrupt levels apart with it (rescue), the collector
 * classifies a record's context (src/detect.h)
 */
#define KMS_PC_PREEMPT		0x000000ffU
#define KMS_PC_SOFTIRQ		0x0000ff00U
#define KMS_PC_SOFTIRQ_SERVING	0x00000100U
#define KMS_PC_HARDIRQ		0x000f0000U
#define KMS_PC_NMI		0x00f00000U

/* softirq vectors in kstat.softirqs[] (the plan checks the kernel's BTF) */
#define KMS_NR_SOFTIRQS 10

/* per-CPU counters, summed by the collector (index into the counters map) */
enum kms_counter {
	KMS_CNT_LOST = 0,	/* records lost: ring buffer full */
	KMS_CNT_LOST_NESTED,	/* direct records (nested, fentry/fexit) lost: ring full */
	KMS_CNT_STACK_FAIL,	/* stack capture failed (table full or error) */
	KMS_CNT_FILTERED,	/* events dropped by the pid filter in fentry/fexit handlers
				 * (the staged handlers count in the stage) */
	KMS_CNT_PENDING_LOST,	/* function-return probes with no entry seen */
	KMS_CNT_RESCUED,	/* recursion misses of an allocation handler caught by its shadow */
	KMS_CNT_BULK_LOST,	/* pointers of a bulk free not recorded (past the bound, unreadable) */
	KMS_CNT_SELF,		/* kmemscope's own allocations, left out (self_tgid) */
	KMS_CNT_KMALLOC_TWICE,	/* second kmem:kmalloc of one large kmalloc(), dropped */
	KMS_CNT_SOFTIRQ_UNSEEN,	/* softirq runs no handler saw (see_softirq()) */
	KMS_CNT_TASK_UNSEEN,	/* task runs in which no handler ran (see_switch()) */
	KMS_CNT_RESCUED_FREE,	/* ... of a free handler (collector.c, check_losses()) */
	KMS_CNT_NR,
};

#endif /* KMEMSCOPE_H */
