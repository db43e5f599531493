"""``dalle train prior``: the unCLIP diffusion prior on a frozen CLIP's embeddings."""

from __future__ import annotations

import argparse

import torch

from dalle.cli.train_args import (
    add_run_arguments,
    encoded_batches,
    open_training_data,
    run_config,
    run_folder,
    run_trainer,
    validation_batches,
)
from dalle.training.prior_trainer import PriorTrainConfig


def register(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser(
        "prior",
        help="train the unCLIP diffusion prior (CLIP text embedding -> CLIP image embedding)",
        description=(
            "Train the diffusion prior of unCLIP (Ramesh et al. 2022, section 2.2) on a data "
            "set's captions and images, encoded by a frozen CLIP (--clip: a CLIP folder with its "
            "tokenizer.json, a pipeline holding one, or a bundled name; default the bundled "
            "shapes CLIP); a finite data set's image embeddings are computed once and cached in "
            "OUT/clip_embeddings.safetensors, keyed by the CLIP's weights. Image embeddings are standardised by statistics of the first batches, "
            "kept with the weights. Checkpoints go to OUT/checkpoints (exact resume); on the "
            "shapes world, retrieval by the prior's embeddings goes to OUT/metrics.jsonl every "
            "--sample-every steps; at the end OUT/pipeline holds the tokenizer, the CLIP and the "
            "EMA prior (fp16), a pipeline `dalle embed --model` reads. Runs under `accelerate "
            "launch` / `torchrun` unchanged."
        ),
    )
    add_run_arguments(p, sorted(PriorTrainConfig.presets), out="runs/prior")
    p.add_argument("--clip", default=None, help="the frozen CLIP (default: the preset's, shapes)")
    p.set_defaults(func=_train_prior)


def _train_prior(args: argparse.Namespace) -> int:
    from dalle.models.prior import PriorConfig
    from dalle.pipelines.clip_ranker import ClipRanker
    from dalle.training.encoded_data import clip_image_embeddings
    from dalle.training.loop import make_accelerator
    from dalle.training.prior_trainer import PriorTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(PriorTrainConfig, args)
    base = PriorConfig.from_preset(args.preset)
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    ranker = ClipRanker.from_pretrained(config.clip, str(accelerator.device))
    clip = ranker.clip.config
    model_config = base.replace(
        embed_dim=clip.embed_dim, text_dim=clip.text_dim, text_seq_len=clip.text_seq_len
    )
    dataset = open_training_data(config, clip.image_size)
    out.mkdir(parents=True, exist_ok=True)
    batches = encoded_batches(config, dataset, clip_image_embeddings(ranker.clip), out, accelerator)
    trainer = PriorTrainer(
        model_config, config, out, ranker.clip, ranker.tokenizer, batches, accelerator
    )
    trainer.val_batches = validation_batches(
        config, clip.image_size, accelerator, clip_image_embeddings(ranker.clip)
    )
    run_trainer(
        trainer, args, config, model_config, out, "prior",
        lambda s: {"loss": f"{s.loss:.4f}", "lr": f"{s.lr:.1e}"},
    )  # fmt: skip
    return 0
