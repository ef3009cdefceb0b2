# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Folded stacks as flamegraph.pl reads them, for the live tests (flame.sh)."""
import re

FAMILIES = {"[kmalloc]", "[kmem_cache]", "[page]", "[vmalloc]", "[dma]", "[percpu]"}
LINE = re.compile(r"^(\S.*) ([0-9]+)$")
# src/flame.h: FLAME_WIDTH, FLAME_PAD, FLAME_MIN_PX
WIDTH, PAD, MIN_PX = 1200, 10, 0.1


def read(path):
    """[(frames, value)]: "frame;frame;... value", root (a family) first; raises on a bad line"""
    out = []
    for n, line in enumerate(open(path), 1):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            raise ValueError(f"line {n}: not 'frames value': {line!r}")
        frames = m.group(1).split(";")
        if frames[0] not in FAMILIES or "" in frames or int(m.group(2)) <= 0:
            raise ValueError(f"line {n}: bad frames or value: {line!r}")
        out.append((m.group(1), int(m.group(2))))
    return out


def drawn(lines):
    """nodes of the folded tree (the root included) a flame graph draws: wide enough"""
    total = sum(v for _, v in lines)
    nodes = {}
    for frames, v in lines:
        parts = frames.split(";")
        for i in range(1, len(parts) + 1):
            key = ";".join(parts[:i])
            nodes[key] = nodes.get(key, 0) + v
    scale = (WIDTH - 2 * PAD) / total if total else 0
    return (1 if total else 0) + sum(1 for v in nodes.values() if v * scale >= MIN_PX)
