"""``dalle vary``, ``dalle interpolate``, ``dalle edit`` and ``dalle inpaint``: editing images
(Ramesh et al. 2022, section 3; docs/editing.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dalle import __version__
from dalle.cli.validate import (
    OutputFolder,
    add_replace_argument,
    check_candidates,
    input_images,
    int_at_least,
    non_negative_float,
    non_negative_int,
    output_folder,
    positive_int,
    refuse_overwriting,
    unit_interval,
)
from dalle.config import replace_given
from dalle.pipelines.editing import (
    INPAINT_METHODS,
    INTERPOLATION_NOISE,
    REPAINT_STEPS,
    TEXT_DIFF_CAPTIONS,
    VARIATION_CANDIDATES_PER_IMAGE,
    VARIATION_ETA,
    VARIATION_ETA_FROM,
    VARIATION_FRESH_GUIDANCE,
    EditSettings,
    variation_candidates,
)
from dalle.text.prompts import check_prompt
from dalle.utils.images import image_grid, output_name, save_png

FRAME_NAME = "{:02d}.png"


def _common(p: argparse.ArgumentParser, model: str = "shapes-unclip") -> None:
    p.add_argument(
        "--model", default=model,
        help=f"unCLIP pipeline folder or bundled name (default {model})",
    )  # fmt: skip
    p.add_argument("--seed", type=non_negative_int, default=0, help="base seed (default 0)")
    p.add_argument(
        "--decoder-steps", type=positive_int, default=None,
        help=f"DDIM steps of the inversion and the decoding (default {EditSettings.steps}; "
        f"inpainting: {REPAINT_STEPS} with --method repaint, the pipeline's decoder steps with "
        "mask)",
    )  # fmt: skip
    p.add_argument(
        "--decoder-guidance", type=non_negative_float, default=None,
        help="decoder guidance on the CLIP embedding, 1 is off (default 1; inpainting: the "
        "pipeline's decoder guidance)",
    )  # fmt: skip
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the machine has bf16 matrix units)",
    )  # fmt: skip
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's: the physical cores, or OMP_NUM_THREADS)",
    )
    add_replace_argument(p)


def register(sub: argparse._SubParsersAction) -> None:
    vary = sub.add_parser(
        "vary",
        help="variations of images (unCLIP)",
        description=(
            "Encode each image to its CLIP image embedding and the decoder's DDIM-inverted "
            "noise, and decode that with DDIM at --eta > 0 (0 gives the image back): "
            "OUT/{input:04d}_{image:02d}.png, inputs numbered in the order given. The decoder "
            "works at its size (32 x 32 for shapes-unclip); the upsampler then draws the output "
            "size with fresh noise. Square images of another size are resized (bicubic) first; "
            "other images are refused."
        ),
    )
    vary.add_argument("images", nargs="+", metavar="IMAGE")
    vary.add_argument("--num-images", type=positive_int, default=4, help="per input (4)")
    vary.add_argument("--eta", type=unit_interval, default=VARIATION_ETA,
                      help=f"DDIM stochasticity in [0, 1] ({VARIATION_ETA:g})")  # fmt: skip
    vary.add_argument("--eta-from", type=unit_interval, default=VARIATION_ETA_FROM, metavar="F",
                      help="apply --eta from this fraction of the schedule down; above it the "
                      "decoding follows the inverted noise exactly, which keeps the image's "
                      f"layout (the noisiest steps decide it) (default {VARIATION_ETA_FROM:g}; 1: "
                      "every step, the paper's DDIM)")  # fmt: skip
    vary.add_argument("--fresh-guidance", type=non_negative_float, default=VARIATION_FRESH_GUIDANCE,
                      metavar="G", help="decoder guidance in the steps below --eta-from, which "
                      "draw the variation afresh (default "
                      f"{VARIATION_FRESH_GUIDANCE:g}; 1 is off)")  # fmt: skip
    vary.add_argument("--candidates", type=positive_int, default=None, metavar="M",
                      help="draw M variations per image and keep the --num-images whose CLIP "
                      "image embeddings lie closest to the image's, closest first (default "
                      f"{VARIATION_CANDIDATES_PER_IMAGE} x --num-images; --num-images itself: no "
                      "reranking)")  # fmt: skip
    vary.add_argument("--out", default="variations", help="output folder (default variations)")
    _common(vary)
    vary.set_defaults(func=_vary)

    interp = sub.add_parser(
        "interpolate",
        help="frames between two images (unCLIP)",
        description=(
            "Slerp between the two images' CLIP image embeddings and between their inverted "
            "decoder noises (or, with --noise fixed, keep A's noise for every frame), and decode "
            "each frame with DDIM: OUT/{k:02d}.png for the K frames from A to B, and "
            "OUT/strip.png with all of them side by side."
        ),
    )
    interp.add_argument("image_a", metavar="IMAGE_A")
    interp.add_argument("image_b", metavar="IMAGE_B")
    interp.add_argument("--steps", type=int_at_least(2), default=5, help="frames K (default 5)")
    interp.add_argument(
        "--noise", choices=INTERPOLATION_NOISE, default=INTERPOLATION_NOISE[0],
        help="the decoder's starting noise x_T: slerped from A's inversion to B's (the "
        "default: the last frame is B decoded from its own latent) or A's inversion for every "
        "frame (fixed: the layout stays A's, and the last frame is B's embedding drawn there)",
    )  # fmt: skip
    interp.add_argument(
        "--out", default="interpolation", help="output folder (default interpolation)"
    )
    _common(interp)
    interp.set_defaults(func=_interpolate)

    edit = sub.add_parser(
        "edit",
        help="change an image by a text difference (unCLIP)",
        description=(
            "Move the image's CLIP embedding towards the difference of two captions' text "
            "embeddings, z_d = normalise(z_t(TO) - z_t(FROM)), by slerp of --amount, and decode "
            "it from the image's inverted noise: OUT/0000_{image:02d}.png."
        ),
    )
    edit.add_argument("image", metavar="IMAGE")
    edit.add_argument("--from", dest="source", required=True, metavar="TEXT",
                      help="a caption of the image as it is")  # fmt: skip
    edit.add_argument("--to", dest="target", required=True, metavar="TEXT",
                      help="the caption it should be edited towards")  # fmt: skip
    edit.add_argument(
        "--amount", type=unit_interval, default=0.5, help="slerp amount in [0, 1] (0.5)"
    )
    edit.add_argument("--num-images", type=positive_int, default=1, help="images (default 1)")
    edit.add_argument(
        "--eta", type=unit_interval, default=0.0,
        help="DDIM stochasticity (0, the default: one decoding; > 0 varies the images)",
    )  # fmt: skip
    edit.add_argument(
        "--decoder-captions", action=argparse.BooleanOptionalAction, default=TEXT_DIFF_CAPTIONS,
        help="the decoder reads --from while inverting the image and --to while decoding it "
        "(default); --no-decoder-captions: the CLIP embeddings alone, as in the paper",
    )  # fmt: skip
    edit.add_argument("--out", default="edited", help="output folder (default edited)")
    _common(edit)
    edit.set_defaults(func=_edit)

    inpaint = sub.add_parser(
        "inpaint",
        help="repaint the masked part of an image from a prompt",
        description=(
            "Repaint the region MASK marks so that the image fits PROMPT (which describes the "
            "whole resulting image), keeping every pixel outside it exactly: "
            "OUT/0000_{image:02d}.png. Mask convention of the OpenAI Images API: in a mask with "
            "alpha, fully transparent pixels mark the region; in one without, white pixels. The "
            "mask must be the image's size, and the image the pipeline's. unCLIP pipelines "
            "repaint with a decoder trained to read the known pixels and the mask (--method "
            "mask, GLIDE's way, the default when the decoder was trained so) or by resampling "
            "(--method repaint, RePaint, any decoder) at the decoder's size, then by resampling "
            "at the upsampler's; DALL·E "
            "pipelines (--model shapes) keep the image tokens the mask does not touch and sample "
            "the others in raster order, each seeing the kept tokens above and to its left only."
        ),
    )
    inpaint.add_argument("image", metavar="IMAGE")
    inpaint.add_argument("prompt", metavar="PROMPT")
    inpaint.add_argument(
        "--mask", required=True, metavar="MASK",
        help="an image of IMAGE's size: alpha 0 (or, without alpha, white) marks the region to "
        "repaint",
    )  # fmt: skip
    inpaint.add_argument("--num-images", type=positive_int, default=1, help="images (default 1)")
    inpaint.add_argument(
        "--resample", type=positive_int, default=None,
        help="unCLIP: RePaint resampling per step (default 3)",
    )  # fmt: skip
    inpaint.add_argument(
        "--method", choices=INPAINT_METHODS, default=None,
        help="unCLIP: how the decoder repaints (default: mask if the decoder was trained to "
        "inpaint, else repaint)",
    )  # fmt: skip
    inpaint.add_argument("--out", default="inpainted", help="output folder (default inpainted)")
    _common(inpaint)
    inpaint.set_defaults(func=_inpaint)


# -- shared -------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace, eta: float = 0.0):
    from dalle.pipelines.editing import EditSettings

    given = {"steps": args.decoder_steps, "guidance": args.decoder_guidance}
    return replace_given(EditSettings(eta=eta), given)


def _prepare(
    args: argparse.Namespace, outputs: list[str], inputs: list[str],
    kinds: tuple[str, ...] = ("UnclipPipeline",), ours=None,
) -> tuple[OutputFolder, str]:  # fmt: skip
    """Check the output folder, the inputs and the kind of pipeline before any model is loaded;
    the folder and the pipeline's class. ``ours(name)`` says which files in the folder are an
    earlier run of this command (default ``NNNN_NN.png``): without ``--replace`` they are
    refused; with it those the new images do not overwrite are deleted once the new ones are
    written (:func:`_write`), and never when one of them is an input."""
    from dalle.folders import read_index

    refuse_overwriting([Path(args.out) / name for name in outputs], inputs)
    folder = output_folder(args.out, replace=args.replace, names=ours)
    for earlier in folder.earlier:
        if any(Path(i).exists() and earlier.samefile(i) for i in inputs):
            raise ValueError(
                f"--replace would delete {earlier}, an input of this command: copy it out of "
                f"{args.out} or write to another folder"
            )
    kind = read_index(args.model)[1].class_name
    if kind not in kinds:
        need = " or ".join("an unCLIP" if k == "UnclipPipeline" else "a DALL·E" for k in kinds)
        raise ValueError(f"--model {args.model}: this edit needs {need} pipeline")
    if args.threads:
        torch.set_num_threads(args.threads)
    return folder, kind


def _write(folder: OutputFolder, files: list[tuple[str, object, dict]]) -> None:
    """Write ``(name, image, text chunks)`` to the folder, each atomically; with ``--replace``
    the earlier run's files that the new ones did not overwrite are deleted after every new
    file is on disk (``OutputFolder.finish``), so that a failed write loses neither run."""
    for name, image, fields in files:
        save_png(image, folder.path / name, fields)
    folder.finish({name for name, _, _ in files})


def _is_frame(name: str) -> bool:
    """An interpolation's files: ``NN.png`` frames and ``strip.png``."""
    stem, dot, ext = name.partition(".")
    return name == "strip.png" or (
        len(stem) >= 2 and stem.isascii() and stem.isdigit() and dot + ext == ".png"
    )


def _square(images: list, paths: list[str]) -> list:
    """The images, or a clear error naming the file of one that is not square."""
    from dalle.pipelines.editing import check_square

    for image, path in zip(images, paths, strict=True):
        check_square(image, path)
    return images


def _step_bar(desc: str, total: int):
    """A progress bar over an edit's model steps (``on_step`` of the editing functions)."""
    return tqdm(total=total, desc=desc, unit="step")


def _unclip(args: argparse.Namespace):
    from dalle.pipelines.unclip_pipeline import UnclipPipeline
    from dalle.utils.device import use_bf16

    pipe = UnclipPipeline.from_pretrained(args.model)
    args.bf16 = use_bf16(args.bf16, pipe.device)
    return pipe


def _fields(args: argparse.Namespace, settings, **extra) -> dict:
    import dataclasses

    return {**extra, "seed": args.seed, "model": args.model, **dataclasses.asdict(settings),
            "bf16": args.bf16, "software": f"dalle {__version__}"}  # fmt: skip


# -- the commands -------------------------------------------------------------------------------
def _vary(args: argparse.Namespace) -> int:
    from dalle.pipelines.editing import edit_steps, variations

    settings = replace_given(
        _settings(args, args.eta),
        {"eta_from": args.eta_from, "fresh_guidance": args.fresh_guidance},
    )
    check_candidates(args.candidates, args.num_images)
    names = [output_name(k, j) for k in range(len(args.images)) for j in range(args.num_images)]
    folder, _ = _prepare(args, names, args.images)
    images = _square(input_images(args.images), args.images)
    pipe = _unclip(args)
    with _step_bar("vary", edit_steps(settings, len(images))) as bar:
        found = variations(pipe, images, args.num_images, args.seed, settings, args.bf16,
                           on_step=bar.update, candidates=args.candidates)  # fmt: skip
    files = []
    for k, drawn in enumerate(found):
        for j, image in enumerate(drawn):
            fields = _fields(args, settings, source=args.images[k], input_index=k, image_index=j)
            if "clip_score" in image.info:  # reranked: how many, which one and its score
                fields.update(candidates=variation_candidates(args.num_images, args.candidates),
                              candidate=image.info["candidate"],
                              clip_score=f"{image.info['clip_score']:.4f}")  # fmt: skip
            files.append((output_name(k, j), image, {"edit": "variation", **fields}))
    _write(folder, files)
    print(f"wrote {len(names)} variations of {len(args.images)} images to {folder.path}/")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from dalle.pipelines.editing import edit_steps, interpolate

    settings = _settings(args)
    names = [FRAME_NAME.format(k) for k in range(args.steps)] + ["strip.png"]
    folder, _ = _prepare(args, names, [args.image_a, args.image_b], ours=_is_frame)
    a, b = _square(input_images([args.image_a, args.image_b]), [args.image_a, args.image_b])
    pipe = _unclip(args)
    with _step_bar("interpolate", edit_steps(settings)) as bar:
        frames = interpolate(pipe, a, b, args.steps, args.seed, args.noise, settings, args.bf16,
                             on_step=bar.update)  # fmt: skip
    described = _fields(args, settings, source_a=args.image_a, source_b=args.image_b,
                        frames=args.steps, noise=args.noise)  # fmt: skip
    files = [(FRAME_NAME.format(k), frame, {"edit": "interpolation", **described, "frame": k})
             for k, frame in enumerate(frames)]  # fmt: skip
    files.append(("strip.png", image_grid(frames, len(frames)),
                  {"edit": "interpolation strip", **described}))  # fmt: skip
    _write(folder, files)
    print(f"wrote {len(frames)} frames and strip.png to {folder.path}/")
    return 0


def _edit(args: argparse.Namespace) -> int:
    import math

    from dalle.pipelines.editing import edit_steps, text_diff

    settings = _settings(args, args.eta)
    if not (math.isfinite(args.amount) and 0 <= args.amount <= 1):
        raise ValueError(f"--amount must be a number in [0, 1], got {args.amount}")
    args.source, args.target = (
        check_prompt(args.source, "--from"),
        check_prompt(args.target, "--to"),
    )
    names = [output_name(0, j) for j in range(args.num_images)]
    folder, _ = _prepare(args, names, [args.image])
    (image,) = _square(input_images([args.image]), [args.image])
    pipe = _unclip(args)
    with _step_bar("edit", edit_steps(settings)) as bar:
        drawn = text_diff(pipe, image, args.source, args.target, args.amount, args.num_images,
                          args.seed, settings, args.bf16, args.decoder_captions,
                          on_step=bar.update)  # fmt: skip
    files = []
    for j, result in enumerate(drawn):
        fields = _fields(args, settings, source=args.image, source_text=args.source,
                         target_text=args.target, amount=args.amount,
                         decoder_captions=args.decoder_captions, image_index=j)  # fmt: skip
        files.append((output_name(0, j), result, {"edit": "text diff", **fields}))
    _write(folder, files)
    print(f"wrote {len(drawn)} edited images to {folder.path}/")
    return 0


def _inpaint(args: argparse.Namespace) -> int:
    from dalle.folders import output_size
    from dalle.pipelines.editing import InpaintSettings, inpaint, read_mask

    args.prompt = check_prompt(args.prompt)  # it describes the whole resulting image
    names = [output_name(0, j) for j in range(args.num_images)]
    kinds = ("UnclipPipeline", "DallePipeline")
    folder, kind = _prepare(args, names, [args.image, args.mask], kinds)
    (image,) = input_images([args.image])
    (mask_image,) = input_images([args.mask], "--mask", keep_alpha=True)
    region = read_mask(mask_image, image.size)
    size = output_size(args.model)
    if image.size != (size, size):
        raise ValueError(
            f"{args.image} is {image.size[0]} x {image.size[1]}; {args.model} inpaints {size} x "
            f"{size} images (every pixel outside the mask is kept, so it is not resized)"
        )
    unclip_only = (args.decoder_steps, args.decoder_guidance, args.resample, args.method)
    if kind == "DallePipeline" and any(v is not None for v in unclip_only):
        raise ValueError("--decoder-*, --resample and --method are unCLIP's; this is a DALL·E "
                         "pipeline")  # fmt: skip
    settings = InpaintSettings(args.decoder_steps, args.decoder_guidance, None,
                               args.resample or InpaintSettings.resample, args.method)  # fmt: skip
    if kind == "UnclipPipeline":
        pipe = _unclip(args)
        decoder, upsampler = settings.stages(pipe)
        prior = pipe.prior_defaults
        described = {"method": settings.resolved_method(pipe), "resample": settings.resample,
                     "decoder_steps": decoder.steps, "decoder_guidance": decoder.guidance,
                     "upsampler_steps": upsampler.steps, "prior_sampler": prior.sampler,
                     "prior_steps": prior.steps, "prior_guidance": prior.guidance}  # fmt: skip
        if described["method"] == "mask":  # sampled as the pipeline samples (RePaint: its own)
            described |= {"decoder_sampler": decoder.sampler, "decoder_spacing": decoder.spacing}
        up_steps = upsampler.steps if pipe.upsampler is not None else 0
        bar = _step_bar("inpaint", decoder.steps + up_steps)
        # the upsampler's steps follow the decoder's on the same bar
        on_upsampler_step = lambda i: bar.update(decoder.steps + i + 1 - bar.n)  # noqa: E731
    else:
        import dataclasses

        from dalle.pipelines.dalle_pipeline import DallePipeline
        from dalle.utils.device import use_bf16

        pipe = DallePipeline.from_pretrained(args.model)
        args.bf16 = use_bf16(args.bf16, pipe.device)
        described = dataclasses.asdict(pipe.defaults)
        settings = None
        grid = pipe.transformer.config.image_grid
        bar, on_upsampler_step = tqdm(total=grid * grid, desc="inpaint", unit="token"), None
    with bar:
        # both pipelines' hooks give the index of the step or token just done
        drawn = inpaint(pipe, image, region, args.prompt, args.num_images, args.seed, settings,
                        args.bf16, on_progress=lambda k, _: bar.update(k + 1 - bar.n),
                        on_upsampler_step=on_upsampler_step)  # fmt: skip
    files = []
    for j, result in enumerate(drawn):
        fields = {"edit": "inpainting", "source": args.image, "mask": args.mask,
                  "prompt": args.prompt, "image_index": j, "seed": args.seed, "model": args.model,
                  **described, "bf16": args.bf16, "software": f"dalle {__version__}"}  # fmt: skip
        files.append((output_name(0, j), result, fields))
    _write(folder, files)
    print(f"wrote {len(drawn)} inpainted images to {folder.path}/")
    return 0
