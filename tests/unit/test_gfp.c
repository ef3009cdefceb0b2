/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * GFP table: the live 6.18 kmem:kmalloc format, a 6.1 format (print fmt
 * taken from Debian's 6.1.0-56 kernel image) and synthetic BTF enums. The
 * running kernel's own table is checked in the live tier (tests/live/kernel.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "gfp.h"

static char *read_fixture(const char *name)
{
	const char *dir = getenv("KMS_UNIT_DATA");
	char path[4096];
	char *buf;
	long len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/unit/data", name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open fixture %s (set KMS_UNIT_DATA)", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static struct gfp_table *load_fixture(const char *name)
{
	struct gfp_table *t = NULL;
	char *text = read_fixture(name);

	assert_int_equal(gfp_table__load_format(&t, text), 0);
	assert_non_null(t);
	free(text);
	return t;
}

static void assert_decodes(const struct gfp_table *t, unsigned long gfp, const char *want)
{
	char buf[512];
	size_t n = gfp_table__decode(t, gfp, buf, sizeof(buf));

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

/* 6.18: GFP names and values as the tracepoint defines them */
static void test_618_values(void **state)
{
	struct gfp_table *t = load_fixture("kmalloc-6.18.format");
	/* set: with link-time inlining gcc sees the lookups' failure paths */
	const char *name = NULL;
	unsigned long v = 0;

	assert_int_equal(gfp_table__source(t), GFP_SRC_FORMAT);
	assert_int_equal(gfp_table__count(t), 38);
	assert_int_equal(gfp_table__entry(t, 0, &name, &v), 0);
	assert_string_equal(name, "GFP_TRANSHUGE");
	assert_int_equal(v, 0x1c24ca);
	assert_int_equal(gfp_table__entry(t, 37, &name, &v), 0);
	assert_string_equal(name, "__GFP_NO_OBJ_EXT");
	assert_int_equal(v, 0x1000000);
	assert_int_equal(gfp_table__entry(t, 38, &name, &v), -ERANGE);

	assert_int_equal(gfp_table__value(t, "GFP_KERNEL"), 0xcc0);
	assert_int_equal(gfp_table__value(t, "GFP_KERNEL_ACCOUNT"), 0x400cc0);
	assert_int_equal(gfp_table__value(t, "GFP_ATOMIC"), 0x820);
	assert_int_equal(gfp_table__value(t, "GFP_NOWAIT"), 0x2800);
	assert_int_equal(gfp_table__value(t, "GFP_NOFS"), 0xc40);
	assert_int_equal(gfp_table__value(t, "GFP_NOIO"), 0xc00);
	assert_int_equal(gfp_table__value(t, "GFP_USER"), 0x100cc0);
	assert_int_equal(gfp_table__value(t, "GFP_HIGHUSER_MOVABLE"), 0x100cca);
	assert_int_equal(gfp_table__value(t, "GFP_TRANSHUGE_LIGHT"), 0x1c20ca);
	assert_int_equal(gfp_table__value(t, "__GFP_ZERO"), 0x100);
	assert_int_equal(gfp_table__value(t, "__GFP_RECLAIM"), 0xc00);
	assert_int_equal(gfp_table__value(t, "__GFP_ACCOUNT"), 0x400000);
	/* gone since 6.3 */
	assert_int_equal(gfp_table__value(t, "__GFP_ATOMIC"), 0);
	assert_int_equal(gfp_table__value(t, "GFP_BOGUS"), 0);
	assert_int_equal(gfp_table__value(t, NULL), 0);
	gfp_table__free(t);
}

static void test_618_decode(void **state)
{
	struct gfp_table *t = load_fixture("kmalloc-6.18.format");

	assert_decodes(t, 0xcc0, "GFP_KERNEL");
	assert_decodes(t, 0xdc0, "GFP_KERNEL|__GFP_ZERO");
	assert_decodes(t, 0x820, "GFP_ATOMIC");
	assert_decodes(t, 0x400cc0, "GFP_KERNEL_ACCOUNT");
	assert_decodes(t, 0x2800, "GFP_NOWAIT");
	assert_decodes(t, 0x2cc0, "GFP_KERNEL|__GFP_NOWARN");
	assert_decodes(t, 0x0, "none");
	assert_decodes(t, 0x1, "GFP_DMA");
	assert_decodes(t, 0x1c24ca, "GFP_TRANSHUGE");
	assert_decodes(t, 0x400, "__GFP_DIRECT_RECLAIM");
	/* bit 9 is unused on 6.18 (was __GFP_ATOMIC): a leftover */
	assert_decodes(t, 0xa20, "GFP_ATOMIC|0x200");
	assert_decodes(t, 0xcc0 | (1UL << 40), "GFP_KERNEL|0x10000000000");
	assert_decodes(t, 1UL << 30, "0x40000000");
	/* first match in table order wins: GFP_NOIO sorts before __GFP_RECLAIM */
	assert_decodes(t, 0x40d00, "GFP_NOIO|__GFP_ZERO|__GFP_COMP");
	gfp_table__free(t);
}

/* 6.1: hex literals, __GFP_ATOMIC, other order, no terminator entry */
static void test_61_decode(void **state)
{
	struct gfp_table *t = load_fixture("kmalloc-6.1.format");

	assert_int_equal(gfp_table__count(t), 36);
	assert_int_equal(gfp_table__value(t, "GFP_KERNEL"), 0xcc0);
	assert_int_equal(gfp_table__value(t, "GFP_ATOMIC"), 0xa20);
	assert_int_equal(gfp_table__value(t, "__GFP_ATOMIC"), 0x200);
	assert_int_equal(gfp_table__value(t, "GFP_NOWAIT"), 0x800);
	assert_int_equal(gfp_table__value(t, "GFP_TRANSHUGE"), 0x1c24ca);
	assert_int_equal(gfp_table__value(t, "__GFP_NO_OBJ_EXT"), 0);

	assert_decodes(t, 0xcc0, "GFP_KERNEL");
	assert_decodes(t, 0xdc0, "GFP_KERNEL|__GFP_ZERO");
	assert_decodes(t, 0xa20, "GFP_ATOMIC");
	/* 6.18's GFP_ATOMIC on 6.1 */
	assert_decodes(t, 0x820, "GFP_NOWAIT|__GFP_HIGH");
	assert_decodes(t, 0x2800, "GFP_NOWAIT|__GFP_NOWARN");
	assert_decodes(t, 0x1000000, "0x1000000");
	assert_decodes(t, 0, "none");
	gfp_table__free(t);
}

static void test_decode_truncates(void **state)
{
	struct gfp_table *t = load_fixture("kmalloc-6.18.format");
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(gfp_table__decode(t, 0xdc0, buf, sizeof(buf)), 21);
	assert_string_equal(buf, "GFP_KER");
	assert_int_equal(gfp_table__decode(t, 0xdc0, NULL, 0), 21);
	assert_int_equal(gfp_table__decode(t, 0xcc0 | (1UL << 40), buf, 1), 24);
	assert_string_equal(buf, "");
	gfp_table__free(t);
}

static void test_parse(void **state)
{
	struct gfp_table *t = load_fixture("kmalloc-6.18.format");
	static const unsigned long vals[] = {
		0xcc0, 0xdc0, 0x820, 0xa20, 0x2800, 0x400dc0, 0x1c24ca, 0xcc0 | (1UL << 40), 0,
	};
	unsigned long v = 1;
	char buf[256];
	size_t i;

	assert_int_equal(gfp_table__parse(t, "GFP_KERNEL|__GFP_ZERO", &v), 0);
	assert_int_equal(v, 0xdc0);
	assert_int_equal(gfp_table__parse(t, " GFP_KERNEL | 0x100 ", &v), 0);
	assert_int_equal(v, 0xdc0);
	assert_int_equal(gfp_table__parse(t, "GFP_ATOMIC", &v), 0);
	assert_int_equal(v, 0x820);
	assert_int_equal(gfp_table__parse(t, "256", &v), 0);
	assert_int_equal(v, 0x100);
	assert_int_equal(gfp_table__parse(t, "none", &v), 0);
	assert_int_equal(v, 0);

	v = 7;
	assert_int_equal(gfp_table__parse(t, "GFP_BOGUS", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "GFP_KERNELX", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "GFP_KERN", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "GFP_KERNEL|", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "|GFP_KERNEL", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, "0x10zz", &v), -EINVAL);
	assert_int_equal(gfp_table__parse(t, NULL, &v), -EINVAL);
	assert_int_equal(v, 7);

	/* what decode prints, parse reads back */
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		gfp_table__decode(t, vals[i], buf, sizeof(buf));
		assert_int_equal(gfp_table__parse(t, buf, &v), 0);
		assert_int_equal(v, vals[i]);
	}
	gfp_table__free(t);
}

static void test_expr_grammar(void **state)
{
	struct gfp_table *t = NULL;
	const char *name = NULL;
	unsigned long v = 0;

	assert_int_equal(gfp_table__load_format(&t,
		"print fmt: \"gfp_flags=%s\", (REC->gfp_flags) ? __print_flags(REC->gfp_flags, \"|\", "
		"{( unsigned long)((( gfp_t)~0u) & 0xf0), \"A\"}, "
		"{(1UL << 3) | (( gfp_t)0x01u), \"B\"}, "
		"{( unsigned long)(~(( gfp_t)0x1u) & 0x6), \"C\"}, "
		"{ 017 ^ 0x3, \"D\"}, "
		"{((( gfp_t)0x100000000UL)), \"E\"}, "
		"{ ( unsigned long)(0x80 >> 2) + 1 - 1, \"F\"}, "
		"{ 0, ((void *)0) } ) : \"none\""), 0);
	assert_int_equal(gfp_table__count(t), 6);
	assert_int_equal(gfp_table__value(t, "A"), 0xf0);
	assert_int_equal(gfp_table__value(t, "B"), 0x9);
	assert_int_equal(gfp_table__value(t, "C"), 0x6);
	assert_int_equal(gfp_table__value(t, "D"), 0xc);
	/* gfp_t is 32 bits wide: the cast truncates */
	assert_int_equal(gfp_table__entry(t, 4, &name, &v), 0);
	assert_string_equal(name, "E");
	assert_int_equal(v, 0);
	assert_int_equal(gfp_table__value(t, "F"), 0x20);
	gfp_table__free(t);

	/* only the table: no other field, no tail */
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {0x10, \"X\"})"), 0);
	assert_int_equal(gfp_table__value(t, "X"), 0x10);
	gfp_table__free(t);
}

static void test_format_errors(void **state)
{
	struct gfp_table *t = (struct gfp_table *)0x1;

	assert_int_equal(gfp_table__load_format(&t, "print fmt: \"ptr=%p\", REC->ptr"), -ENOENT);
	assert_null(t);
	/* a __print_flags on another field is not the gfp table */
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->flags, \"|\", {0x1, \"A\"})"), -ENOENT);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {FOO, \"A\"})"), -EINVAL);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {(1 << 3, \"A\"})"), -EINVAL);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {0x1 \"A\"})"), -EINVAL);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {0x1, \"A})"), -EINVAL);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", {0x1, \"A\"}"), -EINVAL);
	assert_int_equal(gfp_table__load_format(&t,
		"__print_flags(REC->gfp_flags, \"|\", { 0, ((void *)0) } )"), -ENOENT);
	assert_int_equal(gfp_table__load_format(&t, NULL), -EINVAL);
	assert_null(t);
}

static void test_tracefs_root(void **state)
{
	char root[] = "/tmp/kms-gfp-XXXXXX";
	char path[4096];
	struct gfp_table *t = NULL;
	char *text = read_fixture("kmalloc-6.1.format");
	FILE *f;
	int err;

	assert_non_null(mkdtemp(root));
	/* no format under this root: the BTF fallback, where the kernel has one */
	err = gfp_table__load(&t, root);
	if (err) {
		assert_int_equal(err, -ENOENT);
		assert_null(t);
	} else {
		assert_int_equal(gfp_table__source(t), GFP_SRC_BTF);
		gfp_table__free(t);
	}
	snprintf(path, sizeof(path), "%s/events", root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/events/kmem", root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/events/kmem/kmalloc", root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/events/kmem/kmalloc/format", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);

	assert_int_equal(gfp_table__load(&t, root), 0);
	assert_int_equal(gfp_table__source(t), GFP_SRC_TRACEFS);
	assert_int_equal(gfp_table__value(t, "GFP_ATOMIC"), 0xa20);
	gfp_table__free(t);

	unlink(path);
	snprintf(path, sizeof(path), "%s/events/kmem/kmalloc", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/events/kmem", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/events", root);
	rmdir(path);
	rmdir(root);
	free(text);
}

/* a BTF holding the anonymous ___GFP_*_BIT enum with these names, in order */
static struct btf *gfp_btf(const char *const *names, int n)
{
	struct btf *btf = btf__new_empty();
	char name[64];
	int i;

	assert_non_null(btf);
	assert_true(btf__add_int(btf, "int", 4, BTF_INT_SIGNED) > 0);
	assert_true(btf__add_enum(btf, "", 4) > 0);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "___GFP_%s_BIT", names[i]);
		assert_int_equal(btf__add_enum_value(btf, name, i), 0);
	}
	return btf;
}

static const char *const bits_618[] = {
	"DMA", "HIGHMEM", "DMA32", "MOVABLE", "RECLAIMABLE", "HIGH", "IO", "FS", "ZERO",
	"UNUSED", "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "WRITE", "NOWARN", "RETRY_MAYFAIL",
	"NOFAIL", "NORETRY", "MEMALLOC", "COMP", "NOMEMALLOC", "HARDWALL", "THISNODE",
	"ACCOUNT", "ZEROTAGS", "NO_OBJ_EXT", "LAST",
};

static void assert_same_table(const struct gfp_table *a, const struct gfp_table *b)
{
	const char *na = NULL, *nb = NULL;
	unsigned long va = 0, vb = 0;
	size_t i;

	assert_int_equal(gfp_table__count(a), gfp_table__count(b));
	for (i = 0; i < gfp_table__count(a); i++) {
		assert_int_equal(gfp_table__entry(a, i, &na, &va), 0);
		assert_int_equal(gfp_table__entry(b, i, &nb, &vb), 0);
		assert_string_equal(na, nb);
		assert_int_equal(va, vb);
	}
}

/* the BTF fallback rebuilds exactly the tracepoint's table (same kernel) */
static void test_btf_matches_618(void **state)
{
	struct btf *btf = gfp_btf(bits_618, sizeof(bits_618) / sizeof(bits_618[0]));
	struct gfp_table *fmt = load_fixture("kmalloc-6.18.format"), *t = NULL;

	assert_int_equal(gfp_table__load_btf(&t, btf), 0);
	assert_int_equal(gfp_table__source(t), GFP_SRC_BTF);
	assert_same_table(t, fmt);
	assert_decodes(t, 0xdc0, "GFP_KERNEL|__GFP_ZERO");
	gfp_table__free(t);
	gfp_table__free(fmt);
	btf__free(btf);
}

/* KASAN_HW_TAGS + LOCKDEP shift the later bits; composites follow */
static void test_btf_shifted_bits(void **state)
{
	static const char *const bits[] = {
		"DMA", "HIGHMEM", "DMA32", "MOVABLE", "RECLAIMABLE", "HIGH", "IO", "FS", "ZERO",
		"UNUSED", "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "WRITE", "NOWARN", "RETRY_MAYFAIL",
		"NOFAIL", "NORETRY", "MEMALLOC", "COMP", "NOMEMALLOC", "HARDWALL", "THISNODE",
		"ACCOUNT", "ZEROTAGS", "SKIP_ZERO", "SKIP_KASAN", "NOLOCKDEP", "NO_OBJ_EXT",
		"LAST",
	};
	struct btf *btf = gfp_btf(bits, sizeof(bits) / sizeof(bits[0]));
	struct gfp_table *t = NULL;

	assert_int_equal(gfp_table__load_btf(&t, btf), 0);
	assert_int_equal(gfp_table__count(t), 14 + 27);
	assert_int_equal(gfp_table__value(t, "GFP_KERNEL"), 0xcc0);
	assert_int_equal(gfp_table__value(t, "GFP_HIGHUSER_MOVABLE"), 0x100cca | (1UL << 25));
	assert_int_equal(gfp_table__value(t, "GFP_TRANSHUGE"), 0x1c24ca | (1UL << 25));
	assert_int_equal(gfp_table__value(t, "__GFP_NOLOCKDEP"), 1UL << 26);
	assert_int_equal(gfp_table__value(t, "__GFP_NO_OBJ_EXT"), 1UL << 27);
	assert_int_equal(gfp_table__value(t, "__GFP_UNUSED"), 0);
	assert_int_equal(gfp_table__value(t, "__GFP_LAST"), 0);
	assert_decodes(t, 0xcc0 | (1UL << 27), "GFP_KERNEL|__GFP_NO_OBJ_EXT");
	assert_decodes(t, 0xcc0 | (1UL << 24), "GFP_KERNEL|__GFP_SKIP_ZERO");
	assert_decodes(t, 1UL << 28, "0x10000000");
	gfp_table__free(t);
	btf__free(btf);
}

static void test_btf_without_enum(void **state)
{
	struct btf *btf = btf__new_empty();
	struct gfp_table *t = NULL;

	assert_non_null(btf);
	assert_true(btf__add_enum(btf, "gfp_other", 4) > 0);
	assert_int_equal(btf__add_enum_value(btf, "GFP_NOT_A_BIT", 3), 0);
	assert_int_equal(gfp_table__load_btf(&t, btf), -ENOENT);
	assert_null(t);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_618_values),
		cmocka_unit_test(test_618_decode),
		cmocka_unit_test(test_61_decode),
		cmocka_unit_test(test_decode_truncates),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_expr_grammar),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_tracefs_root),
		cmocka_unit_test(test_btf_matches_618),
		cmocka_unit_test(test_btf_shifted_bits),
		cmocka_unit_test(test_btf_without_enum),
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests_name("gfp", tests, NULL, NULL);
}
