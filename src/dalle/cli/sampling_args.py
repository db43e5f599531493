"""Sampling options shared by ``dalle generate``, ``dalle complete`` and ``dalle pipeline``."""

from __future__ import annotations

import argparse

from dalle.cli.validate import positive_int


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="shapes",
        help="pipeline folder (with model_index.json) or bundled name (default shapes)",
    )
    p.add_argument(
        "--num-images", type=positive_int, default=4, help="images per prompt (default 4)"
    )
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    add_settings_arguments(p)
    p.add_argument(
        "--batch-size", type=positive_int, default=None,
        help="images sampled at once (default: the pipeline's, chosen by measurement: "
        "docs/benchmarks.md)",
    )  # fmt: skip
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="sample with a bf16 copy of the transformer (--no-bf16: fp32). Default: bf16 where "
        "the machine has bf16 matrix units (Intel AMX / AVX512-BF16 CPUs, recent GPUs), fp32 "
        "elsewhere (on other CPUs bf16 is many times slower)",
    )  # fmt: skip
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")


def add_settings_arguments(p: argparse.ArgumentParser, default: str = "the model's") -> None:
    """--temperature, --top-k, --top-p and --guidance (None where not given)."""
    p.add_argument(
        "--temperature", type=float, default=None,
        help=f"softmax temperature; 0 takes the most likely token (default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--top-k", type=int, default=None,
        help=f"sample among the K most likely tokens; 0 keeps all (default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--top-p", type=float, default=None,
        help="sample from the smallest set of tokens holding probability P; 1 keeps all "
        f"(default: {default})",
    )  # fmt: skip
    p.add_argument(
        "--guidance", type=float, default=None,
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
        "--candidates", type=int, default=None, metavar="M",
        help="draw M images per prompt and keep the --num-images that the pipeline's CLIP ranks "
        "best, best first (default: draw only --num-images)",
    )  # fmt: skip
