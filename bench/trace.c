// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * trace: what trace files cost, measured on a recorded file, without BPF.
 *
 *   trace [-m decode|write|codecs|all] [-r ROUNDS] [-l LEVEL] FILE
 *
 * decode: the reader alone. trace_reader__open() (every block's CRC, the
 *         symbols and stacks), then trace_reader__replay() into a sink that
 *         only counts: the floor under `stat -i`, which adds the pipeline.
 * write:  the records replayed into a trace writer, as the collector's thread
 *         gives them to it when recording (encoding, interning, a block
 *         sealed and compressed every MiB or every second of trace time):
 *         the writer's cost per record is this pass minus the decode pass.
 *         -m write -r 1 under callgrind counts the instructions per record.
 * codecs: the file's DATA payloads, decoded, compressed again with zstd
 *         levels 1 and 3 and zlib levels 1 and 6: ratio, and MB/s of raw
 *         payload per CPU second to compress and to decompress.
 * Timings are CPU time, medians of ROUNDS (default 3): the write pass's of
 * this thread (the collector's, when recording) and of every thread.
 * Prints one line per figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>
#include "trace.h"

#define MAX_ROUNDS	15
/* the recorder seals a block at least this often (session_trace.c) */
#define FLUSH_NS	(1000ULL * 1000 * 1000)

static __attribute__((noreturn)) void usage(FILE *f, int code)
{
	fprintf(f, "Usage: trace [-m decode|write|codecs|all] [-r ROUNDS] [-l LEVEL] FILE\n"
		   "Measure reading, writing and compressing the trace file FILE.\n");
	exit(code);
}

static __attribute__((noreturn)) void die(const char *what, const char *why)
{
	fprintf(stderr, "trace: %s: %s\n", what, why);
	exit(1);
}

static double clock_ns(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* this process, every thread */
static double cpu_ns(void)
{
	return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- decode and write: one sink, with or without a writer behind it ---- */

struct pass {
	struct trace_reader *r;
	struct trace_writer *w;		/* NULL: decode only */
	__u64 events, records, flushed;
};

static bool pass_event(void *ctx, struct kms_event *e)
{
	struct pass *p = ctx;

	p->events++;
	if (!p->w)
		return true;
	trace_writer__event(p->w, e);
	/* as the live recorder does: a block sealed every second of the trace */
	if (e->ts - p->flushed >= FLUSH_NS) {
		p->flushed = e->ts;
		trace_writer__flush(p->w);
	}
	return true;
}

static void pass_meta(void *ctx, const struct kms_meta *m)
{
	struct pass *p = ctx;

	p->records++;
	if (p->w)
		trace_writer__meta(p->w, m);
}

static void pass_settle(void *ctx)
{
	struct pass *p = ctx;

	if (p->w)
		trace_writer__settle(p->w);
}

static void pass_begin(void *ctx)
{
	struct pass *p = ctx;

	if (p->w && trace_writer__begin(p->w, trace_reader__meta(p->r)))
		die("trace_writer__begin", strerror(-trace_writer__error(p->w)));
}

static int pass_stack(void *ctx, int stack_id, __u64 *ips, int max)
{
	return trace_reader__stack(ctx, stack_id, ips, max);
}

static struct trace_reader *open_file(const char *path)
{
	struct trace_reader *r;
	char why[192];

	if (trace_reader__open(&r, path, why, sizeof(why)))
		die(path, why);
	return r;
}

/*
 * One pass over path; returns the CPU ns of the replay on this thread (the
 * one that calls the writer, as the collector's does), and of open, in
 * *open_ns, and of the replay in all threads, in *all_ns (the writer's own
 * thread too). out: the writer's file, NULL to decode only.
 */
static double run_pass(const char *path, const char *out, int level, double *open_ns,
		       double *all_ns, struct pass *p, struct trace_write_stats *ws)
{
	struct trace_sink sink = { pass_event, pass_meta, pass_settle, pass_begin, p };
	double t0 = cpu_ns(), t1, self;
	char why[192];
	int err;

	memset(p, 0, sizeof(*p));
	p->r = open_file(path);
	t1 = cpu_ns();
	self = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	*open_ns = t1 - t0;
	if (out) {
		struct trace_writer_opts wo = {
			.stack = pass_stack, .stack_ctx = p->r,
			.ksyms = trace_reader__ksyms(p->r), .level = level,
		};

		err = trace_writer__open(&p->w, out, &wo);
		if (err)
			die(out, strerror(-err));
	}
	if (trace_reader__replay(p->r, &sink, why, sizeof(why)))
		die(path, why);
	if (p->w) {
		const json_t *end = trace_reader__end(p->r);
		json_t *none = json_object();

		*ws = *trace_writer__stats(p->w);
		err = trace_writer__close(p->w, end ? end : none);
		json_decref(none);
		if (err)
			die(out, strerror(-err));
	}
	*all_ns = cpu_ns() - t1;
	self = clock_ns(CLOCK_THREAD_CPUTIME_ID) - self;
	trace_reader__free(p->r);
	return self;
}

static void decode_write(const char *path, const char *mode, int rounds, int level)
{
	bool write = strcmp(mode, "decode");
	double dec[MAX_ROUNDS], wr[MAX_ROUNDS], all[MAX_ROUNDS], opn[MAX_ROUNDS], o, a;
	char out[] = "/tmp/kmemscope-trace-bench.XXXXXX";
	struct trace_write_stats ws = {};
	struct pass p;
	struct stat st;
	int fd = -1;

	if (write) {
		fd = mkstemp(out);
		if (fd < 0)
			die("mkstemp", strerror(errno));
	}
	for (int i = 0; i < rounds; i++) {
		/* the decode pass is the write pass's baseline: run it in write mode too */
		dec[i] = run_pass(path, NULL, level, &opn[i], &a, &p, NULL);
		if (write)
			wr[i] = run_pass(path, out, level, &o, &all[i], &p, &ws);
	}
	if (!p.events)
		die(path, "no events");
	printf("decode: %.1f ns per event, %.2f M events/s (%llu events, %llu metadata "
	       "records; reader + decode, no pipeline)\n", median(dec, rounds) / p.events,
	       p.events / median(dec, rounds) * 1e3, (unsigned long long)p.events,
	       (unsigned long long)p.records);
	printf("open: %.1f ms (checks every block's CRC, keeps symbols and stacks)\n",
	       median(opn, rounds) / 1e6);
	if (!write)
		return;
	if (fstat(fd, &st))
		die(out, strerror(errno));
	printf("write: %.1f ns per event on the caller's thread, %.1f with the writing thread "
	       "(zstd level %d; decode+write %.1f minus decode), %.2f bytes per event, %llu "
	       "blocks, raw DATA %.2f bytes per event\n",
	       (median(wr, rounds) - median(dec, rounds)) / p.events,
	       (median(all, rounds) - median(dec, rounds)) / p.events, level ? level : 1,
	       median(wr, rounds) / p.events, (double)st.st_size / p.events,
	       (unsigned long long)ws.blocks, (double)ws.raw_bytes / p.events);
	close(fd);
	unlink(out);
}

/* ---- codecs: the DATA payloads again, with other codecs and levels ---- */

struct codec {
	const char *name;
	bool zstd;
	int level;
	double in, out, c_ns, d_ns;
};

static void codec_block(struct codec *c, ZSTD_CCtx *zc, ZSTD_DCtx *zd, const void *raw,
			size_t len, void *buf, size_t cap, void *back)
{
	size_t n = cap, m = len;
	double t = cpu_ns();

	if (c->zstd) {
		n = ZSTD_compressCCtx(zc, buf, cap, raw, len, c->level);
		if (ZSTD_isError(n))
			die(c->name, ZSTD_getErrorName(n));
	} else {
		uLongf zn = cap;

		if (compress2(buf, &zn, raw, len, c->level) != Z_OK)
			die(c->name, "compress2 failed");
		n = zn;
	}
	c->c_ns += cpu_ns() - t;
	t = cpu_ns();
	if (c->zstd) {
		m = ZSTD_decompressDCtx(zd, back, len, buf, n);
	} else {
		uLongf zm = len;

		if (uncompress(back, &zm, buf, n) != Z_OK)
			zm = 0;
		m = zm;
	}
	c->d_ns += cpu_ns() - t;
	if (m != len || memcmp(back, raw, len))
		die(c->name, "does not decompress to the payload");
	c->in += len;
	c->out += n;
}

/*
 * The block walk: the file's layout (trace.h) is all this needs, and the
 * payloads as stored are what is measured; the reader has already checked
 * the file, so lengths are trusted here.
 */
static void codecs(const char *path)
{
	struct codec cs[] = {
		{ "zstd-1", true, 1 }, { "zstd-3", true, 3 }, { "zlib-1", false, 1 },
		{ "zlib-6", false, 6 },
	};
	struct trace_reader *r = open_file(path);
	const struct trace_read_info *info = trace_reader__info(r);
	size_t cap = ZSTD_compressBound(KMS_BLOCK_MAX) + KMS_BLOCK_MAX / 100 + 1024;
	__u8 *raw = malloc(KMS_BLOCK_MAX), *buf = malloc(cap), *back = malloc(KMS_BLOCK_MAX);
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	const __u8 *map;
	size_t off = sizeof(struct kms_trace_header);
	double span;
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die(path, strerror(errno));
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED || !raw || !buf || !back || !zc || !zd)
		die(path, strerror(ENOMEM));
	for (__u64 b = 0; b < info->blocks; b++) {
		struct kms_block_header h;
		const __u8 *p;

		memcpy(&h, map + off, sizeof(h));
		p = map + off + sizeof(h);
		off += sizeof(h) + h.stored_len;
		if (h.type != KMS_BLK_DATA)
			continue;
		if (h.codec == KMS_CODEC_ZSTD) {
			size_t n = ZSTD_decompressDCtx(zd, raw, KMS_BLOCK_MAX, p, h.stored_len);

			if (ZSTD_isError(n) || n != h.raw_len)
				die(path, "a DATA block does not decompress");
			p = raw;
		}
		for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
			codec_block(&cs[i], zc, zd, p, h.raw_len, buf, cap, back);
	}
	span = info->t_last > info->t_first ? (info->t_last - info->t_first) / 1e9 : 0;
	printf("codecs: %llu DATA blocks, %.1f MB raw, %.2f raw bytes per record, over %.1f s "
	       "of trace (%.1f MB/s raw)\n", (unsigned long long)info->data_blocks,
	       cs[0].in / 1e6, cs[0].in / info->records, span, span ? cs[0].in / 1e6 / span : 0);
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		struct codec *c = &cs[i];
		double cmb = c->in / 1e6 / (c->c_ns / 1e9);

		printf("codec %s: ratio %.1f, %.3f bytes per record, compress %.0f MB/s, "
		       "decompress %.0f MB/s, %.1f %% of a CPU at the recorded rate\n", c->name,
		       c->in / c->out, c->out / info->records, cmb,
		       c->in / 1e6 / (c->d_ns / 1e9), span ? 100 * c->in / 1e6 / span / cmb : 0);
	}
	munmap((void *)map, st.st_size);
	close(fd);
	ZSTD_freeCCtx(zc);
	ZSTD_freeDCtx(zd);
	free(raw);
	free(buf);
	free(back);
	trace_reader__free(r);
}

int main(int argc, char **argv)
{
	const char *mode = "all";
	int c, rounds = 3, level = 0;

	while ((c = getopt(argc, argv, "m:r:l:h")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'l':
			level = atoi(optarg);
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc - 1 || rounds < 1 || rounds > MAX_ROUNDS ||
	    (strcmp(mode, "decode") && strcmp(mode, "write") && strcmp(mode, "codecs") &&
	     strcmp(mode, "all")))
		usage(stderr, 2);
	if (strcmp(mode, "codecs"))
		decode_write(argv[optind], strcmp(mode, "all") ? mode : "write", rounds, level);
	if (!strcmp(mode, "codecs") || !strcmp(mode, "all"))
		codecs(argv[optind]);
	return 0;
}
