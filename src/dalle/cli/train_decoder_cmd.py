"""``dalle train decoder`` and ``dalle train upsampler``: unCLIP's diffusion decoder and upsampler."""

from __future__ import annotations

import argparse

import torch

from dalle.cli.train_args import (
    add_caption_dropout_argument,
    add_init_argument,
    add_run_arguments,
    encoded_batches,
    open_training_data,
    run_config,
    run_folder,
    run_trainer,
    start_from,
    validation_batches,
)
from dalle.cli.validate import fraction, non_negative_int, positive_int
from dalle.training.decoder_trainer import DecoderTrainConfig, UpsamplerTrainConfig


def register(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser(
        "decoder",
        help="train the unCLIP diffusion decoder (CLIP image embedding + caption -> image)",
        description=(
            "Train the diffusion decoder of unCLIP (Ramesh et al. 2022, section 2.1): a U-Net "
            "drawing an image from its CLIP image embedding (projected into the timestep "
            "embedding and into extra context tokens) and its caption, with classifier-free "
            "guidance dropout. The images are encoded by a frozen CLIP (--clip: a CLIP folder "
            "with its tokenizer.json, a pipeline holding one, or a bundled name; default the "
            "bundled shapes CLIP), whose tokenizer the decoder reads too; a finite data set's "
            "embeddings are computed once and cached in OUT/clip_embeddings.safetensors. "
            "Checkpoints go to OUT/checkpoints (exact resume), sample grids (data images, then "
            "the decoder's drawings from their embeddings) to OUT/samples, and the EMA decoder "
            "(fp16) to OUT/decoder at the end: a part for `dalle pipeline assemble --decoder`. "
            "Runs under `accelerate launch` / `torchrun` unchanged."
        ),
    )
    add_run_arguments(p, sorted(DecoderTrainConfig.presets), out="runs/decoder")
    add_sample_steps_argument(p, DecoderTrainConfig)
    p.add_argument("--clip", default=None, help="the frozen CLIP (default: the preset's, shapes)")
    p.add_argument("--unet", default=None, help="U-Net preset (default: the preset's)")
    p.add_argument(
        "--inpaint-prob", type=float, default=None, metavar="P",
        help="train an inpainting decoder (GLIDE): this fraction of the samples gets the image "
        "outside a random rectangle as input, the rest nothing (plain drawing); default 0, "
        "a plain decoder",
    )  # fmt: skip
    add_caption_dropout_argument(p, "text_dropout", "the paper's 0.5")
    p.add_argument(
        "--clip-dropout", type=fraction, default=None, metavar="P",
        help="fraction of the samples trained with the learned null CLIP embedding, for "
        "guidance (default the preset's: the paper's 0.1)",
    )  # fmt: skip
    p.add_argument(
        "--noisy-share", type=fraction, default=None, metavar="P",
        help="fraction of the samples whose timestep is drawn from the noisiest part of the "
        "schedule (t >= --noisy-from of it), where a scene's layout and the binding of its "
        "attributes are decided; the rest uniformly (default 0: all uniformly)",
    )  # fmt: skip
    p.add_argument(
        "--noisy-from", type=fraction, default=None, metavar="F",
        help="where the noisiest part of the schedule starts, as a fraction of it (default 0.7)",
    )  # fmt: skip
    add_init_argument(
        p,
        "decoder (a decoder folder, or the decoder of a pipeline or bundled name)",
        "fewer attention resolutions or caption layers, no caption in the timestep embedding, "
        "not inpainting: a plain decoder starts an inpainting one",
    )
    p.set_defaults(func=_train_decoder)

    u = train_sub.add_parser(
        "upsampler",
        help="train the unCLIP diffusion upsampler (small image -> large image)",
        description=(
            "Train a diffusion upsampler of unCLIP: a U-Net without attention or text that draws "
            "an image at its size from the image at its U-Net preset's low_res_size (bilinearly "
            "enlarged and "
            "concatenated to its input), the conditioning image corrupted by a Gaussian blur "
            "of random width as in the paper. Checkpoints go to OUT/checkpoints (exact resume), "
            "sample grids (low-resolution images, the upsampler's drawings, the originals) to "
            "OUT/samples, and the EMA upsampler (fp16) to OUT/upsampler at the end: a part for "
            "`dalle pipeline assemble --upsampler`. Runs under `accelerate launch` / `torchrun`."
        ),
    )
    add_run_arguments(u, sorted(UpsamplerTrainConfig.presets), out="runs/upsampler")
    add_sample_steps_argument(u, UpsamplerTrainConfig)
    u.add_argument("--unet", default=None, help="U-Net preset (default: the preset's)")
    u.add_argument(
        "--crop-size", type=non_negative_int, default=None,
        help="train on random crops of this size (0: whole images; default the preset's)",
    )  # fmt: skip
    u.set_defaults(func=_train_upsampler)


def add_sample_steps_argument(p: argparse.ArgumentParser, config_class: type) -> None:
    """``--sample-steps N``: the DDIM steps of the sample grids' drawings (``config_class``'s
    ``sample_steps`` field; presets may set their own)."""
    default = config_class.sample_steps  # the dataclass field's default
    p.add_argument(
        "--sample-steps", type=positive_int, default=None, metavar="N",
        help=f"DDIM steps of the sample grids' drawings (default the preset's: {default} at the "
        "full-size presets); fewer draw a grid faster and leave the training as it is",
    )  # fmt: skip


def _train_decoder(args: argparse.Namespace) -> int:
    from dalle.models.unet import UNetConfig
    from dalle.pipelines.clip_ranker import ClipRanker
    from dalle.training.decoder_trainer import DecoderTrainer
    from dalle.training.encoded_data import clip_image_embeddings
    from dalle.training.loop import make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(DecoderTrainConfig, args)
    base = UNetConfig.from_preset(config.unet)
    if base.low_res_channels or not base.embed_dim:
        raise ValueError(f"--unet {config.unet} is not a decoder (it reads no CLIP embedding)")
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    ranker = ClipRanker.from_pretrained(config.clip, str(accelerator.device))
    clip = ranker.clip.config
    if base.image_size > clip.image_size:
        raise ValueError(
            f"--unet {config.unet} draws {base.image_size} x {base.image_size}, larger than the "
            f"images the CLIP reads ({clip.image_size} x {clip.image_size})"
        )
    model_config = base.replace(
        embed_dim=clip.embed_dim, num_text_tokens=clip.num_text_tokens,
        text_seq_len=clip.text_seq_len, inpaint=base.inpaint or config.inpaint_prob > 0,
    )  # fmt: skip
    dataset = open_training_data(config, clip.image_size)
    out.mkdir(parents=True, exist_ok=True)
    batches = encoded_batches(
        config, dataset, clip_image_embeddings(ranker.clip), out, accelerator, with_images=True
    )
    trainer = DecoderTrainer(
        model_config, config, out, ranker.clip, ranker.tokenizer, batches, accelerator
    )
    trainer.val_batches = validation_batches(
        config, clip.image_size, accelerator, clip_image_embeddings(ranker.clip), with_images=True
    )

    def init() -> None:  # a new run (or one killed before its first checkpoint) starts here
        from dalle.folders import INDEX_FILE, resolve
        from dalle.models.unet import UNet

        part = "decoder" if (resolve(args.init) / INDEX_FILE).is_file() else None
        start_from(trainer, UNet, args.init, accelerator.device, part)

    run_trainer(
        trainer, args, config, model_config, out, "decoder",
        lambda s: {"loss": f"{s.loss:.4f}", "lr": f"{s.lr:.1e}"},
        init=init if args.init else None,
    )  # fmt: skip
    return 0


def _train_upsampler(args: argparse.Namespace) -> int:
    from dalle.models.unet import UNetConfig
    from dalle.training.decoder_trainer import UpsamplerTrainer
    from dalle.training.loop import make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    config = run_config(UpsamplerTrainConfig, args)
    model_config = UNetConfig.from_preset(config.unet)
    if not model_config.low_res_channels:
        raise ValueError(f"--unet {config.unet} is not an upsampler (no low-resolution input)")
    out = run_folder(args, config)
    accelerator = make_accelerator(config.bf16)
    dataset = open_training_data(config, model_config.image_size)
    out.mkdir(parents=True, exist_ok=True)
    trainer = UpsamplerTrainer(model_config, config, out, dataset, accelerator)
    trainer.val_batches = validation_batches(config, model_config.image_size, accelerator)
    run_trainer(
        trainer, args, config, model_config, out, "upsampler",
        lambda s: {"loss": f"{s.loss:.4f}", "lr": f"{s.lr:.1e}"},
    )  # fmt: skip
    return 0
