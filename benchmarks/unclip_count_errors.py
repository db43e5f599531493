"""Which stage of the unCLIP pipeline makes its count errors (a third object, or one missing)?
Draw the reported users-mix set as `dalle eval generation` does (4 images a prompt, seed 0,
the pipeline's defaults), keep the decoder's output before the upsampler, and score both: the
upsampler's 64 x 64 image, and the decoder's image brought to 64 x 64 by plain resampling
(nearest, bilinear, bicubic). If the count errors are the same with the upsampler taken out, the
decoder made them. Then list what the scorer finds in each image with a count error.

    python benchmarks/unclip_count_errors.py [--model shapes-unclip] [--n 128] [--prompts-seed 0]
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
from PIL import Image

from dalle.eval.shapes_scorer import score_image
from dalle.pipelines.seeds import image_seed, seed_of
from dalle.pipelines.unclip_pipeline import UnclipPipeline
from dalle.shapes.prompts import evaluation_prompts
from dalle.utils.device import use_bf16
from dalle.utils.images import to_uint8

RESAMPLERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=128, help="prompts (4 images each)")
    parser.add_argument("--prompts-seed", type=int, default=0, help="0: the reported set")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    pipe = UnclipPipeline.from_pretrained(args.model)
    bf16 = use_bf16(None, pipe.device)
    prompts = evaluation_prompts(args.n, seed=args.prompts_seed, mix="users")
    pairs = [(p, image_seed(0, i, j)) for i, p in enumerate(prompts) for j in range(4)]
    errors = {"upsampler": [], **{name: [] for name in RESAMPLERS}}
    found = []  # (prompt, objects of the upsampler's image) for each count error
    for start in range(0, len(pairs), args.batch_size):
        texts = [p for p, _ in pairs[start : start + args.batch_size]]
        seeds = [s for _, s in pairs[start : start + args.batch_size]]
        # the prior's draws keyed as draw_pixels keys them, so the images are the evaluation's
        embeddings = pipe._prior_draws(texts, [(s, 1) for s in seeds], pipe.prior_defaults)
        low = pipe.decode(embeddings, texts, [seed_of(s, 2) for s in seeds], bf16=bf16)
        high = pipe.upsample(low, [seed_of(s, 3) for s in seeds], bf16=bf16)
        for text, small, large in zip(texts, to_uint8(low), to_uint8(high), strict=True):
            result = score_image(large, text)
            errors["upsampler"].append(result.errors)
            if "count" in result.errors:
                found.append((text, result.objects))
            for name, resample in RESAMPLERS.items():
                resized = np.asarray(Image.fromarray(small).resize(large.shape[:2], resample))
                errors[name].append(score_image(resized, text).errors)
        print(f"{start + len(texts)} of {len(pairs)} images", flush=True)

    print(f"\n{args.model}, prompts seed {args.prompts_seed}, {len(pairs)} images")
    print("64 x 64 from | right | errors count / colour / shape / size / relation")
    for name, rows in errors.items():
        c = collections.Counter(e for row in rows for e in row)
        kinds = " / ".join(str(c[k]) for k in ("count", "colour", "shape", "size", "relation"))
        print(f"{name} | {sum(not row for row in rows)} | {kinds}")
    count_up = [("count" in e) for e in errors["upsampler"]]
    count_bicubic = [("count" in e) for e in errors["bicubic"]]
    print(
        "count errors the upsampler adds:",
        sum(u and not b for u, b in zip(count_up, count_bicubic, strict=True)),
        "| removes:",
        sum(b and not u for u, b in zip(count_up, count_bicubic, strict=True)),
    )
    duplicates = 0
    for text, objects in found:
        kinds = collections.Counter((o.colour, o.shape) for o in objects)
        duplicates += len(objects) > len(set(kinds)) and len(objects) > 1
        described = ", ".join(f"{o.size} {o.colour} {o.shape} ({o.pixels} px)" for o in objects)
        print(f"  {text} | {len(objects)} found: {described}")
    print(f"count errors with two objects of one colour and shape: {duplicates} of {len(found)}")


if __name__ == "__main__":
    main()
