"""Sampling options shared by ``dalle generate``, ``dalle complete`` and ``dalle pipeline``."""

from __future__ import annotations

import argparse

from dalle.cli.validate import (
    check_candidates,
    noise_interval,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability_mass,
)

# the machines whose bf16 matrix units make bf16 the default (dalle.utils.device.use_bf16), for
# every --bf16 help text
BF16_UNITS = "bf16 matrix units (AMX / AVX512-BF16 CPUs: Intel Cooper Lake and later, AMD Zen 4; recent GPUs)"


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="shapes",
        help="pipeline folder (with model_index.json) or bundled name (default shapes)",
    )
    p.add_argument(
        "--num-images", type=positive_int, default=4, help="images per prompt (default 4)"
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="base seed (default 0)")
    add_settings_arguments(p)
    p.add_argument(
        "--batch-size", type=positive_int, default=None,
        help="images sampled at once (default: the pipeline's, chosen by measurement: "
        "docs/benchmarks.md)",
    )  # fmt: skip
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="sample in bf16 (DALL·E: a bf16 copy of the transformer; unCLIP: bf16 autocast) "
        f"(--no-bf16: fp32). Default: bf16 where the machine has {BF16_UNITS}, fp32 "
        "elsewhere (on other CPUs bf16 is many times slower)",
    )  # fmt: skip
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's: the physical cores, or OMP_NUM_THREADS)",
    )


def add_settings_arguments(p: argparse.ArgumentParser, default: str = "the model's") -> None:
    """--temperature, --top-k, --top-p and --guidance (None where not given)."""
    p.add_argument(
        "--temperature", type=non_negative_float, default=None,
        help=f"softmax temperature; 0 takes the most likely token (default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--top-k", type=non_negative_int, default=None,
        help=f"sample among the K most likely tokens; 0 keeps all (default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--top-p", type=probability_mass, default=None,
        help="sample from the smallest set of tokens holding probability P; 1 keeps all "
        f"(default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--guidance", type=non_negative_float, default=None,
        help="classifier-free guidance scale g: uncond + g * (cond - uncond); 1 is off "
        f"(default: {default})",
    )  # fmt: skip


def given_settings(args: argparse.Namespace) -> dict[str, float | int]:
    """The sampling settings given on the command line, checked before any model is loaded."""
    from dalle.pipelines.sampling import SamplingSettings

    given = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
             "guidance": args.guidance}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    SamplingSettings(**given)  # raises ValueError naming a bad value
    return given


def add_candidates_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--candidates", type=positive_int, default=None, metavar="M",
        help="draw M images per prompt and keep the --num-images that the pipeline's CLIP ranks "
        "best, best first (default: draw only --num-images)",
    )  # fmt: skip


UNCLIP_STAGES = {
    "prior": ("sampler", "steps", "spacing", "guidance"),
    "decoder": (
        "sampler", "steps", "spacing", "guidance", "caption_guidance", "guidance_interval"
    ),
    "upsampler": ("sampler", "steps", "spacing"),
}  # fmt: skip


def add_unclip_arguments(
    p: argparse.ArgumentParser, default: str = "the model's", stages=tuple(UNCLIP_STAGES)
) -> None:
    """--prior-*, --decoder-* and --upsampler-* sampling options of unCLIP pipelines (of the
    ``stages`` named)."""
    from dalle.pipelines.unclip_pipeline import SAMPLERS

    g = p.add_argument_group("unCLIP pipelines (each stage's sampler, steps and guidance)")
    for stage in stages:
        names = UNCLIP_STAGES[stage]
        g.add_argument(
            f"--{stage}-sampler", choices=SAMPLERS, default=None,
            help=f"the {stage}'s sampler (default: {default})",
        )  # fmt: skip
        g.add_argument(
            f"--{stage}-steps", type=positive_int, default=None,
            help=f"the {stage}'s sampling steps (default: {default})",
        )  # fmt: skip
        g.add_argument(
            f"--{stage}-spacing", type=positive_float, default=None, metavar="P",
            help=f"where the {stage}'s steps fall: step i of n at timestep (T - 1) (i / (n - 1))^P; "
            "1 spaces them evenly, below 1 packs them at the noisy end (where a decoder lays "
            f"out the scene), above 1 at the clean end (default: {default})",
        )  # fmt: skip
        if "guidance" in names:
            g.add_argument(
                f"--{stage}-guidance", type=non_negative_float, default=None,
                help=f"the {stage}'s classifier-free guidance scale; 1 is off (default: {default})",
            )  # fmt: skip
        if "caption_guidance" in names:
            g.add_argument(
                f"--{stage}-caption-guidance", type=non_negative_float, default=None,
                help=f"the caption's own guidance scale in the {stage} (a third prediction a "
                "step): uncond + g (CLIP alone - uncond) + this (CLIP and caption - CLIP alone); "
                f"default: {default} (the caption guided with the CLIP embedding, one scale)",
            )  # fmt: skip
        if "guidance_interval" in names:
            g.add_argument(
                f"--{stage}-guidance-interval", type=noise_interval, default=None,
                metavar="LOW,HIGH",
                help=f"guide only the {stage}'s steps whose noise level t / (T - 1) lies in "
                "[LOW, HIGH] (1 is pure noise; the other steps run unguided, one prediction "
                "instead of two); "
                f"0,1 guides every step (default: {default})",
            )  # fmt: skip


def given_unclip_settings(args: argparse.Namespace) -> dict[str, dict]:
    """``{stage: {field: value}}`` of the unCLIP options given, checked before loading."""
    from dalle.pipelines.unclip_pipeline import DecoderSettings, PriorSettings, UpsamplerSettings

    classes = {"prior": PriorSettings, "decoder": DecoderSettings, "upsampler": UpsamplerSettings}
    given = {}
    for stage, names in UNCLIP_STAGES.items():
        values = {n: getattr(args, f"{stage}_{n}", None) for n in names}
        given[stage] = {k: v for k, v in values.items() if v is not None}
        try:
            classes[stage](**given[stage])  # raises ValueError naming a bad value
        except ValueError as e:
            raise ValueError(f"--{stage}-*: {e}") from None
    return given


DALLE_ONLY = ("temperature", "top_k", "top_p", "guidance")


def check_pipeline_args(args: argparse.Namespace) -> str:
    """Check every sampling option against the pipeline ``--model`` names, reading only its
    model_index.json (no weights): before any output is touched or a model loaded. Returns the
    pipeline's class name."""
    from dalle.folders import part_setting, read_index
    from dalle.pipelines.unclip_pipeline import check_steps

    if args.num_images < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise ValueError("--num-images and --batch-size must be at least 1")
    candidates = getattr(args, "candidates", None)
    check_candidates(candidates, args.num_images)
    unclip = given_unclip_settings(args)
    root, index = read_index(args.model)
    if index.class_name == "UnclipPipeline":
        wrong = [f"--{k.replace('_', '-')}" for k in DALLE_ONLY if getattr(args, k) is not None]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: DALL·E sampling options; {args.model} is an unCLIP "
                "pipeline (use --prior-guidance, --decoder-guidance and the other --prior-*, "
                "--decoder-*, --upsampler-* options)"
            )
        missing = [part for part in ("prior", "decoder") if part not in index.parts]
        if missing:
            raise ValueError(
                f"{root} has no {' or '.join(missing)}: it cannot draw images from text"
            )
        for stage, values in unclip.items():
            if "steps" in values and stage in index.parts:
                most = part_setting(root, index, stage, "num_timesteps")
                try:
                    check_steps(stage, values["steps"], most)
                except ValueError as e:
                    raise ValueError(f"--{stage}-steps: {e}") from None
    else:
        stated = [f"--{stage}-*" for stage, values in unclip.items() if values]
        if stated:
            raise ValueError(f"{', '.join(stated)}: unCLIP options; {args.model} is DALL·E")
        given_settings(args)
        if candidates is not None and candidates > args.num_images and "clip" not in index.parts:
            raise ValueError(f"--candidates: {root} has no CLIP to rank them with")
    return index.class_name


def load_pipeline(args: argparse.Namespace):
    """The pipeline ``--model`` names (DALL·E or unCLIP, as its model_index.json says), the
    keyword arguments of its ``iter_images`` from the options, and the settings as PNG text
    fields; every option checked first (:func:`check_pipeline_args`). Sets ``args.bf16`` as
    decided."""
    import dataclasses

    import torch

    from dalle.utils.device import use_bf16

    kind = check_pipeline_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    common = {"candidates": getattr(args, "candidates", None), "batch_size": args.batch_size}
    if kind == "UnclipPipeline":
        from dalle.pipelines.unclip_pipeline import UnclipPipeline

        unclip = given_unclip_settings(args)
        pipe = UnclipPipeline.from_pretrained(args.model)
        stages = {
            "prior": pipe.prior_settings(**unclip["prior"]),
            "decoder": pipe.decoder_settings(**unclip["decoder"]),
            "upsampler": pipe.upsampler_settings(**unclip["upsampler"]),
        }
        fields = {
            f"{stage}_{k}": v for stage, s in stages.items() for k, v in dataclasses.asdict(s).items()
        }  # fmt: skip
        sampling = {**stages, **common}
    else:
        from dalle.pipelines.dalle_pipeline import DallePipeline

        pipe = DallePipeline.from_pretrained(args.model)
        settings = pipe.settings(**given_settings(args))
        fields = dataclasses.asdict(settings)
        sampling = {"settings": settings, **common}
    args.bf16 = use_bf16(args.bf16, pipe.device)  # recorded in the PNGs as decided
    return pipe, {**sampling, "bf16": args.bf16}, fields
