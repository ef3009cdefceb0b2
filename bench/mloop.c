// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mloop: a malloc/free loop for bench/user.py (the cost of --user).
 *
 *   mloop [ITERS [SPIN]]
 *
 * Each iteration mallocs a block (sizes cycle 16 .. 4096 bytes) and frees the
 * one it allocated 8 iterations before, so the heap stays small and warm;
 * SPIN (default 0) adds that many rounds of arithmetic per iteration, which
 * lowers the call rate without touching the heap. Prints "iters=N calls=N
 * ns=N cpu_ns=N": wall time of the loop, and the CPU time (user + system) the
 * process spent in it, which is where uprobe hits are paid (each one traps
 * into the kernel in this process's context). With MLOOP_LINGER_MS set, it
 * then waits that long before exiting, so that a tracer's programs can still
 * be read (bpf_stats) once the line is out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define KEEP 8

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200000, spin = argc > 2 ? atol(argv[2]) : 0;
	const char *linger = getenv("MLOOP_LINGER_MS");
	void *volatile ring[KEEP] = {};
	volatile unsigned long acc = 0;
	long long t0, c0, t1, c1;

	if (iters <= 0 || spin < 0 || argc > 3) {
		fprintf(stderr, "usage: mloop [ITERS [SPIN]]\n");
		return 2;
	}
	t0 = now_ns();
	c0 = cpu_ns();
	for (long i = 0; i < iters; i++) {
		free(ring[i % KEEP]);
		ring[i % KEEP] = malloc(16 << (i % 9));
		for (long k = 0; k < spin; k++)
			acc = acc * 31 + k;
	}
	c1 = cpu_ns();
	t1 = now_ns();
	for (int i = 0; i < KEEP; i++)
		free(ring[i]);
	printf("iters=%ld calls=%ld ns=%lld cpu_ns=%lld\n", iters, 2 * iters, t1 - t0, c1 - c0);
	fflush(stdout);
	if (linger)
		usleep(atoi(linger) * 1000);
	return 0;
}
