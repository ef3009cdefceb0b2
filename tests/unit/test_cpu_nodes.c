/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cpu_nodes: CPU -> NUMA node from fake sysfs trees in data/sysfs-* */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "agg.h"
#include "pipe.h"
#include "cpu_nodes.h"
#include "fixture.h"

/* node0 0-1,4; node1 2-3,5-7; node2 has memory and no CPU (empty list) */
static void test_two_nodes(void **state)
{
	static const int want[8] = { 0, 0, 1, 1, 0, 1, 1, 1 };
	int nodes[8];

	assert_int_equal(cpu_nodes__read(fixture("sysfs-2nodes"), nodes, 8), 3);
	assert_memory_equal(nodes, want, sizeof(want));
}

/* CPUs past nr_cpus are ignored; CPUs no node lists stay on node 0 */
static void test_fewer_and_more_cpus(void **state)
{
	int few[3], many[10];

	assert_int_equal(cpu_nodes__read(fixture("sysfs-2nodes"), few, 3), 3);
	assert_int_equal(few[2], 1);
	for (int i = 0; i < 10; i++)
		many[i] = -1;
	assert_int_equal(cpu_nodes__read(fixture("sysfs-2nodes"), many, 10), 3);
	assert_int_equal(many[7], 1);
	assert_int_equal(many[8], 0);
	assert_int_equal(many[9], 0);
}

/* no node directory (CONFIG_NUMA=n): every CPU on node 0 */
static void test_no_numa(void **state)
{
	int nodes[4] = { -1, -1, -1, -1 };

	assert_int_equal(cpu_nodes__read(fixture("sysfs-nonuma"), nodes, 4), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(nodes[i], 0);
}

static void test_parse_list(void **state)
{
	int cpus[8] = { 0 };

	assert_int_equal(cpu_nodes__parse_list("7", cpus, 8, 3), 0);
	assert_int_equal(cpus[7], 3);
	assert_int_equal(cpu_nodes__parse_list("0-1,3\n", cpus, 8, 2), 0);
	assert_int_equal(cpus[0], 2);
	assert_int_equal(cpus[1], 2);
	assert_int_equal(cpus[2], 0);
	assert_int_equal(cpus[3], 2);
	assert_int_equal(cpu_nodes__parse_list("", cpus, 8, 1), 0);
	assert_int_equal(cpu_nodes__parse_list("\n", cpus, 8, 1), 0);
	assert_int_equal(cpu_nodes__parse_list("x", cpus, 8, 1), -EINVAL);
	assert_int_equal(cpu_nodes__parse_list("3-1", cpus, 8, 1), -EINVAL);
	assert_int_equal(cpu_nodes__parse_list("1,,2", cpus, 8, 1), -EINVAL);
	assert_int_equal(cpu_nodes__parse_list("1 2", cpus, 8, 1), -EINVAL);
}

/* what the session does with the map: a node -1 record counts on its CPU's node */
static void test_agg_counts_cpu_node(void **state)
{
	struct agg *a = pipe_agg();
	struct kms_event e = {
		.type = KMS_EV_PAGE_ALLOC, .ptr = 1, .bytes_req = 4096, .bytes_alloc = 4096,
		.node = -1, .stack_id = -1, .cpu = 5, .ts = 1,
	};
	int nodes[8];

	assert_non_null(a);
	assert_int_equal(cpu_nodes__read(fixture("sysfs-2nodes"), nodes, 8), 3);
	assert_int_equal(agg__set_cpu_nodes(a, nodes, 8), 0);
	pipe_event(&e);
	assert_int_equal(agg__nr_nodes(a), 2);
	assert_int_equal(agg__node(a, 0)->allocs, 0);
	assert_int_equal(agg__node(a, 1)->allocs, 1);
	pipe_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_nodes),
		cmocka_unit_test(test_fewer_and_more_cpus),
		cmocka_unit_test(test_no_numa),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_agg_counts_cpu_node),
	};

	return cmocka_run_group_tests_name("cpu_nodes", tests, NULL, NULL);
}
