/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-CPU staging, included by kmemscope.bpf.c (its settings and maps).
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
 *
 * Also here: the pid filter, context capture (the preempt count), and
 * ev_begin()/ev_end(), which every handler uses to write its record.
 */
#ifndef __KMS_STAGE_BPF_H
#define __KMS_STAGE_BPF_H

#ifndef barrier
#define barrier() asm volatile("" ::: "memory")
#endif

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

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
 * from BTF (the collector passes it, and that of __preempt_count, in rodata:
 * pcpu_rq_off, pcpu_pc_off). The base is found once per CPU and kept in the
 * stage; the softirq witness (see_softirq()) reads kstat through it too.
 */

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

/* this CPU's per-CPU area, 0 while not yet known */
static __always_inline __u64 pcpu_base(struct kms_stage *s)
{
	if (!s->pcpu_base) {
		struct task_struct *t = (void *)bpf_get_current_task();
		struct rq *rq = BPF_CORE_READ(t, se.cfs_rq, rq);

		/* an RT or idle task may point at another CPU's runqueue: check */
		if (!rq || BPF_CORE_READ(rq, cpu) != bpf_get_smp_processor_id())
			return 0;
		s->pcpu_base = (__u64)rq - pcpu_rq_off;
	}
	return s->pcpu_base;
}

/* this CPU's preempt count; false where it or the per-CPU area is not known */
static __always_inline bool read_pc(struct kms_stage *s, __u32 *pc)
{
	if (pcpu_pc_off < 0 || !pcpu_base(s))
		return false;
	/*
	 * A plain load where the kernel can type the address (bpf_rdonly_cast,
	 * 6.2+): a helper call costs ~10 ns per allocation here. Any struct
	 * whose first member is a 32-bit int will do; refcount_struct is in
	 * every kernel. The verifier drops the branch not taken.
	 */
	if (pc_cast) {
		struct refcount_struct *r = bpf_rdonly_cast((void *)(s->pcpu_base + pcpu_pc_off),
							    bpf_core_type_id_kernel(struct refcount_struct));

		*pc = r->refs.counter;
		return true;
	}
	return !bpf_probe_read_kernel(pc, sizeof(*pc), (void *)(s->pcpu_base + pcpu_pc_off));
}

static __always_inline void read_ctx(struct kms_stage *s, struct kms_event *e)
{
	__u32 pc;

	if (!read_pc(s, &pc))
		return;
	e->pc = pc;
	e->ctx |= KMS_CTX_KNOWN;
}

/*
 * ---- rescue ----
 * The kernel runs one BPF program at most once per CPU at a time: an
 * interrupt that allocates or frees while the program of that tracepoint
 * runs loses its event, counted as a recursion miss. The kernel counts the
 * program as running from before its first instruction to after its last,
 * and most misses land in that margin (a pending interrupt taken as the
 * tracepoint's caller turns interrupts back on), so a mark the handler
 * holds over its own instructions catches few of them. With rescue on, a
 * second "shadow" program is attached after the handler on each hot
 * tracepoint, and the kernel runs it right after the handler for every
 * event. The handler's first act is to leave a token of its event (type and
 * address) in the stage's slot for its context level; the shadow handles
 * the event when the slot holds anything else, and clears the slot.
 *
 * Why that is exact: the handler and its shadow see an event at the same
 * level, and a level does not nest in itself, so the slot holds this
 * event's token if and only if the handler ran for it, unless the shadow
 * was skipped for the level's previous event (the handler then ran for it)
 * and this one's token is the same (the same address freed twice in a
 * row). Either way the shadow never handles an event twice: what it misses
 * stays a miss, counted (collector.c, check_losses()).
 */
#define RESCUE_LEVELS 4

/* 0 task, 1 softirq, 2 hardirq, 3 NMI; -1 unknown (the shadow then keeps out) */
static __always_inline int ctx_level(struct kms_stage *s)
{
	__u32 pc;

	if (!read_pc(s, &pc))
		return -1;
	if (pc & KMS_PC_NMI)
		return 3;
	if (pc & KMS_PC_HARDIRQ)
		return 2;
	return pc & KMS_PC_SOFTIRQ_SERVING ? 1 : 0;
}

static __always_inline __u64 rescue_token(__u8 type, __u64 addr)
{
	/* an address's top byte is all ones (kernel) or zero (pfn): type never aliases it */
	return addr ^ ((__u64)(type + 1) << 56);
}

/* first thing in the handler of a tracepoint that has a shadow */
static __always_inline void rescue_mark(__u8 type, __u64 addr)
{
	struct kms_stage *s;
	int lvl;

	if (!rescue || !(s = stage_get()))
		return;
	lvl = ctx_level(s);
	if (lvl >= 0 && lvl < RESCUE_LEVELS)
		s->rescue_tok[lvl] = rescue_token(type, addr);
}

/* the shadow: did the handler miss this event? */
static __always_inline bool rescue_missed(__u8 type, __u64 addr)
{
	struct kms_stage *s = stage_get();
	bool missed;
	int lvl;

	if (!rescue || !s || !*(volatile __u32 *)&armed)
		return false;
	lvl = ctx_level(s);
	if (lvl < 0 || lvl >= RESCUE_LEVELS)
		return false;
	missed = s->rescue_tok[lvl] != rescue_token(type, addr);
	s->rescue_tok[lvl] = 0;
	return missed;
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
	EV_KPROBE,	/* staged, but ctx is the probed function's registers (stack_of()) */
	EV_DIRECT,
};

/*
 * ---- stacks ----
 * A kernel stack costs ~1 us here (bpf_get_stackid() runs the unwinder
 * through its own frames and the BPF frame before the first one it records,
 * so even 3 frames cost half of 32), a cache probe ~0.1 us. With stack_cache
 * on, a stack id is reused for the next allocation that provably has the
 * same stack from the call site on, which the handler tells without an
 * unwind by reading the task's kernel stack itself:
 *
 * - a tracepoint program's ctx is the argument array of bpf_trace_run*(), on
 *   the kernel stack of the allocation (the task's or the interrupt's), below
 *   the allocator's frame and the slot of its return address, call_site;
 * - above that slot lie the return addresses of the site's callers, each at a
 *   distance fixed by the frame of the function it returns to (the unwinder
 *   relies on the same). So one full capture (bpf_get_stack()) at a site
 *   gives where they lie (stack_learnt()); the next allocations read those
 *   slots and compare a hash of what they hold with the chain learnt. Each
 *   slot read is a return address as long as the ones below it matched, so a
 *   different caller at any depth shows as a different chain, never as
 *   stale data, down to the depth a full capture records;
 * - up to STACK_WAYS chains (callers) per site and context (the preempt
 *   count: process, softirq, locks held), each with its own stack id; one
 *   reuse in KMS_STACK_CHECK of a chain captures again and compares the
 *   frames from the site on (a __traceiter_* frame below the site, added when
 *   another tracer attaches, changes nothing the report shows): a mismatch
 *   marks the site varied, captured every time from then on, as is a site
 *   with more chains than ways or whose chain could not be found in a window
 *   of the stack (an interrupt stack whose frames go on on the task's stack,
 *   a stack deeper than the window).
 *
 * Page, vmalloc and dma events report no call site. Their stacks are keyed
 * instead by an anchor: the first frame of a full capture that lies in the
 * window, the return address into the function that fires the tracepoint
 * (__alloc_frozen_pages_noprof+0x26b on 6.18), the same for every event of
 * the type. Its slot holds every chain of the type (per context), so its
 * ways are kept by use: the least used goes (uses halve at every learning),
 * and a slot is varied only once its chains are evicted more often than
 * reused (a miss costs two captures, a varied slot one). An event whose
 * first frame is not the anchor (another path to the tracepoint) is captured
 * in full; the next capture's first frame becomes the anchor if it was the
 * odd one. Other events without a site (an allocation through a wrapper:
 * every caller its own) are always captured. Only a tracepoint handler
 * holding the stage uses the slots: it cannot be preempted, and an
 * interrupt's handler finds the stage busy and captures in full, so no slot
 * or scratch buffer is ever seen half written.
 */
#define STACK_WAYS 4			/* chains (callers) per site and context */
#define STACK_CHAIN (KMS_MAX_STACK - 1)	/* return addresses above the site */
#define STACK_WINDOW 8192		/* bytes of stack read above ctx, at most ... */
#define STACK_WORDS (STACK_WINDOW / 8)
#define STACK_FIRST (STACK_WORDS - 1)	/* ... but the last word: stack_first()'s */
#define STACK_ANCHORS 4			/* page, vmalloc, dma (stack_anchor()); a power of two */
#define STACK_EVICTIONS 512		/* then, if they outnumber reuses, a site's callers
					 * are too many to cache */

/*
 * A chain is hashed as STACK_CHAIN words whatever its length: its return
 * addresses, then the site again (a chain of n returns reads the site's slot
 * for the others), then n. The check reads one word per entry without a
 * branch: one verifier state, not one per length. A chain that ends at the
 * stack's first frame reads it from win[STACK_FIRST], where stack_find()
 * puts it.
 */
struct stack_way {
	__u64 hash;	/* of the chain above the site; 0: unused */
	__s32 id;	/* stack map id of the capture that learnt it */
	__u16 left;	/* reuses before the next full capture checks the chain */
	__u8 n;		/* return addresses in the chain */
	__u8 top;	/* the last is the stack's first frame (stack_first()) */
	__u16 base;	/* the site's slot: bytes above ctx */
	__u16 off[STACK_CHAIN];	/* where the chain's words lie: bytes above ctx */
	__u16 span;	/* bytes above ctx that hold them */
	__u16 uses;	/* reuses, halved at each learning in the slot: the least goes */
	__u16 pad[2];
};

struct stack_slot {
	__u64 site;
	__u32 pc;	/* preempt count, need-resched bit masked: the context */
	__u16 span;	/* the largest span of its ways */
	__u8 varied;	/* captured every time */
	__u8 pad;
	__u32 evicted;	/* chains that took the way of another ... */
	__u32 hits;	/* ... and reuses of its ways */
	struct stack_way way[STACK_WAYS];
};

/* per CPU, direct-mapped by site and context: a clash just evicts */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KMS_STACK_SLOTS);
	__type(key, __u32);
	__type(value, struct stack_slot);
} stack_slots SEC(".maps");

struct stack_scratch {
	__u64 ctx;			/* the program's ctx as a number */
	__u64 win[STACK_WORDS];		/* the kernel stack above it, stack_first() last */
	__u64 frames[KMS_MAX_STACK];	/* a full capture, bpf_get_stack() */
	__u64 regs;			/* the task's pt_regs as a number (stack_regs()) */
	__u64 site;			/* the site of the capture in frames, or its anchor */
	__u64 anchor[STACK_ANCHORS];	/* per event type without a site (stack_anchor()) */
	__u64 hash;			/* frames_chain(): the hash so far */
	__u32 nframes;
	__u32 site_at;			/* frames_chain(): the site's index in frames */
	__u32 wlen;			/* words of win read */
	__u32 at;			/* stack_scan(): the next frame to find ... */
	__u32 want;			/* ... up to this one */
	__u32 cur;			/* stack_rescan(): the word looked at last */
	__u32 way;			/* the way stack_verified() checks, stack_learnt() fills */
	__u32 anchored;			/* sc->site is an anchor: the index in anchor[] + 1 */
	__u32 base;			/* stack_learnt(): the site's word in win ... */
	__u32 top;			/* ... whether the chain ends at stack_first() ... */
	__u32 n;			/* ... and its length */
	__u32 pos[KMS_MAX_STACK];	/* stack_scan(): word of win each was found at */
	__u16 off[STACK_CHAIN];		/* stack_learnt(): the new way's off[] */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_scratch);
} stack_scratch SEC(".maps");

static __always_inline struct stack_scratch *stack_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stack_scratch, &zero);
}

/* direct-mapped by site and context: a clash just evicts */
static __always_inline struct stack_slot *stack_slot_get(__u64 site, __u32 pc)
{
	__u32 key = (__u32)((site ^ ((__u64)pc << 40)) * 0x9e3779b97f4a7c15ULL >> 40) &
		    (KMS_STACK_SLOTS - 1);

	return bpf_map_lookup_elem(&stack_slots, &key);
}

static __always_inline __u64 chain_mix(__u64 h, __u64 v)
{
	return (h ^ v) * 0x9e3779b97f4a7c15ULL;
}

/*
 * What the verifier must see as one unknown value: read back from the
 * scratch map. A loop that breaks out at index i, or a branch on a value,
 * leaves one verifier state per constant or range; a value used as an index
 * after that is precise, and those states cannot be pruned: the rest of the
 * function is verified once per value (32 times for the site's position in
 * a capture: 358 k instructions per handler on 6.18, a minute per run on
 * 6.1 under TCG). Loops whose exit depends on the data are bpf_loop()
 * callbacks for the same reason: verified once, not once per iteration and
 * range. Only stack_find(), run at every allocation, has a loop of its own,
 * without a branch.
 */
#define READ_BACK(x) (*(volatile typeof(x) *)&(x))

/*
 * bpf_loop() callbacks of frames_chain(): where the site is in frames[], and
 * the chain's word k (stack_way)
 */
static long site_find(__u64 i, void *unused)
{
	/* bpf_loop() passes a pointer to the stack only: find the scratch again */
	struct stack_scratch *sc = stack_scratch_get();

	if (!sc || sc->frames[i & (KMS_MAX_STACK - 1)] != sc->site)
		return !sc;
	sc->site_at = i;
	return 1;
}

static long chain_add(__u64 k, void *unused)
{
	struct stack_scratch *sc = stack_scratch_get();
	__u32 i;

	if (!sc)
		return 1;
	i = sc->site_at + 1 + k;
	sc->hash = chain_mix(sc->hash, i < sc->nframes ? sc->frames[i & (KMS_MAX_STACK - 1)] :
				       sc->site);
	return 0;
}

/*
 * The hash of a full capture's chain above sc->site (stack_way), its index
 * in sc->site_at (KMS_MAX_STACK if it is not there); 0 if it is not
 */
static __always_inline __u64 frames_chain(struct stack_scratch *sc)
{
	__u32 n = sc->nframes, j;

	sc->site_at = KMS_MAX_STACK;
	bpf_loop(n < KMS_MAX_STACK ? n : KMS_MAX_STACK, site_find, NULL, 0);
	j = READ_BACK(sc->site_at);
	if (j >= KMS_MAX_STACK || j >= n)
		return 0;
	sc->hash = 0;
	bpf_loop(STACK_CHAIN, chain_add, NULL, 0);
	return chain_mix(READ_BACK(sc->hash), n - j - 1);
}

/*
 * bpf_loop() callbacks finding where the frames of a full capture lie in win.
 * stack_scan(): frames[at..want) in that order, each at the first match
 * above the last. Then stack_rescan(): from the last of them down, each at the
 * last match below the one above it (frames[at] down to the site, sc->want
 * holding the site's index). A function's frame may hold a spilled copy of
 * its own return address (the allocator's caller address, a *_track_caller
 * wrapper's), never one of its caller's: of two matches, the higher is the
 * slot. The first pass bounds the second from below.
 */
static long stack_scan(__u64 i, void *unused)
{
	__u32 at;
	/* bpf_loop() passes a pointer to the stack only: find the scratch again */
	struct stack_scratch *sc = stack_scratch_get();

	if (!sc)
		return 1;
	at = sc->at;
	if (i >= sc->wlen || at >= sc->want || at >= KMS_MAX_STACK)
		return 1;
	if (sc->win[i & (STACK_WORDS - 1)] == sc->frames[at]) {
		sc->pos[at] = i;
		sc->at = at + 1;
	}
	return 0;
}

static long stack_rescan(__u64 i, void *unused)
{
	__u32 at, p;
	struct stack_scratch *sc = stack_scratch_get();

	if (!sc)
		return 1;
	at = sc->at;
	p = sc->cur;
	if (at < sc->want || at >= KMS_MAX_STACK || !p)
		return 1;
	sc->cur = --p;
	if (sc->win[p & (STACK_WORDS - 1)] == sc->frames[at]) {
		sc->pos[at] = p;
		sc->at = at - 1;
	}
	return 0;
}

/* read up to len bytes of stack from addr into win; the stack may end sooner */
static __always_inline __u32 stack_read(struct stack_scratch *sc, __u64 addr, __u32 len)
{
	/* a read that crosses the end of the stack fails: retry up to a page end */
	__u64 ends[3] = { addr + len, ((addr + 4095) & ~4095ULL) + 4096, (addr + 4095) & ~4095ULL };

	for (int k = 0; k < 3; k++) {
		__u64 n = ends[k] - addr;

		barrier_var(n);
		if (n > len || n > STACK_WINDOW)
			continue;
		if (n && !bpf_probe_read_kernel(sc->win, n, (void *)addr))
			return n;
	}
	return 0;
}

/*
 * The task's pt_regs, at the top of its kernel stack, as a number: a read of
 * the stack clamped there does not run off its end (a fault, expensive).
 */
static __always_inline void stack_regs(struct stack_scratch *sc)
{
	*(volatile __u64 *)&sc->regs = bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* at most len bytes from addr: those below the task's pt_regs if addr is on its stack */
static __always_inline __u32 stack_room(struct stack_scratch *sc, __u64 addr, __u32 len)
{
	/* volatile: read back as a number, not as the pointer the compiler saw stored */
	__u64 regs = *(volatile __u64 *)&sc->regs;

	return regs > addr && regs - addr < len ? regs - addr : len;
}

/*
 * The stack's first frame: the entry code's return address, in the slot just
 * below the task's pt_regs; 0 if unreadable. It is not at a fixed distance
 * from the site: the syscall entry leaves a random gap in the stack below it
 * (CONFIG_RANDOMIZE_KSTACK_OFFSET), so it is read from the top.
 */
static __always_inline __u64 stack_first(struct stack_scratch *sc)
{
	__u64 v;

	if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(*(volatile __u64 *)&sc->regs - sizeof(v))))
		return 0;
	return v;
}

/* bpf_loop() callback of stack_learnt(): where the new way's word k lies */
static long way_off(__u64 k, void *unused)
{
	struct stack_scratch *sc = stack_scratch_get();

	if (!sc || k >= STACK_CHAIN)
		return 1;
	if (k + sc->top < sc->n)	/* in the window */
		sc->off[k] = sc->pos[(sc->site_at + 1 + k) & (KMS_MAX_STACK - 1)] * 8;
	else if (k < sc->n)		/* the stack's first frame */
		sc->off[k] = STACK_FIRST * 8;
	else				/* past the chain: the site again */
		sc->off[k] = sc->base * 8;
	return 0;
}

/*
 * A full capture at sc->site gave id, and its frames are in the scratch:
 * learn where its chain lies, as a new way of the slot. Anything not found
 * marks the site varied (captured every time): correct, at the full price.
 * Global, as the two below: verified once per program, not once per handler
 * inlining it, and without stack_cache in a few instructions (6.1 verifies
 * every global function, called or not).
 */
__noinline int stack_learnt(__u32 pc, __s32 id)
{
	struct stack_scratch *sc = stack_scratch_get();
	struct stack_slot *sl;
	struct stack_way *w;
	__u32 j, span, n, wi, a;
	__u64 at, h, site;

	if (!stack_cache || !sc)
		return 0;
	h = frames_chain(sc);
	j = READ_BACK(sc->site_at);
	/*
	 * A capture that does not hold its type's anchor came another way to
	 * the tracepoint, or the anchor was learnt from such a one: this
	 * capture's anchor is the type's from now on.
	 */
	a = READ_BACK(sc->anchored);
	if (a && (!h || j >= KMS_MAX_STACK)) {
		if (sc->nframes > 1)
			sc->anchor[(a - 1) & (STACK_ANCHORS - 1)] = sc->frames[1];
		return 0;
	}
	site = sc->site;
	sl = stack_slot_get(site, pc);
	if (!sl)
		return 0;
	if (sl->site != site || sl->pc != pc) {
		__builtin_memset(sl, 0, sizeof(*sl));
		sl->site = site;
		sl->pc = pc;
	}
	if (!h || j < 1 || j >= KMS_MAX_STACK)
		goto varied;
	/*
	 * The compiler knows j < KMS_MAX_STACK from here and drops the masks
	 * of the indexes below; 6.1's verifier, which loses that bound when j
	 * is spilled, needs them.
	 */
	barrier_var(j);
	n = sc->nframes - j - 1;
	sc->n = n;
	stack_regs(sc);
	sc->top = n && sc->frames[(sc->nframes - 1) & (KMS_MAX_STACK - 1)] == stack_first(sc);
	at = READ_BACK(sc->ctx);
	sc->wlen = stack_read(sc, at, stack_room(sc, at, STACK_FIRST * 8)) / 8;
	/*
	 * The allocator's own return address lies below the site's slot: start
	 * there. An anchor is the first frame in the window: start at it.
	 */
	sc->at = j - !a;
	sc->want = sc->nframes - READ_BACK(sc->top);
	bpf_loop(sc->wlen, stack_scan, NULL, 0);
	if (sc->at != sc->want || sc->want < j + 2)
		goto varied;
	sc->at = sc->want - 2;
	sc->cur = sc->pos[(sc->want - 1) & (KMS_MAX_STACK - 1)];
	sc->want = j;
	bpf_loop(sc->wlen, stack_rescan, NULL, 0);
	if (sc->at != j - 1)
		goto varied;
	sc->want = sc->nframes - READ_BACK(sc->top);
	/*
	 * The frames below the site (the allocator's, the tracepoint's: a
	 * __traceiter_* one when another tracer attaches) may put the site's
	 * slot at another distance from ctx: each way has its own.
	 */
	sc->base = sc->pos[j & (KMS_MAX_STACK - 1)];
	/* its chain, where it was read wrong; else a free way; else the least used */
	sc->way = 0;
	for (int i = 0; i < STACK_WAYS; i++) {
		struct stack_way *v = &sl->way[i];

		if (v->hash == h && v->base == sc->base * 8) {
			sc->way = i;
			break;
		}
		if (!v->hash)
			sc->way = i + STACK_WAYS;	/* ranks above any used way */
		else if (sc->way < STACK_WAYS && v->uses < sl->way[sc->way & (STACK_WAYS - 1)].uses)
			sc->way = i;
	}
	wi = READ_BACK(sc->way) & (STACK_WAYS - 1);
	w = &sl->way[wi];
	for (int i = 0; i < STACK_WAYS; i++)
		sl->way[i].uses >>= 1;
	/*
	 * More callers than ways: the least used goes. A site whose callers keep
	 * evicting each other costs two captures per learning: past
	 * STACK_EVICTIONS, once they outnumber the reuses, it is captured every
	 * time instead.
	 */
	if (w->hash && (w->hash != h || w->base != sc->base * 8) &&
	    ++sl->evicted >= STACK_EVICTIONS && sl->evicted > sl->hits)
		goto varied;
	bpf_loop(STACK_CHAIN, way_off, NULL, 0);
	__builtin_memcpy(w->off, sc->off, sizeof(w->off));
	span = (sc->pos[(sc->want - 1) & (KMS_MAX_STACK - 1)] + 1) * 8;
	w->hash = h;
	w->id = id;
	w->n = n;
	w->top = READ_BACK(sc->top);
	w->span = span;
	w->left = KMS_STACK_CHECK - 1;
	w->base = sc->base * 8;
	/*
	 * Counted once already: at 0, a chain just learnt ties with chains no
	 * longer used (their uses halved away), and the first of the tied ways
	 * goes, so two alternating callers took that one way in turn, never
	 * reused, till the site was varied (the pipe loop's alloc_empty_file,
	 * beside chains of the exec that started the program).
	 */
	w->uses = 1;
	if (span > sl->span)
		sl->span = span;
	return 0;
varied:
	sl->varied = 1;
	return 0;
}

/* a reuse at the slot; both counts halve long before hits could wrap (a days-long serve) */
static __always_inline void slot_hit(struct stack_slot *sl)
{
	if (++sl->hits >= 1U << 31) {
		sl->hits >>= 1;
		sl->evicted >>= 1;
	}
}

/* what stack_find() asks of its caller, which holds ctx: (ids are >= 0) */
#define STACK_CAPTURE (-1)	/* capture, nothing to learn */
#define STACK_LEARN (-2)	/* capture, and learn the chain */
#define STACK_VERIFY (-3)	/* the frames, for stack_verified() to check the way hit */

/* the id the cache holds for this allocation's chain at sc->site, or what to do instead */
__noinline int stack_find(__u32 pc)
{
	struct stack_scratch *sc = stack_scratch_get();
	struct stack_slot *sl;
	__u64 at, site;
	__u32 span;

	if (!stack_cache || !sc)
		return STACK_CAPTURE;
	site = sc->site;
	sl = stack_slot_get(site, pc);
	if (!sl)
		return STACK_CAPTURE;
	if (sl->site != site || sl->pc != pc)
		return STACK_LEARN;
	if (sl->varied)
		return STACK_CAPTURE;
	at = READ_BACK(sc->ctx);
	stack_regs(sc);
	/* spans are below STACK_WINDOW (stack_learnt()): the mask is for the verifier */
	span = stack_room(sc, at, sl->span) & (STACK_WINDOW - 1);
	if (!span || bpf_probe_read_kernel(sc->win, span, (void *)at))
		return STACK_LEARN;
	for (int i = 0; i < STACK_WAYS; i++) {
		struct stack_way *w = &sl->way[i];
		__u64 h = 0;

		/* a way whose chain reaches past the stack's top is another caller's */
		if (!w->hash || w->span > span || sc->win[(w->base / 8) & (STACK_WORDS - 1)] != site)
			continue;
		/* rare enough to read again for a second way that ends there */
		if (w->top)
			sc->win[STACK_FIRST] = stack_first(sc);
		for (int k = 0; k < STACK_CHAIN; k++)
			h = chain_mix(h, sc->win[(w->off[k] / 8) & (STACK_WORDS - 1)]);
		if (chain_mix(h, w->n) != w->hash)
			continue;
		if (w->left) {
			w->left--;
			if (w->uses < 0xffff)
				w->uses++;
			slot_hit(sl);
			return w->id;
		}
		sc->way = i;
		return STACK_VERIFY;
	}
	return STACK_LEARN;
}

/* the check of way sc->way: a full capture's frames (in the scratch) from the site on */
__noinline int stack_verified(__u32 pc)
{
	struct stack_scratch *sc = stack_scratch_get();
	struct stack_slot *sl;
	struct stack_way *w;

	if (!stack_cache || !sc)
		return STACK_CAPTURE;
	sl = stack_slot_get(sc->site, pc);
	if (!sl)
		return STACK_CAPTURE;
	w = &sl->way[sc->way & (STACK_WAYS - 1)];
	if (frames_chain(sc) == w->hash) {
		w->left = KMS_STACK_CHECK - 1;
		slot_hit(sl);
		return w->id;
	}
	sl->varied = 1;
	return STACK_CAPTURE;
}

#define KMS_EEXIST 17

/*
 * A kernel stack's id. The stack map keeps one stack per hash bucket: a
 * stack whose bucket holds another fails (-EEXIST) every time it comes, for
 * the whole run (seen: all 10 order-3 pages of a QEMU scenario). A
 * tracepoint program's first frame is the tracing code's, which reports
 * leave out anyway: captured without it, the same stack hashes elsewhere
 * (its second id shows the same frames; report rows merge them). Where
 * that bucket is taken too (seen once: all 15 percpu leaks of a QEMU
 * scenario), a record that carries its call site (own_site) is captured
 * from the allocator's caller on: the frames it loses are the allocator's.
 * A function probe's stack (skip 0) starts in a trampoline, the probed
 * allocator or, for a return probe, the call site: with the site in the
 * record, it loses nothing a report needs either (seen once: all 6 vmalloc
 * leaks of a QEMU scenario, kprobe-traced); without, it is kept whole.
 */
static __always_inline __s32 stack_id(void *ctx, __u64 skip, bool own_site)
{
	__s32 r = bpf_get_stackid(ctx, &stacks, skip);

	if (r != -KMS_EEXIST || !(skip || own_site))
		return r;
	r = bpf_get_stackid(ctx, &stacks, skip + 1);
	return r == -KMS_EEXIST && own_site ? bpf_get_stackid(ctx, &stacks, skip + 2) : r;
}

/* the index + 1 in stack_scratch.anchor[] of an event type reported without a site, or 0 */
static __always_inline __u32 stack_anchor(__u8 type)
{
	switch (type) {
	case KMS_EV_PAGE_ALLOC:
		return 1;
	case KMS_EV_VMALLOC:
		return 2;
	case KMS_EV_DMA_ALLOC:
		return 3;
	default:
		return 0;
	}
}

static __always_inline __s32 stack_of(void *ctx, enum ev_path how, bool staged, __u64 site,
				      __u32 pc, __u8 type)
{
	/*
	 * A tracepoint program's stack starts with its own frame, at whichever
	 * of its calls the compiler made: skip it, or one stack gets two ids.
	 * A kprobe's starts in the probed function (a return probe's, in the
	 * caller: the site), an fentry program's in its trampoline: kept.
	 */
	__u64 skip = how == EV_STAGED ? 1 : 0;
	__u32 anchored = stack_anchor(type);
	bool own_site = site != 0;
	struct stack_scratch *sc;
	bool learn;
	long got;
	int r;

	/*
	 * stat asks only for site-less events' stacks: the cache's code is then
	 * verified in their handlers alone (start-up time), failed allocations
	 * with a call site are captured
	 */
	if (!stack_cache || !staged || how != EV_STAGED ||
	    (!anchored && (!site || stack_cache != KMS_STACK_CACHE_ALL)))
		return stack_id(ctx, skip, own_site);
	sc = stack_scratch_get();
	if (!sc)
		return stack_id(ctx, skip, own_site);
	pc &= 0x7fffffff;	/* x86's inverted need-resched bit says nothing of the context */
	/* ctx as a number: a privileged program may store a pointer in a map (CAP_PERFMON) */
	*(void *volatile *)&sc->ctx = ctx;
	sc->anchored = site ? 0 : anchored;
	if (!site)
		site = sc->anchor[(anchored - 1) & (STACK_ANCHORS - 1)];
	sc->site = site;
	/* a type's first capture on this CPU gives its anchor (stack_learnt()) */
	r = site ? stack_find(pc) : STACK_LEARN;
	if (r >= 0)
		return r;
	if (r == STACK_VERIFY) {
		got = bpf_get_stack(ctx, sc->frames, sizeof(sc->frames), skip);
		sc->nframes = got > 0 ? (__u64)got / 8 : 0;
		r = stack_verified(pc);
		return r >= 0 ? r : stack_id(ctx, skip, own_site);
	}
	learn = r == STACK_LEARN;
	r = stack_id(ctx, skip, own_site);
	/* a failed capture is not learnt: the next allocation tries again */
	if (r >= 0 && learn) {
		got = bpf_get_stack(ctx, sc->frames, sizeof(sc->frames), skip);
		sc->nframes = got > 0 ? (__u64)got / 8 : 0;
		stack_learnt(pc, r);
	}
	return r;
}

/* where a handler writes its record: a stage slot, or a direct record */
struct ev_slot {
	struct kms_stage *s;	/* the stage holding the record, NULL: ... */
	struct kms_direct *r;	/* ... the direct record */
	__u8 type;		/* the record's type (ev_begin()) */
	enum ev_path how;
	void *ctx;		/* the program's context, for the stack (ev_end()) */
	bool user;		/* a user-space event (user.bpf.h): a user stack */
	bool hold;		/* the record may take a second event's site: no flush
				 * behind it (kmalloc_first()) */
};

/*
 * Start a record of type for obj (cache/device, 0 if none): filter, announce
 * what the record refers to, and hand back the slot with the shared fields
 * filled. NULL when the event is filtered out or cannot be shipped.
 */
static __always_inline struct kms_event *ev_begin(void *ctx, struct ev_slot *es, __u8 type,
						  __u64 obj, enum ev_path how)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct kms_stage *s;
	struct kms_event *e;
	__u8 flags = 0;
	__u32 slot = seen_slot(obj);
	__u64 ts;

	/* attached by the plan's trial, not yet tracing: the stage is the collector's */
	if (!*(volatile __u32 *)&armed)
		return NULL;
	s = stage_get();
	if (!s)
		return NULL;
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
			return NULL;
		}
		flags = KMS_CTX_OUTSIDE;
	}
	/*
	 * kmemscope's own allocations (its buffers growing) are not the
	 * subject. Its frees pass, as frees from outside the pid filter do:
	 * one of them may free what a traced process allocated. An interrupt
	 * or softirq that arrives while kmemscope runs is not kmemscope's (a
	 * timer's allocations, RCU's frees): only task context is left out,
	 * and interrupts too where the preempt count cannot be read
	 * (ctx_level() -1), counted in self_excluded all the same.
	 */
	/* tgid 0 is the idle task (interrupts on an idle CPU): traced */
	if (tgid && tgid == *(volatile __u32 *)&self_tgid && ctx_level(s) <= 0) {
		if (!type_is_free(type)) {
			cnt_add(KMS_CNT_SELF, 1);
			return NULL;
		}
		flags |= KMS_CTX_OUTSIDE | KMS_CTX_SELF;
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
	e->stack_id = -1;
	if (want_ctx && type_is_alloc(type))
		read_ctx(s, e);
	es->type = type;
	es->how = how;
	es->ctx = ctx;
	return e;
}

/*
 * site lies in an allocator wrapper (wrap_lo/wrap_hi): a binary search. A
 * global function, verified once per program on its own: inlined into every
 * handler, its 2^8 paths doubled the object's verification time.
 */
__noinline int wrapper_search(__u64 site)
{
	__u32 lo = 0, hi = *(volatile __u32 *)&nr_wrap;

	if (!hi || hi > KMS_WRAP_MAX || site < wrap_lo[0])
		return false;
	for (int i = 0; i < 8 && hi - lo > 1; i++) {	/* log2(KMS_WRAP_MAX) steps */
		__u32 mid = (lo + hi) / 2;

		if (wrap_lo[mid & (KMS_WRAP_MAX - 1)] <= site)
			lo = mid;
		else
			hi = mid;
	}
	return site < wrap_hi[lo & (KMS_WRAP_MAX - 1)];
}

/*
 * Nearly every site is in no wrapper: one bit of wrap_pages answers for
 * those, and only a site sharing a page (modulo the map) with a wrapper is
 * searched. The search cost ~10 ns per allocation, the bit ~1.
 */
static __always_inline bool in_wrapper(__u64 site)
{
	__u64 page = site >> KMS_WRAP_PAGE_SHIFT;

	if (!(wrap_pages[(page / 64) & (KMS_WRAP_PAGES / 64 - 1)] & (1ULL << (page & 63))))
		return false;
	return wrapper_search(site);
}

static __always_inline void ev_end(struct ev_slot *es, struct kms_event *e)
{
	bool stack = stack_types & (1ULL << es->type);
	__u64 site = e->site;

	/*
	 * A site in a wrapper (mempool_alloc) is not the caller: the stack
	 * tells who is (user space takes a site of 0 from the stack, as for
	 * events with none), and every caller has its own, so the per-site
	 * cache is not asked.
	 */
	if (stack_types && site && type_is_alloc(es->type) && in_wrapper(site)) {
		stack = true;
		site = 0;
		e->site = 0;
	}
	/* here, once the handler has filled in the site the cache is keyed by */
	if (stack) {
		if (es->user) {
			e->stack_id = bpf_get_stackid(es->ctx, &stacks, BPF_F_USER_STACK);
			/* a collision: past its first frame (->site) the stack hashes elsewhere */
			if (e->stack_id == -KMS_EEXIST && e->site) {
				e->stack_id = bpf_get_stackid(es->ctx, &stacks,
							      BPF_F_USER_STACK | 1);
				if (e->stack_id >= 0)
					e->ctx |= KMS_CTX_USKIP;
			}
		} else {
			e->stack_id = stack_of(es->ctx, es->how, es->s, site, e->pc, es->type);
		}
		if (e->stack_id < -1)
			cnt_add(KMS_CNT_STACK_FAIL, 1);
	}
	/*
	 * Branch on the stage, not on the reserved record: 6.1's verifier does
	 * not know a ring-buffer record is non-NULL once checked, walks the
	 * NULL branch and finds the record unreleased there.
	 */
	if (es->s) {
		es->s->b.count++;
		/* a full stage is shipped by the next handler's stage_room() */
		if (es->hold)
			es->s->busy = 0;
		else
			stage_done(es->s);
	} else {
		direct_ship(es->r);
	}
}

/*
 * The collector runs this on a CPU (BPF_F_TEST_RUN_ON_CPU) to ship a quiet
 * stage; args[0] 0 is a paced flush, which leaves a stage holding a large
 * kmalloc for its second trace alone for TWICE_WAIT_NS (kmalloc_first()).
 */
#define TWICE_WAIT_NS (10 * 1000 * 1000ULL)
SEC("raw_tp")
int flush_stage(struct bpf_raw_tracepoint_args *ctx)
{
	struct kms_stage *s = stage_get();

	if (!s || s->busy)
		return 1;
	if (!ctx->args[0] && s->twice_key && bpf_ktime_get_ns() - s->twice_at < TWICE_WAIT_NS)
		return 1;
	s->busy = 1;
	flush(s, KMS_BATCH_FORCED);
	s->busy = 0;
	return 0;
}

/*
 * The collector runs this before tracing (warm_ring() in src/collector.c):
 * 4 KiB records reserved and discarded until the ring is full put a header,
 * one write, every 4 KiB: at the start of every page, whatever the kernel's
 * page size. The first write
 * through the kernel's mapping of a ring page cost ~8 us in this project's
 * VM (shadow paging), paid by the task whose handler made it; after this, by
 * no one. Returns how many records it made.
 */
#define WARM_RECORD (4096 - BPF_RINGBUF_HDR_SZ)

static long warm_page(__u64 i, void *unused)
{
	void *r = bpf_ringbuf_reserve(&rb, WARM_RECORD, 0);

	if (!r)
		return 1;
	bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("raw_tp")
int warm_ring(void *ctx)
{
	return bpf_loop(1 << 20, warm_page, NULL, 0) - 1;
}

#endif /* __KMS_STAGE_BPF_H */
