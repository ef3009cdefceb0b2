/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The row model's two renderers. Text widths come from the values, so a column is as
 * wide as its widest cell; JSON is built with jansson, never by hand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <linux/types.h>
#include "kmemscope.h"
#include "rows.h"
#include "gfp.h"
#include "ksyms.h"

#define CELL_LEN	1024
#define LABEL_WIDTH	21	/* labels of label-per-line sections */
#define BLOCK_WRAP	100	/* block rows wrap here */

struct keep {
	struct keep *next;
	char data[];
};

struct rows {
	const char *key;
	char *title;
	enum rows_style style;
	bool object;
	bool failed;
	const struct row_col *cols;
	int ncols;
	struct row_cell *cells;
	size_t nr, cap;
	size_t total;
	bool counted;
	const char *empty;
	char **remarks;
	size_t nr_remarks;
	struct rows *child, *last_child, *next;
	struct keep *kept;
};

struct rows *rows__new(const char *key, const char *title, enum rows_style style, bool object,
		       const struct row_col *cols, int ncols)
{
	struct rows *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->key = key;
	t->title = strdup(title ? title : "");
	if (!t->title) {
		free(t);
		return NULL;
	}
	t->style = style;
	t->object = object;
	t->cols = cols;
	t->ncols = ncols;
	return t;
}

void rows__free(struct rows *t)
{
	struct rows *c, *n;
	size_t i;
	int k;

	if (!t)
		return;
	for (i = 0; i < t->nr; i++)
		for (k = 0; k < t->ncols; k++)
			rows__free(t->cells[i * t->ncols + k].sub);
	for (c = t->child; c; c = n) {
		n = c->next;
		rows__free(c);
	}
	while (t->kept) {
		struct keep *k2 = t->kept;

		t->kept = k2->next;
		free(k2);
	}
	for (i = 0; i < t->nr_remarks; i++)
		free(t->remarks[i]);
	free(t->remarks);
	free(t->cells);
	free(t->title);
	free(t);
}

struct row_cell *rows__add(struct rows *t)
{
	struct row_cell *r;

	if (!t)
		return NULL;
	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct row_cell *c = realloc(t->cells, cap * t->ncols * sizeof(*c));

		if (!c) {
			t->failed = true;
			return NULL;
		}
		t->cells = c;
		t->cap = cap;
	}
	r = &t->cells[t->nr++ * t->ncols];
	memset(r, 0, t->ncols * sizeof(*r));
	return r;
}

size_t rows__nr(const struct rows *t)
{
	return t ? t->nr : 0;
}

void rows__total(struct rows *t, size_t total)
{
	if (!t)
		return;
	t->total = total;
	t->counted = true;
}

void rows__empty(struct rows *t, const char *text)
{
	if (t)
		t->empty = text;
}

int rows__remark(struct rows *t, const char *fmt, ...)
{
	char **r;
	va_list ap;
	int n;

	if (!t)
		return -EINVAL;
	r = realloc(t->remarks, (t->nr_remarks + 1) * sizeof(*r));
	if (!r) {
		t->failed = true;
		return -ENOMEM;
	}
	t->remarks = r;
	va_start(ap, fmt);
	n = vasprintf(&r[t->nr_remarks], fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = true;
		return -ENOMEM;
	}
	t->nr_remarks++;
	return 0;
}

void rows__child(struct rows *t, struct rows *child)
{
	if (!t)
		return;
	if (!child) {
		t->failed = true;
		return;
	}
	if (t->last_child)
		t->last_child->next = child;
	else
		t->child = child;
	t->last_child = child;
}

void *rows__keep(struct rows *t, const void *p, size_t len)
{
	struct keep *k;

	if (!t)
		return NULL;
	k = malloc(sizeof(*k) + (len ? len : 1));
	if (!k) {
		t->failed = true;
		return NULL;
	}
	memcpy(k->data, p, len);
	k->next = t->kept;
	t->kept = k;
	return k->data;
}

void rows__fail(struct rows *t)
{
	if (t)
		t->failed = true;
}

static bool rows_failed(const struct rows *t)
{
	const struct rows *c;

	if (!t || t->failed)
		return true;
	for (c = t->child; c; c = c->next)
		if (rows_failed(c))
			return true;
	return false;
}

const struct row_col *rows__cols(const struct rows *t, int *ncols)
{
	*ncols = t->ncols;
	return t->cols;
}

const struct rows *rows__first_child(const struct rows *t)
{
	return t->child;
}

const struct rows *rows__next(const struct rows *t)
{
	return t->next;
}

const char *rows__key(const struct rows *t)
{
	return t->key;
}

/* ---- values, as both renderers see them ---- */

static void site_text(const struct rows_ctx *c, __u64 addr, char *buf, size_t len)
{
	if (!addr)
		snprintf(buf, len, "[unknown]");
	else if (c->ksyms)
		ksyms__format(c->ksyms, addr, buf, len);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
}

/*
 * Text only: a site with its source line when one was recorded (user frames
 * with DWARF), the file without its directories: "func+0x1f [mod] at f.c:12".
 */
static void site_text_src(const struct rows_ctx *c, __u64 addr, char *buf, size_t len)
{
	const struct ksrc *src = c->ksyms && addr ? ksyms__source(c->ksyms, addr) : NULL;
	const char *base;
	size_t n;

	site_text(c, addr, buf, len);
	n = strlen(buf);
	if (!src || n + 1 >= len)
		return;
	base = strrchr(src->file, '/');
	snprintf(buf + n, len - n, " at %s:%u", base ? base + 1 : src->file, src->line);
}

static void gfp_text(const struct rows_ctx *c, __u64 v, char *buf, size_t len)
{
	if (v == KMS_GFP_UNKNOWN)
		snprintf(buf, len, "unknown");
	else if (c->gfp)
		gfp_table__decode(c->gfp, (__u32)v, buf, len);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)v);
}

static bool list_kind(enum row_kind k)
{
	return k == RK_STACK || k == RK_LINES;
}

static bool right_aligned(enum row_kind k)
{
	return k == RK_U64 || k == RK_INT || k == RK_NS || k == RK_REAL;
}

static void rows_inline_text(const struct rows *t, const struct rows_ctx *c, char *buf,
			     size_t len);

/* one cell as text; list kinds say how many lines follow */
static void cell_text(const struct row_col *col, const struct row_cell *v,
		      const struct rows_ctx *c, char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	if (v->null) {
		snprintf(buf, len, "-");
		return;
	}
	switch (col->kind) {
	case RK_U64:
		snprintf(buf, len, "%llu", (unsigned long long)v->u);
		break;
	case RK_INT:
		snprintf(buf, len, "%lld", v->i);
		break;
	case RK_STR:
		snprintf(buf, len, "%s", v->s ? v->s : "-");
		break;
	case RK_HEX:
		snprintf(buf, len, "0x%llx", (unsigned long long)v->u);
		break;
	case RK_BOOL:
		snprintf(buf, len, "%s", v->u ? "yes" : col->flags & ROW_LOUD_FALSE ? "NO" : "no");
		break;
	case RK_NS:
		snprintf(buf, len, "%llu.%03llu s", (unsigned long long)(v->u / 1000000000ULL),
			 (unsigned long long)(v->u % 1000000000ULL / 1000000ULL));
		break;
	case RK_REAL:
		snprintf(buf, len, "%.2f", v->d);
		break;
	case RK_GFP:
		gfp_text(c, v->u, buf, len);
		break;
	case RK_SITE:
	case RK_SITE_FLAT:
		site_text_src(c, v->u, buf, len);
		break;
	case RK_PROC:
		snprintf(buf, len, "%llu (%s)", (unsigned long long)v->u,
			 v->s && *v->s ? v->s : "?");
		break;
	case RK_NAMES:
		for (i = 0; i < v->n && off < len; i++)
			off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", v->names[i]);
		if (!v->n)
			snprintf(buf, len, "none");
		break;
	case RK_COUNTS:
		for (i = 0; i < v->n && off < len; i++)
			if (v->v[i])
				off += snprintf(buf + off, len - off, "%s%s %llu", off ? ", " : "",
						v->names[i], (unsigned long long)v->v[i]);
		if (!off)
			snprintf(buf, len, "0");
		break;
	case RK_ROWS:
		rows_inline_text(v->sub, c, buf, len);
		break;
	case RK_STACK:
	case RK_LINES:
		snprintf(buf, len, "%d", v->n);
		break;
	}
}

/* nested rows on one line: cells by spaces, rows by commas */
static void rows_inline_text(const struct rows *t, const struct rows_ctx *c, char *buf,
			     size_t len)
{
	char cell[CELL_LEN];
	size_t off = 0, i;
	int k;

	buf[0] = '\0';
	for (i = 0; t && i < t->nr && off < len; i++)
		for (k = 0; k < t->ncols && off < len; k++) {
			cell_text(&t->cols[k], &t->cells[i * t->ncols + k], c, cell, sizeof(cell));
			off += snprintf(buf + off, len - off, "%s%s", k ? " " : i ? ", " : "",
					cell);
		}
	if (!off)
		snprintf(buf, len, "none");
}

/* the lines under a row: stacks and notes */
static void list_text(const struct row_col *col, const struct row_cell *v,
		      const struct rows_ctx *c, const char *indent, FILE *out)
{
	char sym[CELL_LEN];
	int i;

	fprintf(out, "%s%s:\n", indent, col->head);
	for (i = 0; i < v->n; i++) {
		if (col->kind == RK_STACK)
			site_text_src(c, v->v[i], sym, sizeof(sym));
		fprintf(out, "%s  %s\n", indent, col->kind == RK_STACK ? sym : v->names[i]);
	}
	if (!v->n || v->null)
		fprintf(out, "%s  (none)\n", indent);
}

static void list_cells_text(const struct rows *t, const struct row_cell *r,
			    const struct rows_ctx *c, const char *indent, FILE *out)
{
	for (int k = 0; k < t->ncols; k++)
		if (list_kind(t->cols[k].kind))
			list_text(&t->cols[k], &r[k], c, indent, out);
}

static void title_text(const struct rows *t, FILE *out)
{
	if (t->counted)
		fprintf(out, "\n%s (%zu of %zu)\n", t->title, t->nr, t->total);
	else
		fprintf(out, "\n%s\n", t->title);
}

static int table_text(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	int *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));
	char cell[CELL_LEN];
	size_t i;
	int k, last;

	if (!w)
		return -ENOMEM;
	for (k = 0; k < t->ncols; k++)
		w[k] = strlen(t->cols[k].head);
	for (i = 0; i < t->nr; i++)
		for (k = 0; k < t->ncols; k++) {
			int n;

			cell_text(&t->cols[k], &t->cells[i * t->ncols + k], c, cell, sizeof(cell));
			n = strlen(cell);
			if (t->cols[k].max_width && n > t->cols[k].max_width)
				n = t->cols[k].max_width;
			if (n > w[k])
				w[k] = n;
		}
	/* the last column is not padded: no trailing blanks */
	for (last = t->ncols - 1; last > 0 && list_kind(t->cols[last].kind); last--)
		;
	title_text(t, out);
	fprintf(out, " ");
	for (k = 0; k < t->ncols; k++) {
		if (list_kind(t->cols[k].kind))
			fprintf(out, " [%s below]", t->cols[k].head);
		else
			fprintf(out, " %*s", right_aligned(t->cols[k].kind) ? w[k] :
				k == last ? 0 : -w[k], t->cols[k].head);
	}
	fprintf(out, "\n");
	for (i = 0; i < t->nr; i++) {
		const struct row_cell *r = &t->cells[i * t->ncols];

		fprintf(out, " ");
		for (k = 0; k < t->ncols; k++) {
			if (list_kind(t->cols[k].kind))
				continue;
			cell_text(&t->cols[k], &r[k], c, cell, sizeof(cell));
			fprintf(out, " %*.*s", right_aligned(t->cols[k].kind) ? w[k] :
				k == last ? 0 : -w[k], w[k], cell);
		}
		fprintf(out, "\n");
		list_cells_text(t, r, c, "      ", out);
	}
	free(w);
	return 0;
}

static void lines_text(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	char cell[CELL_LEN];
	int k, lw = LABEL_WIDTH;

	for (k = 0; k < t->ncols; k++)
		if ((int)strlen(t->cols[k].head) > lw)
			lw = strlen(t->cols[k].head);
	title_text(t, out);
	for (size_t i = 0; i < t->nr; i++) {
		const struct row_cell *r = &t->cells[i * t->ncols];

		for (k = 0; k < t->ncols; k++) {
			if (list_kind(t->cols[k].kind)) {
				list_text(&t->cols[k], &r[k], c, "  ", out);
				continue;
			}
			cell_text(&t->cols[k], &r[k], c, cell, sizeof(cell));
			fprintf(out, "  %-*s %s%s%s\n", lw, t->cols[k].head, cell,
				t->cols[k].note ? " " : "", t->cols[k].note ? t->cols[k].note : "");
		}
	}
}

/* "label value" pairs, wrapped; prefix starts the first line */
static void pairs_text(const struct rows *t, const struct row_cell *r, const struct rows_ctx *c,
		       const char *prefix, FILE *out)
{
	char cell[CELL_LEN];
	int col = fprintf(out, "%s", prefix), k, n = 0;

	for (k = 0; k < t->ncols; k++) {
		int len;

		if (list_kind(t->cols[k].kind))
			continue;
		cell_text(&t->cols[k], &r[k], c, cell, sizeof(cell));
		len = strlen(t->cols[k].head) + strlen(cell) + 3;
		if (n && col + len > BLOCK_WRAP) {
			fprintf(out, ",\n      ");
			col = 6;
		} else if (n) {
			col += fprintf(out, ", ");
		}
		col += fprintf(out, "%s %s", t->cols[k].head, cell);
		n++;
	}
	fprintf(out, "\n");
}

static void blocks_text(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	char prefix[32];

	title_text(t, out);
	for (size_t i = 0; i < t->nr; i++) {
		const struct row_cell *r = &t->cells[i * t->ncols];

		snprintf(prefix, sizeof(prefix), "  #%zu ", i + 1);
		pairs_text(t, r, c, prefix, out);
		list_cells_text(t, r, c, "      ", out);
	}
}

static void inline_text(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s: ", t->title);
	for (size_t i = 0; i < t->nr; i++) {
		pairs_text(t, &t->cells[i * t->ncols], c, prefix, out);
		list_cells_text(t, &t->cells[i * t->ncols], c, "  ", out);
	}
}

int rows__text(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	const struct rows *ch;
	int err = 0;

	if (rows_failed(t))
		return -ENOMEM;
	switch (t->style) {
	case RS_TABLE:
		err = table_text(t, c, out);
		break;
	case RS_LINES:
		lines_text(t, c, out);
		break;
	case RS_BLOCKS:
		blocks_text(t, c, out);
		break;
	case RS_INLINE:
		inline_text(t, c, out);
		break;
	}
	if (err)
		return err;
	if (!t->nr && t->empty)
		fprintf(out, "  %s\n", t->empty);
	for (size_t i = 0; i < t->nr_remarks; i++)
		fprintf(out, "%s\n", t->remarks[i]);
	for (ch = t->child; ch && !err; ch = ch->next)
		err = rows__text(ch, c, out);
	if (err)
		return err;
	return ferror(out) ? -EIO : 0;
}

/* ---- JSON ---- */

static void jset(json_t *o, const char *key, json_t *v, bool *fail)
{
	if (!v || json_object_set_new(o, key, v))
		*fail = true;
}

static void jpush(json_t *arr, json_t *v, bool *fail)
{
	if (!v || json_array_append_new(arr, v))
		*fail = true;
}

static json_t *j_hex(__u64 v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

json_t *rows__json_str(const char *s)
{
	char clean[256];
	json_t *j;
	size_t i;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	/* not UTF-8 (a comm may be any bytes, a file any name): its ASCII, '?' for the rest */
	for (i = 0; s[i] && i < sizeof(clean) - 1; i++)
		clean[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	clean[i] = '\0';
	return json_string(clean);
}

/* file and line of a source line into o */
static void source_json(json_t *o, const struct ksrc *src, bool *fail)
{
	jset(o, "file", rows__json_str(src->file), fail);
	jset(o, "line", json_integer(src->line), fail);
}

/* addr, symbol, function, module (and file, line when known) of one address into o */
static void site_json(json_t *o, const struct rows_ctx *c, __u64 addr, bool *fail)
{
	const struct ksym *k = c->ksyms && addr ? ksyms__resolve(c->ksyms, addr) : NULL;
	const struct ksrc *src = c->ksyms && addr ? ksyms__source(c->ksyms, addr) : NULL;
	char buf[CELL_LEN];

	jset(o, "addr", j_hex(addr), fail);
	if (k)
		snprintf(buf, sizeof(buf), "%s+0x%lx", k->name, (unsigned long)(addr - k->addr));
	jset(o, "symbol", k ? rows__json_str(buf) : json_null(), fail);
	jset(o, "function", rows__json_str(k ? k->name : NULL), fail);
	jset(o, "module", rows__json_str(k ? k->module : NULL), fail);
	if (src)
		source_json(o, src, fail);
}

/*
 * KEY_sources next to a stack KEY: per frame {file, line} or null, only when
 * some frame has a source line, so the stack's own strings never change.
 */
static void stack_sources_json(json_t *o, const struct row_col *col, const struct row_cell *v,
			       const struct rows_ctx *c, bool *fail)
{
	char key[128];
	json_t *a;
	int i;

	for (i = 0; c->ksyms && !v->null && i < v->n; i++)
		if (ksyms__source(c->ksyms, v->v[i]))
			break;
	if (!c->ksyms || v->null || i == v->n)
		return;
	a = json_array();
	for (i = 0; a && i < v->n; i++) {
		const struct ksrc *src = ksyms__source(c->ksyms, v->v[i]);
		json_t *f = src ? json_object() : json_null();

		if (src && f)
			source_json(f, src, fail);
		jpush(a, f, fail);
	}
	snprintf(key, sizeof(key), "%s_sources", col->key);
	jset(o, key, a, fail);
}

static json_t *cell_json(const struct row_col *col, const struct row_cell *v,
			 const struct rows_ctx *c, bool *fail)
{
	char buf[CELL_LEN];
	json_t *j;
	int i;

	if (v->null)
		return json_null();
	switch (col->kind) {
	case RK_U64:
	case RK_NS:
		return json_integer((json_int_t)v->u);
	case RK_INT:
		return json_integer(v->i);
	case RK_REAL:
		return json_real(v->d);
	case RK_STR:
		return rows__json_str(v->s);
	case RK_HEX:
		return j_hex(v->u);
	case RK_BOOL:
		return json_boolean(v->u);
	case RK_GFP:
		gfp_text(c, v->u, buf, sizeof(buf));
		return json_string(buf);
	case RK_SITE:
	case RK_SITE_FLAT:
		j = json_object();
		if (j)
			site_json(j, c, v->u, fail);
		return j;
	case RK_PROC:
		j = json_object();
		if (!j)
			return NULL;
		jset(j, "pid", json_integer((json_int_t)v->u), fail);
		jset(j, "comm", rows__json_str(v->s), fail);
		return j;
	case RK_COUNTS:
		j = json_object();
		for (i = 0; j && i < v->n; i++)
			jset(j, v->names[i], json_integer((json_int_t)v->v[i]), fail);
		return j;
	case RK_NAMES:
	case RK_LINES:
		j = json_array();
		for (i = 0; j && i < v->n; i++)
			jpush(j, rows__json_str(v->names[i]), fail);
		return j;
	case RK_STACK:
		j = json_array();
		for (i = 0; j && i < v->n; i++) {
			site_text(c, v->v[i], buf, sizeof(buf));
			jpush(j, rows__json_str(buf), fail);
		}
		return j;
	case RK_ROWS:
		return v->sub ? rows__json(v->sub, c) : json_array();
	}
	return NULL;
}

static json_t *row_json(const struct rows *t, const struct row_cell *r, const struct rows_ctx *c,
			bool *fail)
{
	json_t *o = json_object();

	if (!o) {
		*fail = true;
		return NULL;
	}
	for (int k = 0; k < t->ncols; k++) {
		const struct row_col *col = &t->cols[k];

		if (r[k].null && col->flags & ROW_OMIT_NULL)
			continue;
		if (col->kind == RK_SITE_FLAT && !r[k].null)
			site_json(o, c, r[k].u, fail);
		else
			jset(o, col->key, cell_json(col, &r[k], c, fail), fail);
		if (col->kind == RK_STACK)
			stack_sources_json(o, col, &r[k], c, fail);
	}
	return o;
}

json_t *rows__json(const struct rows *t, const struct rows_ctx *c)
{
	const struct rows *ch;
	bool fail = false;
	json_t *j;

	if (rows_failed(t))
		return NULL;
	if (t->object) {
		j = t->nr ? row_json(t, t->cells, c, &fail) : json_object();
		for (ch = t->child; j && ch && !fail; ch = ch->next) {
			json_t *v = rows__json(ch, c);

			if (!v)
				fail = true;
			else if (ch->key)
				jset(j, ch->key, v, &fail);
			else {
				/* a header section: its members are the parent's own */
				if (json_object_update(j, v))
					fail = true;
				json_decref(v);
			}
		}
	} else {
		j = json_array();
		for (size_t i = 0; j && i < t->nr && !fail; i++)
			jpush(j, row_json(t, &t->cells[i * t->ncols], c, &fail), &fail);
	}
	if (!j || fail) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int rows__json_dump(const struct rows *t, const struct rows_ctx *c, FILE *out)
{
	json_t *root = rows__json(t, c);
	int err = 0;

	if (!root)
		return -ENOMEM;
	if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF)
		err = -EIO;
	else if (fflush(out) || ferror(out))
		err = -EIO;
	json_decref(root);
	return err;
}
