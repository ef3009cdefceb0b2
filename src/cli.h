/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by the subcommands. */
#ifndef KMS_CLI_H
#define KMS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>
#include <linux/types.h>

struct cli_cmd {
	pid_t pid;
	const char *name;
	int go_fd;		/* the child execs when this is written */
	int err_fd;		/* exec's errno, or end of file when it worked */
	bool done;
	int status;		/* from waitpid(), once done */
};

struct argp;

void cli_on_signal(int sig);
/* report a usage error from an argp parser and stop parsing */
#define cli_argp_fail(state, ...)			\
	do {						\
		argp_error(state, __VA_ARGS__);		\
		return EINVAL;				\
	} while (0)

/* argp_parse() with one-line errors; 0, or the exit status to return */
int cli_argp_parse(const struct argp *argp, int argc, char **argv, void *input);
/* the command line cli_argp_parse() parsed last (argv[0]: "kmemscope CMD") */
char **cli_argv(int *argc);
int cli_parse_uint(const char *s, const char *what, unsigned long max, unsigned long *out);
int cli_parse_seconds(const char *s, const char *what, double *out);
int cli_parse_interval(const char *s, double *out);
int cli_parse_settle(const char *s, double *out);
int cli_parse_families(const char *list, unsigned int *out);
const char *cli_kernel_release(void);
/* its version string (uname -v), "" when unknown */
const char *cli_kernel_version(void);
/* a kernel with that version string is PREEMPT_RT */
bool cli_kernel_is_rt(const char *version);
int cli_preflight(void);
int cli_check_output(const char *path);
FILE *cli_open_output(const char *path);
void cli_close_output(FILE *f);
__u64 cli_now_ns(void);
/* clock_gettime() in ns (the CPU clocks too), 0 on error */
__u64 cli_clock_ns(clockid_t clock);
bool cli_exiting(void);

int cli_cmd_start(struct cli_cmd *cmd, char **argv);
int cli_cmd_go(struct cli_cmd *cmd);
bool cli_cmd_done(struct cli_cmd *cmd);
void cli_cmd_abort(struct cli_cmd *cmd);
int cli_cmd_status(const struct cli_cmd *cmd, int err);

int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_misuse(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_baseline(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_script(int argc, char **argv);
/* weak: the static build leaves serve out (Makefile) */
int cmd_serve(int argc, char **argv) __attribute__((weak));

#endif
