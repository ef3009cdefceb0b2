/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope script: one line per record of a trace file, in stream order,
 * for jq, awk or pandas. The formatter here is pure (records in, lines out);
 * script.c's command runs a session on the file and prints, through the
 * pipeline's tap, what passes its filter stage. The columns and the NDJSON
 * schema are in docs/kmemscope.md and docs/json-schema.md.
 */
#ifndef KMS_SCRIPT_H
#define KMS_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"

struct agg;
struct gfp_table;
struct ksyms;

struct script_opts {
	bool json;		/* NDJSON, else text columns */
	bool strip;		/* --strip-addresses: no kernel address in any line */
	bool stacks;		/* --stack: the recorded stack of each record that has one */
	const struct ksyms *ksyms;	/* the recorded symbols (NULL: addresses stay hex) */
	const struct gfp_table *gfp;	/* the recorded kernel's GFP names (NULL: hex) */
	/* task, cache and device names from the metadata records seen so far */
	const struct agg *agg;
	const int *baseline_pc;	/* KMS_FAM_MAX preempt-count baselines, -1: unknown */
	__u64 start_ns;		/* when the trace began: time 0 */
	/* the frames of a stack id, as trace_reader__stack() */
	int (*stack)(void *ctx, int stack_id, __u64 *ips, int max);
	void *stack_ctx;
};

/* the marks of a DATA stream that are neither events nor metadata */
enum script_mark {
	SCRIPT_BEGIN,		/* the trace begins: what came before was calibration */
	SCRIPT_SETTLE,		/* the window is over: only frees of its objects count */
};

struct script;

/* NULL with errno set */
struct script *script__new(const struct script_opts *o);
void script__free(struct script *sc);
/*
 * One line, '\n' included, in a buffer sc keeps until the next call; its
 * length in *len. NULL when memory ran out.
 */
const char *script__event(struct script *sc, const struct kms_event *e, size_t *len);
const char *script__meta(struct script *sc, const struct kms_meta *m, size_t *len);
const char *script__mark(struct script *sc, enum script_mark mark, size_t *len);

#endif
