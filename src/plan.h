/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The attach plan: for every allocator event an ordered list of candidate
 * attach points, probed on the running kernel: of those that load and
 * attach, the one that delivers the most of what the reports need
 * (enum plan_gives), the cheapest (tracepoint, fentry/fexit, kprobe) among
 * equals.
 */
#ifndef KMS_PLAN_H
#define KMS_PLAN_H

#include <stdbool.h>
#include <stdio.h>
#include "kmemscope.h"
#include "collector.h"

struct btf;

struct kmemscope_bpf;

enum plan_method {
	PM_TP_BTF,
	PM_RAW_TP,
	PM_FENTRY,	/* fentry or fexit */
	PM_KPROBE,	/* kprobe, with a kretprobe where the return value is needed */
};

enum cand_result {
	CR_NOT_TRIED,
	CR_SELECTED,
	CR_REJECTED,
};

#define PLAN_MAX_CANDS 6

/*
 * What a candidate delivers, for the report: the plan prefers the candidate
 * that delivers more of PG_RANKED, and among equals the cheaper (the table's
 * order). For an allocation a caller from the attach point and one from the
 * stack are the same site, so PG_CALLER is shown but not ranked; a free has
 * no stack, so for frees it ranks (plan.c's rank_mask()).
 */
enum plan_gives {
	PG_GFP = 1,	/* the caller's GFP flags */
	PG_REQ = 2,	/* the size the caller asked for */
	PG_AREA = 4,	/* the size allocated */
	PG_CALLER = 8,	/* the call site, without a stack */
	PG_OWN = 16,	/* only this allocator's allocations (a vmap-area tracepoint
			 * also sees ioremap, vmap and vm_map_ram areas) */
	PG_NR = 5,
	PG_RANKED = PG_GFP | PG_REQ | PG_AREA | PG_OWN,
};

struct plan_cand {
	enum plan_method method;
	const char *target;	/* tracepoint or kernel function */
	const char *prog;	/* BPF program name (bpf/kmemscope.bpf.c and its headers) */
	/*
	 * the pair's second program, or NULL: a kprobe's kretprobe, or the
	 * fentry that tells an fexit program it runs nested (bpf/funcprobe.bpf.h)
	 */
	const char *prog2;
	unsigned int gives;	/* PG_*, allocation candidates only */
	enum cand_result result;
	char reason[128];
};

struct plan_event {
	const char *name;	/* event name, as in the JSON schema */
	int family;		/* KMS_FAM_*, -1 for helpers (fork/exec tracking) */
	bool alloc;		/* the family's allocation event */
	bool optional;		/* the family is traced without it */
	int nr_cands;
	struct plan_cand cands[PLAN_MAX_CANDS];
	int selected;		/* index into cands, -1 if none */
	const char *shadow;	/* rescue program for a tracepoint (bpf/: guard_set()) */
	/*
	 * a deferred free: matched by address at any level, and loaded when
	 * either slab family is traced (it frees kmalloc and cache objects)
	 */
	bool deferred;
};

struct plan {
	struct collector_opts cfg;	/* the configuration every trial load had */
	int nr_events;
	struct plan_event *events;
	bool fam_traced[KMS_FAM_MAX];
	const char *fam_method[KMS_FAM_MAX];
	bool rcu_ptr_arg;	/* kvfree_call_rcu(head, ptr) (6.2+), not (head, func) */
	bool kmalloc_twice;	/* a large kmalloc() may fire kmem:kmalloc twice (bpf/) */
	/* per-CPU offsets of runqueues and the preempt count (BTF), -1: absent */
	long pcpu_rq_off;
	long pcpu_pc_off;
	const char *pc_var;	/* where pcpu_pc_off points (probe shows it), NULL if nowhere */
	bool pc_cast;		/* read it with a plain load: BTF has bpf_rdonly_cast (6.2+) */
	long pcpu_sirq_off;	/* per-CPU offset of kstat.softirqs (BTF), -1: no witness */
	bool deferred_traced;	/* every deferred-free event has an attach point */
	const char *deferred_method;
	/* probe --user -p PID: the objects that give it its allocation functions ("": unknown) */
	char user_allocator[1024];
	/*
	 * The planned programs, loaded as cfg asks and not attached: the
	 * collector takes this object (collector__open()).
	 */
	struct kmemscope_bpf *obj;
};

struct ksyms_loader;

/*
 * Probe every event's candidates on the running kernel, each trial object
 * configured as cfg (the collector's options: families, filters, ordering,
 * stacks, context, rescue), so the plan holds for a collector opened with cfg.
 * syms gives kallsyms, waited for only where kprobe targets are checked.
 */
int plan__probe(struct plan **out, const struct collector_opts *cfg,
		struct ksyms_loader *syms);
void plan__free(struct plan *p);
/*
 * Attach the selected programs the trial did not (shadows, the process
 * followers); links are kept in the skeleton's links.
 */
int plan__attach(const struct plan *p, struct kmemscope_bpf *skel, bool rescue);

/* what the selected allocation candidate of family fam delivers (PG_*), 0 if none */
unsigned int plan__gives(const struct plan *p, int fam);

/* softirqs no handler saw are counted (see_softirq() in bpf/) */
bool plan__softirq_witness(const struct plan *p);
/* task runs no handler saw are counted (see_switch() in bpf/) */
bool plan__task_witness(const struct plan *p);

int plan__print_text(const struct plan *p, FILE *out);
/*
 * Offset of a per-CPU variable (name) or of a member of one (member, also inside
 * anonymous unions and structs), from the kernel's BTF; -1 if absent.
 */
long plan__percpu_off(const struct btf *btf, const char *name, const char *member);
int plan__print_json(const struct plan *p, const char *kernel, FILE *out);

#endif
