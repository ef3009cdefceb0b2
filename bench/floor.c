// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor: attach count-only tp_btf programs to kmemscope's tracepoints, run a
 * command, print how many events fired.
 *
 *   floor [-c COMM] [-u [-e]] [-o FILE] [-v] -- CMD [ARGS]
 *
 * "target" events are those of CMD's process (its tgid; children not
 * included), or with -c those of every task whose comm is COMM, which lets
 * floor count a workload that another tracer starts. With -u, the programs
 * are a uprobe and a uretprobe on the C library functions kmemscope --user
 * probes (src/user_proc.c), for CMD's process only, instead of the tracepoints;
 * -e leaves the return probes out (what a mode that reads only the entries
 * would trap).
 * The line printed ends with the programs' run count and run time from
 * bpf_stats (0 when kernel.bpf_stats_enabled is off).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "floor.h"
#include "floor.skel.h"
#include "user_proc.h"

static const char *const event_names[FLOOR_NR] = {
	[FLOOR_KMALLOC] = "kmalloc",
	[FLOOR_KFREE] = "kfree",
	[FLOOR_CACHE_ALLOC] = "kmem_cache_alloc",
	[FLOOR_CACHE_FREE] = "kmem_cache_free",
	[FLOOR_PAGE_ALLOC] = "mm_page_alloc",
	[FLOOR_PAGE_FREE] = "mm_page_free",
	[FLOOR_PAGE_FREE_BATCHED] = "mm_page_free_batched",
	[FLOOR_VMALLOC] = "vmalloc",
	[FLOOR_VFREE] = "vfree",
	[FLOOR_DMA_ALLOC] = "dma_alloc",
	[FLOOR_DMA_FREE] = "dma_free",
	[FLOOR_PERCPU_ALLOC] = "percpu_alloc",
	[FLOOR_PERCPU_FREE] = "percpu_free",
	[FLOOR_UPROBE] = "uprobe",
	[FLOOR_URETPROBE] = "uretprobe",
};

#define MAX_ULINKS 32

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static __attribute__((noreturn)) void usage(FILE *f, int code)
{
	fprintf(f,
		"Usage: floor [-c COMM] [-u [-e]] [-o FILE] [-v] -- CMD [ARGS]\n"
		"Count kmemscope's allocator tracepoints with count-only BPF programs while CMD runs.\n"
		"  -c, --comm COMM    count tasks named COMM as the target (default: CMD's tgid)\n"
		"  -u, --user         uprobes on CMD's C library allocation functions instead\n"
		"  -e, --entry-only   with -u: no return probes\n"
		"  -o, --output FILE  write the counts to FILE (default: stderr)\n"
		"  -v, --verbose      one line per event kind too\n"
		"  -h, --help         this text\n"
		"Output: floor events=N target_events=N misses=N programs=N skipped=LIST runs=N "
		"run_ns=N\n");
	exit(code);
}

/* a tp_btf program can load only if the kernel has the btf_trace_<tp> typedef */
static bool tracepoint_exists(const struct btf *vmlinux, const char *tp)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) >= 0;
}

/*
 * -u: the uprobe programs on the C library kmemscope --user probes, for pid
 * only. libbpf finds "libc.so.6" where the dynamic loader would.
 */
static int attach_user(struct floor_bpf *skel, pid_t pid, bool entry_only, struct bpf_link **links,
		       int *n)
{
	const char *func;
	bool ret;

	for (size_t i = 0; (func = user_procs__func(i, &ret)); i++)
		for (int r = 0; r < 1 + (ret && !entry_only); r++) {
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = r);

			if (*n == MAX_ULINKS)
				return -E2BIG;
			links[*n] = bpf_program__attach_uprobe_opts(
				r ? skel->progs.floor_uretprobe : skel->progs.floor_uprobe, pid,
				"libc.so.6", 0, &opts);
			if (!links[*n])
				return -errno;
			(*n)++;
		}
	return 0;
}

static int run_child(char **argv, int gate)
{
	char c;

	/* wait until the programs are attached; EOF means the parent gave up */
	if (read(gate, &c, 1) != 1)
		_exit(127);
	close(gate);
	execvp(argv[0], argv);
	fprintf(stderr, "floor: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "comm", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "user", no_argument, NULL, 'u' },
		{ "entry-only", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *comm = NULL, *out_path = NULL;
	struct floor_counts total = {}, *percpu = NULL;
	char skipped[512] = "";
	struct floor_bpf *skel = NULL;
	struct bpf_program *prog;
	struct bpf_link *ulinks[MAX_ULINKS];
	struct btf *vmlinux = NULL;
	int gate[2] = { -1, -1 };
	int c, ncpu, err, status, ret = 1, nprogs = 0, verbose = 0, user = 0, nulinks = 0, i, e;
	bool entry_only = false;
	__u64 sum_all = 0, sum_target = 0, misses = 0, runs = 0, run_ns = 0;
	pid_t child = -1;
	FILE *out = stderr;
	__u32 zero = 0;

	while ((c = getopt_long(argc, argv, "+c:o:uevh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (strlen(optarg) >= 16) {
				fprintf(stderr, "floor: comm '%s' is longer than 15 characters\n",
					optarg);
				return 2;
			}
			comm = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'u':
			user = 1;
			break;
		case 'e':
			entry_only = true;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "floor: no command given (floor -- CMD [ARGS])\n");
		return 2;
	}
	if (entry_only && !user) {
		fprintf(stderr, "floor: -e needs -u\n");
		return 2;
	}
	libbpf_set_print(print_libbpf);

	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		fprintf(stderr, "floor: cannot load kernel BTF: %s\n", strerror(errno));
		return 1;
	}
	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "floor: failed to open BPF object: %s\n", strerror(errno));
		goto cleanup;
	}
	if (comm) {
		skel->rodata->filter_comm = true;
		strncpy((char *)skel->rodata->target_comm, comm,
			sizeof(skel->rodata->target_comm) - 1);
	}
	bpf_object__for_each_program(prog, skel->obj) {
		/* section is "tp_btf/<tracepoint>", or "uprobe"/"uretprobe" (attached by hand) */
		const char *tp = strchr(bpf_program__section_name(prog), '/');

		if (!tp || user) {
			bpf_program__set_autoload(prog, !tp && user);
			nprogs += !tp && user;
			continue;
		}
		tp++;
		if (tracepoint_exists(vmlinux, tp)) {
			nprogs++;
			continue;
		}
		bpf_program__set_autoload(prog, false);
		if (strlen(skipped) + strlen(tp) + 2 < sizeof(skipped)) {
			if (skipped[0])
				strcat(skipped, ",");
			strcat(skipped, tp);
		}
	}
	err = floor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "floor: failed to load BPF programs: %s\n", strerror(-err));
		goto cleanup;
	}

	if (pipe(gate)) {
		fprintf(stderr, "floor: pipe: %s\n", strerror(errno));
		goto cleanup;
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "floor: fork: %s\n", strerror(errno));
		goto cleanup;
	}
	if (child == 0) {
		close(gate[1]);
		run_child(argv + optind, gate[0]);
	}
	close(gate[0]);
	gate[0] = -1;
	/* Ctrl-C reaches the command; floor still reports what it saw */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);

	skel->bss->target_tgid = child;
	err = user ? attach_user(skel, child, entry_only, ulinks, &nulinks) : floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "floor: failed to attach BPF programs: %s\n", strerror(-err));
		goto cleanup;
	}
	if (write(gate[1], "g", 1) != 1) {
		fprintf(stderr, "floor: cannot start the command: %s\n", strerror(errno));
		goto cleanup;
	}
	close(gate[1]);
	gate[1] = -1;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "floor: waitpid: %s\n", strerror(errno));
			goto cleanup;
		}
	}
	child = -1;
	floor_bpf__detach(skel);
	while (nulinks > 0)
		bpf_link__destroy(ulinks[--nulinks]);

	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		fprintf(stderr, "floor: cannot count CPUs: %s\n", strerror(-ncpu));
		goto cleanup;
	}
	percpu = calloc(ncpu, sizeof(*percpu));
	if (!percpu) {
		fprintf(stderr, "floor: out of memory\n");
		goto cleanup;
	}
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counts), &zero, percpu)) {
		fprintf(stderr, "floor: failed to read counters: %s\n", strerror(errno));
		goto cleanup;
	}
	for (i = 0; i < ncpu; i++) {
		for (e = 0; e < FLOOR_NR; e++) {
			total.all[e] += percpu[i].all[e];
			total.target[e] += percpu[i].target[e];
		}
	}
	for (e = 0; e < FLOOR_NR; e++) {
		sum_all += total.all[e];
		sum_target += total.target[e];
	}
	bpf_object__for_each_program(prog, skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		misses += info.recursion_misses;
		runs += info.run_cnt;
		run_ns += info.run_time_ns;
		if (verbose && info.recursion_misses)
			fprintf(stderr, "floor: %s missed %llu runs (recursion)\n",
				bpf_program__name(prog),
				(unsigned long long)info.recursion_misses);
	}

	if (out_path) {
		out = fopen(out_path, "w");
		if (!out) {
			fprintf(stderr, "floor: cannot write %s: %s\n", out_path, strerror(errno));
			out = stderr;
			goto cleanup;
		}
	}
	fprintf(out, "floor events=%llu target_events=%llu misses=%llu programs=%d skipped=%s "
		"runs=%llu run_ns=%llu\n",
		(unsigned long long)sum_all, (unsigned long long)sum_target,
		(unsigned long long)misses, nprogs, skipped[0] ? skipped : "-",
		(unsigned long long)runs, (unsigned long long)run_ns);
	if (verbose)
		for (e = 0; e < FLOOR_NR; e++)
			fprintf(out, "floor.event %s events=%llu target_events=%llu\n",
				event_names[e], (unsigned long long)total.all[e],
				(unsigned long long)total.target[e]);
	if (WIFEXITED(status))
		ret = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		ret = 128 + WTERMSIG(status);

cleanup:
	if (out != stderr)
		fclose(out);
	if (gate[0] >= 0)
		close(gate[0]);
	if (gate[1] >= 0)
		close(gate[1]);	/* the command sees EOF and exits without running */
	if (child > 0)
		waitpid(child, NULL, 0);
	while (nulinks > 0)
		bpf_link__destroy(ulinks[--nulinks]);
	free(percpu);
	floor_bpf__destroy(skel);
	btf__free(vmlinux);
	return ret;
}
