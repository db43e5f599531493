"""How exactly does DDIM inversion through the unCLIP decoder give an image back? For each
validation prompt's scene (``--prompts users``: the users mix of ``dalle eval generation``;
``editing``: the prompts and scenes of ``dalle eval editing``): its CLIP image embedding, x_T by
DDIM inversion (REFINE fixed-point refinements per step), DDIM eta 0 back from x_T, then the
upsampler; the shapes scorer reads the result against the prompt, and the decoder-size PSNR to
the scene is averaged.

    python benchmarks/inversion_round_trip.py [--model shapes-unclip] [--n 32] \
        [--prompts users|editing] [--configs 50:0,50:1,25:2]

Each config is STEPS:REFINE. Prints one JSON line per config.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import rendered_prompt_scenes

from dalle.eval.editing import editing_sources
from dalle.eval.shapes_scorer import score_image
from dalle.pipelines import editing
from dalle.pipelines.unclip_pipeline import UnclipPipeline
from dalle.utils.device import use_bf16
from dalle.utils.images import area_resize, to_pil


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--prompts-seed", type=int, default=1, help="1: the validation prompts")
    parser.add_argument("--prompts", choices=("users", "editing"), default="users")
    parser.add_argument("--configs", default="50:0,50:1,25:2", help="STEPS:REFINE,...")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]

    pipe = UnclipPipeline.from_pretrained(args.model)
    bf16 = use_bf16(args.bf16, pipe.device)
    if args.prompts == "users":
        _, parsed, images = rendered_prompt_scenes(args.n, args.prompts_seed)
    else:
        parsed, sources = editing_sources(args.n, args.prompts_seed)
        images = editing.as_tensor(sources, sources[0].size[0])
    small_ref = area_resize(images, pipe.decoder.config.image_size)
    z = pipe.image_embeddings(images)
    seeds = list(range(args.n))
    for steps, refine in configs:
        start = time.perf_counter()
        settings = editing.EditSettings(steps=steps, eta=0.0, refine=refine)
        x_t = editing.invert(pipe, images, z, settings, bf16)
        small = editing.decode_latent(pipe, z, x_t, seeds, settings, bf16)
        mse = ((small - small_ref) ** 2).flatten(1).mean(1).clamp_min(1e-10)
        drawn = to_pil(pipe.upsample(small, seeds, None, bf16))
        right = sum(score_image(np.asarray(im), p).correct for p, im in zip(parsed, drawn))
        print(json.dumps({
            "steps": steps, "refine": refine, "bf16": bf16, "right": right, "of": args.n,
            "psnr_decoder_size": round(float((-10 * mse.log10()).mean()), 2),
            "seconds": round(time.perf_counter() - start, 1),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
