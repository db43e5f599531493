"""The unCLIP U-Nets' sampling speed by memory layout: contiguous (NCHW) against channels-last.

    python benchmarks/unet_layout.py [--batches 1,8,32] [--reps 3] [--model shapes-unclip]

Draws the same images with the bundled pipeline's decoder and upsampler at their default
settings (the prior's embeddings drawn once beforehand), their weights contiguous and then
channels-last, alternating within each of ``--reps`` rounds after one untimed warm-up of each;
fp32, and bf16 autocast where the machine has bf16 units. Reports each stage's median seconds
per image and the ratio, with the largest pixel difference between the layouts (0-255 levels).
The layout the pipeline samples in (``dalle.utils.device.conv_memory_format``) rests on this.
Names the CPU; prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from bench_generate import cpu_name  # noqa: E402

import dalle.pipelines.unclip_pipeline as unclip  # noqa: E402
from dalle.pipelines.unclip_pipeline import UnclipPipeline, seed_of  # noqa: E402
from dalle.shapes.prompts import evaluation_prompts  # noqa: E402
from dalle.utils.device import bf16_is_fast  # noqa: E402

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
chosen = unclip.conv_memory_format  # the library's choice, put back after each measurement


def stage_times(pipe: UnclipPipeline, batch: int, bf16: bool, reps: int) -> dict:
    prompts = evaluation_prompts(-(-batch // 4), 2, "users")  # 4 images a prompt
    prompts = [p for p in prompts for _ in range(4)][:batch]
    seeds = list(range(batch))
    embeds = pipe._prior_draws(prompts, [(s, 1) for s in seeds], pipe.prior_defaults)
    parts = {"decoder": pipe.decoder, "upsampler": pipe.upsampler}

    def draw(stage: str, fmt) -> tuple[float, torch.Tensor]:
        unclip.conv_memory_format = lambda device, bf16: fmt  # the layout under test
        parts[stage].to(memory_format=fmt)  # converted before the clock starts
        start = time.perf_counter()
        if stage == "decoder":
            out = pipe.decode(embeds, prompts, [seed_of(s, 2) for s in seeds],
                              pipe.decoder_defaults, bf16)  # fmt: skip
        else:
            out = pipe.upsample(small, [seed_of(s, 3) for s in seeds], pipe.upsampler_defaults,
                                bf16)  # fmt: skip
        return time.perf_counter() - start, out

    # the upsampler's input, the same for both layouts
    small = pipe.decode(embeds, prompts, [seed_of(s, 2) for s in seeds], pipe.decoder_defaults,
                        bf16)  # fmt: skip
    result = {}
    try:
        for stage in parts:
            times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            outs = {}
            for fmt in LAYOUTS.values():
                draw(stage, fmt)  # warm-up
            for _ in range(reps):
                for name, fmt in LAYOUTS.items():
                    seconds, outs[name] = draw(stage, fmt)
                    times[name].append(seconds / batch)
            diff = (outs["contiguous"] - outs["channels-last"]).abs().max().item() * 255
            result[stage] = {name: statistics.median(t) for name, t in times.items()}
            result[stage]["max_diff_levels"] = diff
    finally:
        unclip.conv_memory_format = chosen
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", default="1,8,32", help="comma list of images drawn at once")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--model", default="shapes-unclip")
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = UnclipPipeline.from_pretrained(args.model)
    if pipe.decoder is None or pipe.upsampler is None:
        parser.error(f"{args.model} needs a decoder and an upsampler")
    dtypes = [False] + ([True] if bf16_is_fast("cpu") else [])
    rows = []
    for bf16 in dtypes:
        for batch in (int(b) for b in args.batches.split(",") if b):
            for stage, r in stage_times(pipe, batch, bf16, args.reps).items():
                rows.append({"dtype": "bf16" if bf16 else "fp32", "batch": batch,
                             "stage": stage, **r})  # fmt: skip
    print(f"CPU: {cpu_name()}, 2 threads\n")
    print("| dtype | batch | stage | contiguous s/image | channels-last s/image | ratio | "
          "max diff (levels) |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        print(f"| {r['dtype']} | {r['batch']} | {r['stage']} | {r['contiguous']:.3f} | "
              f"{r['channels-last']:.3f} | {r['contiguous'] / r['channels-last']:.2f}x | "
              f"{r['max_diff_levels']:.3f} |")  # fmt: skip
    print(json.dumps({"cpu": cpu_name(), "rows": rows}))


if __name__ == "__main__":
    main()
