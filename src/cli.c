/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by the subcommands: option parsing, preflight, -- CMD. */
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
#include "agg.h"
#include "cli.h"
#include "kmemscope.h"
#include "log.h"
#include "tracefs.h"

static volatile sig_atomic_t exiting;

void cli_on_signal(int sig)
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

/* a refresh interval (top, serve): below 0.1 s the refresh would cost more than the tracing */
int cli_parse_interval(const char *s, double *out)
{
	if (cli_parse_seconds(s, "interval", out))
		return -EINVAL;
	if (*out < 0.1) {
		fprintf(stderr, "kmemscope: --interval must be at least 0.1 seconds\n");
		return -EINVAL;
	}
	return 0;
}

/* a settle period: 0 (none) is allowed, unlike a duration */
int cli_parse_settle(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 3600) {
		fprintf(stderr, "kmemscope: invalid settle time '%s' (seconds, 0 to 3600)\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cli_parse_families(const char *list, unsigned int *out)
{
	char *dup = strdup(list), *tok, *save = NULL;
	unsigned int mask = 0;

	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int f;

		for (f = 0; f < KMS_FAM_MAX; f++)
			if (!strcmp(tok, kms_family_name(f)) ||
			    (!strcmp(tok, "slab") && f <= KMS_FAM_CACHE) ||
			    (!strcmp(tok, "cache") && f == KMS_FAM_CACHE))
				mask |= 1u << f;
		if (!strcmp(tok, "all"))
			mask = (1u << KMS_FAM_MAX) - 1;
		else if (!strcmp(tok, "slab") || !strcmp(tok, "cache"))
			continue;
		else {
			for (f = 0; f < KMS_FAM_MAX; f++)
				if (!strcmp(tok, kms_family_name(f)))
					break;
			if (f == KMS_FAM_MAX) {
				fprintf(stderr, "kmemscope: unknown family '%s' (one of: kmalloc, "
					"kmem_cache, page, vmalloc, dma, percpu, user, user_map, slab, all)\n", tok);
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

/* the running kernel's uname, read once; NULL when uname() fails */
static const struct utsname *kernel_uts(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u))
		return NULL;
	return &u;
}

const char *cli_kernel_release(void)
{
	return kernel_uts() ? kernel_uts()->release : "unknown";
}

const char *cli_kernel_version(void)
{
	return kernel_uts() ? kernel_uts()->version : "";
}

/*
 * The kernel's build writes "PREEMPT_RT" into its version string (init/Makefile,
 * UTS_VERSION: "#1 SMP PREEMPT_RT Debian ...") exactly when CONFIG_PREEMPT_RT is
 * set, and a UTS namespace cannot change it: one word, matched whole.
 */
bool cli_kernel_is_rt(const char *version)
{
	size_t n;

	while (version && *version) {
		version += strspn(version, " \t");
		n = strcspn(version, " \t");
		if (n == strlen("PREEMPT_RT") && !strncmp(version, "PREEMPT_RT", n))
			return true;
		version += n;
	}
	return false;
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

/* fail before tracing, not after, when the report could not be written */
int cli_check_output(const char *path)
{
	int fd;

	if (!path || !strcmp(path, "-"))
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "kmemscope: cannot write %s: %s\n", path, strerror(errno));
		return 2;
	}
	close(fd);
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
	return cli_clock_ns(CLOCK_MONOTONIC);
}

__u64 cli_clock_ns(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts))
		return 0;
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

bool cli_exiting(void)
{
	return exiting;
}

/*
 * `-- CMD`: fork now, let the child wait until tracing is attached, then exec.
 * The child blocks on a pipe so that its pid can be put in the filter first.
 * A second pipe, closed by a successful exec, carries exec's errno back, so
 * that a command that cannot run is reported by kmemscope, not traced.
 */
int cli_cmd_start(struct cli_cmd *cmd, char **argv)
{
	int pfd[2], efd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	if (pipe2(efd, O_CLOEXEC)) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	cmd->name = argv[0];
	cmd->pid = fork();
	if (cmd->pid < 0) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		close(efd[0]);
		close(efd[1]);
		return err;
	}
	if (cmd->pid == 0) {
		char c;
		int e;

		close(pfd[1]);
		close(efd[0]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(127);
		execvp(argv[0], argv);
		e = errno;
		(void)!write(efd[1], &e, sizeof(e));
		_exit(127);
	}
	close(pfd[0]);
	close(efd[1]);
	cmd->go_fd = pfd[1];
	cmd->err_fd = efd[0];
	return 0;
}

/* let the command exec; 127 (reported) when it cannot run, else 0 */
int cli_cmd_go(struct cli_cmd *cmd)
{
	ssize_t n;
	int e = 0;

	/* 0 is what a zeroed session holds: never one of these pipes */
	if (cmd->go_fd <= 0)
		return 0;
	if (write(cmd->go_fd, "g", 1) != 1)
		kms_warn("could not start the command\n");
	close(cmd->go_fd);
	cmd->go_fd = -1;
	/* end of file: the exec worked and closed the pipe */
	do
		n = read(cmd->err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(cmd->err_fd);
	cmd->err_fd = -1;
	if (n != sizeof(e))
		return 0;
	fprintf(stderr, "kmemscope: cannot run %s: %s\n", cmd->name, strerror(e));
	if (waitpid(cmd->pid, &cmd->status, 0) == cmd->pid)
		cmd->done = true;
	return 127;
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

/* tracing ended first: the command is killed, and that is its fate */
void cli_cmd_abort(struct cli_cmd *cmd)
{
	if (cmd->go_fd > 0) {
		close(cmd->go_fd);
		cmd->go_fd = -1;
	}
	if (cmd->err_fd > 0) {
		close(cmd->err_fd);
		cmd->err_fd = -1;
	}
	if (cmd->pid > 0 && !cmd->done) {
		kill(cmd->pid, SIGKILL);
		if (waitpid(cmd->pid, &cmd->status, 0) == cmd->pid)
			cmd->done = true;
	}
}

/*
 * A tracing command's exit status, as time(1) and perf stat give it: its own
 * failure (1 runtime, 2 usage or environment) first, else CMD's: its exit
 * status, or 128 + N when signal N killed it.
 */
int cli_cmd_status(const struct cli_cmd *cmd, int err)
{
	if (err || cmd->pid <= 0 || !cmd->done)
		return err;
	if (WIFEXITED(cmd->status))
		return WEXITSTATUS(cmd->status);
	if (WIFSIGNALED(cmd->status))
		return 128 + WTERMSIG(cmd->status);
	return 1;
}

/* ---- argp with one-line errors ---- */

static error_t wrap_parse(int key, char *arg, struct argp_state *state)
{
	if (key == ARGP_KEY_INIT)
		state->child_inputs[0] = state->input;
	return ARGP_ERR_UNKNOWN;
}

/* --help, --usage and -V/--version: argp answers them itself and exits */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-?") ||
		    !strcmp(argv[i], "-V") || !strcmp(argv[i], "--version") ||
		    !strcmp(argv[i], "--usage") || !strncmp(argv[i], "--usage=", 8))
			return true;
	return false;
}

/*
 * argp_parse() for a subcommand, but a bad argument ends in exactly one line
 * on stderr and exit status 2, as scripts expect. argp and getopt write their
 * complaint plus a "Try --help" line straight to stderr, so stderr is
 * captured for the parse and only the first line goes out.
 */
static int parsed_argc;
static char **parsed_argv;

char **cli_argv(int *argc)
{
	*argc = parsed_argc;
	return parsed_argv;
}

int cli_argp_parse(const struct argp *argp, int argc, char **argv, void *input)
{
	struct argp_child children[] = { { argp, 0, NULL, 0 }, {} };
	struct argp wrap = { NULL, wrap_parse, argp->args_doc, argp->doc, children };
	char line[512] = "";
	FILE *cap;
	int saved, err;

	parsed_argc = argc;
	parsed_argv = argv;
	/* in order: getopt must not move words from before -- to after it */
	if (wants_help(argc, argv))
		return argp_parse(argp, argc, argv, ARGP_IN_ORDER, NULL, input) ? 2 : 0;
	cap = tmpfile();
	saved = dup(STDERR_FILENO);
	if (!cap || saved < 0) {
		if (cap)
			fclose(cap);
		return argp_parse(argp, argc, argv, ARGP_IN_ORDER, NULL, input) ? 2 : 0;
	}
	fflush(stderr);
	dup2(fileno(cap), STDERR_FILENO);
	err = argp_parse(&wrap, argc, argv, ARGP_NO_EXIT | ARGP_NO_HELP | ARGP_IN_ORDER, NULL,
			 input);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (err) {
		char *nl;

		rewind(cap);
		if (!fgets(line, sizeof(line), cap))
			snprintf(line, sizeof(line), "%s: invalid arguments", argv[0]);
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, argv[0], strlen(argv[0])))
			fprintf(stderr, "%s (see '%s --help')\n", line, argv[0]);
		else
			fprintf(stderr, "%s\n", line);
	}
	fclose(cap);
	return err ? 2 : 0;
}
