/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * user_lookup on a child of the test (a copy of it: the test's own process
 * would also hold libelf's mapping of the files it reads): the object it
 * finds for malloc and free is the one the dynamic loader gives this
 * process (dladdr of dlsym(RTLD_DEFAULT)), at the same address; the link
 * map is consistent; a process that is gone is an error, as is a command
 * that cannot be found.
 * jemalloc, tcmalloc and processes that fork and exec are the live tier's
 * (tests/live/user.sh).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "user_lookup.h"

/* a child that waits to be killed */
static pid_t child(void)
{
	pid_t pid = fork();

	if (!pid) {
		pause();
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_child(void **state)
{
	pid_t pid = child();
	int err;

	static const char *const funcs[] = { "malloc", "free", "no_such_function_here" };
	struct user_def defs[3];
	const char *name;
	Dl_info info;

	assert_true(pid > 0);
	err = user_lookup__resolve(pid, funcs, 3, defs);
	reap(pid);
	assert_int_equal(err, 0);
	for (int i = 0; i < 2; i++) {
		assert_true(dladdr(dlsym(RTLD_DEFAULT, funcs[i]), &info));
		name = strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 :
						       info.dli_fname;
		assert_string_equal(defs[i].name, name);
		/* the symbol's value is its address less the object's load base */
		assert_int_equal(defs[i].vaddr,
				 (char *)dlsym(RTLD_DEFAULT, funcs[i]) - (char *)info.dli_fbase);
	}
	assert_string_equal(defs[2].path, "");
}

static void test_state(void **state)
{
	pid_t pid = child();
	int st = 42, err;

	assert_true(pid > 0);
	err = user_lookup__state(pid, &st);
	reap(pid);
	assert_int_equal(err, 0);
	/* RT_CONSISTENT: nothing is being loaded */
	assert_int_equal(st, 0);
}

static void test_gone(void **state)
{
	static const char *const funcs[] = { "malloc" };
	struct user_def d;
	int st;

	/* above pid_max's largest value (2^22): no such process can exist */
	assert_int_equal(user_lookup__resolve(5000000, funcs, 1, &d), -ESRCH);
	assert_int_equal(user_lookup__state(5000000, &st), -ESRCH);
}

static void test_cmd_loader(void **state)
{
	char loader[4096], exe[4096];

	assert_int_equal(user_lookup__cmd_loader("sh", loader, sizeof(loader), exe, sizeof(exe)),
			 0);
	assert_true(loader[0] == '/');
	assert_true(strchr(exe, '/') != NULL);
	assert_int_equal(user_lookup__cmd_loader("/no/such/program", loader, sizeof(loader), exe,
						 sizeof(exe)),
			 -ENOENT);
	assert_int_equal(user_lookup__cmd_loader("no-such-program-on-path", loader,
						 sizeof(loader), exe, sizeof(exe)),
			 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_cmd_loader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
