"""``dalle pipeline assemble``: a pipeline folder from trained part folders and sampling defaults."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from dalle.cli.sampling_args import (
    add_settings_arguments,
    add_unclip_arguments,
    given_settings,
    given_unclip_settings,
)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("pipeline", help="build pipeline folders from trained parts")
    commands = group.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    p = commands.add_parser(
        "assemble",
        help="write a pipeline folder from trained parts: DALL·E (tokenizer, dVAE, transformer, "
        "CLIP) or unCLIP (tokenizer, CLIP, prior, decoder, upsampler)",
        description=(
            "Write OUT as a pipeline folder (model_index.json recording each part's class, one "
            "sub-folder per part) that `dalle generate --model OUT` reads. Each part is a folder "
            "a trainer wrote, a pipeline folder (its part of that kind is taken) or a bundled "
            "name. The sampling options set the pipeline's defaults (else the transformer's "
            "pipeline's, if --transformer is one, else temperature 1 with no filtering or "
            "guidance). For example, the bundled shapes pipeline from its training runs: "
            "dalle pipeline assemble shapes-rebuilt --tokenizer runs/dalle/tokenizer.json "
            "--vae runs/vae/vae --transformer runs/dalle/pipeline --clip runs/clip/clip "
            "--top-k 3 --guidance 2. With --prior instead of --vae and --transformer it writes an "
            "unCLIP pipeline (tokenizer, CLIP, prior, and --decoder and --upsampler if given; "
            "each stage's sampling defaults are the --prior-*, --decoder-*, --upsampler-* "
            "options, else those of the pipeline the part is taken from, if it is one)."
        ),
    )
    p.add_argument("out", metavar="OUT", help="the pipeline folder to write (must not exist)")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json, its folder or a pipeline")
    p.add_argument("--vae", default=None, help="DALL·E: dVAE folder, pipeline or bundled name")
    p.add_argument("--transformer", default=None, help="DALL·E: transformer folder or pipeline")
    p.add_argument("--clip", default=None, help="CLIP folder (with its tokenizer.json) or pipeline")
    p.add_argument("--prior", default=None, help="unCLIP: prior folder or unCLIP pipeline")
    p.add_argument("--decoder", default=None, help="unCLIP: decoder folder or unCLIP pipeline")
    p.add_argument("--upsampler", default=None, help="unCLIP: upsampler folder or unCLIP pipeline")
    add_settings_arguments(p, default="the --transformer pipeline's, if it is one")
    add_unclip_arguments(p, default="the part's pipeline's, if it is one")
    p.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp16",
        help="weights as stored (default fp16: half the size; loaded as float32)",
    )  # fmt: skip
    p.set_defaults(func=_assemble)


def _assemble(args: argparse.Namespace) -> int:
    from dalle.text.tokenizer import TextTokenizer

    given = given_settings(args)
    unclip_given = given_unclip_settings(args)
    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} exists: give a new folder to write the pipeline into")
    dalle = args.vae is not None or args.transformer is not None
    if dalle and (args.decoder or args.upsampler):
        raise ValueError("--decoder and --upsampler are parts of an unCLIP pipeline (--prior)")
    if dalle and any(unclip_given.values()):
        raise ValueError("the --prior-*, --decoder-*, --upsampler-* options are unCLIP's")
    if dalle == (args.prior is not None) or (dalle and not (args.vae and args.transformer)):
        raise ValueError(
            "give --vae and --transformer (a DALL·E pipeline) or --prior with --clip (unCLIP)"
        )
    tokenizer = TextTokenizer.from_pretrained(args.tokenizer)
    if dalle:
        pipe = _dalle(args, tokenizer, given)
        what = f"sampling {dataclasses.asdict(pipe.defaults)}"
    else:
        if given:
            raise ValueError(
                "the sampling options set DALL·E defaults: an unCLIP pipeline has none"
            )
        pipe = _unclip(args, tokenizer, unclip_given)
        what = f"prior sampling {dataclasses.asdict(pipe.prior_defaults)}"
        if pipe.decoder is not None:
            what += f", decoder {dataclasses.asdict(pipe.decoder_defaults)}"
        if pipe.upsampler is not None:
            what += f", upsampler {dataclasses.asdict(pipe.upsampler_defaults)}"
    pipe.save_pretrained(out, DTYPES[args.dtype])
    print(f"wrote the {type(pipe).__name__} {out}/ ({what})")
    return 0


def _source_index(name_or_dir: str):
    """The index of the pipeline a part is taken from, or None for a part folder."""
    from dalle.folders import INDEX_FILE, PipelineIndex, resolve

    source = resolve(name_or_dir)
    return PipelineIndex.read(source) if (source / INDEX_FILE).is_file() else None


def _source_defaults(name_or_dir: str, key: str) -> dict:
    """The defaults recorded under ``key`` by the pipeline a part is taken from, if it is one."""
    index = _source_index(name_or_dir)
    return {} if index is None else dict(index.defaults.get(key, {}))


def _dalle(args, tokenizer, given):
    from dalle.models.dvae import DiscreteVAE
    from dalle.models.transformer import DalleTransformer
    from dalle.pipelines.clip_ranker import ClipRanker
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.pipelines.sampling import SamplingSettings

    defaults = SamplingSettings(**_source_defaults(args.transformer, "sampling"))
    return DallePipeline(
        tokenizer,
        DiscreteVAE.from_pretrained(args.vae),
        DalleTransformer.from_pretrained(args.transformer),
        dataclasses.replace(defaults, **given),
        ClipRanker.from_pretrained(args.clip) if args.clip else None,
    )


def _unclip(args, tokenizer, given: dict[str, dict]):
    from dalle.models.clip import CLIP
    from dalle.models.prior import DiffusionPrior
    from dalle.pipelines.unclip_pipeline import (
        DecoderSettings,
        PriorSettings,
        UnclipPipeline,
        UpsamplerSettings,
    )

    if args.clip is None:
        raise ValueError("an unCLIP pipeline needs its --clip")

    def settings(cls, source: str | None, stage: str):
        recorded = _source_defaults(source, stage) if source else {}
        return cls(**{**recorded, **given[stage]})

    return UnclipPipeline(
        tokenizer, CLIP.from_pretrained(args.clip), DiffusionPrior.from_pretrained(args.prior),
        settings(PriorSettings, args.prior, "prior"),
        _unet(args.decoder, "decoder"), _unet(args.upsampler, "upsampler"),
        settings(DecoderSettings, args.decoder, "decoder"),
        settings(UpsamplerSettings, args.upsampler, "upsampler"),
    )  # fmt: skip


def _unet(name_or_dir: str | None, part: str):
    """A decoder or upsampler: a U-Net folder, or the part so named of a pipeline."""
    from dalle.models.unet import UNet

    if name_or_dir is None:
        return None
    pipeline = _source_index(name_or_dir) is not None
    return UNet.from_pretrained(name_or_dir, part=part if pipeline else None)
