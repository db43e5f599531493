"""``dalle generate`` (the main job) and ``dalle complete``: images from prompts."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dalle import __version__
from dalle.cli.sampling_args import (
    add_candidates_argument,
    add_sampling_arguments,
    given_settings,
)
from dalle.utils.images import output_name, save_png


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="generate images from text prompts",
        description=(
            "Sample images for each prompt and write them to OUT/{prompt:04d}_{image:02d}.png "
            "(prompt index from 0 in the order given, image index from 0). Each PNG carries its "
            "prompt, seed, model and sampling settings in PNG text chunks. Image j of prompt i "
            "depends only on the prompt, --seed, i and j, not on --batch-size."
        ),
    )
    gen.add_argument("prompts", nargs="*", metavar="PROMPT", help="text prompts")
    gen.add_argument("--prompts-file", default=None, help="a file with one prompt per line")
    gen.add_argument("--out", default="generated", help="output folder (default generated)")
    add_sampling_arguments(gen)
    add_candidates_argument(gen)
    gen.set_defaults(func=_generate)

    comp = sub.add_parser(
        "complete",
        help="complete the lower part of an image from a prompt",
        description=(
            "Encode IMAGE with the pipeline's dVAE, keep its first R rows of tokens and sample the "
            "rest for PROMPT. Writes OUT/0000_{image:02d}.png, with PNG text chunks."
        ),
    )
    comp.add_argument("image", metavar="IMAGE", help="the image to complete")
    comp.add_argument("prompt", metavar="PROMPT", help="what the whole image should show")
    comp.add_argument("--rows", type=int, required=True, help="token rows of IMAGE to keep")
    comp.add_argument("--out", default="completed", help="output folder (default completed)")
    add_sampling_arguments(comp)
    comp.set_defaults(func=_complete)


def _read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompts)
    if args.prompts_file:
        from dalle.eval.shapes_report import read_prompts

        prompts += read_prompts(args.prompts_file)
    if not prompts:
        raise ValueError("no prompts: give PROMPT arguments or --prompts-file")
    for i, prompt in enumerate(prompts):
        if not prompt.strip():
            raise ValueError(f"prompt {i} is empty: every image is drawn for a prompt")
    return prompts


def _output_folder(path: str) -> Path:
    """``--out``, checked and created before any model is loaded, so that no drawing is lost."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {path}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {path}: cannot create the folder ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {path}: the folder is not writable")
    return out


def _load(args: argparse.Namespace):
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.utils.device import use_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.num_images < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise ValueError("--num-images and --batch-size must be at least 1")
    given = given_settings(args)  # checked before loading
    pipe = DallePipeline.from_pretrained(args.model)
    settings = pipe.settings(**given)
    args.bf16 = use_bf16(args.bf16, pipe.device)  # recorded in the PNGs as decided
    return pipe, settings


def _fields(args, prompt: str, image_index: int, settings) -> dict[str, object]:
    return {
        "prompt": prompt,
        "seed": args.seed,
        "image_index": image_index,
        "model": args.model,
        **dataclasses.asdict(settings),
        "bf16": args.bf16,
        "software": f"dalle {__version__}",
    }


def _generate(args: argparse.Namespace) -> int:
    prompts = _read_prompts(args)
    out = _output_folder(args.out)
    pipe, settings = _load(args)
    total = len(prompts) * args.num_images
    drawn = len(prompts) * (args.candidates or args.num_images)
    with tqdm(total=drawn, desc="generate", unit="img") as bar:
        found = pipe.iter_images(
            prompts, args.num_images, args.seed, settings, args.candidates, args.batch_size,
            args.bf16, on_image=bar.update,
        )  # fmt: skip
        for i, images in found:  # each prompt's images are written as soon as they are final
            for j, image in enumerate(images):
                fields = _fields(args, prompts[i], j, settings)
                if "clip_score" in image.info:  # reranked: the score and which candidate
                    fields.update(candidates=args.candidates, candidate=image.info["candidate"],
                                  clip_score=f"{image.info['clip_score']:.4f}")  # fmt: skip
                save_png(image, out / output_name(i, j), fields)
    print(f"wrote {total} images ({len(prompts)} prompts x {args.num_images}) to {out}/")
    return 0


def _complete(args: argparse.Namespace) -> int:
    from dalle.data.images import load_image

    out = _output_folder(args.out)
    image = load_image(args.image)
    pipe, settings = _load(args)
    images = pipe.complete(
        image, args.rows, args.prompt, args.num_images, args.seed, settings, args.bf16
    )
    for j, result in enumerate(images):
        fields = {**_fields(args, args.prompt, j, settings), "rows": args.rows, "image": args.image}
        save_png(result, out / output_name(0, j), fields)
    print(f"wrote {len(images)} completions of {args.image} to {out}/")
    return 0
