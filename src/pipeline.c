/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The record path (see pipeline.h). */
#include <errno.h>
#include <string.h>
#include "agg.h"
#include "deferred.h"
#include "detect.h"
#include "pipeline.h"

int pipeline__init(struct pipeline *p, const struct pipeline_opts *o)
{
	memset(p, 0, sizeof(*p));
	p->defer = deferred__new();
	p->filter = filter__new(&o->filter);
	p->agg = agg__new();
	if (!p->defer || !p->filter || !p->agg)
		return -ENOMEM;
	if (o->detect) {
		p->detect = detect__new(o->detect);
		if (!p->detect)
			return -ENOMEM;
	}
	return 0;
}

void pipeline__fini(struct pipeline *p)
{
	detect__free(p->detect);
	agg__free(p->agg);
	filter__free(p->filter);
	deferred__free(p->defer);
	memset(p, 0, sizeof(*p));
}

void pipeline__observe(struct pipeline *p, struct kms_event *e)
{
	deferred__event(p->defer, e);
}

void pipeline__event(struct pipeline *p, struct kms_event *e)
{
	deferred__event(p->defer, e);
	if (!filter__event(p->filter, e))
		return;
	if (p->settling) {
		if (!kms_ev_is_free(e->type)) {
			p->after_window++;
			return;
		}
		e->ctx |= KMS_CTX_OUTSIDE;
	}
	agg__event(p->agg, e);
	if (p->detect)
		detect__event(p->detect, e);
}

void pipeline__meta(struct pipeline *p, const struct kms_meta *m)
{
	filter__meta(p->filter, m);
	agg__meta(p->agg, m);
	if (p->detect)
		detect__meta(p->detect, m);
}

void pipeline__settle(struct pipeline *p)
{
	p->settling = true;
}

__u64 pipeline__filtered(const struct pipeline *p)
{
	const struct filter_stats *st = filter__stats(p->filter);

	return st->filtered + st->skipped;
}
