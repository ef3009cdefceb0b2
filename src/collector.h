/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live collector: loads the planned BPF programs, drains the ring buffer,
 * and delivers records in time order to a sink (the aggregator, a trace
 * writer, a detector).
 */
#ifndef KMS_COLLECTOR_H
#define KMS_COLLECTOR_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>
#include "kmemscope.h"
#include "quality.h"

struct plan;
struct collector;

struct collector_sink {
	void (*event)(void *ctx, struct kms_event *e);
	void (*meta)(void *ctx, const struct kms_meta *m);
	void *ctx;
	/* optional: a record event() gets a few records later (merge.h's merge_ahead_fn) */
	void (*ahead)(void *ctx, const struct kms_event *e);
};

struct collector_opts {
	unsigned int ring_mb;		/* ring buffer size (MiB, power of two) */
	unsigned int stack_entries;	/* stack map size; 0 = no stacks at all */
	__u64 stack_types;		/* bit (1 << KMS_EV_*): capture a stack */
	enum kms_stack_cache stack_cache; /* which stacks are reused (per site, callers, context) */
	bool filter_pids;		/* only pids added with collector__add_pid() (+ children) */
	unsigned int families;		/* bit per KMS_FAM_*, 0 = all */
	bool order_seq;			/* order by a global counter instead of ktime */
	bool context;			/* capture the allocation context (detectors) */
	bool rescue;			/* shadow programs catch recursion misses */
	bool user;			/* load the user-space programs (--user, user.h) */
};

struct kmemscope_bpf;

/*
 * Write o's settings and the kernel facts the plan found (p) into a freshly
 * opened skeleton (map sizes, read-only data): what the plan's trial loads
 * verify is what the commands run, since the plan loads the object the
 * collector takes.
 */
void collector__configure(struct kmemscope_bpf *skel, const struct collector_opts *o,
			  const struct plan *p);

/* takes the object the plan loaded (plan->obj), which must be configured as opts */
int collector__open(struct collector **out, struct plan *plan,
		    const struct collector_opts *opts, struct collector_sink sink);
int collector__add_pid(struct collector *c, pid_t pid);
int collector__del_pid(struct collector *c, pid_t pid);
/*
 * Leave process tgid's allocations out (kmemscope's own): dropped in BPF
 * and counted; its frees pass flagged KMS_CTX_OUTSIDE | KMS_CTX_SELF.
 */
void collector__exclude(struct collector *c, pid_t tgid);
/*
 * Give the BPF side the allocator wrappers' ranges from k (frames.h): with
 * stacks, an allocation whose call site falls in one then gets a stack, and
 * its site comes from that; a large kmalloc reported from one may be the
 * first of the kernel's two events for it (bpf/kmemscope.bpf.c).
 */
struct ksyms;
void collector__set_wrappers(struct collector *c, const struct ksyms *k);
int collector__attach(struct collector *c);
/* the loaded programs, for what attaches to a process rather than the kernel (user.h) */
struct kmemscope_bpf *collector__bpf(struct collector *c);
/*
 * Read what the kernel has shipped and deliver what is safely ordered, for at
 * most a bounded time: 1 when that time ran out with records still waiting
 * (poll again at once), 0 when the ring was drained, or -errno.
 */
int collector__poll(struct collector *c);
/*
 * Flush every CPU now and deliver everything made before the call, however
 * busy the ring: it reads until every CPU's watermark passes the order key of
 * the call (at most a second, for a CPU that never ships).
 */
int collector__sync(struct collector *c);
/* detach, flush every CPU and deliver everything */
int collector__stop(struct collector *c);
void collector__quality(struct collector *c, struct kms_quality *q);
/* the stack of a record (kernel addresses, innermost first); number of frames or -errno */
int collector__stack(struct collector *c, int stack_id, __u64 *ips, int max);
/* whether records carry their context (preempt count): asked for and possible */
bool collector__context(const struct collector *c);
/*
 * Tests: run the loaded raw_tp program prog once on cpu with args as its
 * context (BPF_PROG_TEST_RUN), as if its tracepoint had fired there. The
 * program's return value, or -errno.
 */
int collector__test_run(struct collector *c, const char *prog, int cpu, const __u64 *args,
			unsigned int nr_args);
/* Tests: detach every program and record only what collector__test_run() makes */
void collector__test_only(struct collector *c);
void collector__free(struct collector *c);

#endif
