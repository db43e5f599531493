"""``dalle pipeline assemble``: a pipeline folder from trained part folders and sampling defaults."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from dalle.cli.sampling_args import add_settings_arguments, given_settings

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("pipeline", help="build pipeline folders from trained parts")
    commands = group.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    p = commands.add_parser(
        "assemble",
        help="write a DALL·E pipeline folder from a tokenizer, a dVAE, a transformer (and a CLIP)",
        description=(
            "Write OUT as a pipeline folder (model_index.json recording each part's class, one "
            "sub-folder per part) that `dalle generate --model OUT` reads. Each part is a folder "
            "a trainer wrote, a pipeline folder (its part of that kind is taken) or a bundled "
            "name. The sampling options set the pipeline's defaults (else the transformer's "
            "pipeline's, if --transformer is one, else temperature 1 with no filtering or "
            "guidance). For example, the bundled shapes pipeline from its training runs: "
            "dalle pipeline assemble shapes-rebuilt --tokenizer runs/dalle/tokenizer.json "
            "--vae runs/vae/vae --transformer runs/dalle/pipeline --clip runs/clip/clip "
            "--top-k 3 --guidance 2"
        ),
    )
    p.add_argument("out", metavar="OUT", help="the pipeline folder to write (must not exist)")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json, its folder or a pipeline")
    p.add_argument("--vae", required=True, help="dVAE folder, pipeline or bundled name")
    p.add_argument("--transformer", required=True, help="transformer folder, pipeline or name")
    p.add_argument("--clip", default=None, help="CLIP folder (with its tokenizer.json) or pipeline")
    add_settings_arguments(p, default="the --transformer pipeline's, if it is one")
    p.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp16",
        help="weights as stored (default fp16: half the size; loaded as float32)",
    )  # fmt: skip
    p.set_defaults(func=_assemble)


def _assemble(args: argparse.Namespace) -> int:
    from dalle.folders import INDEX_FILE, PipelineIndex, resolve
    from dalle.models.dvae import DiscreteVAE
    from dalle.models.transformer import DalleTransformer
    from dalle.pipelines.clip_ranker import ClipRanker
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.pipelines.sampling import SamplingSettings
    from dalle.text.tokenizer import TextTokenizer

    given = given_settings(args)
    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} exists: give a new folder to write the pipeline into")
    defaults = SamplingSettings()
    source = resolve(args.transformer)
    if (source / INDEX_FILE).is_file():
        defaults = SamplingSettings(**PipelineIndex.read(source).defaults.get("sampling", {}))
    pipe = DallePipeline(
        TextTokenizer.from_pretrained(args.tokenizer),
        DiscreteVAE.from_pretrained(args.vae),
        DalleTransformer.from_pretrained(args.transformer),
        dataclasses.replace(defaults, **given),
        ClipRanker.from_pretrained(args.clip) if args.clip else None,
    )
    pipe.save_pretrained(out, DTYPES[args.dtype])
    parts = "tokenizer, vae, transformer" + (", clip" if args.clip else "")
    print(f"wrote the pipeline {out}/ ({parts}; sampling {dataclasses.asdict(pipe.defaults)})")
    return 0
