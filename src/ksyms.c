/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ksyms.h"

#define KSYMS_PAGE	4096UL

struct kentry {
	struct ksym sym;	/* first: a struct ksym * is a struct kentry * */
	unsigned int seq;	/* line order, keeps the sort stable */
	unsigned char rank;	/* alias preference: T, W, t, w, then non-text (4) */
	bool text;
};

struct ksyms {
	char *buf;		/* the file, names and modules point into it */
	struct kentry *ents;	/* all symbols, sorted by address */
	size_t n;
	size_t ntext;
	struct ksrc *srcs;	/* source lines, sorted by address */
	size_t nsrc, cap_src;
};

static int type_rank(char type)
{
	switch (type) {
	case 'T': return 0;
	case 'W': return 1;
	case 't': return 2;
	case 'w': return 3;
	default: return 4;	/* not text: a boundary only */
	}
}

/* "T" symbols that mark the end of a text section, not a function */
static bool is_end_marker(const char *name)
{
	return !strcmp(name, "_etext") || !strcmp(name, "_einittext");
}

static int read_all(const char *path, char **out, size_t *out_len)
{
	size_t len = 0, cap = 1 << 20;
	char *buf, *nb;
	ssize_t r;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* /proc files report size 0: read until EOF */
	for (;;) {
		if (cap - len < 65536 + 1) {
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return err;
}

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct kentry *x = a, *y = b;

	if (x->sym.addr != y->sym.addr)
		return x->sym.addr < y->sym.addr ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_src(const void *a, const void *b)
{
	const struct ksrc *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* "L 00005581a1b2c1a9 42 /src/ledger.c": the rest of the line is the file name */
static int parse_src(struct ksyms *k, char *p)
{
	unsigned long addr = 0, line = 0;
	int h;

	while ((h = hexval(*p)) >= 0) {
		addr = addr << 4 | h;
		p++;
	}
	if (*p++ != ' ')
		return 0;
	while (*p >= '0' && *p <= '9' && line < 1UL << 31)
		line = line * 10 + (*p++ - '0');
	if (*p++ != ' ' || !*p || !addr)
		return 0;	/* not a source line: skipped, as an unknown line is */
	if (k->nsrc == k->cap_src) {
		size_t cap = k->cap_src ? 2 * k->cap_src : 64;
		struct ksrc *n = realloc(k->srcs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		k->srcs = n;
		k->cap_src = cap;
	}
	k->srcs[k->nsrc++] = (struct ksrc){ addr, line, p };
	return 0;
}

/*
 * Lines: "ffffffff81000000 T _text\n", "ffffffffc0a01000 t name\t[module]\n",
 * and source lines ("L ...", parse_src()). Parsed in place: names and module
 * names are NUL-terminated in the buffer.
 */
static int parse(struct ksyms *k, size_t len)
{
	char *p = k->buf, *end = k->buf + len, *eol, *name, *mod;
	const char *last_mod = NULL;
	size_t cap = len / 32 + 16;
	unsigned long addr;
	bool nonzero = false;
	size_t i;
	int h;
	char type;

	k->ents = malloc(cap * sizeof(*k->ents));
	if (!k->ents)
		return -ENOMEM;
	for (; p < end; p = eol + 1) {
		eol = memchr(p, '\n', end - p);
		if (!eol)
			eol = end;
		*eol = '\0';
		if (p[0] == 'L' && p[1] == ' ') {
			if (parse_src(k, p + 2))
				return -ENOMEM;
			continue;
		}
		addr = 0;
		while ((h = hexval(*p)) >= 0) {
			addr = addr << 4 | h;
			p++;
		}
		if (*p != ' ' || !p[1] || p[2] != ' ')
			continue;	/* not a symbol line */
		type = p[1];
		name = p + 3;
		mod = NULL;
		for (p = name; *p && *p != '\t' && *p != ' '; p++)
			;
		if (*p) {
			*p++ = '\0';
			while (*p == '\t' || *p == ' ')
				p++;
			if (*p == '[') {
				char *close = strchr(p + 1, ']');

				if (close)
					*close = '\0';
				mod = p + 1;
			}
		}
		if (!*name)
			continue;
		if (mod) {
			/* intern: equal module names share one pointer */
			if (last_mod && !strcmp(last_mod, mod))
				mod = (char *)last_mod;
			last_mod = mod;
		}
		if (k->n == cap) {
			struct kentry *ne;

			cap *= 2;
			ne = realloc(k->ents, cap * sizeof(*ne));
			if (!ne)
				return -ENOMEM;
			k->ents = ne;
		}
		k->ents[k->n].sym.name = name;
		k->ents[k->n].sym.addr = addr;
		k->ents[k->n].sym.module = mod;
		k->ents[k->n].seq = k->n;
		k->ents[k->n].rank = is_end_marker(name) ? 4 : type_rank(type);
		k->ents[k->n].text = k->ents[k->n].rank < 4;
		k->ntext += k->ents[k->n].text;
		if (addr)
			nonzero = true;
		k->n++;
	}
	if (!k->n)
		return -ENODATA;
	if (!nonzero)
		return -EPERM;
	/* /proc/kallsyms comes in address order: sort only when it does not */
	for (i = 1; i < k->n; i++)
		if (k->ents[i - 1].sym.addr > k->ents[i].sym.addr)
			break;
	if (i < k->n)
		qsort(k->ents, k->n, sizeof(*k->ents), cmp_entry);
	if (k->nsrc)
		qsort(k->srcs, k->nsrc, sizeof(*k->srcs), cmp_src);
	return 0;
}

struct ksyms *ksyms__load(const char *path)
{
	return ksyms__load_more(path, NULL, 0);
}

struct ksyms *ksyms__load_more(const char *path, const char *more, size_t more_len)
{
	char *buf = NULL, *nb;
	size_t len = 0;
	int err;

	err = read_all(path ? path : "/proc/kallsyms", &buf, &len);
	if (!err && more_len) {
		nb = realloc(buf, len + more_len + 1);
		if (nb) {
			memcpy(nb + len, more, more_len);
			len += more_len;
			nb[len] = '\0';
			buf = nb;
		} else {
			free(buf);
			err = -ENOMEM;
		}
	}
	if (err) {
		errno = -err;
		return NULL;
	}
	return ksyms__from_text(buf, len);
}

struct ksyms *ksyms__from_text(char *text, size_t len)
{
	struct ksyms *k;
	int err;

	k = calloc(1, sizeof(*k));
	if (!k) {
		free(text);
		return NULL;
	}
	k->buf = text;
	err = parse(k, len);
	if (err)
		goto fail;
	return k;
fail:
	ksyms__free(k);
	errno = -err;
	return NULL;
}

static void *loader_main(void *arg)
{
	struct ksyms_loader *l = arg;

	l->k = ksyms__load(l->path);
	l->err = l->k ? 0 : errno;
	return NULL;
}

void ksyms__load_start(struct ksyms_loader *l, const char *path)
{
	memset(l, 0, sizeof(*l));
	l->path = path;
	l->started = !pthread_create(&l->thread, NULL, loader_main, l);
}

struct ksyms *ksyms__wait(struct ksyms_loader *l)
{
	if (!l->done) {
		if (l->started)
			pthread_join(l->thread, NULL);
		else
			loader_main(l);
		l->done = true;
	}
	errno = l->err;
	return l->k;
}

void ksyms__loader_fini(struct ksyms_loader *l)
{
	/* a loader never started and never asked has nothing to free */
	if (l->started && !l->done)
		pthread_join(l->thread, NULL);
	ksyms__free(l->k);
	memset(l, 0, sizeof(*l));
}

void ksyms__free(struct ksyms *k)
{
	if (!k)
		return;
	free(k->ents);
	free(k->srcs);
	free(k->buf);
	free(k);
}

size_t ksyms__count(const struct ksyms *k)
{
	return k ? k->ntext : 0;
}

static bool same_region(const char *a, const char *b)
{
	if (a == b)
		return true;
	if (!a || !b)
		return false;
	return !strcmp(a, b);
}

/*
 * The entry addr falls in (the best alias at the last address at or below
 * addr: best rank, first line on ties) and the entry after that address, or
 * NULL when addr is below every symbol.
 */
static const struct kentry *lookup(const struct ksyms *k, unsigned long addr,
				   const struct kentry **next)
{
	const struct kentry *e;
	size_t lo = 0, hi, i;

	if (!k || !k->n || addr < k->ents[0].sym.addr)
		return NULL;
	hi = k->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->ents[mid].sym.addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	e = &k->ents[lo];
	for (i = lo; i > 0 && k->ents[i - 1].sym.addr == e->sym.addr; i--)
		if (k->ents[i - 1].rank <= e->rank)
			e = &k->ents[i - 1];
	/* lo is the last entry at or below addr: the one after it is above */
	*next = lo + 1 < k->n ? &k->ents[lo + 1] : NULL;
	return e;
}

const struct ksrc *ksyms__source(const struct ksyms *k, unsigned long addr)
{
	struct ksrc key = { .addr = addr };

	return k && k->nsrc ? bsearch(&key, k->srcs, k->nsrc, sizeof(key), cmp_src) : NULL;
}

const struct ksym *ksyms__resolve(const struct ksyms *k, unsigned long addr)
{
	const struct kentry *e, *next;
	unsigned long end;

	e = lookup(k, addr, &next);
	if (!e || !e->text)
		return NULL;
	if (next && same_region(next->sym.module, e->sym.module))
		return &e->sym;	/* addr < next->sym.addr by the search */
	/* last symbol of its region: bound the unknown size */
	end = e->sym.addr + KSYMS_TAIL_MAX;
	if (end < e->sym.addr)
		end = ~0UL;
	if (next) {
		unsigned long floor = next->sym.addr & ~(KSYMS_PAGE - 1);

		if (floor <= e->sym.addr)
			floor = next->sym.addr;
		if (floor < end)
			end = floor;
	}
	return addr < end ? &e->sym : NULL;
}

int ksyms__format(const struct ksyms *k, unsigned long addr, char *buf, size_t len)
{
	const struct ksym *s = ksyms__resolve(k, addr);

	if (!buf && len)
		return -EINVAL;
	if (!s)
		return snprintf(buf, len, "0x%lx", addr);
	if (s->module)
		return snprintf(buf, len, "%s+0x%lx [%s]", s->name, addr - s->addr, s->module);
	return snprintf(buf, len, "%s+0x%lx", s->name, addr - s->addr);
}

const struct ksym *ksyms__find(const struct ksyms *k, const char *name)
{
	const struct kentry *best = NULL;
	size_t i;

	if (!k || !name)
		return NULL;
	for (i = 0; i < k->n; i++) {
		const struct kentry *e = &k->ents[i];

		if (!e->text || strcmp(e->sym.name, name))
			continue;
		if (!best) {
			best = e;
			continue;
		}
		if (!e->sym.module != !best->sym.module) {
			if (!e->sym.module)
				best = e;
			continue;
		}
		if (e->rank < best->rank)
			best = e;
	}
	return best ? &best->sym : NULL;
}

/* the kallsyms type letter of an entry's rank (type_rank() backwards) */
static char rank_type(const struct kentry *e)
{
	return e->text ? "TWtw"[e->rank] : 'b';
}

static int put_line(const struct kentry *e, char type, char *buf, size_t len)
{
	if (e->sym.module)
		return snprintf(buf, len, "%016lx %c %s\t[%s]\n", e->sym.addr, type, e->sym.name,
				e->sym.module);
	return snprintf(buf, len, "%016lx %c %s\n", e->sym.addr, type, e->sym.name);
}

int ksyms__export(const struct ksyms *k, unsigned long addr, unsigned long *key, char *buf,
		  size_t len)
{
	const struct kentry *e, *next;
	int n, m = 0;

	e = lookup(k, addr, &next);
	if (!e)
		return 0;
	*key = e->sym.addr;
	n = put_line(e, rank_type(e), buf, len);
	/* the next symbol bounds this one: a boundary only, it resolves nothing itself */
	if (next && n >= 0 && (size_t)n < len)
		m = put_line(next, 'b', buf + n, len - n);
	return n < 0 || m < 0 ? -EINVAL : n + m;
}

size_t ksyms__ranges(const struct ksyms *k, bool (*match)(const char *name), unsigned long *lo,
		     unsigned long *hi, size_t max)
{
	size_t i, j, n = 0;
	unsigned long end;

	for (i = 0; k && i < k->n; i++) {
		const struct kentry *e = &k->ents[i];
		const struct ksym *s;

		if (!e->text || e->sym.module || !match(e->sym.name))
			continue;
		/* where the function ends is where ksyms__resolve() stops saying it */
		s = ksyms__resolve(k, e->sym.addr);
		if (s != &e->sym)
			continue;	/* an alias that loses to another name */
		for (j = i + 1; j < k->n && k->ents[j].sym.addr == e->sym.addr; j++)
			;
		end = j < k->n ? k->ents[j].sym.addr : e->sym.addr + 1;
		if (n && hi[n - 1] == e->sym.addr) {
			hi[n - 1] = end;
			continue;
		}
		if (n == max)
			return max + 1;
		lo[n] = e->sym.addr;
		hi[n++] = end;
	}
	return n;
}
