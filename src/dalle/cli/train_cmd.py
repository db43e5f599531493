"""``dalle train``: train a stage of a pipeline (``dvae``, ``dalle``, ``clip``, ``prior``,
``decoder``, ``upsampler``)."""

from __future__ import annotations

import argparse

import torch

from dalle.cli import train_clip_cmd, train_dalle_cmd, train_decoder_cmd, train_prior_cmd
from dalle.cli.pipeline_cmd import DTYPES
from dalle.cli.train_args import (
    add_run_arguments,
    open_training_data,
    run_config,
    run_folder,
    run_trainer,
    validation_batches,
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
    pack = train_sub.add_parser(
        "pack",
        help="pack a run's newest checkpoint small, to carry it to another machine",
        description=(
            "Copy a run (any stage) into a small folder that `dalle train STAGE --out OUT "
            "--resume` continues from, here or on another machine: the newest readable "
            "checkpoint's weight matrices and their EMA in fp16 (norms, biases and statistics "
            "as they are), its RNG and step, the run's configs, metrics and "
            "tokenizer; not the optimizer's moments (a quarter of the size is left). The resumed "
            "run starts its optimizer afresh and warms the learning rate up to the schedule's "
            "again over 2 / (1 - beta2) steps, at most the run's warm-up (DALL·E 50, CLIP 100, "
            "dVAE, prior and upsampler 200, decoder 500 at the presets' settings), which costs "
            "about half that many steps of progress. Data caches are not copied: a resume "
            "encodes the data again."
        ),
    )
    pack.add_argument("run", help="the run folder (what --out was)")
    pack.add_argument("--out", required=True, help="the packed run's folder (new, or empty)")
    pack.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp16",
        help="the weights' dtype in the pack (default fp16)",
    )  # fmt: skip
    pack.set_defaults(func=_pack)


def _pack(args: argparse.Namespace) -> int:
    from dalle.training.checkpoint import pack_run

    path = pack_run(args.run, args.out, DTYPES[args.dtype])
    size = sum(f.stat().st_size for f in path.parent.parent.rglob("*") if f.is_file())
    print(f"packed {path} ({size / 2**20:.1f} MB); continue with "
          f"`dalle train STAGE --out {args.out} --resume` and the run's options")  # fmt: skip
    return 0


def _train_dvae(args: argparse.Namespace) -> int:
    from dalle.training.loop import make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = DVAEConfig.from_preset(args.preset)
    config = run_config(DVAETrainConfig, args)
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    dataset = open_training_data(config, model_config.image_size)
    out.mkdir(parents=True, exist_ok=True)
    trainer = DVAETrainer(model_config, config, out, dataset, accelerator)
    trainer.val_batches = validation_batches(config, model_config.image_size, accelerator)
    run_trainer(
        trainer, args, config, model_config, out, "dvae",
        lambda s: {
            "loss": f"{s.loss:.3f}", "recon": f"{s.nll:.3f}", "mse": f"{s.mse:.4f}",
            "kl": f"{s.kl:.4f}", "T": f"{s.temperature:.3f}", "ppl": f"{s.perplexity:.0f}",
            "dead": s.dead_codes,
        },
    )  # fmt: skip
    return 0
