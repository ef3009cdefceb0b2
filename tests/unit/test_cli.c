/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Option parsing (the value parsers, the shared "What to trace" options) and -- CMD. */
#include <argp.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "report.h"
#include "session.h"

static void test_uint(void **state)
{
	unsigned long v = 0;

	assert_int_equal(cli_parse_uint("42", "n", 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cli_parse_uint("0", "n", 100, &v), 0);
	assert_int_equal(v, 0);
	assert_int_not_equal(cli_parse_uint("101", "n", 100, &v), 0);
	assert_int_not_equal(cli_parse_uint("-1", "n", 100, &v), 0);
	assert_int_not_equal(cli_parse_uint("12x", "n", 100, &v), 0);
	assert_int_not_equal(cli_parse_uint("", "n", 100, &v), 0);
	assert_int_not_equal(cli_parse_uint("99999999999999999999999", "n", ~0UL, &v), 0);
}

/* uname -v of Debian's kernels: PREEMPT_RT is one whole word of it */
static void test_kernel_is_rt(void **state)
{
	assert_true(cli_kernel_is_rt("#1 SMP PREEMPT_RT Debian 6.1.158-1 (2025-11-09)"));
	assert_true(cli_kernel_is_rt("#1 SMP\tPREEMPT_RT"));
	assert_false(cli_kernel_is_rt("#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)"));
	assert_false(cli_kernel_is_rt("#1 SMP PREEMPT_RTX"));
	assert_false(cli_kernel_is_rt("#1 SMP NOT_PREEMPT_RT"));
	assert_false(cli_kernel_is_rt(""));
	assert_false(cli_kernel_is_rt(NULL));
}

static void test_seconds(void **state)
{
	double d = 0;

	assert_int_equal(cli_parse_seconds("1.5", "d", &d), 0);
	assert_true(d > 1.49 && d < 1.51);
	assert_int_equal(cli_parse_seconds("10", "d", &d), 0);
	assert_true(d > 9.99 && d < 10.01);
	assert_int_not_equal(cli_parse_seconds("0", "d", &d), 0);
	assert_int_not_equal(cli_parse_seconds("-3", "d", &d), 0);
	assert_int_not_equal(cli_parse_seconds("abc", "d", &d), 0);
	assert_int_not_equal(cli_parse_seconds("nan", "d", &d), 0);
	assert_int_not_equal(cli_parse_seconds("1e300", "d", &d), 0);
}

static void test_families(void **state)
{
	unsigned int m = 0;

	assert_int_equal(cli_parse_families("kmalloc", &m), 0);
	assert_int_equal(m, 1u << KMS_FAM_KMALLOC);
	assert_int_equal(cli_parse_families("page,percpu", &m), 0);
	assert_int_equal(m, (1u << KMS_FAM_PAGE) | (1u << KMS_FAM_PERCPU));
	assert_int_equal(cli_parse_families("slab", &m), 0);
	assert_int_equal(m, (1u << KMS_FAM_KMALLOC) | (1u << KMS_FAM_CACHE));
	assert_int_equal(cli_parse_families("all", &m), 0);
	assert_int_equal(m, (1u << KMS_FAM_MAX) - 1);
	assert_int_equal(cli_parse_families("dma,vmalloc,kmem_cache", &m), 0);
	assert_int_equal(m, (1u << KMS_FAM_DMA) | (1u << KMS_FAM_VMALLOC) | (1u << KMS_FAM_CACHE));
	assert_int_not_equal(cli_parse_families("kmalloc,bogus", &m), 0);
	assert_int_not_equal(cli_parse_families(",", &m), 0);
}

static void test_sort(void **state)
{
	struct report_opts o = {};
	const char *bad = NULL;

	assert_int_equal(report__parse_sort("bytes,allocs", &o, &bad), 0);
	assert_int_equal(o.nr_sort, 2);
	assert_int_equal(report__parse_sort("waste", &o, &bad), 0);
	assert_int_equal(o.nr_sort, 1);
	assert_int_not_equal(report__parse_sort("bytes,nosuch", &o, &bad), 0);
	assert_non_null(bad);
	assert_string_equal(bad, "nosuch");
}

/* a command's argp with the shared options as its child, as stat/top/leaks have */
struct cmd_env {
	struct session_args sa;
	double duration;
};

static error_t cmd_parse(int key, char *arg, struct argp_state *state)
{
	struct cmd_env *env = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		break;
	case 'd':
		if (cli_parse_seconds(arg, "duration", &env->duration))
			return EINVAL;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp_option cmd_options[] = {
	{ "duration", 'd', "SEC", 0, "seconds" },
	{},
};

static const struct argp cmd_argp = {
	cmd_options, cmd_parse, "[-- CMD]", "test", session_report_children,
};
static const struct argp tracing_argp = {
	cmd_options, cmd_parse, "[-- CMD]", "test", session_tracing_children,
};
static const struct argp file_argp = {
	cmd_options, cmd_parse, NULL, "test", session_file_children,
};

static int parse_with(const struct argp *argp, struct cmd_env *env, int argc, char **argv)
{
	memset(env, 0, sizeof(*env));
	return cli_argp_parse(argp, argc, argv, env);
}

static int parse(struct cmd_env *env, int argc, char **argv)
{
	return parse_with(&cmd_argp, env, argc, argv);
}

static void test_trace_options(void **state)
{
	char *a1[] = { "kmemscope t", "-d", "2", "-p", "12", "-p", "34", "-F", "slab", "-c", "bash",
		       "--ring-mb", "8", "--order", "time", "--rescue", "on", NULL };
	char *a2[] = { "kmemscope t", "-a", "--", "ls", "-l", "x", NULL };
	char *a3[] = { "kmemscope t", "-a", NULL };
	char *a4[] = { "kmemscope t", "-p", "5", "--", "ls", NULL };
	char *a5[] = { "kmemscope t", "--ring-mb", "3", NULL };
	char *a6[] = { "kmemscope t", "--nosuch", NULL };
	char *a7[] = { "kmemscope t", "-c", "a-name-longer-than-fifteen", NULL };
	char *a8[] = { "kmemscope t", "--order", "sideways", NULL };
	struct cmd_env env;

	assert_int_equal(parse(&env, 17, a1), 0);
	assert_true(env.duration > 1.99 && env.duration < 2.01);
	assert_int_equal(env.sa.so.nr_pids, 2);
	assert_ptr_equal(env.sa.so.pids, env.sa.pids);
	assert_int_equal(env.sa.pids[0], 12);
	assert_int_equal(env.sa.pids[1], 34);
	assert_int_equal(env.sa.so.families, (1u << KMS_FAM_KMALLOC) | (1u << KMS_FAM_CACHE));
	assert_string_equal(env.sa.so.comm, "bash");
	assert_int_equal(env.sa.so.ring_mb, 8);
	assert_int_equal(env.sa.so.order, SESSION_ORDER_TIME);
	assert_true(env.sa.so.rescue);
	assert_null(env.sa.so.cmd);

	/* everything after -- is the command, its own options included */
	assert_int_equal(parse(&env, 6, a2), 0);
	assert_true(env.sa.so.all_cpus);
	assert_non_null(env.sa.so.cmd);
	assert_string_equal(env.sa.so.cmd[0], "ls");
	assert_string_equal(env.sa.so.cmd[1], "-l");
	assert_string_equal(env.sa.so.cmd[2], "x");
	assert_null(env.sa.so.cmd[3]);

	/* usage errors: exit status 2 */
	assert_int_equal(parse(&env, 2, a3), 2);
	assert_int_equal(parse(&env, 5, a4), 2);
	assert_int_equal(parse(&env, 3, a5), 2);
	assert_int_equal(parse(&env, 2, a6), 2);
	assert_int_equal(parse(&env, 3, a7), 2);
	assert_int_equal(parse(&env, 3, a8), 2);
}

/* each command takes the groups that mean something to it, and only those */
static void test_option_groups(void **state)
{
	char *live[] = { "kmemscope t", "-c", "sh", "--ring-mb", "8", "-a", "--", "ls", NULL };
	char *input[] = { "kmemscope t", "-p", "7", "-i", "f.kmt", "--from", "1", NULL };
	char *rec[] = { "kmemscope t", "--record", "f.kmt", NULL };
	char *both[] = { "kmemscope t", "-i", "f.kmt", "--ring-mb", "8", NULL };
	struct cmd_env env;

	/* reports: all of them, but live tracing and -i do not mix */
	assert_int_equal(parse(&env, 8, live), 0);
	assert_int_equal(parse(&env, 7, input), 0);
	assert_string_equal(env.sa.so.input, "f.kmt");
	assert_int_equal(env.sa.pids[0], 7);
	assert_int_equal(parse(&env, 3, rec), 0);
	assert_string_equal(env.sa.so.record, "f.kmt");
	assert_int_equal(parse(&env, 5, both), 2);
	/* record and probe: live tracing only */
	assert_int_equal(parse_with(&tracing_argp, &env, 8, live), 0);
	assert_int_equal(env.sa.so.ring_mb, 8);
	assert_true(env.sa.so.all_cpus);
	assert_int_equal(parse_with(&tracing_argp, &env, 7, input), 2);
	assert_int_equal(parse_with(&tracing_argp, &env, 3, rec), 2);
	/* script: a file only */
	assert_int_equal(parse_with(&file_argp, &env, 7, input), 0);
	assert_string_equal(env.sa.so.input, "f.kmt");
	assert_int_equal(env.sa.pids[0], 7);
	assert_int_equal(parse_with(&file_argp, &env, 8, live), 2);
	assert_int_equal(parse_with(&file_argp, &env, 3, rec), 2);
}

/* only words after -- form the command: a stray word is a usage error */
static void test_command_after_dashes(void **state)
{
	char *a1[] = { "kmemscope t", "-d", "1", "extra", NULL };
	char *a2[] = { "kmemscope t", "extra", "-d", "1", NULL };
	char *a3[] = { "kmemscope t", "-d", "1", "extra", "--", "ls", NULL };
	char *a4[] = { "kmemscope t", "-d", "1", "--", NULL };
	char *a5[] = { "kmemscope t", "-d", "1", "--", "ls", "-d", "2", NULL };
	char *a6[] = { "kmemscope t", "-c", "--", "--", "x", NULL };
	struct cmd_env env;

	assert_int_equal(parse(&env, 4, a1), 2);
	assert_int_equal(parse(&env, 4, a2), 2);
	assert_int_equal(parse(&env, 6, a3), 2);
	assert_int_equal(parse(&env, 4, a4), 2);
	assert_int_equal(parse(&env, 7, a5), 0);
	assert_true(env.duration > 0.99 && env.duration < 1.01);
	assert_string_equal(env.sa.so.cmd[0], "ls");
	assert_string_equal(env.sa.so.cmd[1], "-d");
	assert_string_equal(env.sa.so.cmd[2], "2");
	/* an option's argument may be "--" itself */
	assert_int_equal(parse(&env, 5, a6), 0);
	assert_string_equal(env.sa.so.comm, "--");
	assert_string_equal(env.sa.so.cmd[0], "x");
}

/* run argv as -- CMD would, to its end; kmemscope's status (err 0) for it */
static int fate(char **argv)
{
	struct cli_cmd cmd = { .go_fd = -1, .err_fd = -1 };
	int r;

	assert_int_equal(cli_cmd_start(&cmd, argv), 0);
	r = cli_cmd_go(&cmd);
	if (r)
		return r;
	while (!cli_cmd_done(&cmd))
		usleep(1000);
	return cli_cmd_status(&cmd, 0);
}

/* kmemscope's exit status is CMD's fate, as time(1) gives it */
static void test_command_fate(void **state)
{
	char *ok[] = { "true", NULL };
	char *fails[] = { "false", NULL };
	char *three[] = { "sh", "-c", "exit 3", NULL };
	char *term[] = { "sh", "-c", "kill -TERM $$", NULL };
	char *kill9[] = { "sh", "-c", "kill -KILL $$", NULL };
	char *none[] = { "/nonexistent/command", NULL };
	struct cli_cmd cmd = { .pid = 1, .done = true, .status = 3 << 8 };

	assert_int_equal(fate(ok), 0);
	assert_int_equal(fate(fails), 1);
	assert_int_equal(fate(three), 3);
	assert_int_equal(fate(term), 128 + 15);
	assert_int_equal(fate(kill9), 128 + 9);
	assert_int_equal(fate(none), 127);
	/* kmemscope's own failure comes first; no command: its own status */
	assert_int_equal(cli_cmd_status(&cmd, 1), 1);
	assert_int_equal(cli_cmd_status(&cmd, 2), 2);
	assert_int_equal(cli_cmd_status(&cmd, 0), 3);
	cmd.pid = 0;
	assert_int_equal(cli_cmd_status(&cmd, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_kernel_is_rt),
		cmocka_unit_test(test_families),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_trace_options),
		cmocka_unit_test(test_option_groups),
		cmocka_unit_test(test_command_after_dashes),
		cmocka_unit_test(test_command_fate),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
