"""``dalle generate`` (the main job) and ``dalle complete``: images from prompts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from dalle import __version__
from dalle.cli.sampling_args import (
    add_candidates_argument,
    add_sampling_arguments,
    add_unclip_arguments,
    check_pipeline_args,
    load_pipeline,
)
from dalle.cli.validate import (
    add_replace_argument,
    input_images,
    output_folder,
    refuse_overwriting,
)
from dalle.text.prompts import check_prompt, check_prompts
from dalle.utils.images import output_name, save_png, save_prompt_images


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="generate images from text prompts",
        description=(
            "Sample images for each prompt and write them to OUT/{prompt:04d}_{image:02d}.png "
            "(prompt index from 0 in the order given, image index from 0), each prompt's as soon "
            "as they are drawn. Each PNG carries its prompt, seed, model and sampling settings in "
            "PNG text chunks. Image j of prompt i depends only on the prompt, --seed, i and j "
            "(and the settings): the same command gives the same images. In fp32 (--no-bf16) "
            "they do not depend on --batch-size either; in bf16 a DALL·E image can (bf16 matrix "
            "kernels round differently for other batch shapes, and one token drawn otherwise "
            "changes the rest of the image). --model names a DALL·E pipeline (shapes: tokenizer, dVAE, "
            "transformer; the sampling options --temperature ... --guidance) or an unCLIP one "
            "(shapes-unclip: CLIP, prior, decoder, upsampler; the --prior-*, --decoder-* and "
            "--upsampler-* options); the kind is read from its model_index.json."
        ),
    )
    gen.add_argument("prompts", nargs="*", metavar="PROMPT", help="text prompts")
    gen.add_argument("--prompts-file", default=None, help="a file with one prompt per line")
    gen.add_argument("--out", default="generated", help="output folder (default generated)")
    add_sampling_arguments(gen)
    add_unclip_arguments(gen)
    add_candidates_argument(gen)
    add_replace_argument(gen)
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
    add_replace_argument(comp)
    comp.set_defaults(func=_complete)


def _read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompts)
    if len(prompts) > 1 and not any(" " in p.strip() for p in prompts):  # `generate red circle`
        print(f"dalle generate: note: {len(prompts)} prompts of one word each ({prompts[0]!r}, "
              f"...); quote a prompt of several words", file=sys.stderr)  # fmt: skip
    if args.prompts_file:
        from dalle.text.prompts import read_prompts

        prompts += read_prompts(args.prompts_file)
    if not prompts:
        raise ValueError("no prompts: give PROMPT arguments or --prompts-file")
    return check_prompts(prompts)


def _fields(args, prompt: str, image_index: int, settings: dict) -> dict[str, object]:
    return {
        "prompt": prompt,
        "seed": args.seed,
        "image_index": image_index,
        "model": args.model,
        **settings,
        "bf16": args.bf16,
        "software": f"dalle {__version__}",
    }


def _generate(args: argparse.Namespace) -> int:
    prompts = _read_prompts(args)
    folder = output_folder(args.out, replace=args.replace)
    out = folder.path
    check_pipeline_args(args)
    pipe, sampling, settings = load_pipeline(args)
    total = len(prompts) * args.num_images
    drawn = len(prompts) * (args.candidates or args.num_images)

    def fields(i: int, j: int, image) -> dict:
        found = _fields(args, prompts[i], j, settings)
        if "clip_score" in image.info:  # reranked: the score and which candidate
            found.update(candidates=args.candidates, candidate=image.info["candidate"],
                         clip_score=f"{image.info['clip_score']:.4f}")  # fmt: skip
        return found

    with tqdm(total=drawn, desc="generate", unit="img") as bar:
        found = pipe.iter_images(
            prompts, args.num_images, args.seed, on_image=bar.update, **sampling
        )
        written = save_prompt_images(found, out, fields)  # each prompt's as soon as final
    folder.finish(written)
    print(f"wrote {total} images ({len(prompts)} prompts x {args.num_images}) to {out}/")
    return 0


def _complete(args: argparse.Namespace) -> int:
    args.prompt = check_prompt(args.prompt)
    written = [Path(args.out) / output_name(0, j) for j in range(args.num_images)]
    refuse_overwriting(written, [args.image])
    folder = output_folder(args.out, replace=args.replace)
    out = folder.path
    if check_pipeline_args(args) != "DallePipeline":
        raise ValueError(f"--model {args.model}: `dalle complete` needs a DALL·E pipeline")
    (image,) = input_images([args.image])
    pipe, sampling, settings = load_pipeline(args)
    images = pipe.complete(
        image, args.rows, args.prompt, args.num_images, args.seed, sampling["settings"], args.bf16
    )
    for j, result in enumerate(images):
        fields = {**_fields(args, args.prompt, j, settings), "rows": args.rows, "image": args.image}
        save_png(result, out / output_name(0, j), fields)
    folder.finish({output_name(0, j) for j in range(len(images))})
    print(f"wrote {len(images)} completions of {args.image} to {out}/")
    return 0
