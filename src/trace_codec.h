/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * How a DATA block encodes records (docs/trace-format.md): a kind byte, then
 * for an event a varint mask of the fields that differ from the previous
 * event of the same type, and each such field as a zigzag varint of its
 * difference at the field's width. Time is a difference from the previous
 * record of any type. Consecutive events of one type share most fields (cpu,
 * pid, gfp, cache, context), and addresses differ by little, so a 64-byte
 * record takes ~10-16 bytes before compression. The state starts zeroed in
 * every block: blocks decode independently.
 */
#ifndef KMS_TRACE_CODEC_H
#define KMS_TRACE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <endian.h>
#include <linux/types.h>
#include "kmemscope.h"
#include "trace.h"

/* the encoded fields of struct kms_event, in mask bit order (type is the kind byte) */
static const struct { __u8 off, size; } trace_fields[] = {
	{ offsetof(struct kms_event, ctx), 1 },
	{ offsetof(struct kms_event, order), 1 },
	{ offsetof(struct kms_event, extra), 1 },
	{ offsetof(struct kms_event, node), 2 },
	{ offsetof(struct kms_event, cpu), 2 },
	{ offsetof(struct kms_event, ts), 8 },
	{ offsetof(struct kms_event, ptr), 8 },
	{ offsetof(struct kms_event, site), 8 },
	{ offsetof(struct kms_event, obj), 8 },
	{ offsetof(struct kms_event, bytes_req), 4 },
	{ offsetof(struct kms_event, bytes_alloc), 4 },
	{ offsetof(struct kms_event, gfp), 4 },
	{ offsetof(struct kms_event, pid), 4 },
	{ offsetof(struct kms_event, stack_id), 4 },
	{ offsetof(struct kms_event, pc), 4 },
};
#define TRACE_NR_FIELDS (sizeof(trace_fields) / sizeof(trace_fields[0]))
#define TRACE_TS_FIELD 5
/* the longest encoding of one record: kind, mask, fields; or kind and a kms_meta */
#define TRACE_REC_MAX (1 + 3 + TRACE_NR_FIELDS * 10)

_Static_assert(TRACE_NR_FIELDS <= 21, "the mask is a varint of at most 3 bytes");
_Static_assert(TRACE_REC_MAX >= 1 + sizeof(struct kms_meta), "a metadata record fits");

/*
 * The last event of each type, field by field in mask bit order, as 64-bit
 * values: the decoder adds a difference to a field whatever its width, and
 * only the field's low bits are stored into a record (trace_decode()).
 */
struct trace_codec {
	__u64 prev[KMS_EV_NR_EVENTS][TRACE_NR_FIELDS];
	__u64 ts;					/* last record's time */
};

static inline __u64 trace_field_get(const struct kms_event *e, unsigned int i)
{
	const char *p = (const char *)e + trace_fields[i].off;
	__u8 v8; __u16 v16; __u32 v32; __u64 v64;

	switch (trace_fields[i].size) {
	case 1: memcpy(&v8, p, 1); return v8;
	case 2: memcpy(&v16, p, 2); return v16;
	case 4: memcpy(&v32, p, 4); return v32;
	default: memcpy(&v64, p, 8); return v64;
	}
}

static inline void trace_field_set(struct kms_event *e, unsigned int i, __u64 v)
{
	char *p = (char *)e + trace_fields[i].off;
	__u8 v8 = v; __u16 v16 = v; __u32 v32 = v;

	switch (trace_fields[i].size) {
	case 1: memcpy(p, &v8, 1); break;
	case 2: memcpy(p, &v16, 2); break;
	case 4: memcpy(p, &v32, 4); break;
	default: memcpy(p, &v, 8); break;
	}
}

static inline __u8 *trace_put_varint(__u8 *p, __u64 v)
{
	while (v >= 0x80) {
		*p++ = (__u8)v | 0x80;
		v >>= 7;
	}
	*p++ = (__u8)v;
	return p;
}

/* NULL when the varint runs past end or past 64 bits */
static inline const __u8 *trace_get_varint(const __u8 *p, const __u8 *end, __u64 *v)
{
	__u64 r = 0;

	/*
	 * Where 8 bytes can be read, a varint of up to 8 bytes (below 2^56: all
	 * but the widest differences) is decoded without a branch per byte: its
	 * length from the first byte without a continuation bit, then its 7-bit
	 * groups packed pairwise. The per-byte loop below took two thirds of the
	 * replay's decoding, a mispredicted branch per varint (callgrind, perf).
	 */
	if (end - p >= 8) {
		__u64 w, stop;

		memcpy(&w, p, 8);
		w = le64toh(w);
		stop = ~w & 0x8080808080808080ULL;
		if (stop) {
			/* the bytes up to the last one, continuation bits dropped */
			w &= (stop ^ (stop - 1)) & 0x7f7f7f7f7f7f7f7fULL;
			w = (w & 0x007f007f007f007fULL) | ((w & 0x7f007f007f007f00ULL) >> 1);
			w = (w & 0x00003fff00003fffULL) | ((w & 0x3fff00003fff0000ULL) >> 2);
			w = (w & 0x000000000fffffffULL) | ((w & 0x0fffffff00000000ULL) >> 4);
			*v = w;
			return p + (__builtin_ctzll(stop) + 1) / 8;
		}
	}

	for (unsigned int shift = 0; shift < 64 && p < end; shift += 7) {
		__u8 b = *p++;

		r |= (__u64)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

/* the difference of two field values, sign-extended from the field's width, zigzagged */
static inline __u64 trace_zigzag(__u64 diff, unsigned int size)
{
	unsigned int drop = 64 - 8 * size;
	__s64 d = (__s64)(diff << drop) >> drop;

	return ((__u64)d << 1) ^ (__u64)(d >> 63);
}

static inline __u64 trace_unzigzag(__u64 z)
{
	return (z >> 1) ^ -(z & 1);
}

/* e->type must be an event type (1 .. KMS_EV_NR_EVENTS - 1); returns the end of the record */
static inline __u8 *trace_encode_event(struct trace_codec *c, const struct kms_event *e, __u8 *p)
{
	__u64 *prev = c->prev[e->type];
	__u8 *mask_at, fields[TRACE_NR_FIELDS * 10], *f = fields;
	__u32 mask = 0;

	prev[TRACE_TS_FIELD] = c->ts;
	/*
	 * Unrolled, every field's width is a constant and the switches go: the
	 * encoding takes half the instructions, the decoding two thirds
	 * (callgrind, bench/trace; the writer runs on the collector's thread).
	 */
#pragma GCC unroll 16
	for (unsigned int i = 0; i < TRACE_NR_FIELDS; i++) {
		__u64 v = trace_field_get(e, i);

		if (v == prev[i])
			continue;
		mask |= 1u << i;
		f = trace_put_varint(f, trace_zigzag(v - prev[i], trace_fields[i].size));
		prev[i] = v;
	}
	*p++ = e->type;
	mask_at = p;
	p = trace_put_varint(mask_at, mask);
	memcpy(p, fields, f - fields);
	c->ts = e->ts;
	return p + (f - fields);
}

static inline __u8 *trace_encode_meta(struct trace_codec *c, const struct kms_meta *m, __u8 *p)
{
	*p++ = m->type;
	memcpy(p, m, sizeof(*m));
	c->ts = m->ts;
	return p + sizeof(*m);
}

/* one decoded record */
enum trace_rec {
	TRACE_REC_EVENT, TRACE_REC_META, TRACE_REC_SETTLE, TRACE_REC_BEGIN, TRACE_REC_TICK,
};

/* NULL when the bytes at p are not a record (see trace_encode_*) */
static inline const __u8 *trace_decode(struct trace_codec *c, const __u8 *p, const __u8 *end,
				       enum trace_rec *kind, struct kms_event *out,
				       struct kms_meta *m)
{
	__u64 *v, mask, z;
	__u8 type;

	if (p >= end)
		return NULL;
	type = *p++;
	if (type == KMS_REC_SETTLE || type == KMS_REC_BEGIN || type == KMS_REC_TICK) {
		*kind = type == KMS_REC_SETTLE ? TRACE_REC_SETTLE :
			type == KMS_REC_BEGIN ? TRACE_REC_BEGIN : TRACE_REC_TICK;
		return p;
	}
	if (type >= KMS_EV_META_TASK && type <= KMS_EV_META_LOSS) {
		if ((size_t)(end - p) < sizeof(*m))
			return NULL;
		memcpy(m, p, sizeof(*m));
		if (m->type != type)
			return NULL;
		/* consumers read the name as a C string: one from a file may not end */
		m->name[KMS_NAME_LEN - 1] = '\0';
		c->ts = m->ts;
		*kind = TRACE_REC_META;
		return p + sizeof(*m);
	}
	if (type == KMS_EV_NONE || type >= KMS_EV_NR_EVENTS)
		return NULL;
	p = trace_get_varint(p, end, &mask);
	if (!p || mask >> TRACE_NR_FIELDS)
		return NULL;
	v = c->prev[type];
	v[TRACE_TS_FIELD] = c->ts;
	/* the fields that changed only, lowest bit first: no branch per field */
	for (; mask; mask &= mask - 1) {
		p = trace_get_varint(p, end, &z);
		if (!p)
			return NULL;
		v[__builtin_ctzll(mask)] += trace_unzigzag(z);
	}
	/* unrolled, as in trace_encode_event(): every field's width is a constant */
#pragma GCC unroll 16
	for (unsigned int i = 0; i < TRACE_NR_FIELDS; i++)
		trace_field_set(out, i, v[i]);
	out->type = type;
	c->ts = v[TRACE_TS_FIELD];
	*kind = TRACE_REC_EVENT;
	return p;
}

#endif
