/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <linux/membarrier.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "session.h"
#include "collector.h"
#include "cpu_nodes.h"
#include "detect.h"
#include "pipeline.h"
#include "frames.h"
#include "gfp.h"
#include "ksyms.h"
#include "log.h"
#include "plan.h"
#include "session_trace.h"
#include "trace.h"
#include "tracefs.h"
#include "user.h"
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#define STACK_ENTRIES 16384
#define POLL_NS (10ULL * 1000 * 1000)

/* every allocation event, for the leak detector's stacks */
static const __u64 all_alloc_types = (1ULL << KMS_EV_KMALLOC) | (1ULL << KMS_EV_CACHE_ALLOC) |
				     (1ULL << KMS_EV_PAGE_ALLOC) | (1ULL << KMS_EV_VMALLOC) |
				     (1ULL << KMS_EV_DMA_ALLOC) | (1ULL << KMS_EV_PERCPU_ALLOC) |
				     (1ULL << KMS_EV_ALLOC_FAIL);

/* events whose attach points report no call site: the site comes from the stack */
static const __u64 site_stack_types = (1ULL << KMS_EV_PAGE_ALLOC) | (1ULL << KMS_EV_VMALLOC) |
				      (1ULL << KMS_EV_DMA_ALLOC) | (1ULL << KMS_EV_ALLOC_FAIL);

static __u64 resolve_site(struct session *s, int stack_id)
{
	__u64 ips[KMS_MAX_STACK];
	unsigned long uips[KMS_MAX_STACK];
	int n, i;

	if (stack_id < 0 || (unsigned int)stack_id >= s->stack_entries)
		return 0;
	if (s->site_cache[stack_id])
		return s->site_cache[stack_id] - 1;
	n = collector__stack(s->coll, stack_id, ips, KMS_MAX_STACK);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++)
		uips[i] = ips[i];
	i = s->ksyms ? frames__pick_site(s->ksyms, uips, n) : 0;
	s->site_cache[stack_id] = (i >= 0 ? ips[i] : 0) + 1;
	return i >= 0 ? ips[i] : 0;
}

/*
 * A vmap area vmalloc made: its stack passes through __vmalloc_node_range();
 * ioremap's, vmap's and vm_map_ram's do not. Without a stack, taken for one.
 */
static bool made_by_vmalloc(struct session *s, int stack_id)
{
	__u64 ips[KMS_MAX_STACK];
	unsigned long uips[KMS_MAX_STACK];
	int n;

	if (stack_id < 0 || (unsigned int)stack_id >= s->stack_entries || !s->ksyms)
		return true;
	if (s->vmalloc_cache[stack_id])
		return s->vmalloc_cache[stack_id] == 1;
	n = collector__stack(s->coll, stack_id, ips, KMS_MAX_STACK);
	if (n <= 0)
		return true;
	for (int i = 0; i < n; i++)
		uips[i] = ips[i];
	s->vmalloc_cache[stack_id] = frames__through(s->ksyms, uips, n, "__vmalloc_node_range") ?
				     1 : 2;
	return s->vmalloc_cache[stack_id] == 1;
}

/* the calibration workload's own allocations measure the tracer's baseline */
static bool calibration_event(struct session *s, const struct kms_event *e)
{
	int fam;

	if (!s->calibrating)
		return false;
	/* tracing starts when calibration ends: what comes before is not reported */
	if (e->pid != (__u32)s->self)
		return true;
	fam = kms_ev_family(e->type);
	/* only plain process context: no interrupt bits, and the lowest depth seen */
	if (fam >= 0 && kms_ev_is_alloc(e->type) && (e->ctx & KMS_CTX_KNOWN) &&
	    !(e->pc & 0xfff00) && (s->calib_min[fam] < 0 || (int)(e->pc & 0xff) < s->calib_min[fam]))
		s->calib_min[fam] = e->pc & 0xff;
	return true;
}

/* user addresses lie in the lower half, kernel ones in the upper */
static bool user_addr(__u64 addr)
{
	return addr && addr < 1ULL << 63;
}

/*
 * --user: the frames that will need a source line (add_user_symbols()).
 * A set insert per user record; a set that cannot grow costs lines, not
 * records.
 */
static void note_user_frames(struct session *s, const struct kms_event *e)
{
	bool created;

	if (!user_addr(e->site))
		return;
	kvec__get(&s->user_sites, &e->site, &created);
	if (e->stack_id >= 0)
		kvec__get(&s->user_stacks, &(__u64){ (__u64)e->stack_id }, &created);
}

struct joined_stack {
	__u64 site;
	__u64 stack_id;
};

int session__stack(void *ctx, int stack_id, __u64 *ips, int max)
{
	struct session *s = ctx;
	const struct joined_stack *j;
	int n;

	if (!s->coll)
		return -ENOENT;
	if (stack_id < 0 || (unsigned int)stack_id < s->stack_entries)
		return collector__stack(s->coll, stack_id, ips, max);
	if ((size_t)stack_id - s->stack_entries >= s->joined.nr || max <= 0)
		return -ENOENT;
	j = kvec__at(&s->joined, stack_id - s->stack_entries);
	ips[0] = j->site;
	n = collector__stack(s->coll, j->stack_id, ips + 1, max - 1);
	return n < 0 ? n : n + 1;
}

/*
 * A user stack without its call site (KMS_CTX_USKIP): the id of the whole
 * one, the site then those frames, for every consumer (reports, the file).
 * There are no more pairs than the call paths of the stacks that collided.
 */
static void join_user_stack(struct session *s, struct kms_event *e)
{
	struct joined_stack key = { e->site, (__u64)e->stack_id };
	bool created;
	long i = kvec__get(&s->joined, &key, &created);

	e->ctx &= ~KMS_CTX_USKIP;
	/* no memory: a record without a stack, whose verdict says it was not taken */
	e->stack_id = i < 0 ? -ENOMEM : (__s32)(s->stack_entries + i);
}

static void sink_ahead(void *ctx, const struct kms_event *e)
{
	struct session *s = ctx;

	pipeline__prefetch(&s->pipe, e);
}

static void sink_event(void *ctx, struct kms_event *e)
{
	struct session *s = ctx;

	if (!e->site && e->stack_id >= 0)
		e->site = resolve_site(s, e->stack_id);
	if (e->ctx & KMS_CTX_USKIP)
		join_user_stack(s, e);
	if (s->user)
		note_user_frames(s, e);
	if (e->type == KMS_EV_VMALLOC && s->vmap_level && !made_by_vmalloc(s, e->stack_id))
		e->extra |= KMS_X_MAPPING;
	if (calibration_event(s, e))
		pipeline__observe(&s->pipe, e);
	else
		pipeline__event(&s->pipe, e);
}

/*
 * Whether a slab cache is reclaimable (SLAB_RECLAIM_ACCOUNT: dentries, inodes),
 * from SLUB's sysfs: the flag's bit moves between kernel versions, the file
 * does not. Merged caches keep reclaimable ones apart, and every alias has
 * an entry there.
 */
static bool cache_reclaimable(const char *name)
{
	char path[96], v = '0';
	FILE *f;

	if (!*name || strchr(name, '/'))
		return false;
	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/reclaim_account", name);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fread(&v, 1, 1, f) != 1)
		v = '0';
	fclose(f);
	return v == '1';
}

static void sink_meta(void *ctx, const struct kms_meta *in)
{
	struct session *s = ctx;
	struct kms_meta copy;
	const struct kms_meta *m = in;

	if (in->type == KMS_EV_META_CACHE) {
		/* every CPU names a cache again: ask sysfs once per cache */
		const struct agg_cache *known = agg__find_cache(s->pipe.agg, in->key);

		copy = *in;
		copy.name[KMS_NAME_LEN - 1] = '\0';
		if (known && !strcmp(known->name, copy.name))
			copy.flags = known->flags;
		else if (cache_reclaimable(copy.name))
			copy.flags |= KMS_META_RECLAIMABLE;
		m = &copy;
	}
	pipeline__meta(&s->pipe, m);
}

/* allocations from plain process context, in as many families as user space can reach */
static void calibration_workload(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo);
	int p[2];

	for (int i = 0; i < 16; i++) {
		if (pipe(p) == 0) {
			close(p[0]);
			close(p[1]);
		}
	}
	/* a large map is vmalloc'ed; its percpu counters come from the percpu allocator */
	for (int i = 0; i < 2; i++) {
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kms_calib", 4, 4096, 256, &mo);

		if (fd >= 0)
			close(fd);
	}
}

/* records with node -1 (NUMA_NO_NODE) count on the node of the CPU they ran on */
static void read_cpu_nodes(struct session *s)
{
	int nr = libbpf_num_possible_cpus(), err = -ENOMEM;

	if (nr <= 0)
		return;
	s->cpu_nodes = calloc(nr, sizeof(*s->cpu_nodes));
	if (s->cpu_nodes) {
		err = cpu_nodes__read(NULL, s->cpu_nodes, nr);
		s->nr_cpu_nodes = err >= 0 ? nr : 0;
	}
	if (err < 0)
		kms_warn("cannot read the CPUs' NUMA nodes (%s/node): %s; records without a "
			 "node count as node 0\n", CPU_NODES_SYSFS, strerror(-err));
}

int session__pipeline(struct session *s, const struct session_opts *o, bool deferred_traced,
		      unsigned int page_shift,
		      int (*stack)(void *ctx, int stack_id, __u64 *ips, int max))
{
	struct pipeline_opts po = {};
	struct detect_opts dopts;

	po.filter.comm = o->comm;
	po.filter.families = o->families;
	po.no_count = o->no_reports;
	po.stack = stack;
	po.stack_ctx = s;
	/* live, BPF filters processes (with their children); a file is filtered here */
	if (s->trace) {
		po.filter.pids = o->pids;
		po.filter.nr_pids = o->nr_pids;
	}
	if (o->detect) {
		dopts = *o->detect;
		dopts.stack = stack;
		dopts.stack_ctx = s;
		dopts.page_shift = page_shift;
		/* kfree_rcu() and bulk frees attached: an unfreed slab object was not freed */
		dopts.deferred_frees = deferred_traced;
		dopts.trace_cut = s->trace_q.cut_short;
		dopts.stacks_partial = strcmp(s->stacks, "every") && strcmp(s->stacks, "cached");
		dopts.preempt_rt = s->preempt_rt;
		if (s->gfp)
			dopts.gfp_retained = gfp_table__value(s->gfp, "__GFP_MOVABLE") |
					     gfp_table__value(s->gfp, "__GFP_RECLAIMABLE");
		po.detect = &dopts;
	}
	if (pipeline__init(&s->pipe, &po) ||
	    agg__set_cpu_nodes(s->pipe.agg, s->cpu_nodes, s->nr_cpu_nodes)) {
		kms_error("Failed to set up the aggregation: %s\n", strerror(ENOMEM));
		return 1;
	}
	pipeline__set_ksyms(&s->pipe, s->ksyms);
	if (s->pipe.detect)
		detect__set_env(s->pipe.detect, s->ksyms, s->baseline_pc,
				s->gfp ? gfp_table__value(s->gfp, "__GFP_DIRECT_RECLAIM") : 0);
	return 0;
}

static bool is_tracepoint_method(const char *m)
{
	return m && (!strcmp(m, "tp_btf") || !strcmp(m, "raw_tp"));
}

/*
 * Measure what preempt count a plain process-context allocation shows in each
 * family (the tracer's own preempt_disable() included), rather than assume the
 * tracepoint's +1: function probes differ. Families the workload cannot reach
 * take the value measured for another family traced the same way.
 */
static void calibrate(struct session *s, bool filtering)
{
	__u64 until;

	for (int f = 0; f < KMS_FAM_MAX; f++) {
		s->calib_min[f] = -1;
		s->baseline_pc[f] = -1;
	}
	if (filtering)
		collector__add_pid(s->coll, s->self);
	s->calibrating = true;
	calibration_workload();
	/*
	 * A sync flushes every CPU's stage: the workload's records are in
	 * after the first one, unless the ring was slow to take them.
	 */
	until = cli_now_ns() + 300ULL * 1000 * 1000;
	for (;;) {
		struct timespec pause = { 0, 1000 * 1000 };

		collector__sync(s->coll);
		if ((s->calib_min[KMS_FAM_KMALLOC] >= 0 && s->calib_min[KMS_FAM_CACHE] >= 0) ||
		    cli_now_ns() >= until)
			break;
		nanosleep(&pause, NULL);
	}
	/* before the last sync: what kmemscope allocates later is left out in BPF */
	if (!s->self_traced)
		collector__exclude(s->coll, s->self);
	if (filtering)
		collector__del_pid(s->coll, s->self);
	/* what the workload staged anywhere is delivered, and intercepted, now */
	collector__sync(s->coll);
	s->calibrating = false;

	for (int f = 0; f < KMS_FAM_MAX; f++) {
		bool tp = is_tracepoint_method(s->plan->fam_method[f]);

		if (!s->plan->fam_traced[f])
			continue;
		s->baseline_pc[f] = s->calib_min[f];
		for (int g = 0; g < KMS_FAM_MAX && s->baseline_pc[f] < 0; g++)
			if (s->calib_min[g] >= 0 && tp == is_tracepoint_method(s->plan->fam_method[g]))
				s->baseline_pc[f] = s->calib_min[g];
		kms_debug("context baseline for family %d: %d\n", f, s->baseline_pc[f]);
	}
}

static unsigned long long ms(__u64 ns)
{
	return ns / 1000000;
}

/* which allocations carry a stack: reports and trace files name the mode so */
static const char *const stacks_names[] = { "none", "sites", "every", "cached" };

const char *session__stacks(const struct session_opts *o)
{
	return stacks_names[o->stacks_all ? (o->stack_cache ? 3 : 2) : o->no_stacks ? 0 : 1];
}

const char *session__stacks_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof(stacks_names) / sizeof(stacks_names[0]); i++)
		if (!strcmp(name, stacks_names[i]))
			return stacks_names[i];
	return stacks_names[0];
}

void session__collector_opts(const struct session_opts *o, struct collector_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->ring_mb = o->ring_mb;
	co->families = o->families;
	/* a shared counter is cheapest on small machines; ktime scales on big ones */
	co->order_seq = o->order == SESSION_ORDER_SEQ ||
			(o->order == SESSION_ORDER_AUTO && libbpf_num_possible_cpus() <= 8);
	co->filter_pids = o->nr_pids > 0 || (o->cmd && !o->all_cpus);
	co->context = o->context;
	co->rescue = o->rescue;
	co->user = o->user;
	if (!o->no_stacks || o->stacks_all) {
		co->stack_entries = STACK_ENTRIES;
		co->stack_types = o->stacks_all ? all_alloc_types : site_stack_types;
		/* the site-less events' stacks, which only name a site, are cached alike */
		co->stack_cache = !o->stacks_all ? KMS_STACK_CACHE_SITELESS :
				  o->stack_cache ? KMS_STACK_CACHE_ALL : KMS_STACK_CACHE_NONE;
		/* malloc's caller is its site; mappings and brk have none but their stack */
		if (o->user)
			co->stack_types |= (1ULL << KMS_EV_UMMAP) | (1ULL << KMS_EV_UBRK) |
					   (o->stacks_all ? 1ULL << KMS_EV_UALLOC : 0);
	}
}

int session__start(struct session *s, const struct session_opts *o)
{
	struct collector_opts co = {};
	struct collector_sink sink = { .event = sink_event, .meta = sink_meta, .ctx = s,
				       .ahead = sink_ahead };
	__u64 t0, t_plan, t_attach, t_syms;
	int err;

	memset(s, 0, sizeof(*s));
	s->cmd.go_fd = -1;
	s->cmd.err_fd = -1;
	s->self = getpid();
	for (int f = 0; f < KMS_FAM_MAX; f++)
		s->baseline_pc[f] = -1;
	if (o->input) {
		s->input = o->input;
		s->from = o->from;
		s->to = o->to;
		return session_trace__open(s, o);
	}
	s->kernel = cli_kernel_release();
	s->preempt_rt = cli_kernel_is_rt(cli_kernel_version());
	err = cli_preflight();
	if (err)
		return err;

	t0 = cli_now_ns();
	/* read while the programs load, on a second CPU: both take ~0.1 s */
	ksyms__load_start(&s->syms, NULL);
	err = gfp_table__load(&s->gfp, tracefs_root());
	if (err) {
		kms_warn("cannot read GFP flag names of this kernel: %s; GFP stays hex\n",
			 strerror(-err));
		s->gfp = NULL;
	}
	session__collector_opts(o, &co);
	err = plan__probe(&s->plan, &co, &s->syms);
	if (err) {
		kms_error("Failed to probe attach points: %s\n", strerror(-err));
		return 1;
	}
	read_cpu_nodes(s);
	s->stacks = session__stacks(o);	/* session__pipeline() reads it */
	/* the baselines are measured later: detect__set_env() again after calibration */
	if (session__pipeline(s, o, s->plan->deferred_traced,
			      __builtin_ctzl(sysconf(_SC_PAGESIZE)), session__stack))
		return 1;
	for (int f = 0; f < KMS_FAM_MAX; f++)
		if ((!o->families || (o->families & (1u << f))) && !s->plan->fam_traced[f] &&
		    (!kms_family_is_user(f) || o->user))
			kms_warn("family %s cannot be traced on this kernel (see 'kmemscope "
				 "probe'); reports mark it NOT TRACED\n", kms_family_name(f));

	if (co.stack_entries) {
		s->stack_entries = co.stack_entries;
		s->site_cache = calloc(co.stack_entries, sizeof(*s->site_cache));
		s->vmalloc_cache = calloc(co.stack_entries, sizeof(*s->vmalloc_cache));
		if (!s->site_cache || !s->vmalloc_cache)
			return 1;
	}
	s->vmap_level = s->plan->fam_traced[KMS_FAM_VMALLOC] &&
			!(plan__gives(s->plan, KMS_FAM_VMALLOC) & PG_OWN);
	err = collector__open(&s->coll, s->plan, &co, sink);
	if (err)
		return 1;
	if (o->record && session_trace__record(s, o))
		return 1;
	for (int i = 0; i < o->nr_pids; i++) {
		if (kill(o->pids[i], 0) && errno == ESRCH) {
			kms_error("no process with pid %d\n", o->pids[i]);
			return 2;
		}
		collector__add_pid(s->coll, o->pids[i]);
	}
	if (o->cmd) {
		err = cli_cmd_start(&s->cmd, o->cmd);
		if (err) {
			kms_error("Failed to start %s: %s\n", o->cmd[0], strerror(-err));
			return 1;
		}
		if (!o->all_cpus)
			collector__add_pid(s->coll, s->cmd.pid);
	}
	s->context = collector__context(s->coll);
	s->context_requested = o->context;
	s->self_traced = o->trace_self;
	/* with context, calibration measures kmemscope's own allocations first */
	if (!s->self_traced && !s->context)
		collector__exclude(s->coll, s->self);
	/*
	 * The symbols before the programs run: what the ring takes until tracing
	 * starts is dropped, and on a busy machine it would fill the ring while
	 * the loader finishes (~40 ms here; a loss that marks every verdict).
	 */
	t_plan = cli_now_ns();
	s->ksyms = ksyms__wait(&s->syms);
	pipeline__set_ksyms(&s->pipe, s->ksyms);
	/* before calibration delivers anything: the file interns every address it takes */
	if (s->rec)
		trace_writer__set_ksyms(s->rec, s->ksyms);
	if (!s->ksyms)
		kms_warn("cannot read kernel symbols (/proc/kallsyms): %s; sites stay hex\n",
			 strerror(errno));
	/* the load did not wait for kallsyms: the wrappers' sites are known from here */
	collector__set_wrappers(s->coll, s->ksyms);
	t_syms = cli_now_ns();
	err = collector__attach(s->coll);
	kvec__init(&s->user_sites, sizeof(__u64), sizeof(__u64));
	kvec__init(&s->user_stacks, sizeof(__u64), sizeof(__u64));
	kvec__init(&s->joined, sizeof(struct joined_stack), sizeof(struct joined_stack));
	if (!err && o->user) {
		err = user__attach(&s->user, collector__bpf(s->coll),
				   o->cmd ? s->cmd.pid : o->pids[0], o->cmd ? o->cmd[0] : NULL);
		/* CMD not found: its exec fails and says so (127), as without --user */
		if (o->cmd && (err == -ENOENT || err == -EACCES) && cli_cmd_go(&s->cmd) == 127)
			return 127;
	}
	if (err) {
		cli_cmd_abort(&s->cmd);
		return 1;
	}
	t_attach = cli_now_ns();
	if (s->context)
		calibrate(s, co.filter_pids);
	if (s->pipe.detect)
		detect__set_env(s->pipe.detect, s->ksyms, s->baseline_pc,
				s->gfp ? gfp_table__value(s->gfp, "__GFP_DIRECT_RECLAIM") : 0);
	s->start_ns = cli_now_ns();
	s->cpu_start_ns = cli_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (session_trace__begin(s, o)) {
		cli_cmd_abort(&s->cmd);
		return 1;
	}
	kms_info("tracing, %llu ms after start-up began (plan and load %llu ms, waiting for "
		 "symbols %llu ms, attach %llu ms, calibration %llu ms)\n", ms(s->start_ns - t0),
		 ms(t_plan - t0), ms(t_syms - t_plan), ms(t_attach - t_syms),
		 ms(s->start_ns - t_attach));
	/* 127 when CMD cannot run: nothing to report */
	return cli_cmd_go(&s->cmd);
}

/*
 * Feedback on long work, on stderr so that it never mixes with a report,
 * whatever its format. A command that waits for Ctrl-C says once, before it
 * waits, what it traces and how to end it; a replay shows how far it is, on
 * a terminal only.
 */
void session__feedback(struct session *s, const struct session_opts *o, double duration)
{
	int f, traced = 0, n = 0;
	char *line = NULL;
	size_t len;
	FILE *m;

	if (s->trace) {
		s->progress = isatty(STDERR_FILENO);
		return;
	}
	if (duration > 0 || o->cmd)
		return;
	/* built whole, then written in one go */
	m = open_memstream(&line, &len);
	if (!m)
		return;
	fprintf(m, "Tracing kernel allocations");
	for (int i = 0; i < o->nr_pids; i++)
		fprintf(m, "%s %d", i ? "," : " of pid", o->pids[i]);
	if (o->nr_pids)
		fprintf(m, " and %s children", o->nr_pids > 1 ? "their" : "its");
	if (o->comm)
		fprintf(m, "%s named %s", o->nr_pids ? ", processes" : " of processes", o->comm);
	if (!o->nr_pids && !o->comm)
		fprintf(m, " system-wide");
	for (f = 0; f < KMS_FAM_MAX; f++)
		traced += (!o->families || (o->families & (1u << f))) && s->plan->fam_traced[f];
	if (traced == KMS_FAM_MAX)
		fprintf(m, " (%d families)", traced);
	for (f = 0; traced < KMS_FAM_MAX && f < KMS_FAM_MAX; f++)
		if ((!o->families || (o->families & (1u << f))) && s->plan->fam_traced[f])
			fprintf(m, "%s%s", n++ ? ", " : " (", kms_family_name(f));
	if (n)
		fprintf(m, ")");
	if (o->record)
		fprintf(m, ", recording to %s", o->record);
	fprintf(m, "... Hit Ctrl-C to end.\n");
	if (!fclose(m))
		fputs(line, stderr);
	free(line);
}

int session__run(struct session *s, double duration, double interval,
		 int (*tick)(struct session *s, void *ctx), void *ctx)
{
	__u64 end = duration > 0 ? s->start_ns + (__u64)(duration * 1e9) : ~0ULL;
	__u64 every = interval > 0 ? (__u64)(interval * 1e9) : 0;
	__u64 next_tick = every ? s->start_ns + every : ~0ULL;
	struct timespec pause = { 0, POLL_NS };
	int err, busy;

	if (s->trace)
		return session_trace__replay(s, interval, tick, ctx);
	s->interval_ns = tick ? every : 0;
	for (;;) {
		__u64 now;

		busy = collector__poll(s->coll);
		if (busy < 0) {
			kms_error("Failed to read events: %s\n", strerror(-busy));
			return 1;
		}
		if (user__poll(s->user))
			return 1;
		now = cli_now_ns();
		if (session_trace__tick(s, now))
			return 1;
		if (tick && now >= next_tick) {
			/* where the snapshot falls in the stream: a replay takes it there too */
			if (s->rec)
				trace_writer__tick(s->rec);
			err = tick(s, ctx);
			if (err)
				return err > 0 ? 0 : 1;
			next_tick += every;
		}
		if (cli_exiting() || now >= end)
			break;
		if (s->cmd.pid > 0 && cli_cmd_done(&s->cmd))
			break;
		if (!busy)
			nanosleep(&pause, NULL);
	}
	return 0;
}

/*
 * A CPU that goes idle after running a task that exited keeps the task's mm
 * as its active mm (lazy TLB: CONFIG_MMU_LAZY_TLB_REFCOUNT, x86 among others)
 * until it next runs a user task, and the mm_struct, its top page table and its
 * counters are freed only then: on a quiet machine a traced command's mm
 * outlived the settle period and showed as certain leaks at mm_alloc,
 * pgd_alloc and copy_process. Running this thread once on every CPU it may
 * use ends those borrowings (the switch to our mm drops the old one; on
 * PREEMPT_RT the drop waits for the grace period that follows). The CPUs
 * of our affinity mask are visited and the others the cpuset allows (as
 * taskset -c 0 kmemscope ... -- taskset -c 1 CMD); offline CPUs and CPUs
 * outside the cpuset cannot be.
 */
static void visit_cpus(void)
{
	int nr = libbpf_num_possible_cpus();
	size_t size;
	cpu_set_t *mine, *one;

	if (nr <= 0)
		return;
	size = CPU_ALLOC_SIZE(nr);
	mine = CPU_ALLOC(nr);
	one = CPU_ALLOC(nr);
	if (mine && one && !sched_getaffinity(0, size, mine)) {
		/* every CPU, not only ours: the traced command may have run elsewhere */
		for (int cpu = 0; cpu < nr; cpu++) {
			CPU_ZERO_S(size, one);
			CPU_SET_S(cpu, size, one);
			/* returns once this thread runs there */
			if (sched_setaffinity(0, size, one))
				kms_debug("visiting CPU %d: %s\n", cpu, strerror(errno));
		}
		if (sched_setaffinity(0, size, mine))
			kms_debug("restoring the CPU affinity: %s\n", strerror(errno));
	}
	CPU_FREE(mine);
	CPU_FREE(one);
}

/*
 * Files sent over AF_UNIX sockets and never received, held by sockets that
 * hold each other (sent over themselves or their peers), go only when the
 * kernel's unix garbage collector runs, and the kernel starts it when some
 * AF_UNIX socket is closed while files are in flight. On the 6.18 host a
 * command that left such cycles showed their files, the files' LSM blobs and
 * the kernel's lists of the files in flight as certain leaks (300 objects for
 * 30 cycles) until any later unix socket closed. Closing a pair of our own
 * starts the collector now; the settle period sees what it frees.
 */
static void collect_unix_garbage(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		kms_debug("socketpair: %s\n", strerror(errno));
		return;
	}
	close(sv[0]);
	close(sv[1]);
}

/*
 * Waits until every call_rcu() callback queued so far has run: a grace
 * period alone (membarrier) does not wait for the callbacks, and on this
 * project's 6.18 machines an idle CPU ran some (the page tables of an exited
 * command, freed through RCU batches) more than a second later. The kernel's
 * rcutree.do_rcu_barrier parameter (6.3 and later, root) calls rcu_barrier()
 * and returns when it has; without it, one grace period is what we get.
 */
static void wait_rcu_callbacks(void)
{
	int fd = open("/sys/module/rcutree/parameters/do_rcu_barrier", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		bool done = write(fd, "1", 1) == 1;

		close(fd);
		if (done)
			return;
	}
	/* MEMBARRIER_CMD_GLOBAL returns after an RCU grace period (synchronize_rcu()) */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		kms_debug("membarrier: %s\n", strerror(errno));
}

/*
 * After the window, frees go on: call_rcu() callbacks, RCU-deferred page
 * tables, task structs and the like are freed by a traced free a grace
 * period later. Everything made in the window is delivered first; from then
 * on allocations are after the window (dropped, counted), and a free counts
 * only when it frees one of the window's objects.
 */
int session__settle(struct session *s, double seconds)
{
	struct timespec pause = { 0, POLL_NS };
	__u64 until;
	int err;

	/* a file holds the frees of its recording's settle period, if it had one */
	if (seconds <= 0 || s->trace)
		return 0;
	err = collector__sync(s->coll);
	if (err) {
		kms_error("Failed to read events: %s\n", strerror(-err));
		return 1;
	}
	pipeline__settle(&s->pipe);
	s->window_ns = cli_now_ns() - s->start_ns;
	collect_unix_garbage();
	visit_cpus();
	wait_rcu_callbacks();
	until = cli_now_ns() + (__u64)(seconds * 1e9);
	while (cli_now_ns() < until && !cli_exiting()) {
		if (session_trace__tick(s, cli_now_ns()))
			return 1;
		err = collector__poll(s->coll);
		if (err < 0) {
			kms_error("Failed to read events: %s\n", strerror(-err));
			return 1;
		}
		if (!err)
			nanosleep(&pause, NULL);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* the symbols' text with the source lines of the user frames seen appended */
static char *user_text(struct session *s, size_t *len)
{
	struct kvec addrs;
	__u64 ips[KMS_MAX_STACK];
	char *text = user__symbols(s->user, len), *lines = NULL, *all;
	size_t nl = 0, i;
	bool created;
	int n;

	if (!text)
		return NULL;
	kvec__init(&addrs, sizeof(__u64), sizeof(__u64));
	for (i = 0; i < s->user_sites.nr; i++)
		kvec__get(&addrs, kvec__at(&s->user_sites, i), &created);
	for (i = 0; i < s->user_stacks.nr; i++) {
		n = session__stack(s, *(__u64 *)kvec__at(&s->user_stacks, i), ips, KMS_MAX_STACK);
		while (n-- > 0)
			if (user_addr(ips[n]))
				kvec__get(&addrs, &ips[n], &created);
	}
	qsort(addrs.items, addrs.nr, addrs.isz, cmp_u64);
	lines = user__lines(s->user, (const __u64 *)addrs.items, addrs.nr, &nl);
	kvec__fini(&addrs);
	all = lines ? realloc(text, *len + nl + 1) : NULL;
	if (all) {
		memcpy(all + *len, lines, nl + 1);
		*len += nl;
		text = all;
	} else {
		kms_warn("--user: no source lines (out of memory)\n");
	}
	free(lines);
	return text;
}

/*
 * --user: the process's symbols join the kernel's (user.h), with the source
 * lines of the frames seen, for the reports and, in the file's SYMS, for a
 * replay. The first table stays: the detectors hold symbols of it.
 */
static int add_user_symbols(struct session *s)
{
	size_t len = 0;
	char *text = user_text(s, &len);
	int err = text ? 0 : -ENOMEM;

	if (text && s->rec)
		err = trace_writer__add_syms(s->rec, text, len);
	if (!err) {
		s->user_ksyms = ksyms__load_more(NULL, text, len);
		if (s->user_ksyms)
			s->ksyms = s->user_ksyms;
		else
			err = -errno;
	}
	free(text);
	if (err)
		kms_error("Failed to read the symbols of the traced process: %s\n", strerror(-err));
	return err;
}

/*
 * What tracing cost: this process's CPU from the start of tracing to the
 * drain (every thread: reading, the pipeline, the writer; not start-up nor
 * the report), per event delivered. bench/peak.py reads it.
 */
static void cost_info(const struct session *s, const struct kms_quality *q)
{
	__u64 cpu = cli_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - s->cpu_start_ns;
	__u64 wall = s->stop_ns - s->start_ns;

	kms_info("collector: %.3f s of CPU in %.3f s of tracing (%.1f %% of a CPU), "
		 "%.1f ns per event over %llu events\n", cpu / 1e9, wall / 1e9,
		 wall ? 100.0 * cpu / wall : 0.0, q->events ? (double)cpu / q->events : 0.0,
		 (unsigned long long)q->events);
}

int session__stop(struct session *s)
{
	struct kms_quality q;
	int err;

	if (s->trace)
		return 0;
	err = collector__stop(s->coll);
	/* after the drain: the last batches are dated by their flush, which is now */
	s->stop_ns = cli_now_ns();
	cli_cmd_abort(&s->cmd);
	if (err)
		kms_error("Failed to drain events: %s\n", strerror(-err));
	if (s->user && add_user_symbols(s))
		err = -EIO;
	session__quality(s, &q);
	cost_info(s, &q);
	return (session_trace__finish(s, &q) || err) ? 1 : 0;
}

void session__quality(struct session *s, struct kms_quality *q)
{
	memset(q, 0, sizeof(*q));
	if (s->trace) {
		/* what the recording counted, and what the filters here leave out */
		*q = s->trace_q;
		q->filtered += pipeline__filtered(&s->pipe);
		q->duration_ns = s->stop_ns - s->start_ns;
		return;
	}
	collector__quality(s->coll, q);
	if (s->pipe.filter)
		q->filtered += pipeline__filtered(&s->pipe);
	q->self_traced = s->self_traced;
	q->user_allocator = user__allocator(s->user);
	q->duration_ns = (s->stop_ns ? s->stop_ns : cli_now_ns()) - s->start_ns;
}

__u64 session__now(const struct session *s)
{
	return s->trace ? s->trace_now : cli_now_ns();
}

void session__free(struct session *s)
{
	cli_cmd_abort(&s->cmd);
	trace_writer__free(s->rec);
	trace_reader__free(s->trace);
	if (s->trace)
		s->ksyms = NULL;	/* the reader's */
	free(s->cpu_nodes);
	gfp_table__free(s->gfp);
	s->gfp = NULL;
	user__free(s->user);
	collector__free(s->coll);
	plan__free(s->plan);
	pipeline__fini(&s->pipe);
	ksyms__loader_fini(&s->syms);
	ksyms__free(s->user_ksyms);
	kvec__fini(&s->user_sites);
	kvec__fini(&s->user_stacks);
	kvec__fini(&s->joined);
	free(s->site_cache);
	free(s->vmalloc_cache);
	memset(s, 0, sizeof(*s));
}

/* ---- the shared "What to trace" options ---- */

/*
 * Four groups, so that a command's --help lists only what it takes: the
 * filters (every command), tracing a live kernel (not script), --record (the
 * reports only) and reading a file (not record, not probe). One parser reads
 * them all; the filter group's also gets the special keys (arguments, end).
 */
static const struct argp_option filter_options[] = {
	{ "pid", 'p', "PID", 0, "only this process and the processes it forks (repeatable)" },
	{ "comm", 'c', "COMM", 0, "only processes named COMM" },
	{ "family", 'F', "LIST", 0, "families, comma-separated: kmalloc, kmem_cache, page, vmalloc, "
				    "dma, percpu, user, user_map (with --user), slab (= "
				    "kmalloc,kmem_cache), all (default)" },
	{ "verbose", 'v', NULL, 0, "more messages (twice: libbpf debug)" },
	{},
};

static const struct argp_option live_options[] = {
	{ NULL, 0, NULL, 0, "Tracing a live kernel:", 2 },
	{ "all-cpus", 'a', NULL, 0, "with -- CMD: trace the whole system while CMD runs" },
	{ "ring-mb", 1002, "MB", 0, "ring buffer size in MiB, a power of two (default 8 per CPU, "
				    "16 to 64)" },
	{ "order", 1003, "MODE", 0, "how records are put in order across CPUs: seq (a shared "
				     "counter, cheapest on few CPUs), time (per-event clock, scales to "
				     "many CPUs), auto (default: seq up to 8 CPUs)" },
	{ "rescue", 1004, "on|off", 0, "shadow programs record the events the kernel skips "
				     "because a handler was already running on that CPU (one more "
				     "program run per event; default on for leaks, off otherwise)" },
	{ "trace-self", 1005, NULL, 0, "trace kmemscope's own process too: by default its "
				     "allocations (its buffers growing) are left out and counted in "
				     "the data quality block" },
	{ "user", 1009, NULL, 0, "also trace the process's C library allocations (malloc, free, "
				 "...) and its mappings (mmap, brk): with -p PID (one) or -- CMD" },
	{},
};

static const struct argp_option record_options[] = {
	{ "record", 1006, "FILE", 0, "also record what the report counts to trace FILE (read it "
				     "back with -i)", 2 },
	{},
};

static const struct argp_option input_options[] = {
	{ NULL, 0, NULL, 0, "Reading a trace file (no root, no BPF needed):", 3 },
	{ "input", 'i', "FILE", 0, "report on trace FILE (kmemscope record, --record) instead "
				   "of tracing; -p, -c and -F filter it" },
	{ "from", 1007, "SEC", 0, "with -i: only what happened from SEC seconds after the trace "
				  "began" },
	{ "to", 1008, "SEC", 0, "with -i: only what happened up to SEC seconds after the trace "
				"began" },
	{},
};

static error_t session_parse(int key, char *arg, struct argp_state *state)
{
	struct session_args *sa = state->input;
	unsigned long v;

	switch (key) {
	case ARGP_KEY_INIT:
		sa->so.pids = sa->pids;
		break;
	case 'p':
		if (sa->so.nr_pids >= SESSION_MAX_PIDS)
			cli_argp_fail(state, "at most %d -p options", SESSION_MAX_PIDS);
		if (cli_parse_uint(arg, "pid", 1 << 22, &v))
			return EINVAL;
		if (!v)
			cli_argp_fail(state, "invalid pid 0");
		sa->pids[sa->so.nr_pids++] = v;
		break;
	case 'c':
		if (!*arg || strlen(arg) > 15)
			cli_argp_fail(state, "invalid comm '%s' (1 to 15 characters)", arg);
		sa->so.comm = arg;
		break;
	case 'F':
		if (cli_parse_families(arg, &sa->so.families))
			return EINVAL;
		break;
	case 'a':
		sa->so.all_cpus = true;
		break;
	case 1002:
		if (cli_parse_uint(arg, "ring size", 4096, &v) || !v || (v & (v - 1)))
			cli_argp_fail(state, "--ring-mb takes a power of two from 1 to 4096");
		sa->so.ring_mb = v;
		break;
	case 1003:
		if (!strcmp(arg, "seq"))
			sa->so.order = SESSION_ORDER_SEQ;
		else if (!strcmp(arg, "time"))
			sa->so.order = SESSION_ORDER_TIME;
		else if (!strcmp(arg, "auto"))
			sa->so.order = SESSION_ORDER_AUTO;
		else
			cli_argp_fail(state, "--order takes seq, time or auto");
		break;
	case 1004:
		if (!strcmp(arg, "on"))
			sa->so.rescue = true;
		else if (!strcmp(arg, "off"))
			sa->so.rescue = false;
		else
			cli_argp_fail(state, "--rescue takes on or off");
		sa->so.rescue_given = true;
		break;
	case 1005:
		sa->so.trace_self = true;
		break;
	case 1006:
		sa->so.record = arg;
		break;
	case 1009:
		sa->so.user = true;
		break;
	case 'i':
		sa->so.input = arg;
		break;
	case 1007:
	case 1008:
		if (cli_parse_seconds(arg, key == 1007 ? "start time" : "end time",
				      key == 1007 ? &sa->so.from : &sa->so.to))
			return EINVAL;
		break;
	case 'v':
		log_set_level(log_get_level() + 1);
		break;
	case ARGP_KEY_ARG:
		/*
		 * Only words after -- form the command (cli_argp_parse keeps the
		 * order, so state->quoted tells): a stray word is a usage error,
		 * not a program to run.
		 */
		if (!state->quoted || state->next - 1 < state->quoted)
			cli_argp_fail(state, "unexpected argument '%s' (a command goes after --)",
				      arg);
		sa->so.cmd = state->argv + state->next - 1;
		state->next = state->argc;
		break;
	case ARGP_KEY_END:
		if (state->quoted && !sa->so.cmd)
			cli_argp_fail(state, "-- needs a command");
		if (sa->so.all_cpus && !sa->so.cmd)
			cli_argp_fail(state, "-a goes with -- CMD");
		if (sa->so.cmd && sa->so.nr_pids)
			cli_argp_fail(state, "-p and -- CMD do not go together");
		/* uprobes go on one process: its pointers are one address space */
		if (sa->so.user && !sa->so.input && !(sa->so.nr_pids == 1 && !sa->so.comm) &&
		    !(sa->so.cmd && !sa->so.all_cpus))
			cli_argp_fail(state, "--user needs -p PID (one) or -- CMD (without -a)");
		if ((sa->so.from || sa->so.to) && !sa->so.input)
			cli_argp_fail(state, "--from and --to go with -i");
		if (sa->so.to && sa->so.to <= sa->so.from)
			cli_argp_fail(state, "--to must be after --from");
		if (sa->so.input) {
			/* what only means something while tracing a live kernel */
			const char *live = sa->so.cmd ? "-- CMD" : sa->so.all_cpus ? "-a" :
					   sa->so.ring_mb ? "--ring-mb" :
					   sa->so.order ? "--order" :
					   sa->so.rescue_given ? "--rescue" :
					   sa->so.trace_self ? "--trace-self" :
					   sa->so.user ? "--user" :
					   sa->so.record ? "--record" : NULL;

			if (live)
				cli_argp_fail(state, "%s has no meaning with -i (a recorded trace)",
					      live);
		}
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* the groups after the filters: the special keys are the filter group's */
static error_t group_parse(int key, char *arg, struct argp_state *state)
{
	if (key == ARGP_KEY_ARG || key >= ARGP_KEY_END)
		return ARGP_ERR_UNKNOWN;
	return session_parse(key, arg, state);
}

static const struct argp live_argp = { live_options, group_parse };
static const struct argp record_argp = { record_options, group_parse };
static const struct argp input_argp = { input_options, group_parse };

/* argp gives a child group no input of its own: the filter group passes its own on */
static error_t pass_input(struct argp_state *state, int nr_children, int key, char *arg)
{
	if (key == ARGP_KEY_INIT)
		for (int i = 0; i < nr_children; i++)
			state->child_inputs[i] = state->input;
	return session_parse(key, arg, state);
}

#define CHILD(a) { &(a), 0, NULL, 0 }

static error_t report_parse(int key, char *arg, struct argp_state *state)
{
	return pass_input(state, 3, key, arg);
}

static const struct argp_child report_children[] = {
	CHILD(live_argp), CHILD(record_argp), CHILD(input_argp), {}
};
const struct argp session_report_argp = { filter_options, report_parse, NULL, NULL,
					 report_children };

static error_t tracing_parse(int key, char *arg, struct argp_state *state)
{
	return pass_input(state, 1, key, arg);
}

static const struct argp_child tracing_children[] = { CHILD(live_argp), {} };
static const struct argp tracing_argp = { filter_options, tracing_parse, NULL, NULL,
					  tracing_children };

static error_t file_parse(int key, char *arg, struct argp_state *state)
{
	return pass_input(state, 1, key, arg);
}

static const struct argp_child file_children[] = { CHILD(input_argp), {} };
static const struct argp file_argp = { filter_options, file_parse, NULL, NULL, file_children };

const struct argp_child session_report_children[] = {
	{ &session_report_argp, 0, NULL, 1 }, {}
};
const struct argp_child session_tracing_children[] = { { &tracing_argp, 0, NULL, 1 }, {} };
const struct argp_child session_file_children[] = { { &file_argp, 0, NULL, 1 }, {} };
