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


def same(path_a, path_b):
    """"ok" when two folded outputs hold the same lines, else what differs"""
    a, b = sorted(read(path_a)), sorted(read(path_b))
    return "ok" if a == b else f"{len(a)} vs {len(b)} lines, e.g. {sorted(set(a) ^ set(b))[:2]}"


def svg_frames(svg_path, folded_path, *texts):
    """"ok" when the SVG draws one frame per node of the folded tree wide enough (and
    says so in data-frames), and holds every text"""
    import re
    svg = open(svg_path).read()
    want = drawn(read(folded_path))
    attr = int(re.search(r'data-frames="(\d+)"', svg).group(1))
    frames = svg.count('<g class="f"')
    missing = [t for t in texts if t not in svg]
    ok = attr == frames == want and not missing
    return "ok" if ok else f"data-frames {attr}, {frames} frames, {want} drawable; missing {missing}"
