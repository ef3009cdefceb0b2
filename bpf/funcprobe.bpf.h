/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Function probes, included by kmemscope.bpf.c after the handlers they call.
 *
 * fentry/fexit and kprobe programs for kernels without the vmalloc:/dma:
 * tracepoints (6.1), and for frees that have no per-object tracepoint on any
 * kernel: kfree_rcu() handoffs (kvfree_call_rcu) and bulk frees
 * (kmem_cache_free_bulk, kfree_bulk). fentry/fexit handlers run preemptible
 * and ship each record directly (EV_DIRECT); kprobe handlers stage theirs.
 */
#ifndef __KMS_FUNCPROBE_BPF_H
#define __KMS_FUNCPROBE_BPF_H

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
 * ---- function probes, for kernels without the vmalloc:/dma: tracepoints ----
 * fexit sees arguments and return value in one program. kprobe + kretprobe
 * pair by thread id through the pending map, and so do fentry + fexit where
 * nesting matters. The collector sets the target (plain or _noprof name)
 * before load or at attach.
 */
/*
 * The pages a vmalloc area of size bytes holds: __vmalloc_node_range()
 * rounds the request up to pages (huge mappings, which x86 does not use for
 * vmalloc, round up further).
 */
static __always_inline __u64 vm_pages(__u64 size)
{
	return (size + page_size - 1) & ~((__u64)page_size - 1);
}

/*
 * Entry/return pairs (kprobe/kretprobe, and fentry/fexit for vmalloc's
 * nesting) keep what each entry saw on a small per-thread stack: these
 * functions nest (vmalloc of a large area vmallocs its page array).
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
		/* before the collector arms the handlers no record is made: none is short */
		if (*(volatile __u32 *)&armed)
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

/*
 * fexit sees one call, not whether another call of the same function is in
 * progress on this thread: vmalloc of a large area vmallocs its page array
 * from inside, and that inner call returns first. The fentry program pushes
 * on the thread's pending stack, as the kprobe does, and the fexit one pops
 * its depth there. Its arguments come from fexit itself: a missed entry
 * (a call in flight at attach) costs the nesting mark only, and is counted.
 */
SEC("fentry/__vmalloc_node_range")
int BPF_PROG(fe_vmalloc)
{
	struct pending p = {};

	pend_push(PEND_VMALLOC, &p);
	return 0;
}

SEC("fexit/__vmalloc_node_range")
int BPF_PROG(fx_vmalloc)
{
	__u64 size = 0, gfp = 0, caller = 0, ret = 0;
	struct pending v = {};	/* no entry seen: not marked nested */

	pend_pop(PEND_VMALLOC, &v);
	/* typed pointer arguments cannot be turned into numbers: read them raw */
	bpf_get_func_arg(ctx, 0, &size);
	bpf_get_func_arg(ctx, 4, &gfp);
	bpf_get_func_arg(ctx, 8, &caller);
	bpf_get_func_ret(ctx, &ret);
	return on_vmalloc(ctx, caller, ret, size, vm_pages(size), gfp, !ret, v.nested, EV_DIRECT);
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
	return on_vmalloc(ctx, v.site, ptr_val(ret), v.size, vm_pages(v.size), v.gfp, !ret, v.nested,
			  EV_KPROBE);
}

SEC("kprobe/vfree")
int BPF_KPROBE(kp_vfree, const void *addr)
{
	return on_free(ctx, KMS_EV_VFREE, entry_ret_addr(ctx), ptr_val(addr), 0, EV_KPROBE);
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
	return on_dma_alloc(ctx, PT_REGS_IP(ctx), v.obj, ptr_val(ret), v.size, v.gfp, EV_KPROBE);
}

SEC("kprobe/dma_free_attrs")
int BPF_KPROBE(kp_dma_free, struct device *dev, size_t size, void *cpu_addr)
{
	return on_free(ctx, KMS_EV_DMA_FREE, entry_ret_addr(ctx), ptr_val(cpu_addr), ptr_val(dev),
		       EV_KPROBE);
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
 * The collector reads which from the function's BTF prototype (rcu_ptr_arg).
 */
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
		       0, EV_KPROBE);
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
	return bulk_free(ctx, (__u64)s, n, (__u64)p, entry_ret_addr(ctx), EV_KPROBE);
}

#endif /* __KMS_FUNCPROBE_BPF_H */
