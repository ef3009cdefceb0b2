/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One row model for every report section. A section is a title, a table of column
 * descriptors and rows filled once from the aggregation or the detectors; one text
 * renderer and one JSON renderer (jansson) walk the same description, so a column
 * cannot exist in one output and not the other (bpftool's json_writer idea).
 */
#ifndef KMS_ROWS_H
#define KMS_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

struct ksyms;
struct gfp_table;
struct json_t;

enum row_kind {
	RK_U64,		/* JSON integer */
	RK_INT,		/* signed */
	RK_STR,		/* string */
	RK_HEX,		/* "0x1f": kernel addresses pass 2^53 */
	RK_BOOL,
	RK_NS,		/* nanoseconds: JSON integer, text "1.234 s" */
	RK_REAL,	/* a ratio: JSON number, text with two decimals */
	RK_GFP,		/* GFP value: its flag names in both */
	RK_SITE,	/* address: JSON {addr, symbol, function, module}, text "func+0x1f [mod]" */
	RK_SITE_FLAT,	/* the same four members, in the row itself */
	RK_PROC,	/* pid and comm: JSON {pid, comm}, text "pid (comm)" */
	RK_NAMES,	/* strings: JSON array, text "a, b" or "none" */
	RK_COUNTS,	/* named counts: JSON object, text "a 1, b 2" (zeros left out) */
	RK_ROWS,	/* nested rows: JSON array of objects, text "v v, v v" */
	RK_STACK,	/* addresses: JSON array of symbols, text one line each under the row */
	RK_LINES,	/* strings: JSON array, text one line each under the row */
};

/* column flags */
#define ROW_OMIT_NULL	0x1	/* JSON leaves a null member out instead of writing null */
#define ROW_LOUD_FALSE	0x2	/* text says "NO": a false here is a warning */

struct row_col {
	const char *key;	/* JSON member */
	const char *head;	/* text header or label */
	enum row_kind kind;
	unsigned int flags;
	int max_width;		/* text: longer values are cut, 0 never */
	const char *note;	/* text: said after the value (label-per-line sections) */
	const struct row_col *sub;	/* RK_ROWS: columns of the nested rows */
	int nsub;
};

struct rows;

struct row_cell {
	bool null;		/* JSON null (or left out), text "-" */
	__u64 u;		/* U64, HEX, BOOL, NS, GFP, SITE*, PROC pid */
	long long i;		/* INT */
	double d;		/* REAL */
	const char *s;		/* STR, PROC comm */
	const __u64 *v;		/* STACK addresses, COUNTS values */
	const char *const *names;	/* NAMES, LINES, COUNTS keys */
	int n;			/* entries of v or names */
	struct rows *sub;	/* ROWS, owned by the row */
};

enum rows_style {
	RS_TABLE,	/* a header line, then a line per row */
	RS_LINES,	/* one row, a labelled line per column */
	RS_BLOCKS,	/* "#N label value, ..." per row: rows too wide for a table */
	RS_INLINE,	/* one row, "title: label value, ..." on one line */
};

struct rows_ctx {
	const struct ksyms *ksyms;	/* NULL: addresses stay hex */
	const struct gfp_table *gfp;	/* NULL: GFP values stay hex */
};

/*
 * key: the JSON member in the parent, NULL to put this section's members in the
 * parent itself (a document's header). object: JSON object of the one row, else an
 * array of the rows.
 */
struct rows *rows__new(const char *key, const char *title, enum rows_style style, bool object,
		       const struct row_col *cols, int ncols);
void rows__free(struct rows *t);
/* a new row of zeroed cells, indexed like the columns; NULL on allocation failure */
struct row_cell *rows__add(struct rows *t);
size_t rows__nr(const struct rows *t);
/* the title says "(rows of total)" */
void rows__total(struct rows *t, size_t total);
/* text when there are no rows */
void rows__empty(struct rows *t, const char *text);
/* a text-only remark after the rows, derived from their values (a warning, a note) */
int rows__remark(struct rows *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a child section: a member of this object in JSON, after this section in text */
void rows__child(struct rows *t, struct rows *child);
/* a copy of len bytes owned by t, for cells pointing at data that does not outlive it */
void *rows__keep(struct rows *t, const void *p, size_t len);
/* the section failed to build (out of memory): rendering returns -ENOMEM */
void rows__fail(struct rows *t);

int rows__text(const struct rows *t, const struct rows_ctx *c, FILE *out);
/* the section as its JSON value, or NULL on failure */
struct json_t *rows__json(const struct rows *t, const struct rows_ctx *c);
/*
 * A JSON string of s (NULL: null): a name that is not UTF-8 (a comm may be
 * any bytes) keeps its ASCII, '?' for the other bytes.
 */
struct json_t *rows__json_str(const char *s);
/* a whole document: t's members and children in one object, written to out */
int rows__json_dump(const struct rows *t, const struct rows_ctx *c, FILE *out);

/* for tests: walk the columns of t and its children */
const struct row_col *rows__cols(const struct rows *t, int *ncols);
const struct rows *rows__first_child(const struct rows *t);
const struct rows *rows__next(const struct rows *t);
const char *rows__key(const struct rows *t);

#endif
