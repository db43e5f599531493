"""How many steps does the unCLIP upsampler need? Render each validation prompt's scene at the
output size, shrink it to the decoder's size (area average, as training does), let the
upsampler draw the output size back at each setting, and compare with the true render: PSNR
over the image, PSNR against the same upsampler at 250 DDIM steps, and the shapes scorer's
verdict. Super-resolution of real renders, so that the upsampler is measured apart from the
decoder's mistakes (the text -> image scorer hardly sees the upsampler: it reads layouts and
colours, which the low-resolution input fixes).

    python benchmarks/upsampler_steps.py [--model shapes-unclip] [--n 64]
        [--settings ddim:250,ddim:15,ddim:10,ddim:8,dpm++2m:8,dpm++2m:6]

A setting is SAMPLER:STEPS[:SPACING]. Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
from _common import rendered_prompt_scenes, right_by_count, scene_parser

from dalle.eval.editing import psnr
from dalle.pipelines.unclip_pipeline import UnclipPipeline, UpsamplerSettings
from dalle.utils.device import use_bf16
from dalle.utils.images import area_resize, to_pil


def parse_setting(text: str) -> UpsamplerSettings:
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        steps, spacing = int(parts[1]), float(parts[2]) if len(parts) == 3 else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SAMPLER:STEPS[:SPACING], got {text!r}"
        ) from None
    try:
        return UpsamplerSettings(parts[0], steps, spacing)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def uint8(images: torch.Tensor) -> list[np.ndarray]:
    return [np.asarray(image) for image in to_pil(images)]


def main() -> None:
    parser = scene_parser(__doc__)
    parser.add_argument(
        "--settings", default="ddim:250,ddim:15,ddim:10,ddim:8,dpm++2m:8,dpm++2m:6",
        help="comma-separated SAMPLER:STEPS[:SPACING]; the first is the reference",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    try:
        settings = [parse_setting(s) for s in args.settings.split(",")]
    except argparse.ArgumentTypeError as e:
        parser.error(f"--settings: {e}")

    torch.set_num_threads(2)
    pipe = UnclipPipeline.from_pretrained(args.model)
    if pipe.upsampler is None or pipe.decoder is None:
        parser.error(f"{args.model} has no decoder and upsampler")
    _, parsed, truth = rendered_prompt_scenes(args.n, args.prompts_seed)
    size, small_size = pipe.upsampler.config.image_size, pipe.decoder.config.image_size
    truth = area_resize(truth, size)
    small = area_resize(truth, small_size)
    bf16 = use_bf16(None, pipe.device)
    seeds = list(range(args.n))
    true_u8 = uint8(truth)
    rows, drawn = [], {}
    for s in settings:
        start = time.perf_counter()
        out = torch.cat([
            pipe.upsample(small[i : i + args.batch_size], seeds[i : i + args.batch_size], s, bf16)
            for i in range(0, args.n, args.batch_size)
        ])  # fmt: skip
        seconds = time.perf_counter() - start
        images = uint8(out)
        name = f"{s.sampler} {s.steps}" + (f" at {s.spacing:g}" if s.spacing != 1 else "")
        reference = drawn.get("reference")
        row = {
            "setting": name,
            "psnr_true": statistics.fmean(psnr(a, b) for a, b in zip(images, true_u8)),
            "psnr_reference": None if reference is None
            else statistics.fmean(psnr(a, b) for a, b in zip(images, reference)),
            "right": right_by_count(to_pil(out), parsed),
            "seconds": seconds,
        }  # fmt: skip
        drawn.setdefault("reference", images)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\n{args.n} validation scenes, {small_size} -> {size}, bf16 {bf16}\n")
    print("| upsampler | PSNR to the true render (dB) | PSNR to the first setting (dB) "
          "| shapes scorer right | seconds |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in rows:
        ref = "-" if r["psnr_reference"] is None else f"{r['psnr_reference']:.1f}"
        right = sum(v["right"] for v in r["right"].values())
        total = sum(v["of"] for v in r["right"].values())
        print(f"| {r['setting']} | {r['psnr_true']:.2f} | {ref} | {right} of {total} "
              f"| {r['seconds']:.1f} |")  # fmt: skip
    print(json.dumps({"model": args.model, "n": args.n, "bf16": bf16, "rows": rows}))


if __name__ == "__main__":
    main()
