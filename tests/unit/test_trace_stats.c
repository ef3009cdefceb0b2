/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope info's counting (trace_stats.c) and the info command, on files
 * written here with the trace writer: records counted by part (calibration,
 * trace, settle), type and family; a file cut short counted as far as it
 * reads; a file that is not a trace refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <jansson.h>

#include "cli.h"
#include "trace.h"
#include "trace_stats.h"

static char dir[] = "/tmp/kms-test-stats.XXXXXX";

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static struct kms_event ev(int type, __u64 ts, __u64 ptr)
{
	struct kms_event e = { .type = type, .ts = ts, .ptr = ptr, .pid = 42, .stack_id = -1,
			       .bytes_req = 64, .bytes_alloc = 64, .cpu = 1 };

	return e;
}

/*
 * calibration: 1 kmalloc; trace: 3 kmalloc, 2 kfree, 1 page alloc, 1 failure of
 * the page family, a task name; settle: 2 kfree, 1 kmalloc. Two DATA blocks.
 */
static void write_trace(const char *path)
{
	struct trace_writer_opts wo = {};
	struct trace_writer *w;
	struct kms_meta m = { .type = KMS_EV_META_TASK, .ts = 150, .key = 42, .name = "test" };
	struct kms_event e;
	json_t *meta = json_pack("{s:s,s:I}", "tool", "test", "start_ns", (json_int_t)100);
	json_t *end = json_pack("{s:I,s:I,s:{s:I,s:I},s:{s:I,s:I,s:I}}", "stop_ns",
				(json_int_t)900, "window_ns", (json_int_t)700, "quality", "lost",
				(json_int_t)0, "misses", (json_int_t)3, "written", "records",
				(json_int_t)14, "events", (json_int_t)11, "dropped", (json_int_t)0);

	assert_int_equal(trace_writer__open(&w, path, &wo), 0);
	e = ev(KMS_EV_KMALLOC, 50, 0x1000);
	trace_writer__event(w, &e);
	assert_int_equal(trace_writer__begin(w, meta), 0);
	for (int i = 0; i < 3; i++) {
		e = ev(KMS_EV_KMALLOC, 200 + i, 0x2000 + 64 * i);
		trace_writer__event(w, &e);
	}
	trace_writer__meta(w, &m);
	e = ev(KMS_EV_KFREE, 300, 0x2000);
	trace_writer__event(w, &e);
	assert_int_equal(trace_writer__flush(w), 0);
	e = ev(KMS_EV_KFREE, 400, 0x2040);
	trace_writer__event(w, &e);
	e = ev(KMS_EV_PAGE_ALLOC, 410, 0x77);
	trace_writer__event(w, &e);
	e = ev(KMS_EV_ALLOC_FAIL, 420, 0);
	e.order = KMS_FAM_PAGE;
	trace_writer__event(w, &e);
	trace_writer__settle(w);
	e = ev(KMS_EV_KFREE, 800, 0x2080);
	trace_writer__event(w, &e);
	e = ev(KMS_EV_KFREE, 810, 0x1000);
	trace_writer__event(w, &e);
	e = ev(KMS_EV_KMALLOC, 820, 0x3000);
	trace_writer__event(w, &e);
	assert_int_equal(trace_writer__close(w, end), 0);
	json_decref(meta);
	json_decref(end);
}

static void test_count(void **state)
{
	struct trace_reader *r;
	struct trace_counts c;
	const struct trace_read_info *info;
	char path[128], why[192];
	struct stat st;

	path_in(path, sizeof(path), "count.kmt");
	write_trace(path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(trace_reader__open(&r, path, why, sizeof(why)), 0);
	info = trace_reader__info(r);
	assert_true(info->ended);
	assert_int_equal(info->type_blocks[KMS_BLK_META], 1);
	assert_int_equal(info->type_blocks[KMS_BLK_DATA], 2);
	assert_int_equal(info->type_blocks[KMS_BLK_END], 1);
	assert_true(info->created > 0);
	assert_int_equal(trace_stats__count(r, &c, why, sizeof(why)), 0);
	/* 11 events, 1 task name, BEGIN and SETTLE */
	assert_int_equal(c.records, 14);
	assert_int_equal(c.records, info->records);
	assert_int_equal(c.meta, 1);
	assert_int_equal(c.events[TRACE_PART_CALIBRATION], 1);
	assert_int_equal(c.events[TRACE_PART_TRACE], 7);
	assert_int_equal(c.events[TRACE_PART_SETTLE], 3);
	assert_int_equal(c.by_type[TRACE_PART_TRACE][KMS_EV_KMALLOC], 3);
	assert_int_equal(c.by_type[TRACE_PART_TRACE][KMS_EV_KFREE], 2);
	assert_int_equal(c.by_type[TRACE_PART_SETTLE][KMS_EV_KFREE], 2);
	assert_int_equal(c.by_type[TRACE_PART_SETTLE][KMS_EV_KMALLOC], 1);
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_KMALLOC].events, 5);
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_KMALLOC].allocs, 3);
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_KMALLOC].frees, 2);
	/* a failure counts in the family its record names, not as an allocation */
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_PAGE].events, 2);
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_PAGE].allocs, 1);
	assert_int_equal(c.fam[TRACE_PART_TRACE][KMS_FAM_PAGE].fails, 1);
	assert_int_equal(c.fam[TRACE_PART_SETTLE][KMS_FAM_KMALLOC].frees, 2);
	assert_int_equal(c.fam[TRACE_PART_CALIBRATION][KMS_FAM_KMALLOC].allocs, 1);
	/* the trace part's time span, not the calibration's or the settle period's */
	assert_int_equal(c.t_first, 200);
	assert_int_equal(c.t_last, 420);
	trace_reader__free(r);
}

/* cut the file 5 bytes before its END block: into the last DATA block's payload */
static void cut_last_data(const char *path)
{
	static const char magic[4] = { 'K', 'S', 'M', 'B' };	/* KMS_BLOCK_MAGIC on disk */
	char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n, end_at = 0;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(n < sizeof(buf));
	for (size_t i = 0; i + 4 <= n; i++)
		if (!memcmp(buf + i, magic, 4))
			end_at = i;
	assert_true(end_at > 32 + 64);
	assert_int_equal(truncate(path, end_at - 5), 0);
}

/* the file cut in its last DATA block: the first DATA block's records only */
static void test_cut(void **state)
{
	struct trace_reader *r;
	struct trace_counts c;
	const struct trace_read_info *info;
	char path[128], why[192];

	path_in(path, sizeof(path), "cut.kmt");
	write_trace(path);
	cut_last_data(path);
	assert_int_equal(trace_reader__open(&r, path, why, sizeof(why)), 0);
	info = trace_reader__info(r);
	assert_false(info->ended);
	assert_true(info->cut[0] != '\0');
	assert_int_equal(info->type_blocks[KMS_BLK_DATA], 1);
	assert_int_equal(trace_stats__count(r, &c, why, sizeof(why)), 0);
	/* BEGIN, 1 calibration event, 3 kmalloc, the task name, 1 kfree */
	assert_int_equal(c.records, 7);
	assert_int_equal(c.events[TRACE_PART_CALIBRATION], 1);
	assert_int_equal(c.events[TRACE_PART_TRACE], 4);
	assert_int_equal(c.events[TRACE_PART_SETTLE], 0);
	trace_reader__free(r);
}

static json_t *info_json(const char *trace, int *rc)
{
	char out[128];
	char *argv[] = { "kmemscope info", "-i", (char *)trace, "--json", "-o", out, NULL };
	json_error_t err;

	path_in(out, sizeof(out), "info.json");
	unlink(out);
	*rc = cmd_info(6, argv);
	return json_load_file(out, 0, &err);
}

static void test_info_json(void **state)
{
	char path[128];
	json_t *j, *fam;
	int rc;

	path_in(path, sizeof(path), "info.kmt");
	write_trace(path);
	j = info_json(path, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "kmemscope.info");
	assert_true(json_is_true(json_object_get(json_object_get(j, "end"), "ended")));
	assert_false(json_is_true(json_object_get(json_object_get(j, "end"), "cut_short")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "records"),
							    "trace_events")), 7);
	fam = json_array_get(json_object_get(j, "families"), KMS_FAM_KMALLOC);
	assert_string_equal(json_string_value(json_object_get(fam, "family")), "kmalloc");
	assert_int_equal(json_integer_value(json_object_get(fam, "allocs")), 3);
	assert_int_equal(json_integer_value(json_object_get(fam, "settle_frees")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "losses"),
							    "misses")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "time"),
							    "duration_ns")), 800);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "time"),
							    "settle_ns")), 100);
	json_decref(j);

	/* cut short: described, said, exit 0 */
	assert_int_equal(truncate(path, 32 + 64 + 10), 0);
	j = info_json(path, &rc);
	assert_int_equal(rc, 2);	/* the metadata block itself is cut: not a trace */
	json_decref(j);
	write_trace(path);
	cut_last_data(path);
	j = info_json(path, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(json_object_get(j, "end"), "cut_short")));
	assert_false(json_is_true(json_object_get(json_object_get(j, "end"), "ended")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "end"),
							    "recovered_records")), 7);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "losses"),
							      "source")), "last block");
	json_decref(j);
}

static void test_info_bad(void **state)
{
	char path[128];
	char *argv[] = { "kmemscope info", "-i", path, NULL };
	char *noarg[] = { "kmemscope info", NULL };
	FILE *f;

	path_in(path, sizeof(path), "bad.kmt");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a trace at all, but long enough to hold a header", f);
	fclose(f);
	assert_int_equal(cmd_info(3, argv), 2);
	path_in(path, sizeof(path), "missing.kmt");
	assert_int_equal(cmd_info(3, argv), 2);
	assert_int_equal(cmd_info(1, noarg), 2);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_info_json),
		cmocka_unit_test(test_info_bad),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
