#!/usr/bin/env python3
"""Independent reference scorer for the "shapes" world (spec: /work/shared/specs/shapes.md).

Written from the spec alone, to cross-check the project's own scorer. Uses only numpy + Pillow
and does not import the `dalle` package.

Usage:
    python benchmarks/independent_shapes_scorer.py DIR [--caption-key KEY] [--json]
    python benchmarks/independent_shapes_scorer.py --selftest

DIR holds metadata.jsonl: one JSON object per line with "file_name" (relative to DIR) and the
caption under KEY.

JUDGEMENT CALLS (where the spec is loose)
-----------------------------------------
 J1  Brightness of a pixel = its brightest channel (max of R, G, B), as in scoring rule 1.
     Foreground = brightness >= 110; objects = 8-connected components of foreground with
     >= 20 pixels. Smaller components are ignored (noise), not counted as objects.
 J2  "Bright core" = pixels of the region whose brightness >= 0.8 * (peak brightness of the
     region). Colour = per-channel median (numpy.median, may be fractional) of the core; the
     nearest palette colour by Euclidean RGB distance is taken; the object is rejected
     (image fails) if that distance is >= 100 (spec: "under 100" to accept).
 J3  Templates are rendered in continuous coordinates over the region's bounding box, taken as
     [0, w] x [0, h] with w, h the inclusive pixel extents (xmax-xmin+1, ymax-ymin+1); i.e. the
     s x s box of the spec is stretched independently in x and y to w x h:
       circle   : ellipse centred (w/2, h/2) with semi-axes w/2, h/2;
       square   : the whole box;
       triangle : apex (w/2, 0), base corners (0, h) and (w, h) (pointing up);
       cross    : horizontal bar y in [h/3, 2h/3] over full width  union
                  vertical bar   x in [w/3, 2w/3] over full height (bars one third thick).
     Each template pixel value is its area coverage in [0, 1], estimated by 8 x 8 supersampling.
 J4  "Soft IoU": the region is also soft: inside the bbox, a pixel of the component has weight
     min(1, brightness / peak) (so anti-aliased edge pixels count partially), every other pixel
     (background or pixels of another component) has weight 0. softIoU(R, T) =
     sum(min(R, T)) / sum(max(R, T)) (fuzzy Jaccard). The shape is the argmax; ties go to the
     first in the order circle, square, triangle, cross.
 J5  Size: longer side of the inclusive bbox extent (max(w, h)) < 17 -> small, else large.
     Only checked when the caption states a size word.
 J6  Object centre = centre of its bounding box ((xmin+xmax)/2, (ymin+ymax)/2), matching how
     the spec places shapes by their box (a centroid would bias triangles downward).
 J7  Relation "A REL B": d = centre(B) - centre(A). Dominant axis = x if |dx| > |dy|, y if
     |dy| > |dx|; exact tie (incl. d = 0) matches no relation (fails). "A to the left of B"
     <=> dominant x and dx > 0; "right of" <=> x, dx < 0; "above" <=> y, dy > 0 (y grows
     downwards, so B is lower); "below" <=> y, dy < 0. The spec's >= 14 px distance rule
     is a generation constraint and is NOT enforced when scoring.
 J8  "In either order": for two objects, both assignments of image objects to the caption's
     (A, B) are tried; the image is correct if some assignment matches colours, shapes, stated
     sizes AND the relation evaluated with that assignment. Consequence: for two identical
     objects (e.g. "a red circle to the left of a red circle") the inverse relation is also
     accepted, since nothing distinguishes A from B.
 J9  Captions: case-insensitive, surrounding whitespace and one trailing '.' stripped, inner
     whitespace collapsed; article must be a/an (not checked against the vowel rule); only
     the canonical grammar is accepted. Unparseable captions count as failures ("seen" unless
     the raw text literally contains a held-out "colour [size] shape" phrase).
 J10 Held-out = any parsed object is (green, triangle), (yellow, circle), (blue, cross) or
     (purple, square); all other prompts are "seen".
 J11 Images are loaded with Pillow and converted to RGB (alpha dropped). An image that is not
     64 x 64 fails with a reason (no resizing); an unreadable/missing file fails likewise.
 J12 Default caption key: if --caption-key is not given, the first present of "canonical",
     "caption", "text", "prompt" is used per row; if given, that key is required.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import deque

import numpy as np
from PIL import Image

PALETTE = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 190, 60),
    "cyan": (40, 200, 220),
    "blue": (40, 80, 230),
    "purple": (150, 60, 210),
    "white": (235, 235, 235),
}
PAL_NAMES = list(PALETTE)
PAL_ARR = np.array([PALETTE[n] for n in PAL_NAMES], dtype=np.float64)
SHAPES = ["circle", "square", "triangle", "cross"]
SIZES = ["small", "large"]
RELATIONS = ["to the left of", "to the right of", "above", "below"]
HELD_OUT = {("green", "triangle"), ("yellow", "circle"), ("blue", "cross"), ("purple", "square")}

CANVAS = 64
FG_THRESHOLD = 110
MIN_PIXELS = 20
CORE_FRAC = 0.8
MAX_COLOUR_DIST = 100.0
SMALL_MAX_SIDE = 17  # longer side < 17 -> small
SUPERSAMPLE = 8

# ----------------------------------------------------------------------------- captions

_OBJ = (
    r"(?:a|an)\s+(?:(?P<size{i}>small|large)\s+)?(?P<colour{i}>"
    + "|".join(PAL_NAMES)
    + r")\s+(?P<shape{i}>"
    + "|".join(SHAPES)
    + r")"
)
_REL = r"(?P<rel>" + "|".join(re.escape(r) for r in RELATIONS) + r")"
_ONE_RE = re.compile(r"^" + _OBJ.format(i=1) + r"$")
_TWO_RE = re.compile(r"^" + _OBJ.format(i=1) + r"\s+" + _REL + r"\s+" + _OBJ.format(i=2) + r"$")


def parse_caption(text: str):
    """Return {"objects": [(colour, shape, size|None), ...], "relation": str|None} or None."""
    t = re.sub(r"\s+", " ", str(text).strip().lower())
    if t.endswith("."):
        t = t[:-1].rstrip()
    m = _TWO_RE.match(t)
    if m:
        objs = [(m["colour1"], m["shape1"], m["size1"]), (m["colour2"], m["shape2"], m["size2"])]
        return {"objects": objs, "relation": m["rel"]}
    m = _ONE_RE.match(t)
    if m:
        return {"objects": [(m["colour1"], m["shape1"], m["size1"])], "relation": None}
    return None


def is_held_out(text: str, parsed=None) -> bool:
    if parsed is not None:
        return any((c, s) in HELD_OUT for c, s, _ in parsed["objects"])
    t = str(text).lower()
    return any(re.search(rf"\b{c}\s+(?:(?:small|large)\s+)?{s}\b", t) for c, s in HELD_OUT)


# ----------------------------------------------------------------------------- components


def connected_components(mask: np.ndarray):
    """8-connected components of a boolean mask via BFS. Returns list of (ys, xs) arrays."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    comps = []
    ys0, xs0 = np.nonzero(mask)
    for sy, sx in zip(ys0.tolist(), xs0.tolist()):
        if seen[sy, sx]:
            continue
        seen[sy, sx] = True
        q = deque([(sy, sx)])
        cy, cx = [], []
        while q:
            y, x = q.popleft()
            cy.append(y)
            cx.append(x)
            for dy in (-1, 0, 1):
                ny = y + dy
                if ny < 0 or ny >= h:
                    continue
                for dx in (-1, 0, 1):
                    nx = x + dx
                    if (dy == 0 and dx == 0) or nx < 0 or nx >= w:
                        continue
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        q.append((ny, nx))
        comps.append((np.array(cy), np.array(cx)))
    return comps


# ----------------------------------------------------------------------------- templates

_TEMPLATE_CACHE: dict = {}


def template(shape: str, w: int, h: int) -> np.ndarray:
    """Coverage (h x w, values in [0,1]) of `shape` stretched over the continuous box [0,w]x[0,h]."""
    key = (shape, w, h)
    if key in _TEMPLATE_CACHE:
        return _TEMPLATE_CACHE[key]
    n = SUPERSAMPLE
    xs = (np.arange(w * n) + 0.5) / n  # sample points in continuous coordinates
    ys = (np.arange(h * n) + 0.5) / n
    X, Y = np.meshgrid(xs, ys)
    if shape == "circle":
        inside = ((X - w / 2) / (w / 2)) ** 2 + ((Y - h / 2) / (h / 2)) ** 2 <= 1.0
    elif shape == "square":
        inside = np.ones_like(X, dtype=bool)
    elif shape == "triangle":
        # apex (w/2, 0), base y = h; half-width at height y is (w/2) * y / h
        inside = np.abs(X - w / 2) <= (w / 2) * (Y / h)
    elif shape == "cross":
        hbar = (Y >= h / 3) & (Y <= 2 * h / 3)
        vbar = (X >= w / 3) & (X <= 2 * w / 3)
        inside = hbar | vbar
    else:
        raise ValueError(shape)
    cov = inside.reshape(h, n, w, n).mean(axis=(1, 3))
    _TEMPLATE_CACHE[key] = cov
    return cov


def soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    den = np.maximum(a, b).sum()
    return float(np.minimum(a, b).sum() / den) if den > 0 else 0.0


# ----------------------------------------------------------------------------- analysis


def analyse_image(img: np.ndarray):
    """img: (64, 64, 3) uint8. Returns list of object dicts (reading order of first pixel)."""
    rgb = img.astype(np.float64)
    bright = rgb.max(axis=2)
    comps = [c for c in connected_components(bright >= FG_THRESHOLD) if len(c[0]) >= MIN_PIXELS]
    objects = []
    for ys, xs in comps:
        b = bright[ys, xs]
        peak = b.max()
        core = b >= CORE_FRAC * peak
        median = np.median(rgb[ys[core], xs[core]], axis=0)
        dists = np.sqrt(((PAL_ARR - median) ** 2).sum(axis=1))
        ci = int(np.argmin(dists))
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        w, h = x1 - x0 + 1, y1 - y0 + 1
        region = np.zeros((h, w))
        region[ys - y0, xs - x0] = np.minimum(1.0, b / peak)
        ious = {s: soft_iou(region, template(s, w, h)) for s in SHAPES}
        shape = max(SHAPES, key=lambda s: ious[s])  # max() keeps first on ties
        objects.append(
            {
                "colour": PAL_NAMES[ci],
                "colour_dist": float(dists[ci]),
                "colour_ok": bool(dists[ci] < MAX_COLOUR_DIST),
                "median": [float(v) for v in median],
                "shape": shape,
                "ious": ious,
                "size": "small" if max(w, h) < SMALL_MAX_SIDE else "large",
                "bbox": (x0, y0, x1, y1),
                "centre": ((x0 + x1) / 2.0, (y0 + y1) / 2.0),
                "n_pixels": int(len(ys)),
            }
        )
    return objects


def relation_of(a: dict, b: dict):
    """Relation word(s) such that 'A REL B' holds, from the displacement d = centre(B)-centre(A)."""
    dx = b["centre"][0] - a["centre"][0]
    dy = b["centre"][1] - a["centre"][1]
    if abs(dx) > abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    if abs(dy) > abs(dx):
        return "above" if dy > 0 else "below"
    return None


def _obj_str(o):
    return f"{o['size']} {o['colour']} {o['shape']}"


def _mismatch(want, got):
    colour, shape, size = want
    bad = []
    if got["colour"] != colour:
        bad.append(f"colour {got['colour']}!={colour}")
    if got["shape"] != shape:
        bad.append(f"shape {got['shape']}!={shape}")
    if size is not None and got["size"] != size:
        bad.append(f"size {got['size']}!={size}")
    return bad


def score(img: np.ndarray, caption: str):
    """Return (correct: bool, reason: str)."""
    parsed = parse_caption(caption)
    if parsed is None:
        return False, "unparseable caption"
    objs = analyse_image(img)
    want = parsed["objects"]
    if len(objs) != len(want):
        return False, f"object count {len(objs)} != {len(want)} (found: " + ", ".join(
            _obj_str(o) for o in objs
        ) + ")"
    for o in objs:
        if not o["colour_ok"]:
            return False, (
                f"colour too far from palette (median {[round(v) for v in o['median']]}, "
                f"nearest {o['colour']} at {o['colour_dist']:.1f})"
            )
    if len(want) == 1:
        bad = _mismatch(want[0], objs[0])
        return (not bad), ("ok" if not bad else "; ".join(bad))
    reasons = []
    for ia, ib in ((0, 1), (1, 0)):
        a, b = objs[ia], objs[ib]
        bad = _mismatch(want[0], a) + _mismatch(want[1], b)
        rel = relation_of(a, b)
        if not bad and rel != parsed["relation"]:
            bad.append(f"relation '{rel}' != '{parsed['relation']}'")
        if not bad:
            return True, "ok"
        reasons.append((len(bad), f"A={_obj_str(a)}, B={_obj_str(b)}: " + "; ".join(bad)))
    return False, min(reasons)[1]  # report the assignment with the fewest mismatches


def load_image(path: str):
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return arr


# ----------------------------------------------------------------------------- evaluation


def _caption_from_row(row: dict, key):
    if key is not None:
        return row.get(key)
    for k in ("canonical", "caption", "text", "prompt"):
        if k in row:
            return row[k]
    return None


def evaluate_dir(d: str, caption_key=None):
    rows = []
    with open(os.path.join(d, "metadata.jsonl"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    results = []
    for row in rows:
        fn = row.get("file_name")
        cap = _caption_from_row(row, caption_key)
        if cap is None:
            results.append((fn, cap, False, False, "missing caption key"))
            continue
        parsed = parse_caption(cap)
        held = is_held_out(cap, parsed)
        try:
            img = load_image(os.path.join(d, fn))
        except Exception as e:  # noqa: BLE001
            results.append((fn, cap, held, False, f"cannot load image: {e}"))
            continue
        if img.shape[:2] != (CANVAS, CANVAS):
            results.append(
                (fn, cap, held, False, f"image size {img.shape[1]}x{img.shape[0]} != 64x64")
            )
            continue
        ok, reason = score(img, cap)
        results.append((fn, cap, held, ok, reason))

    def acc(sel):
        return (sum(r[3] for r in sel) / len(sel)) if sel else None

    seen = [r for r in results if not r[2]]
    held = [r for r in results if r[2]]
    return {
        "n": len(results),
        "accuracy": acc(results),
        "seen": acc(seen),
        "held_out": acc(held),
        "n_seen": len(seen),
        "n_held_out": len(held),
        "failures": [
            {"file": r[0], "caption": r[1], "held_out": r[2], "reason": r[4]}
            for r in results
            if not r[3]
        ],
    }


def _fmt(a):
    return "n/a" if a is None else f"{a:.4f}"


def print_report(rep: dict):
    print(f"images: {rep['n']}")
    print(f"accuracy (all):      {_fmt(rep['accuracy'])}")
    print(f"accuracy (seen):     {_fmt(rep['seen'])}  (n={rep['n_seen']})")
    print(f"accuracy (held-out): {_fmt(rep['held_out'])}  (n={rep['n_held_out']})")
    fails = rep["failures"]
    if fails:
        print(f"failures: {len(fails)} (showing up to 20)")
        for fl in fails[:20]:
            print(f"  {fl['file']}: '{fl['caption']}' -> {fl['reason']}")


# ----------------------------------------------------------------------------- self-test


def _render(objs, aa: bool):
    """Test renderer written from the spec's pixel-index definitions (independent of template()).

    objs: list of (colour, shape, s, x0, y0). Pixel (x, y) is sampled at its centre (x, y) in
    pixel-index coordinates; with aa, 4x4 sub-samples give fractional coverage.
    """
    img = np.zeros((CANVAS, CANVAS, 3), dtype=np.float64)
    n = 4 if aa else 1
    offs = ((np.arange(n) + 0.5) / n - 0.5) if aa else np.zeros(1)
    for colour, shape, s, x0, y0 in objs:
        x1, y1 = x0 + s - 1, y0 + s - 1
        X, Y = np.meshgrid(np.arange(CANVAS, dtype=float), np.arange(CANVAS, dtype=float))
        cov = np.zeros((CANVAS, CANVAS))
        for oy in offs:
            for ox in offs:
                px, py = X + ox, Y + oy
                if shape == "circle":
                    cx, cy, r = x0 + (s - 1) / 2, y0 + (s - 1) / 2, s / 2
                    ins = (px - cx) ** 2 + (py - cy) ** 2 <= r * r
                elif shape == "square":
                    ins = (px >= x0 - 0.5) & (px <= x1 + 0.5) & (py >= y0 - 0.5) & (py <= y1 + 0.5)
                elif shape == "triangle":
                    ax, ay = x0 + (s - 1) / 2, y0
                    t = (py - ay) / (y1 - ay)
                    ins = (t >= 0) & (t <= 1) & (np.abs(px - ax) <= t * (s - 1) / 2 + 0.5)
                    ins &= py <= y1 + 0.5
                elif shape == "cross":
                    inb = (px >= x0 - 0.5) & (px <= x1 + 0.5) & (py >= y0 - 0.5) & (py <= y1 + 0.5)
                    hb = (py >= y0 + s / 3 - 0.5) & (py < y0 + 2 * s / 3 - 0.5)
                    vb = (px >= x0 + s / 3 - 0.5) & (px < x0 + 2 * s / 3 - 0.5)
                    ins = inb & (hb | vb)
                cov += ins
        cov /= len(offs) ** 2
        img += cov[..., None] * np.array(PALETTE[colour], dtype=float)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def selftest() -> int:
    rng = np.random.default_rng(0)
    failures = 0
    checks = 0

    def check(cond, msg):
        nonlocal failures, checks
        checks += 1
        if not cond:
            failures += 1
            print("SELFTEST FAIL:", msg)

    # parser
    check(
        parse_caption("a red circle") == {"objects": [("red", "circle", None)], "relation": None},
        "parse 1",
    )
    check(parse_caption("an orange cross")["objects"] == [("orange", "cross", None)], "parse 2")
    p = parse_caption("a small green cross to the left of a large white triangle")
    check(
        p
        == {
            "objects": [("green", "cross", "small"), ("white", "triangle", "large")],
            "relation": "to the left of",
        },
        "parse 3",
    )
    check(parse_caption("a red blob") is None, "parse 4")
    check(is_held_out("a yellow circle", parse_caption("a yellow circle")), "held-out 1")
    check(not is_held_out("a yellow square", parse_caption("a yellow square")), "held-out 2")
    check(is_held_out("x", parse_caption("a red circle above a large purple square")), "held-out 3")

    # exhaustive single objects: every colour x shape x size, hard and anti-aliased
    for aa in (False, True):
        for colour in PAL_NAMES:
            for shape in SHAPES:
                for size in SIZES:
                    s = int(rng.integers(10, 15)) if size == "small" else int(rng.integers(20, 27))
                    x0, y0 = (int(v) for v in rng.integers(2, CANVAS - 2 - s + 1, size=2))
                    img = _render([(colour, shape, s, x0, y0)], aa)
                    cap = f"a {size} {colour} {shape}"
                    ok, why = score(img, cap)
                    check(ok, f"aa={aa} s={s} {cap}: {why}")
                    ok, _ = score(img, f"a {colour} {shape}")
                    check(ok, f"aa={aa} no-size {colour} {shape}")
                    other_c = PAL_NAMES[(PAL_NAMES.index(colour) + 1) % 8]
                    other_s = SHAPES[(SHAPES.index(shape) + 1) % 4]
                    other_z = "large" if size == "small" else "small"
                    check(not score(img, f"a {size} {other_c} {shape}")[0], f"colour alt {cap}")
                    check(not score(img, f"a {size} {colour} {other_s}")[0], f"shape alt {cap}")
                    check(not score(img, f"a {other_z} {colour} {shape}")[0], f"size alt {cap}")

    # all sizes of every shape (exhaustive s), a fixed position
    for shape in SHAPES:
        for s in list(range(10, 15)) + list(range(20, 27)):
            for aa in (False, True):
                img = _render([("white", shape, s, 5, 7)], aa)
                size = "small" if s <= 14 else "large"
                ok, why = score(img, f"a {size} white {shape}")
                check(ok, f"s={s} aa={aa} {shape}: {why}")

    # two objects in each relation
    pairs = [
        # (A spec, B spec, relation): (colour, shape, s, x0, y0)
        (("green", "cross", 12, 4, 20), ("white", "triangle", 24, 34, 18), "to the left of"),
        (("red", "circle", 22, 38, 10), ("blue", "square", 11, 6, 14), "to the right of"),
        (("yellow", "triangle", 13, 25, 3), ("purple", "circle", 23, 20, 36), "above"),
        (("cyan", "square", 21, 10, 38), ("orange", "cross", 14, 14, 5), "below"),
        (("red", "circle", 12, 5, 5), ("red", "circle", 12, 40, 10), "to the left of"),
    ]
    for aa in (False, True):
        for (ca, sa, za, xa, ya), (cb, sb, zb, xb, yb), rel in pairs:
            img = _render([(ca, sa, za, xa, ya), (cb, sb, zb, xb, yb)], aa)
            szA = "small" if za < 17 else "large"
            szB = "small" if zb < 17 else "large"
            cap = f"a {szA} {ca} {sa} {rel} a {szB} {cb} {sb}"
            ok, why = score(img, cap)
            check(ok, f"aa={aa} {cap}: {why}")
            # objects listed in the other order with the inverse relation
            inv = {
                "to the left of": "to the right of",
                "to the right of": "to the left of",
                "above": "below",
                "below": "above",
            }[rel]
            ok, why = score(img, f"a {cb} {sb} {inv} a {ca} {sa}")
            check(ok, f"aa={aa} swapped {cap}: {why}")
            for wrong in RELATIONS:
                # identical objects: the inverse relation also matches via the swapped
                # assignment (J8), so only the two other-axis relations must fail
                if wrong != rel and not ((ca, sa, za) == (cb, sb, zb) and wrong == inv):
                    check(
                        not score(img, f"a {szA} {ca} {sa} {wrong} a {szB} {cb} {sb}")[0],
                        f"relation alt {wrong} for {cap}",
                    )
            if (ca, sa) != (cb, sb):
                check(not score(img, f"a {cb} {sb} {rel} a {ca} {sa}")[0], f"swap objects {cap}")
                check(not score(img, f"a {szA} {ca} {sa}")[0], f"count alt {cap}")
                oc = PAL_NAMES[(PAL_NAMES.index(cb) + 3) % 8]
                check(
                    not score(img, f"a {szA} {ca} {sa} {rel} a {szB} {oc} {sb}")[0],
                    f"colour B alt {cap}",
                )

    # noise / off-palette handling
    img = _render([("red", "square", 12, 10, 10)], False)
    img[40, 40] = 255  # tiny speck (< 20 px) is not an object
    check(score(img, "a small red square")[0], "speck ignored")
    grey = np.zeros((64, 64, 3), np.uint8)
    grey[10:30, 10:30] = (120, 120, 120)  # distance to white ~199 -> rejected
    check(not score(grey, "a large white square")[0], "off-palette rejected")
    check(not score(np.zeros((64, 64, 3), np.uint8), "a red circle")[0], "empty image")

    # end-to-end through the directory / CLI path
    with tempfile.TemporaryDirectory() as td:
        items = [
            ([("red", "circle", 12, 20, 20)], "a small red circle", True),
            ([("yellow", "circle", 24, 20, 20)], "a large yellow circle", True),
            (
                [("green", "cross", 12, 4, 20), ("white", "triangle", 24, 34, 18)],
                "a small green cross to the left of a large white triangle",
                True,
            ),
            (
                [("green", "cross", 12, 4, 20), ("white", "triangle", 24, 34, 18)],
                "a small green cross above a large white triangle",
                False,
            ),
            ([("blue", "square", 22, 20, 20)], "a large blue cross", False),
        ]
        with open(os.path.join(td, "metadata.jsonl"), "w") as f:
            for i, (objs, cap, _) in enumerate(items):
                fn = f"{i:03d}.png"
                Image.fromarray(_render(objs, True)).save(os.path.join(td, fn))
                f.write(json.dumps({"file_name": fn, "canonical": cap, "text": "ignored"}) + "\n")
        rep = evaluate_dir(td, "canonical")
        check(rep["n"] == 5, "dir n")
        check(abs(rep["accuracy"] - 3 / 5) < 1e-9, f"dir accuracy {rep['accuracy']}")
        check(rep["n_held_out"] == 2 and rep["held_out"] == 0.5, f"dir held-out {rep}")
        check(rep["n_seen"] == 3 and abs(rep["seen"] - 2 / 3) < 1e-9, f"dir seen {rep}")
        check(
            sorted(fl["file"] for fl in rep["failures"]) == ["003.png", "004.png"], "dir failures"
        )

    print(f"selftest: {checks - failures}/{checks} checks passed")
    return 0 if failures == 0 else 1


# ----------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", help="directory with metadata.jsonl and images")
    ap.add_argument(
        "--caption-key",
        default=None,
        help="metadata key holding the prompt (default: canonical|caption|text|prompt)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a report")
    ap.add_argument("--selftest", action="store_true", help="run the built-in self-test")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if not args.dir:
        ap.error("DIR is required (or use --selftest)")
    rep = evaluate_dir(args.dir, args.caption_key)
    if args.json:
        print(json.dumps(rep))
    else:
        print_report(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
