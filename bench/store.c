// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * store: the record pipeline's cost per event and memory per live object,
 * without BPF: a synthetic stream fed to the pipeline as `kmemscope leaks`
 * builds it (live-object store, aggregator, leak and bad-free detectors), or
 * with -s as `kmemscope stat` builds it (store, aggregator, misuse checks).
 *
 *   store [-s] [-n LIVE] [-c CHURN]
 *
 * Three phases, each timed in CPU time of this process:
 *   alloc:  LIVE kmalloc records (64 call sites, one stack each), all kept live;
 *   churn:  CHURN pairs, a free of a random live object and a new allocation;
 *   free:   a free of every live object.
 * Memory: the peak RSS growth over the start per live object, after the
 * allocations, and after the churn (which fills the detector's bounded
 * recently-freed set too).
 * Prints one line per figure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "detect.h"
#include "pipeline.h"

#define SITES	64
#define SLAB	0xffff888100000000ULL

static __attribute__((noreturn)) void usage(FILE *f, int code)
{
	fprintf(f, "Usage: store [-s] [-n LIVE] [-c CHURN]\n"
		   "Feed the leaks pipeline (-s: stat's) LIVE allocations, CHURN free+alloc\n"
		   "pairs, then free all; print ns per event and bytes per live object.\n");
	exit(code);
}

static double cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static long peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* xorshift: a reproducible stream of random numbers */
static __u64 rnd(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void feed(struct pipeline *p, int type, __u64 ptr, __u64 n)
{
	struct kms_event e = {
		.type = type, .ptr = ptr, .pid = 1000 + n % 4, .node = -1, .ctx = KMS_CTX_KNOWN,
		.stack_id = n % SITES, .site = 0xffffffff81000000ULL + (n % SITES) * 0x40,
		.gfp = 0xcc0, .ts = n,
	};

	if (type == KMS_EV_KMALLOC)
		e.bytes_req = e.bytes_alloc = 64;
	pipeline__event(p, &e);
}

static unsigned long parse(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || !v) {
		fprintf(stderr, "store: not a positive number: '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct detect_opts dopts = { .leaks = true, .bad_frees = true };
	struct pipeline_opts popts = { .detect = &dopts };
	unsigned long live = 1000000, churn = 2000000, i;
	__u64 *ptrs, seed = 88172645463325252ULL, n = 0;
	struct pipeline p;
	long rss0, rss1, rss2;
	double t;
	int c;

	while ((c = getopt(argc, argv, "sn:c:h")) != -1) {
		switch (c) {
		case 's':
			dopts = (struct detect_opts){ .misuse = true };
			break;
		case 'n':
			live = parse(optarg);
			break;
		case 'c':
			churn = parse(optarg);
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	ptrs = malloc(live * sizeof(*ptrs));
	if (!ptrs || pipeline__init(&p, &popts)) {
		fprintf(stderr, "store: out of memory\n");
		return 1;
	}
	/* the addresses of the objects, touched before the baseline */
	for (i = 0; i < live; i++)
		ptrs[i] = SLAB + i * 64;
	rss0 = peak_rss_kb();

	t = cpu_ns();
	for (i = 0; i < live; i++)
		feed(&p, KMS_EV_KMALLOC, ptrs[i], n++);
	t = cpu_ns() - t;
	printf("alloc: %.1f ns per event (%lu live)\n", t / live, live);
	rss1 = peak_rss_kb();

	t = cpu_ns();
	for (i = 0; i < churn; i++) {
		unsigned long k = rnd(&seed) % live;

		feed(&p, KMS_EV_KFREE, ptrs[k], n++);
		ptrs[k] = SLAB + (live + i) * 64;
		feed(&p, KMS_EV_KMALLOC, ptrs[k], n++);
	}
	t = cpu_ns() - t;
	printf("churn: %.1f ns per event (%lu frees and allocations)\n", t / (2.0 * churn),
	       2 * churn);
	rss2 = peak_rss_kb();

	t = cpu_ns();
	for (i = 0; i < live; i++)
		feed(&p, KMS_EV_KFREE, ptrs[i], n++);
	t = cpu_ns() - t;
	printf("free: %.1f ns per event\n", t / live);
	if (pipeline__filtered(&p) || live__count(&p.live)) {
		fprintf(stderr, "store: %llu objects left live, expected 0\n",
			(unsigned long long)live__count(&p.live));
		return 1;
	}
	printf("memory: %.1f bytes per live object (peak RSS +%ld KiB for %lu live)\n",
	       (rss1 - rss0) * 1024.0 / live, rss1 - rss0, live);
	printf("memory after the churn: %.1f bytes per live object (peak RSS +%ld KiB)\n",
	       (rss2 - rss0) * 1024.0 / live, rss2 - rss0);
	pipeline__fini(&p);
	free(ptrs);
	return 0;
}
