"""``dalle train dalle``: train the transformer on captions and dVAE image tokens."""

from __future__ import annotations

import argparse
import itertools

import torch

from dalle.cli.train_args import (
    add_caption_dropout_argument,
    add_init_argument,
    add_run_arguments,
    encoded_batches,
    open_training_data,
    prepare_tokenizer,
    run_config,
    run_folder,
    run_trainer,
    start_from,
    validation_batches,
)
from dalle.cli.validate import non_negative_int, positive_int
from dalle.models.transformer import DalleConfig
from dalle.training.dalle_trainer import (
    DalleTrainConfig,
    DalleTrainer,
    fit_model_config,
    make_accelerator,
)


def register(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser(
        "dalle",
        help="train the DALL·E transformer (text + image tokens)",
        description=(
            "Train the DALL·E transformer on captions and the image tokens of a frozen dVAE "
            "(--vae, default the preset's: the bundled shapes dVAE for the shapes presets). "
            "Trains a BPE tokenizer on the data's captions unless --tokenizer is given; "
            "encodes a finite data set once into "
            "OUT/image_tokens.safetensors. Checkpoints go to OUT/checkpoints, sample grids to "
            "OUT/samples, and at the end the EMA weights with the tokenizer and dVAE, as a "
            "pipeline folder that `dalle generate --model OUT/pipeline` reads. Runs under "
            "`accelerate launch` unchanged."
        ),
    )
    add_run_arguments(p, sorted(DalleTrainConfig.presets), out="runs/dalle")
    p.add_argument(
        "--vae",
        default=None,
        help="dVAE folder or bundled name (default: the preset's, shapes for the shapes presets, "
        "runs/dvae-celeba128/vae for celeba128)",
    )
    p.add_argument("--tokenizer", default=None, help="an existing tokenizer.json to use")
    add_caption_dropout_argument(p, "caption_dropout", "0.15")
    p.add_argument(
        "--layers", type=positive_int, default=None,
        help="transformer depth (default the preset's; the sparse schedule follows it)",
    )  # fmt: skip
    p.add_argument(
        "--full-every", type=non_negative_int, default=None, metavar="N",
        help="with the sparse schedule, make every N-th layer but the last attend to every "
        "earlier image token (the others keep the paper's row / column / conv order); 0: none "
        "(the preset's)",
    )  # fmt: skip
    add_init_argument(
        p,
        "transformer (a pipeline folder, a transformer folder or a bundled name)",
        "fewer --layers, or no full layers: its layers keep their kinds and order in the "
        "attention schedule, the convolutional one last",
    )
    p.set_defaults(func=_train_dalle)


def _sample_prompts(config: DalleTrainConfig, dataset) -> list[str]:
    if config.data.startswith("shapes"):
        from dalle.shapes.prompts import SAMPLE_PROMPTS

        return list(SAMPLE_PROMPTS)
    return list(itertools.islice(dataset.captions(), 4))


def _train_dalle(args: argparse.Namespace) -> int:
    from dalle.models.dvae import DiscreteVAE
    from dalle.training.encoded_data import dvae_tokens

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(DalleTrainConfig, args)
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    vae = DiscreteVAE.from_pretrained(config.vae, accelerator.device)
    dataset = open_training_data(config, vae.config.image_size)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = prepare_tokenizer(args.tokenizer, config, dataset, out, accelerator)
    base = DalleConfig.from_preset(args.preset)
    if config.layers:
        base = base.replace(num_layers=config.layers)
    if config.full_every is not None:
        base = base.replace(full_every=config.full_every)
    model_config = fit_model_config(base, tokenizer, vae)
    batches = encoded_batches(config, dataset, dvae_tokens(vae), out, accelerator)
    trainer = DalleTrainer(
        model_config, config, out, tokenizer, vae, batches, _sample_prompts(config, dataset),
        accelerator,
    )  # fmt: skip
    trainer.val_batches = validation_batches(
        config, vae.config.image_size, accelerator, dvae_tokens(vae)
    )

    def init() -> None:  # a new run (or one killed before its first checkpoint) starts here
        from dalle.models.transformer import DalleTransformer

        start_from(trainer, DalleTransformer, args.init, accelerator.device)

    run_trainer(
        trainer, args, config, model_config, out, "dalle",
        lambda s: {
            "loss": f"{s.loss:.3f}", "text": f"{s.text_loss:.3f}", "image": f"{s.image_loss:.3f}",
            "lr": f"{s.lr:.1e}",
        },
        init=init if args.init else None,
    )  # fmt: skip
    return 0
