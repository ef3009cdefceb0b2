/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The trace writer (trace.h). Records are encoded into a block buffer as they
 * come; a block is sealed when the buffer is full or when the recorder asks
 * (every second), and written with one writev(): header and payload. Before
 * a DATA block go the symbols and stacks its records refer to that no earlier
 * block holds, so every block prefix of the file is self-contained.
 *
 * A sealed block is compressed and written by a thread of the writer's own:
 * that is a third of the writer's time per record (bench/README.md), taken
 * off the collector's thread, which encodes the next block meanwhile and
 * waits only when it fills up before the last one is written. A killed
 * recorder loses the block being written and the one being filled.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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
/*
 * zstd level 1, measured (bench/trace, bench/README.md) on 10.7 M records of
 * the pipe loop, 13.6 raw bytes each: level 1 stores 1.05 bytes per record at
 * ~1170 MB/s, level 3 0.96 at ~680 MB/s, zlib 1 and 6 1.16 and 1.02 at ~310
 * and ~140 MB/s. Level 3's 9 % smaller file would cost ~8 ns more of CPU per
 * record (the writing thread shares the machine's CPUs with the collector and
 * the traced load), and zlib is larger or slower or both.
 */
#define ZSTD_LEVEL	1
/* addresses already interned, by their low bits: most records repeat a recent site */
#define ADDR_CACHE	1024
/* stack ids already interned, the same way: every leaks record has one */
#define STACK_CACHE	1024

struct buf {
	__u8 *p;
	size_t len, cap;
	__u32 count;
};

/* what the writing thread writes: one DATA block and the symbols and stacks before it */
struct sealed {
	struct buf data, syms, stacks;
	__u64 t_first, t_last;
	__u64 lost;
};

struct trace_writer {
	int fd;
	int err;			/* the first error, either thread: see error_of() */
	bool begun;			/* the META block is written */
	__u64 seq;			/* the writing thread's, or the caller's while it is idle */
	__u64 lost;
	struct trace_writer_opts o;
	struct trace_codec codec;
	struct buf data, syms, stacks;	/* the block being filled */
	__u64 t_first, t_last;
	/* the writing thread, and the set handed to it (ready: not written yet) */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sealed out;
	bool ready, stop;
	struct kvec addrs;		/* addresses whose symbols are interned */
	struct kvec symkeys;		/* symbols written (ksyms__export key) */
	struct kvec stack_ids;		/* stacks written */
	__u64 addr_cache[ADDR_CACHE];
	__u32 stack_cache[STACK_CACHE];	/* stack id + 1 of a stack written, by id: 0 none */
	void *zbuf;			/* compressed payload */
	size_t zcap;
	ZSTD_CCtx *zc;
	/* blocks and bytes change under the lock (the writing thread), the rest the caller's */
	struct trace_write_stats st, st_copy;
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

/* the first error sticks, from whichever thread */
static void fail(struct trace_writer *w, int err)
{
	int none = 0;

	__atomic_compare_exchange_n(&w->err, &none, err, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
}

static int error_of(const struct trace_writer *w)
{
	return __atomic_load_n(&w->err, __ATOMIC_ACQUIRE);
}

/* one block: payload compressed when that makes it smaller; s: a DATA block's set */
static int put_block(struct trace_writer *w, enum kms_block_type type, const void *raw,
		     size_t len, __u32 count, const struct sealed *s)
{
	struct kms_block_header h = {
		.magic = KMS_BLOCK_MAGIC, .type = type, .codec = KMS_CODEC_NONE,
		.seq = w->seq, .count = count, .raw_len = len, .stored_len = len,
		.lost = s ? s->lost : w->lost,
	};
	const void *stored = raw;
	struct iovec iov[2];
	size_t bound = ZSTD_compressBound(len);
	int err;

	if (error_of(w))
		return error_of(w);
	if (len > KMS_BLOCK_MAX)
		return -E2BIG;
	if (type == KMS_BLK_DATA) {
		h.t_first = s->t_first;
		h.t_last = s->t_last;
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
					     w->o.level ? w->o.level : ZSTD_LEVEL);

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
	pthread_mutex_lock(&w->lock);
	w->st.blocks++;
	w->st.bytes += sizeof(h) + h.stored_len;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int put_sealed(struct trace_writer *w, struct sealed *s)
{
	int err = 0;

	if (s->syms.count)
		err = put_block(w, KMS_BLK_SYMS, s->syms.p, s->syms.len, s->syms.count, s);
	if (!err && s->stacks.count)
		err = put_block(w, KMS_BLK_STACKS, s->stacks.p, s->stacks.len, s->stacks.count,
				s);
	if (!err && s->data.count)
		err = put_block(w, KMS_BLK_DATA, s->data.p, s->data.len, s->data.count, s);
	s->syms.len = s->syms.count = 0;
	s->stacks.len = s->stacks.count = 0;
	s->data.len = s->data.count = 0;
	return err;
}

static void *write_thread(void *arg)
{
	struct trace_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		int err;

		while (!w->ready && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->ready)
			break;
		/* the set is this thread's until ready is false again */
		pthread_mutex_unlock(&w->lock);
		err = put_sealed(w, &w->out);
		if (err)
			fail(w, err);
		pthread_mutex_lock(&w->lock);
		w->ready = false;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* wait until the writing thread has written what it was given; its error, if any */
static int drain(struct trace_writer *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->ready)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return error_of(w);
}

static void swap_buf(struct buf *a, struct buf *b)
{
	struct buf t = *a;

	*a = *b;
	*b = t;
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
	__u32 *slot = &w->stack_cache[(__u32)id % STACK_CACHE];
	__u64 ips[KMS_MAX_STACK];
	__u32 hdr[2];
	bool created;
	int n;

	if (id < 0 || !w->o.stack || *slot == (__u32)id + 1)
		return;
	*slot = id + 1;
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

/*
 * Seal: hand the block to the writing thread once it has written the last
 * one, and fill the buffers it gives back. A write error shows here, at the
 * next seal after it, or at close.
 */
int trace_writer__flush(struct trace_writer *w)
{
	int err = error_of(w);

	/* the META block comes first: until then, records wait in the buffer */
	if (err || !w->begun || !(w->syms.count || w->stacks.count || w->data.count))
		return err;
	err = drain(w);
	if (err)
		return err;
	/* the thread is idle: the set and its buffers are the caller's until ready */
	swap_buf(&w->data, &w->out.data);
	swap_buf(&w->syms, &w->out.syms);
	swap_buf(&w->stacks, &w->out.stacks);
	w->out.t_first = w->t_first;
	w->out.t_last = w->t_last;
	w->out.lost = w->lost;
	w->st.raw_bytes += w->out.data.len;
	pthread_mutex_lock(&w->lock);
	w->ready = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
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
	if (error_of(w)) {
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

void trace_writer__tick(struct trace_writer *w)
{
	put_marker(w, KMS_REC_TICK);
}

void trace_writer__set_lost(struct trace_writer *w, __u64 lost)
{
	w->lost = lost;
}

void trace_writer__set_ksyms(struct trace_writer *w, const struct ksyms *k)
{
	w->o.ksyms = k;
}

int trace_writer__add_syms(struct trace_writer *w, const char *text, size_t len)
{
	if (buf_room(&w->syms, len)) {
		fail(w, -ENOMEM);
		return -ENOMEM;
	}
	memcpy(w->syms.p + w->syms.len, text, len);
	w->syms.len += len;
	for (size_t i = 0; i < len; i++)
		w->syms.count += text[i] == '\n';
	return 0;
}

int trace_writer__error(const struct trace_writer *w)
{
	return error_of(w);
}

const struct trace_write_stats *trace_writer__stats(const struct trace_writer *w)
{
	/* a copy taken under the lock: the writing thread counts blocks and bytes */
	struct trace_writer *m = (struct trace_writer *)w;

	pthread_mutex_lock(&m->lock);
	m->st_copy = m->st;
	pthread_mutex_unlock(&m->lock);
	return &m->st_copy;
}

static int put_json(struct trace_writer *w, enum kms_block_type type, const json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	int err;

	if (!text)
		return -ENOMEM;
	err = put_block(w, type, text, strlen(text), 1, NULL);
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
	sigset_t all, old;
	int err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->o = *o;
	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	kvec__init(&w->addrs, sizeof(__u64), sizeof(__u64));
	kvec__init(&w->symkeys, sizeof(__u64), sizeof(__u64));
	kvec__init(&w->stack_ids, sizeof(__u64), sizeof(__u64));
	w->zc = ZSTD_createCCtx();
	/* O_TRUNC: like any output file; 0600: kernel addresses are not for everyone */
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		err = -errno;
		goto fail;
	}
	/* both sets of buffers take a whole block: records are encoded without a check */
	if (!w->zc || buf_room(&w->data, DATA_BLOCK) || buf_room(&w->out.data, DATA_BLOCK)) {
		err = -ENOMEM;
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
	/* signals (Ctrl-C, the command's end) stay the main thread's, which waits for them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&w->thread, NULL, write_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail;
	w->thread_started = true;
	w->st.bytes = sizeof(h);
	*out = w;
	return 0;
fail:
	trace_writer__free(w);
	return err;
}

int trace_writer__begin(struct trace_writer *w, const json_t *meta)
{
	/* nothing is sealed before the trace begins: the thread is idle */
	int err = error_of(w) ? error_of(w) : put_json(w, KMS_BLK_META, meta);

	if (err) {
		fail(w, err);
		return err;
	}
	w->begun = true;
	put_marker(w, KMS_REC_BEGIN);
	return error_of(w);
}

int trace_writer__close(struct trace_writer *w, const json_t *end)
{
	int err = w->begun ? trace_writer__flush(w) : -EINVAL;
	/* whatever happened, the writing thread is done with the file before it is closed */
	int werr = drain(w);

	if (!err)
		err = werr;
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
	if (w->thread_started) {
		/* what it holds is written first */
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	if (w->fd >= 0)
		close(w->fd);
	ZSTD_freeCCtx(w->zc);
	kvec__fini(&w->addrs);
	kvec__fini(&w->symkeys);
	kvec__fini(&w->stack_ids);
	free(w->data.p);
	free(w->syms.p);
	free(w->stacks.p);
	free(w->out.data.p);
	free(w->out.syms.p);
	free(w->out.stacks.p);
	free(w->zbuf);
	free(w);
}
