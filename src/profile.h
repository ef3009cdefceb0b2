/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A finished session's allocations by stack: the one model every exporter
 * reads (folded stacks, the SVG flame graph, pprof, kmemscope serve). It is
 * built from the detector's groups (detect.h: one per family, stack or call
 * site, and cache or device), so a live session and a trace file (-i) give
 * the same profile. Building it costs nothing per record: the groups are
 * there whenever the detector tracks live objects (detect_opts.leaks).
 *
 * What each sample holds:
 *   family       KMS_FAM_* of the allocations
 *   frames       kernel return addresses, leaf first (frames[0] is the caller
 *                of the allocator: the allocator's own frames are trimmed as
 *                every report trims them, detect__frames()); without a stack,
 *                the call site alone; nframes 0 when even that is unknown
 *   gfp          raw gfp_t of the first allocation (gfp_mixed: later ones
 *                used another); name it with gfp.h and profile.gfp
 *   order        page order of the first allocation, page family; -1 other
 *   nested       what a nested allocation was made under (enum nest_kind:
 *                a page under slab, vmalloc, ...; vmalloc's own page array
 *                under vmalloc): its bytes are counted there too; -1 none
 *   cache        slab cache (kmem_cache) or device (dma) name, NULL unknown
 *   pid, comm    the first allocating process and its name (NULL unknown)
 *   alloc_count  allocations made in the window
 *   alloc_bytes  bytes they allocated (bytes_alloc: what the allocator gave)
 *   inuse_count  of those, still outstanding at the end (PROFILE_LEAKS: leak
 *                candidates at least min_age old, as the leaks report judges)
 *   inuse_bytes  their bytes still allocated
 *
 * Samples with equal (family, frames, cache) are kept apart when their
 * stacks differ below the trimmed frames; exporters merge by what they show.
 */
#ifndef KMS_PROFILE_H
#define KMS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "kmemscope.h"
#include "quality.h"

struct detect;
struct ksyms;
struct gfp_table;

/* the four values of a sample, in this order everywhere (option names, pprof sample types) */
enum profile_value {
	PV_ALLOC_COUNT = 0,
	PV_ALLOC_BYTES,
	PV_INUSE_COUNT,
	PV_INUSE_BYTES,
	PV_NR,
};

struct profile_sample {
	int family;
	int nframes;
	__u64 frames[KMS_MAX_STACK];
	__u32 gfp;
	bool gfp_mixed;
	int order;
	int nested;
	const char *cache;	/* the detector's: valid while it lives */
	__u32 pid;
	const char *comm;	/* likewise */
	__u64 v[PV_NR];
};

enum profile_scope {
	PROFILE_ALL = 0,	/* every allocation of the window (stat, serve) */
	PROFILE_LEAKS,		/* the leak candidates of the leaks report, nothing else */
};

struct profile_opts {
	enum profile_scope scope;
	/* PROFILE_LEAKS: as in detect_report_opts */
	__u64 now;
	__u64 min_age_ns;
	bool include_retained;
	/* metadata an exporter titles itself with */
	const char *kernel;		/* release of the traced kernel */
	const char *source;		/* "live" or "file" */
	const char *command;		/* "stat", "leaks", "serve" */
	const struct kms_quality *quality;	/* duration, losses; NULL: unknown */
	__u64 start_realtime_ns;	/* wall clock of the trace's start, 0 unknown (pprof) */
	const struct ksyms *ksyms;	/* NULL: frames stay addresses */
	const struct gfp_table *gfp;	/* NULL: GFP values stay hex */
};

struct profile {
	struct profile_opts o;
	struct profile_sample *samples;
	size_t nr;
	__u64 total[PV_NR];	/* sums over the samples */
	__u64 duration_ns;	/* o.quality's, 0 unknown */
	__u64 lost;		/* records lost or missed (o.quality): values may fall short */
	bool complete;		/* kms_quality_complete() */
};

/* 0 or -errno; profile__free() cleans up either way */
int profile__build(struct profile *p, const struct detect *d, const struct profile_opts *o);
void profile__free(struct profile *p);

/* a value by its name ("alloc_bytes", ...), -1 when none; and back */
int profile_value_parse(const char *name);
const char *profile_value_name(int v);
/* "bytes" or "count" */
const char *profile_value_unit(int v);
/* what a value means, for titles: "bytes allocated", "objects outstanding", ... */
const char *profile_value_text(int v);

/* one frame, symbolized through ksyms (function, offset, module) */
struct profile_frame {
	__u64 addr;
	const char *func;	/* NULL: unresolved */
	__u64 offset;
	const char *module;	/* NULL: vmlinux */
	const char *file;	/* source line (user frames with DWARF), NULL: none */
	unsigned int line;
};

void profile__frame(const struct profile *p, __u64 addr, struct profile_frame *f);
/*
 * A frame's name as folded stacks and flame graphs show it: "func", "func
 * [module]", or the address in hex; no offset, so the frames of one function
 * merge. snprintf semantics.
 */
int profile__frame_name(const struct profile *p, __u64 addr, char *buf, size_t len);
/* the root frame of a family's stacks: "[kmalloc]", ... */
int profile__family_frame(int family, char *buf, size_t len);

#endif /* KMS_PROFILE_H */
