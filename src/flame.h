/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks and the SVG flame graph, from a profile (profile.h). Both
 * read one tree of frames, root first: the family ("[kmalloc]") under a root,
 * then the outermost kernel frame up to the allocator's caller, equal names
 * merged (frames show no offset, so one function is one frame).
 */
#ifndef KMS_FLAME_H
#define KMS_FLAME_H

#include <stdio.h>
#include <linux/types.h>

struct profile;

#define FLAME_WIDTH	1200	/* px, the whole image */
#define FLAME_PAD	10	/* px left and right of the frames */
#define FLAME_MIN_PX	0.1	/* frames narrower than this are not drawn */

struct flame_node {
	char *name;
	int family;		/* KMS_FAM_* of everything under it; -1: the root */
	int depth;		/* the root 0, families 1, their outermost frames 2, ... */
	__u64 value;		/* of the samples through it */
	__u64 self;		/* of those, the samples whose stack ends here */
	__u64 x;		/* value left of it, from the root's left edge */
	struct flame_node *parent, *child, *next;	/* children sorted by name */
};

struct flame {
	struct flame_node *root;	/* named "all" */
	int value;			/* the PV_* laid out */
	size_t nr_nodes;		/* the root included */
	int max_depth;
};

/* 0 or -ENOMEM; flame__free() cleans up either way */
int flame__build(struct flame *f, const struct profile *p, int value);
void flame__free(struct flame *f);
/* "frame;frame;... value" per stack with a value, root first, the tree's root left out */
int flame__folded(const struct flame *f, FILE *out);
/* n's place in a picture width px wide (padding included): left edge and width, px */
void flame__px(const struct flame *f, const struct flame_node *n, double width, double *x,
	       double *w);
/* the interactive SVG, titled from p; 0 or -EIO */
int flame__svg(const struct flame *f, const struct profile *p, FILE *out);

#endif
