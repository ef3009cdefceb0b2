/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The profile model (profile.h), read from the detector's groups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agg.h"
#include "detect.h"
#include "ksyms.h"
#include "profile.h"

static const struct {
	const char *name, *unit, *text;
} values[PV_NR] = {
	[PV_ALLOC_COUNT] = { "alloc_count", "count", "allocations" },
	[PV_ALLOC_BYTES] = { "alloc_bytes", "bytes", "bytes allocated" },
	[PV_INUSE_COUNT] = { "inuse_count", "count", "objects outstanding" },
	[PV_INUSE_BYTES] = { "inuse_bytes", "bytes", "bytes outstanding" },
};

int profile_value_parse(const char *name)
{
	for (int v = 0; name && v < PV_NR; v++)
		if (!strcmp(name, values[v].name))
			return v;
	return -1;
}

const char *profile_value_name(int v)
{
	return v >= 0 && v < PV_NR ? values[v].name : NULL;
}

const char *profile_value_unit(int v)
{
	return v >= 0 && v < PV_NR ? values[v].unit : NULL;
}

const char *profile_value_text(int v)
{
	return v >= 0 && v < PV_NR ? values[v].text : NULL;
}

static void fill(struct profile_sample *s, const struct detect *d,
		 const struct detect_group *g)
{
	s->family = g->family;
	s->nframes = detect__frames(d, g->stack_id, g->site, s->frames, KMS_MAX_STACK);
	s->gfp = g->gfp;
	s->gfp_mixed = g->gfp_mixed;
	s->order = g->order;
	s->nested = g->nested;
	s->cache = detect__obj_name(d, g->obj);
	s->pid = g->pid;
	s->comm = detect__comm(d, g->pid);
	s->v[PV_ALLOC_COUNT] = g->allocs;
	s->v[PV_ALLOC_BYTES] = g->alloc_bytes;
}

/* the leaks report's candidates: objects at least min_age old, judged as it judges them */
static int build_leaks(struct profile *p, const struct detect *d)
{
	struct detect_leak *rows;
	size_t nr, i;
	int err;

	err = detect__leaks(d, p->o.now, p->o.min_age_ns, &rows, &nr);
	if (err)
		return err;
	p->samples = calloc(nr ? nr : 1, sizeof(*p->samples));
	if (!p->samples) {
		free(rows);
		return -ENOMEM;
	}
	for (i = 0; i < nr; i++) {
		const struct detect_group *g = detect__group(d, rows[i].group);
		struct profile_sample *s;

		if (!rows[i].count || detect__leak_class(d, g, p->o.include_retained) != DLC_LEAK)
			continue;
		s = &p->samples[p->nr++];
		fill(s, d, g);
		s->v[PV_INUSE_COUNT] = rows[i].count;
		s->v[PV_INUSE_BYTES] = rows[i].bytes;
	}
	free(rows);
	return 0;
}

static int build_all(struct profile *p, const struct detect *d)
{
	size_t nr = detect__nr_groups(d), i;

	p->samples = calloc(nr ? nr : 1, sizeof(*p->samples));
	if (!p->samples)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		const struct detect_group *g = detect__group(d, i);
		struct profile_sample *s;

		if (!g->allocs)
			continue;
		s = &p->samples[p->nr++];
		fill(s, d, g);
		s->v[PV_INUSE_COUNT] = g->outstanding;
		s->v[PV_INUSE_BYTES] = g->outstanding_bytes;
	}
	return 0;
}

int profile__build(struct profile *p, const struct detect *d, const struct profile_opts *o)
{
	const struct kms_quality *q = o->quality;
	int err;

	memset(p, 0, sizeof(*p));
	p->o = *o;
	if (q) {
		p->duration_ns = q->duration_ns;
		p->lost = q->lost + q->misses;
		p->complete = kms_quality_complete(q);
	}
	err = o->scope == PROFILE_LEAKS ? build_leaks(p, d) : build_all(p, d);
	if (err)
		return err;
	for (size_t i = 0; i < p->nr; i++)
		for (int v = 0; v < PV_NR; v++)
			p->total[v] += p->samples[i].v[v];
	return 0;
}

void profile__free(struct profile *p)
{
	free(p->samples);
	memset(p, 0, sizeof(*p));
}

void profile__frame(const struct profile *p, __u64 addr, struct profile_frame *f)
{
	const struct ksym *k = p->o.ksyms ? ksyms__resolve(p->o.ksyms, addr) : NULL;
	const struct ksrc *src;

	memset(f, 0, sizeof(*f));
	f->addr = addr;
	if (!k)
		return;
	f->func = k->name;
	f->offset = addr - k->addr;
	f->module = k->module;
	src = ksyms__source(p->o.ksyms, addr);
	if (src) {
		f->file = src->file;
		f->line = src->line;
	}
}

int profile__frame_name(const struct profile *p, __u64 addr, char *buf, size_t len)
{
	struct profile_frame f;

	profile__frame(p, addr, &f);
	if (!f.func)
		return snprintf(buf, len, "0x%llx", (unsigned long long)addr);
	if (f.module)
		return snprintf(buf, len, "%s [%s]", f.func, f.module);
	return snprintf(buf, len, "%s", f.func);
}

int profile__family_frame(int family, char *buf, size_t len)
{
	const char *name = kms_family_name(family);

	return snprintf(buf, len, "[%s]", name ? name : "unknown");
}
