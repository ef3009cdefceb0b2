/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Ordering across CPUs, end to end: the real BPF handlers, run through
 * BPF_PROG_TEST_RUN on CPU 0 and CPU 1, shipped through the ring buffer into
 * the real collector and merge. Half the runs name a cache the CPU has not
 * seen, so a metadata record is staged in front of the event and the end of
 * a batch falls on every slot alignment: a flush between taking an order key
 * and staging its record shows up as a record delivered late.
 *
 * In turn: one run at a time, alternating CPUs; each run's object pointer is
 * its number, so the records must come out as 1, 2, 3 ... At once: a thread
 * per CPU, runs overlapping; each CPU's records must keep their order, and
 * the merge must never see a record behind one it has delivered.
 *
 *   order [RUNS]     prints PASS/FAIL lines; needs root and BPF, fails without
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "collector.h"
#include "log.h"
#include "ksyms.h"
#include "plan.h"

/* fake cache pointers: user addresses, so the cache-name reads fail cleanly */
#define CACHE_BASE	0x100000ULL
#define CACHE_STEP	64

/* an event's pointer: its CPU's number in the high half, its run number (from 1) below */
#define PTR(cpu, n)	(((__u64)(cpu) << 32) | (n))

struct check {
	bool per_cpu;		/* runs overlap: only each CPU's own order is known */
	__u64 next[2];		/* the pointer the next event (of each CPU) must carry */
	__u64 events;
	__u64 wrong;		/* events out of run order */
	__u64 first_wrong, first_wrong_got;
	__u64 unnamed;		/* cache events before their cache's metadata */
	__u64 metas;
	unsigned char *named;	/* per cache: its metadata was delivered */
	unsigned int nr_caches;
};

static int failed;

static void verdict(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verdict(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s order: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		failed++;
}

static void on_event(void *ctx, struct kms_event *e)
{
	struct check *k = ctx;
	__u64 idx = (e->obj - CACHE_BASE) / CACHE_STEP;
	int i = k->per_cpu ? e->ptr >> 32 : 0;

	k->events++;
	if (i > 1 || e->ptr != k->next[i]) {
		if (!k->wrong) {
			k->first_wrong = i > 1 ? 0 : k->next[i];
			k->first_wrong_got = e->ptr;
		}
		k->wrong++;
	}
	if (i <= 1)
		k->next[i] = e->ptr + 1;
	if (idx >= k->nr_caches || !k->named[idx])
		k->unnamed++;
}

static void on_meta(void *ctx, const struct kms_meta *m)
{
	struct check *k = ctx;
	__u64 idx = (m->key - CACHE_BASE) / CACHE_STEP;

	k->metas++;
	if (m->type == KMS_EV_META_CACHE && idx < k->nr_caches)
		k->named[idx] = 1;
}

static __u32 lcg(__u32 *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

/* the runs of one CPU: every other run in turn, all of them at once */
struct runner {
	struct collector *c;
	int cpu;
	int step;		/* 2: every other run (in turn), 1: each run (at once) */
	unsigned int runs;	/* run numbers below this */
	unsigned int first;	/* the first run of this CPU */
	__u64 *next_cache;	/* shared: the next unused cache pointer */
	__u64 cache;		/* the cache this CPU used last */
	__u32 seed;
	unsigned int ran;
	int err;
	bool done;
};

/* one run: a cache alloc or free, of a new cache or the one used last */
static int run_one(struct runner *r, unsigned int n)
{
	__u32 x = lcg(&r->seed);
	bool alloc = x & 1;
	/* args of kmem_cache_alloc: site, ptr, cache, gfp, node (free: the first 3) */
	__u64 args[5] = { 0xffffffff81000000ULL + n, 0, 0, 0, (__u64)-1 };

	if ((x & 2) || !r->cache)
		r->cache = __atomic_fetch_add(r->next_cache, CACHE_STEP, __ATOMIC_RELAXED);
	args[1] = r->step == 2 ? n + 1 : PTR(r->cpu, n + 1);
	args[2] = r->cache;
	return collector__test_run(r->c, alloc ? "rt_kmem_cache_alloc" : "rt_kmem_cache_free",
				   r->cpu, args, 5);
}

static void *run_cpu(void *arg)
{
	struct runner *r = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	/* on its own CPU a test run is a plain call with preemption off */
	sched_setaffinity(0, sizeof(set), &set);
	for (unsigned int n = 0; n < r->runs && !r->err; n++) {
		r->err = run_one(r, n);
		if (!r->err)
			r->ran++;
	}
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void run_mode(bool seq, bool at_once, unsigned int runs)
{
	char mode[32];
	struct collector_opts o = {
		.ring_mb = 16,
		.families = 1u << KMS_FAM_CACHE,
		.order_seq = seq,
	};
	struct check k = { .per_cpu = at_once, .nr_caches = 2 * runs + 2 };
	struct collector_sink sink = { on_event, on_meta, &k };
	__u64 next_cache = CACHE_BASE;
	struct runner r[2] = {};
	struct kms_quality q = {};
	struct collector *c = NULL;
	struct plan *plan = NULL;
	struct ksyms_loader syms = {};
	pthread_t th[2];
	int err;

	snprintf(mode, sizeof(mode), "%s, %s", seq ? "seq" : "time", at_once ? "at once" : "in turn");
	k.next[0] = at_once ? PTR(0, 1) : 1;
	k.next[1] = PTR(1, 1);
	k.named = calloc(k.nr_caches, 1);
	if (!k.named) {
		verdict(false, "%s: out of memory", mode);
		return;
	}
	/* the plan is probed with the configuration the collector loads, as kmemscope does */
	err = plan__probe(&plan, &o, &syms);
	ksyms__loader_fini(&syms);
	if (err || !plan->fam_traced[KMS_FAM_CACHE]) {
		verdict(false, "%s: kmem_cache events cannot be traced here (%s)", mode,
			err ? strerror(-err) : "see kmemscope probe");
		goto out;
	}
	err = collector__open(&c, plan, &o, sink);
	if (err) {
		verdict(false, "%s: cannot load the BPF programs: %s", mode, strerror(-err));
		goto out;
	}
	/* the plan left the programs attached: only the runs below may record */
	collector__test_only(c);
	for (int i = 0; i < 2; i++) {
		r[i].c = c;
		r[i].cpu = i;
		r[i].runs = runs;
		r[i].next_cache = &next_cache;
		r[i].seed = 42 + i;
	}
	if (at_once) {
		for (int i = 0; i < 2; i++) {
			r[i].step = 1;
			if (pthread_create(&th[i], NULL, run_cpu, &r[i])) {
				verdict(false, "%s: cannot start a thread", mode);
				r[i].done = true;
				r[i].err = -EAGAIN;
				th[i] = 0;
			}
		}
		/* deliver as the live loop does, while both CPUs stage */
		while (!__atomic_load_n(&r[0].done, __ATOMIC_ACQUIRE) ||
		       !__atomic_load_n(&r[1].done, __ATOMIC_ACQUIRE))
			collector__poll(c);
		for (int i = 0; i < 2; i++)
			if (th[i])
				pthread_join(th[i], NULL);
	} else {
		for (unsigned int n = 0; n < runs; n++) {
			struct runner *x = &r[n & 1];

			x->step = 2;
			x->err = run_one(x, n);
			if (x->err)
				break;
			x->ran++;
			/* deliver often enough to catch a late record */
			if (n % 5 == 4)
				collector__poll(c);
		}
	}
	for (int i = 0; i < 2; i++)
		if (r[i].err)
			verdict(false, "%s: test run on CPU %d: %s", mode, i,
				r[i].err < 0 ? strerror(-r[i].err) : "program returned non-zero");
	err = collector__stop(c);
	if (err)
		verdict(false, "%s: collector__stop: %s", mode, strerror(-err));
	collector__quality(c, &q);
	verdict(k.events == r[0].ran + r[1].ran && q.lost == 0,
		"%s: %llu of %u events delivered (%llu metadata records), %llu lost", mode,
		(unsigned long long)k.events, r[0].ran + r[1].ran, (unsigned long long)k.metas,
		(unsigned long long)q.lost);
	verdict(k.wrong == 0 && q.out_of_order == 0,
		"%s: events in order: %llu out of place (first: %#llx where %#llx was due), "
		"merge counted %llu out of order", mode, (unsigned long long)k.wrong,
		(unsigned long long)k.first_wrong_got, (unsigned long long)k.first_wrong,
		(unsigned long long)q.out_of_order);
	verdict(k.unnamed == 0, "%s: every cache named before its first event: %llu unnamed",
		mode, (unsigned long long)k.unnamed);
out:
	collector__free(c);
	plan__free(plan);
	free(k.named);
}

int main(int argc, char **argv)
{
	unsigned int runs = argc > 1 ? strtoul(argv[1], NULL, 0) : 20000;

	libbpf_set_print(kms_libbpf_print);
	if (libbpf_num_possible_cpus() < 2) {
		verdict(false, "setup: needs 2 CPUs, this machine has %d",
			libbpf_num_possible_cpus());
		return 1;
	}
	for (int at_once = 0; at_once < 2; at_once++) {
		run_mode(true, at_once, runs);
		run_mode(false, at_once, runs);
	}
	return failed ? 1 : 0;
}
