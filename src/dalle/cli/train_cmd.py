"""``dalle train``: train a stage of a pipeline (``dvae``, ``dalle``, ``clip``, ``prior``,
``decoder``, ``upsampler``)."""

from __future__ import annotations

import argparse

import torch

from dalle.cli import train_clip_cmd, train_dalle_cmd, train_decoder_cmd, train_prior_cmd
from dalle.cli.train_args import (
    add_run_arguments,
    open_training_data,
    run_config,
    run_folder,
    run_trainer,
)
from dalle.models.dvae import DVAEConfig
from dalle.training.dvae_trainer import DVAETrainConfig, DVAETrainer


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model stage")
    train_sub = train.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    dvae = train_sub.add_parser(
        "dvae",
        help="train the discrete VAE image tokenizer",
        description=(
            "Train the DALL·E discrete VAE. Checkpoints (weights, EMA, optimizer, RNG, step) go "
            "to OUT/checkpoints every --checkpoint-every steps, reconstruction grids to "
            "OUT/samples, and the EMA weights, ready for use, to OUT/vae at the end "
            "(config.json + model.safetensors, fp16). Runs under `accelerate launch` / "
            "`torchrun` unchanged (data-parallel, on GPUs or CPU processes)."
        ),
    )
    add_run_arguments(dvae, sorted(DVAEConfig.presets), out="runs/dvae")
    dvae.set_defaults(func=_train_dvae)
    train_dalle_cmd.register(train_sub)
    train_clip_cmd.register(train_sub)
    train_prior_cmd.register(train_sub)
    train_decoder_cmd.register(train_sub)


def _train_dvae(args: argparse.Namespace) -> int:
    from dalle.training.loop import make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = DVAEConfig.from_preset(args.preset)
    config = run_config(DVAETrainConfig, args)
    out = run_folder(args)
    accelerator = make_accelerator(config.bf16)
    dataset = open_training_data(config, model_config.image_size)
    out.mkdir(parents=True, exist_ok=True)
    trainer = DVAETrainer(model_config, config, out, dataset, accelerator)
    run_trainer(
        trainer, args, config, model_config, out, "dvae",
        lambda s: {
            "loss": f"{s.loss:.3f}", "recon": f"{s.nll:.3f}", "mse": f"{s.mse:.4f}",
            "kl": f"{s.kl:.4f}", "T": f"{s.temperature:.3f}", "ppl": f"{s.perplexity:.0f}",
            "dead": s.dead_codes,
        },
    )  # fmt: skip
    return 0
