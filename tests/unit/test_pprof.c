/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pprof output: a synthetic profile encoded, gunzipped and decoded back
 * with protobuf-c, every table checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "detect.h"
#include "gfp.h"
#include "kallsyms_text.h"
#include "pprof.h"
#include "profile.h"
#include "profile.pb-c.h"

#define A	0xffffffff81000000UL	/* vmlinux: func_a */
#define B	0xffffffff81000100UL	/* vmlinux: func_b */
#define M	0xffffffffc0000000UL	/* module kmstest: mod_fn */

static const char kallsyms[] =
	"ffffffff81000000 T func_a\n"
	"ffffffff81000100 t func_b\n"
	"ffffffff81000200 T func_end\n"
	"ffffffffc0000000 t mod_fn\t[kmstest]\n"
	"ffffffffc0000100 t mod_end\t[kmstest]\n";

static const char gfp_fmt[] =
	"__print_flags(REC->gfp_flags, \"|\", {0xcc0, \"GFP_KERNEL\"}, {0x100, \"__GFP_ZERO\"})";

struct fixture {
	struct ksyms *ks;
	struct gfp_table *gfp;
	struct kms_quality q;
	struct profile p;
	struct profile_sample s[3];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct profile_sample *s = f->s;

	if (!f)
		return -1;
	f->ks = ksyms_from_text(kallsyms);
	if (!f->ks || gfp_table__load_format(&f->gfp, gfp_fmt))
		return -1;
	/* kmalloc from func_a <- func_b */
	s[0] = (struct profile_sample){ .family = KMS_FAM_KMALLOC, .nframes = 2,
		.frames = { A + 0x10, B + 0x20 }, .gfp = 0xcc0, .order = -1, .nested = -1,
		.pid = 42, .comm = "cat", .v = { 3, 300, 1, 100 } };
	/* pages from the module <- func_a (the same location as above), then an unknown address */
	s[1] = (struct profile_sample){ .family = KMS_FAM_PAGE, .nframes = 3,
		.frames = { M + 8, A + 0x10, 0xffffffff90000000UL }, .gfp = 0xdc0,
		.gfp_mixed = true, .order = 2, .nested = NEST_SLAB, .pid = 7,
		.v = { 1, 16384, 1, 16384 } };
	/* no frame at all; a comm that is not UTF-8 (protobuf strings must be) */
	s[2] = (struct profile_sample){ .family = KMS_FAM_CACHE, .gfp = 0, .order = -1,
		.nested = -1, .cache = "dentry", .pid = 9, .comm = "\xff\xfe",
		.v = { 5, 960, 0, 0 } };
	f->q.duration_ns = 2500000000ULL;
	f->q.lost = 4;
	f->p = (struct profile){
		.o = { .scope = PROFILE_ALL, .kernel = "6.18.0-test", .source = "file",
		       .command = "stat", .quality = &f->q, .start_realtime_ns = 1700000000123456789ULL,
		       .ksyms = f->ks, .gfp = f->gfp },
		.samples = s, .nr = 3, .duration_ns = f->q.duration_ns, .lost = 4, .complete = false,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ksyms__free(f->ks);
	gfp_table__free(f->gfp);
	free(f);
	return 0;
}

static Perftools__Profiles__Profile *decode(const void *gz, size_t len)
{
	static unsigned char raw[1 << 20];
	Perftools__Profiles__Profile *pr;
	z_stream z = { 0 };

	/* 15 + 16: gzip only, as pprof reads files: a zlib or raw stream fails here */
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)gz;
	z.avail_in = len;
	z.next_out = raw;
	z.avail_out = sizeof(raw);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	pr = perftools__profiles__profile__unpack(NULL, z.total_out, raw);
	inflateEnd(&z);
	assert_non_null(pr);
	return pr;
}

static const char *str(const Perftools__Profiles__Profile *pr, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < pr->n_string_table);
	return pr->string_table[i];
}

/* the element of the table arr[0..n) whose id is want (pprof ids need not be indexes) */
#define by_id(arr, n, want)						\
	({								\
		__typeof__(*(arr)) r_ = NULL;				\
		for (size_t i_ = 0; i_ < (n); i_++)			\
			if ((arr)[i_]->id == (want))			\
				r_ = (arr)[i_];				\
		assert_non_null(r_);					\
		r_;							\
	})
#define loc(pr, id)	by_id((pr)->location, (pr)->n_location, id)
#define func(pr, id)	by_id((pr)->function, (pr)->n_function, id)
#define mapping(pr, id)	by_id((pr)->mapping, (pr)->n_mapping, id)

/* a location's function name, "" when it has none */
static const char *loc_func(const Perftools__Profiles__Profile *pr, uint64_t id)
{
	const Perftools__Profiles__Location *l = loc(pr, id);

	if (!l->n_line)
		return "";
	assert_int_equal(l->n_line, 1);
	return str(pr, func(pr, l->line[0]->function_id)->name);
}

static const char *loc_map(const Perftools__Profiles__Profile *pr, uint64_t id)
{
	const Perftools__Profiles__Location *l = loc(pr, id);
	const Perftools__Profiles__Mapping *m;

	if (!l->mapping_id)
		return "";
	m = mapping(pr, l->mapping_id);
	assert_true(l->address >= m->memory_start && l->address < m->memory_limit);
	assert_true(m->has_functions);
	assert_false(m->has_filenames);
	return str(pr, m->filename);
}

/* the sample's labels as "key=str" or "key=#num", joined by ',' */
static void labels(const Perftools__Profiles__Profile *pr, const Perftools__Profiles__Sample *s,
		   char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n_label; i++) {
		const Perftools__Profiles__Label *l = s->label[i];

		if (l->str)
			n += snprintf(buf + n, len - n, "%s%s=%s", i ? "," : "", str(pr, l->key),
				      str(pr, l->str));
		else
			n += snprintf(buf + n, len - n, "%s%s=#%ld", i ? "," : "", str(pr, l->key),
				      (long)l->num);
		assert_true(n < len);
	}
}

static void test_tables(void **state)
{
	static const char *const types[] = { "alloc_objects", "alloc_space", "inuse_objects",
					     "inuse_space" };
	static const char *const units[] = { "count", "bytes", "count", "bytes" };
	struct fixture *f = *state;
	Perftools__Profiles__Profile *pr;
	const Perftools__Profiles__Sample *s;
	void *gz;
	size_t len, i;
	char lb[512];

	assert_int_equal(pprof__encode(&f->p, PV_ALLOC_BYTES, &gz, &len), 0);
	pr = decode(gz, len);

	assert_true(pr->n_string_table > 0);
	assert_string_equal(pr->string_table[0], "");
	/* every string once */
	for (i = 1; i < pr->n_string_table; i++)
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(pr->string_table[i], pr->string_table[j]);

	assert_int_equal(pr->n_sample_type, PV_NR);
	for (i = 0; i < PV_NR; i++) {
		assert_string_equal(str(pr, pr->sample_type[i]->type), types[i]);
		assert_string_equal(str(pr, pr->sample_type[i]->unit), units[i]);
	}
	assert_string_equal(str(pr, pr->default_sample_type), "alloc_space");
	assert_non_null(pr->period_type);
	assert_string_equal(str(pr, pr->period_type->type), "space");
	assert_string_equal(str(pr, pr->period_type->unit), "bytes");
	assert_int_equal(pr->period, 1);
	assert_int_equal(pr->time_nanos, 1700000000123456789LL);
	assert_int_equal(pr->duration_nanos, 2500000000LL);
	assert_int_equal(pr->n_comment, 2);
	assert_string_equal(str(pr, pr->comment[0]), "kmemscope stat: kernel 6.18.0-test, file");
	assert_string_equal(str(pr, pr->comment[1]),
			    "incomplete: 4 records lost or missed, values may fall short");

	assert_int_equal(pr->n_sample, 3);
	s = pr->sample[0];
	assert_int_equal(s->n_value, 4);
	assert_int_equal(s->value[0], 3);
	assert_int_equal(s->value[1], 300);
	assert_int_equal(s->value[2], 1);
	assert_int_equal(s->value[3], 100);
	assert_int_equal(s->n_location_id, 2);
	assert_string_equal(loc_func(pr, s->location_id[0]), "func_a");
	assert_string_equal(loc_func(pr, s->location_id[1]), "func_b");
	assert_string_equal(loc_map(pr, s->location_id[0]), "[kernel]");
	assert_int_equal(loc(pr, s->location_id[0])->address, A + 0x10);
	assert_int_equal(loc(pr, s->location_id[1])->address, B + 0x20);
	labels(pr, s, lb, sizeof(lb));
	assert_string_equal(lb, "family=kmalloc,gfp=GFP_KERNEL,pid=#42,comm=cat");

	s = pr->sample[1];
	assert_int_equal(s->value[1], 16384);
	assert_int_equal(s->value[3], 16384);
	assert_int_equal(s->n_location_id, 3);
	assert_string_equal(loc_func(pr, s->location_id[0]), "mod_fn");
	assert_string_equal(loc_map(pr, s->location_id[0]), "kmstest");
	/* one location per address, shared by the samples */
	assert_int_equal(s->location_id[1], pr->sample[0]->location_id[0]);
	/* an address no symbol holds: kept, with no function and no mapping */
	assert_string_equal(loc_func(pr, s->location_id[2]), "");
	assert_string_equal(loc_map(pr, s->location_id[2]), "");
	assert_int_equal(loc(pr, s->location_id[2])->address, 0xffffffff90000000UL);
	labels(pr, s, lb, sizeof(lb));
	assert_string_equal(lb, "family=page,gfp=GFP_KERNEL|__GFP_ZERO,gfp_mixed=true,order=#2,"
			    "nested=slab,pid=#7");

	/* no frame: the family's own frame, so its bytes still show in pprof -top */
	s = pr->sample[2];
	assert_int_equal(s->value[0], 5);
	assert_int_equal(s->n_location_id, 1);
	assert_string_equal(loc_func(pr, s->location_id[0]), "[kmem_cache]");
	assert_int_equal(loc(pr, s->location_id[0])->address, 0);
	labels(pr, s, lb, sizeof(lb));
	assert_string_equal(lb, "family=kmem_cache,gfp=none,cache=dentry,pid=#9,comm=??");

	/* the tables hold what the samples use, nothing more */
	assert_int_equal(pr->n_location, 5);
	assert_int_equal(pr->n_function, 4);
	assert_int_equal(pr->n_mapping, 2);
	for (i = 0; i < pr->n_function; i++)
		assert_int_equal(pr->function[i]->filename, 0);
	for (i = 0; i < pr->n_mapping; i++)
		if (!strcmp(str(pr, pr->mapping[i]->filename), "[kernel]")) {
			assert_int_equal(pr->mapping[i]->memory_start, A + 0x10);
			assert_int_equal(pr->mapping[i]->memory_limit, B + 0x21);
		}

	perftools__profiles__profile__free_unpacked(pr, NULL);
	free(gz);
}

static void test_inuse_leaks(void **state)
{
	struct fixture *f = *state;
	struct profile p = f->p;
	Perftools__Profiles__Profile *pr;
	void *gz;
	size_t len;

	p.o.scope = PROFILE_LEAKS;
	p.o.min_age_ns = 1500000000ULL;
	p.o.ksyms = NULL;	/* no symbols: addresses only */
	p.o.gfp = NULL;
	p.complete = true;
	p.nr = 1;
	assert_int_equal(pprof__encode(&p, PV_INUSE_BYTES, &gz, &len), 0);
	pr = decode(gz, len);
	assert_string_equal(str(pr, pr->default_sample_type), "inuse_space");
	assert_int_equal(pr->n_comment, 2);
	assert_string_equal(str(pr, pr->comment[1]), "inuse: leak candidates at least 1500 ms old");
	assert_int_equal(pr->n_function, 0);
	assert_int_equal(pr->n_mapping, 0);
	assert_int_equal(pr->n_location, 2);
	assert_int_equal(loc(pr, pr->sample[0]->location_id[0])->address, A + 0x10);
	/* no GFP names: the value in hex */
	assert_string_equal(str(pr, pr->sample[0]->label[1]->key), "gfp");
	assert_string_equal(str(pr, pr->sample[0]->label[1]->str), "0xcc0");
	perftools__profiles__profile__free_unpacked(pr, NULL);
	free(gz);
}

static void test_empty_and_errors(void **state)
{
	struct fixture *f = *state;
	struct profile p = f->p;
	Perftools__Profiles__Profile *pr;
	void *gz;
	size_t len;

	p.nr = 0;
	assert_int_equal(pprof__encode(&p, PV_ALLOC_COUNT, &gz, &len), 0);
	pr = decode(gz, len);
	assert_int_equal(pr->n_sample, 0);
	assert_int_equal(pr->n_sample_type, PV_NR);
	assert_string_equal(str(pr, pr->default_sample_type), "alloc_objects");
	perftools__profiles__profile__free_unpacked(pr, NULL);
	free(gz);

	assert_int_equal(pprof__encode(&p, PV_NR, &gz, &len), -EINVAL);
	assert_int_equal(pprof__encode(&p, -1, &gz, &len), -EINVAL);
	assert_int_equal(pprof__write(&p, PV_ALLOC_BYTES, "/nonexistent/dir/x.pb.gz"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_inuse_leaks),
		cmocka_unit_test(test_empty_and_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
