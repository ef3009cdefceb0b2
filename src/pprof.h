/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A profile (profile.h) as pprof's profile.proto (third_party/pprof), gzipped
 * as pprof, Parca and Pyroscope read it: `--pprof FILE` on stat and leaks,
 * and kmemscope serve's /debug/pprof/ endpoints, which call pprof__encode()
 * for the bytes in memory. docs/export.md describes what the file holds.
 */
#ifndef KMS_PPROF_H
#define KMS_PPROF_H

#include <stddef.h>

struct profile;

/*
 * The gzipped profile.proto of p in a malloc'ed buffer (*buf, *len; the
 * caller frees it). Every sample carries all four values, as Go's heap
 * profiles do (alloc_objects, alloc_space, inuse_objects, inuse_space);
 * deflt, an enum profile_value, is the one pprof shows unless told otherwise
 * (PV_ALLOC_BYTES for a report of allocations, PV_INUSE_BYTES for what is
 * outstanding). 0 or a negative errno.
 */
int pprof__encode(const struct profile *p, int deflt, void **buf, size_t *len);
/* pprof__encode() into the file path; 0, or 1 after one error line on stderr */
int pprof__write(const struct profile *p, int deflt, const char *path);

#endif /* KMS_PPROF_H */
