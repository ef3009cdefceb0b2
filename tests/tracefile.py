#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A second, independent reader of kmemscope trace files, for the tests.

Written from the layouts in src/trace.h and src/trace_codec.h, not from the
reader: a 32-byte file header, then blocks of a 64-byte header (CRC-32 of its
first 56 bytes, CRC-32 of the stored payload) and a payload, zstd-compressed
when that was smaller (decoded with the zstd program).

  tracefile.py count FILE        JSON: what the whole, valid blocks hold
  tracefile.py corpus OUT FILE...  fuzzer seeds: each file, and variants of it
  tracefile.py older IN OUT KEY  IN as a kmemscope without META's kernel.KEY wrote it
"""
import json
import os
import struct
import subprocess
import sys
import zlib

HEADER = struct.Struct("<8sIIIIQ")
BLOCK = struct.Struct("<IHHQQQIIIIQII")
BLOCK_MAGIC = 0x424D534B
META, SYMS, STACKS, DATA, END = 1, 2, 3, 4, 5
CODEC_NONE, CODEC_ZSTD = 0, 1
# record kinds (include/kmemscope.h, src/trace.h)
NR_EVENTS = 18
META_FIRST, META_LAST = 64, 67
REC_SETTLE, REC_BEGIN, REC_TICK = 0xF0, 0xF1, 0xF2
META_SIZE = 64
NR_FIELDS = 15


class Block:
    def __init__(self, off, fields, stored):
        (self.magic, self.type, self.codec, self.seq, self.t_first, self.t_last, self.count,
         self.raw_len, self.stored_len, self.crc, self.lost, self.hcrc, self.pad) = fields
        self.off = off
        self.stored = stored

    def raw(self):
        if self.codec == CODEC_NONE:
            return self.stored
        out = subprocess.run(["zstd", "-q", "-d", "-c"], input=self.stored,
                             capture_output=True, check=True).stdout
        if len(out) != self.raw_len:
            raise ValueError(f"block {self.seq}: {len(out)} bytes decoded, {self.raw_len} said")
        return out


def blocks(data):
    """The whole, valid blocks in order, and why reading stopped ("" at an END block)."""
    out = []
    if len(data) < HEADER.size or data[:8] != b"KMSTRACE":
        return out, "no trace header"
    off = HEADER.size
    while True:
        if off == len(data):
            return out, "end of file"
        if len(data) - off < BLOCK.size:
            return out, "cut in a block header"
        fields = BLOCK.unpack_from(data, off)
        if fields[0] != BLOCK_MAGIC or fields[11] != zlib.crc32(data[off:off + 56]):
            return out, "damaged block header"
        b = Block(off, fields, b"")
        if b.seq != len(out):
            return out, "out of order"
        end = off + BLOCK.size + b.stored_len
        if end > len(data):
            return out, "cut in a payload"
        b.stored = data[off + BLOCK.size:end]
        if zlib.crc32(b.stored) != b.crc:
            return out, "payload CRC"
        out.append(b)
        off = end
        if b.type == END:
            return out, ""


def varint(p, i):
    v, shift = 0, 0
    while True:
        b = p[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def records(raw):
    """The kinds of the records of a DATA payload: 'event', 'meta', 'settle', 'begin',
    'tick'."""
    i, out = 0, []
    while i < len(raw):
        kind = raw[i]
        i += 1
        if kind == REC_SETTLE:
            out.append("settle")
        elif kind == REC_BEGIN:
            out.append("begin")
        elif kind == REC_TICK:
            out.append("tick")
        elif META_FIRST <= kind <= META_LAST:
            i += META_SIZE
            out.append("meta")
        elif 0 < kind < NR_EVENTS:
            mask, i = varint(raw, i)
            if mask >> NR_FIELDS:
                raise ValueError(f"mask {mask:#x}")
            for _ in range(bin(mask).count("1")):
                _, i = varint(raw, i)
            out.append("event")
        else:
            raise ValueError(f"kind {kind:#x}")
    if i != len(raw):
        raise ValueError("record past the payload")
    return out


def count(path):
    data = open(path, "rb").read()
    bl, why = blocks(data)
    c = {"size": len(data), "blocks": len(bl), "stopped": why or "END block",
         "meta": bool(bl) and bl[0].type == META, "ended": bool(bl) and bl[-1].type == END,
         "data_blocks": 0, "records": 0, "events": 0, "events_before_begin": 0, "metas": 0}
    begun = False
    for b in bl:
        if b.type != DATA:
            continue
        kinds = records(b.raw())
        if len(kinds) != b.count:
            raise ValueError(f"block {b.seq}: {len(kinds)} records, {b.count} announced")
        c["data_blocks"] += 1
        c["records"] += b.count
        for k in kinds:
            begun = begun or k == "begin"
            if k == "event":
                c["events" if begun else "events_before_begin"] += 1
            c["metas"] += k == "meta"
    return c


def block_bytes(b, codec, payload):
    """b's header and payload, stored with codec, its CRCs made right again."""
    head = [b.magic, b.type, codec, b.seq, b.t_first, b.t_last, b.count, b.raw_len,
            len(payload), zlib.crc32(payload), b.lost, 0, 0]
    head[11] = zlib.crc32(BLOCK.pack(*head)[:56])
    return BLOCK.pack(*head) + payload


def older_meta(path, out, key):
    """The file as an older kmemscope wrote it, whose META's kernel object had no member
    key: the META block stored again (uncompressed), every other block as it was."""
    data = open(path, "rb").read()
    bl, why = blocks(data)
    if why:
        raise ValueError(f"{path}: {why}")
    parts = [data[:HEADER.size]]
    for b in bl:
        if b.type == META:
            meta = json.loads(b.raw())
            if key not in meta.get("kernel", {}):
                raise ValueError(f"{path}: META has no kernel.{key} to leave out")
            del meta["kernel"][key]
            payload = json.dumps(meta).encode()
            b.raw_len = len(payload)
            parts.append(block_bytes(b, CODEC_NONE, payload))
        else:
            parts.append(data[b.off:b.off + BLOCK.size + b.stored_len])
    with open(out, "wb") as f:
        f.write(b"".join(parts))


def corpus(out, paths):
    """Each file; it uncompressed (the fuzzer reaches the decoders without zstd in
    the way); cut short; without its END; with a bit flipped in a payload."""
    os.makedirs(out, exist_ok=True)
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        data = open(path, "rb").read()
        bl, why = blocks(data)
        if why:
            raise ValueError(f"{path}: {why}")
        plain = data[:HEADER.size] + b"".join(block_bytes(b, CODEC_NONE, b.raw()) for b in bl)
        variants = {
            "": data,
            "-plain": plain,
            "-noend": data[:bl[-1].off],
            "-cut": data[:(bl[-2].off + bl[-1].off) // 2],
            "-flip": data[:bl[1].off + 70] + bytes([data[bl[1].off + 70] ^ 4]) +
                     data[bl[1].off + 71:],
        }
        for suffix, v in variants.items():
            with open(os.path.join(out, f"{name}{suffix}.kmt"), "wb") as f:
                f.write(v)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "count":
        print(json.dumps(count(sys.argv[2])))
    elif len(sys.argv) >= 4 and sys.argv[1] == "corpus":
        corpus(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "older":
        older_meta(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
