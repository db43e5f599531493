"""At which noise level does the unCLIP decoder lose a two-object scene? Render each validation
prompt's scene, noise it (at the decoder's size) to the training timestep nearest a fraction f of
the schedule, let the decoder finish the trajectory of the pipeline's default sampler (its steps
and spacing) from there with the scene's true CLIP embedding and caption (guided, the pipeline's
defaults), upsample and score. f = 1 is drawing
from pure noise; small f keeps the layout of the true scene. Where accuracy falls as f grows is
where the decoder decides what it gets wrong.

    python benchmarks/decoder_noise_levels.py [--model shapes-unclip] [--n 64]
        [--levels 1,0.9,0.8,0.7,0.6,0.5,0.3]
"""

from __future__ import annotations

import json
import sys

import torch
from _common import rendered_prompt_scenes, right_by_count, scene_parser

from dalle.pipelines.unclip_pipeline import (
    UnclipPipeline,
    caption_ids,
    guided_decoder,
    make_sampler,
    make_schedule,
    sampling_fn,
)
from dalle.utils.device import use_bf16
from dalle.utils.images import area_resize, to_pil


@torch.no_grad()
def finish_from(pipe, x0, embeddings, prompts, level: float, seeds, bf16: bool) -> torch.Tensor:
    """Images in [0, 1] the decoder draws from ``x0`` (in [-1, 1]) noised to ``level`` of the
    schedule, along the default sampler's trajectory from that step on."""
    decoder, settings = pipe.decoder, pipe.decoder_settings()
    c = decoder.config
    ids, mask = caption_ids(pipe.tokenizer, prompts, c.text_seq_len)
    model_fn = sampling_fn(
        decoder,
        guided_decoder(decoder, embeddings, ids, mask, settings.guidance,
                       interval=settings.guidance_interval), bf16,
    )  # fmt: skip
    sampler = make_sampler(settings.sampler, make_schedule(decoder), c.prediction, clip_x0=1.0)
    sampler.set_timesteps(settings.steps, settings.spacing)
    steps = sampler.timesteps.tolist()
    first = next(i for i, t in enumerate(steps) if t <= level * (c.num_timesteps - 1))
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generators])
    start = torch.full((len(x0),), steps[first], dtype=torch.long)
    x = sampler.schedule.add_noise(x0, noise, start) if level < 1 else noise
    for t in steps[first:]:
        out = model_fn(x, torch.full((len(x),), t, dtype=torch.long))
        x = sampler.step(out, t, x, generator=generators)
    return (x.float().clamp(-1, 1) + 1) / 2


def main() -> None:
    parser = scene_parser(__doc__)
    parser.add_argument("--levels", default="1,0.9,0.8,0.7,0.6,0.5,0.3")
    args = parser.parse_args()
    levels = [float(x) for x in args.levels.split(",")]

    pipe = UnclipPipeline.from_pretrained(args.model)
    prompts, parsed, images = rendered_prompt_scenes(args.n, args.prompts_seed)
    bf16 = use_bf16(None, pipe.device)
    seeds = list(range(args.n))
    embeddings = pipe.image_embeddings(images)
    x0 = area_resize(images, pipe.decoder.config.image_size) * 2 - 1
    results = {}
    for level in levels:
        small = finish_from(pipe, x0, embeddings, prompts, level, seeds, bf16)
        drawn = pipe.upsample(small, seeds, None, bf16)
        results[str(level)] = right_by_count(to_pil(drawn), parsed)
        print(level, json.dumps(results[str(level)]), file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
