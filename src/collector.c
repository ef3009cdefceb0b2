/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live collector. Records are put in order by merge.c, up to the
 * smallest per-CPU watermark; a quiet CPU would hold the watermark back, so
 * the collector runs the flush_stage program on it (BPF_F_TEST_RUN_ON_CPU).
 * This is the same idea as perf's ordered events, with the flush made
 * explicit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "kmemscope.skel.h"
#include "collector.h"
#include "merge.h"
#include "plan.h"
#include "log.h"

/* a CPU whose watermark is older than this gets a forced flush */
#define STALE_NS (20ULL * 1000 * 1000)

struct collector {
	struct kmemscope_bpf *skel;
	const struct plan *plan;
	struct ring_buffer *rb;
	struct collector_sink sink;
	int nr_cpus;		/* possible CPUs */
	bool *online;
	struct merge *m;	/* records of all CPUs, put in order */
	__u64 events;
	bool attached;
	bool stopped;
	bool context;
	bool rescue;
	unsigned int families;	/* requested (-F), 0: all */
	/*
	 * Loss markers. A loss seen at a poll happened before the order key read
	 * then; the marker goes into the stream right after every record with a
	 * smaller key, so a consumer knows which objects a lost free could be of.
	 */
	__u64 all_losses;	/* records lost or late, any family */
	__u64 *prog_misses;	/* per program of the object, in its order */
	unsigned int *free_fams; /* ... families whose frees it handles, 0: none */
	bool marked;		/* a marker is pending */
	__u64 mark_key;
	unsigned int mark_fams;	/* families it covers */
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void deliver_one(void *ctx, struct kms_event *e)
{
	struct collector *c = ctx;

	if (e->type >= KMS_EV_META_TASK) {
		if (c->sink.meta)
			c->sink.meta(c->sink.ctx, (const struct kms_meta *)e);
		return;
	}
	c->events++;
	c->sink.event(c->sink.ctx, e);
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;

	return merge__batch(c->m, data, size);
}

static void deliver(struct collector *c, __u64 limit)
{
	if (c->marked && c->mark_key <= limit) {
		struct kms_meta m = { .type = KMS_EV_META_LOSS, .key = c->mark_fams };

		merge__deliver(c->m, c->mark_key, deliver_one, c);
		if (c->sink.meta)
			c->sink.meta(c->sink.ctx, &m);
		c->marked = false;
		c->mark_fams = 0;
	}
	merge__deliver(c->m, limit, deliver_one, c);
}

/* the order key a record made now would get at least */
static __u64 current_key(struct collector *c)
{
	if (c->skel->rodata->use_seq)
		return __atomic_load_n(&c->skel->data_seq->seq_counter, __ATOMIC_SEQ_CST);
	return now_ns();
}

static __u64 percpu_sum(struct collector *c, __u32 idx)
{
	__u64 vals[c->nr_cpus], sum = 0;

	if (bpf_map__lookup_elem(c->skel->maps.counters, &idx, sizeof(idx), vals, sizeof(vals), 0))
		return 0;
	for (int i = 0; i < c->nr_cpus; i++)
		sum += vals[i];
	return sum;
}

/*
 * What could hide a free, and of which families: records the ring buffer
 * could not take or that came too late (any family), and runs of a free
 * handler the kernel skipped (its family). Lost allocations hide no free.
 */
static void check_losses(struct collector *c, bool final)
{
	const struct merge_stats *ms = merge__stats(c->m);
	__u64 all = percpu_sum(c, KMS_CNT_LOST) + percpu_sum(c, KMS_CNT_LOST_NESTED) +
		    ms->bad_records + ms->out_of_order;
	unsigned int fams = 0, all_fams = (1U << KMS_FAM_MAX) - 1;
	struct bpf_program *prog;
	__u64 key;
	int i = 0;

	if (all != c->all_losses)
		fams = all_fams;
	c->all_losses = all;
	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (c->free_fams[i] && fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len)) {
			if (info.recursion_misses != c->prog_misses[i])
				fams |= c->free_fams[i];
			c->prog_misses[i] = info.recursion_misses;
		}
		i++;
	}
	if (!fams)
		return;
	/* read after the counters: every record made before the loss has a smaller key */
	key = final ? ~0ULL : current_key(c);
	c->mark_key = c->marked && c->mark_key > key ? c->mark_key : key;
	c->mark_fams |= fams;
	c->marked = true;
}

/* which programs handle frees, and of which families (see check_losses()) */
static int find_free_handlers(struct collector *c)
{
	struct bpf_program *prog;
	int n = 0, i = 0;

	bpf_object__for_each_program(prog, c->skel->obj)
		n++;
	c->prog_misses = calloc(n, sizeof(*c->prog_misses));
	c->free_fams = calloc(n, sizeof(*c->free_fams));
	if (!c->prog_misses || !c->free_fams)
		return -ENOMEM;
	bpf_object__for_each_program(prog, c->skel->obj) {
		const char *name = bpf_program__name(prog);

		for (int k = 0; k < c->plan->nr_events; k++) {
			const struct plan_event *ev = &c->plan->events[k];
			const struct plan_cand *cd;
			int fam = ev->family;

			if (fam < 0 || ev->alloc || ev->selected < 0)
				continue;
			cd = &ev->cands[ev->selected];
			if (strcmp(name, cd->prog) && (!cd->prog_ret || strcmp(name, cd->prog_ret)))
				continue;
			/* kfree frees kmem_cache objects too, and the reverse */
			if (fam == KMS_FAM_KMALLOC || fam == KMS_FAM_CACHE)
				c->free_fams[i] |= (1U << KMS_FAM_KMALLOC) | (1U << KMS_FAM_CACHE);
			else
				c->free_fams[i] |= 1U << fam;
			/* kvfree_rcu() hands over vmalloc objects too */
			if (ev->deferred)
				c->free_fams[i] |= 1U << KMS_FAM_VMALLOC;
		}
		i++;
	}
	return 0;
}

static int read_online(bool *online, int nr)
{
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	int a, b, n = 0;
	char sep;

	if (!f) {
		for (int i = 0; i < nr; i++)
			online[i] = true;
		return 0;
	}
	while (fscanf(f, "%d", &a) == 1) {
		b = a;
		if (fscanf(f, "%c", &sep) == 1 && sep == '-') {
			if (fscanf(f, "%d", &b) != 1)
				break;
			if (fscanf(f, "%c", &sep) != 1)
				sep = '\n';
		}
		for (int i = a; i <= b && i < nr; i++, n++)
			online[i] = true;
		if (sep != ',')
			break;
	}
	fclose(f);
	return n;
}

/* offset of a variable in the kernel's per-CPU section, from BTF; -1 if absent */
static long percpu_off(const struct btf *btf, const char *name, const char *member)
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
			const struct btf_member *m;

			if (strcmp(btf__name_by_offset(btf, vt->name_off), name))
				continue;
			if (!member)
				return v->offset;
			/* a field of a per-CPU struct (pcpu_hot.preempt_count, 6.2 to 6.14) */
			st = btf__type_by_id(btf, btf__resolve_type(btf, vt->type));
			if (!st || !btf_is_struct(st))
				return -1;
			m = btf_members(st);
			for (int k = 0; k < btf_vlen(st); k++, m++)
				if (!strcmp(btf__name_by_offset(btf, m->name_off), member))
					return v->offset + btf_member_bit_offset(st, k) / 8;
			return -1;
		}
	}
	return -1;
}

/*
 * Context capture needs the per-CPU offsets of the runqueue and of the
 * preempt count (see read_ctx() in bpf/). false when this kernel lacks them.
 */
static bool setup_context(struct kmemscope_bpf *skel)
{
	struct btf *btf = btf__load_vmlinux_btf();
	long rq, pc;

	if (!btf)
		return false;
	rq = percpu_off(btf, "runqueues", NULL);
	pc = percpu_off(btf, "__preempt_count", NULL);
	if (pc < 0)
		pc = percpu_off(btf, "pcpu_hot", "preempt_count");
	btf__free(btf);
	if (rq < 0 || pc < 0)
		return false;
	skel->rodata->want_ctx = true;
	skel->rodata->pcpu_rq_off = rq;
	skel->rodata->pcpu_pc_off = pc;
	return true;
}

bool collector__configure(struct kmemscope_bpf *skel, const struct collector_opts *o)
{
	skel->rodata->filter_pids = o->filter_pids;
	skel->rodata->stack_types = o->stack_entries ? o->stack_types : 0;
	skel->rodata->stack_cache = o->stack_cache;
	skel->rodata->use_seq = o->order_seq;
	skel->rodata->rescue = o->rescue;
	skel->rodata->page_size = sysconf(_SC_PAGESIZE);
	return o->context && setup_context(skel);
}

int collector__open(struct collector **out, const struct plan *plan,
		    const struct collector_opts *o, struct collector_sink sink)
{
	struct collector *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->plan = plan;
	c->sink = sink;
	c->families = o->families;
	c->nr_cpus = libbpf_num_possible_cpus();
	if (c->nr_cpus <= 0) {
		err = c->nr_cpus ? c->nr_cpus : -EINVAL;
		goto fail;
	}
	c->online = calloc(c->nr_cpus, sizeof(*c->online));
	c->m = merge__new(c->nr_cpus);
	if (!c->online || !c->m) {
		err = -ENOMEM;
		goto fail;
	}
	read_online(c->online, c->nr_cpus);

	c->skel = kmemscope_bpf__open();
	if (!c->skel) {
		err = -errno;
		kms_error("Failed to open BPF object: %s\n", strerror(-err));
		goto fail;
	}
	c->rescue = o->rescue;
	c->context = collector__configure(c->skel, o);
	c->skel->rodata->rcu_ptr_arg = plan->rcu_ptr_arg;
	if (o->context && !c->context)
		kms_warn("this kernel's BTF lacks the per-CPU runqueue or preempt count: "
			 "allocation context (atomic-context checks) is unknown\n");
	bpf_map__set_max_entries(c->skel->maps.rb, (o->ring_mb ? o->ring_mb : 64) << 20);
	bpf_map__set_max_entries(c->skel->maps.stacks, o->stack_entries ? o->stack_entries : 1);
	log_libbpf_reset();
	err = plan__apply(plan, c->skel, o->rescue);
	if (!err)
		err = kmemscope_bpf__load(c->skel);
	if (err) {
		kms_error("Failed to load BPF programs: %s%s%s (run with -vv for libbpf's log)\n",
			  strerror(-err), *log_libbpf_first() ? ": " : "", log_libbpf_first());
		goto fail;
	}
	err = find_free_handlers(c);
	if (err) {
		kms_error("Failed to set up the collector: %s\n", strerror(-err));
		goto fail;
	}
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.rb), on_sample, c, NULL);
	if (!c->rb) {
		err = -errno;
		kms_error("Failed to set up the ring buffer: %s\n", strerror(-err));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	collector__free(c);
	return err;
}

int collector__add_pid(struct collector *c, pid_t pid)
{
	__u32 key = pid;
	__u8 one = 1;

	if (bpf_map__update_elem(c->skel->maps.pids, &key, sizeof(key), &one, sizeof(one),
				 BPF_ANY))
		return -errno;
	return 0;
}

int collector__del_pid(struct collector *c, pid_t pid)
{
	__u32 key = pid;

	if (bpf_map__delete_elem(c->skel->maps.pids, &key, sizeof(key), 0))
		return -errno;
	/* invalidate the per-CPU cached answers */
	__atomic_add_fetch(&c->skel->bss->filter_gen, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* ship CPU cpu's staged records; 0, 1 if it was busy, or -errno */
static int flush_cpu(struct collector *c, int cpu)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(c->skel->progs.flush_stage), &opts);
	if (err)
		return -errno;
	return opts.retval;
}

static void flush_stale(struct collector *c, bool all)
{
	__u64 now = now_ns();

	for (int i = 0; i < c->nr_cpus; i++) {
		if (!c->online[i] || (!all && merge__flushed_at(c->m, i) + STALE_NS > now))
			continue;
		if (flush_cpu(c, i) == -ENXIO)
			c->online[i] = false;	/* went offline: it ships nothing more */
	}
}

int collector__attach(struct collector *c)
{
	int err = plan__attach(c->plan, c->skel, c->rescue);

	if (err)
		return err;
	c->attached = true;
	flush_stale(c, true);
	return 0;
}

static __u64 watermark(struct collector *c)
{
	return merge__watermark(c->m, c->online);
}

int collector__poll(struct collector *c)
{
	int n;

	if (c->stopped)
		return 0;
	n = ring_buffer__consume(c->rb);
	if (n < 0)
		return n;
	flush_stale(c, false);
	n = ring_buffer__consume(c->rb);
	if (n < 0)
		return n;
	check_losses(c, false);
	deliver(c, watermark(c));
	return 0;
}

int collector__sync(struct collector *c)
{
	int n;

	flush_stale(c, true);
	n = ring_buffer__consume(c->rb);
	if (n < 0)
		return n;
	check_losses(c, false);
	deliver(c, watermark(c));
	return 0;
}

int collector__stop(struct collector *c)
{
	int n;

	if (c->stopped)
		return 0;
	/* after detach returns no handler runs: the final flush sees everything */
	kmemscope_bpf__detach(c->skel);
	c->attached = false;
	n = ring_buffer__consume(c->rb);
	flush_stale(c, true);
	n = ring_buffer__consume(c->rb);
	check_losses(c, true);
	deliver(c, ~0ULL);
	c->stopped = true;
	return n < 0 ? n : 0;
}

/* the pid filter counts in the per-CPU stage, where its hot path already is */
static __u64 stage_filtered(struct collector *c)
{
	size_t vsz = bpf_map__value_size(c->skel->maps.stage);
	char *vals;
	__u64 sum = 0;
	__u32 zero = 0;

	if (vsz != sizeof(struct kms_stage))
		return 0;
	vals = calloc(c->nr_cpus, vsz);
	if (!vals)
		return 0;
	if (!bpf_map__lookup_elem(c->skel->maps.stage, &zero, sizeof(zero), vals,
				  vsz * c->nr_cpus, 0)) {
		for (int i = 0; i < c->nr_cpus; i++) {
			const struct kms_stage *h = (const void *)(vals + vsz * i);

			sum += h->filtered;
		}
	}
	free(vals);
	return sum;
}

static __u64 prog_misses(struct collector *c, const char *name)
{
	struct bpf_program *prog = name ? bpf_object__find_program_by_name(c->skel->obj, name) :
					  NULL;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = prog ? bpf_program__fd(prog) : -1;

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.recursion_misses;
}

void collector__quality(struct collector *c, struct kms_quality *q)
{
	__u64 *vals = calloc(c->nr_cpus, sizeof(__u64));
	struct bpf_program *prog;

	q->events = c->events;
	q->out_of_order = merge__stats(c->m)->out_of_order;
	if (vals) {
		for (__u32 k = 0; k < KMS_CNT_NR; k++) {
			__u64 sum = 0;

			if (bpf_map__lookup_elem(c->skel->maps.counters, &k, sizeof(k), vals,
						 sizeof(__u64) * c->nr_cpus, 0))
				continue;
			for (int i = 0; i < c->nr_cpus; i++)
				sum += vals[i];
			switch (k) {
			case KMS_CNT_LOST:
			case KMS_CNT_LOST_NESTED:
				q->lost += sum;
				break;
			case KMS_CNT_STACK_FAIL:
				q->stack_failures = sum;
				break;
			case KMS_CNT_FILTERED:
				q->filtered += sum;
				break;
			case KMS_CNT_PENDING_LOST:
				q->pending_lost = sum;
				break;
			case KMS_CNT_RESCUED:
				q->rescued = sum;
				break;
			case KMS_CNT_BULK_LOST:
				q->bulk_lost = sum;
				break;
			}
		}
		free(vals);
	}
	q->lost += merge__stats(c->m)->bad_records;
	q->filtered += stage_filtered(c);
	q->misses = 0;
	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		/*
		 * A shadow skipped while it runs costs nothing: its handler runs
		 * then. Only the handlers' misses are events lost.
		 */
		if (!strncmp(bpf_program__name(prog), "sh_", 3))
			continue;
		q->misses += info.recursion_misses;
	}
	/* each rescued event was first a miss of the busy handler */
	q->misses = q->misses > q->rescued ? q->misses - q->rescued : 0;
	q->nr_event_misses = 0;
	for (int i = 0; i < c->plan->nr_events && q->nr_event_misses < KMS_QUALITY_MAX_EVENTS;
	     i++) {
		const struct plan_event *ev = &c->plan->events[i];
		const struct plan_cand *cand;
		struct kms_event_misses *em;

		if (ev->selected < 0)
			continue;
		cand = &ev->cands[ev->selected];
		em = &q->event_misses[q->nr_event_misses++];
		em->name = ev->name;
		em->misses = prog_misses(c, cand->prog) + prog_misses(c, cand->prog_ret);
	}
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		q->traced[f] = c->plan->fam_traced[f];
		q->method[f] = c->plan->fam_method[f];
		q->skipped[f] = c->families && !(c->families & (1u << f));
	}
	q->deferred_traced = c->plan->deferred_traced;
	q->deferred_method = c->plan->deferred_method;
}

int collector__stack(struct collector *c, int stack_id, __u64 *ips, int max)
{
	__u64 buf[KMS_MAX_STACK] = {};
	__u32 key = stack_id;
	int n = 0;

	if (stack_id < 0)
		return -ENOENT;
	if (bpf_map__lookup_elem(c->skel->maps.stacks, &key, sizeof(key), buf, sizeof(buf), 0))
		return -errno;
	while (n < KMS_MAX_STACK && n < max && buf[n]) {
		ips[n] = buf[n];
		n++;
	}
	return n;
}

bool collector__context(const struct collector *c)
{
	return c->context;
}

int collector__test_run(struct collector *c, const char *prog, int cpu, const __u64 *args,
			unsigned int nr_args)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu,
		    .ctx_in = args, .ctx_size_in = nr_args * sizeof(*args));
	struct bpf_program *p = bpf_object__find_program_by_name(c->skel->obj, prog);

	if (!p || bpf_program__fd(p) < 0)
		return -ENOENT;
	if (bpf_prog_test_run_opts(bpf_program__fd(p), &opts))
		return -errno;
	return opts.retval;
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	kmemscope_bpf__destroy(c->skel);
	merge__free(c->m);
	free(c->online);
	free(c->prog_misses);
	free(c->free_fams);
	free(c);
}
