/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Attach-point selection, as data. Each event lists its candidates in order of
 * preference; each candidate is first checked for existence (tracepoint in
 * tracefs/BTF, function in BTF or kallsyms) and then really loaded and attached
 * in a throw-away copy of the BPF object, so that verifier refusals (6.1 will
 * not let tp_btf read 'const void *' arguments), EPERM on fentry (locked-down
 * kernels) and -ENOTSUPP on functions with too many arguments all show up
 * here, with a reason, rather than when tracing starts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include <jansson.h>
#include "kmemscope.skel.h"
#include "agg.h"
#include "plan.h"
#include "collector.h"
#include "cli.h"
#include "log.h"
#include "ksyms.h"
#include "tracefs.h"

#define TP(sys, name, g) { PM_TP_BTF, sys ":" name, "tb_" name, NULL, g }, \
			 { PM_RAW_TP, sys ":" name, "rt_" name, NULL, g }
/* raw_tp only: the handler needs a struct pointer argument as a number (bpf/) */
#define TPR(sys, name, g) { PM_RAW_TP, sys ":" name, "rt_" name, NULL, g }

/* what allocation candidates deliver (enum plan_gives); frees deliver nothing ranked */
#define G_ALL (PG_GFP | PG_REQ | PG_AREA | PG_CALLER | PG_OWN)
#define G_NO_CALLER (G_ALL & ~PG_CALLER)

/*
 * Candidate tables. kmem:* and percpu:* tracepoints are old and everywhere;
 * vmalloc:* and dma:* are recent: Debian's 6.1 has neither (measured), so
 * those families fall back to fentry/fexit, then kprobes. Allocator function
 * names gained a _noprof suffix in 6.10 (memory allocation profiling), hence
 * both spellings.
 */
/*
 * In each list, cheaper first: the plan then ranks them by what they
 * deliver (rank_cands()), so a function probe that delivers more wins over a
 * tracepoint that delivers less. nr_cands is counted at run time.
 */
static const struct plan_event plan_template[] = {
	{ "kmalloc", KMS_FAM_KMALLOC, true, false, 0, { TP("kmem", "kmalloc", G_ALL) }, 0, "sh_kmalloc" },
	{ "kfree", KMS_FAM_KMALLOC, false, false, 0, { TP("kmem", "kfree", 0) }, 0, "sh_kfree" },
	{ "kmem_cache_alloc", KMS_FAM_CACHE, true, false, 0,
	  { TPR("kmem", "kmem_cache_alloc", G_ALL) }, 0, "sh_kmem_cache_alloc" },
	{ "kmem_cache_free", KMS_FAM_CACHE, false, false, 0, { TPR("kmem", "kmem_cache_free", 0) }, 0,
	  "sh_kmem_cache_free" },
	{ "mm_page_alloc", KMS_FAM_PAGE, true, false, 0,
	  { TPR("kmem", "mm_page_alloc", G_NO_CALLER) }, 0, "sh_mm_page_alloc" },
	{ "mm_page_free", KMS_FAM_PAGE, false, false, 0, { TPR("kmem", "mm_page_free", 0) }, 0,
	  "sh_mm_page_free" },
	{ "mm_page_free_batched", KMS_FAM_PAGE, false, true, 0,
	  { TPR("kmem", "mm_page_free_batched", 0) }, 0, "sh_mm_page_free_batched" },
	/*
	 * vmalloc:alloc_vmap_area (6.3+) is a vmap-area event: no GFP, no
	 * requested size, and ioremap, vmap and vm_map_ram areas too. A
	 * function probe on __vmalloc_node_range delivers all of it, so the
	 * tracepoint is the last resort (the 6.18 host, where function probes
	 * are refused), not the first choice.
	 */
	{ "vmalloc", KMS_FAM_VMALLOC, true, false, 0, {
		TP("vmalloc", "alloc_vmap_area", PG_AREA),
		{ PM_FENTRY, "__vmalloc_node_range_noprof", "fx_vmalloc", "fe_vmalloc", G_ALL },
		{ PM_FENTRY, "__vmalloc_node_range", "fx_vmalloc", "fe_vmalloc", G_ALL },
		{ PM_KPROBE, "__vmalloc_node_range_noprof", "kp_vmalloc", "kr_vmalloc", G_ALL },
		{ PM_KPROBE, "__vmalloc_node_range", "kp_vmalloc", "kr_vmalloc", G_ALL } } },
	{ "vfree", KMS_FAM_VMALLOC, false, false, 0, {
		TP("vmalloc", "free_vmap_area_noflush", 0),
		{ PM_FENTRY, "vfree", "fe_vfree", NULL },
		{ PM_KPROBE, "vfree", "kp_vfree", NULL, PG_CALLER } } },
	{ "dma_alloc", KMS_FAM_DMA, true, false, 0, {
		TPR("dma", "dma_alloc", G_NO_CALLER),
		{ PM_FENTRY, "dma_alloc_attrs", "fx_dma_alloc", NULL, G_NO_CALLER },
		{ PM_KPROBE, "dma_alloc_attrs", "kp_dma_alloc", "kr_dma_alloc", G_ALL } } },
	{ "dma_alloc_pages", KMS_FAM_DMA, true, true, 0, { TPR("dma", "dma_alloc_pages", G_NO_CALLER) } },
	{ "dma_free", KMS_FAM_DMA, false, false, 0, {
		TPR("dma", "dma_free", 0),
		{ PM_FENTRY, "dma_free_attrs", "fe_dma_free", NULL },
		{ PM_KPROBE, "dma_free_attrs", "kp_dma_free", NULL, PG_CALLER } } },
	{ "dma_free_pages", KMS_FAM_DMA, false, true, 0, { TPR("dma", "dma_free_pages", 0) } },
	/* GFP and caller only where the tracepoint has them (percpu_gives()) */
	{ "percpu_alloc", KMS_FAM_PERCPU, true, false, 0,
	  { TP("percpu", "percpu_alloc_percpu", PG_REQ | PG_AREA | PG_OWN) } },
	{ "percpu_free", KMS_FAM_PERCPU, false, false, 0, { TP("percpu", "percpu_free_percpu", 0) } },
	/*
	 * Deferred frees fire no tracepoint on any kernel: function probes or
	 * nothing. kmem_cache_free_bulk() also serves kfree_bulk() (s = NULL),
	 * which is how the RCU worker frees kfree_rcu() batches (6.1).
	 */
	{ "kfree_rcu", KMS_FAM_KMALLOC, false, true, 0, {
		{ PM_FENTRY, "kvfree_call_rcu", "fe_rcu_free", NULL },
		{ PM_KPROBE, "kvfree_call_rcu", "kp_rcu_free", NULL } }, 0, NULL, true },
	{ "kmem_cache_free_bulk", KMS_FAM_CACHE, false, true, 0, {
		{ PM_FENTRY, "kmem_cache_free_bulk", "fe_bulk_free", NULL },
		{ PM_KPROBE, "kmem_cache_free_bulk", "kp_bulk_free", NULL } }, 0, NULL, true },
	{ "fork", -1, false, true, 0, { { PM_TP_BTF, "sched:sched_process_fork", "follow_fork" } } },
	{ "exec", -1, false, true, 0, { { PM_TP_BTF, "sched:sched_process_exec", "on_exec" } } },
	{ "free", -1, false, true, 0, { { PM_TP_BTF, "sched:sched_process_free", "forget_pid" } } },
	{ "softirq", -1, false, true, 0, { { PM_TP_BTF, "irq:softirq_entry", "see_softirq" } } },
	{ "switch", -1, false, true, 0, { { PM_TP_BTF, "sched:sched_switch", "see_switch" } } },
};

static const char *method_names[] = {
	[PM_TP_BTF] = "tp_btf",
	[PM_RAW_TP] = "raw_tp",
	[PM_FENTRY] = "fentry",
	[PM_KPROBE] = "kprobe",
};

static bool is_tracepoint(enum plan_method m)
{
	return m == PM_TP_BTF || m == PM_RAW_TP;
}

/*
 * The task witness (see_switch() in bpf/) stays off on PREEMPT_RT: with it
 * on, one of two runs of the 6.1-rt guest hung during a GFP_ATOMIC order-3
 * scenario (no output, no watchdog message), none of three without it.
 * The cause was not found; a hung kernel costs more than the witness gives.
 */
static bool off_on_rt(const struct plan_event *ev)
{
	return !strcmp(ev->name, "switch") && cli_kernel_is_rt(cli_kernel_version());
}

static const char *tp_name(const char *target)
{
	const char *c = strchr(target, ':');

	return c ? c + 1 : target;
}

/* ---- existence checks: cheap, and they give the clearest reasons ---- */

struct probe_env {
	struct btf *vmlinux;
	bool kprobes;
	struct ksyms_loader *syms;	/* for kprobe targets */
	struct kmemscope_bpf *skel;	/* opened, never loaded: what each program is */
	const struct plan *p;		/* kernel facts the trial objects are configured with */
	const struct collector_opts *cfg;	/* how the commands will configure the object */
};

static bool btf_has(const struct probe_env *env, const char *name, int kind)
{
	return env->vmlinux && btf__find_by_name_kind(env->vmlinux, name, kind) > 0;
}

static bool tracepoint_exists(const struct probe_env *env, const char *target)
{
	char sys[64], path[256];
	const char *name = tp_name(target);
	struct stat st;

	snprintf(sys, sizeof(sys), "%.*s", (int)(name - target - 1), target);
	if (tracefs_path(path, sizeof(path), "events/%s/%s", sys, name) == 0 &&
	    stat(path, &st) == 0)
		return true;
	/* tracefs may be missing: BTF also knows every tracepoint */
	snprintf(path, sizeof(path), "btf_trace_%s", name);
	return btf_has(env, path, BTF_KIND_TYPEDEF);
}

/* kallsyms, read on the session's loader thread: asked for only where kprobes exist */
static bool ksym_exists(const struct probe_env *env, const char *name)
{
	const struct ksyms *k = ksyms__wait(env->syms);

	return k && ksyms__find(k, name);
}

/*
 * Whether the kernel loads an empty program of the kind of prog (fentry or
 * fexit) on func. A kernel that refuses even that (EPERM on a locked-down
 * 6.18) refuses the real one: the candidate is rejected for what the kernel
 * said, without a trial load of the whole object. It is not attached: each
 * attach and detach patches kernel text through a trampoline, which cost
 * 3.8 s of a 6.4 s start-up in the 6.1 QEMU guest. What only attach refuses
 * (too many arguments for a 6.1 trampoline) the trial finds.
 */
static int empty_prog_loads(const struct probe_env *env, const struct plan_cand *c,
			    char *why, size_t len)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct bpf_program *prog = bpf_object__find_program_by_name(env->skel->obj, c->prog);
	LIBBPF_OPTS(bpf_prog_load_opts, o);
	enum bpf_attach_type type;
	int fd;

	if (!prog) {
		snprintf(why, len, "no program %s", c->prog);
		return 0;
	}
	type = bpf_program__expected_attach_type(prog);
	o.expected_attach_type = type;
	o.attach_btf_id = btf__find_by_name_kind(env->vmlinux, c->target, BTF_KIND_FUNC);
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, 2, &o);
	if (fd < 0) {
		snprintf(why, len, "load: %s (an empty %s program)", strerror(errno),
			 type == BPF_TRACE_FEXIT ? "fexit" : "fentry");
		return 0;
	}
	close(fd);
	return 1;
}

static int exists(const struct probe_env *env, const struct plan_cand *c, char *why, size_t len)
{
	switch (c->method) {
	case PM_TP_BTF:
		if (!env->vmlinux) {
			snprintf(why, len, "no kernel BTF (/sys/kernel/btf/vmlinux)");
			return 0;
		}
		/* fall through */
	case PM_RAW_TP:
		if (!tracepoint_exists(env, c->target)) {
			snprintf(why, len, "no tracepoint %s in this kernel", c->target);
			return 0;
		}
		return 1;
	case PM_FENTRY:
		if (!btf_has(env, c->target, BTF_KIND_FUNC)) {
			snprintf(why, len, "no function %s in kernel BTF", c->target);
			return 0;
		}
		return empty_prog_loads(env, c, why, len);
	case PM_KPROBE:
		if (!env->kprobes) {
			snprintf(why, len, "kernel has no kprobe support (no kprobe_events in tracefs)");
			return 0;
		}
		if (!ksym_exists(env, c->target)) {
			snprintf(why, len, "no function %s in /proc/kallsyms", c->target);
			return 0;
		}
		return 1;
	}
	return 0;
}

/* ---- trial load + attach, with libbpf's messages captured for the reason ---- */

/* the program libbpf names in a line such as "libbpf: prog 'tb_kmalloc': ..." */
static void named_prog(const char *line, char *prog, size_t len)
{
	const char *q = strstr(line, "prog '");
	const char *e = q ? strchr(q + 6, '\'') : NULL;

	prog[0] = 0;
	if (e && (size_t)(e - q - 6) < len)
		snprintf(prog, len, "%.*s", (int)(e - q - 6), q + 6);
}

static struct bpf_link *attach_one(struct bpf_program *prog, const struct plan_cand *c, bool ret)
{
	if (c->method == PM_KPROBE)
		return bpf_program__attach_kprobe(prog, ret, c->target);
	return bpf_program__attach(prog);
}

static int set_targets(struct kmemscope_bpf *skel, const struct plan_cand *c)
{
	const char *names[] = { c->prog, c->prog2 };

	if (c->method != PM_FENTRY)
		return 0;
	for (int i = 0; i < 2 && names[i]; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, names[i]);
		int err;

		if (!p)
			return -ENOENT;
		err = bpf_program__set_attach_target(p, 0, c->target);
		if (err)
			return err;
	}
	return 0;
}

static bool cand_has_prog(const struct plan_cand *c, const char *name)
{
	return !strcmp(c->prog, name) || (c->prog2 && !strcmp(c->prog2, name));
}

static bool prog_linked(const struct kmemscope_bpf *skel, const struct bpf_program *prog)
{
	for (int i = 0; i < skel->skeleton->prog_cnt; i++)
		if (*skel->skeleton->progs[i].prog == prog)
			return *skel->skeleton->progs[i].link != NULL;
	return false;
}

/* keep a link where the skeleton detaches and destroys it */
static void keep_link(struct kmemscope_bpf *skel, const struct bpf_program *prog,
		      struct bpf_link *l)
{
	for (int i = 0; i < skel->skeleton->prog_cnt; i++) {
		if (*skel->skeleton->progs[i].prog == prog) {
			*skel->skeleton->progs[i].link = l;
			return;
		}
	}
	bpf_link__destroy(l);
}

/*
 * attach a candidate's program (second: its pair's second program, prog2),
 * the link kept in the skeleton
 */
static int attach_cand(struct kmemscope_bpf *skel, const struct plan_cand *c, bool second)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(skel->obj,
								     second ? c->prog2 : c->prog);
	struct bpf_link *l = prog ? attach_one(prog, c, second) : NULL;

	if (!l)
		return prog ? -errno : -ENOENT;
	keep_link(skel, prog, l);
	return 0;
}

/*
 * Load and attach a set of candidates in one object configured as the
 * commands will configure theirs (cfg: filters, ordering, stacks, context,
 * map sizes, rescue with the shadows of tracepoint candidates), so that what
 * probe verifies is what runs. 0 if all work, and with keep the object in
 * *keep, loaded and still attached (its handlers make no record until the
 * collector arms them): loading it again would cost as much once more, and
 * attaching again would patch kernel text again. Else *failed: the index of
 * the candidate a failure is pinned on, -1 when it cannot be, and the reason
 * in why.
 */
static int trial_set(const struct probe_env *env, struct plan_cand **cands,
		     const char **shadows, int n, struct kmemscope_bpf **keep, int *failed,
		     char *why, size_t len)
{
	struct kmemscope_bpf *skel = NULL;
	struct bpf_program *p;
	char prog[64];
	int err;

	*failed = -1;
	log_libbpf_reset();
	skel = kmemscope_bpf__open();
	if (!skel) {
		err = -errno;
		snprintf(why, len, "open: %s", strerror(-err));
		goto out;
	}
	bpf_object__for_each_program(p, skel->obj) {
		const char *name = bpf_program__name(p);
		/*
		 * the collector runs flush_stage on quiet CPUs and warm_ring once;
		 * user.c attaches the u_ ones
		 */
		bool on = !strcmp(name, "flush_stage") || !strcmp(name, "warm_ring") ||
			  (env->cfg->user && !strncmp(name, "u_", 2));

		for (int i = 0; i < n && !on; i++)
			on = cand_has_prog(cands[i], name) ||
			     (env->cfg->rescue && shadows[i] && !strcmp(shadows[i], name));
		bpf_program__set_autoload(p, on);
	}
	collector__configure(skel, env->cfg, env->p);
	for (int i = 0; i < n; i++) {
		err = set_targets(skel, cands[i]);
		if (err) {
			*failed = i;
			snprintf(why, len, "no program for %s: %s", cands[i]->target, strerror(-err));
			goto out;
		}
	}
	err = kmemscope_bpf__load(skel);
	if (err) {
		snprintf(why, len, "load: %s%s%s", strerror(-err), *log_libbpf_first() ? ": " : "",
			 log_libbpf_first());
		named_prog(log_libbpf_first(), prog, sizeof(prog));
		for (int i = 0; i < n; i++)
			if (prog[0] && cand_has_prog(cands[i], prog))
				*failed = i;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct plan_cand *c = cands[i];

		err = attach_cand(skel, c, false);
		if (err) {
			*failed = i;
			snprintf(why, len, "attach: %s", strerror(-err));
			goto out;
		}
		/*
		 * an fexit before its fentry: a call that returns before both
		 * are attached loses its nesting mark (counted), where an entry
		 * without its exit would leave the thread's depth one too high
		 */
		err = c->prog2 ? attach_cand(skel, c, true) : 0;
		if (err) {
			*failed = i;
			snprintf(why, len, "attach %s: %s", c->prog2, strerror(-err));
			goto out;
		}
	}
	err = 0;
	/* the object that passed is the one the collector runs, attached as it is */
	if (keep) {
		*keep = skel;
		skel = NULL;
	}
out:
	/* destroying the skeleton detaches what was attached */
	kmemscope_bpf__destroy(skel);
	return err;
}

static int trial(const struct probe_env *env, struct plan_cand *c, const char *shadow,
		 char *why, size_t len)
{
	int failed;

	return trial_set(env, &c, &shadow, 1, NULL, &failed, why, len);
}

/* vmalloc and dma must pair allocs and frees at the same level; deferred frees need not */
static const struct plan_event *alloc_of(const struct plan *p, const struct plan_event *ev)
{
	if (ev->deferred || (ev->alloc && !ev->optional))
		return NULL;
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *a = &p->events[i];

		if (a != ev && a->family == ev->family && a->alloc && !a->optional)
			return a;
	}
	return NULL;
}

/*
 * The event's first candidate that is still possible: not rejected, at the
 * same level as its family's allocation (when that is known), and present in
 * this kernel. -1 when none is left.
 */
static int next_cand(const struct probe_env *env, struct plan *p, struct plan_event *ev,
		     const int *tent)
{
	const struct plan_event *a = alloc_of(p, ev);
	const struct plan_cand *ac = NULL;

	if (a && tent[a - p->events] >= 0)
		ac = &a->cands[tent[a - p->events]];
	for (int i = 0; i < ev->nr_cands; i++) {
		struct plan_cand *c = &ev->cands[i];

		if (c->result == CR_REJECTED)
			continue;
		if (ac && is_tracepoint(ac->method) != is_tracepoint(c->method))
			continue;
		if (!exists(env, c, c->reason, sizeof(c->reason))) {
			c->result = CR_REJECTED;
			continue;
		}
		return i;
	}
	return -1;
}

/*
 * Try every event's best remaining candidate together: one trial load for
 * the whole plan when all of them work, one more per candidate that fails.
 * When a failure cannot be pinned on one program, fall back to trying the
 * candidates one by one.
 */
static void probe_all(const struct probe_env *env, struct plan *p, const bool *wanted)
{
	int n = p->nr_events;
	int *tent = calloc(n, sizeof(*tent));
	struct plan_cand **set = calloc(n, sizeof(*set));
	int *owner = calloc(n, sizeof(*owner));
	const char **shadows = calloc(n, sizeof(*shadows));

	if (!tent || !set || !owner || !shadows)
		goto out;
	for (int round = 0; round < n * PLAN_MAX_CANDS + 1; round++) {
		int ns = 0, failed;
		char why[128];

		/* allocation events first: their level constrains the frees */
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < n; i++) {
				struct plan_event *ev = &p->events[i];

				if ((ev->alloc && !ev->optional) != (pass == 0))
					continue;
				tent[i] = wanted[i] ? next_cand(env, p, ev, tent) : -1;
				if (tent[i] >= 0) {
					owner[ns] = i;
					shadows[ns] = is_tracepoint(ev->cands[tent[i]].method) ?
						      ev->shadow : NULL;
					set[ns++] = &ev->cands[tent[i]];
				}
			}
		}
		if (!ns || !trial_set(env, set, shadows, ns, &p->obj, &failed, why, sizeof(why)))
			break;
		if (failed >= 0) {
			set[failed]->result = CR_REJECTED;
			snprintf(set[failed]->reason, sizeof(set[failed]->reason), "%s", why);
			kms_debug("probe: %s via %s %s: %s\n", p->events[owner[failed]].name,
				  method_names[set[failed]->method], set[failed]->target, why);
			continue;
		}
		/* not attributable: try each alone, reject those that fail */
		for (int k = 0; k < ns; k++)
			if (trial(env, set[k], shadows[k], set[k]->reason, sizeof(set[k]->reason)))
				set[k]->result = CR_REJECTED;
	}
	for (int i = 0; i < n; i++) {
		struct plan_event *ev = &p->events[i];
		const struct plan_event *a = alloc_of(p, ev);
		const struct plan_cand *ac = a && tent[a - p->events] >= 0 ?
					     &a->cands[tent[a - p->events]] : NULL;

		ev->selected = tent[i];
		if (tent[i] >= 0)
			ev->cands[tent[i]].result = CR_SELECTED;
		for (int j = 0; j < ev->nr_cands; j++) {
			struct plan_cand *c = &ev->cands[j];

			if (!wanted[i]) {
				c->result = CR_REJECTED;
				snprintf(c->reason, sizeof(c->reason), "%s", off_on_rt(ev) ?
					 "off on PREEMPT_RT (docs/detectors.md, the task witness)" :
					 "family not requested (--family)");
			} else if (c->result == CR_NOT_TRIED && j < tent[i]) {
				c->result = CR_REJECTED;
				snprintf(c->reason, sizeof(c->reason),
					 "allocations are traced at the %s level",
					 ac && is_tracepoint(ac->method) ? "tracepoint" : "function");
			} else if (c->result == CR_NOT_TRIED && tent[i] < 0 && ac &&
				   is_tracepoint(ac->method) != is_tracepoint(c->method)) {
				c->result = CR_REJECTED;
				snprintf(c->reason, sizeof(c->reason),
					 "allocations are traced at the %s level",
					 is_tracepoint(ac->method) ? "tracepoint" : "function");
			}
		}
	}
out:
	free(tent);
	free(set);
	free(owner);
	free(shadows);
}

/*
 * kvfree_call_rcu()'s second argument is an rcu_callback_t carrying the
 * object's offset up to 6.1, and the object itself since 6.2 (04a522b7da3d,
 * "rcu: Refactor kvfree_call_rcu() and high-level helpers"). The prototype
 * in BTF tells which: a pointer to a function, or not.
 */
static bool rcu_ptr_arg(const struct btf *btf)
{
	const struct btf_type *t;
	int id;

	id = btf ? btf__find_by_name_kind(btf, "kvfree_call_rcu", BTF_KIND_FUNC) : -1;
	if (id <= 0)
		return true;
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 2)
		return true;
	id = btf__resolve_type(btf, btf_params(t)[1].type);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	if (!t || !btf_is_ptr(t) || !t->type)
		return true;
	id = btf__resolve_type(btf, t->type);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	return !t || !btf_is_func_proto(t);
}

/*
 * Whether a large kmalloc() may fire kmem:kmalloc twice here: when
 * __do_kmalloc_node() hands it to __kmalloc_large_node_noprof(), which
 * traces it, and then traces it again itself. Measured: twice on 6.12 and
 * 6.18, which have that function; once on 6.1, whose __kmalloc_large_node()
 * traces nothing. The name tells where the pair can come from; bpf/
 * (kmalloc_first()) drops only a second event that matches a first.
 */
static bool kmalloc_twice(const struct btf *btf)
{
	return btf && btf__find_by_name_kind(btf, "__kmalloc_large_node_noprof", BTF_KIND_FUNC) > 0;
}

/*
 * Byte offset of a named member in a struct or union, looking into anonymous
 * members too: pcpu_hot.preempt_count sits inside an anonymous union/struct
 * pair on some kernels (6.12), directly in the struct on others. -1 if absent.
 */
static long member_off(const struct btf *btf, const struct btf_type *st, const char *name)
{
	const struct btf_member *m = btf_members(st);

	for (int k = 0; k < btf_vlen(st); k++, m++) {
		const char *n = btf__name_by_offset(btf, m->name_off);
		const struct btf_type *sub;
		long off;

		if (n && *n) {
			if (!strcmp(n, name))
				return btf_member_bit_offset(st, k) / 8;
			continue;
		}
		sub = btf__type_by_id(btf, btf__resolve_type(btf, m->type));
		if (!sub || !btf_is_composite(sub))
			continue;
		off = member_off(btf, sub, name);
		if (off >= 0)
			return btf_member_bit_offset(st, k) / 8 + off;
	}
	return -1;
}

/* offset of a variable in the kernel's per-CPU section, from BTF; -1 if absent */
long plan__percpu_off(const struct btf *btf, const char *name, const char *member)
{
	int n = btf__type_cnt(btf);

	for (int i = 1; i < n; i++) {
		const struct btf_type *t = btf__type_by_id(btf, i);
		const struct btf_var_secinfo *v;

		if (!btf_is_datasec(t) || strcmp(btf__name_by_offset(btf, t->name_off),
						  ".data..percpu"))
			continue;
		v = btf_var_secinfos(t);
		for (int j = 0; j < btf_vlen(t); j++, v++) {
			const struct btf_type *vt = btf__type_by_id(btf, v->type);
			const struct btf_type *st;
			long off;

			if (strcmp(btf__name_by_offset(btf, vt->name_off), name))
				continue;
			if (!member)
				return v->offset;
			/* a field of a per-CPU struct (pcpu_hot.preempt_count, 6.2 to 6.14) */
			st = btf__type_by_id(btf, btf__resolve_type(btf, vt->type));
			if (!st || !btf_is_struct(st))
				return -1;
			off = member_off(btf, st, member);
			return off < 0 ? -1 : v->offset + off;
		}
	}
	return -1;
}

/* elements of an array member of a struct, from BTF; -1 if absent */
static long array_len(const struct btf *btf, const char *st_name, const char *member)
{
	int id = btf__find_by_name_kind(btf, st_name, BTF_KIND_STRUCT);
	const struct btf_type *st = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_member *m = st ? btf_members(st) : NULL;

	for (int k = 0; st && k < btf_vlen(st); k++, m++) {
		const struct btf_type *t;

		if (strcmp(btf__name_by_offset(btf, m->name_off), member))
			continue;
		t = btf__type_by_id(btf, btf__resolve_type(btf, m->type));
		return t && btf_is_array(t) ? (long)btf_array(t)->nelems : -1;
	}
	return -1;
}

/*
 * Context capture reads the preempt count through the running task's
 * runqueue (read_ctx() in bpf/): it needs the per-CPU offsets of both.
 */
static void find_context_offsets(struct plan *p, const struct btf *btf)
{
	p->pcpu_rq_off = btf ? plan__percpu_off(btf, "runqueues", NULL) : -1;
	p->pcpu_pc_off = btf ? plan__percpu_off(btf, "__preempt_count", NULL) : -1;
	p->pc_var = "__preempt_count";
	if (btf && p->pcpu_pc_off < 0) {
		p->pcpu_pc_off = plan__percpu_off(btf, "pcpu_hot", "preempt_count");
		p->pc_var = "pcpu_hot.preempt_count";
	}
	if (p->pcpu_rq_off < 0 || p->pcpu_pc_off < 0)
		p->pc_var = NULL;
	p->pc_cast = btf && btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;
	/* the softirq witness (see_softirq() in bpf/) sums kstat.softirqs[] as it knows it */
	p->pcpu_sirq_off = btf && p->pcpu_rq_off >= 0 &&
			   array_len(btf, "kernel_stat", "softirqs") == KMS_NR_SOFTIRQS ?
			   plan__percpu_off(btf, "kstat", "softirqs") : -1;
}

/* deferred frees free objects of either slab family */
static bool family_on(const struct plan_event *ev, const bool *fam_on)
{
	if (ev->family < 0)
		return true;
	if (ev->deferred)
		return fam_on[KMS_FAM_KMALLOC] || fam_on[KMS_FAM_CACHE];
	return fam_on[ev->family];
}

static int load_live(const struct probe_env *env, struct plan *p);

/*
 * What ranks an event's candidates. A free's stack is never captured, so
 * only its attach point can give where it was called (a bad free's report
 * names that place): for frees, the call site ranks.
 */
static unsigned int rank_mask(const struct plan_event *ev)
{
	return ev->alloc ? PG_RANKED : PG_RANKED | PG_CALLER;
}

static int ranked(const struct plan_event *ev, const struct plan_cand *c)
{
	return __builtin_popcount(c->gives & rank_mask(ev));
}

/* candidates that deliver more of what reports need first; the table's order among equals */
static void rank_cands(struct plan_event *ev)
{
	for (int i = 1; i < ev->nr_cands; i++) {
		struct plan_cand c = ev->cands[i];
		int j = i;

		for (; j > 0 && ranked(ev, &ev->cands[j - 1]) < ranked(ev, &c); j--)
			ev->cands[j] = ev->cands[j - 1];
		ev->cands[j] = c;
	}
}

/*
 * percpu:percpu_alloc_percpu has carried call_site and gfp_flags since 6.2
 * (the BPF handler tests the same field): GFP is delivered where it does.
 */
static void percpu_gives(struct plan *p, const struct btf *btf)
{
	int id = btf ? btf__find_by_name_kind(btf, "trace_event_raw_percpu_alloc_percpu",
					      BTF_KIND_STRUCT) : -1;
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_member *m = t ? btf_members(t) : NULL;

	for (int k = 0; t && k < btf_vlen(t); k++, m++) {
		if (strcmp(btf__name_by_offset(btf, m->name_off), "gfp_flags"))
			continue;
		for (int i = 0; i < p->nr_events; i++)
			if (p->events[i].family == KMS_FAM_PERCPU && p->events[i].alloc)
				for (int j = 0; j < p->events[i].nr_cands; j++)
					p->events[i].cands[j].gives |= PG_GFP | PG_CALLER;
	}
}

/*
 * The kernel's BTF, mapped where the kernel allows it (6.16+, "btf: Allow
 * mmap of vmlinux btf"): reading its 5 MB from sysfs goes a page per read(),
 * and in this VM the read copy and its page faults cost more than the parse.
 * libbpf's own reader elsewhere.
 */
static struct btf *kernel_btf(void)
{
	int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	void *data = MAP_FAILED;
	struct btf *btf = NULL;
	struct stat st;

	if (fd >= 0 && !fstat(fd, &st) && st.st_size > 0)
		data = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (data != MAP_FAILED) {
		btf = btf__new(data, st.st_size);
		munmap(data, st.st_size);
	}
	if (fd >= 0)
		close(fd);
	return btf ? btf : btf__load_vmlinux_btf();
}

int plan__probe(struct plan **out, const struct collector_opts *cfg,
		struct ksyms_loader *syms)
{
	unsigned int families = cfg->families;
	struct probe_env env = { .cfg = cfg, .syms = syms };
	bool fam_wanted[KMS_FAM_MAX];
	bool *wanted = NULL;
	struct plan *p;
	char path[256];
	int err = -ENOMEM;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->nr_events = sizeof(plan_template) / sizeof(plan_template[0]);
	p->events = malloc(sizeof(plan_template));
	wanted = calloc(p->nr_events, sizeof(*wanted));
	if (!p->events || !wanted)
		goto out;
	memcpy(p->events, plan_template, sizeof(plan_template));
	/* the tables leave the count to the compiler's zero-filled tail */
	for (int i = 0; i < p->nr_events; i++) {
		struct plan_event *ev = &p->events[i];

		ev->nr_cands = 0;
		while (ev->nr_cands < PLAN_MAX_CANDS && ev->cands[ev->nr_cands].prog)
			ev->nr_cands++;
		rank_cands(ev);
	}

	/* parsed once, here: the trial objects take the facts they need from p */
	env.vmlinux = kernel_btf();
	env.kprobes = tracefs_path(path, sizeof(path), "kprobe_events") == 0 &&
		      access(path, F_OK) == 0;
	env.skel = kmemscope_bpf__open();
	if (!env.skel) {
		err = -errno;
		goto out;
	}
	env.p = p;
	p->rcu_ptr_arg = rcu_ptr_arg(env.vmlinux);
	p->kmalloc_twice = kmalloc_twice(env.vmlinux);
	find_context_offsets(p, env.vmlinux);
	percpu_gives(p, env.vmlinux);

	for (int f = 0; f < KMS_FAM_MAX; f++)
		fam_wanted[f] = !families || (families & (1u << f));
	for (int i = 0; i < p->nr_events; i++) {
		p->events[i].selected = -1;
		wanted[i] = family_on(&p->events[i], fam_wanted) && !off_on_rt(&p->events[i]);
	}
	probe_all(&env, p, wanted);
	p->deferred_traced = true;
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *ev = &p->events[i];

		if (!ev->deferred)
			continue;
		if (ev->selected < 0)
			p->deferred_traced = false;
		else if (!p->deferred_method)
			p->deferred_method = method_names[ev->cands[ev->selected].method];
	}
	if (!p->deferred_traced)
		p->deferred_method = NULL;
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		bool ok = true, any = false;

		for (int i = 0; i < p->nr_events; i++) {
			const struct plan_event *ev = &p->events[i];

			if (ev->family != f || ev->optional)
				continue;
			any = true;
			if (ev->selected < 0)
				ok = false;
			else if (ev->alloc)
				p->fam_method[f] = method_names[ev->cands[ev->selected].method];
		}
		p->fam_traced[f] = any && ok;
		if (!p->fam_traced[f])
			p->fam_method[f] = NULL;
	}
	/* uprobes and syscall tracepoints need no plan: user.c attaches them to the process */
	p->fam_traced[KMS_FAM_USER] = p->fam_traced[KMS_FAM_UMAP] = cfg->user;
	p->fam_method[KMS_FAM_USER] = cfg->user ? "uprobe" : NULL;
	p->fam_method[KMS_FAM_UMAP] = cfg->user ? "tracepoint" : NULL;
	err = load_live(&env, p);
out:
	kmemscope_bpf__destroy(env.skel);
	btf__free(env.vmlinux);
	free(wanted);
	if (err)
		plan__free(p);
	else
		*out = p;
	return err;
}

void plan__free(struct plan *p)
{
	if (!p)
		return;
	kmemscope_bpf__destroy(p->obj);
	free(p->events);
	free(p);
}

static const struct plan_event *live_event(const struct plan *p, int i)
{
	const struct plan_event *ev = &p->events[i];

	if (ev->selected < 0)
		return NULL;
	/* a family that is not traced as a whole is not loaded at all */
	if (!family_on(ev, p->fam_traced))
		return NULL;
	return ev;
}

/* does program name belong to the plan; *cand is its candidate, NULL for a shadow */
static bool prog_selected(const struct plan *p, const char *name, bool rescue,
			  const struct plan_cand **cand)
{
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *ev = live_event(p, i);
		const struct plan_cand *c;

		if (!ev)
			continue;
		c = &ev->cands[ev->selected];
		if (!strcmp(c->prog, name) || (c->prog2 && !strcmp(c->prog2, name))) {
			*cand = c;
			return true;
		}
		if (rescue && ev->shadow && is_tracepoint(c->method) && !strcmp(ev->shadow, name)) {
			*cand = NULL;
			return true;
		}
	}
	return false;
}

/*
 * The object the last trial kept holds the candidate of every event that has
 * one; the collector runs only the events of families traced as a whole.
 * Where the two differ (a family with an allocation event and no free event
 * that works, say), the live set is loaded on its own.
 */
static int load_live(const struct probe_env *env, struct plan *p)
{
	struct plan_cand **set = calloc(p->nr_events, sizeof(*set));
	const char **shadows = calloc(p->nr_events, sizeof(*shadows));
	bool same = p->obj != NULL;
	int ns = 0, failed, err = 0;
	char why[128];

	if (!set || !shadows) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < p->nr_events; i++) {
		struct plan_event *ev = &p->events[i];

		if (ev->selected < 0)
			continue;
		if (!live_event(p, i)) {
			same = false;
			continue;
		}
		shadows[ns] = is_tracepoint(ev->cands[ev->selected].method) ? ev->shadow : NULL;
		set[ns++] = &ev->cands[ev->selected];
	}
	if (same)
		goto out;
	kmemscope_bpf__destroy(p->obj);
	p->obj = NULL;
	err = trial_set(env, set, shadows, ns, &p->obj, &failed, why, sizeof(why));
	if (err)
		kms_error("Failed to load the planned BPF programs: %s\n", why);
out:
	free(set);
	free(shadows);
	return err;
}

static int attach_prog(struct kmemscope_bpf *skel, struct bpf_program *prog,
		       const struct plan_cand *c)
{
	const char *name = bpf_program__name(prog);
	struct bpf_link *l;
	bool ret = c && c->prog2 && !strcmp(c->prog2, name);

	l = c ? attach_one(prog, c, ret) : bpf_program__attach(prog);
	if (!l) {
		int err = -errno;

		kms_error("Failed to attach %s%s%s: %s\n", name, c ? " to " : "",
			  c ? c->target : "", strerror(-err));
		return err;
	}
	keep_link(skel, prog, l);
	return 0;
}

int plan__attach(const struct plan *p, struct kmemscope_bpf *skel, bool rescue)
{
	/*
	 * The handlers first, then their shadows: the kernel runs a
	 * tracepoint's programs in the order they were attached, and a shadow
	 * must run after its handler (bpf/stage.bpf.h, rescue_mark()).
	 */
	for (int shadows = 0; shadows < 2; shadows++) {
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, skel->obj) {
			const struct plan_cand *c = NULL;
			int err;

			/* the trial's links stay: attaching again would patch kernel text again */
			if (!prog_selected(p, bpf_program__name(prog), rescue, &c) ||
			    (c == NULL) != shadows || prog_linked(skel, prog))
				continue;
			err = attach_prog(skel, prog, c);
			if (err)
				return err;
		}
	}
	return 0;
}

unsigned int plan__gives(const struct plan *p, int fam)
{
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *ev = &p->events[i];

		if (ev->family == fam && ev->alloc && !ev->optional && ev->selected >= 0)
			return ev->cands[ev->selected].gives;
	}
	return 0;
}

static bool selected(const struct plan *p, const char *event)
{
	for (int i = 0; i < p->nr_events; i++)
		if (!strcmp(p->events[i].name, event))
			return p->events[i].selected >= 0;
	return false;
}

bool plan__softirq_witness(const struct plan *p)
{
	return selected(p, "softirq") && p->pcpu_sirq_off >= 0;
}

bool plan__task_witness(const struct plan *p)
{
	return selected(p, "switch");
}

static const char *result_names[] = {
	[CR_NOT_TRIED] = "not tried",
	[CR_SELECTED] = "selected",
	[CR_REJECTED] = "rejected",
};

static const char *stacks_name(const struct collector_opts *cfg)
{
	if (!cfg->stack_entries || !cfg->stack_types)
		return "none";
	/* leaks and misuse want one per allocation; the others where a site is missing */
	if (cfg->stack_types & (1ULL << KMS_EV_KMALLOC))
		return cfg->stack_cache ? "cached" : "all";
	return "sites";
}

/* enum plan_gives, bit by bit, as probe --json names them (docs/json-schema.md) */
static const char *gives_names[PG_NR] = { "gfp", "bytes_req", "bytes_alloc", "call_site",
					  "own_only" };

static void gives_text(unsigned int g, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int b = 0; b < PG_NR && off < len; b++)
		if (g & (1u << b))
			off += snprintf(buf + off, len - off, "%s%s", off ? "," : "", gives_names[b]);
}

static json_t *gives_json(unsigned int g)
{
	json_t *a = json_array();

	for (int b = 0; b < PG_NR; b++)
		if (g & (1u << b))
			json_array_append_new(a, json_string(gives_names[b]));
	return a;
}

/*
 * Why a candidate the plan did not try lost to the selected one: it
 * delivers less. NULL when it delivers as much (it only costs more).
 */
static const char *not_chosen(const struct plan_event *ev, const struct plan_cand *c,
			      const struct plan_cand *sel, char *buf, size_t len)
{
	unsigned int more = sel ? sel->gives & ~c->gives & rank_mask(ev) : 0;
	char lacks[64];
	int n;

	if (!sel || c->result != CR_NOT_TRIED || !more)
		return NULL;
	gives_text(more, lacks, sizeof(lacks));
	n = snprintf(buf, len, "delivers less: no %s", lacks);
	return n > 0 ? buf : NULL;
}

/* what the reports show where the selected candidate lacks a field */
static const struct {
	unsigned int field;	/* PG_* */
	const char *note;
} lack_notes[] = {
	{ PG_GFP, "gfp reads unknown" },
	{ PG_REQ, "bytes_req = bytes_alloc" },
	{ PG_OWN, "areas vmalloc did not make are told apart by their stack, left out" },
};

/* how the handlers read the preempt count (read_ctx() in bpf/) */
static const char *pc_read(const struct plan *p)
{
	return p->pc_cast ? "bpf_rdonly_cast" : "bpf_probe_read_kernel";
}

int plan__print_text(const struct plan *p, FILE *out)
{
	fprintf(out, "%-20s %-8s %-34s %s\n", "EVENT", "METHOD", "TARGET", "NOTES");
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *ev = &p->events[i];
		const struct plan_cand *sel = ev->selected >= 0 ? &ev->cands[ev->selected] : NULL;
		char gives[64] = "", why[96];

		if (sel && ev->alloc) {
			size_t off = snprintf(gives, sizeof(gives), "delivers ");

			gives_text(sel->gives, gives + off, sizeof(gives) - off);
		}
		fprintf(out, "%-20s %-8s %-34s %s\n", ev->name,
			sel ? method_names[sel->method] : "-", sel ? sel->target : "-",
			sel ? gives : ev->deferred ? "not traced: these frees go unseen" :
			(ev->optional ? "not traced (optional)" : "NOT TRACED"));
		for (size_t b = 0; sel && ev->alloc && b < sizeof(lack_notes) / sizeof(lack_notes[0]);
		     b++) {
			if (sel->gives & lack_notes[b].field)
				continue;
			gives_text(lack_notes[b].field, why, sizeof(why));
			fprintf(out, "%-20s   %-6s %-34s lacks %s: %s\n", "", "", "", why,
				lack_notes[b].note);
		}
		for (int j = 0; j < ev->nr_cands; j++) {
			const struct plan_cand *c = &ev->cands[j];
			const char *lost = not_chosen(ev, c, sel, why, sizeof(why));

			if (c->result == CR_REJECTED)
				fprintf(out, "%-20s   %-6s %-34s rejected: %s\n", "",
					method_names[c->method], c->target, c->reason);
			else if (lost)
				fprintf(out, "%-20s   %-6s %-34s not chosen: %s\n", "",
					method_names[c->method], c->target, lost);
		}
	}
	fprintf(out, "\nfamilies:");
	for (int f = 0; f < KMS_FAM_MAX; f++)
		if (!kms_family_is_user(f) || p->cfg.user)
			fprintf(out, " %s=%s", kms_family_name(f),
				p->fam_traced[f] ? p->fam_method[f] : "NOT-TRACED");
	fprintf(out, " deferred=%s\n", p->deferred_traced ? p->deferred_method : "NOT-TRACED");
	if (p->deferred_traced)
		fprintf(out, "kvfree_call_rcu(): the object is %s\n", p->rcu_ptr_arg ?
			"its second argument (6.2+)" : "head - func, or func when head is NULL (<= 6.1)");
	if (p->fam_traced[KMS_FAM_KMALLOC])
		fprintf(out, "large kmalloc(): %s\n", p->kmalloc_twice ?
			"traced twice by this kernel (__kmalloc_large_node_noprof, then its "
			"caller): the second event is dropped, counted as kmalloc_twice" :
			"traced once (no __kmalloc_large_node_noprof)");
	if (p->pc_var)
		fprintf(out, "context capture: %s, read by %s\n", p->pc_var, pc_read(p));
	else
		fprintf(out, "context capture: unavailable (no per-CPU preempt count in BTF): "
			"misuse sees no context\n");
	fprintf(out, "softirq witness: %s\n", plan__softirq_witness(p) ?
		"kstat.softirqs against irq:softirq_entry" :
		"unavailable: softirqs no handler sees are not counted");
	fprintf(out, "task witness: %s\n", plan__task_witness(p) ? "sched:sched_switch" :
		"unavailable: task runs no handler sees are not counted");
	if (p->cfg.user)
		fprintf(out, "user allocator: %s\n", p->user_allocator[0] ? p->user_allocator :
			"found in each process as it runs (give one -p PID to see it)");
	fprintf(out, "\nchecked as loaded with: pid filter %s, order %s, stacks %s, context %s, "
		"rescue %s\n", p->cfg.filter_pids ? "on" : "off", p->cfg.order_seq ? "seq" : "time",
		stacks_name(&p->cfg), p->cfg.context ? "on" : "off", p->cfg.rescue ? "on" : "off");
	return 0;
}


int plan__print_json(const struct plan *p, const char *kernel, FILE *out)
{
	json_t *root = json_object(), *evs = json_array(), *fams = json_array();
	int err;

	json_object_set_new(root, "schema", json_string("kmemscope.probe"));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "kernel", json_string(kernel));
	json_object_set_new(root, "configuration",
			    json_pack("{s:b, s:s, s:s, s:b, s:b}", "pid_filter", p->cfg.filter_pids,
				      "order", p->cfg.order_seq ? "seq" : "time",
				      "stacks", stacks_name(&p->cfg), "context", p->cfg.context,
				      "rescue", p->cfg.rescue));
	for (int i = 0; i < p->nr_events; i++) {
		const struct plan_event *ev = &p->events[i];
		const struct plan_cand *sel = ev->selected >= 0 ? &ev->cands[ev->selected] : NULL;
		json_t *e = json_object(), *cands = json_array();
		char why[96];

		json_object_set_new(e, "event", json_string(ev->name));
		json_object_set_new(e, "family", ev->family >= 0 ?
				    json_string(kms_family_name(ev->family)) : json_null());
		json_object_set_new(e, "method", sel ? json_string(method_names[sel->method]) :
				    json_null());
		json_object_set_new(e, "target", sel ? json_string(sel->target) : json_null());
		json_object_set_new(e, "traced", json_boolean(sel != NULL));
		json_object_set_new(e, "optional", json_boolean(ev->optional));
		json_object_set_new(e, "deferred", json_boolean(ev->deferred));
		json_object_set_new(e, "delivers", sel && ev->alloc ? gives_json(sel->gives) :
				    json_null());
		for (int j = 0; j < ev->nr_cands; j++) {
			const struct plan_cand *c = &ev->cands[j];
			json_t *cj = json_object();

			json_object_set_new(cj, "method", json_string(method_names[c->method]));
			json_object_set_new(cj, "target", json_string(c->target));
			json_object_set_new(cj, "result", json_string(result_names[c->result]));
			if (ev->alloc)
				json_object_set_new(cj, "delivers", gives_json(c->gives));
			if (c->result == CR_REJECTED)
				json_object_set_new(cj, "reason", json_string(c->reason));
			else if (not_chosen(ev, c, sel, why, sizeof(why)))
				json_object_set_new(cj, "reason", json_string(why));
			json_array_append_new(cands, cj);
		}
		json_object_set_new(e, "candidates", cands);
		json_array_append_new(evs, e);
	}
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		json_t *fj;

		/* the user families are there with --user only: they have no kernel attach point */
		if (kms_family_is_user(f) && !p->cfg.user)
			continue;
		fj = json_object();
		json_object_set_new(fj, "family", json_string(kms_family_name(f)));
		json_object_set_new(fj, "traced", json_boolean(p->fam_traced[f]));
		json_object_set_new(fj, "method", p->fam_method[f] ?
				    json_string(p->fam_method[f]) : json_null());
		json_array_append_new(fams, fj);
	}
	json_object_set_new(root, "events", evs);
	json_object_set_new(root, "families", fams);
	json_object_set_new(root, "deferred_frees", json_pack("{s:b,s:s?,s:s}",
			    "traced", p->deferred_traced, "method", p->deferred_method,
			    "rcu_object_arg", p->rcu_ptr_arg ? "ptr" : "head-offset"));
	json_object_set_new(root, "kmalloc_traced_twice", json_boolean(p->kmalloc_twice));
	json_object_set_new(root, "context_capture", json_pack("{s:b,s:s?,s:s?}",
			    "available", p->pc_var != NULL, "preempt_count", p->pc_var,
			    "read", p->pc_var ? pc_read(p) : NULL));
	json_object_set_new(root, "softirq_witness", json_boolean(plan__softirq_witness(p)));
	json_object_set_new(root, "task_witness", json_boolean(plan__task_witness(p)));
	if (p->cfg.user)
		json_object_set_new(root, "user_allocator", p->user_allocator[0] ?
				    json_string(p->user_allocator) : json_null());
	err = json_dumpf(root, out, JSON_INDENT(2));
	fputc('\n', out);
	json_decref(root);
	return err ? -EIO : 0;
}
