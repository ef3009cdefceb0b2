// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * trigger: a known number of kernel allocations of chosen kinds, for the live
 * tests.
 *
 *   trigger MODE N
 *
 *   pipes N    pipe()+close() N times: kmalloc, kmem_cache
 *   fork N     N forks, 8 of them alive together (fresh vmalloc'ed kernel stacks)
 *   bpfmap N   create and close N 64 KiB BPF array maps: vmalloc, kmalloc
 *   pages N    mmap an anonymous page, touch it, munmap, N times: page
 *   bigalloc N fsetxattr() with a 20000-byte value N times: one large kmalloc
 *              each (the kernel copies the value with kvmalloc() before the
 *              file system accepts or refuses it), which 6.10+ traces twice
 *   eventfd N  open N eventfds, print "held", wait for a byte on stdin or a
 *              signal (SIGINT, SIGTERM, SIGUSR1), then close them
 *   pipes-held N  the same with N pipes: a file each end, allocated at one
 *              site (alloc_empty_file) from two callers (alloc_file_pseudo,
 *              alloc_file_clone)
 *   epoll N    epoll_create1()+close() N times: a kmalloc the kernel frees
 *              after an RCU grace period without a kfree event
 *   epoll-once N  the same in one wave
 *
 * The work runs in a forked worker process, so that the worker's whole life
 * is seen both by tracers that start counting at exec (perf) and by those
 * that count a process from its creation (kmemscope): its events can be
 * compared exactly. The last line of output is
 * "trigger mode=MODE n=N worker=PID status=S".
 */
#include <errno.h>
#include <time.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/bpf.h>

static volatile sig_atomic_t got_signal;
static pid_t worker = -1;

static __attribute__((noreturn)) void usage(FILE *f, int code)
{
	fprintf(f,
		"Usage: trigger MODE N\n"
		"Make a known number of kernel allocations in a forked worker process.\n"
		"  pipes N    pipe()+close() N times (kmalloc, kmem_cache)\n"
		"  fork N     fork()+waitpid() N times (percpu, vmalloc for kernel stacks)\n"
		"  bpfmap N   create and close N 64 KiB BPF array maps (vmalloc, kmalloc)\n"
		"  pages N    mmap, touch and munmap one anonymous page N times (page)\n"
		"  bigalloc N fsetxattr() with a 20000-byte value N times (one large kmalloc each)\n"
		"  eventfd N  hold N eventfds, print \"held\", wait for a byte on stdin\n"
		"             or SIGINT/SIGTERM/SIGUSR1, then close them\n"
		"  pipes-held N  the same with N pipes\n"
		"  epoll N    epoll_create1()+close() N times in two waves 6 s apart (kmalloc freed\n"
		"             by RCU, untraced)\n"
		"  epoll-once N  the same, in one wave\n"
		"Last line: trigger mode=MODE n=N worker=PID status=S\n");
	exit(code);
}

static __attribute__((noreturn)) void die(const char *what)
{
	fprintf(stderr, "trigger: %s: %s\n", what, strerror(errno));
	_exit(1);
}

static void do_pipes(long n)
{
	int fds[2];
	long i;

	for (i = 0; i < n; i++) {
		if (pipe(fds))
			die("pipe");
		close(fds[0]);
		close(fds[1]);
	}
}

/*
 * The kernel keeps a couple of freed kernel stacks per CPU for reuse: children
 * alive at the same time make it allocate (vmalloc) fresh ones.
 */
#define FORK_TOGETHER 8

static void do_fork(long n)
{
	pid_t kids[FORK_TOGETHER];
	int status, gate[2];
	long i, together = n < FORK_TOGETHER ? n : FORK_TOGETHER;
	pid_t pid;
	char c;

	if (pipe(gate))
		die("pipe");
	for (i = 0; i < together; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			close(gate[1]);
			/* wait until the parent closes the gate */
			if (read(gate[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (i = 0; i < together; i++)
		if (waitpid(kids[i], &status, 0) < 0)
			die("waitpid");
	for (i = together; i < n; i++) {
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			_exit(0);
		if (waitpid(pid, &status, 0) < 0)
			die("waitpid");
	}
}

static void do_bpfmap(long n)
{
	union bpf_attr attr;
	long i;
	int fd;

	for (i = 0; i < n; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		/* 64 KiB: above the 32 KiB that bpf_map_area_alloc() serves from kmalloc */
		attr.value_size = 64;
		attr.max_entries = 1024;
		fd = syscall(__NR_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
		if (fd < 0)
			die("bpf(BPF_MAP_CREATE)");
		close(fd);
	}
}

static void do_pages(long n)
{
	long page = sysconf(_SC_PAGESIZE), i;
	char *p;

	for (i = 0; i < n; i++) {
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		*(volatile char *)p = 1;
		if (munmap(p, page))
			die("munmap");
	}
}

/* past KMALLOC_MAX_CACHE_SIZE (two pages): kmalloc() takes the page allocator's path */
#define BIG_VALUE 20000

static void do_bigalloc(long n)
{
	static char value[BIG_VALUE];
	char path[] = "/tmp/kmemscope-trigger.XXXXXX";
	int fd = mkstemp(path);
	long i;

	if (fd < 0)
		die("mkstemp");
	unlink(path);
	for (i = 0; i < n; i++)
		/* refused or not (most file systems take no 20000-byte value): copied first */
		if (fsetxattr(fd, "user.kmemscope", value, sizeof(value), 0) && errno != ENOSPC &&
		    errno != E2BIG && errno != ENOTSUP && errno != ERANGE)
			die("fsetxattr");
	close(fd);
}

static void epoll_wave(long n)
{
	long i;
	int fd;

	for (i = 0; i < n; i++) {
		fd = epoll_create1(0);
		if (fd < 0)
			die("epoll_create1");
		close(fd);
	}
}

/*
 * Two waves with a pause between: the kernel frees the first wave's objects
 * after an RCU grace period and its kfree_rcu batching delay (up to 5 s), with
 * no kfree event; the second wave is handed those addresses again, which is
 * the evidence a tracer has that they were freed.
 */
static void do_epoll(long n)
{
	struct timespec pause = { 6, 0 };

	epoll_wave(n / 2);
	while (nanosleep(&pause, &pause) && errno == EINTR)
		;
	epoll_wave(n - n / 2);
}

/* one wave: whether the addresses come back in the window is left to chance */
static void do_epoll_once(long n)
{
	epoll_wave(n);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* hold nfds descriptors, opened by open_fds() into fds[], until told to close them */
static void hold(long n, long nfds, void (*open_fds)(int *fds, long n))
{
	struct rlimit rl;
	int *fds;
	long i;
	char c;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nfds + 16) {
		rl.rlim_cur = nfds + 16;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit(RLIMIT_NOFILE)");
	}
	fds = calloc(nfds ? nfds : 1, sizeof(*fds));
	if (!fds)
		die("calloc");
	open_fds(fds, n);
	printf("held n=%ld pid=%d\n", n, getpid());
	fflush(stdout);
	/* a signal interrupts read(): the handler is installed without SA_RESTART */
	while (!got_signal && read(0, &c, 1) < 0 && errno == EINTR)
		;
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	free(fds);
}

static void open_eventfds(int *fds, long n)
{
	for (long i = 0; i < n; i++) {
		fds[i] = eventfd(0, 0);
		if (fds[i] < 0)
			die("eventfd");
	}
}

static void open_pipes(int *fds, long n)
{
	for (long i = 0; i < n; i++)
		if (pipe(fds + 2 * i))
			die("pipe");
}

static void do_eventfd(long n)
{
	hold(n, n, open_eventfds);
}

static void do_pipes_held(long n)
{
	hold(n, 2 * n, open_pipes);
}

static void forward_signal(int sig)
{
	if (worker > 0)
		kill(worker, sig);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(long n);
	} modes[] = {
		{ "pipes", do_pipes },
		{ "fork", do_fork },
		{ "bpfmap", do_bpfmap },
		{ "pages", do_pages },
		{ "bigalloc", do_bigalloc },
		{ "eventfd", do_eventfd },
		{ "pipes-held", do_pipes_held },
		{ "epoll", do_epoll },
		{ "epoll-once", do_epoll_once },
	};
	struct sigaction sa = {};
	int status, m, nmodes = sizeof(modes) / sizeof(modes[0]);
	char *end;
	long n;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage(stdout, 0);
	if (argc != 3)
		usage(stderr, 2);
	for (m = 0; m < nmodes; m++)
		if (!strcmp(argv[1], modes[m].name))
			break;
	if (m == nmodes) {
		fprintf(stderr, "trigger: unknown mode '%s'\n", argv[1]);
		return 2;
	}
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (errno || end == argv[2] || *end || n < 0 || n > INT_MAX) {
		fprintf(stderr, "trigger: invalid count '%s'\n", argv[2]);
		return 2;
	}

	fflush(stdout);
	worker = fork();
	if (worker < 0)
		die("fork");
	if (worker == 0) {
		sa.sa_handler = on_signal;	/* no SA_RESTART */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL);
		modes[m].fn(n);
		_exit(0);
	}
	sa.sa_handler = forward_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	while (waitpid(worker, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");

	printf("trigger mode=%s n=%ld worker=%d status=%d\n", modes[m].name, n, worker,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
