/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the detectors' reports share: the verdict on the record stream and the
 * rendering. Lost records make every verdict uncertain, because a lost free looks
 * exactly like a leak.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "detect_report.h"
#include "rows.h"

int detect_report__depth(const struct detect_report_opts *o)
{
	if (o->stack_depth <= 0)
		return 8;
	return o->stack_depth > KMS_MAX_STACK ? KMS_MAX_STACK : o->stack_depth;
}

enum { V_CERTAIN, V_LOST, V_REASON, V_NR };

static const struct row_col verdict_cols[V_NR] = {
	[V_CERTAIN] = { "certain", "records complete", RK_BOOL, ROW_LOUD_FALSE },
	[V_LOST] = { "records_lost", "records lost", RK_U64, .note = "(records or program runs)" },
	[V_REASON] = { "reason", "reason", RK_STR },
};

/*
 * Why the stream is incomplete, in the terms of the quality block: each way a free
 * can go unseen is named with its count, so that a reader knows whether records were
 * lost (ring buffer full), the kernel skipped handlers (recursion), or the file ends early.
 */
static void verdict_reason(const struct kms_quality *q, char *buf, size_t size)
{
	char tasks[320];
	const struct {
		__u64 n;
		const char *what;
	} parts[] = {
		{ q->lost, "records lost (ring buffer full)" },
		{ q->misses, "handler runs the kernel skipped" },
		{ q->pending_lost, "function returns without their entry" },
		{ q->bulk_lost, "bulk-freed pointers not recorded" },
		{ q->softirqs_unseen, "softirq runs in a context where the kernel ran no handler" },
		{ q->tasks_unseen, tasks },
		{ q->out_of_order, "records out of order" },
	};
	size_t len = 0;

	/* the processes the task witness named (quality.unseen_tasks) */
	snprintf(tasks, sizeof(tasks), "runs of tasks in whose context the kernel ran no "
		 "handler%s%s%s", q->unseen_tasks ? " (processes: " : "",
		 q->unseen_tasks ? q->unseen_tasks : "", q->unseen_tasks ? ")" : "");
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && len < size; i++)
		if (parts[i].n)
			len += snprintf(buf + len, size - len, "%s%llu %s", len ? ", " : "",
					(unsigned long long)parts[i].n, parts[i].what);
	if (q->cut_short && len < size)
		len += snprintf(buf + len, size - len, "%sthe trace file was cut short",
				len ? ", " : "");
	if (len < size)
		snprintf(buf + len, size - len, ": a free not seen looks like a leak, so objects "
			 "allocated before one are unconfirmed");
}

struct rows *detect_report__verdict(const struct detect_report_opts *o)
{
	const struct kms_quality *q = o->quality;
	struct rows *t = rows__new("verdict", "Verdict", RS_LINES, true, verdict_cols, V_NR);
	struct row_cell *r = rows__add(t);

	if (!r)
		return t;
	r[V_CERTAIN].u = !q || kms_quality_complete(q);
	r[V_LOST].u = q ? q->lost + q->misses + q->pending_lost : 0;
	if (!r[V_CERTAIN].u) {
		char why[1024];

		verdict_reason(q, why, sizeof(why));
		r[V_REASON].s = rows__keep(t, why, strlen(why) + 1);
	}
	r[V_REASON].null = !r[V_REASON].s;
	return t;
}

int detect_report__out(struct rows *doc, const struct detect_report_opts *o, bool json,
		       FILE *out)
{
	const struct rows_ctx c = { .ksyms = o->ksyms, .gfp = o->gfp };
	int err;

	if (!doc)
		return -ENOMEM;
	err = json ? rows__json_dump(doc, &c, out) : rows__text(doc, &c, out);
	rows__free(doc);
	if (!err && (fflush(out) || ferror(out)))
		err = -EIO;
	return err;
}

const char *const *detect_report__family_names(struct rows *t)
{
	const char *names[KMS_FAM_MAX];

	for (int f = 0; f < KMS_FAM_MAX; f++)
		names[f] = kms_family_name(f);
	return rows__keep(t, names, sizeof(names));
}
