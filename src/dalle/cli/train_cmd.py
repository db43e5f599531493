"""``dalle train``: train a stage of a pipeline (``dvae``, ``dalle``, ``clip``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dalle.cli import train_clip_cmd, train_dalle_cmd
from dalle.cli.train_args import add_run_arguments, run_config
from dalle.data import open_dataset
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
            "(config.json + model.safetensors, fp16)."
        ),
    )
    add_run_arguments(dvae, sorted(DVAEConfig.presets), out="runs/dvae")
    dvae.set_defaults(func=_train_dvae)
    train_dalle_cmd.register(train_sub)
    train_clip_cmd.register(train_sub)


def _train_dvae(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = DVAEConfig.from_preset(args.preset)
    config = run_config(DVAETrainConfig, args)
    out = Path(args.out)
    if not args.resume and (out / "checkpoints").exists():
        raise ValueError(
            f"{out} already holds a run: pass --resume to continue it, or another --out"
        )
    dataset = open_dataset(config.data, image_size=model_config.image_size, seed=config.seed)
    trainer = DVAETrainer(model_config, config, out, dataset)
    if args.resume and not trainer.resume():
        print(f"no checkpoint in {out}: starting from step 0")
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "train_config.json")
    model_config.save(out / "model_config.json")

    bar = tqdm(total=config.steps, initial=trainer.step, desc="dvae", unit="step")

    def on_step(s) -> None:
        bar.update(1)
        bar.set_postfix(
            loss=f"{s.loss:.3f}",
            recon=f"{s.nll:.3f}",
            mse=f"{s.mse:.4f}",
            kl=f"{s.kl:.4f}",
            T=f"{s.temperature:.3f}",
            ppl=f"{s.perplexity:.0f}",
            dead=s.dead_codes,
        )

    start = time.perf_counter()
    trainer.train(on_step, stop_at=args.stop_at)
    bar.close()
    if trainer.skipped.count:
        print(trainer.skipped.summary())
    if trainer.step >= config.steps:
        vae_dir = trainer.ema_model().save_pretrained(out / "vae", dtype=torch.float16)
        print(
            f"trained {trainer.step} steps in {time.perf_counter() - start:.0f} s; model: {vae_dir}"
        )
    else:
        print(f"stopped at step {trainer.step}; continue with --resume")
    return 0
