/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope: a live tracer and profiler of kernel memory allocations.
 * Subcommands in the style of perf and bpftool; each has its own argp table.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include "cli.h"
#include "log.h"
#include "plan.h"
#include "tracefs.h"

const char *argp_program_version = "kmemscope 0.1";
const char *argp_program_bug_address = "the kmemscope issue tracker";

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	exiting = 1;
}

/* ---- shared option parsing ---- */

int cli_parse_uint(const char *s, const char *what, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "kmemscope: invalid %s '%s' (a whole number up to %lu)\n", what, s,
			max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cli_parse_seconds(const char *s, const char *what, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400 * 365) {
		fprintf(stderr, "kmemscope: invalid %s '%s' (seconds, greater than 0)\n", what, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static const char *fam_names[KMS_FAM_MAX] = {
	"kmalloc", "kmem_cache", "page", "vmalloc", "dma", "percpu",
};

int cli_parse_families(const char *list, unsigned int *out)
{
	char *dup = strdup(list), *tok, *save = NULL;
	unsigned int mask = 0;

	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int f;

		for (f = 0; f < KMS_FAM_MAX; f++)
			if (!strcmp(tok, fam_names[f]) ||
			    (!strcmp(tok, "slab") && f <= KMS_FAM_CACHE) ||
			    (!strcmp(tok, "cache") && f == KMS_FAM_CACHE))
				mask |= 1u << f;
		if (!strcmp(tok, "all"))
			mask = (1u << KMS_FAM_MAX) - 1;
		else if (!strcmp(tok, "slab") || !strcmp(tok, "cache"))
			continue;
		else {
			for (f = 0; f < KMS_FAM_MAX; f++)
				if (!strcmp(tok, fam_names[f]))
					break;
			if (f == KMS_FAM_MAX) {
				fprintf(stderr, "kmemscope: unknown family '%s' (one of: kmalloc, "
					"kmem_cache, page, vmalloc, dma, percpu, slab, all)\n", tok);
				free(dup);
				return -EINVAL;
			}
		}
	}
	free(dup);
	if (!mask) {
		fprintf(stderr, "kmemscope: --family needs at least one family\n");
		return -EINVAL;
	}
	*out = mask;
	return 0;
}

const char *cli_kernel_release(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u))
		return "unknown";
	return u.release;
}

/*
 * Everything live tracing needs, checked up front so that the user gets one
 * line naming what is missing and how to fix it (exit status 2).
 */
int cli_preflight(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	FILE *f;
	char line[256];
	unsigned long long capeff = 0;

	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &capeff) == 1)
			break;
	if (f)
		fclose(f);
	/* CAP_SYS_ADMIN (21), or CAP_BPF (39) with CAP_PERFMON (38) */
	if (!(capeff & (1ULL << 21)) && !((capeff & (1ULL << 39)) && (capeff & (1ULL << 38)))) {
		fprintf(stderr, "kmemscope: needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON) "
			"to load BPF programs: run it as root\n");
		return 2;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "kmemscope: no kernel BTF at /sys/kernel/btf/vmlinux: needs a kernel "
			"built with CONFIG_DEBUG_INFO_BTF=y\n");
		return 2;
	}
	if (!tracefs_root()) {
		fprintf(stderr, "kmemscope: tracefs is not mounted and could not be mounted: "
			"mount -t tracefs nodev /sys/kernel/tracing\n");
		return 2;
	}
	/* not needed with memcg-based BPF accounting (5.11+); may fail without CAP_SYS_RESOURCE */
	setrlimit(RLIMIT_MEMLOCK, &rl);
	return 0;
}

FILE *cli_open_output(const char *path)
{
	FILE *f;

	if (!path || !strcmp(path, "-"))
		return stdout;
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "kmemscope: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

void cli_close_output(FILE *f)
{
	if (f && f != stdout)
		fclose(f);
	else
		fflush(stdout);
}

__u64 cli_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

bool cli_exiting(void)
{
	return exiting;
}

/*
 * `-- CMD`: fork now, let the child wait until tracing is attached, then exec.
 * The child blocks on a pipe so that its pid can be put in the filter first.
 */
int cli_cmd_start(struct cli_cmd *cmd, char **argv)
{
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	cmd->pid = fork();
	if (cmd->pid < 0)
		return -errno;
	if (cmd->pid == 0) {
		char c;

		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "kmemscope: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[0]);
	cmd->go_fd = pfd[1];
	return 0;
}

void cli_cmd_go(struct cli_cmd *cmd)
{
	if (cmd->go_fd > 0) {
		if (write(cmd->go_fd, "g", 1) != 1)
			kms_warn("could not start the command\n");
		close(cmd->go_fd);
		cmd->go_fd = -1;
	}
}

/* true once the command has exited; its status is kept */
bool cli_cmd_done(struct cli_cmd *cmd)
{
	int status;

	if (cmd->pid <= 0 || cmd->done)
		return true;
	if (waitpid(cmd->pid, &status, WNOHANG) == cmd->pid) {
		cmd->done = true;
		cmd->status = status;
	}
	return cmd->done;
}

void cli_cmd_abort(struct cli_cmd *cmd)
{
	if (cmd->pid > 0 && !cmd->done) {
		kill(cmd->pid, SIGKILL);
		waitpid(cmd->pid, NULL, 0);
		cmd->done = true;
	}
}

/* ---- subcommand table ---- */

static int cmd_probe(int argc, char **argv);

static const struct cli_subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} subcmds[] = {
	{ "stat", cmd_stat, "trace for a while, then report per family, site, GFP, order, size, "
			    "cache, process and node" },
	/* top: see top.c */
	{ "probe", cmd_probe, "show how each allocator event is attached on this kernel" },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: kmemscope COMMAND [OPTIONS] [-- CMD [ARGS]]\n\n"
		"Trace and profile Linux kernel memory allocations (kmalloc, kmem_cache, page,\n"
		"vmalloc, dma, percpu) with BPF.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		fprintf(out, "  %-8s %s\n", subcmds[i].name, subcmds[i].help);
	fprintf(out, "\nRun 'kmemscope COMMAND --help' for a command's options.\n"
		"Examples:\n"
		"  kmemscope stat -d 10                 all allocations for 10 seconds\n"
		"  kmemscope stat --json -- make -j2    allocations made on behalf of a build\n"
		"  kmemscope top --sort bytes           live view, sorted by bytes\n"
		"  kmemscope probe                      attach plan for this kernel\n");
}

/* ---- probe ---- */

static struct {
	bool json;
	const char *output;
} probe_env;

static const struct argp_option probe_options[] = {
	{ "json", 'j', NULL, 0, "JSON output (docs/json-schema.md)" },
	{ "output", 'o', "FILE", 0, "write the report to FILE" },
	{ "verbose", 'v', NULL, 0, "more messages (twice: libbpf debug)" },
	{},
};

static error_t probe_parse(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case 'j':
		probe_env.json = true;
		break;
	case 'o':
		probe_env.output = arg;
		break;
	case 'v':
		log_set_level(log_get_level() + 1);
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int cmd_probe(int argc, char **argv)
{
	static const struct argp argp = {
		probe_options, probe_parse, NULL,
		"Show, for every allocator event, the attach method kmemscope uses on the "
		"running kernel and why each better candidate was rejected.\v"
		"Candidates are tried in order: tracepoint (tp_btf, then raw_tp), fentry/fexit, "
		"kprobe. Each is loaded and attached for real, so what probe prints is what "
		"stat, top and the other commands will use.",
	};
	struct plan *plan = NULL;
	FILE *out;
	int err;

	err = argp_parse(&argp, argc, argv, ARGP_IN_ORDER, NULL, NULL);
	if (err)
		return 2;
	err = cli_preflight();
	if (err)
		return err;
	err = plan__probe(&plan, 0);
	if (err) {
		kms_error("Failed to probe attach points: %s\n", strerror(-err));
		return 1;
	}
	out = cli_open_output(probe_env.output);
	if (!out) {
		plan__free(plan);
		return 1;
	}
	if (probe_env.json)
		err = plan__print_json(plan, cli_kernel_release(), out);
	else
		err = plan__print_text(plan, out);
	cli_close_output(out);
	plan__free(plan);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	argp_err_exit_status = 2;
	libbpf_set_print(kms_libbpf_print);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("%s\n", argp_program_version);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		/* unique prefixes work, as in bpftool */
		size_t n = strlen(argv[1]);
		int hits = 0, hit = -1;

		for (size_t j = 0; j < sizeof(subcmds) / sizeof(subcmds[0]); j++)
			if (!strncmp(subcmds[j].name, argv[1], n)) {
				hits++;
				hit = j;
				if (strlen(subcmds[j].name) == n) {
					hits = 1;
					break;
				}
			}
		if (hits == 1)
			return subcmds[hit].fn(argc - 1, argv + 1);
		break;
	}
	fprintf(stderr, "kmemscope: unknown command '%s' (try 'kmemscope --help')\n", argv[1]);
	return 2;
}
