/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The trace writer (trace.h). Records are encoded into a block buffer as they
 * come; a block is sealed when the buffer is full or when the recorder asks
 * (every second), and written with one writev(): header and payload. Before
 * a DATA block go the symbols and stacks its records refer to that no earlier
 * block holds, so every block prefix of the file is self-contained.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <zlib.h>
#include <zstd.h>
#include "kvec.h"
#include "ksyms.h"
#include "trace.h"
#include "trace_codec.h"

/* a block's records before it is sealed: a killed recorder loses at most this */
#define DATA_BLOCK	(1u << 20)
#define SYM_LINE	(2 * (KMS_NAME_LEN + 160))
/* addresses already interned, by their low bits: most records repeat a recent site */
#define ADDR_CACHE	1024

struct buf {
	__u8 *p;
	size_t len, cap;
	__u32 count;
};

struct trace_writer {
	int fd;
	int err;
	bool begun;			/* the META block is written */
	__u64 seq;
	__u64 lost;
	struct trace_writer_opts o;
	struct trace_codec codec;
	struct buf data, syms, stacks;
	__u64 t_first, t_last;
	struct kvec addrs;		/* addresses whose symbols are interned */
	struct kvec symkeys;		/* symbols written (ksyms__export key) */
	struct kvec stack_ids;		/* stacks written */
	__u64 addr_cache[ADDR_CACHE];
	void *zbuf;			/* compressed payload */
	size_t zcap;
	ZSTD_CCtx *zc;
	struct trace_write_stats st;
};

static int buf_room(struct buf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	__u8 *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int write_all(struct trace_writer *w, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t r = writev(w->fd, iov, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

static void fail(struct trace_writer *w, int err)
{
	if (!w->err)
		w->err = err;
}

/* one block: payload compressed when that makes it smaller */
static int put_block(struct trace_writer *w, enum kms_block_type type, const void *raw,
		     size_t len, __u32 count)
{
	struct kms_block_header h = {
		.magic = KMS_BLOCK_MAGIC, .type = type, .codec = KMS_CODEC_NONE,
		.seq = w->seq, .count = count, .raw_len = len, .stored_len = len,
		.lost = w->lost,
	};
	const void *stored = raw;
	struct iovec iov[2];
	size_t bound = ZSTD_compressBound(len);
	int err;

	if (w->err)
		return w->err;
	if (len > KMS_BLOCK_MAX)
		return -E2BIG;
	if (type == KMS_BLK_DATA) {
		h.t_first = w->t_first;
		h.t_last = w->t_last;
	}
	if (bound > w->zcap) {
		void *z = realloc(w->zbuf, bound);

		if (!z)
			return -ENOMEM;
		w->zbuf = z;
		w->zcap = bound;
	}
	if (len) {
		size_t z = ZSTD_compressCCtx(w->zc, w->zbuf, w->zcap, raw, len,
					     w->o.level ? w->o.level : 1);

		if (!ZSTD_isError(z) && z < len) {
			h.codec = KMS_CODEC_ZSTD;
			h.stored_len = z;
			stored = w->zbuf;
		}
	}
	h.crc = crc32(0, stored, h.stored_len);
	h.hcrc = crc32(0, (const void *)&h, offsetof(struct kms_block_header, hcrc));
	iov[0] = (struct iovec){ &h, sizeof(h) };
	iov[1] = (struct iovec){ (void *)stored, h.stored_len };
	err = write_all(w, iov, 2);
	if (err)
		return err;
	w->seq++;
	w->st.blocks++;
	w->st.bytes += sizeof(h) + h.stored_len;
	return 0;
}

/* the symbol lines for addr, unless an earlier record had them */
static void intern_addr(struct trace_writer *w, __u64 addr)
{
	__u64 *slot = &w->addr_cache[(addr >> 2) & (ADDR_CACHE - 1)];
	unsigned long key = 0;
	bool created;
	int n;

	if (!addr || *slot == addr || !w->o.ksyms)
		return;
	*slot = addr;
	if (kvec__get(&w->addrs, &addr, &created) < 0) {
		fail(w, -ENOMEM);
		return;
	}
	if (!created)
		return;
	if (buf_room(&w->syms, SYM_LINE)) {
		fail(w, -ENOMEM);
		return;
	}
	n = ksyms__export(w->o.ksyms, addr, &key, (char *)w->syms.p + w->syms.len, SYM_LINE);
	if (n <= 0 || n >= SYM_LINE)
		return;
	if (kvec__get(&w->symkeys, &(__u64){ key }, &created) < 0) {
		fail(w, -ENOMEM);
		return;
	}
	if (created) {
		w->syms.len += n;
		w->syms.count++;
	}
}

static void intern_stack(struct trace_writer *w, int id)
{
	__u64 ips[KMS_MAX_STACK];
	__u32 hdr[2];
	bool created;
	int n;

	if (id < 0 || !w->o.stack)
		return;
	if (kvec__get(&w->stack_ids, &(__u64){ id }, &created) < 0) {
		fail(w, -ENOMEM);
		return;
	}
	if (!created)
		return;
	n = w->o.stack(w->o.stack_ctx, id, ips, KMS_MAX_STACK);
	if (n < 0)
		n = 0;	/* recorded empty: replay reads what live reports would have read */
	if (buf_room(&w->stacks, sizeof(hdr) + n * sizeof(ips[0]))) {
		fail(w, -ENOMEM);
		return;
	}
	hdr[0] = id;
	hdr[1] = n;
	memcpy(w->stacks.p + w->stacks.len, hdr, sizeof(hdr));
	memcpy(w->stacks.p + w->stacks.len + sizeof(hdr), ips, n * sizeof(ips[0]));
	w->stacks.len += sizeof(hdr) + n * sizeof(ips[0]);
	w->stacks.count++;
	for (int i = 0; i < n; i++)
		intern_addr(w, ips[i]);
}

int trace_writer__flush(struct trace_writer *w)
{
	int err = 0;

	if (w->err)
		return w->err;
	/* the META block comes first: until then, records wait in the buffer */
	if (!w->begun)
		return 0;
	if (w->syms.count)
		err = put_block(w, KMS_BLK_SYMS, w->syms.p, w->syms.len, w->syms.count);
	if (!err && w->stacks.count)
		err = put_block(w, KMS_BLK_STACKS, w->stacks.p, w->stacks.len, w->stacks.count);
	if (!err && w->data.count)
		err = put_block(w, KMS_BLK_DATA, w->data.p, w->data.len, w->data.count);
	if (err) {
		fail(w, err);
		return err;
	}
	w->st.raw_bytes += w->data.len;
	w->syms.len = w->syms.count = 0;
	w->stacks.len = w->stacks.count = 0;
	w->data.len = w->data.count = 0;
	w->t_first = w->t_last = 0;
	memset(&w->codec, 0, sizeof(w->codec));
	return 0;
}

/*
 * Room for one more record, sealing the block when it is full; false after
 * an error. ts: an event's time, which dates the block (0: not an event).
 */
static bool room(struct trace_writer *w, __u64 ts)
{
	if (w->err) {
		w->st.dropped++;
		return false;
	}
	if (w->data.len + TRACE_REC_MAX > DATA_BLOCK) {
		/*
		 * Before the META block, records wait in the buffer: calibration on
		 * a busy machine outgrows one block's worth, so the first block may
		 * be as large as a reader takes.
		 */
		int err = w->begun ? trace_writer__flush(w) :
			  w->data.len + TRACE_REC_MAX > KMS_BLOCK_MAX ? -ENOBUFS :
			  buf_room(&w->data, TRACE_REC_MAX);

		if (err) {
			fail(w, err);
			w->st.dropped++;
			return false;
		}
	}
	if (!ts)
		return true;
	if (!w->t_first)
		w->t_first = ts;
	w->t_last = ts;
	return true;
}

void trace_writer__event(struct trace_writer *w, const struct kms_event *e)
{
	if (e->type == KMS_EV_NONE || e->type >= KMS_EV_NR_EVENTS || !room(w, e->ts))
		return;
	intern_addr(w, e->site);
	intern_stack(w, e->stack_id);
	w->data.len = trace_encode_event(&w->codec, e, w->data.p + w->data.len) - w->data.p;
	w->data.count++;
	w->st.records++;
	w->st.events++;
}

void trace_writer__meta(struct trace_writer *w, const struct kms_meta *m)
{
	/* another type would not decode, and would take the rest of its block with it */
	if (m->type < KMS_EV_META_TASK || m->type > KMS_EV_META_LOSS || !room(w, 0))
		return;
	w->data.len = trace_encode_meta(&w->codec, m, w->data.p + w->data.len) - w->data.p;
	w->data.count++;
	w->st.records++;
}

static void put_marker(struct trace_writer *w, __u8 kind)
{
	if (!room(w, 0))
		return;
	w->data.p[w->data.len++] = kind;
	w->data.count++;
	w->st.records++;
}

void trace_writer__settle(struct trace_writer *w)
{
	put_marker(w, KMS_REC_SETTLE);
}

void trace_writer__set_lost(struct trace_writer *w, __u64 lost)
{
	w->lost = lost;
}

void trace_writer__set_ksyms(struct trace_writer *w, const struct ksyms *k)
{
	w->o.ksyms = k;
}

int trace_writer__error(const struct trace_writer *w)
{
	return w->err;
}

const struct trace_write_stats *trace_writer__stats(const struct trace_writer *w)
{
	return &w->st;
}

static int put_json(struct trace_writer *w, enum kms_block_type type, const json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	int err;

	if (!text)
		return -ENOMEM;
	err = put_block(w, type, text, strlen(text), 1);
	free(text);
	return err;
}

int trace_writer__open(struct trace_writer **out, const char *path,
		       const struct trace_writer_opts *o)
{
	struct kms_trace_header h = {
		.magic = KMS_TRACE_MAGIC, .version = KMS_TRACE_VERSION,
		.header_size = sizeof(h), .byte_order = KMS_TRACE_BOM, .abi = KMS_ABI_VERSION,
	};
	struct trace_writer *w;
	struct timespec now;
	struct iovec iov = { &h, sizeof(h) };
	int err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->o = *o;
	kvec__init(&w->addrs, sizeof(__u64), sizeof(__u64));
	kvec__init(&w->symkeys, sizeof(__u64), sizeof(__u64));
	kvec__init(&w->stack_ids, sizeof(__u64), sizeof(__u64));
	w->zc = ZSTD_createCCtx();
	/* O_TRUNC: like any output file; 0600: kernel addresses are not for everyone */
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0 || !w->zc || buf_room(&w->data, DATA_BLOCK)) {
		err = w->fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	/* an existing file keeps its mode through O_TRUNC: make it private too */
	if (fchmod(w->fd, 0600)) {
		err = -errno;
		goto fail;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	h.created = now.tv_sec * 1000000000ULL + now.tv_nsec;
	err = write_all(w, &iov, 1);
	if (err)
		goto fail;
	w->st.bytes = sizeof(h);
	*out = w;
	return 0;
fail:
	trace_writer__free(w);
	return err;
}

int trace_writer__begin(struct trace_writer *w, const json_t *meta)
{
	int err = w->err ? w->err : put_json(w, KMS_BLK_META, meta);

	if (err) {
		fail(w, err);
		return err;
	}
	w->begun = true;
	put_marker(w, KMS_REC_BEGIN);
	return w->err;
}

int trace_writer__close(struct trace_writer *w, const json_t *end)
{
	int err = w->begun ? trace_writer__flush(w) : -EINVAL;

	if (!err)
		err = put_json(w, KMS_BLK_END, end);
	if (!err && fsync(w->fd))
		err = -errno;
	if (close(w->fd) && !err)
		err = -errno;
	w->fd = -1;
	trace_writer__free(w);
	return err;
}

void trace_writer__free(struct trace_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	ZSTD_freeCCtx(w->zc);
	kvec__fini(&w->addrs);
	kvec__fini(&w->symkeys);
	kvec__fini(&w->stack_ids);
	free(w->data.p);
	free(w->syms.p);
	free(w->stacks.p);
	free(w->zbuf);
	free(w);
}
