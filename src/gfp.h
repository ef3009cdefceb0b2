/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * GFP flag names of the RUNNING kernel. ___GFP_* bit positions move between
 * kernel versions and configs (KASAN_HW_TAGS, LOCKDEP, SLAB_OBJ_EXT), so the
 * table is read at run time:
 *
 *  1. the __print_flags(REC->gfp_flags, ...) table of the kmem:kmalloc
 *     tracepoint format (tracefs), which lists every name with its value, in
 *     the kernel's own decode order;
 *  2. else the kernel BTF enum ___GFP_*_BIT (kernels that have it), with the
 *     composite GFP_* names rebuilt from their kernel definitions.
 *
 * Decoding follows the kernel's trace_print_flags_seq(), so a decoded string
 * is exactly what the tracepoint would print.
 */
#ifndef KMS_GFP_H
#define KMS_GFP_H

#include <stddef.h>

struct btf;
struct gfp_table;

enum gfp_table_source {
	GFP_SRC_TRACEFS = 0,	/* events/kmem/kmalloc/format of a tracefs */
	GFP_SRC_FORMAT,		/* format text handed to gfp_table__load_format() */
	GFP_SRC_BTF,		/* ___GFP_*_BIT enum of a BTF */
};

/*
 * tracefs_root NULL: try /sys/kernel/tracing, then /sys/kernel/debug/tracing;
 * else only the given tracefs root. Then the vmlinux BTF either way.
 * Returns 0 or a negative errno (-ENOENT: no source had a GFP table).
 * gfp_table__source() tells which source won.
 */
int gfp_table__load(struct gfp_table **out, const char *tracefs_root);
/* the text of an events/.../format file (or just its print fmt line) */
int gfp_table__load_format(struct gfp_table **out, const char *format_text);
/* btf NULL: the running kernel's vmlinux BTF. -ENOENT: no ___GFP_*_BIT enum */
int gfp_table__load_btf(struct gfp_table **out, const struct btf *btf);
void gfp_table__free(struct gfp_table *t);

enum gfp_table_source gfp_table__source(const struct gfp_table *t);
/* entries in decode order, for listing (kmemscope probe) */
size_t gfp_table__count(const struct gfp_table *t);
/* 0 with *name and *value set (either may be NULL), or -ERANGE */
int gfp_table__entry(const struct gfp_table *t, size_t i, const char **name,
		     unsigned long *value);

/*
 * "GFP_KERNEL|__GFP_ZERO", leftover bits as "|0x..", 0 as "none".
 * snprintf semantics: returns the full length, writes at most len-1 chars
 * plus NUL (nothing when len == 0).
 */
size_t gfp_table__decode(const struct gfp_table *t, unsigned long gfp, char *buf, size_t len);
/* value of one name ("GFP_KERNEL", "__GFP_ZERO"); 0 if unknown */
unsigned long gfp_table__value(const struct gfp_table *t, const char *name);
/*
 * "GFP_KERNEL|__GFP_ZERO": names and/or numbers (0x.., decimal) joined by
 * '|', blanks allowed around them. 0 or -EINVAL (empty, unknown name).
 */
int gfp_table__parse(const struct gfp_table *t, const char *names, unsigned long *out);

#endif /* KMS_GFP_H */
