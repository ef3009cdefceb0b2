/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * srcline against this test binary itself (built with -g, Makefile): a
 * return address taken at run time, in the mapping /proc/self/maps gives,
 * must come back with this file and the line of the call; a function's own
 * entry is not a return address and gets no line; a missing object is an
 * error, not an empty answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "srcline.h"

struct mapping {
	char path[4096];
	__u64 start, end, pgoff;
};

/* the executable mapping of this process that holds addr */
static void find_mapping(__u64 addr, struct mapping *m)
{
	unsigned long long start, end, off;
	char line[4352], perms[8];
	FILE *f = fopen("/proc/self/maps", "r");
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		m->path[0] = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095[^\n]", &start, &end, perms, &off,
			   m->path) == 5 && perms[2] == 'x' && addr >= start && addr < end) {
			m->start = start;
			m->end = end;
			m->pgoff = off;
			found = true;
		}
	}
	fclose(f);
	assert_true(found);
}

static __attribute__((noinline)) uintptr_t return_address(void)
{
	return (uintptr_t)__builtin_return_address(0);
}

/* the call's line, and its return address: the barrier after it keeps it from a tail call */
static __attribute__((noinline)) uintptr_t call_here(int *line)
{
	uintptr_t ra;

	*line = __LINE__ + 1;
	ra = return_address();
	__asm__ volatile("" ::: "memory");
	return ra;
}

/* the "L ADDR LINE FILE" lines srcline__write() gives for addrs, in a buffer */
static int lines_for(const struct mapping *m, const __u64 *addrs, size_t n, char **text)
{
	size_t len = 0;
	FILE *f = open_memstream(text, &len);
	int nr;

	assert_non_null(f);
	nr = srcline__write(m->path, m->start, m->end, m->pgoff, addrs, n, f);
	fclose(f);
	return nr;
}

static void test_return_address(void **state)
{
	struct mapping m;
	char *text = NULL, file[4096];
	unsigned long long a;
	int line, got;
	__u64 addr = call_here(&line);

	find_mapping(addr, &m);
	assert_int_equal(lines_for(&m, &addr, 1, &text), 1);
	assert_int_equal(sscanf(text, "L %llx %d %4095[^\n]", &a, &got, file), 3);
	assert_int_equal(a, addr);
	assert_int_equal(got, line);
	assert_non_null(strstr(file, "test_srcline.c"));
	free(text);
}

static void test_entry_and_outside(void **state)
{
	__u64 addrs[2] = { (uintptr_t)&return_address, 0 };
	struct mapping m;
	char *text = NULL;

	find_mapping(addrs[0], &m);
	/* a function's first byte: no call before it in the same function */
	assert_int_equal(lines_for(&m, addrs, 1, &text), 0);
	assert_string_equal(text, "");
	free(text);
	/* an address outside the mapping is not looked up at all */
	addrs[0] = m.end;
	assert_int_equal(lines_for(&m, addrs, 1, &text), 0);
	free(text);
}

static void test_missing_object(void **state)
{
	struct mapping m = { .start = 0x1000, .end = 0x2000 };
	__u64 addr = 0x1800;
	char *text = NULL;

	snprintf(m.path, sizeof(m.path), "/nonexistent/kms-srcline-object");
	assert_int_equal(lines_for(&m, &addr, 1, &text), -ENOENT);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_return_address),
		cmocka_unit_test(test_entry_and_outside),
		cmocka_unit_test(test_missing_object),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
