// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A profile as pprof's profile.proto, through the protobuf-c code the build
 * generates from third_party/pprof/profile.proto, gzipped with zlib.
 *
 * The tables: one Location per address (the address is kept, so
 * `pprof -addresses` and disassembly work), with its Line's number when a
 * source line was recorded (user frames with DWARF; kallsyms has none), one
 * Function per symbol and source file, one Mapping per module
 * ("[kernel]" for vmlinux) spanning the addresses seen in it. Every Mapping
 * says has_functions, so pprof does not look for binaries to symbolize with.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <zlib.h>
#include "agg.h"
#include "detect.h"
#include "gfp.h"
#include "kvec.h"
#include "log.h"
#include "pprof.h"
#include "profile.h"
#include "profile.pb-c.h"
#include "rows.h"

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Label pb_label;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__ValueType pb_value_type;

/* the sample types of Go's heap profiles, which pprof knows, in enum profile_value order */
static const char *const value_type[PV_NR] = {
	[PV_ALLOC_COUNT] = "alloc_objects",
	[PV_ALLOC_BYTES] = "alloc_space",
	[PV_INUSE_COUNT] = "inuse_objects",
	[PV_INUSE_BYTES] = "inuse_space",
};

/* family, gfp, gfp_mixed, order, nested, cache, pid, comm */
#define PP_LABELS	8
#define PP_KERNEL	"[kernel]"

/* kvec items: each key first */
struct pp_loc {
	__u64 addr;
	__u64 family;		/* 0, or family + 1 for a sample with no frame at all */
	__u64 func_id;		/* 0: the address resolves to no symbol */
	__u64 map_id;		/* 0: unknown */
	__u64 line;		/* source line, 0: none */
};

struct pp_func {
	int64_t name;		/* string indexes */
	int64_t module;
	int64_t file;		/* 0 (""): no source line */
};

struct pp_map {
	int64_t name;
	__u64 lo, hi;		/* the lowest and highest address seen in it */
};

struct pp {
	const struct profile *p;
	json_t *index;		/* string -> its index in strs */
	char **strs;
	size_t nr_strs, cap_strs;
	struct kvec locs, funcs, maps;
	int err;		/* the first failure: the tables are incomplete */
};

/* a string's index in the string table, added if new (0, "", after a failure) */
static int64_t pp_str(struct pp *b, const char *s)
{
	json_t *v = json_object_get(b->index, s), *clean;
	char *dup;

	if (v)
		return json_integer_value(v);
	if (b->err)
		return 0;
	if (b->nr_strs == b->cap_strs) {
		size_t cap = b->cap_strs ? b->cap_strs * 2 : 256;
		char **n = realloc(b->strs, cap * sizeof(*n));

		if (!n)
			goto nomem;
		b->strs = n;
		b->cap_strs = cap;
	}
	/*
	 * protobuf strings are UTF-8, and Parca's and Pyroscope's decoders check:
	 * a comm that is not (any bytes) keeps its ASCII, as in the JSON reports
	 */
	clean = rows__json_str(s);
	dup = clean ? strdup(json_string_value(clean)) : NULL;
	json_decref(clean);
	/* the key is the name as given: it is only looked up, never written */
	if (!dup || json_object_set_new_nocheck(b->index, s, json_integer(b->nr_strs))) {
		free(dup);
		goto nomem;
	}
	b->strs[b->nr_strs] = dup;
	return b->nr_strs++;
nomem:
	b->err = -ENOMEM;
	return 0;
}

static __u64 pp_map(struct pp *b, int64_t name, __u64 addr)
{
	bool created;
	long i = kvec__get(&b->maps, &name, &created);
	struct pp_map *m;

	if (i < 0) {
		b->err = -ENOMEM;
		return 0;
	}
	m = kvec__at(&b->maps, i);
	if (created || addr < m->lo)
		m->lo = addr;
	if (created || addr > m->hi)
		m->hi = addr;
	return i + 1;
}

static __u64 pp_func(struct pp *b, int64_t name, int64_t module, int64_t file)
{
	struct pp_func key = { name, module, file };
	bool created;
	long i = kvec__get(&b->funcs, &key, &created);

	if (i < 0) {
		b->err = -ENOMEM;
		return 0;
	}
	return i + 1;
}

/* the Location id of a kernel address */
static __u64 pp_loc(struct pp *b, __u64 addr)
{
	struct pp_loc key = { addr, 0 }, *l;
	struct profile_frame f;
	__u64 func_id = 0, map_id = 0;
	bool created;
	long i = kvec__get(&b->locs, &key, &created);

	if (i < 0) {
		b->err = -ENOMEM;
		return 0;
	}
	if (!created)
		return i + 1;
	profile__frame(b->p, addr, &f);
	if (f.func) {
		int64_t module = pp_str(b, f.module ? f.module : PP_KERNEL);

		func_id = pp_func(b, pp_str(b, f.func), module, f.file ? pp_str(b, f.file) : 0);
		map_id = pp_map(b, module, addr);
	}
	l = kvec__at(&b->locs, i);
	l->func_id = func_id;
	l->map_id = map_id;
	l->line = f.line;
	return i + 1;
}

/* a sample with no frame: one Location, a Function named like the family ("[kmalloc]") */
static __u64 pp_family_loc(struct pp *b, int family)
{
	struct pp_loc key = { 0, family + 1 }, *l;
	char name[64];
	bool created;
	long i = kvec__get(&b->locs, &key, &created);

	if (i < 0) {
		b->err = -ENOMEM;
		return 0;
	}
	if (created) {
		__u64 func_id;

		profile__family_frame(family, name, sizeof(name));
		func_id = pp_func(b, pp_str(b, name), 0, 0);
		l = kvec__at(&b->locs, i);
		l->func_id = func_id;
	}
	return i + 1;
}

static void label_str(struct pp *b, pb_label *l, const char *key, const char *val)
{
	perftools__profiles__label__init(l);
	l->key = pp_str(b, key);
	l->str = pp_str(b, val);
}

static void label_num(struct pp *b, pb_label *l, const char *key, int64_t num)
{
	perftools__profiles__label__init(l);
	l->key = pp_str(b, key);
	l->num = num;
}

/* the labels of a sample into l[0..PP_LABELS), their number */
static size_t sample_labels(struct pp *b, const struct profile_sample *s, pb_label *l)
{
	const struct profile *p = b->p;
	char gfp[256];
	size_t n = 0;

	label_str(b, &l[n++], "family", kms_family_name(s->family));
	if (p->o.gfp)
		gfp_table__decode(p->o.gfp, s->gfp, gfp, sizeof(gfp));
	else
		snprintf(gfp, sizeof(gfp), "%#x", s->gfp);
	label_str(b, &l[n++], "gfp", gfp);
	/* gfp is the first allocation's: say when later ones asked for another */
	if (s->gfp_mixed)
		label_str(b, &l[n++], "gfp_mixed", "true");
	if (s->order >= 0)
		label_num(b, &l[n++], "order", s->order);
	if (s->nested >= 0)
		label_str(b, &l[n++], "nested", nest_name(s->nested));
	if (s->cache)
		label_str(b, &l[n++], "cache", s->cache);
	label_num(b, &l[n++], "pid", s->pid);
	if (s->comm)
		label_str(b, &l[n++], "comm", s->comm);
	return n;
}

static int gzip(const void *in, size_t n, void **out, size_t *len)
{
	z_stream z = { 0 };
	void *o;
	int ret;

	if (n > UINT_MAX)
		return -EFBIG;
	/* 15 + 16: a gzip wrapper around the deflate stream, as pprof expects on disk */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
		return -ENOMEM;
	o = malloc(deflateBound(&z, n));
	if (!o) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = n;
	z.next_out = o;
	z.avail_out = deflateBound(&z, n);
	ret = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (ret != Z_STREAM_END) {
		free(o);
		return -EIO;
	}
	*out = o;
	*len = z.total_out;
	return 0;
}

/* human-readable notes pprof prints with the profile (Profile.comment) */
static size_t profile_comments(struct pp *b, int64_t *c)
{
	const struct profile *p = b->p;
	char s[256];
	size_t n = 0;

	snprintf(s, sizeof(s), "kmemscope %s: kernel %s, %s", p->o.command ?: "?",
		 p->o.kernel ?: "unknown", p->o.source ?: "live");
	c[n++] = pp_str(b, s);
	if (p->o.scope == PROFILE_LEAKS) {
		snprintf(s, sizeof(s), "inuse: leak candidates at least %llu ms old",
			 (unsigned long long)(p->o.min_age_ns / 1000000));
		c[n++] = pp_str(b, s);
	}
	if (!p->complete) {
		snprintf(s, sizeof(s), "incomplete: %llu records lost or missed, values may fall "
			 "short", (unsigned long long)p->lost);
		c[n++] = pp_str(b, s);
	}
	return n;
}

int pprof__encode(const struct profile *p, int deflt, void **buf, size_t *len)
{
	struct pp b = { .p = p };
	pb_profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;
	pb_value_type vt[PV_NR], *vtp[PV_NR], period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	pb_sample *smp = NULL, **smpp = NULL;
	pb_label *lab = NULL, **labp = NULL;
	pb_location *loc = NULL, **locp = NULL;
	pb_line *line = NULL, **linep = NULL;
	pb_function *fn = NULL, **fnp = NULL;
	pb_mapping *map = NULL, **mapp = NULL;
	uint64_t *ids = NULL;
	int64_t *vals = NULL;
	int64_t comments[4];
	size_t i, nids = 0, k, nl = 0, size;
	void *raw = NULL;
	int err = -ENOMEM;

	if (deflt < 0 || deflt >= PV_NR)
		return -EINVAL;
	kvec__init(&b.locs, sizeof(struct pp_loc), offsetof(struct pp_loc, func_id));
	kvec__init(&b.funcs, sizeof(struct pp_func), sizeof(struct pp_func));
	kvec__init(&b.maps, sizeof(struct pp_map), sizeof(int64_t));
	b.index = json_object();
	if (!b.index)
		goto out;
	pp_str(&b, "");		/* string_table[0] must be "" */

	for (i = 0; i < p->nr; i++)
		nids += p->samples[i].nframes ? p->samples[i].nframes : 1;
	ids = calloc(nids ? nids : 1, sizeof(*ids));
	vals = calloc(p->nr * PV_NR + 1, sizeof(*vals));
	smp = calloc(p->nr + 1, sizeof(*smp));
	smpp = calloc(p->nr + 1, sizeof(*smpp));
	lab = calloc(p->nr * PP_LABELS + 1, sizeof(*lab));
	labp = calloc(p->nr * PP_LABELS + 1, sizeof(*labp));
	if (!ids || !vals || !smp || !smpp || !lab || !labp)
		goto out;
	for (i = 0, k = 0; i < p->nr; i++) {
		const struct profile_sample *s = &p->samples[i];
		pb_sample *m = &smp[i];
		int f;

		perftools__profiles__sample__init(m);
		m->location_id = &ids[k];
		if (!s->nframes)
			ids[k++] = pp_family_loc(&b, s->family);
		for (f = 0; f < s->nframes; f++)
			ids[k++] = pp_loc(&b, s->frames[f]);
		m->n_location_id = &ids[k] - m->location_id;
		m->value = &vals[i * PV_NR];
		m->n_value = PV_NR;
		for (f = 0; f < PV_NR; f++)
			m->value[f] = s->v[f];
		m->label = &labp[nl];
		m->n_label = sample_labels(&b, s, &lab[nl]);
		for (f = 0; f < (int)m->n_label; f++, nl++)
			labp[nl] = &lab[nl];
		smpp[i] = m;
	}
	pr.sample = smpp;
	pr.n_sample = p->nr;

	for (i = 0; i < PV_NR; i++) {
		perftools__profiles__value_type__init(&vt[i]);
		vt[i].type = pp_str(&b, value_type[i]);
		vt[i].unit = pp_str(&b, profile_value_unit(i));
		vtp[i] = &vt[i];
	}
	pr.sample_type = vtp;
	pr.n_sample_type = PV_NR;
	pr.default_sample_type = vt[deflt].type;
	/* every allocation is traced, none sampled: a period of one byte, as Go writes "space" */
	period.type = pp_str(&b, "space");
	period.unit = pp_str(&b, "bytes");
	pr.period_type = &period;
	pr.period = 1;
	pr.time_nanos = p->o.start_realtime_ns;
	pr.duration_nanos = p->duration_ns;
	pr.n_comment = profile_comments(&b, comments);
	pr.comment = comments;

	loc = calloc(b.locs.nr + 1, sizeof(*loc));
	locp = calloc(b.locs.nr + 1, sizeof(*locp));
	line = calloc(b.locs.nr + 1, sizeof(*line));
	linep = calloc(b.locs.nr + 1, sizeof(*linep));
	fn = calloc(b.funcs.nr + 1, sizeof(*fn));
	fnp = calloc(b.funcs.nr + 1, sizeof(*fnp));
	map = calloc(b.maps.nr + 1, sizeof(*map));
	mapp = calloc(b.maps.nr + 1, sizeof(*mapp));
	if (b.err || !loc || !locp || !line || !linep || !fn || !fnp || !map || !mapp)
		goto out;
	for (i = 0; i < b.locs.nr; i++) {
		const struct pp_loc *l = kvec__at(&b.locs, i);

		perftools__profiles__location__init(&loc[i]);
		loc[i].id = i + 1;
		loc[i].mapping_id = l->map_id;
		loc[i].address = l->addr;
		if (l->func_id) {
			perftools__profiles__line__init(&line[i]);
			line[i].function_id = l->func_id;
			line[i].line = l->line;
			linep[i] = &line[i];
			loc[i].line = &linep[i];
			loc[i].n_line = 1;
		}
		locp[i] = &loc[i];
	}
	for (i = 0; i < b.funcs.nr; i++) {
		const struct pp_func *f = kvec__at(&b.funcs, i);

		perftools__profiles__function__init(&fn[i]);
		fn[i].id = i + 1;
		fn[i].name = f->name;
		fn[i].system_name = f->name;
		fn[i].filename = f->file;
		fnp[i] = &fn[i];
	}
	for (i = 0; i < b.maps.nr; i++) {
		const struct pp_map *m = kvec__at(&b.maps, i);

		perftools__profiles__mapping__init(&map[i]);
		map[i].id = i + 1;
		map[i].memory_start = m->lo;
		map[i].memory_limit = m->hi + 1;
		map[i].filename = m->name;
		map[i].has_functions = true;
		mapp[i] = &map[i];
	}
	pr.location = locp;
	pr.n_location = b.locs.nr;
	pr.function = fnp;
	pr.n_function = b.funcs.nr;
	pr.mapping = mapp;
	pr.n_mapping = b.maps.nr;
	pr.string_table = b.strs;
	pr.n_string_table = b.nr_strs;

	size = perftools__profiles__profile__get_packed_size(&pr);
	raw = malloc(size ? size : 1);
	if (!raw)
		goto out;
	perftools__profiles__profile__pack(&pr, raw);
	err = gzip(raw, size, buf, len);
out:
	free(raw);
	free(mapp);
	free(map);
	free(fnp);
	free(fn);
	free(linep);
	free(line);
	free(locp);
	free(loc);
	free(labp);
	free(lab);
	free(smpp);
	free(smp);
	free(vals);
	free(ids);
	for (i = 0; i < b.nr_strs; i++)
		free(b.strs[i]);
	free(b.strs);
	json_decref(b.index);
	kvec__fini(&b.maps);
	kvec__fini(&b.funcs);
	kvec__fini(&b.locs);
	return err;
}

int pprof__write(const struct profile *p, int deflt, const char *path)
{
	void *buf;
	size_t len;
	FILE *f;
	int err = pprof__encode(p, deflt, &buf, &len);

	if (err) {
		kms_error("Failed to encode the pprof profile: %s\n", strerror(-err));
		return 1;
	}
	f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len || fflush(f) || ferror(f))
		err = errno ? -errno : -EIO;
	if (f && fclose(f) && !err)
		err = errno ? -errno : -EIO;
	free(buf);
	if (err) {
		kms_error("Failed to write the pprof profile %s: %s\n", path, strerror(-err));
		return 1;
	}
	return 0;
}
