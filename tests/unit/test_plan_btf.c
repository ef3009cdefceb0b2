/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Context capture's per-CPU offsets from BTF (plan__percpu_off), on synthetic
 * BTF in the three layouts kernels have: __preempt_count alone (up to 6.1 and
 * from 6.15), pcpu_hot.preempt_count as a direct member (6.2 to ~6.8) and inside
 * an anonymous union of an anonymous struct (6.12, Debian's bookworm-backports).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "plan.h"

enum { SEC_VAR_OFF = 0x2c000 };

/* .data..percpu with one variable of type 'type' at SEC_VAR_OFF */
static void add_percpu_var(struct btf *btf, const char *name, int type, int size)
{
	int var = btf__add_var(btf, name, BTF_VAR_GLOBAL_ALLOCATED, type);

	assert_true(var > 0);
	assert_true(btf__add_datasec(btf, ".data..percpu", SEC_VAR_OFF + size) > 0);
	assert_int_equal(btf__add_datasec_var_info(btf, var, SEC_VAR_OFF, size), 0);
}

static void test_preempt_count_var(void **state)
{
	struct btf *btf = btf__new_empty();
	int i = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);

	add_percpu_var(btf, "__preempt_count", i, 4);
	assert_int_equal(plan__percpu_off(btf, "__preempt_count", NULL), SEC_VAR_OFF);
	assert_int_equal(plan__percpu_off(btf, "pcpu_hot", "preempt_count"), -1);
	btf__free(btf);
}

static void test_pcpu_hot_direct(void **state)
{
	struct btf *btf = btf__new_empty();
	int i = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	int ptr = btf__add_ptr(btf, 0);
	int st = btf__add_struct(btf, "pcpu_hot", 64);

	assert_int_equal(btf__add_field(btf, "current_task", ptr, 0, 0), 0);
	assert_int_equal(btf__add_field(btf, "preempt_count", i, 64, 0), 0);
	add_percpu_var(btf, "pcpu_hot", st, 64);
	assert_int_equal(plan__percpu_off(btf, "pcpu_hot", "preempt_count"), SEC_VAR_OFF + 8);
	assert_int_equal(plan__percpu_off(btf, "pcpu_hot", "no_such_member"), -1);
	btf__free(btf);
}

/* struct pcpu_hot { union { struct { void *current_task; int preempt_count;
 * int cpu_number; }; u8 pad[64]; }; } as 6.12 has it */
static void test_pcpu_hot_anonymous(void **state)
{
	struct btf *btf = btf__new_empty();
	int i = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	int u8 = btf__add_int(btf, "u8", 1, 0);
	int ptr = btf__add_ptr(btf, 0);
	int pad = btf__add_array(btf, i, u8, 64);
	int inner = btf__add_struct(btf, NULL, 16);
	int uni, st;

	assert_int_equal(btf__add_field(btf, "current_task", ptr, 0, 0), 0);
	assert_int_equal(btf__add_field(btf, "preempt_count", i, 64, 0), 0);
	assert_int_equal(btf__add_field(btf, "cpu_number", i, 96, 0), 0);
	uni = btf__add_union(btf, NULL, 64);
	assert_int_equal(btf__add_field(btf, NULL, inner, 0, 0), 0);
	assert_int_equal(btf__add_field(btf, "pad", pad, 0, 0), 0);
	st = btf__add_struct(btf, "pcpu_hot", 64);
	assert_int_equal(btf__add_field(btf, NULL, uni, 0, 0), 0);
	add_percpu_var(btf, "pcpu_hot", st, 64);
	assert_int_equal(plan__percpu_off(btf, "pcpu_hot", "preempt_count"), SEC_VAR_OFF + 8);
	assert_int_equal(plan__percpu_off(btf, "pcpu_hot", "cpu_number"), SEC_VAR_OFF + 12);
	assert_int_equal(plan__percpu_off(btf, "__preempt_count", NULL), -1);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preempt_count_var),
		cmocka_unit_test(test_pcpu_hot_direct),
		cmocka_unit_test(test_pcpu_hot_anonymous),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
