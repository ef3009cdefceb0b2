/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ksyms against data/kallsyms.txt: real 6.18 vmlinux lines plus hand-made
 * [bpf] and module regions laid out to hit the boundary cases.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ksyms.h"
#include "fixture.h"

static int setup(void **state)
{
	struct ksyms *k = ksyms__load(fixture("kallsyms.txt"));

	if (!k)
		return -1;
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	ksyms__free(*state);
	return 0;
}

static void assert_format(const struct ksyms *k, unsigned long addr, const char *want)
{
	char buf[256];
	int n = ksyms__format(k, addr, buf, sizeof(buf));

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

static void test_load_counts(void **state)
{
	const struct ksyms *k = *state;

	/* 62 lines: 3 data symbols and _etext are boundaries, not text */
	assert_int_equal(ksyms__count(k), 62 - 3 - 1);
}

static void test_resolve_vmlinux(void **state)
{
	const struct ksyms *k = *state;
	const struct ksym *s;

	s = ksyms__resolve(k, 0xffffffff816475a0UL + 0x1f);
	assert_non_null(s);
	assert_string_equal(s->name, "__kmalloc_noprof");
	assert_int_equal(s->addr, 0xffffffff816475a0UL);
	assert_null(s->module);

	/* exact start, and the last byte before the next symbol */
	assert_format(k, 0xffffffff8174fb20UL, "do_epoll_create+0x0");
	assert_format(k, 0xffffffff8174fccfUL, "do_epoll_create+0x1af");
	assert_format(k, 0xffffffff8174fcd0UL, "__pfx_ep_send_events+0x0");
	/* compiler clone names are kept */
	assert_format(k, 0xffffffff81647520UL, "__slab_alloc.isra.0+0x10");
	/* four T aliases at _text: the first in file order wins */
	s = ksyms__resolve(k, 0xffffffff81000004UL);
	assert_non_null(s);
	assert_int_equal(s->addr, 0xffffffff81000000UL);
	assert_string_equal(s->name, "__pi__text");
}

static void test_resolve_outside(void **state)
{
	const struct ksyms *k = *state;

	/* below the first symbol */
	assert_null(ksyms__resolve(k, 0xffffffff80ffffffUL));
	assert_null(ksyms__resolve(k, 0));
	assert_format(k, 0x1234, "0x1234");
	/* past _etext, in .rodata: not a function */
	assert_null(ksyms__resolve(k, 0xffffffff82276508UL));
	assert_null(ksyms__resolve(k, 0xffffffff82400010UL));
	assert_format(k, 0xffffffff82400010UL, "0xffffffff82400010");
	/* module data symbol stops the last function before it */
	assert_null(ksyms__resolve(k, 0xffffffffc0a02010UL));
}

static void test_resolve_modules(void **state)
{
	const struct ksyms *k = *state;
	const struct ksym *s;

	s = ksyms__resolve(k, 0xffffffffc0a0001fUL);
	assert_non_null(s);
	assert_string_equal(s->name, "kms_sc_kmalloc");
	assert_non_null(s->module);
	assert_string_equal(s->module, "kms_sc");
	assert_format(k, 0xffffffffc0a0001fUL, "kms_sc_kmalloc+0x1f [kms_sc]");
	assert_format(k, 0xffffffffc0a000c5UL, "kms_sc_vmalloc+0x5 [kms_sc]");
	assert_format(k, 0xffffffffc0a00180UL, "kms_sc_last+0x80 [kms_sc]");
	/* a module function named like a vmlinux one */
	assert_format(k, 0xffffffffc0a05210UL, "do_epoll_create+0x10 [other]");
	assert_format(k, 0xffffffffa0001010UL,
		      "bpf_prog_6deef7357e7b4530_handle_kmalloc+0x10 [bpf]");
	/* last function of [other]: inside its tail */
	assert_format(k, 0xffffffffc0a05900UL, "other_last+0x100 [other]");
}

/* an address of the next module's page never resolves to other_last */
static void test_module_boundary(void **state)
{
	const struct ksyms *k = *state;

	/* [other] ends with other_last (0xffffffffc0a05800); [third] starts at
	 * third_first (0xffffffffc0a06010), so its memory starts at ...6000 */
	assert_format(k, 0xffffffffc0a05fffUL, "other_last+0x7ff [other]");
	assert_null(ksyms__resolve(k, 0xffffffffc0a06000UL));
	assert_null(ksyms__resolve(k, 0xffffffffc0a0600fUL));
	assert_format(k, 0xffffffffc0a06004UL, "0xffffffffc0a06004");
	assert_format(k, 0xffffffffc0a06010UL, "third_alias+0x0 [third]");
	/* [bpf] then a module far above: the tail limit bounds the last prog */
	assert_non_null(ksyms__resolve(k, 0xffffffffa0001800UL + KSYMS_TAIL_MAX - 1));
	assert_null(ksyms__resolve(k, 0xffffffffa0001800UL + KSYMS_TAIL_MAX));
	/* the very last symbol: bounded by the tail limit only */
	assert_format(k, 0xffffffffc0a06400UL + 0x40, "third_last+0x40 [third]");
	assert_null(ksyms__resolve(k, 0xffffffffc0a06400UL + KSYMS_TAIL_MAX));
	assert_null(ksyms__resolve(k, ~0UL));
	/* aliases in a module: T before t */
	assert_format(k, 0xffffffffc0a06011UL, "third_alias+0x1 [third]");
}

static void test_find(void **state)
{
	const struct ksyms *k = *state;
	const struct ksym *s;

	s = ksyms__find(k, "kms_sc_cache");
	assert_non_null(s);
	assert_int_equal(s->addr, 0xffffffffc0a00040UL);
	assert_string_equal(s->module, "kms_sc");
	/* vmlinux wins over the module's local of the same name */
	s = ksyms__find(k, "do_epoll_create");
	assert_non_null(s);
	assert_int_equal(s->addr, 0xffffffff8174fb20UL);
	assert_null(s->module);
	s = ksyms__find(k, "__slab_alloc.isra.0");
	assert_non_null(s);
	assert_int_equal(s->addr, 0xffffffff81647510UL);
	/* data symbols and end markers are not findable */
	assert_null(ksyms__find(k, "kms_sc_data"));
	assert_null(ksyms__find(k, "_etext"));
	assert_null(ksyms__find(k, "no_such_function"));
	assert_null(ksyms__find(k, NULL));
}

static void test_format_truncates(void **state)
{
	const struct ksyms *k = *state;
	char buf[8];

	assert_int_equal(ksyms__format(k, 0xffffffffc0a0001fUL, buf, sizeof(buf)), 28);
	assert_string_equal(buf, "kms_sc_");
	assert_int_equal(ksyms__format(k, 0xffffffffc0a0001fUL, NULL, 0), 28);
	assert_int_equal(ksyms__format(k, 0xffffffffc0a0001fUL, NULL, 4), -EINVAL);
}

/* a file not in address order (as a hand-edited one may be) is sorted */
static void test_unsorted(void **state)
{
	char path[] = "/tmp/kms-kallsyms-XXXXXX";
	char line[512], *lines[128];
	struct ksyms *k;
	int fd, n = 0;
	FILE *in, *out;

	in = fopen(fixture("kallsyms.txt"), "r");
	assert_non_null(in);
	while (n < 128 && fgets(line, sizeof(line), in))
		lines[n++] = strdup(line);
	fclose(in);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	out = fdopen(fd, "w");
	assert_non_null(out);
	while (n > 0) {
		fputs(lines[--n], out);
		free(lines[n]);
	}
	fclose(out);

	k = ksyms__load(path);
	unlink(path);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 62 - 3 - 1);
	assert_format(k, 0xffffffff816475bfUL, "__kmalloc_noprof+0x1f");
	assert_format(k, 0xffffffffc0a0001fUL, "kms_sc_kmalloc+0x1f [kms_sc]");
	assert_format(k, 0xffffffffc0a05fffUL, "other_last+0x7ff [other]");
	assert_null(ksyms__resolve(k, 0xffffffffc0a06004UL));
	/* alias choice does not depend on line order: T before t */
	assert_format(k, 0xffffffffc0a06011UL, "third_alias+0x1 [third]");
	ksyms__free(k);
}

/*
 * Source lines ride in the same text: found by exact address, out of order,
 * file names with spaces kept whole; malformed ones and symbols unaffected.
 */
static void test_sources(void **state)
{
	static const char text[] =
		"L 0000555555556789 42 /src/my dir/ledger.c\n"
		"0000555555556700 T ledger_leak\t[ledger]\n"
		"L 0000555555556712 7 ledger.c\n"
		"L 0000555555556713 x ledger.c\n"	/* no line number */
		"L 0000555555556714 9\n"		/* no file */
		"0000555555556800 b .end\t[ledger]\n";
	char *buf = strdup(text);
	const struct ksrc *src;
	struct ksyms *k;

	assert_non_null(buf);
	k = ksyms__from_text(buf, strlen(text));
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 1);
	src = ksyms__source(k, 0x555555556789UL);
	assert_non_null(src);
	assert_int_equal(src->line, 42);
	assert_string_equal(src->file, "/src/my dir/ledger.c");
	src = ksyms__source(k, 0x555555556712UL);
	assert_non_null(src);
	assert_int_equal(src->line, 7);
	assert_null(ksyms__source(k, 0x555555556713UL));
	assert_null(ksyms__source(k, 0x555555556714UL));
	assert_null(ksyms__source(k, 0x555555556788UL));
	assert_format(k, 0x555555556789UL, "ledger_leak+0x89 [ledger]");
	ksyms__free(k);
}

static void test_load_errors(void **state)
{
	errno = 0;
	assert_null(ksyms__load(fixture("kallsyms-restricted.txt")));
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_null(ksyms__load(fixture("kallsyms-empty.txt")));
	assert_int_equal(errno, ENODATA);
	errno = 0;
	assert_null(ksyms__load(fixture("no-such-file")));
	assert_int_equal(errno, ENOENT);
	assert_null(ksyms__resolve(NULL, 0xffffffff81000000UL));
	ksyms__free(NULL);
}

/* the loader's thread reads the same file ksyms__load() does, once */
static void test_loader_thread(void **state)
{
	struct ksyms_loader l;
	struct ksyms *k;
	char path[4096];

	snprintf(path, sizeof(path), "%s", fixture("kallsyms.txt"));
	ksyms__load_start(&l, path);
	k = ksyms__wait(&l);
	assert_non_null(k);
	assert_int_equal(ksyms__count(k), 62 - 3 - 1);
	assert_ptr_equal(ksyms__wait(&l), k);
	assert_string_equal(ksyms__resolve(k, 0xffffffff81000010UL)->name,
			    ksyms__resolve(*state, 0xffffffff81000010UL)->name);
	ksyms__loader_fini(&l);
	assert_null(l.k);
}

/* a loader never started reads in place when first asked (kmemscope probe) */
static void test_loader_in_place(void **state)
{
	char path[4096];
	struct ksyms_loader l = { .path = path };

	snprintf(path, sizeof(path), "%s", fixture("kallsyms.txt"));
	assert_non_null(ksyms__wait(&l));
	assert_false(l.started);
	assert_int_equal(ksyms__count(ksyms__wait(&l)), 62 - 3 - 1);
	ksyms__loader_fini(&l);
}

/* the reader's error comes back to every caller, whichever thread read */
static void test_loader_errors(void **state)
{
	struct ksyms_loader l;
	char path[4096];

	snprintf(path, sizeof(path), "%s", fixture("no-such-file"));
	ksyms__load_start(&l, path);
	errno = 0;
	assert_null(ksyms__wait(&l));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(ksyms__wait(&l));
	assert_int_equal(errno, ENOENT);
	ksyms__loader_fini(&l);
	snprintf(path, sizeof(path), "%s", fixture("kallsyms-restricted.txt"));
	l = (struct ksyms_loader){ .path = path };
	assert_null(ksyms__wait(&l));
	assert_int_equal(errno, EPERM);
	ksyms__loader_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_vmlinux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_modules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_module_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_truncates, setup, teardown),
		cmocka_unit_test(test_unsorted),
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test_setup_teardown(test_loader_thread, setup, teardown),
		cmocka_unit_test(test_loader_in_place),
		cmocka_unit_test(test_loader_errors),
	};

	return cmocka_run_group_tests_name("ksyms", tests, NULL, NULL);
}
