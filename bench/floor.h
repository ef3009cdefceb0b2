/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* floor.bpf.c <-> floor.c: counter slots, named as in kmemscope's JSON "events" */
#ifndef FLOOR_H
#define FLOOR_H

enum floor_event {
	FLOOR_KMALLOC = 0,
	FLOOR_KFREE,
	FLOOR_CACHE_ALLOC,
	FLOOR_CACHE_FREE,
	FLOOR_PAGE_ALLOC,
	FLOOR_PAGE_FREE,
	FLOOR_PAGE_FREE_BATCHED,
	FLOOR_VMALLOC,
	FLOOR_VFREE,
	FLOOR_DMA_ALLOC,
	FLOOR_DMA_FREE,
	FLOOR_PERCPU_ALLOC,
	FLOOR_PERCPU_FREE,
	FLOOR_UPROBE,		/* -u: entries of the C library's allocation functions */
	FLOOR_URETPROBE,	/* -u: their returns */
	FLOOR_NR,
};

struct floor_counts {
	__u64 all[FLOOR_NR];	/* every task */
	__u64 target[FLOOR_NR];	/* the command's tgid, or tasks named --comm */
};

#endif /* FLOOR_H */
