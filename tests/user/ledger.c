// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Ground truth for --user (tests/live/user.sh): known allocation patterns,
 * each in a function of its own, so that kmemscope's per-site rows (named
 * from this binary's symbols) must equal the ledger below exactly. The
 * ledger goes to stdout as JSON at the end; nothing before it allocates
 * through stdio.
 *
 * ledger [wait]: with "wait", the patterns run once SIGUSR1 comes (for -p PID).
 * ledger stacks: leaks from 2048 distinct stacks instead (ledger_stacks()).
 *
 * The same source is built against glibc, jemalloc (linked, and linked
 * statically into the executable) and run with tcmalloc preloaded: the
 * ledger says which object its loader took malloc from, and counts what
 * depends on the allocator (realloc(p, 0), the frees at thread exit).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
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
 * that kmemscope counts as exit_frees. jemalloc and tcmalloc release their
 * thread caches inside, through no traced function: none.
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
		held[i] = malloc(LEAK_BYTES);	/* line: leak */
}

/*
 * nmemb * size overflows: calloc must fail and allocate nothing (glibc sets
 * ENOMEM, tcmalloc leaves errno alone: what counts is the NULL)
 */
NOINLINE static int ledger_calloc_overflow(void)
{
	volatile size_t n = SIZE_MAX / 2 + 1;

	sink = calloc(n, 4);
	return sink == NULL;
}

/*
 * realloc(p, 0) frees p and returns NULL in glibc and tcmalloc: one
 * allocation, one free. jemalloc returns a new block of 0 bytes, freed
 * here: two of each. 1 when it returned a block.
 */
NOINLINE static int ledger_realloc_zero(void)
{
	void *p = malloc(77);

	sink = realloc(p, 0);
	if (!sink)
		return 0;
	free(sink);
	return 1;
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

/*
 * ledger stacks: one block leaked from each of 2^STACK_DEPTH distinct user
 * stacks (the path of left and right calls taken to the malloc), enough for
 * some of them to share a bucket of the kernel's stack map: kmemscope must
 * still show each one whole (tests/live/user.sh). Shallow enough for every
 * frame to be captured (KMS_MAX_STACK), so no two stacks are cut to one.
 */
#define STACK_DEPTH 11
static void *volatile spread[1 << STACK_DEPTH];
static void stack_left(unsigned int path, int depth, int i);
static void stack_right(unsigned int path, int depth, int i);

/* two functions of one body: which called which tells the paths apart */
#define STACK_STEP(name)							\
	NOINLINE static void name(unsigned int path, int depth, int i)		\
	{									\
		if (!depth)							\
			spread[i] = malloc(24);					\
		else if (path & 1)						\
			stack_right(path >> 1, depth - 1, i);			\
		else								\
			stack_left(path >> 1, depth - 1, i);			\
		/* no tail call: every level keeps its frame */		\
		__asm__ volatile("" ::: "memory");				\
	}
STACK_STEP(stack_left)
STACK_STEP(stack_right)

NOINLINE static int ledger_stacks(void)
{
	for (unsigned int path = 0; path < 1U << STACK_DEPTH; path++)
		stack_left(path, STACK_DEPTH, path);
	printf("{\"ledger_stacks\": {\"allocs\": %d, \"leaked\": %d, \"bytes\": %d}}\n",
	       1 << STACK_DEPTH, 1 << STACK_DEPTH, 24 << STACK_DEPTH);
	return 0;
}

static void go(int sig)
{
}

int main(int argc, char **argv)
{
	size_t class_bytes = 0, chain_bytes = 0;
	pthread_t t;
	int overflow_failed, zero_block, exit_frees = 0;
	sigset_t usr1, old;
	char exe[PATH_MAX] = "";
	const char *allocator;
	Dl_info info = {};

	if (argc > 1 && !strcmp(argv[1], "stacks"))
		return ledger_stacks();
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
	ledger_leak();	/* line: main-leak */
	overflow_failed = ledger_calloc_overflow();
	zero_block = ledger_realloc_zero();
	ledger_calloc();
	ledger_aligned();
	ledger_cross_alloc();
	if (pthread_create(&t, NULL, cross_free, NULL) || pthread_join(t, NULL))
		return 1;
	for (size_t c = 0; c < NR_CLASSES; c++)
		class_bytes += PER_CLASS * classes[c];
	for (size_t i = 0; i < NR_CHAIN; i++)
		chain_bytes += chain[i];
	/* the object the loader gives malloc from (the executable's name is "" or argv[0]) */
	if (!dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) || !info.dli_fname)
		return 1;
	allocator = strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
	if (!*allocator || !strcmp(info.dli_fname, argv[0])) {
		if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0)
			return 1;
		allocator = strrchr(exe, '/') + 1;
	}
	/* only glibc's thread cache goes back through free() */
	if (!strncmp(allocator, "libc.so", 7))
		exit_frees = (CROSS < TCACHE_COUNT ? CROSS : TCACHE_COUNT) + 1;
	/* the ledger: per function, what it did (bytes as asked for) */
	printf("{\"ledger_classes\": {\"allocs\": %zu, \"frees\": %zu, \"bytes\": %zu},\n"
	       " \"ledger_realloc_chain\": {\"allocs\": %zu, \"frees\": %zu, \"bytes\": %zu},\n"
	       " \"ledger_leak\": {\"allocs\": %d, \"frees\": 0, \"bytes\": %d, \"leaked\": %d},\n"
	       " \"ledger_calloc_overflow\": {\"allocs\": 0, \"fails\": %d},\n"
	       " \"ledger_realloc_zero\": {\"allocs\": %d, \"frees\": %d, \"bytes\": 77},\n"
	       " \"ledger_calloc\": {\"allocs\": 1, \"frees\": 1, \"bytes\": 200},\n"
	       " \"ledger_aligned\": {\"allocs\": 4, \"frees\": 4, \"bytes\": %d},\n"
	       " \"ledger_cross_alloc\": {\"allocs\": %d, \"frees\": %d, \"bytes\": %d},\n"
	       " \"process\": {\"exit_frees\": %d, \"allocator\": \"%s\"}}\n",
	       NR_CLASSES * PER_CLASS, NR_CLASSES * PER_CLASS, class_bytes,
	       NR_CHAIN, NR_CHAIN, chain_bytes,
	       LEAKS, LEAKS * LEAK_BYTES, LEAKS * LEAK_BYTES, overflow_failed,
	       1 + zero_block, 1 + zero_block,
	       100 + 256 + 50 + 300, CROSS, CROSS, CROSS * CROSS_BYTES,
	       exit_frees, allocator);
	return 0;
}
