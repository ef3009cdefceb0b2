/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope top: the pure part. Snapshots of the cumulative aggregation,
 * per-window rates from two of them, sorting, and fixed-width rendering.
 * No terminal and no session here, so that unit tests can drive it.
 */
#ifndef KMS_TOP_H
#define KMS_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "agg.h"

/* sort keys of the site table, in the order the 's' key cycles through them */
enum top_key {
	TOP_KEY_BYTES = 0,
	TOP_KEY_ALLOCS,
	TOP_KEY_FREES,
	TOP_KEY_OUTSTANDING,
	TOP_KEY_WASTE,
	TOP_KEY_FAILS,
	TOP_KEY_NR,
};

/* the cumulative counters of one site, as agg had them at snapshot time */
struct top_site {
	int family;
	__u64 addr;
	__u64 obj;
	__u64 allocs;
	__u64 frees;
	__u64 fails;
	__u64 bytes_req;
	__u64 bytes_alloc;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

struct top_snap {
	__u64 ts_ns;		/* CLOCK_MONOTONIC of the snapshot */
	__u64 events;		/* records delivered so far (kms_quality.events) */
	__u64 lost;		/* records lost so far */
	struct agg_counts fam[KMS_FAM_MAX];
	size_t nr;		/* sites; agg's site indices are stable, so index i here */
	size_t cap;		/* is the same site in every later snapshot */
	struct top_site *v;
};

/* one site over one window: rates per second, outstanding as it is now */
struct top_row {
	size_t idx;		/* agg__site() index */
	int family;
	__u64 addr;
	__u64 obj;
	double allocs;
	double frees;
	double bytes;		/* bytes_alloc */
	double waste;		/* bytes_alloc - bytes_req */
	double fails;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

/* one family over one window */
struct top_fam {
	double allocs;
	double frees;
	double bytes;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

/* copy agg's counters into snap (reusing its memory); 0 or -ENOMEM */
int top__snap_take(struct top_snap *snap, const struct agg *a, __u64 ts_ns, __u64 events,
		   __u64 lost);
/* snap = other, deep; 0 or -ENOMEM */
int top__snap_copy(struct top_snap *snap, const struct top_snap *other);
void top__snap_free(struct top_snap *snap);

/*
 * Rows for the window base -> cur: sites of the families in fam_mask (0: all)
 * that allocated, freed or failed in the window, plus, when sorting by
 * outstanding, sites that still hold objects. Sorted by key, ties by allocs
 * then address. *rows is (re)allocated; returns the row count or -ENOMEM.
 */
long top__rows(const struct top_snap *base, const struct top_snap *cur, unsigned int fam_mask,
	       enum top_key key, struct top_row **rows, size_t *cap);
void top__sort(struct top_row *rows, size_t nr, enum top_key key);
/* per-family rates over the window base -> cur, into fam[KMS_FAM_MAX] */
void top__families(const struct top_snap *base, const struct top_snap *cur,
		   struct top_fam *fam);
/* window length in seconds (never 0) */
double top__window(const struct top_snap *base, const struct top_snap *cur);

const char *top__key_name(enum top_key key);
/* key by name ("count" is allocs, as in stat); -1 when unknown */
int top__parse_key(const char *name);
/* "kmalloc", "cache", ... : at most 7 characters, for the family column */
const char *top__family_short(int fam);

/* 1234 -> "1234", 12345 -> "12.3K", 1.5e9 -> "1.50G": at most 6 characters */
void top__fmt_num(double v, char *buf, size_t len);
/* the site table header, cut to width (0: no limit) */
int top__render_header(char *buf, size_t len, int width);
/*
 * One table row, cut to width (0: no limit; below 110 columns the family
 * and cache columns merge). site is "func+0x1f [mod]" or an address, cache
 * the cache or device name (NULL: "-").
 */
int top__render_row(const struct top_row *r, const char *cache, const char *site, char *buf,
		    size_t len, int width);

#endif /* KMS_TOP_H */
