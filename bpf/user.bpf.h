/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * User space (--user), included by kmemscope.bpf.c: the C library's
 * allocation functions through uprobes and uretprobes, attached to one
 * process by src/user.c, and that process's mmap/munmap/mremap/brk through
 * the syscall tracepoints. uprobe programs run preemptible and syscall
 * tracepoints may fault (6.14+), so every record here ships directly
 * (EV_DIRECT), never through the per-CPU stage.
 */
#ifndef __KMS_USER_BPF_H
#define __KMS_USER_BPF_H

/*
 * The traced processes are the pid filter's (the pids map: the process and
 * what it forks). Each has its own uprobes (src/user_proc.c); these maps
 * say where one must stop until they are on:
 * ustop: exec'd, at its loader's announcements (u_loader);
 * ufork: forked, at its return from fork (u_fork_ret).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);	/* tgid */
	__type(value, __u8);
} ustop SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);	/* tgid */
	__type(value, __u8);
} ufork SEC(".maps");

/*
 * Every stop these programs make, by tgid, until user_proc.c has seen it:
 * what it waits for (U_STOP_*). Read from here, not from perf records,
 * which a busy system may lose: a stop nobody sees would never end.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);	/* tgid */
	__type(value, __u32);	/* U_STOP_* */
} ustopped SEC(".maps");

#define U_SIGSTOP 19

/* recorded first: the stop is then never unseen */
static __always_inline void u_stop(__u32 tgid, __u32 why)
{
	bpf_map_update_elem(&ustopped, &tgid, &why, BPF_ANY);
	bpf_send_signal(U_SIGSTOP);
}

/*
 * One allocation call in flight per thread, from entry to return. glibc's
 * entry points call each other (realloc(NULL, n) is malloc, realloc(p, 0)
 * calls free, a tail call fires both return probes): only the outermost
 * call is recorded, the depth counts the inner ones.
 */
struct ucall {
	__u64 size;	/* bytes asked for, ~0 when n * size overflowed */
	__u64 arg;	/* realloc, mremap: the old pointer; posix_memalign: where the
			 * result goes; brk: the old end of the heap */
	__u64 old_len;	/* mremap: the old length */
	__u32 depth;
	__u32 api;	/* KMS_U_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* pid_tgid */
	__type(value, struct ucall);
} ucalls SEC(".maps");

/*
 * Threads whose own code has ended (glibc called __call_tls_dtors): their
 * frees are the C library's cleanup, marked KMS_CTX_UEXIT. Forgotten when
 * the thread exits, before its id can be reused.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* pid_tgid */
	__type(value, __u8);
} uexit SEC(".maps");

/* a syscall in flight (mremap, brk), keyed apart from ucalls: malloc calls mmap */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ucall);
} usys SEC(".maps");

/*
 * n * size, ~0 when it overflows. The barrier keeps clang from turning the
 * division test into a 128-bit multiply, which BPF does not have.
 */
static __always_inline __u64 u_mul(__u64 n, __u64 size)
{
	__u64 max;

	if (!n)
		return 0;
	max = ~0ULL / n;
	barrier_var(max);
	return size > max ? ~0ULL : n * size;
}

static __always_inline int u_enter(__u32 api, __u64 size, __u64 arg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ucall *c = bpf_map_lookup_elem(&ucalls, &id), n = {};

	if (c) {
		c->depth++;
		return 0;
	}
	n.size = size;
	n.arg = arg;
	n.depth = 1;
	n.api = api;
	bpf_map_update_elem(&ucalls, &id, &n, BPF_ANY);
	return 0;
}

/* one user record; size saturates in the 32-bit fields; flags: KMS_CTX_* */
static __always_inline void u_emit(void *ctx, __u8 type, __u32 api, __u64 site, __u64 ptr,
				   __u64 size, __u8 flags)
{
	struct ev_slot es = { .user = true };
	struct kms_event *e = ev_begin(ctx, &es, type, 0, EV_DIRECT);

	if (!e)
		return;
	e->site = site;
	e->ptr = ptr;
	e->bytes_req = e->bytes_alloc = size > 0xffffffffULL ? 0xffffffffU : size;
	e->extra = api;
	e->ctx |= flags;
	if (type == KMS_EV_ALLOC_FAIL)
		e->order = api >= KMS_U_MMAP ? KMS_FAM_UMAP : KMS_FAM_USER;
	ev_end(&es, e);
}

SEC("uprobe")
int BPF_KPROBE(u_malloc, __u64 size)
{
	return u_enter(KMS_U_MALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(u_calloc, __u64 n, __u64 size)
{
	/* glibc fails an overflowing calloc with ENOMEM: recorded as a failure of ~0 bytes */
	return u_enter(KMS_U_CALLOC, u_mul(n, size), 0);
}

SEC("uprobe")
int BPF_KPROBE(u_realloc, __u64 old, __u64 size)
{
	return u_enter(KMS_U_REALLOC, size, old);
}

SEC("uprobe")
int BPF_KPROBE(u_reallocarray, __u64 old, __u64 n, __u64 size)
{
	return u_enter(KMS_U_REALLOCARRAY, u_mul(n, size), old);
}

SEC("uprobe")
int BPF_KPROBE(u_posix_memalign, __u64 memptr, __u64 align, __u64 size)
{
	return u_enter(KMS_U_POSIX_MEMALIGN, size, memptr);
}

SEC("uprobe")
int BPF_KPROBE(u_aligned_alloc, __u64 align, __u64 size)
{
	return u_enter(KMS_U_ALIGNED_ALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(u_memalign, __u64 align, __u64 size)
{
	return u_enter(KMS_U_MEMALIGN, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(u_valloc, __u64 size)
{
	return u_enter(KMS_U_VALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(u_pvalloc, __u64 size)
{
	/* rounded up to whole pages, as glibc does */
	return u_enter(KMS_U_PVALLOC, (size + page_size - 1) & ~((__u64)page_size - 1), 0);
}

/* the one return probe of every allocation function above */
SEC("uretprobe")
int BPF_KRETPROBE(u_alloc_ret, __u64 ret)
{
	__u64 id = bpf_get_current_pid_tgid(), ptr = ret;
	/* uprobes set the instruction pointer back to the return address: the call site */
	__u64 site = PT_REGS_IP(ctx);
	struct ucall *c = bpf_map_lookup_elem(&ucalls, &id), call;
	bool moves;

	if (!c) {
		cnt_add(KMS_CNT_PENDING_LOST, 1);
		return 0;
	}
	if (--c->depth)
		return 0;
	call = *c;
	bpf_map_delete_elem(&ucalls, &id);
	if (call.api == KMS_U_POSIX_MEMALIGN) {
		/* it returns an error number, and the block through its first argument */
		ptr = 0;
		if (ret == 0 && bpf_probe_read_user(&ptr, sizeof(ptr), (void *)call.arg))
			ptr = 0;
	}
	moves = call.api == KMS_U_REALLOC || call.api == KMS_U_REALLOCARRAY;
	/*
	 * A realloc that returned a block freed the old one (moved or not);
	 * realloc(p, 0) frees p and returns NULL; a failed realloc keeps p.
	 */
	if (moves && call.arg && (ptr || !call.size))
		u_emit(ctx, KMS_EV_UFREE, call.api, site, call.arg, 0, 0);
	if (moves && !ptr && !call.size)
		return 0;
	u_emit(ctx, ptr ? KMS_EV_UALLOC : KMS_EV_ALLOC_FAIL, call.api, site, ptr, call.size, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(u_free, __u64 ptr)
{
	__u64 id = bpf_get_current_pid_tgid(), site = 0;

	/* free(NULL) does nothing; a free inside another entry point is that call's */
	if (!ptr || bpf_map_lookup_elem(&ucalls, &id))
		return 0;
	/* at the entry the return address is on top of the stack */
	bpf_probe_read_user(&site, sizeof(site), (void *)PT_REGS_SP(ctx));
	u_emit(ctx, KMS_EV_UFREE, KMS_U_FREE, site, ptr, 0,
	       bpf_map_lookup_elem(&uexit, &id) ? KMS_CTX_UEXIT : 0);
	return 0;
}

/*
 * glibc calls __call_tls_dtors once a thread's start routine has returned
 * (start_thread) and when exit() begins; what the thread frees from then on
 * includes its thread cache (tcache_thread_shutdown): the blocks the
 * program had already freed into it, and the cache itself, which glibc made
 * with its internal _int_malloc, never through malloc. Frees are still
 * matched as usual; the mark only says why one matched nothing.
 */
SEC("uprobe")
int BPF_KPROBE(u_thread_end)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 one = 1;

	bpf_map_update_elem(&uexit, &id, &one, BPF_ANY);
	return 0;
}

/*
 * A loader calls _dl_debug_state() when it starts adding objects and when
 * they are loaded, before any of their code runs: an exec'd process stops
 * there until user_proc.c has read which objects give its allocation
 * functions and attached to them. A dlopen() later does not stop it.
 */
SEC("uprobe")
int BPF_KPROBE(u_loader)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_lookup_elem(&ustop, &tgid))
		u_stop(tgid, U_STOP_LOADER);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(u_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&pids, &tgid))
		bpf_map_update_elem(&ustop, &tgid, &one, BPF_ANY);
	return 0;
}

/* a new process (not a thread) of a traced one; follow_fork puts it in pids */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(u_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u8 one = 1;

	if (ptgid != ctgid && bpf_map_lookup_elem(&pids, &ptgid))
		bpf_map_update_elem(&ufork, &ctgid, &one, BPF_ANY);
	return 0;
}

/*
 * The child's first step in user space is its return from the fork
 * syscall, which fires the syscall's exit tracepoint in the child (return
 * value 0). It stops there: uprobes bound to its parent do not cover it.
 */
static __always_inline int u_fork_ret(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!ret && !bpf_map_delete_elem(&ufork, &tgid))
		u_stop(tgid, U_STOP_FORK);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_clone")
int u_sys_clone_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_fork_ret(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_clone3")
int u_sys_clone3_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_fork_ret(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_fork")
int u_sys_fork_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_fork_ret(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_vfork")
int u_sys_vfork_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_fork_ret(ctx->ret);
}

/* a thread of any process exits: its id may be reused */
SEC("raw_tp/sched_process_exit")
int u_thread_gone(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&uexit, &id);
	return 0;
}

/* ---- the process's mappings: syscall tracepoints ---- */

static __always_inline bool u_ours(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return bpf_map_lookup_elem(&pids, &tgid) != NULL;
}

/* where the process made the syscall: its C library's wrapper, as a site */
static __always_inline __u64 u_sys_site(void)
{
	struct pt_regs *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return regs ? BPF_CORE_READ(regs, ip) : 0;
}

/* a syscall's return is a negative errno or the result */
static __always_inline bool u_failed(long ret)
{
	return ret < 0 && ret > -4096;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int u_sys_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ucall n = { .size = ctx->args[1], .api = KMS_U_MMAP };

	if (u_ours())
		bpf_map_update_elem(&usys, &id, &n, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mremap")
int u_sys_mremap(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ucall n = { .size = ctx->args[2], .arg = ctx->args[0], .old_len = ctx->args[1],
			   .api = KMS_U_MREMAP };

	if (u_ours())
		bpf_map_update_elem(&usys, &id, &n, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int u_sys_brk(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *t = (void *)bpf_get_current_task();
	struct ucall n = { .api = KMS_U_BRK };

	if (!u_ours())
		return 0;
	n.arg = BPF_CORE_READ(t, mm, brk);
	bpf_map_update_elem(&usys, &id, &n, BPF_ANY);
	return 0;
}

/* the return of mmap, mremap or brk: what the entry kept says which */
static __always_inline int u_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ucall *c = bpf_map_lookup_elem(&usys, &id), call;
	long ret = ctx->ret;

	if (!c)
		return 0;
	call = *c;
	bpf_map_delete_elem(&usys, &id);
	__u64 site = u_sys_site();

	if (call.api == KMS_U_BRK) {
		/* growth only: glibc rarely gives the top of its heap back */
		if ((__u64)ret > call.arg)
			u_emit(ctx, KMS_EV_UBRK, KMS_U_BRK, site, call.arg, ret - call.arg, 0);
		return 0;
	}
	if (u_failed(ret)) {
		u_emit(ctx, KMS_EV_ALLOC_FAIL, call.api, site, 0, call.size, 0);
		return 0;
	}
	if (call.api == KMS_U_MREMAP)
		u_emit(ctx, KMS_EV_UMUNMAP, KMS_U_MREMAP, site, call.arg, call.old_len, 0);
	u_emit(ctx, KMS_EV_UMMAP, call.api, site, ret, call.size, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int u_sys_mmap_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int u_sys_mremap_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_sys_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_brk")
int u_sys_brk_ret(struct trace_event_raw_sys_exit *ctx)
{
	return u_sys_exit(ctx);
}

/* recorded at entry: a failed munmap leaves a free that frees nothing it was given */
SEC("tracepoint/syscalls/sys_enter_munmap")
int u_sys_munmap(struct trace_event_raw_sys_enter *ctx)
{
	if (u_ours())
		u_emit(ctx, KMS_EV_UMUNMAP, KMS_U_MUNMAP, u_sys_site(), ctx->args[0], ctx->args[1],
		       0);
	return 0;
}

#endif /* __KMS_USER_BPF_H */
