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
#include <sys/mman.h>
#include <linux/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "kmemscope.skel.h"
#include "collector.h"
#include "frames.h"
#include "merge.h"
#include "agg.h"
#include "plan.h"
#include "softirqs.h"
#include "log.h"

/*
 * Pacing. A quiet CPU whose watermark holds back a waiting record gets a
 * forced flush (one IPI to it) when its last batch is older than STALE_NS:
 * that bounds how long the busy CPUs' records wait in the merge queues, so
 * the queues stay small and hot in cache. Losses are
 * looked for every CHECK_NS (a few syscalls). One poll reads the ring for at
 * most POLL_BUDGET_NS: at a rate the collector only just keeps up with the
 * ring never runs empty, and the session must still see its deadline.
 * Records are delivered as soon as the watermark passes them, batch by batch.
 */
#define STALE_NS	(1ULL * 1000 * 1000)
#define CHECK_NS	(10ULL * 1000 * 1000)
#define POLL_BUDGET_NS	(50ULL * 1000 * 1000)
/* a sync gives up on a CPU that never ships (its flushes keep failing) after this */
#define SYNC_MAX_NS	(1000ULL * 1000 * 1000)
/* ring records between two looks at the clock (direct records come one event each) */
#define TICK_RECORDS	16

/*
 * The ring buffer, read by hand rather than through libbpf's ring_buffer,
 * which releases a record when its callback returns: the merge would have to
 * copy every record out. Here the merge reads each batch in place, and the
 * consumer position (which tells the kernel what it may overwrite) moves only
 * past batches it has delivered (merge__released()). The layout is the
 * kernel's (kernel/bpf/ringbuf.c): a consumer page, a producer page, then the
 * data pages mapped twice in a row, so a record that wraps reads as one.
 */
struct ring {
	unsigned long *consumer_pos;	/* mapped read-write */
	const unsigned long *producer_pos; /* mapped read-only, the data after it */
	const char *data;
	size_t page, size;		/* size: the data's, a power of two */
	__u64 read;			/* where the next record starts */
	__u64 released;			/* what consumer_pos says */
};

struct collector {
	struct kmemscope_bpf *skel;
	const struct plan *plan;
	struct ring ring;
	struct collector_sink sink;
	int nr_cpus;		/* possible CPUs */
	bool *online;
	struct merge *m;	/* records of all CPUs, put in order */
	__u64 events;
	bool stopped;
	bool context;
	bool rescue;
	unsigned int families;	/* requested (-F), 0: all */
	__u64 *flush_asked;	/* per CPU: when its last forced flush was asked */
	__u64 next_check;	/* time of the next look for losses */
	__u64 poll_until;	/* the running poll's budget ends then */
	__u64 sync_key;		/* a running sync reads up to this order key, 0: none */
	unsigned int records;	/* ring records since the last look at the clock */
	/*
	 * Loss markers. A loss seen at a poll happened before the order key read
	 * then; the marker goes into the stream right after every record with a
	 * smaller key, so a consumer knows which objects a lost free could be of.
	 */
	__u64 all_losses;	/* records lost or late, any family */
	__u64 *prog_misses;	/* per program of the object, in its order */
	__u64 *miss_base;	/* ... its recursion misses when the collector took the object */
	unsigned int *free_fams; /* ... families whose frees it handles, 0: none */
	unsigned int missed_fams; /* families whose free handlers have missed events */
	__u64 unrescued;	/* free handlers' misses no shadow caught, at least, at the last check */
	__u64 softirqs_tail;	/* softirqs unseen since the witness's last run (softirq_tail()) */
	char unseen_tasks[256];	/* the processes the task witness names (unseen_tasks()) */
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

static void ahead_one(void *ctx, const struct kms_event *e)
{
	struct collector *c = ctx;

	c->sink.ahead(c->sink.ctx, e);
}

static void tick(struct collector *c, __u64 now);
static int deliver(struct collector *c, __u64 limit);
static __u64 watermark(struct collector *c);

static int ring_open(struct ring *r, int fd, size_t size)
{
	void *p;

	r->page = sysconf(_SC_PAGESIZE);
	r->size = size;
	p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->consumer_pos = p;
	p = mmap(NULL, r->page + 2 * size, PROT_READ, MAP_SHARED, fd, r->page);
	if (p == MAP_FAILED)
		return -errno;
	r->producer_pos = p;
	r->data = (const char *)p + r->page;
	r->read = r->released = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	return 0;
}

static void ring_close(struct ring *r)
{
	if (r->producer_pos)
		munmap((void *)r->producer_pos, r->page + 2 * r->size);
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page);
}

/*
 * Give the kernel back what the merge has delivered. Records held back by a
 * quiet CPU's watermark keep their space; should they fill half the ring,
 * they are copied out, so that a ring full of waiting records can never keep
 * out the batch that would let them go.
 */
static int ring_release(struct collector *c)
{
	struct ring *r = &c->ring;
	__u64 pos = merge__released(c->m);

	if (r->read - pos > r->size / 2) {
		int err = merge__spill(c->m);

		if (err)
			return err;
		kms_debug("%llu bytes of waiting records copied out of the ring buffer\n",
			  (unsigned long long)(r->read - pos));
		pos = merge__released(c->m);
	}
	if (pos != r->released) {
		__atomic_store_n(r->consumer_pos, pos, __ATOMIC_RELEASE);
		r->released = pos;
	}
	return 0;
}

/* after each record read: deliver, now and then tick; true: stop reading */
static bool on_record(struct collector *c, int *err)
{
	__u64 now;

	if (++c->records < TICK_RECORDS) {
		*err = deliver(c, watermark(c));
	} else {
		c->records = 0;
		now = now_ns();
		tick(c, now);
		if (now >= c->poll_until)
			return true;
	}
	/* a sync is done once every CPU's watermark passed its key */
	return *err || (c->sync_key && watermark(c) >= c->sync_key);
}

/*
 * Read the ring (as libbpf's ring_buffer__consume() does, but see struct
 * ring): 0 once it is empty or the next record is still being written, 1 when
 * stopped early (the poll's budget is spent, or a sync is done), or -errno.
 */
static int consume(struct collector *c)
{
	struct ring *r = &c->ring;
	__u64 prod;
	int err = 0;

	while ((prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE)) > r->read) {
		while (r->read < prod) {
			const __u32 *hdr = (const __u32 *)(r->data + (r->read & (r->size - 1)));
			__u32 len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
			__u32 size = len & ~BPF_RINGBUF_DISCARD_BIT;

			if (len & BPF_RINGBUF_BUSY_BIT)
				return 0;
			r->read += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
			err = merge__batch(c->m, len & BPF_RINGBUF_DISCARD_BIT ? NULL : hdr + 2,
					   size, r->read);
			if (err || on_record(c, &err))
				return err ? err : 1;
		}
	}
	return 0;
}

/*
 * Write every page of the ring once before tracing, so that no traced task
 * pays for a first write (the warm_ring program in bpf/ says why). The ring
 * takes one record less than it holds: two passes, each read back (which
 * also maps this side's pages in) before the next.
 */
static int warm_ring(struct collector *c)
{
	int fd = bpf_program__fd(c->skel->progs.warm_ring);

	c->poll_until = ~0ULL;
	for (int pass = 0; pass < 2; pass++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts);
		int err = bpf_prog_test_run_opts(fd, &opts);

		if (err)
			return -errno;
		kms_debug("ring buffer warm-up, pass %d: %u records of 4 KiB\n", pass + 1,
			  opts.retval);
		err = consume(c);
		if (err < 0)
			return err;
	}
	return 0;
}

static int deliver(struct collector *c, __u64 limit)
{
	if (c->marked && c->mark_key <= limit) {
		struct kms_meta m = { .type = KMS_EV_META_LOSS, .key = c->mark_fams };

		merge__deliver(c->m, c->mark_key, deliver_one, c->sink.ahead ? ahead_one : NULL, c);
		if (c->sink.meta)
			c->sink.meta(c->sink.ctx, &m);
		c->marked = false;
		c->mark_fams = 0;
	}
	merge__deliver(c->m, limit, deliver_one, c->sink.ahead ? ahead_one : NULL, c);
	return ring_release(c);
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
 * could not take or that came too late, softirqs and task runs no handler
 * saw (any family), and runs of a free handler the kernel skipped and no
 * shadow caught (its family). Lost allocations hide no free.
 */
static void check_losses(struct collector *c, bool final)
{
	const struct merge_stats *ms = merge__stats(c->m);
	__u64 all = percpu_sum(c, KMS_CNT_LOST) + percpu_sum(c, KMS_CNT_LOST_NESTED) +
		    percpu_sum(c, KMS_CNT_SOFTIRQ_UNSEEN) + c->softirqs_tail +
		    percpu_sum(c, KMS_CNT_TASK_UNSEEN) +
		    ms->bad_records + ms->out_of_order;
	/*
	 * A shadow counts its rescue after the kernel counted the miss, so
	 * misses less the rescues read before them is at least what is left
	 * unrescued, and less the rescues read after them at most.
	 */
	__u64 rescued = percpu_sum(c, KMS_CNT_RESCUED_FREE), rescued_after, misses = 0;
	unsigned int fams = 0, moved = 0, all_fams = (1U << KMS_FAM_MAX) - 1;
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
				moved |= c->free_fams[i];
			c->prog_misses[i] = info.recursion_misses;
			misses += info.recursion_misses - c->miss_base[i];
		}
		i++;
	}
	rescued_after = percpu_sum(c, KMS_CNT_RESCUED_FREE);
	c->missed_fams |= moved;
	if (misses - (rescued < misses ? rescued : misses) > c->unrescued)
		/* an older miss whose rescue was pending may be the one left */
		fams |= moved ? moved : c->missed_fams;
	c->unrescued = misses - (rescued_after < misses ? rescued_after : misses);
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
	c->miss_base = calloc(n, sizeof(*c->miss_base));
	c->free_fams = calloc(n, sizeof(*c->free_fams));
	if (!c->prog_misses || !c->miss_base || !c->free_fams)
		return -ENOMEM;
	bpf_object__for_each_program(prog, c->skel->obj) {
		const char *name = bpf_program__name(prog);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		/* the plan's trial attach ran these programs: the kernel's counts start there */
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
			c->miss_base[i] = c->prog_misses[i] = info.recursion_misses;

		for (int k = 0; k < c->plan->nr_events; k++) {
			const struct plan_event *ev = &c->plan->events[k];
			const struct plan_cand *cd;
			int fam = ev->family;

			if (fam < 0 || ev->alloc || ev->selected < 0)
				continue;
			cd = &ev->cands[ev->selected];
			if (strcmp(name, cd->prog) && (!cd->prog2 || strcmp(name, cd->prog2)))
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

/*
 * The ring holds what every CPU makes while the collector sleeps between
 * polls (10 ms) or is held up: 8 MiB (128 K records, ~12 ms of one CPU at
 * 11 M events/s) per possible CPU, a power of two, at least 16 MiB (an
 * 8 MiB ring lost records under leaks at the peak rate on this 2-CPU VM)
 * and at most 64. Not larger: the first write to each ring page is paid by
 * the traced task's handler, and in a shadow-paged VM (PVM, this project's
 * machines) it costs ~8 us a page, ~130 ns a record until the ring has
 * wrapped once; a 64 MiB ring made gen's 100 k iterations ~0.2x slower
 * than a 16 MiB one (bench/README.md).
 */
static unsigned int ring_mb_default(void)
{
	int cpus = libbpf_num_possible_cpus();
	unsigned int mb = 16;

	while (mb < 64 && cpus > 0 && mb < 8U * cpus)
		mb *= 2;
	return mb;
}

void collector__configure(struct kmemscope_bpf *skel, const struct collector_opts *o,
			  const struct plan *p)
{
	bpf_map__set_max_entries(skel->maps.rb,
				 (o->ring_mb ? o->ring_mb : ring_mb_default()) << 20);
	bpf_map__set_max_entries(skel->maps.stacks, o->stack_entries ? o->stack_entries : 1);
	skel->rodata->filter_pids = o->filter_pids;
	skel->rodata->stack_types = o->stack_entries ? o->stack_types : 0;
	skel->rodata->stack_cache = o->stack_cache;
	skel->rodata->use_seq = o->order_seq;
	skel->rodata->page_size = sysconf(_SC_PAGESIZE);
	skel->rodata->rcu_ptr_arg = p->rcu_ptr_arg;
	skel->rodata->kmalloc_twice = p->kmalloc_twice;
	/* the per-CPU area is found through the runqueue (pcpu_base() in bpf/) */
	if (p->pcpu_rq_off < 0)
		return;
	skel->rodata->pcpu_rq_off = p->pcpu_rq_off;
	skel->rodata->pcpu_sirq_off = p->pcpu_sirq_off > 0 ? p->pcpu_sirq_off : 0;
	/*
	 * Context capture (read_ctx() in bpf/), rescue and the self filter,
	 * which tell interrupt levels apart (ctx_level()), need the preempt
	 * count's offset too: without it the first two do not run, and the
	 * self filter leaves out the interrupts that land on kmemscope too.
	 */
	if (p->pcpu_pc_off < 0)
		return;
	skel->rodata->pcpu_pc_off = p->pcpu_pc_off;
	skel->rodata->pc_cast = p->pc_cast;
	skel->rodata->want_ctx = o->context;
	skel->rodata->rescue = o->rescue;
}

/* a per-CPU map's value for every CPU, all zero */
static int zero_percpu(struct collector *c, struct bpf_map *map, __u32 key)
{
	size_t sz = ((bpf_map__value_size(map) + 7) & ~7UL) * c->nr_cpus;
	void *zero = calloc(1, sz);
	int err = zero ? 0 : -ENOMEM;

	if (zero && bpf_map__update_elem(map, &key, sizeof(key), zero, sz, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

/*
 * The plan's trial attached this object, and it stays attached: its handlers
 * make no record, and so touch neither the stage nor the ring, until the
 * collector arms them, but what they count outside a record (function entries
 * waiting for their return, bulk pointers past the bound) is not part of the
 * run. Those counters and waiting entries are dropped (the recursion misses,
 * which cannot be reset, are taken as the zero in find_free_handlers()).
 */
static int reset_object(struct collector *c)
{
	struct kmemscope_bpf *s = c->skel;
	__u64 key;
	int err = 0;

	for (__u32 k = 0; k < KMS_CNT_NR && !err; k++)
		err = zero_percpu(c, s->maps.counters, k);
	while (!err && !bpf_map__get_next_key(s->maps.pend, NULL, &key, sizeof(key)))
		if (bpf_map__delete_elem(s->maps.pend, &key, sizeof(key), 0))
			err = -errno;
	return err;
}

int collector__open(struct collector **out, struct plan *plan,
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
	c->flush_asked = calloc(c->nr_cpus, sizeof(*c->flush_asked));
	c->m = merge__new(c->nr_cpus);
	if (!c->online || !c->flush_asked || !c->m) {
		err = -ENOMEM;
		goto fail;
	}
	read_online(c->online, c->nr_cpus);

	/* the plan loaded it, configured as o, while it probed */
	c->skel = plan->obj;
	plan->obj = NULL;
	if (!c->skel) {
		err = -ENOENT;
		kms_error("Failed to load BPF programs: the plan holds none\n");
		goto fail;
	}
	c->rescue = c->skel->rodata->rescue;
	c->context = c->skel->rodata->want_ctx;
	if (o->context && !c->context)
		kms_warn("this kernel's BTF lacks the per-CPU runqueue or preempt count: "
			 "allocation context (atomic-context checks) is unknown\n");
	if (o->rescue && !c->rescue)
		kms_warn("this kernel's BTF lacks the per-CPU runqueue or preempt count: "
			 "no rescue of the events the kernel skips\n");
	err = reset_object(c);
	if (!err)
		err = find_free_handlers(c);
	if (err) {
		kms_error("Failed to set up the collector: %s\n", strerror(-err));
		goto fail;
	}
	err = ring_open(&c->ring, bpf_map__fd(c->skel->maps.rb),
			bpf_map__max_entries(c->skel->maps.rb));
	if (err) {
		kms_error("Failed to map the ring buffer: %s\n", strerror(-err));
		goto fail;
	}
	err = warm_ring(c);
	if (err) {
		kms_error("Failed to write the ring buffer's pages before tracing: %s\n",
			  strerror(-err));
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
	/* a CPU may hold a "no" for this pid from before (kmemscope's own, at calibration) */
	__atomic_add_fetch(&c->skel->bss->filter_gen, 1, __ATOMIC_SEQ_CST);
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

void collector__set_wrappers(struct collector *c, const struct ksyms *k)
{
	unsigned long lo[KMS_WRAP_MAX], hi[KMS_WRAP_MAX];
	int n;

	/*
	 * with stacks, a wrapper's caller comes from the stack; with or without,
	 * a large kmalloc traced twice is told by its first site (bpf/)
	 */
	n = frames__wrappers(k, lo, hi, KMS_WRAP_MAX);
	if (n < 0) {
		kms_warn("more than %d allocator wrapper functions: call sites stay in them, and "
			 "a large kmalloc() the kernel traces twice counts twice\n", KMS_WRAP_MAX);
		return;
	}
	kms_debug("%d address ranges of allocator wrappers\n", n);
	for (int i = 0; i < n; i++) {
		c->skel->bss->wrap_lo[i] = lo[i];
		c->skel->bss->wrap_hi[i] = hi[i];
	}
	frames__wrapper_pages(lo, hi, n, c->skel->bss->wrap_pages);
	__atomic_store_n(&c->skel->bss->nr_wrap, n, __ATOMIC_SEQ_CST);
}

void collector__exclude(struct collector *c, pid_t tgid)
{
	__atomic_store_n(&c->skel->bss->self_tgid, tgid, __ATOMIC_SEQ_CST);
}

/*
 * ship CPU cpu's staged records; 0, 1 if it was busy (or, paced, held a
 * large kmalloc for its second trace: flush_stage()), or -errno
 */
static int flush_cpu(struct collector *c, int cpu, bool paced)
{
	__u64 args[1] = { !paced };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu,
		    .ctx_in = args, .ctx_size_in = sizeof(args));
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(c->skel->progs.flush_stage), &opts);
	if (err)
		return -errno;
	return opts.retval;
}

/*
 * Flush the online CPUs whose watermark is below key: every one at once
 * (paced false), or those whose last batch is older than STALE_NS. The
 * collector's tick asks for the CPUs that hold a waiting record back, so on
 * a quiet system no CPU is disturbed.
 */
static void flush_below(struct collector *c, __u64 key, bool paced)
{
	__u64 now = now_ns();

	for (int i = 0; i < c->nr_cpus; i++) {
		/* a flush asked for is in the ring, maybe not read yet: once is enough */
		__u64 last = merge__flushed_at(c->m, i);

		if (c->flush_asked[i] > last)
			last = c->flush_asked[i];
		if (!c->online[i] || merge__cpu_watermark(c->m, i) >= key ||
		    (paced && last + STALE_NS > now))
			continue;
		c->flush_asked[i] = now;
		if (flush_cpu(c, i, paced) == -ENXIO)
			c->online[i] = false;	/* went offline: it ships nothing more */
	}
}

/* from here on the handlers record (see 'armed' in the BPF object) */
static void arm(struct collector *c)
{
	__atomic_store_n(&c->skel->bss->armed, 1, __ATOMIC_SEQ_CST);
	flush_below(c, ~0ULL, false);
}

struct kmemscope_bpf *collector__bpf(struct collector *c)
{
	return c->skel;
}

int collector__attach(struct collector *c)
{
	int err = plan__attach(c->plan, c->skel, c->rescue);

	if (err)
		return err;
	arm(c);
	return 0;
}

void collector__test_only(struct collector *c)
{
	kmemscope_bpf__detach(c->skel);
	arm(c);
}

static __u64 watermark(struct collector *c)
{
	return merge__watermark(c->m, c->online);
}

/* the collector's periodic work; on_record() runs it too, while the ring is read */
static void tick(struct collector *c, __u64 now)
{
	flush_below(c, merge__oldest(c->m), true);
	if (now >= c->next_check) {
		check_losses(c, false);
		c->next_check = now + CHECK_NS;
	}
	/* -ENOMEM from the ring's spill comes back from the next record's deliver */
	deliver(c, watermark(c));
}

int collector__poll(struct collector *c)
{
	int n;

	if (c->stopped)
		return 0;
	c->poll_until = now_ns() + POLL_BUDGET_NS;
	n = consume(c);
	if (n < 0)
		return n;
	tick(c, now_ns());
	return n;
}

int collector__sync(struct collector *c)
{
	__u64 until = now_ns() + SYNC_MAX_NS;
	int n;

	/* every record made before this point has a smaller key */
	c->sync_key = current_key(c);
	flush_below(c, ~0ULL, false);
	do {
		c->poll_until = now_ns() + POLL_BUDGET_NS;
		n = consume(c);
		if (n < 0)
			break;
		n = 0;
		if (watermark(c) >= c->sync_key)
			break;
		/* a CPU busy at the flush ships when its handler is done, or at the next one */
		flush_below(c, c->sync_key, true);
	} while (now_ns() < until);
	c->sync_key = 0;
	if (n < 0)
		return n;
	check_losses(c, false);
	return deliver(c, watermark(c));
}

/* every CPU's stage (free() it), NULL if it cannot be read */
static struct kms_stage *stages(struct collector *c)
{
	struct kms_stage *vals;
	__u32 zero = 0;

	if (bpf_map__value_size(c->skel->maps.stage) != sizeof(struct kms_stage))
		return NULL;
	vals = calloc(c->nr_cpus, sizeof(*vals));
	if (vals && bpf_map__lookup_elem(c->skel->maps.stage, &zero, sizeof(zero), vals,
					 sizeof(*vals) * c->nr_cpus, 0)) {
		free(vals);
		vals = NULL;
	}
	return vals;
}

/* the pid filter counts in the per-CPU stage, where its hot path already is */
static __u64 stage_filtered(struct collector *c)
{
	struct kms_stage *st = stages(c);
	__u64 sum = 0;

	for (int i = 0; st && i < c->nr_cpus; i++)
		sum += st[i].filtered;
	free(st);
	return sum;
}

/*
 * The witness finds a softirq it did not see at its next run on that CPU;
 * at the end of a run, those since its last run are found from the kernel's
 * count, read while the witness still runs (softirqs__unseen()).
 */
static __u64 softirq_tail(struct collector *c)
{
	__u32 *kernel = calloc(c->nr_cpus, sizeof(*kernel));
	__u32 *seen = calloc(c->nr_cpus, sizeof(*seen));
	struct kms_stage *st = NULL;
	__u64 n = 0;

	if (kernel && seen && plan__softirq_witness(c->plan) &&
	    softirqs__read(SOFTIRQS_PROC, kernel, c->nr_cpus) > 0 && (st = stages(c))) {
		for (int i = 0; i < c->nr_cpus; i++)
			seen[i] = st[i].softirqs;
		n = softirqs__unseen(kernel, seen, c->nr_cpus);
	}
	free(st);
	free(kernel);
	free(seen);
	return n;
}

int collector__stop(struct collector *c)
{
	int n;

	if (c->stopped)
		return 0;
	c->softirqs_tail = softirq_tail(c);
	/* after detach returns no handler runs: the final flush sees everything */
	kmemscope_bpf__detach(c->skel);
	c->poll_until = ~0ULL;
	n = consume(c);
	flush_below(c, ~0ULL, false);
	if (n >= 0)
		n = consume(c);
	check_losses(c, true);
	if (n >= 0)
		n = deliver(c, ~0ULL);
	c->stopped = true;
	return n < 0 ? n : 0;
}

/*
 * The processes of the threads the task witness saw run unseen, as "PID (COMM)"
 * (the first thread's name), in c->unseen_tasks; NULL when there is none.
 */
static const char *unseen_tasks(struct collector *c)
{
	__u32 tids[KMS_UNSEEN_TASKS], tgids[KMS_UNSEEN_TASKS], key, *prev = NULL;
	int n = 0, ng = 0;
	size_t len = 0;

	while (n < KMS_UNSEEN_TASKS &&
	       !bpf_map__get_next_key(c->skel->maps.unseen_tasks, prev, &key, sizeof(key))) {
		tids[n] = key;
		prev = &tids[n++];
	}
	c->unseen_tasks[0] = 0;
	for (int i = 0; i < n; i++) {
		char path[64], line[256], comm[64] = "?";
		long tgid = tids[i];
		bool dup = false;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%u/status", tids[i]);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "Name:", 5))
				sscanf(line + 5, " %63[^\n]", comm);
			else if (!strncmp(line, "Tgid:", 5))
				tgid = strtol(line + 5, NULL, 10);
		}
		if (f)
			fclose(f);
		for (int g = 0; g < ng; g++)
			dup |= tgids[g] == (__u32)tgid;
		if (dup || len >= sizeof(c->unseen_tasks))
			continue;
		tgids[ng++] = tgid;
		len += snprintf(c->unseen_tasks + len, sizeof(c->unseen_tasks) - len, "%s%ld (%s)",
				len ? ", " : "", tgid, comm);
	}
	return c->unseen_tasks[0] ? c->unseen_tasks : NULL;
}

/* runs of the i-th program the kernel skipped since the collector took the object */
static __u64 run_misses(struct collector *c, struct bpf_program *prog, int i)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(prog);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.recursion_misses - c->miss_base[i];
}

static __u64 prog_misses(struct collector *c, const char *name)
{
	struct bpf_program *prog;
	int i = 0;

	bpf_object__for_each_program(prog, c->skel->obj) {
		if (name && !strcmp(bpf_program__name(prog), name))
			return run_misses(c, prog, i);
		i++;
	}
	return 0;
}

void collector__quality(struct collector *c, struct kms_quality *q)
{
	__u64 *vals = calloc(c->nr_cpus, sizeof(__u64));
	struct bpf_program *prog;
	int i = 0;

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
			case KMS_CNT_RESCUED_FREE:
				q->rescued += sum;
				break;
			case KMS_CNT_BULK_LOST:
				q->bulk_lost = sum;
				break;
			case KMS_CNT_SELF:
				q->self_excluded = sum;
				break;
			case KMS_CNT_KMALLOC_TWICE:
				q->kmalloc_twice = sum;
				break;
			case KMS_CNT_SOFTIRQ_UNSEEN:
				q->softirqs_unseen = sum + c->softirqs_tail;
				break;
			case KMS_CNT_TASK_UNSEEN:
				q->tasks_unseen = sum;
				break;
			}
		}
		free(vals);
	}
	q->rescue = c->rescue;
	q->softirq_witness = plan__softirq_witness(c->plan);
	q->task_witness = plan__task_witness(c->plan);
	q->unseen_tasks = unseen_tasks(c);
	q->lost += merge__stats(c->m)->bad_records;
	q->filtered += stage_filtered(c);
	q->misses = 0;
	bpf_object__for_each_program(prog, c->skel->obj) {
		/*
		 * A shadow skipped while it runs costs nothing: its handler runs
		 * then. Only the handlers' misses are events lost.
		 */
		if (strncmp(bpf_program__name(prog), "sh_", 3))
			q->misses += run_misses(c, prog, i);
		i++;
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
		em->misses = prog_misses(c, cand->prog) + prog_misses(c, cand->prog2);
	}
	for (int f = 0; f < KMS_FAM_MAX; f++) {
		q->traced[f] = c->plan->fam_traced[f];
		q->method[f] = c->plan->fam_method[f];
		/* the user families are asked for with --user alone */
		q->skipped[f] = (c->families && !(c->families & (1u << f))) ||
				(kms_family_is_user(f) && !c->plan->cfg.user);
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
	ring_close(&c->ring);
	kmemscope_bpf__destroy(c->skel);
	merge__free(c->m);
	free(c->online);
	free(c->flush_asked);
	free(c->prog_misses);
	free(c->miss_base);
	free(c->free_fams);
	free(c);
}
