// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the trace reader: any bytes go through everything a
 * report does with a file (open, info, META/END, symbols, stacks, replay).
 * The reader must refuse or cut short what it cannot read, never crash, hang
 * or leak. Built with clang -fsanitize=fuzzer,address,undefined (make fuzz).
 *
 * Every input is read twice: as it is, and with the CRCs of its blocks made
 * right, because a mutation almost always breaks a CRC and the reader would
 * stop there, never reaching the payload decoders behind it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <zlib.h>
#include "ksyms.h"
#include "trace.h"

struct seen {
	const struct ksyms *k;
	__u64 sum;		/* reads every delivered byte: a bad one shows under ASan */
	__u64 events;
	char name[256];
};

static void touch(struct seen *s, const void *p, size_t len)
{
	const __u8 *b = p;

	for (size_t i = 0; i < len; i++)
		s->sum += b[i];
}

static bool on_event(void *ctx, struct kms_event *e)
{
	struct seen *s = ctx;

	touch(s, e, sizeof(*e));
	ksyms__format(s->k, e->site, s->name, sizeof(s->name));
	/* a report stops early at --to: so does this, now and then */
	return ++s->events % 4096;
}

static void on_meta(void *ctx, const struct kms_meta *m)
{
	touch(ctx, m, sizeof(*m));
}

static void on_mark(void *ctx)
{
}

static void read_all(const uint8_t *data, size_t size)
{
	struct seen s = {};
	struct trace_sink sink = { on_event, on_meta, on_mark, on_mark, &s, on_mark };
	struct trace_reader *r;
	__u64 ips[KMS_MAX_STACK];
	char why[192];

	if (trace_reader__open_mem(&r, data, size, why, sizeof(why))) {
		/* a refused file always says why */
		if (!why[0])
			__builtin_trap();
		return;
	}
	touch(&s, trace_reader__info(r), sizeof(struct trace_read_info));
	free(json_dumps(trace_reader__meta(r), JSON_COMPACT));
	if (trace_reader__end(r))
		free(json_dumps(trace_reader__end(r), JSON_COMPACT));
	s.k = trace_reader__ksyms(r);
	/* the stack ids a small file can hold, and frames symbolized as a report does */
	for (int id = -2; id < 64; id++) {
		int n = trace_reader__stack(r, id, ips, KMS_MAX_STACK);

		for (int i = 0; i < n; i++)
			ksyms__format(s.k, ips[i], s.name, sizeof(s.name));
	}
	trace_reader__replay(r, &sink, why, sizeof(why));
	trace_reader__free(r);
}

/* the CRCs of every block that fits in p made right; false when none needed it */
static bool fix_crcs(uint8_t *p, size_t size)
{
	size_t off = sizeof(struct kms_trace_header);
	bool fixed = false;

	while (size - off >= sizeof(struct kms_block_header)) {
		struct kms_block_header h;
		__u32 crc, hcrc;

		memcpy(&h, p + off, sizeof(h));
		if (size - off - sizeof(h) < h.stored_len)
			break;
		crc = crc32(0, p + off + sizeof(h), h.stored_len);
		fixed |= crc != h.crc;
		h.crc = crc;
		hcrc = crc32(0, (const void *)&h, offsetof(struct kms_block_header, hcrc));
		fixed |= hcrc != h.hcrc;
		h.hcrc = hcrc;
		memcpy(p + off, &h, sizeof(h));
		off += sizeof(h) + h.stored_len;
	}
	return fixed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	read_all(data, size);
	if (size < sizeof(struct kms_trace_header))
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (fix_crcs(copy, size))
		read_all(copy, size);
	free(copy);
	return 0;
}
