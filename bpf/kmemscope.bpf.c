/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope BPF side: one small handler per allocator event, several attach
 * flavours per event (tracepoint first, then fentry/fexit, then kprobes). The
 * collector probes which flavour works on the running kernel and loads only
 * those (see src/plan.c).
 *
 * Records are staged per CPU and shipped KMS_BATCH at a time with one
 * bpf_ringbuf_output(..., BPF_RB_NO_WAKEUP): a reservation and a wakeup per
 * event cost more than the event itself. Two kinds of record go out
 * directly, as a batch of one flagged KMS_BATCH_NESTED: one made while
 * another is being staged on the same CPU (an interrupt during a handler),
 * and every record of an fentry/fexit handler, which runs preemptible and
 * so must not hold the stage. The collector merges per-CPU batches by order
 * key (a global sequence or the time), and runs flush_stage on a CPU whose
 * stage has gone quiet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kmemscope.h"

#ifndef barrier
#define barrier() asm volatile("" ::: "memory")
#endif

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

char LICENSE[] SEC("license") = "GPL";

/* settings, written by the collector between open and load */
const volatile bool filter_pids = false;	/* only tgids in the pids map */
const volatile __u64 stack_types = 0;		/* bit (1 << KMS_EV_*): capture a stack */
const volatile bool use_seq = false;		/* order by a global counter, not ktime */
const volatile bool rescue = false;		/* shadow programs catch recursion misses */

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

/* kprobe/kretprobe pairing: what the entry saw */
struct pending {
	__u64 size;
	__u64 gfp;
	__u64 site;
	__u64 obj;
	__u64 nested;	/* entered while an outer call of the same kind was in progress */
};

enum { PEND_VMALLOC = 1, PEND_DMA = 2 };

static __always_inline __u64 pend_key(int kind)
{
	return (__u32)bpf_get_current_pid_tgid() | ((__u64)kind << 32);
}

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

/* atomic: fentry/fexit handlers can be preempted by another task's handler */
static __always_inline void cnt_add(__u32 idx, __u64 v)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		__sync_fetch_and_add(c, v);
}

static __always_inline struct kms_stage *stage_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stage, &zero);
}

/*
 * Ship the stage. Called only with s->busy held by the caller and never
 * between taking an order key and staging its record: flush_key promises
 * that nothing older is left on this CPU.
 */
static __noinline void flush(struct kms_stage *s, __u16 flags)
{
	__u32 n = s->b.count;
	__u64 size;

	/* keep the bound where older verifiers (6.1) can see it */
	barrier_var(n);
	if (n > KMS_BATCH)
		n = KMS_BATCH;
	s->b.cpu = bpf_get_smp_processor_id();
	s->b.flags = flags | (use_seq ? KMS_BATCH_SEQ : 0);
	s->b.flush_ts = bpf_ktime_get_ns();
	s->b.flush_key = use_seq ? *(volatile __u64 *)&seq_counter : s->b.flush_ts;
	size = offsetof(struct kms_batch, ev) + (__u64)n * sizeof(struct kms_event);
	barrier_var(size);
	if (size > sizeof(s->b))
		size = sizeof(s->b);
	if (bpf_ringbuf_output(&rb, &s->b, size, BPF_RB_NO_WAKEUP))
		cnt_add(KMS_CNT_LOST, n);
	s->b.count = 0;
}

/*
 * Make room for n records before an order key is taken: once a handler holds
 * a key, no flush may come before its records are staged, or the batch would
 * promise (flush_key) that nothing older is left while one still is.
 */
static __always_inline void stage_room(struct kms_stage *s, __u32 n)
{
	if (s->b.count + n > KMS_BATCH)
		flush(s, 0);
}

/* the next stage slot, counted at once; stage_room() made sure it is free */
static __always_inline void *stage_slot(struct kms_stage *s)
{
	__u32 i = s->b.count;

	s->b.count = i + 1;
	return &s->b.ev[i & (KMS_BATCH - 1)];
}

/* a handler is done with the stage: ship it if full, let others in */
static __always_inline void stage_done(struct kms_stage *s)
{
	if (s->b.count >= KMS_BATCH)
		flush(s, 0);
	s->busy = 0;
}

static __always_inline __u64 order_key(void)
{
	return use_seq ? __sync_fetch_and_add(&seq_counter, 1) : bpf_ktime_get_ns();
}

/*
 * A direct record is reserved in the ring before its order key is taken.
 * The reader stops at a reserved record until it is submitted, and any batch
 * whose flush_key passes this key is reserved after it, so it is read after
 * it: the merge never delivers past a direct record still in the making,
 * however long its handler is preempted. NULL if the ring is full.
 */
static __always_inline struct kms_direct *direct_new(void)
{
	struct kms_direct *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);

	if (!r) {
		cnt_add(KMS_CNT_LOST_NESTED, 1);
		return NULL;
	}
	r->cpu = bpf_get_smp_processor_id();
	r->count = 1;
	r->flags = KMS_BATCH_NESTED | (use_seq ? KMS_BATCH_SEQ : 0);
	return r;
}

static __always_inline void direct_ship(struct kms_direct *r)
{
	r->flush_ts = bpf_ktime_get_ns();
	r->flush_key = r->ev.ts;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static __always_inline void meta_task(struct kms_meta *m, __u32 tgid, __u64 ts)
{
	m->type = KMS_EV_META_TASK;
	m->pad0 = 0;
	m->cpu = 0;
	m->flags = 0;
	m->ts = ts;
	m->key = tgid;
	m->a = 0;
	m->b = 0;
	bpf_get_current_comm(m->name, sizeof(m->name));
}

/* name a cache or device (obj) for the events of type that refer to it */
static __always_inline void meta_obj(struct kms_meta *m, __u8 type, __u64 obj, __u64 ts)
{
	m->pad0 = 0;
	m->cpu = 0;
	m->flags = 0;
	m->ts = ts;
	m->key = obj;
	/* the slot holds an older record: no stale bytes after the name */
	__builtin_memset(m->name, 0, sizeof(m->name));
	if (type == KMS_EV_CACHE_ALLOC || type == KMS_EV_CACHE_FREE ||
	    type == KMS_EV_CACHE_BULK_FREE) {
		struct kmem_cache *c = (void *)obj;

		m->type = KMS_EV_META_CACHE;
		m->a = BPF_CORE_READ(c, object_size);
		m->b = BPF_CORE_READ(c, size);
		bpf_probe_read_kernel_str(m->name, sizeof(m->name), BPF_CORE_READ(c, name));
	} else {
		struct device *d = (void *)obj;

		m->type = KMS_EV_META_DEVICE;
		m->a = 0;
		m->b = 0;
		bpf_probe_read_kernel_str(m->name, sizeof(m->name), BPF_CORE_READ(d, kobj.name));
	}
}

/* where this CPU remembers having named obj */
static __always_inline __u32 seen_slot(__u64 obj)
{
	return ((obj >> 6) ^ (obj >> 12)) & (KMS_NR_SEEN - 1);
}

/* a metadata record shipped directly; false if the ring was full */
static __always_inline bool direct_meta(__u8 type, __u32 tgid, __u64 obj)
{
	struct kms_direct *r = direct_new();

	if (!r)
		return false;
	if (obj)
		meta_obj((void *)&r->ev, type, obj, order_key());
	else
		meta_task((void *)&r->ev, tgid, order_key());
	direct_ship(r);
	return true;
}

/* bumped by the collector when it takes a pid out of the filter */
__u32 filter_gen;

/* the pid filter, with the last answer cached per CPU: events come in runs of one task */
static __always_inline bool pid_ok(struct kms_stage *s, __u32 tgid)
{
	__u32 gen = *(volatile __u32 *)&filter_gen;

	if (s->filter_pid != tgid || s->filter_gen != gen) {
		bool ok = bpf_map_lookup_elem(&pids, &tgid) != NULL;

		/*
		 * The answer first, the key last: an interrupt landing in between
		 * must not find this tgid's key next to another tgid's answer.
		 */
		s->filter_pid = 0;
		barrier();
		s->filter_ok = ok;
		s->filter_gen = gen;
		barrier();
		s->filter_pid = tgid;
		return ok;
	}
	return s->filter_ok;
}

/*
 * ---- context capture ----
 * Whether an allocation ran with preemption disabled or in an interrupt is
 * what the atomic-context detector needs: the per-CPU preempt count. BPF can
 * reach a per-CPU variable only through its kallsyms address, and kernels
 * built without CONFIG_KALLSYMS_ALL (the 6.18 host) have none. So find this
 * CPU's per-CPU base another way: the running task's CFS runqueue is this
 * CPU's 'runqueues' instance, and its offset in the per-CPU section comes
 * from BTF (the collector passes it, and that of __preempt_count, in rodata).
 * The base is found once per CPU and kept in the stage.
 */
const volatile bool want_ctx = false;
const volatile __u64 pcpu_rq_off = 0;		/* offset of runqueues in .data..percpu */
const volatile __u64 pcpu_pc_off = 0;		/* offset of the preempt count */

static __always_inline bool type_is_free(__u8 type)
{
	return type == KMS_EV_KFREE || type == KMS_EV_CACHE_FREE || type == KMS_EV_PAGE_FREE ||
	       type == KMS_EV_PAGE_FREE_BATCHED || type == KMS_EV_VFREE ||
	       type == KMS_EV_DMA_FREE || type == KMS_EV_PERCPU_FREE ||
	       type == KMS_EV_RCU_FREE || type == KMS_EV_BULK_FREE ||
	       type == KMS_EV_CACHE_BULK_FREE;
}

static __always_inline bool type_is_alloc(__u8 type)
{
	return type == KMS_EV_KMALLOC || type == KMS_EV_CACHE_ALLOC ||
	       type == KMS_EV_PAGE_ALLOC || type == KMS_EV_VMALLOC ||
	       type == KMS_EV_DMA_ALLOC || type == KMS_EV_PERCPU_ALLOC ||
	       type == KMS_EV_ALLOC_FAIL;
}

static __always_inline void read_ctx(struct kms_stage *s, struct kms_event *e)
{
	__u32 pc;

	if (!s->pcpu_base) {
		struct task_struct *t = (void *)bpf_get_current_task();
		struct rq *rq = BPF_CORE_READ(t, se.cfs_rq, rq);

		/* an RT or idle task may point at another CPU's runqueue: check */
		if (!rq || BPF_CORE_READ(rq, cpu) != bpf_get_smp_processor_id())
			return;
		s->pcpu_base = (__u64)rq - pcpu_rq_off;
	}
	if (bpf_probe_read_kernel(&pc, sizeof(pc), (void *)(s->pcpu_base + pcpu_pc_off)))
		return;
	e->pc = pc;
	e->ctx |= KMS_CTX_KNOWN;
}

/*
 * How a handler may use the per-CPU stage, fixed per attach flavour at
 * compile time. Tracepoint and kprobe programs run with preemption off and
 * stage their records. fentry/fexit programs run with only migration off: a
 * handler preempted while holding the stage would freeze the CPU's
 * watermark, and two tasks could claim one slot, so they ship directly.
 */
enum ev_path {
	EV_STAGED,
	EV_DIRECT,
};

/* where a handler writes its record: a stage slot, or a direct record */
struct ev_slot {
	struct kms_stage *s;	/* the stage holding the record, NULL: ... */
	struct kms_direct *r;	/* ... the direct record */
	struct kms_stage *gs;	/* stage whose active bit this handler set, or NULL */
	__u32 guard;		/* the handler's event type, for its active bit */
};

/*
 * Rescue. The kernel runs one BPF program at most once per CPU at a time: an
 * interrupt that allocates or frees while a handler runs (a softirq freeing
 * RCU-deferred objects on its way out, say) finds the program busy, and the
 * event is lost as a recursion miss. With rescue on, every handler marks its
 * event type active in the stage while it runs, and a second, "shadow"
 * program on the same tracepoint handles exactly the events that arrive
 * while the mark is set. It costs one more program run per event.
 */
static __always_inline void guard_set(struct kms_stage *s, struct ev_slot *es, enum ev_path how)
{
	es->gs = NULL;
	/* shadows are tracepoint programs: nothing rescues an fentry handler */
	if (!rescue || how == EV_DIRECT || s->in_shadow || es->guard >= 32)
		return;
	s->active |= 1U << es->guard;
	es->gs = s;
}

static __always_inline void guard_clear(struct ev_slot *es)
{
	if (rescue && es->gs)
		es->gs->active &= ~(1U << (es->guard & 31));
}

/*
 * Start a record of type for obj (cache/device, 0 if none): filter, announce
 * what the record refers to, and hand back the slot with the shared fields
 * filled. NULL when the event is filtered out or cannot be shipped.
 */
static __always_inline struct kms_event *ev_begin(void *ctx, struct ev_slot *es, __u8 type,
						  __u64 obj, enum ev_path how)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct kms_stage *s = stage_get();
	struct kms_event *e;
	__u8 flags = 0;
	__u32 slot = seen_slot(obj);
	__u64 ts;

	if (!s)
		return NULL;
	guard_set(s, es, how);
	/*
	 * Frees pass the pid filter: RCU callbacks and workers free what the
	 * traced processes allocated. The collector keeps those that match.
	 * The cached answer in the stage is for handlers that cannot be
	 * preempted halfway through updating it.
	 */
	if (filter_pids && !(how == EV_DIRECT ? bpf_map_lookup_elem(&pids, &tgid) != NULL :
				pid_ok(s, tgid))) {
		if (!type_is_free(type)) {
			if (how == EV_DIRECT)
				cnt_add(KMS_CNT_FILTERED, 1);
			else
				s->filtered++;
			guard_clear(es);
			return NULL;
		}
		flags = KMS_CTX_OUTSIDE;
	}
	es->s = NULL;
	es->r = NULL;
	if (how == EV_DIRECT || s->busy) {
		/*
		 * fentry/fexit records name their task and object in direct
		 * records of their own, each with its own key, so they are
		 * delivered first; a staged handler this one interrupted
		 * rewrites last_pid or seen[] at worst: a name sent twice.
		 * Nested records go unnamed, as before: they are rare, and
		 * this code would be copied into every tracepoint program.
		 */
		if (how == EV_DIRECT) {
			if (s->last_pid != tgid && direct_meta(KMS_EV_META_TASK, tgid, 0))
				s->last_pid = tgid;
			if (obj && s->seen[slot] != obj && direct_meta(type, tgid, obj))
				s->seen[slot] = obj;
		} else {
			flags |= KMS_CTX_NESTED;
		}
		es->r = direct_new();
		if (!es->r) {
			guard_clear(es);
			return NULL;
		}
		e = &es->r->ev;
		ts = order_key();
	} else {
		bool new_task, new_obj;

		/*
		 * Busy before the key: a forced flush (flush_stage) landing
		 * in between would promise that nothing older is left here.
		 */
		s->busy = 1;
		es->s = s;
		new_task = s->last_pid != tgid;
		new_obj = obj && s->seen[slot] != obj;
		stage_room(s, 1 + new_task + new_obj);
		ts = order_key();
		if (new_task) {
			meta_task(stage_slot(s), tgid, ts);
			s->last_pid = tgid;
		}
		if (new_obj) {
			meta_obj(stage_slot(s), type, obj, ts);
			s->seen[slot] = obj;
		}
		/* counted in ev_end(), once it is complete */
		e = &s->b.ev[s->b.count & (KMS_BATCH - 1)];
	}
	e->type = type;
	e->ctx = flags;
	e->order = 0;
	e->extra = 0;
	e->node = -1;
	e->cpu = 0;
	e->ts = ts;
	e->ptr = 0;
	e->site = 0;
	e->obj = obj;
	e->bytes_req = 0;
	e->bytes_alloc = 0;
	e->gfp = 0;
	e->pid = tgid;
	e->pc = 0;
	if (want_ctx && type_is_alloc(type))
		read_ctx(s, e);
	if (stack_types & (1ULL << type))
		e->stack_id = bpf_get_stackid(ctx, &stacks, 0);
	else
		e->stack_id = -1;
	return e;
}

static __always_inline void ev_end(struct ev_slot *es, struct kms_event *e)
{
	if (e->stack_id < -1)
		cnt_add(KMS_CNT_STACK_FAIL, 1);
	/*
	 * Branch on the stage, not on the reserved record: 6.1's verifier does
	 * not know a ring-buffer record is non-NULL once checked, walks the
	 * NULL branch and finds the record unreleased there.
	 */
	if (es->s) {
		es->s->b.count++;
		stage_done(es->s);
	} else {
		direct_ship(es->r);
	}
	guard_clear(es);
}

/* the collector runs this on a CPU (BPF_F_TEST_RUN_ON_CPU) to ship a quiet stage */
SEC("raw_tp")
int flush_stage(void *ctx)
{
	struct kms_stage *s = stage_get();

	if (!s || s->busy)
		return 1;
	s->busy = 1;
	flush(s, KMS_BATCH_FORCED);
	s->busy = 0;
	return 0;
}

/* ---- handlers shared by every attach flavour ---- */

static __always_inline int on_kmalloc(void *ctx, __u64 site, __u64 ptr, __u64 req, __u64 alloc,
				      __u64 gfp, int node)
{
	struct ev_slot es = { .guard = KMS_EV_KMALLOC };
	struct kms_event *e = ev_begin(ctx, &es, ptr ? KMS_EV_KMALLOC : KMS_EV_ALLOC_FAIL, 0,
				       EV_STAGED);

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
	ev_end(&es, e);
	return 0;
}

/* frees of NULL are recorded too: they are events the kernel counts */
static __always_inline int on_free(void *ctx, __u8 type, __u64 site, __u64 ptr, __u64 obj,
				   enum ev_path how)
{
	struct ev_slot es = { .guard = type };
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
	struct ev_slot es = { .guard = KMS_EV_CACHE_ALLOC };
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

/* the running kernel's page size (sysconf(_SC_PAGESIZE)), set by the collector */
const volatile __u32 page_size = 4096;

/* struct page pointers divided by the struct size: a frame key that keeps pfn alignment */
static __always_inline __u64 page_key(__u64 page)
{
	return page / bpf_core_type_size(struct page);
}

static __always_inline int on_page_alloc(void *ctx, __u64 page, __u32 order, __u64 gfp,
					 int migratetype)
{
	struct ev_slot es = { .guard = KMS_EV_PAGE_ALLOC };
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
	struct ev_slot es = { .guard = type };
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

static __always_inline int on_vmalloc(void *ctx, __u64 site, __u64 addr, __u64 size, __u64 gfp,
				      bool failed, bool nested, enum ev_path how)
{
	struct ev_slot es = { .guard = KMS_EV_VMALLOC };
	struct kms_event *e = ev_begin(ctx, &es, failed ? KMS_EV_ALLOC_FAIL : KMS_EV_VMALLOC, 0,
				       how);

	if (!e)
		return 0;
	e->site = site;
	e->ptr = addr;
	e->bytes_req = e->bytes_alloc = size;
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
	struct ev_slot es = { .guard = KMS_EV_DMA_ALLOC };
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
	struct ev_slot es = { .guard = KMS_EV_PERCPU_ALLOC };
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
	return on_kmalloc(ctx, site, ptr_val(ptr), req, alloc, gfp, node);)

TP_PAIR(kfree, A(unsigned long site, const void *ptr),
	return on_free(ctx, KMS_EV_KFREE, site, ptr_val(ptr), 0, EV_STAGED);)

TP_RAW(kmem_cache_alloc, A(unsigned long site, const void *ptr, struct kmem_cache *s, gfp_t gfp,
			    int node),
	return on_cache_alloc(ctx, site, ptr_val(ptr), ptr_val(s), gfp, node);)

TP_RAW(kmem_cache_free, A(unsigned long site, const void *ptr, const struct kmem_cache *s),
	return on_free(ctx, KMS_EV_CACHE_FREE, site, ptr_val(ptr), ptr_val(s), EV_STAGED);)

TP_RAW(mm_page_alloc, A(struct page *page, unsigned int order, gfp_t gfp, int migratetype),
	return on_page_alloc(ctx, ptr_val(page), order, gfp, migratetype);)

TP_RAW(mm_page_free, A(struct page *page, unsigned int order),
	return on_page_free(ctx, KMS_EV_PAGE_FREE, ptr_val(page), order);)

TP_RAW(mm_page_free_batched, A(struct page *page),
	return on_page_free(ctx, KMS_EV_PAGE_FREE_BATCHED, ptr_val(page), 0);)

TP_PAIR(alloc_vmap_area, A(unsigned long addr, unsigned long size, unsigned long align,
			   unsigned long vstart, unsigned long vend, int failed),
	return on_vmalloc(ctx, 0, addr, size, 0, failed, false, EV_STAGED);)

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
	/* reserved, is_atomic, size, align, base, off, ptr */
	return on_percpu_alloc(ctx, 0, ctx[6], ctx[2], 0, 0, ctx[1], ctx[0]);
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

/* rescue: shadows of the hot tracepoints (see guard_set()) */
#define SHADOW(name, guard, call)						\
	SEC("raw_tp/" #name) int sh_##name(__u64 *ctx)				\
	{									\
		struct kms_stage *s = stage_get();					\
		int r;								\
										\
		if (!s || !(s->active & (1U << (guard))))			\
			return 0;						\
		s->in_shadow++;							\
		cnt_add(KMS_CNT_RESCUED, 1);					\
		r = call;							\
		s->in_shadow--;							\
		return r;							\
	}

SHADOW(kmalloc, KMS_EV_KMALLOC,
       on_kmalloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3], ctx[4], (int)ctx[5]))
SHADOW(kfree, KMS_EV_KFREE, on_free(ctx, KMS_EV_KFREE, ctx[0], ctx[1], 0, EV_STAGED))
SHADOW(kmem_cache_alloc, KMS_EV_CACHE_ALLOC,
       on_cache_alloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3], (int)ctx[4]))
SHADOW(kmem_cache_free, KMS_EV_CACHE_FREE,
       on_free(ctx, KMS_EV_CACHE_FREE, ctx[0], ctx[1], ctx[2], EV_STAGED))
SHADOW(mm_page_alloc, KMS_EV_PAGE_ALLOC, on_page_alloc(ctx, ctx[0], ctx[1], ctx[2], ctx[3]))
SHADOW(mm_page_free, KMS_EV_PAGE_FREE, on_page_free(ctx, KMS_EV_PAGE_FREE, ctx[0], ctx[1]))
SHADOW(mm_page_free_batched, KMS_EV_PAGE_FREE_BATCHED,
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
 * ---- function probes, for kernels without the vmalloc:/dma: tracepoints ----
 * fexit sees arguments and return value in one program. kprobe + kretprobe
 * pair by thread id through the pending map. The collector sets the target
 * (plain or _noprof name) before load or at attach.
 */
SEC("fexit/__vmalloc_node_range")
int BPF_PROG(fx_vmalloc)
{
	__u64 size = 0, gfp = 0, caller = 0, ret = 0;

	/* typed pointer arguments cannot be turned into numbers: read them raw */
	bpf_get_func_arg(ctx, 0, &size);
	bpf_get_func_arg(ctx, 4, &gfp);
	bpf_get_func_arg(ctx, 8, &caller);
	bpf_get_func_ret(ctx, &ret);
	return on_vmalloc(ctx, caller, ret, size, gfp, !ret, false, EV_DIRECT);
}

SEC("fentry/vfree")
int BPF_PROG(fe_vfree)
{
	__u64 addr = 0;

	bpf_get_func_arg(ctx, 0, &addr);
	return on_free(ctx, KMS_EV_VFREE, 0, addr, 0, EV_DIRECT);
}

SEC("fexit/dma_alloc_attrs")
int BPF_PROG(fx_dma_alloc)
{
	__u64 dev = 0, size = 0, gfp = 0, ret = 0;

	bpf_get_func_arg(ctx, 0, &dev);
	bpf_get_func_arg(ctx, 1, &size);
	bpf_get_func_arg(ctx, 3, &gfp);
	bpf_get_func_ret(ctx, &ret);
	return on_dma_alloc(ctx, 0, dev, ret, size, gfp, EV_DIRECT);
}

SEC("fentry/dma_free_attrs")
int BPF_PROG(fe_dma_free)
{
	__u64 dev = 0, addr = 0;

	bpf_get_func_arg(ctx, 0, &dev);
	bpf_get_func_arg(ctx, 2, &addr);
	return on_free(ctx, KMS_EV_DMA_FREE, 0, addr, dev, EV_DIRECT);
}

static __always_inline __u64 entry_ret_addr(struct pt_regs *regs)
{
	__u64 ra = 0;

	bpf_probe_read_kernel(&ra, sizeof(ra), (void *)PT_REGS_SP(regs));
	return ra;
}

/*
 * kprobe/kretprobe pairs keep what each entry saw on a small per-thread stack:
 * these functions nest (vmalloc of a large area vmallocs its page array).
 */
#define PEND_DEPTH 4

struct pend_stack {
	__u32 depth;
	__u32 pad;
	struct pending ent[PEND_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct pend_stack);
} pend SEC(".maps");

static __always_inline void pend_push(int kind, const struct pending *p)
{
	__u64 key = pend_key(kind);
	struct pend_stack *st = bpf_map_lookup_elem(&pend, &key);
	__u32 d;

	if (!st) {
		struct pend_stack init = {};

		bpf_map_update_elem(&pend, &key, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&pend, &key);
		if (!st)
			return;
	}
	d = st->depth;
	if (d < PEND_DEPTH) {
		st->ent[d] = *p;
		st->ent[d].nested = d > 0;
	}
	st->depth = d + 1;
}

static __always_inline bool pend_pop(int kind, struct pending *out)
{
	__u64 key = pend_key(kind);
	struct pend_stack *st = bpf_map_lookup_elem(&pend, &key);
	__u32 d;

	if (!st || !st->depth) {
		cnt_add(KMS_CNT_PENDING_LOST, 1);
		return false;
	}
	d = st->depth - 1;
	st->depth = d;
	if (d >= PEND_DEPTH) {
		cnt_add(KMS_CNT_PENDING_LOST, 1);
		return false;
	}
	*out = st->ent[d];
	if (!d)
		bpf_map_delete_elem(&pend, &key);
	return true;
}

SEC("kprobe/__vmalloc_node_range")
int BPF_KPROBE(kp_vmalloc, unsigned long size, unsigned long align, unsigned long start,
	       unsigned long end, gfp_t gfp)
{
	struct pending p = {};

	/* the 9th argument, caller, is the third stack slot above the return address */
	bpf_probe_read_kernel(&p.site, sizeof(p.site), (void *)(PT_REGS_SP(ctx) + 24));
	p.size = size;
	p.gfp = gfp;
	pend_push(PEND_VMALLOC, &p);
	return 0;
}

SEC("kretprobe/__vmalloc_node_range")
int BPF_KRETPROBE(kr_vmalloc, void *ret)
{
	struct pending v;

	if (!pend_pop(PEND_VMALLOC, &v))
		return 0;
	return on_vmalloc(ctx, v.site, ptr_val(ret), v.size, v.gfp, !ret, v.nested, EV_STAGED);
}

SEC("kprobe/vfree")
int BPF_KPROBE(kp_vfree, const void *addr)
{
	return on_free(ctx, KMS_EV_VFREE, entry_ret_addr(ctx), ptr_val(addr), 0, EV_STAGED);
}

SEC("kprobe/dma_alloc_attrs")
int BPF_KPROBE(kp_dma_alloc, struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp)
{
	struct pending p = {};

	p.size = size;
	p.gfp = gfp;
	p.obj = ptr_val(dev);
	pend_push(PEND_DMA, &p);
	return 0;
}

/*
 * The return address on the stack is the rethook trampoline by the time a
 * kprobe on the same function runs; in the return probe, the instruction
 * pointer is the real return address into the caller.
 */
SEC("kretprobe/dma_alloc_attrs")
int BPF_KRETPROBE(kr_dma_alloc, void *ret)
{
	struct pending v;

	if (!pend_pop(PEND_DMA, &v))
		return 0;
	return on_dma_alloc(ctx, PT_REGS_IP(ctx), v.obj, ptr_val(ret), v.size, v.gfp, EV_STAGED);
}

SEC("kprobe/dma_free_attrs")
int BPF_KPROBE(kp_dma_free, struct device *dev, size_t size, void *cpu_addr)
{
	return on_free(ctx, KMS_EV_DMA_FREE, entry_ret_addr(ctx), ptr_val(cpu_addr), ptr_val(dev),
		       EV_STAGED);
}

/*
 * ---- deferred frees: objects freed with no per-object tracepoint ----
 * kfree_rcu()/kvfree_rcu() hand the object to RCU through kvfree_call_rcu(),
 * and the RCU worker frees it later in bulk (kfree_bulk() on 6.1). Both
 * points are functions: fentry or kprobes only, so nothing here runs on a
 * kernel that refuses both. Every pointer becomes one on_free() record.
 */

/*
 * kvfree_call_rcu(head, func) up to 6.1: the object is head - func (func
 * carries the offset of the rcu_head), or func itself when head is NULL
 * (one-argument kvfree_rcu()). 6.2 (04a522b7da3d, "rcu: Refactor
 * kvfree_call_rcu() and high-level helpers") passes the object: (head, ptr).
 * The collector reads which from the function's BTF prototype.
 */
const volatile bool rcu_ptr_arg = false;

static __always_inline __u64 rcu_obj(__u64 head, __u64 arg)
{
	if (rcu_ptr_arg || !head)
		return arg;
	return head - arg;
}

SEC("fentry/kvfree_call_rcu")
int BPF_PROG(fe_rcu_free)
{
	__u64 head = 0, arg = 0;

	bpf_get_func_arg(ctx, 0, &head);
	bpf_get_func_arg(ctx, 1, &arg);
	return on_free(ctx, KMS_EV_RCU_FREE, 0, rcu_obj(head, arg), 0, EV_DIRECT);
}

SEC("kprobe/kvfree_call_rcu")
int BPF_KPROBE(kp_rcu_free, void *head, void *arg)
{
	return on_free(ctx, KMS_EV_RCU_FREE, entry_ret_addr(ctx), rcu_obj((__u64)head, (__u64)arg),
		       0, EV_STAGED);
}

/*
 * kmem_cache_free_bulk(s, n, p): n pointers in p, s NULL for kfree_bulk().
 * A kfree_rcu() batch is one page of pointers (~510 on 4K pages): the bound
 * covers two. Pointers past it are not recorded, only counted.
 */
#define BULK_MAX 1024

struct bulk_ctx {
	void *ctx;
	__u64 p;
	__u64 s;
	__u64 site;
	enum ev_path how;	/* fentry: direct, kprobe: staged (see ev_begin()) */
};

static long bulk_one(__u32 i, struct bulk_ctx *b)
{
	__u64 ptr = 0;

	/* an unreadable slot is a pointer not recorded: counted like those past the bound */
	if (bpf_probe_read_kernel(&ptr, sizeof(ptr), (void *)(b->p + (__u64)i * sizeof(ptr)))) {
		cnt_add(KMS_CNT_BULK_LOST, 1);
		return 0;
	}
	on_free(b->ctx, b->s ? KMS_EV_CACHE_BULK_FREE : KMS_EV_BULK_FREE, b->site, ptr, b->s,
		b->how);
	return 0;
}

static __always_inline int bulk_free(void *ctx, __u64 s, __u64 n, __u64 p, __u64 site,
				     enum ev_path how)
{
	struct bulk_ctx b = { .ctx = ctx, .p = p, .s = s, .site = site, .how = how };

	if (n > BULK_MAX) {
		cnt_add(KMS_CNT_BULK_LOST, n - BULK_MAX);
		n = BULK_MAX;
	}
	bpf_loop(n, bulk_one, &b, 0);
	return 0;
}

SEC("fentry/kmem_cache_free_bulk")
int BPF_PROG(fe_bulk_free)
{
	__u64 s = 0, n = 0, p = 0;

	bpf_get_func_arg(ctx, 0, &s);
	bpf_get_func_arg(ctx, 1, &n);
	bpf_get_func_arg(ctx, 2, &p);
	return bulk_free(ctx, s, n, p, 0, EV_DIRECT);
}

SEC("kprobe/kmem_cache_free_bulk")
int BPF_KPROBE(kp_bulk_free, void *s, size_t n, void **p)
{
	return bulk_free(ctx, (__u64)s, n, (__u64)p, entry_ret_addr(ctx), EV_STAGED);
}
