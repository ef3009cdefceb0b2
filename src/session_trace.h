/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What session.c does with trace files (session_trace.c): record a live
 * session (--record), or run a session on a recorded file (-i).
 */
#ifndef KMS_SESSION_TRACE_H
#define KMS_SESSION_TRACE_H

#include <linux/types.h>

struct session;
struct session_opts;
struct kms_quality;

/*
 * ---- recording: before the programs attach (the file is created and takes
 * what calibration makes), when tracing starts, at each poll, at the end ----
 */
int session_trace__record(struct session *s, const struct session_opts *o);
int session_trace__begin(struct session *s, const struct session_opts *o);
/* seal a block every second; 1 after a write error (recording stops), else 0 */
int session_trace__tick(struct session *s, __u64 now);
/* the END block with the session's final counters; 1 on an error */
int session_trace__finish(struct session *s, const struct kms_quality *q);

/* ---- replay ---- */
/* the session's environment from the file o->input; an exit status */
int session_trace__open(struct session *s, const struct session_opts *o);
/* feed the file's records to the pipeline, calling tick every interval of trace time */
int session_trace__replay(struct session *s, double interval,
			  int (*tick)(struct session *s, void *ctx), void *ctx);

/* session.c: the pipeline for the session's environment, either source */
int session__pipeline(struct session *s, const struct session_opts *o, bool deferred_traced,
		      unsigned int page_shift,
		      int (*stack)(void *ctx, int stack_id, __u64 *ips, int max));

#endif
