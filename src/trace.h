/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Trace files: what a session saw, recorded so that every report can be made
 * again from the file, on any machine, without root. The format is
 * docs/trace-format.md; in short, a fixed header, then append-only blocks,
 * each with its own header and CRC and an independently compressed payload,
 * so that a recorder killed at any moment leaves a file readable up to its
 * last whole block.
 *
 * The writer sits in the pipeline right after the filter stage (pipeline.c):
 * it records what the reports count, in stream order. The reader feeds the
 * same records to a pipeline again (replay.c).
 */
#ifndef KMS_TRACE_H
#define KMS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>
#include "kmemscope.h"

#define KMS_TRACE_MAGIC		"KMSTRACE"
#define KMS_TRACE_VERSION	1
#define KMS_TRACE_BOM		0x01020304u
#define KMS_BLOCK_MAGIC		0x424d534bu	/* "KSMB" read as bytes */
/* no block is larger than this, raw or stored: a reader refuses the rest */
#define KMS_BLOCK_MAX		(16u << 20)

/* at offset 0 */
struct kms_trace_header {
	char magic[8];		/* KMS_TRACE_MAGIC, no NUL */
	__u32 version;		/* KMS_TRACE_VERSION */
	__u32 header_size;	/* sizeof(struct kms_trace_header): blocks start there */
	__u32 byte_order;	/* KMS_TRACE_BOM as the writer stored it */
	__u32 abi;		/* KMS_ABI_VERSION of the records */
	__u64 created;		/* CLOCK_REALTIME ns */
};

enum kms_block_type {
	KMS_BLK_META = 1,	/* JSON: the recording's environment (always the first block) */
	KMS_BLK_SYMS,		/* text: the kallsyms lines the records refer to */
	KMS_BLK_STACKS,		/* binary: stacks, as first referred to */
	KMS_BLK_DATA,		/* encoded records */
	KMS_BLK_END,		/* JSON: final counters; its absence means cut short */
	KMS_BLK_NR,
};

enum kms_codec {
	KMS_CODEC_NONE = 0,
	KMS_CODEC_ZSTD,
};

/* before every block's payload; little endian like the rest of the file */
struct kms_block_header {
	__u32 magic;		/* KMS_BLOCK_MAGIC */
	__u16 type;		/* enum kms_block_type */
	__u16 codec;		/* enum kms_codec */
	__u64 seq;		/* 0, 1, 2, ... in file order */
	__u64 t_first;		/* DATA: time of the first and last record (ns) */
	__u64 t_last;
	__u32 count;		/* records (DATA), stacks (STACKS), symbols (SYMS) */
	__u32 raw_len;		/* payload after decoding */
	__u32 stored_len;	/* payload bytes that follow this header */
	__u32 crc;		/* CRC-32 of the stored payload */
	__u64 lost;		/* records lost so far in the recording (ring full) */
	__u32 hcrc;		/* CRC-32 of this header up to this field */
	__u32 pad;
};

_Static_assert(sizeof(struct kms_trace_header) == 32, "trace header layout");
_Static_assert(sizeof(struct kms_block_header) == 64, "block header layout");

/* DATA payload: record kinds besides events (1 .. KMS_EV_NR_EVENTS - 1) and metadata */
#define KMS_REC_SETTLE		0xf0	/* pipeline__settle() happened here */
/*
 * The trace begins here. Events before it were made while the session
 * calibrated: they only teach the stages (pipeline__observe()).
 */
#define KMS_REC_BEGIN		0xf1
/* an interval tick (leaks -I) took its snapshot here: a replay at that interval does too */
#define KMS_REC_TICK		0xf2

/* ---- writing ---- */

struct ksyms;
struct trace_writer;

struct trace_writer_opts {
	/* the stack of a stack id (collector__stack), NULL: records carry none */
	int (*stack)(void *ctx, int stack_id, __u64 *ips, int max);
	void *stack_ctx;
	/* symbols to intern for sites and stack frames (may be set later) */
	const struct ksyms *ksyms;
	int level;		/* zstd level (0: default) */
};

struct trace_write_stats {
	__u64 records;		/* events and metadata records written */
	__u64 events;
	__u64 blocks;
	__u64 bytes;		/* file size so far */
	__u64 raw_bytes;	/* DATA payload before compression */
	__u64 dropped;		/* records not written after a write error */
};

/*
 * Create path (mode 0600: it holds kernel addresses) and write the header.
 * Records are kept until trace_writer__begin(). 0 or -errno.
 */
int trace_writer__open(struct trace_writer **out, const char *path,
		       const struct trace_writer_opts *o);
/*
 * The trace begins: write meta (a JSON object, the first block) and mark
 * the records so far as made before the trace (see KMS_REC_BEGIN).
 */
int trace_writer__begin(struct trace_writer *w, const json_t *meta);
void trace_writer__set_ksyms(struct trace_writer *w, const struct ksyms *k);
/* symbol lines (kallsyms format) for the file as they are: user symbols (user.h) */
int trace_writer__add_syms(struct trace_writer *w, const char *text, size_t len);
void trace_writer__event(struct trace_writer *w, const struct kms_event *e);
void trace_writer__meta(struct trace_writer *w, const struct kms_meta *m);
void trace_writer__settle(struct trace_writer *w);
void trace_writer__tick(struct trace_writer *w);
/* the records lost so far, stamped on the blocks that follow */
void trace_writer__set_lost(struct trace_writer *w, __u64 lost);
/* seal the records buffered so far into a block (a recorder calls it every second) */
int trace_writer__flush(struct trace_writer *w);
/* the first write error (-errno), 0 when none: recording stops there */
int trace_writer__error(const struct trace_writer *w);
const struct trace_write_stats *trace_writer__stats(const struct trace_writer *w);
/* flush, write the END block (end: a JSON object), close. 0 or -errno */
int trace_writer__close(struct trace_writer *w, const json_t *end);
/* close without an END block (after an error) and free */
void trace_writer__free(struct trace_writer *w);

/* ---- reading ---- */

struct trace_reader;

struct trace_read_info {
	__u64 size;		/* file size */
	__u64 created;		/* the header's creation time (CLOCK_REALTIME ns) */
	__u64 blocks;		/* whole, valid blocks */
	__u64 type_blocks[KMS_BLK_NR];	/* of them, by enum kms_block_type */
	__u64 data_blocks;
	__u64 records;		/* in DATA blocks */
	__u64 stacks;
	__u64 symbols;		/* kallsyms lines */
	__u64 raw_bytes;	/* DATA payload, decoded */
	__u64 stored_bytes;	/* DATA payload, as stored */
	__u64 t_first, t_last;	/* DATA time span (ns), 0 when none */
	__u64 lost;		/* the last block's count of lost records */
	bool ended;		/* an END block closes the file */
	__u64 decode_cpu_ns;	/* CPU time of the replays' decoding threads */
	/* times the replays' sink (the caller's thread) and decoder waited for each other */
	__u64 sink_waits, decoder_waits;
	/* why reading stopped before the end of the file ("" when it did not) */
	char cut[160];
};

/*
 * Open path and check every block (headers, CRCs, order), keeping the
 * metadata, symbols and stacks. A file whose header or first block is
 * unreadable fails: -errno, or -EINVAL, with why (len bytes) saying what
 * is wrong. A file cut short or damaged later opens: info->cut says where
 * reading stops.
 */
int trace_reader__open(struct trace_reader **out, const char *path, char *why, size_t len);
/* the same on a file's bytes in memory, which must outlive the reader (the file is mapped) */
int trace_reader__open_mem(struct trace_reader **out, const void *data, size_t size, char *why,
			   size_t len);
void trace_reader__free(struct trace_reader *r);
const struct trace_read_info *trace_reader__info(const struct trace_reader *r);
/* the META object, and the END object (NULL when the file was cut short) */
const json_t *trace_reader__meta(const struct trace_reader *r);
const json_t *trace_reader__end(const struct trace_reader *r);
/* the recorded symbols (NULL: none recorded); the reader keeps them */
struct ksyms *trace_reader__ksyms(struct trace_reader *r);
/* a recorded stack: number of frames, or -ENOENT */
int trace_reader__stack(const struct trace_reader *r, int stack_id, __u64 *ips, int max);

struct trace_sink {
	/* return false to stop reading */
	bool (*event)(void *ctx, struct kms_event *e);
	void (*meta)(void *ctx, const struct kms_meta *m);
	void (*settle)(void *ctx);
	void (*begin)(void *ctx);
	void *ctx;
	/* a TICK mark (NULL: skip them) */
	void (*tick)(void *ctx);
};

/*
 * Decode the valid DATA blocks in order into sink. 0, or -EINVAL with why set
 * when a block that passed its CRC does not decode (a writer bug, or a
 * forged file): the records before it were delivered. The blocks are decoded
 * on a thread of its own (its CPU time is added to info->decode_cpu_ns); the
 * sink is called on the caller's, in file order.
 */
int trace_reader__replay(struct trace_reader *r, const struct trace_sink *sink, char *why,
			 size_t len);

#endif
