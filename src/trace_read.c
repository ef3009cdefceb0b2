/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The trace reader (trace.h). The file is mapped; opening checks every block
 * in order (magic, header CRC, type, lengths, sequence, payload CRC) and keeps
 * the metadata, symbols and stacks, so that records can be symbolized and
 * their stacks read while they replay. Reading stops at the first block that
 * fails a check: what comes before it is whole, and the reports say where
 * and why reading stopped. Nothing in the file is trusted: every length is
 * checked against the mapping before it is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>
#include "ksyms.h"
#include "kvec.h"
#include "trace.h"
#include "trace_codec.h"

struct stack_item {
	__u64 id;
	__u32 n;
	__u64 ips[KMS_MAX_STACK];
};

/*
 * What a reader keeps is capped, so a small file that decompresses into
 * gigabytes (forged, or damaged under a valid CRC) is cut at a block instead
 * of eating the machine. Real files stay far below: a distribution kernel's
 * kallsyms with its modules is ~10 MiB of text, and a recorder writes stack
 * ids of one BPF stack map (16384 entries).
 */
#define TRACE_SYMS_MAX		(256u << 20)
#define TRACE_STACKS_MAX	(1u << 20)

/* the SYMS blocks' text, put together */
struct text {
	char *p;
	size_t len;
};

/* a payload's decompression: its context and buffer (one per thread) */
struct unpack {
	ZSTD_DCtx *zd;
	__u8 *raw;			/* a decoded payload */
	size_t raw_cap;
};

struct trace_reader {
	const __u8 *map;
	size_t size;
	bool mapped;			/* map is ours (trace_reader__open) */
	struct trace_read_info info;
	json_t *meta, *end;
	struct ksyms *ksyms;
	struct kvec stacks;		/* struct stack_item by id */
	__u64 *data;			/* offsets of the valid DATA blocks */
	size_t nr_data, cap_data;
	struct unpack un;		/* for the blocks read at open */
};

static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static int unpack_init(struct unpack *u)
{
	*u = (struct unpack){ .zd = ZSTD_createDCtx() };
	return u->zd ? 0 : -ENOMEM;
}

static void unpack_fini(struct unpack *u)
{
	free(u->raw);
	ZSTD_freeDCtx(u->zd);
}

/* the payload of the block at off, decoded into u->raw; NULL with why set */
static const __u8 *payload(struct unpack *u, const struct kms_block_header *h,
			   const __u8 *stored, char *why, size_t len)
{
	if (h->codec == KMS_CODEC_NONE) {
		if (h->raw_len != h->stored_len) {
			say(why, len, "stored and decoded lengths differ");
			return NULL;
		}
		return stored;
	}
	/* a frame of no bytes decodes into a buffer too: NULL is the failure */
	if (h->raw_len > u->raw_cap || !u->raw) {
		__u8 *p = realloc(u->raw, h->raw_len ? h->raw_len : 1);

		if (!p) {
			say(why, len, "%s", strerror(ENOMEM));
			return NULL;
		}
		u->raw = p;
		u->raw_cap = h->raw_len;
	}
	size_t n = ZSTD_decompressDCtx(u->zd, u->raw, h->raw_len, stored, h->stored_len);
	if (ZSTD_isError(n) || n != h->raw_len) {
		say(why, len, "payload does not decompress (%s)",
		    ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
		return NULL;
	}
	return u->raw;
}

/*
 * The stacks of a STACKS payload, kept when keep is true. A payload is walked
 * twice, checked whole before any stack is kept: a damaged block adds none.
 */
static int walk_stacks(struct trace_reader *r, const __u8 *p, size_t len, __u32 count,
		       bool keep, char *why, size_t wlen)
{
	const __u8 *end = p + len;
	size_t fresh = 0;	/* ids not kept yet (a repeat within the block counts twice) */

	for (__u32 i = 0; i < count; i++) {
		struct stack_item *it;
		__u32 hdr[2];
		bool created;
		long at;

		if ((size_t)(end - p) < sizeof(hdr)) {
			say(why, wlen, "stack %u of %u is cut short", i, count);
			return -EINVAL;
		}
		memcpy(hdr, p, sizeof(hdr));
		p += sizeof(hdr);
		if (hdr[1] > KMS_MAX_STACK || (size_t)(end - p) < hdr[1] * sizeof(__u64) ||
		    (__s32)hdr[0] < 0) {
			say(why, wlen, "stack %u of %u is damaged", i, count);
			return -EINVAL;
		}
		if (!keep && kvec__find(&r->stacks, &(__u64){ hdr[0] }) < 0 &&
		    r->stacks.nr + ++fresh > TRACE_STACKS_MAX) {
			say(why, wlen, "more than %u distinct stacks", TRACE_STACKS_MAX);
			return -EINVAL;
		}
		if (keep) {
			at = kvec__get(&r->stacks, &(__u64){ hdr[0] }, &created);
			if (at < 0) {
				say(why, wlen, "%s", strerror(ENOMEM));
				return -ENOMEM;
			}
			it = kvec__at(&r->stacks, at);
			it->n = hdr[1];
			memcpy(it->ips, p, hdr[1] * sizeof(__u64));
		}
		p += hdr[1] * sizeof(__u64);
	}
	if (p != end) {
		say(why, wlen, "stacks block has trailing bytes");
		return -EINVAL;
	}
	return 0;
}

static int keep_stacks(struct trace_reader *r, const __u8 *p, size_t len, __u32 count,
		       char *why, size_t wlen)
{
	int err = walk_stacks(r, p, len, count, false, why, wlen);

	if (!err)
		err = walk_stacks(r, p, len, count, true, why, wlen);
	if (!err)
		r->info.stacks += count;
	return err;
}

static int keep_json(json_t **out, const __u8 *p, size_t len, char *why, size_t wlen)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)p, len, 0, &jerr);

	if (!j || !json_is_object(j)) {
		json_decref(j);
		say(why, wlen, "not a JSON object (%s)", j ? "another JSON value" : jerr.text);
		return -EINVAL;
	}
	*out = j;
	return 0;
}

/* one checked block: keep what it holds; -EINVAL with why set when it is damaged */
static int keep_block(struct trace_reader *r, const struct kms_block_header *h, size_t off,
		      struct text *syms, char *why, size_t wlen)
{
	const __u8 *p = NULL;

	/* records are decoded when they replay: here the CRC vouches for them */
	if (h->type != KMS_BLK_DATA) {
		p = payload(&r->un, h, r->map + off + sizeof(*h), why, wlen);
		if (!p)
			return -EINVAL;
	}
	switch (h->type) {
	case KMS_BLK_META:
		return keep_json(&r->meta, p, h->raw_len, why, wlen);
	case KMS_BLK_END:
		return keep_json(&r->end, p, h->raw_len, why, wlen);
	case KMS_BLK_STACKS:
		return keep_stacks(r, p, h->raw_len, h->count, why, wlen);
	case KMS_BLK_SYMS: {
		char *n = NULL;

		if (syms->len + h->raw_len > TRACE_SYMS_MAX) {
			say(why, wlen, "symbols exceed %u MiB", TRACE_SYMS_MAX >> 20);
			return -EINVAL;
		}
		n = realloc(syms->p, syms->len + h->raw_len + 1);
		if (!n) {
			say(why, wlen, "%s", strerror(ENOMEM));
			return -ENOMEM;
		}
		memcpy(n + syms->len, p, h->raw_len);
		syms->p = n;
		syms->len += h->raw_len;
		r->info.symbols += h->count;
		return 0;
	}
	case KMS_BLK_DATA:
		if (r->nr_data == r->cap_data) {
			size_t cap = r->cap_data ? 2 * r->cap_data : 64;
			__u64 *d = realloc(r->data, cap * sizeof(*d));

			if (!d) {
				say(why, wlen, "%s", strerror(ENOMEM));
				return -ENOMEM;
			}
			r->data = d;
			r->cap_data = cap;
		}
		r->data[r->nr_data++] = off;
		r->info.data_blocks++;
		r->info.records += h->count;
		r->info.raw_bytes += h->raw_len;
		r->info.stored_bytes += h->stored_len;
		if (!r->info.t_first && h->t_first)
			r->info.t_first = h->t_first;
		if (h->t_last)
			r->info.t_last = h->t_last;
		return 0;
	}
	return -EINVAL;
}

/* the header of the block at off, checked: 0, or -EINVAL with why set */
static int block_at(const struct trace_reader *r, size_t off, __u64 seq,
		    struct kms_block_header *hp, char *why, size_t wlen)
{
	struct kms_block_header h;

	if (r->size - off < sizeof(h)) {
		say(why, wlen, "block %llu: cut short in its header (%zu of %zu bytes)",
		    (unsigned long long)seq, r->size - off, sizeof(h));
		return -EINVAL;
	}
	memcpy(&h, r->map + off, sizeof(h));
	if (h.magic != KMS_BLOCK_MAGIC ||
	    h.hcrc != crc32(0, (const void *)&h, offsetof(struct kms_block_header, hcrc))) {
		say(why, wlen, "block %llu at offset %zu: damaged header", (unsigned long long)seq,
		    off);
		return -EINVAL;
	}
	if (h.seq != seq) {
		say(why, wlen, "block %llu at offset %zu: out of order (sequence %llu)",
		    (unsigned long long)seq, off, (unsigned long long)h.seq);
		return -EINVAL;
	}
	if (!h.type || h.type >= KMS_BLK_NR || h.codec > KMS_CODEC_ZSTD ||
	    h.raw_len > KMS_BLOCK_MAX || h.stored_len > KMS_BLOCK_MAX) {
		say(why, wlen, "block %llu at offset %zu: unknown type, codec or length",
		    (unsigned long long)seq, off);
		return -EINVAL;
	}
	if (r->size - off - sizeof(h) < h.stored_len) {
		say(why, wlen, "block %llu: cut short in its payload (%zu of %u bytes)",
		    (unsigned long long)seq, r->size - off - sizeof(h), h.stored_len);
		return -EINVAL;
	}
	if (h.crc != crc32(0, r->map + off + sizeof(h), h.stored_len)) {
		say(why, wlen, "block %llu at offset %zu: payload CRC mismatch",
		    (unsigned long long)seq, off);
		return -EINVAL;
	}
	*hp = h;
	return 0;
}

static int check_header(struct trace_reader *r, char *why, size_t len)
{
	struct kms_trace_header h;

	if (r->size < sizeof(h)) {
		say(why, len, "not a kmemscope trace (%zu bytes, shorter than its header)", r->size);
		return -EINVAL;
	}
	memcpy(&h, r->map, sizeof(h));
	if (memcmp(h.magic, KMS_TRACE_MAGIC, sizeof(h.magic))) {
		say(why, len, "not a kmemscope trace (wrong magic)");
		return -EINVAL;
	}
	if (h.byte_order != KMS_TRACE_BOM) {
		say(why, len, "trace written with the other byte order: not readable here");
		return -EINVAL;
	}
	if (h.version != KMS_TRACE_VERSION) {
		say(why, len, "trace format version %u: this kmemscope reads version %u", h.version,
		    KMS_TRACE_VERSION);
		return -EINVAL;
	}
	if (h.abi != KMS_ABI_VERSION) {
		say(why, len, "trace records of ABI version %u: this kmemscope reads version %u",
		    h.abi, KMS_ABI_VERSION);
		return -EINVAL;
	}
	if (h.header_size != sizeof(h)) {
		say(why, len, "trace header of %u bytes: expected %zu", h.header_size, sizeof(h));
		return -EINVAL;
	}
	r->info.created = h.created;
	return 0;
}

/* check every block of r->map and keep what they hold: 0, or -EINVAL with why set */
static int check_blocks(struct trace_reader *r, char *why, size_t wlen)
{
	struct text syms = {};
	size_t off;
	int err;

	r->info.size = r->size;
	err = check_header(r, why, wlen);
	if (err)
		return err;
	for (off = sizeof(struct kms_trace_header); off < r->size;) {
		struct kms_block_header h;
		char bwhy[128];

		if (block_at(r, off, r->info.blocks, &h, bwhy, sizeof(bwhy))) {
			say(r->info.cut, sizeof(r->info.cut), "%s", bwhy);
			break;
		}
		/* one META block, first: a second one would replace what the first said */
		if (!r->info.blocks != (h.type == KMS_BLK_META)) {
			say(r->info.cut, sizeof(r->info.cut), "block %llu at offset %zu: %s",
			    (unsigned long long)h.seq, off, r->info.blocks ?
			    "a second metadata block" : "the first block is not the metadata");
			break;
		}
		if (keep_block(r, &h, off, &syms, bwhy, sizeof(bwhy))) {
			say(r->info.cut, sizeof(r->info.cut), "block %llu at offset %zu: %s",
			    (unsigned long long)h.seq, off, bwhy);
			break;
		}
		r->info.blocks++;
		r->info.type_blocks[h.type]++;
		r->info.lost = h.lost;
		off += sizeof(h) + h.stored_len;
		if (h.type == KMS_BLK_END) {
			r->info.ended = true;
			break;
		}
	}
	if (!r->meta) {
		free(syms.p);
		say(why, wlen, "%s", r->info.cut[0] ? r->info.cut : "no metadata block");
		return -EINVAL;
	}
	if (r->info.ended && off < r->size)
		say(r->info.cut, sizeof(r->info.cut), "%zu bytes after the end block ignored",
		    r->size - off);
	else if (!r->info.ended && !r->info.cut[0])
		say(r->info.cut, sizeof(r->info.cut), "no end block (the recorder did not finish)");
	if (syms.len)
		r->ksyms = ksyms__from_text(syms.p, syms.len);
	else
		free(syms.p);
	return 0;
}

static struct trace_reader *reader_new(void)
{
	struct trace_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	kvec__init(&r->stacks, sizeof(struct stack_item), sizeof(__u64));
	if (unpack_init(&r->un)) {
		free(r);
		return NULL;
	}
	return r;
}

int trace_reader__open_mem(struct trace_reader **out, const void *data, size_t size, char *why,
			   size_t wlen)
{
	struct trace_reader *r;
	int err;

	*out = NULL;
	why[0] = '\0';
	r = reader_new();
	if (!r) {
		say(why, wlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	r->map = data;
	r->size = size;
	err = check_blocks(r, why, wlen);
	if (err) {
		trace_reader__free(r);
		return err;
	}
	*out = r;
	return 0;
}

int trace_reader__open(struct trace_reader **out, const char *path, char *why, size_t wlen)
{
	const void *map = NULL;
	struct stat st;
	int fd, err;

	*out = NULL;
	why[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		say(why, wlen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		say(why, wlen, "not a regular file");
		goto out;
	}
	/* an empty file cannot be mapped: check_header() says what is wrong with it */
	if (st.st_size) {
		map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			err = -errno;
			say(why, wlen, "%s", strerror(errno));
			goto out;
		}
	}
	err = trace_reader__open_mem(out, map, st.st_size, why, wlen);
	if (err) {
		if (map)
			munmap((void *)map, st.st_size);
	} else {
		(*out)->mapped = true;
	}
out:
	if (fd >= 0)
		close(fd);
	return err;
}

void trace_reader__free(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->mapped)
		munmap((void *)r->map, r->size);
	json_decref(r->meta);
	json_decref(r->end);
	ksyms__free(r->ksyms);
	kvec__fini(&r->stacks);
	free(r->data);
	unpack_fini(&r->un);
	free(r);
}

const struct trace_read_info *trace_reader__info(const struct trace_reader *r)
{
	return &r->info;
}

const json_t *trace_reader__meta(const struct trace_reader *r)
{
	return r->meta;
}

const json_t *trace_reader__end(const struct trace_reader *r)
{
	return r->end;
}

struct ksyms *trace_reader__ksyms(struct trace_reader *r)
{
	return r->ksyms;
}

int trace_reader__stack(const struct trace_reader *r, int stack_id, __u64 *ips, int max)
{
	const struct stack_item *it;
	long at;

	if (stack_id < 0)
		return -ENOENT;
	at = kvec__find(&r->stacks, &(__u64){ stack_id });
	if (at < 0)
		return -ENOENT;
	it = kvec__at(&r->stacks, at);
	if (max > (int)it->n)
		max = it->n;
	memcpy(ips, it->ips, max * sizeof(*ips));
	return max;
}

/*
 * Replay decodes on threads of their own, lanes, while the caller's thread
 * feeds the records to the sink. Each DATA block is an independent frame
 * (compression and deltas start afresh), so with two lanes one decodes the
 * even blocks and the other the odd ones; the sink takes the blocks in file
 * order from the lane that holds each, so the records and marks reach it as
 * they would from one thread, and a block that does not decode ends the
 * replay after the records before it. On this machine's two CPUs decoding is
 * ~45 % of a replay's CPU (stat -i, 0.55 s of 0.92 for 11.8 M records): one
 * lane set the pace (0.64 s wall), two share it with the sink.
 *
 * A lane's ring holds chunks of records, and a chunk never spans two blocks.
 * The ring must hold about a block (1 MiB of encoded records: 36 k records
 * in the measured file, up to ~80 k) for a lane to decode its next block
 * while the sink reads the other lane's: with a ring of 8 chunks the second
 * lane waited for the sink most of the time.
 *
 * The ring's counters are atomics, each written by one side, so a chunk
 * changes hands without a lock: the lock and the conditions are only for
 * sleeping, when the ring is empty (the sink) or full (the lane). Each side
 * sleeps until half the ring is ready (the lane for room, the sink for
 * chunks, or the lane's end), so that neither is woken for every chunk: a
 * wake-up is a futex call in the waker's CPU time, and an interrupt to wake
 * the other CPU when it idles (with the sink woken for any one chunk, a
 * decoder slower than the sink woke it for most of 11.5 k chunks).
 */
#define REPLAY_CHUNK	1024	/* records per chunk: 64 KiB */
#define REPLAY_CHUNKS	64	/* chunks per lane's ring */
#define REPLAY_LANES	2

struct chunk {
	unsigned int n;
	bool block_end;				/* the last chunk of its block */
	__u8 kind[REPLAY_CHUNK];		/* enum trace_rec */
	union {
		struct kms_event e;
		struct kms_meta m;
	} rec[REPLAY_CHUNK];
};

struct replay;

/* one decoding thread and its ring */
struct lane {
	struct replay *rp;
	unsigned int first;		/* its blocks: first, first + nr_lanes, ... */
	struct chunk *chunks;		/* REPLAY_CHUNKS, used in turn */
	struct unpack un;
	/* atomics: the lane writes filled and total, the sink drained */
	unsigned long filled;		/* chunks handed over */
	unsigned long drained;		/* chunks given back */
	unsigned long total;		/* chunks in all, once the last is handed over; 0 before */
	/* sleeping: whoever sleeps sets its flag under the lock; the other side wakes it */
	pthread_mutex_t lock;
	pthread_cond_t ready, room;	/* a chunk for the sink; room for the lane */
	bool sink_waits, dec_waits;
	unsigned long sink_slept, dec_slept;	/* times each side slept */
	int err;			/* the lane's, once done */
	char why[160];
	__u64 cpu_ns;			/* the lane's CPU time, once it returned */
	pthread_t thread;
};

struct replay {
	struct trace_reader *r;
	unsigned int nr_lanes;
	bool stop;			/* atomic: the sink stopped reading, decode no further */
	struct lane lane[REPLAY_LANES];
};

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

/*
 * The lock is taken only to wait until a sleeper that set its flag sleeps;
 * the signal comes after it is released, or the sleeper woke up only to wait
 * for the lock again (a futex wait and wake more per sleep).
 */
static void wake(struct lane *l, pthread_cond_t *c)
{
	pthread_mutex_lock(&l->lock);
	pthread_mutex_unlock(&l->lock);
	pthread_cond_signal(c);
}

/*
 * Hand the chunk being filled over; false when the sink stopped reading.
 * A flag is stored before the other side's counter is read, on both sides
 * (sequentially consistent): a sleeper's flag or the counter it waits on is
 * seen, so no wake-up is lost.
 */
static bool chunk_put(struct lane *l, bool last)
{
	struct replay *rp = l->rp;
	unsigned long f = l->filled + 1;

	if (last)
		STORE(l->total, f);
	STORE(l->filled, f);
	if (LOAD(l->sink_waits) && (last || f - LOAD(l->drained) >= REPLAY_CHUNKS / 2))
		wake(l, &l->ready);
	if (!last && f - LOAD(l->drained) == REPLAY_CHUNKS) {
		pthread_mutex_lock(&l->lock);
		STORE(l->dec_waits, true);
		l->dec_slept++;
		while (!LOAD(rp->stop) && f - LOAD(l->drained) > REPLAY_CHUNKS / 2)
			pthread_cond_wait(&l->room, &l->lock);
		STORE(l->dec_waits, false);
		pthread_mutex_unlock(&l->lock);
	}
	if (LOAD(rp->stop))
		return false;
	/* the next chunk to fill: given back, or never handed over yet */
	if (!last) {
		l->chunks[f % REPLAY_CHUNKS].n = 0;
		l->chunks[f % REPLAY_CHUNKS].block_end = false;
	}
	return true;
}

/* a lane: its DATA blocks, in order */
static void decode_blocks(struct lane *l)
{
	struct trace_reader *r = l->rp->r;
	struct chunk *ch = &l->chunks[0];
	int err = 0;

	for (size_t b = l->first; b < r->nr_data && !err; b += l->rp->nr_lanes) {
		const struct kms_block_header *h = (const void *)(r->map + r->data[b]);
		struct kms_block_header hc;
		struct trace_codec codec = {};
		const __u8 *p, *end;
		char pwhy[128];
		__u32 n = 0;

		memcpy(&hc, h, sizeof(hc));
		p = payload(&l->un, &hc, r->map + r->data[b] + sizeof(hc), pwhy, sizeof(pwhy));
		if (!p) {
			say(l->why, sizeof(l->why), "block %llu: %s", (unsigned long long)hc.seq,
			    pwhy);
			err = -EINVAL;
			break;
		}
		end = p + hc.raw_len;
		while (p < end) {
			enum trace_rec kind;

			p = trace_decode(&codec, p, end, &kind, &ch->rec[ch->n].e, &ch->rec[ch->n].m);
			if (!p || ++n > hc.count) {
				say(l->why, sizeof(l->why), "block %llu: record %u does not decode",
				    (unsigned long long)hc.seq, n);
				err = -EINVAL;
				break;
			}
			ch->kind[ch->n++] = kind;
			if (ch->n == REPLAY_CHUNK && p < end) {
				if (!chunk_put(l, false))
					return;
				ch = &l->chunks[l->filled % REPLAY_CHUNKS];
			}
		}
		if (!err && n != hc.count) {
			say(l->why, sizeof(l->why), "block %llu: %u records, %u announced",
			    (unsigned long long)hc.seq, n, hc.count);
			err = -EINVAL;
		}
		if (err)
			break;
		ch->block_end = true;
		if (!chunk_put(l, false))
			return;
		ch = &l->chunks[l->filled % REPLAY_CHUNKS];
	}
	/* after an error: the records before it, with the error */
	l->err = err;
	chunk_put(l, true);
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct timespec t;

	decode_blocks(l);
	/* read by the caller after the join */
	if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t))
		l->cpu_ns = t.tv_sec * 1000000000ULL + t.tv_nsec;
	return NULL;
}

/* the records of one chunk into the sink; false when it stops reading */
static bool chunk_feed(struct chunk *ch, const struct trace_sink *sink)
{
	for (unsigned int i = 0; i < ch->n; i++) {
		switch (ch->kind[i]) {
		case TRACE_REC_EVENT:
			if (!sink->event(sink->ctx, &ch->rec[i].e))
				return false;
			break;
		case TRACE_REC_META:
			sink->meta(sink->ctx, &ch->rec[i].m);
			break;
		case TRACE_REC_SETTLE:
			sink->settle(sink->ctx);
			break;
		case TRACE_REC_TICK:
			if (sink->tick)
				sink->tick(sink->ctx);
			break;
		default:
			sink->begin(sink->ctx);
			break;
		}
	}
	return true;
}

/*
 * One block from its lane into the sink: 1 when it ended, 0 when the sink
 * stopped, or the lane's error (the records before it fed).
 */
static int block_feed(struct lane *l, const struct trace_sink *sink)
{
	for (;;) {
		unsigned long d = l->drained;
		struct chunk *ch;
		bool last, fed, end;

		while (LOAD(l->filled) == d) {
			pthread_mutex_lock(&l->lock);
			STORE(l->sink_waits, true);
			l->sink_slept++;
			while (!LOAD(l->total) && LOAD(l->filled) - d < REPLAY_CHUNKS / 2)
				pthread_cond_wait(&l->ready, &l->lock);
			STORE(l->sink_waits, false);
			pthread_mutex_unlock(&l->lock);
		}
		ch = &l->chunks[d % REPLAY_CHUNKS];
		last = LOAD(l->total) == d + 1;
		fed = chunk_feed(ch, sink);
		end = ch->block_end;
		STORE(l->drained, d + 1);
		if (LOAD(l->dec_waits) && LOAD(l->filled) - (d + 1) <= REPLAY_CHUNKS / 2)
			wake(l, &l->room);
		if (!fed)
			return 0;
		if (end)
			return 1;
		/* a lane ends inside a block only on an error */
		if (last)
			return l->err ? l->err : -EINVAL;
	}
}

static void lane_fini(struct lane *l)
{
	pthread_cond_destroy(&l->ready);
	pthread_cond_destroy(&l->room);
	pthread_mutex_destroy(&l->lock);
	unpack_fini(&l->un);
	free(l->chunks);
}

static int lane_init(struct replay *rp, unsigned int i)
{
	struct lane *l = &rp->lane[i];

	*l = (struct lane){ .rp = rp, .first = i };
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->ready, NULL);
	pthread_cond_init(&l->room, NULL);
	l->chunks = malloc(REPLAY_CHUNKS * sizeof(*l->chunks));
	if (!l->chunks || unpack_init(&l->un)) {
		lane_fini(l);
		return -ENOMEM;
	}
	l->chunks[0].n = 0;
	l->chunks[0].block_end = false;
	return 0;
}

int trace_reader__replay(struct trace_reader *r, const struct trace_sink *sink, char *why,
			 size_t wlen)
{
	struct replay rp = { .r = r };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int started = 0;
	sigset_t all, old;
	int err = 0, fed = 1;

	/* one CPU: a second lane only adds hand-overs */
	rp.nr_lanes = cpus > 1 && r->nr_data > 1 ? REPLAY_LANES : 1;
	/* signals (Ctrl-C, a resize waking a paced replay) stay with the caller's thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; started < rp.nr_lanes; started++) {
		struct lane *l = &rp.lane[started];

		err = lane_init(&rp, started);
		if (err) {
			say(why, wlen, "%s", strerror(-err));
			break;
		}
		err = -pthread_create(&l->thread, NULL, lane_main, l);
		if (err) {
			say(why, wlen, "Failed to start a decoding thread: %s", strerror(-err));
			lane_fini(l);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (size_t b = 0; !err && fed > 0 && b < r->nr_data; b++) {
		fed = block_feed(&rp.lane[b % rp.nr_lanes], sink);
		if (fed < 0) {
			err = fed;
			say(why, wlen, "%s", rp.lane[b % rp.nr_lanes].why);
		}
	}
	STORE(rp.stop, true);
	for (unsigned int i = 0; i < started; i++) {
		struct lane *l = &rp.lane[i];

		if (LOAD(l->dec_waits))
			wake(l, &l->room);
		pthread_join(l->thread, NULL);
		r->info.decode_cpu_ns += l->cpu_ns;
		r->info.sink_waits += l->sink_slept;
		r->info.decoder_waits += l->dec_slept;
		lane_fini(l);
	}
	return err;
}
