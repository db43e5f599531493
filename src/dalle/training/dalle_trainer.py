"""Training the DALL·E transformer on (caption, dVAE image tokens) pairs (section 2.2, B.2).

The loop is :class:`dalle.training.loop.AcceleratedTrainer`. Captions are dropped (replaced by the
empty caption) with probability ``caption_dropout`` so that the model also learns the
unconditional distribution that classifier-free guidance needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

from dalle.data.base import SkipReport
from dalle.data.transforms import Augmentation
from dalle.models.dvae import DiscreteVAE
from dalle.models.pretrained import weights_id
from dalle.models.transformer import DalleConfig, DalleTransformer, dalle_loss
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.text.tokenizer import TextTokenizer
from dalle.training.encoded_data import EncodedBatches
from dalle.training.loop import AcceleratedTrainer, RunConfig, make_accelerator
from dalle.utils.images import image_grid, save_png

__all__ = ["DalleTrainConfig", "DalleTrainer", "fit_model_config", "make_accelerator"]


@dataclass(frozen=True)
class DalleTrainConfig(RunConfig):
    vae: str = "shapes"  # dVAE folder or bundled name; frozen, it only tokenizes images
    caption_dropout: float = 0.15  # for classifier-free guidance
    layers: int | None = None  # the transformer's depth, if not the model preset's
    full_every: int | None = None  # every N-th layer full attention, if not the preset's
    # the paper's AdamW: betas (0.9, 0.96) and weight decay 0.045 (the RunConfig defaults)


@dataclass
class StepStats:
    step: int
    loss: float
    text_loss: float
    image_loss: float
    lr: float


def fit_model_config(
    config: DalleConfig, tokenizer: TextTokenizer, vae: DiscreteVAE
) -> DalleConfig:
    """``config`` with its vocabularies and image grid taken from the tokenizer and the dVAE."""
    return config.replace(
        num_text_tokens=tokenizer.vocab_size, pad_id=tokenizer.pad_id,
        num_image_tokens=vae.config.num_tokens, image_grid=vae.config.grid_size,
    )  # fmt: skip


class DalleTrainer(AcceleratedTrainer):
    """Data, tokenizer and dVAE are prepared by the caller (see ``cli/train_dalle_cmd``)."""

    export_name = "pipeline"

    def __init__(
        self,
        model_config: DalleConfig,
        config: DalleTrainConfig,
        run_dir: str | Path,
        tokenizer: TextTokenizer,
        vae: DiscreteVAE,
        batches: EncodedBatches,
        sample_prompts: list[str],
        accelerator: Accelerator | None = None,
    ) -> None:
        torch.manual_seed(config.seed)
        super().__init__(DalleTransformer(model_config), model_config, config, run_dir, accelerator)
        self.tokenizer, self.vae, self.token_batches = tokenizer, vae.eval(), batches
        self.sample_prompts = sample_prompts
        self.null_text = tokenizer.encode([""], model_config.text_seq_len).ids[0]
        self.skipped: SkipReport = batches.report

    def extra_state(self) -> dict[str, str]:
        # a resumed run must tokenize images with the same dVAE and captions with the same BPE
        text = hashlib.sha256(self.tokenizer.to_json().encode()).hexdigest()[:16]
        return {"vae": weights_id(self.vae), "tokenizer": text}

    def batches(
        self, start_step: int, position: int | None = None
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        return self.token_batches(start_step, position)

    def pipeline(self) -> DallePipeline:
        """The EMA weights as a ready pipeline."""
        return DallePipeline(self.tokenizer, self.vae, self.ema_model())

    def export(self) -> Path:
        """``OUT/pipeline``: the tokenizer, the dVAE and the EMA transformer (fp16), a pipeline
        folder ``dalle generate --model`` reads."""
        return self.pipeline().save_pretrained(self.run_dir / self.export_name, torch.float16)

    def sample(self, images_per_prompt: int = 4) -> Path:
        """A grid, one row per sample prompt, drawn from the EMA weights with seed 0."""
        pipe = self.pipeline()
        images = pipe(self.sample_prompts, images_per_prompt, seed=0, batch_size=32)
        out = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        return save_png(image_grid(images, images_per_prompt, scale=2), out, {"step": self.step})

    def _text(self, captions: list[str]) -> torch.Tensor:
        text = self.tokenizer.encode(captions, self.model_config.text_seq_len).ids
        drop = torch.rand(len(captions), generator=self.generator) < self.config.caption_dropout
        return torch.where(drop[:, None], self.null_text, text)

    def train_step(self, batch: tuple[torch.Tensor, list[str]]) -> StepStats:
        tokens, captions = batch
        lr = self.set_lr()
        text = self.local_slice(self._text(captions))  # dropout drawn for the global batch
        image = self.local_slice(tokens)
        with self.accelerator.autocast():
            out = dalle_loss(self.model, text, image, self.model_config)
        stats = self.optimize(out)
        return StepStats(self.step, stats["loss"], stats["text_loss"], stats["image_loss"], lr)

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        tokens, captions = batch  # every caption kept (no dropout)
        text = self.tokenizer.encode(captions, self.model_config.text_seq_len).ids
        with self.accelerator.autocast():
            return dalle_loss(
                model, self.local_slice(text), self.local_slice(tokens), self.model_config
            )


# The bundled shapes model: 6,000 steps of 32 captions (~2.5 h on two CPU cores in bf16).
DalleTrainConfig.register_preset(
    "shapes",
    DalleTrainConfig(
        data="shapes", vae="shapes", steps=6000, batch_size=32, lr=1e-3, checkpoint_every=250,
        sample_every=500,
    ),
)  # fmt: skip
DalleTrainConfig.register_preset(
    "dalle-tiny",
    DalleTrainConfig(
        data="shapes", vae="shapes", steps=20, batch_size=4, warmup_steps=2,
        checkpoint_every=10, sample_every=10, tokenizer_captions=500,
    ),
)  # fmt: skip
DalleTrainConfig.register_preset(
    "celeba128",
    DalleTrainConfig(data="celeba", vae="runs/dvae-celeba128/vae", steps=20000, batch_size=32,
                     lr=5e-4, checkpoint_every=250, augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
