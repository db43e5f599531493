"""Is the upsampler where a variation loses its source's caption?

`dalle vary` draws a variation at the decoder's size (32 x 32 for the shapes world) and the
upsampler then draws the output size from it with fresh noise. A small object's shape (5-7 px at
32 x 32) may be decided by the upsampler, which reads no text and no embedding. This draws the
variations of the editing eval's scenes once (``--prompts-seed 1``: validation) and finishes the
same 32 x 32 variations two ways: the upsampler from fresh noise (what `dalle vary` does), and
from the source's own upsampler noise, found by DDIM inversion of the source at the output size
(conditioned on the source taken to 32 x 32) and decoded deterministically with each variation
as the low-resolution input, for each of ``--inversion-steps``. If the upsampler lost the shapes,
the inverted noise would carry the source's detail back.

    python benchmarks/variation_upsampler_noise.py [--model shapes-unclip] [--n 32] \
        [--inversion-steps 15,30]

Prints one JSON line per way: the share of variations read as the source's caption, the share
that are not copies (PSNR to the source under 35 dB), the median and largest PSNR to the source,
the median PSNR between a scene's two variations, and the seconds the upsampler stage took.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dalle.diffusion import DDIMInverter, DDIMSampler, sample
from dalle.eval.editing import PSNR_COPY_DB, editing_sources, psnr, reads_as
from dalle.pipelines import editing
from dalle.pipelines.seeds import image_seed
from dalle.pipelines.unclip_pipeline import UnclipPipeline, make_schedule, sampling_fn
from dalle.utils.device import use_bf16
from dalle.utils.images import area_resize, to_pil


@torch.no_grad()
def upsample_from_source_noise(pipe, source: torch.Tensor, small: torch.Tensor, steps: int,
                               bf16: bool) -> torch.Tensor:  # fmt: skip
    """(B, 3, S, S) in [0, 1]: the (B, 3, s, s) ``small`` images upsampled deterministically from
    the upsampler noise of the (1, 3, S, S) ``source``, found by DDIM inversion."""
    up = pipe.upsampler
    c = up.config
    schedule = make_schedule(up)
    low_source = area_resize(source.float(), c.low_res_size) * 2 - 1
    inverter = DDIMInverter(schedule, prediction=c.prediction)
    x_t = inverter.invert(
        sampling_fn(up, lambda x, t: up(x, t, low_res=low_source), bf16),
        source.float() * 2 - 1,
        steps,
    )
    low = small.float() * 2 - 1
    sampler = DDIMSampler(schedule, c.prediction, 0.0, clip_x0=1.0)
    x = sample(sampling_fn(up, lambda x, t: up(x, t, low_res=low), bf16), sampler,
               x_t.expand(len(small), -1, -1, -1).clone(), steps)  # fmt: skip
    return (x.float().clamp(-1, 1) + 1) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=32, help="scenes (2 variations each)")
    parser.add_argument("--prompts-seed", type=int, default=1)
    parser.add_argument("--inversion-steps", default="15,30")
    args = parser.parse_args()
    pipe = UnclipPipeline.from_pretrained(args.model)
    bf16 = use_bf16(None, pipe.device)
    prompts, sources = editing_sources(args.n, args.prompts_seed)
    settings = editing.EditSettings(eta=editing.VARIATION_ETA, eta_from=editing.VARIATION_ETA_FROM,
                                    fresh_guidance=editing.VARIATION_FRESH_GUIDANCE)  # fmt: skip
    size = editing.output_size(pipe)
    smalls, seeds = [], []
    for start in range(0, args.n, 16):
        pixels = editing.as_tensor(sources[start : start + 16], size)
        z = pipe.image_embeddings(pixels)
        x_t = editing.invert(pipe, pixels, z, settings, bf16)
        for k in range(len(pixels)):
            row = [image_seed(args.prompts_seed, start + k, j) for j in range(2)]
            zk, xk = z[k : k + 1].expand(2, -1), x_t[k : k + 1].expand(2, -1, -1, -1)
            smalls.append(editing.decode_latent(pipe, zk, xk, row, settings, bf16))
            seeds.append(row)
    ways = ["fresh"] + [f"inverted_{s}" for s in args.inversion_steps.split(",")]
    for way in ways:
        t0 = time.perf_counter()
        keep, to_source, between = [], [], []
        for i, (small, row) in enumerate(zip(smalls, seeds)):
            if way == "fresh":
                big = editing.finish(pipe, small, row, bf16)
            else:
                source = editing.as_tensor([sources[i]], size)
                big = upsample_from_source_noise(pipe, source, small, int(way.split("_")[1]), bf16)
            pictures = to_pil(big)
            images = [np.asarray(im) for im in pictures]
            keep += [reads_as(im, prompts[i]) for im in pictures]
            to_source += [psnr(im, np.asarray(sources[i])) for im in images]
            between.append(psnr(images[0], images[1]))
        print(json.dumps({
            "way": way, "variations": len(keep), "keeps_caption": float(np.mean(keep)),
            "not_copy": float(np.mean([p < PSNR_COPY_DB for p in to_source])),
            "psnr_to_source_median": float(np.median(to_source)),
            "psnr_to_source_max": float(max(to_source)),
            "psnr_between_median": float(np.median(between)),
            "seconds": round(time.perf_counter() - t0, 1),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
