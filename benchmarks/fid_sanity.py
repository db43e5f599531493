"""FID sanity on the shapes world (issue 18): a sample against itself, two samples of the `test`
split, and one of them blurred or noised at rising levels; then any folders of generated images
given with --gen, against the same reference. Features: the bundled shapes CLIP (the default of
`dalle eval fid`; the FID Inception's weights are not available offline here).

    python benchmarks/fid_sanity.py --n 2000 --work /tmp/fid --gen shapes=/tmp/fid/gen_shapes

writes REF (test split, seed 1) and OTHER (test split, seed 2) under --work, with OTHER's
captions in OTHER/captions.txt (one per line, in file order) for `dalle generate --prompts-file`,
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from dalle.eval.image_quality import clip_features, fid_report
from dalle.shapes.dataset import export_shapes


def degraded(src: Path, out: Path, kind: str, level: float) -> Path:
    """A copy of ``src``'s PNGs, blurred (Gaussian, radius ``level`` px) or noised (Gaussian,
    std ``level`` of the 0..255 range), fixed seed."""
    if (out / ".done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for path in sorted(src.glob("*.png")):
        image = Image.open(path).convert("RGB")
        if kind == "blur":
            image = image.filter(ImageFilter.GaussianBlur(level))
        else:
            a = np.asarray(image, np.float64) + rng.normal(0, 255 * level, (*image.size[::-1], 3))
            image = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
        image.save(out / path.name)
    (out / ".done").touch()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--gen", action="append", default=[], metavar="NAME=DIR",
                        help="a folder of generated images to compare with REF")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    ref, other = args.work / "ref", args.work / "other"
    for folder, seed in ((ref, 1), (other, 2)):
        if not (folder / "metadata.jsonl").exists():
            export_shapes(folder, "test", args.n, seed=seed, progress=True)
    captions = [json.loads(line)["text"] for line in open(other / "metadata.jsonl")]
    (other / "captions.txt").write_text("\n".join(captions) + "\n")

    cases = [("REF itself", ref), ("OTHER (test, seed 2)", other)]
    cases += [(f"OTHER blurred, radius {r} px", degraded(other, args.work / f"blur{r}", "blur", r))
              for r in (0.5, 1, 2)]  # fmt: skip
    cases += [(f"OTHER + noise, std {s}", degraded(other, args.work / f"noise{s}", "noise", s))
              for s in (0.02, 0.05, 0.1)]  # fmt: skip
    cases += [(name, Path(folder)) for name, folder in (g.split("=", 1) for g in args.gen)]

    net = clip_features("shapes")
    rows = []
    print(f"| images vs REF (test split, seed 1, N = {args.n}) | N | FID | KID x 1000 |")
    print("|---|---|---|---|")
    for name, folder in cases:
        r = fid_report(str(ref), str(folder), net)
        rows.append({"case": name, **{k: r[k] for k in ("fid", "kid", "kid_std", "n_gen")}})
        print(f"| {name} | {r['n_gen']} | {r['fid']:.3f} | {1000 * r['kid']:.2f} "
              f"± {1000 * r['kid_std']:.2f} |", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
