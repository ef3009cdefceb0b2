/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The consumers under test are fed as the session feeds them: through the
 * pipeline (filter, live-object store, aggregator, detectors). One pipeline
 * at a time per test file.
 */
#ifndef KMS_TEST_PIPE_H
#define KMS_TEST_PIPE_H

#include "detect.h"
#include "pipeline.h"

static struct pipeline test_pipe;

static inline struct agg *pipe_agg(void)
{
	struct pipeline_opts po = {};

	assert_int_equal(pipeline__init(&test_pipe, &po), 0);
	return test_pipe.agg;
}

static inline struct detect *pipe_detect(const struct detect_opts *o)
{
	/* the stacks and symbols the detectors read also tell what is nested */
	struct pipeline_opts po = { .detect = o, .stack = o->stack, .stack_ctx = o->stack_ctx };

	assert_int_equal(pipeline__init(&test_pipe, &po), 0);
	pipeline__set_ksyms(&test_pipe, o->ksyms);
	return test_pipe.detect;
}

static inline void pipe_event(struct kms_event *e)
{
	pipeline__event(&test_pipe, e);
}

static inline void pipe_meta(const struct kms_meta *m)
{
	pipeline__meta(&test_pipe, m);
}

static inline void pipe_done(void)
{
	pipeline__fini(&test_pipe);
}

#endif
