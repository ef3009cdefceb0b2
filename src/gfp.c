/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "gfp.h"
#include "log.h"

struct gfp_flag {
	unsigned long value;
	char *name;
};

struct gfp_table {
	struct gfp_flag *flags;
	size_t n;
	size_t cap;
	enum gfp_table_source source;
};

static const char *const tracefs_roots[] = {
	"/sys/kernel/tracing",
	"/sys/kernel/debug/tracing",
};

#define KMALLOC_FORMAT "events/kmem/kmalloc/format"

static struct gfp_table *table_new(enum gfp_table_source source)
{
	struct gfp_table *t = calloc(1, sizeof(*t));

	if (t)
		t->source = source;
	return t;
}

void gfp_table__free(struct gfp_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		free(t->flags[i].name);
	free(t->flags);
	free(t);
}

/* takes ownership of name */
static int table_add(struct gfp_table *t, char *name, unsigned long value)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 48;
		struct gfp_flag *f = realloc(t->flags, cap * sizeof(*f));

		if (!f) {
			free(name);
			return -ENOMEM;
		}
		t->flags = f;
		t->cap = cap;
	}
	t->flags[t->n].name = name;
	t->flags[t->n].value = value;
	t->n++;
	return 0;
}

static int table_add_copy(struct gfp_table *t, const char *name, unsigned long value)
{
	char *s = strdup(name);

	if (!s)
		return -ENOMEM;
	return table_add(t, s, value);
}

/*
 * Evaluator for the value expressions of a __print_flags() table, e.g.
 *   ( unsigned long)((( gfp_t)(((((1UL))) << (10))|((((1UL))) << (11)))) | ...)
 *   ( unsigned long)((( gfp_t)(0x400u|0x800u)) | (( gfp_t)0x40u))
 * Grammar (C precedence, no side effects):
 *   or    := xor  { '|' xor }
 *   xor   := and  { '^' and }
 *   and   := shift { '&' shift }
 *   shift := add  { ('<<' | '>>') add }
 *   add   := unary { ('+' | '-') unary }
 *   unary := ('~' | '!' | '-' | '+') unary | '(' type ')' unary | '(' or ')' | number
 *   number: C integer literal with u/l suffixes
 * Values are computed as unsigned long; a cast to a 32-bit type (gfp_t,
 * int, unsigned) truncates, as C would. Not modelled: the width of an
 * uncast result (~(gfp_t)x stays 64 bits wide), which only shows in a
 * table value that is a bare complement; the kernel's tables only AND them.
 */
struct expr {
	const char *p;
	int err;
};

static void expr_ws(struct expr *e)
{
	while (isspace((unsigned char)*e->p))
		e->p++;
}

static bool expr_is_ident(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static unsigned long expr_or(struct expr *e);

/* after '(' : a type name up to ')' ? Returns the cast mask, 0 if not a cast */
static unsigned long expr_cast(struct expr *e)
{
	const char *p = e->p;
	unsigned long mask = ~0UL;
	bool any = false, lng = false, narrow = false;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!isalpha((unsigned char)*p) && *p != '_')
		return 0;
	while (*p && *p != ')') {
		const char *w = p;
		size_t len;

		if (isspace((unsigned char)*p) || *p == '*') {
			if (*p == '*')
				lng = true;	/* pointer: full width */
			p++;
			continue;
		}
		if (!isalpha((unsigned char)*p) && *p != '_')
			return 0;	/* "(REC->x ...)": not a cast */
		while (expr_is_ident(*p))
			p++;
		len = p - w;
		any = true;
		if ((len == 4 && !strncmp(w, "long", 4)) || (len == 4 && !strncmp(w, "void", 4)))
			lng = true;
		else if ((len == 5 && !strncmp(w, "gfp_t", 5)) || (len == 3 && !strncmp(w, "int", 3)) ||
			 (len == 8 && !strncmp(w, "unsigned", 8)) ||
			 (len == 6 && !strncmp(w, "signed", 6)))
			narrow = true;
	}
	if (*p != ')' || !any)
		return 0;
	e->p = p + 1;
	if (narrow && !lng)
		mask = 0xffffffffUL;
	return mask;
}

static unsigned long expr_unary(struct expr *e)
{
	unsigned long v, mask;
	char *end;

	expr_ws(e);
	switch (*e->p) {
	case '~':
		e->p++;
		return ~expr_unary(e);
	case '!':
		e->p++;
		return !expr_unary(e);
	case '-':
		e->p++;
		return -expr_unary(e);
	case '+':
		e->p++;
		return expr_unary(e);
	case '(':
		e->p++;
		mask = expr_cast(e);
		if (mask)
			return expr_unary(e) & mask;
		v = expr_or(e);
		expr_ws(e);
		if (*e->p != ')') {
			e->err = -EINVAL;
			return 0;
		}
		e->p++;
		return v;
	}
	if (!isdigit((unsigned char)*e->p)) {
		e->err = -EINVAL;
		return 0;
	}
	errno = 0;
	v = strtoul(e->p, &end, 0);
	if (errno || end == e->p) {
		e->err = -EINVAL;
		return 0;
	}
	e->p = end;
	while (*e->p == 'u' || *e->p == 'U' || *e->p == 'l' || *e->p == 'L')
		e->p++;
	if (expr_is_ident(*e->p))
		e->err = -EINVAL;
	return v;
}

static unsigned long expr_add(struct expr *e)
{
	unsigned long v = expr_unary(e);

	for (;;) {
		expr_ws(e);
		if (*e->p == '+') {
			e->p++;
			v += expr_unary(e);
		} else if (*e->p == '-') {
			e->p++;
			v -= expr_unary(e);
		} else {
			return v;
		}
	}
}

static unsigned long expr_shift(struct expr *e)
{
	unsigned long v = expr_add(e), s;

	for (;;) {
		expr_ws(e);
		if (e->p[0] == '<' && e->p[1] == '<') {
			e->p += 2;
			s = expr_add(e);
			v = s < 64 ? v << s : 0;
		} else if (e->p[0] == '>' && e->p[1] == '>') {
			e->p += 2;
			s = expr_add(e);
			v = s < 64 ? v >> s : 0;
		} else {
			return v;
		}
	}
}

static unsigned long expr_and(struct expr *e)
{
	unsigned long v = expr_shift(e);

	for (;;) {
		expr_ws(e);
		if (e->p[0] != '&' || e->p[1] == '&')
			return v;
		e->p++;
		v &= expr_shift(e);
	}
}

static unsigned long expr_xor(struct expr *e)
{
	unsigned long v = expr_and(e);

	for (;;) {
		expr_ws(e);
		if (*e->p != '^')
			return v;
		e->p++;
		v ^= expr_and(e);
	}
}

static unsigned long expr_or(struct expr *e)
{
	unsigned long v = expr_xor(e);

	for (;;) {
		expr_ws(e);
		if (e->p[0] != '|' || e->p[1] == '|')
			return v;
		e->p++;
		v |= expr_xor(e);
	}
}

/* "NAME" -> malloc'ed NAME; *pp moves past the closing quote */
static int parse_string(const char **pp, char **out)
{
	const char *p = *pp, *start;
	char *s;

	if (*p != '"')
		return -EINVAL;
	start = ++p;
	while (*p && *p != '"') {
		if (*p == '\\' && p[1])
			p++;
		p++;
	}
	if (*p != '"')
		return -EINVAL;
	s = strndup(start, p - start);
	if (!s)
		return -ENOMEM;
	*out = s;
	*pp = p + 1;
	return 0;
}

/* skip one top-level argument up to (not past) the ',' or ')' that ends it */
static const char *skip_arg(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
		} else if (*p == '(' || *p == '{') {
			depth++;
		} else if (*p == ')' || *p == '}') {
			if (!depth)
				return p;
			depth--;
		} else if (*p == ',' && !depth) {
			return p;
		}
	}
	return NULL;
}

static const char *skip_ws(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* the first __print_flags( whose flags argument is a gfp field */
static const char *find_gfp_print_flags(const char *text)
{
	const char *p = text, *arg, *end;

	while ((p = strstr(p, "__print_flags(")) != NULL) {
		arg = p + strlen("__print_flags(");
		end = skip_arg(arg);
		if (!end)
			return NULL;
		if (*end == ',' && memmem(arg, end - arg, "gfp", 3))
			return arg;
		p = arg;
	}
	return NULL;
}

static int parse_print_flags(struct gfp_table *t, const char *text)
{
	const char *p = find_gfp_print_flags(text);
	char *name;
	int err;

	if (!p)
		return -ENOENT;
	/* flags argument, then the delimiter string */
	p = skip_arg(p);
	if (!p || *p != ',')
		return -EINVAL;
	p = skip_arg(p + 1);
	if (!p)
		return -EINVAL;
	for (;;) {
		struct expr e;
		unsigned long v;

		if (*p == ')')
			break;
		if (*p != ',')
			return -EINVAL;
		p = skip_ws(p + 1);
		if (*p != '{')
			return -EINVAL;
		e.p = p + 1;
		e.err = 0;
		v = expr_or(&e);
		if (e.err)
			return e.err;
		expr_ws(&e);
		if (*e.p != ',')
			return -EINVAL;
		p = skip_ws(e.p + 1);
		if (*p != '"') {
			/* { 0, ((void *)0) } / { 0, NULL }: end of table */
			p = skip_arg(p);
			if (!p || *p != '}')
				return -EINVAL;
			p = skip_ws(p + 1);
			break;
		}
		err = parse_string(&p, &name);
		if (err)
			return err;
		err = table_add(t, name, v);
		if (err)
			return err;
		p = skip_ws(p);
		if (*p != '}')
			return -EINVAL;
		p = skip_ws(p + 1);
	}
	if (*p != ')')
		return -EINVAL;
	return t->n ? 0 : -ENOENT;
}

static int load_text(struct gfp_table **out, const char *text, enum gfp_table_source source)
{
	struct gfp_table *t;
	int err;

	*out = NULL;
	if (!text)
		return -EINVAL;
	t = table_new(source);
	if (!t)
		return -ENOMEM;
	err = parse_print_flags(t, text);
	if (err) {
		gfp_table__free(t);
		return err;
	}
	*out = t;
	return 0;
}

int gfp_table__load_format(struct gfp_table **out, const char *format_text)
{
	return load_text(out, format_text, GFP_SRC_FORMAT);
}

static int read_file(const char *path, char **out)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap), *nb;
	FILE *f;
	size_t n;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		free(buf);
		return err;
	}
	/* tracefs files report size 0: read until EOF */
	for (;;) {
		if (cap - len < 2) {
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				err = -EIO;
			break;
		}
	}
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int load_tracefs(struct gfp_table **out, const char *root)
{
	char path[4096];
	char *text = NULL;
	int err;

	if (snprintf(path, sizeof(path), "%s/%s", root, KMALLOC_FORMAT) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = read_file(path, &text);
	if (err)
		return err;
	err = load_text(out, text, GFP_SRC_TRACEFS);
	free(text);
	if (err)
		kms_debug("gfp: %s: no usable gfp_flags table: %s\n", path, strerror(-err));
	return err;
}

/*
 * BTF fallback. Kernels since the ___GFP_*_BIT enum have each configured flag
 * as an enumerator (absent flags are missing, not 0). The names and the order
 * below follow include/linux/gfp_types.h and include/trace/events/mmflags.h
 * (6.18): composites first, then __GFP_RECLAIM, then the single flags in bit
 * order, which is the order the tracepoint decodes in.
 */
struct gfp_bits {
	const char *names[64];	/* "DMA", "HIGHMEM", ... borrowed from the BTF */
	size_t name_len[64];
	unsigned long present;
};

static unsigned long bit_of(const struct gfp_bits *b, const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; i < 64; i++)
		if ((b->present & (1UL << i)) && b->name_len[i] == len &&
		    !strncmp(b->names[i], name, len))
			return 1UL << i;
	return 0;
}

static int table_from_bits(struct gfp_table *t, const struct gfp_bits *b)
{
	unsigned long reclaim, kernel, user, highuser, movable, light;
	int i, err;

#define B(x) bit_of(b, #x)
	reclaim = B(DIRECT_RECLAIM) | B(KSWAPD_RECLAIM);
	kernel = reclaim | B(IO) | B(FS);
	user = kernel | B(HARDWALL);
	highuser = user | B(HIGHMEM);
	movable = highuser | B(MOVABLE) | B(SKIP_KASAN);
	light = (movable | B(COMP) | B(NOMEMALLOC) | B(NOWARN)) & ~reclaim;
	{
		const struct {
			const char *name;
			unsigned long value;
		} comp[] = {
			{ "GFP_TRANSHUGE", light | B(DIRECT_RECLAIM) },
			{ "GFP_TRANSHUGE_LIGHT", light },
			{ "GFP_HIGHUSER_MOVABLE", movable },
			{ "GFP_HIGHUSER", highuser },
			{ "GFP_USER", user },
			{ "GFP_KERNEL_ACCOUNT", kernel | B(ACCOUNT) },
			{ "GFP_KERNEL", kernel },
			{ "GFP_NOFS", reclaim | B(IO) },
			{ "GFP_ATOMIC", B(HIGH) | B(KSWAPD_RECLAIM) },
			{ "GFP_NOIO", reclaim },
			/* as on 6.18; older kernels had no __GFP_NOWARN in GFP_NOWAIT */
			{ "GFP_NOWAIT", B(KSWAPD_RECLAIM) | B(NOWARN) },
			{ "GFP_DMA", B(DMA) },
			{ "GFP_DMA32", B(DMA32) },
			{ "__GFP_RECLAIM", reclaim },
		};
#undef B
		for (i = 0; i < (int)(sizeof(comp) / sizeof(comp[0])); i++) {
			err = table_add_copy(t, comp[i].name, comp[i].value);
			if (err)
				return err;
		}
	}
	for (i = 0; i < 64; i++) {
		char *name;

		if (!(b->present & (1UL << i)))
			continue;
		if (asprintf(&name, "__GFP_%.*s", (int)b->name_len[i], b->names[i]) < 0)
			return -ENOMEM;
		err = table_add(t, name, 1UL << i);
		if (err)
			return err;
	}
	return 0;
}

static int collect_bits(const struct btf *btf, struct gfp_bits *b)
{
	__u32 id, n = btf__type_cnt(btf);

	memset(b, 0, sizeof(*b));
	for (id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *en;
		__u16 i, vlen;

		if (!btf_is_enum(t))
			continue;
		en = btf_enum(t);
		vlen = btf_vlen(t);
		for (i = 0; i < vlen; i++) {
			const char *name = btf__name_by_offset(btf, en[i].name_off);
			size_t len;

			if (!name || strncmp(name, "___GFP_", 7))
				continue;
			len = strlen(name);
			if (len < 7 + 4 + 1 || strcmp(name + len - 4, "_BIT"))
				continue;
			name += 7;
			len -= 7 + 4;
			/* placeholders, not flags */
			if ((len == 4 && !strncmp(name, "LAST", 4)) ||
			    (len >= 6 && !strncmp(name, "UNUSED", 6)))
				continue;
			if (en[i].val < 0 || en[i].val >= 64)
				continue;
			b->names[en[i].val] = name;
			b->name_len[en[i].val] = len;
			b->present |= 1UL << en[i].val;
		}
		if (b->present)
			return 0;
	}
	return -ENOENT;
}

int gfp_table__load_btf(struct gfp_table **out, const struct btf *btf)
{
	struct btf *own = NULL;
	struct gfp_table *t = NULL;
	struct gfp_bits bits;
	int err;

	*out = NULL;
	if (!btf) {
		own = btf__load_vmlinux_btf();
		err = libbpf_get_error(own);
		if (err) {
			own = NULL;
			return err < 0 ? err : -ENOENT;
		}
		btf = own;
	}
	err = collect_bits(btf, &bits);
	if (err)
		goto out;
	t = table_new(GFP_SRC_BTF);
	if (!t) {
		err = -ENOMEM;
		goto out;
	}
	err = table_from_bits(t, &bits);
	if (err)
		goto out;
	*out = t;
	t = NULL;
out:
	gfp_table__free(t);
	btf__free(own);
	return err;
}

int gfp_table__load(struct gfp_table **out, const char *tracefs_root)
{
	size_t i;
	int err;

	*out = NULL;
	if (tracefs_root) {
		if (!load_tracefs(out, tracefs_root))
			return 0;
	} else {
		for (i = 0; i < sizeof(tracefs_roots) / sizeof(tracefs_roots[0]); i++)
			if (!load_tracefs(out, tracefs_roots[i]))
				return 0;
	}
	kms_debug("gfp: no tracefs kmem:kmalloc format, using the kernel BTF\n");
	err = gfp_table__load_btf(out, NULL);
	if (err)
		kms_debug("gfp: no ___GFP_*_BIT enum in the kernel BTF: %s\n", strerror(-err));
	return err == -ENOENT || err == -ESRCH ? -ENOENT : err;
}

enum gfp_table_source gfp_table__source(const struct gfp_table *t)
{
	return t->source;
}

size_t gfp_table__count(const struct gfp_table *t)
{
	return t ? t->n : 0;
}

int gfp_table__entry(const struct gfp_table *t, size_t i, const char **name,
		     unsigned long *value)
{
	if (!t || i >= t->n)
		return -ERANGE;
	if (name)
		*name = t->flags[i].name;
	if (value)
		*value = t->flags[i].value;
	return 0;
}

/* append to a snprintf-style buffer; *pos counts what would have been written */
static void put(char *buf, size_t len, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (*pos < len) {
		size_t room = len - *pos - 1;

		memcpy(buf + *pos, s, n < room ? n : room);
	}
	*pos += n;
}

size_t gfp_table__decode(const struct gfp_table *t, unsigned long gfp, char *buf, size_t len)
{
	size_t pos = 0, i;
	bool first = true;
	char hex[2 + 16 + 1];

	if (!gfp) {
		put(buf, len, &pos, "none");
		goto out;
	}
	/* trace_print_flags_seq(): first match in table order wins its bits */
	for (i = 0; t && i < t->n && gfp; i++) {
		unsigned long v = t->flags[i].value;

		if (!v || (gfp & v) != v)
			continue;
		gfp &= ~v;
		if (!first)
			put(buf, len, &pos, "|");
		first = false;
		put(buf, len, &pos, t->flags[i].name);
	}
	if (gfp) {
		if (!first)
			put(buf, len, &pos, "|");
		snprintf(hex, sizeof(hex), "0x%lx", gfp);
		put(buf, len, &pos, hex);
	}
out:
	if (len)
		buf[pos < len ? pos : len - 1] = '\0';
	return pos;
}

static const struct gfp_flag *lookup(const struct gfp_table *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; t && i < t->n; i++)
		if (strlen(t->flags[i].name) == len && !strncmp(t->flags[i].name, name, len))
			return &t->flags[i];
	return NULL;
}

unsigned long gfp_table__value(const struct gfp_table *t, const char *name)
{
	const struct gfp_flag *f;

	if (!name)
		return 0;
	f = lookup(t, name, strlen(name));
	return f ? f->value : 0;
}

int gfp_table__parse(const struct gfp_table *t, const char *names, unsigned long *out)
{
	unsigned long v = 0;
	const char *p = names;

	if (!names)
		return -EINVAL;
	for (;;) {
		const char *w, *e;
		const struct gfp_flag *f;

		while (isspace((unsigned char)*p))
			p++;
		w = p;
		while (*p && *p != '|')
			p++;
		e = p;
		while (e > w && isspace((unsigned char)e[-1]))
			e--;
		if (e == w)
			return -EINVAL;
		if (isdigit((unsigned char)*w)) {
			char *end;

			errno = 0;
			v |= strtoul(w, &end, 0);
			if (errno || end != e)
				return -EINVAL;
		} else if ((f = lookup(t, w, e - w)) != NULL) {
			v |= f->value;
		} else if (e - w == 4 && !strncmp(w, "none", 4)) {
			/* what decode prints for 0 */
		} else {
			return -EINVAL;
		}
		if (!*p)
			break;
		p++;
	}
	*out = v;
	return 0;
}
