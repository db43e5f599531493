"""``dalle train clip``: contrastive training of CLIP on captions and images."""

from __future__ import annotations

import argparse

import torch

from dalle.cli.train_args import (
    add_run_arguments,
    open_training_data,
    prepare_tokenizer,
    run_config,
    run_folder,
    run_trainer,
    validation_batches,
)
from dalle.models.clip import CLIPConfig
from dalle.training.clip_trainer import CLIPTrainConfig, CLIPTrainer, fit_clip_config


def register(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser(
        "clip",
        help="train CLIP (contrastive text and image encoders)",
        description=(
            "Train CLIP on a data set's images and captions. Trains a BPE tokenizer on the "
            "captions unless --tokenizer is given. Checkpoints go to OUT/checkpoints; on the shapes "
            "world, retrieval and zero-shot figures of the EMA weights to OUT/samples and "
            "OUT/metrics.jsonl every --sample-every steps; at the end OUT/clip holds the EMA "
            "weights (fp16) with the tokenizer. Runs under `accelerate launch` / `torchrun`; the "
            "loss then gathers the features of all processes."
        ),
    )
    add_run_arguments(p, sorted(CLIPTrainConfig.presets), out="runs/clip")
    p.add_argument("--tokenizer", default=None, help="an existing tokenizer.json to use")
    p.add_argument(
        "--mirror-pairs",
        type=float,
        default=None,
        metavar="FRACTION",
        help="shapes captions: up to this fraction of each batch replaced by flipped copies of "
        "its two-object images with the mirrored caption (0 for none; default from the preset)",
    )
    p.set_defaults(func=_train_clip)


def _train_clip(args: argparse.Namespace) -> int:
    from dalle.training.loop import make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(CLIPTrainConfig, args)
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    base = CLIPConfig.from_preset(args.preset)
    dataset = open_training_data(config, base.image_size)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = prepare_tokenizer(args.tokenizer, config, dataset, out, accelerator)
    model_config = fit_clip_config(base, tokenizer, base.image_size)
    trainer = CLIPTrainer(model_config, config, out, tokenizer, dataset, accelerator)
    trainer.val_batches = validation_batches(config, base.image_size, accelerator)
    run_trainer(
        trainer, args, config, model_config, out, "clip",
        lambda s: {"loss": f"{s.loss:.3f}", "scale": f"{s.scale:.1f}", "lr": f"{s.lr:.1e}"},
    )  # fmt: skip
    return 0
