/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* softirqs: the kernel's per-CPU softirq counts against the witness's */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "softirqs.h"
#include "fixture.h"

/* each CPU's column summed, modulo 2^32 (CPU0's RCU count is 2^32 - 1) */
static void test_read_sums(void **state)
{
	__u32 sum[3] = { 7, 7, 7 };

	assert_int_equal(softirqs__read(fixture("softirqs-2cpu"), sum, 3), 2);
	assert_int_equal(sum[0], (__u32)(12777 + 3 + 503 + 3 + 8342 + 4294967295U));
	assert_int_equal(sum[1], 15029 + 521 + 7057 + 7171 + 6);
	assert_int_equal(sum[2], 0);
	/* a reader with room for one CPU reads that one */
	assert_int_equal(softirqs__read(fixture("softirqs-2cpu"), sum, 1), 1);
	assert_int_equal(sum[0], (__u32)(12777 + 3 + 503 + 3 + 8342 + 4294967295U));
}

static void test_read_bad(void **state)
{
	__u32 sum[2];

	assert_int_equal(softirqs__read(fixture("no-such-file"), sum, 2), -ENOENT);
	/* a row with fewer columns than the header names */
	assert_int_equal(softirqs__read(fixture("softirqs-short"), sum, 2), -EINVAL);
	/* not that format at all */
	assert_int_equal(softirqs__read(fixture("kallsyms.txt"), sum, 2), -EINVAL);
}

static void test_unseen(void **state)
{
	const __u32 kernel[4] = { 105, 0xffffffffU, 3, 50 };
	/* CPU0 5 behind; CPU1 ahead across the wrap (a run seen after the read); CPU2
	 * never seen by the witness: not judged; CPU3 equal */
	const __u32 seen[4] = { 100, 2, 0, 50 };

	assert_int_equal(softirqs__unseen(kernel, seen, 4), 5);
	/* the kernel's count ahead across the wrap */
	{
		const __u32 k[1] = { 1 }, s[1] = { 0xfffffffeU };

		assert_int_equal(softirqs__unseen(k, s, 1), 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_sums),
		cmocka_unit_test(test_read_bad),
		cmocka_unit_test(test_unseen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
