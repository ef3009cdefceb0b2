// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Ground truth for --user (tests/live/user.sh): known allocation patterns,
 * each in a function of its own, so that kmemscope's per-site rows (named
 * from this binary's symbols) must equal the ledger below exactly. The
 * ledger goes to stdout as JSON at the end; nothing before it allocates
 * through stdio.
 *
 * ledger [wait]: with "wait", the patterns run once SIGUSR1 comes (for -p PID).
 */
#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

/* N mallocs of each size class, all freed */
#define PER_CLASS 100
static const size_t classes[] = { 16, 64, 256, 1024, 4096, 65536 };
#define NR_CLASSES (sizeof(classes) / sizeof(classes[0]))
/* a realloc chain: one malloc, then each realloc frees the old block and allocates the new */
static const size_t chain[] = { 8, 24, 200, 3000, 40000, 100 };
#define NR_CHAIN (sizeof(chain) / sizeof(chain[0]))
/* held until exit: the leak */
#define LEAKS 3
#define LEAK_BYTES 1000
/* allocated here, freed by another thread */
#define CROSS 50
#define CROSS_BYTES 48
/*
 * glibc's thread cache keeps up to 7 freed blocks per size class (tunable
 * glibc.malloc.tcache_count; the test leaves it at its default). When the
 * freeing thread exits, glibc frees those blocks again, and then the cache
 * itself, which it allocated with its internal _int_malloc: 7 + 1 frees
 * that kmemscope counts as exit_frees.
 */
#define TCACHE_COUNT 7

static void *volatile sink;	/* keeps the compiler from dropping allocations */
/* volatile: an allocation nothing reads may be dropped by the compiler */
void *volatile held[LEAKS];
static void *cross[CROSS];

NOINLINE static void ledger_classes(void)
{
	for (size_t c = 0; c < NR_CLASSES; c++)
		for (int i = 0; i < PER_CLASS; i++) {
			sink = malloc(classes[c]);
			free(sink);
		}
}

NOINLINE static void ledger_realloc_chain(void)
{
	void *p = malloc(chain[0]);

	for (size_t i = 1; i < NR_CHAIN; i++)
		p = realloc(p, chain[i]);
	sink = p;
	free(p);
}

NOINLINE static void ledger_leak(void)
{
	for (int i = 0; i < LEAKS; i++)
		held[i] = malloc(LEAK_BYTES);
}

/* nmemb * size overflows: calloc must fail with ENOMEM and allocate nothing */
NOINLINE static int ledger_calloc_overflow(void)
{
	volatile size_t n = SIZE_MAX / 2 + 1;

	errno = 0;
	sink = calloc(n, 4);
	return sink == NULL && errno == ENOMEM;
}

/* realloc(p, 0) frees p and returns NULL (glibc): one allocation, one free */
NOINLINE static void ledger_realloc_zero(void)
{
	void *p = malloc(77);

	sink = realloc(p, 0);
}

NOINLINE static void ledger_calloc(void)
{
	sink = calloc(10, 20);
	free(sink);
}

NOINLINE static void ledger_aligned(void)
{
	void *p = NULL;

	if (!posix_memalign(&p, 64, 100))
		free(p);
	sink = aligned_alloc(128, 256);
	free(sink);
	sink = memalign(32, 50);
	free(sink);
	sink = valloc(300);
	free(sink);
}

static void *cross_free(void *arg)
{
	for (int i = 0; i < CROSS; i++)
		free(cross[i]);
	return NULL;
}

NOINLINE static void ledger_cross_alloc(void)
{
	for (int i = 0; i < CROSS; i++)
		cross[i] = malloc(CROSS_BYTES);
}

static void go(int sig)
{
}

int main(int argc, char **argv)
{
	size_t class_bytes = 0, chain_bytes = 0;
	pthread_t t;
	int overflow_failed;
	sigset_t usr1, old;

	if (argc > 1 && !strcmp(argv[1], "wait")) {
		/* blocked first: a signal sent before sigsuspend() is not lost */
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		signal(SIGUSR1, go);
		sigprocmask(SIG_BLOCK, &usr1, &old);
		sigsuspend(&old);
	}

	ledger_classes();
	ledger_realloc_chain();
	ledger_leak();
	overflow_failed = ledger_calloc_overflow();
	ledger_realloc_zero();
	ledger_calloc();
	ledger_aligned();
	ledger_cross_alloc();
	if (pthread_create(&t, NULL, cross_free, NULL) || pthread_join(t, NULL))
		return 1;
	for (size_t c = 0; c < NR_CLASSES; c++)
		class_bytes += PER_CLASS * classes[c];
	for (size_t i = 0; i < NR_CHAIN; i++)
		chain_bytes += chain[i];
	/* the ledger: per function, what it did (bytes as asked for) */
	printf("{\"ledger_classes\": {\"allocs\": %zu, \"frees\": %zu, \"bytes\": %zu},\n"
	       " \"ledger_realloc_chain\": {\"allocs\": %zu, \"frees\": %zu, \"bytes\": %zu},\n"
	       " \"ledger_leak\": {\"allocs\": %d, \"frees\": 0, \"bytes\": %d, \"leaked\": %d},\n"
	       " \"ledger_calloc_overflow\": {\"allocs\": 0, \"fails\": %d},\n"
	       " \"ledger_realloc_zero\": {\"allocs\": 1, \"frees\": 1, \"bytes\": 77},\n"
	       " \"ledger_calloc\": {\"allocs\": 1, \"frees\": 1, \"bytes\": 200},\n"
	       " \"ledger_aligned\": {\"allocs\": 4, \"frees\": 4, \"bytes\": %d},\n"
	       " \"ledger_cross_alloc\": {\"allocs\": %d, \"frees\": %d, \"bytes\": %d},\n"
	       " \"thread_exit\": {\"exit_frees\": %d}}\n",
	       NR_CLASSES * PER_CLASS, NR_CLASSES * PER_CLASS, class_bytes,
	       NR_CHAIN, NR_CHAIN, chain_bytes,
	       LEAKS, LEAKS * LEAK_BYTES, LEAKS * LEAK_BYTES, overflow_failed,
	       100 + 256 + 50 + 300, CROSS, CROSS, CROSS * CROSS_BYTES,
	       (CROSS < TCACHE_COUNT ? CROSS : TCACHE_COUNT) + 1);
	return 0;
}
