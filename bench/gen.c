// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * gen: a kernel allocation generator for the overhead benchmark.
 *
 *   gen [-n ITER] [-t SECONDS] [--mode pipe|eventfd|open|mmap]
 *
 * Runs one cheap syscall pattern in a tight loop and prints one line,
 * "iters=N ns=N ns_per_iter=N.N mode=M", where ns covers the loop only
 * (not exec or start-up), so tracer attach costs stay out of the figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum gen_mode {
	MODE_PIPE,	/* pipe()+close() x2: ~18 kmem events per iteration */
	MODE_EVENTFD,	/* eventfd()+close(): file + eventfd ctx */
	MODE_OPEN,	/* open("/dev/null")+close(): file struct only */
	MODE_MMAP,	/* mmap one anonymous page, touch, munmap: page events */
};

static const char *const mode_names[] = {
	[MODE_PIPE] = "pipe",
	[MODE_EVENTFD] = "eventfd",
	[MODE_OPEN] = "open",
	[MODE_MMAP] = "mmap",
};

static __attribute__((noreturn)) void usage(FILE *f, int code)
{
	fprintf(f,
		"Usage: gen [-n ITER] [-t SECONDS] [--mode pipe|eventfd|open|mmap]\n"
		"Run an allocation-heavy syscall loop; print iters=N ns=N.\n"
		"  -n, --iters ITER     iterations (default 100000 unless -t is given)\n"
		"  -t, --time SECONDS   run for this long instead (stops at -n if both)\n"
		"  -m, --mode MODE      pipe (default), eventfd, open, mmap\n"
		"  -h, --help           this text\n");
	exit(code);
}

static __attribute__((noreturn)) void die(const char *what)
{
	fprintf(stderr, "gen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long long parse_num(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "gen: invalid %s: '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void one_iter(enum gen_mode mode, long page)
{
	int fds[2], fd;
	char *p;

	switch (mode) {
	case MODE_PIPE:
		if (pipe(fds))
			die("pipe");
		close(fds[0]);
		close(fds[1]);
		break;
	case MODE_EVENTFD:
		fd = eventfd(0, 0);
		if (fd < 0)
			die("eventfd");
		close(fd);
		break;
	case MODE_OPEN:
		fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			die("open /dev/null");
		close(fd);
		break;
	case MODE_MMAP:
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		*(volatile char *)p = 1;
		if (munmap(p, page))
			die("munmap");
		break;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iters", required_argument, NULL, 'n' },
		{ "time", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	enum gen_mode mode = MODE_PIPE;
	long long iters = -1, secs = -1, i;
	unsigned long long start, end, deadline = 0;
	long page = sysconf(_SC_PAGESIZE);
	unsigned int m;
	int c;

	while ((c = getopt_long(argc, argv, "n:t:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			iters = parse_num(optarg, "iteration count");
			break;
		case 't':
			secs = parse_num(optarg, "duration");
			break;
		case 'm':
			for (m = 0; m < sizeof(mode_names) / sizeof(mode_names[0]); m++)
				if (!strcmp(optarg, mode_names[m]))
					break;
			if (m == sizeof(mode_names) / sizeof(mode_names[0])) {
				fprintf(stderr, "gen: unknown mode '%s'\n", optarg);
				exit(2);
			}
			mode = m;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gen: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	if (iters < 0 && secs < 0)
		iters = 100000;
	if (iters < 0)
		iters = (long long)(~0ULL >> 1);

	start = now_ns();
	if (secs >= 0)
		deadline = start + (unsigned long long)secs * 1000000000ULL;
	for (i = 0; i < iters; i++) {
		one_iter(mode, page);
		/* reading the clock every 64 iterations keeps it off the profile */
		if (deadline && !(i & 63) && now_ns() >= deadline) {
			i++;
			break;
		}
	}
	end = now_ns();

	printf("iters=%lld ns=%llu ns_per_iter=%.1f mode=%s\n", i, end - start,
	       i ? (double)(end - start) / i : 0.0, mode_names[mode]);
	return 0;
}
