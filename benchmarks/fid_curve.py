"""FID over the training steps of one run (issue 18): the unCLIP decoder's checkpoints, each
decoding the CLIP image embeddings (and captions) of the first N images of a shapes `test`
sample, scored against another `test` sample resized to the decoder's size (CLIP features).

    python benchmarks/fid_sanity.py --n 2000 --work /tmp/fid          # makes ref/ and other/
    python benchmarks/fid_curve.py --checkpoints runs/decoder-curve --work /tmp/fid --n 300 \\
        --out docs/fid-curve.svg

``--checkpoints`` holds ``step_N`` folders with a U-Net's ``config.json`` and its EMA weights
(``ema.safetensors``, as the trainer's checkpoints have them). Prints a markdown table and writes
the curve as an SVG.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
from PIL import Image

from dalle.data.images import load_image
from dalle.eval.image_quality import clip_features, fid_report
from dalle.models.unet import UNet
from dalle.pipelines.unclip_pipeline import DecoderSettings, UnclipPipeline
from dalle.utils.device import use_bf16
from dalle.utils.images import pil_to_tensor, to_pil


def load_unet(checkpoint: Path) -> UNet:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(checkpoint / "config.json", tmp)
        (Path(tmp) / "model.safetensors").symlink_to((checkpoint / "ema.safetensors").resolve())
        return UNet.from_pretrained(tmp)


def resized_copy(src: Path, out: Path, size: int) -> Path:
    if not (out / ".done").exists():
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(src.glob("*.png")):
            Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC).save(
                out / path.name
            )
        (out / ".done").touch()
    return out


def svg_curve(points: list[tuple[int, float]], title: str) -> str:
    """A line chart of (step, FID) as standalone SVG."""
    w, h, left, bottom, top, right = 560, 320, 60, 40, 30, 20
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = 0, max(xs)
    y1 = max(ys) * 1.1
    sx = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)  # noqa: E731
    sy = lambda y: h - bottom - y / y1 * (h - bottom - top)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="18" text-anchor="middle">{title}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">training step</text>',
             f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" '
             f'text-anchor="middle">FID (CLIP features)</text>']  # fmt: skip
    for i in range(6):
        yv, xv = y1 * i / 5, x1 * i / 5
        parts.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.1f}</text>')
        parts.append(f'<text x="{sx(xv):.1f}" y="{h - bottom + 16}" text-anchor="middle">'
                     f'{int(xv)}</text>')  # fmt: skip
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    parts += [
        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#1f77b4"/>' for x, y in points
    ]
    return "\n".join(parts + ["</svg>\n"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--every", type=int, default=1000, help="use steps that are multiples")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--out", type=Path, required=True, help="the SVG to write")
    args = parser.parse_args()

    base = UnclipPipeline.from_pretrained("shapes-unclip")
    meta = [json.loads(line) for line in open(args.work / "other" / "metadata.jsonl")][: args.n]
    images = torch.stack([pil_to_tensor(load_image(args.work / "other" / m["file_name"]))
                          for m in meta])  # fmt: skip
    captions = [m["text"] for m in meta]
    embeddings = base.image_embeddings(images)
    settings = DecoderSettings("ddim", args.steps, args.guidance)
    net = clip_features("shapes")

    points = []
    print(f"| step | FID (N = {args.n}) | KID x 1000 |\n|---|---|---|")
    for checkpoint in sorted(args.checkpoints.glob("step_*")):
        step = int(checkpoint.name.split("_")[1])
        if step % args.every:
            continue
        unet = load_unet(checkpoint)
        pipe = UnclipPipeline(base.tokenizer, base.clip, decoder=unet)
        ref = resized_copy(args.work / "ref", args.work / f"ref{unet.config.image_size}",
                           unet.config.image_size)  # fmt: skip
        out = args.work / "curve" / checkpoint.name
        out.mkdir(parents=True, exist_ok=True)
        for start in range(0, args.n, 50):
            drawn = pipe.decode(embeddings[start : start + 50], captions[start : start + 50],
                                list(range(start, min(start + 50, args.n))), settings,
                                use_bf16(None, pipe.device))  # fmt: skip
            for i, image in enumerate(to_pil(drawn)):
                image.save(out / f"{start + i:05d}.png")
        r = fid_report(str(ref), str(out), net, kid_subset_size=min(args.n, 1000))
        points.append((step, r["fid"]))
        print(f"| {step} | {r['fid']:.2f} | {1000 * r['kid']:.2f} ± {1000 * r['kid_std']:.2f} |",
              flush=True)  # fmt: skip
    args.out.write_text(
        svg_curve(points, f"unCLIP decoder: FID of decoded test embeddings, N = {args.n}")
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
