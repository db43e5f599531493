"""Contrastive training of CLIP on (image, caption) pairs (Radford et al. 2021).

The loop is :class:`dalle.training.loop.AcceleratedTrainer`. With several processes each one
encodes its slice of the global batch and the loss is taken over the features gathered from all
of them (an autograd-aware all-gather), so every image meets every caption of the global batch,
as in one process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from accelerate import Accelerator

from dalle.data.base import SkipReport
from dalle.data.transforms import Augmentation
from dalle.models.clip import CLIP, CLIPConfig, contrastive_loss
from dalle.shapes.mirror import add_mirror_pairs
from dalle.shapes.negatives import hard_negative, relation_negative
from dalle.text.tokenizer import TextTokenizer
from dalle.training.batches import StepBatches
from dalle.training.loop import AcceleratedTrainer, RunConfig


@dataclass(frozen=True)
class CLIPTrainConfig(RunConfig):
    lr: float = 5e-4
    weight_decay: float = 0.2  # CLIP's
    beta2: float = 0.98  # CLIP's AdamW betas are (0.9, 0.98)
    eval_images: int = 300  # test images retrieved at every sample_every (shapes data only)
    # Each caption's copy with one attribute changed as an extra negative for its image
    # (dalle.shapes.negatives; shapes captions only, others get none).
    hard_negatives: bool = False
    # With hard_negatives, a second negative per caption: for two-object captions another
    # relation or the objects swapped (dalle.shapes.negatives.relation_negative), for one-object
    # captions another one-attribute change.
    relation_negatives: bool = False
    # Up to this fraction of each batch replaced by flipped copies of its two-object images with
    # the mirrored caption (dalle.shapes.mirror): negatives on the image side too.
    mirror_pairs: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.mirror_pairs < 1:
            raise ValueError(
                f"mirror_pairs is a fraction of the batch in [0, 1), got {self.mirror_pairs}"
            )


@dataclass
class StepStats:
    step: int
    loss: float
    scale: float
    lr: float


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """The features of every process, concatenated in rank order; gradients flow back to each
    process's own part."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), dim=0)


def fit_clip_config(config: CLIPConfig, tokenizer: TextTokenizer, image_size: int) -> CLIPConfig:
    return config.replace(
        num_text_tokens=tokenizer.vocab_size, eot_id=tokenizer.eot_id, image_size=image_size
    )


class CLIPTrainer(AcceleratedTrainer):
    export_name = "clip"

    def __init__(
        self,
        model_config: CLIPConfig,
        config: CLIPTrainConfig,
        run_dir: str | Path,
        tokenizer: TextTokenizer,
        dataset,
        accelerator: Accelerator | None = None,
    ) -> None:
        torch.manual_seed(config.seed)
        super().__init__(CLIP(model_config), model_config, config, run_dir, accelerator)
        self.tokenizer, self.dataset = tokenizer, dataset
        self.skipped = SkipReport()

    def batches(
        self, start_step: int, position: int | None = None
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        c = self.config
        return StepBatches(self.dataset, c.batch_size, start_step, c.seed, self.skipped, position)

    def _negatives(self, captions: list[str]) -> list[torch.Tensor]:
        """Token ids of each kind of hard negative, one per caption; none when the option is
        off or the captions are not shapes captions."""
        if not self.config.hard_negatives:
            return []
        # drawn from the loop's generator, so a resumed run draws the same negatives
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.generator)))
        kinds = [[hard_negative(c, rng) for c in captions]]
        if self.config.relation_negatives:
            kinds.append([relation_negative(c, rng) or hard_negative(c, rng) for c in captions])
        if any(n is None for kind in kinds for n in kind):
            return []
        return [self.tokenizer.encode(k, self.model_config.text_seq_len).ids for k in kinds]

    def train_step(self, batch: tuple[torch.Tensor, list[str]]) -> StepStats:
        images, captions = batch
        if self.config.mirror_pairs > 0:
            images, captions = add_mirror_pairs(images, captions, self.config.mirror_pairs)
        lr = self.set_lr()
        text = self.tokenizer.encode(captions, self.model_config.text_seq_len).ids
        negatives = self._negatives(captions)
        # the negatives are encoded with the captions: one pass through DDP's forward
        text = torch.cat([self.local_slice(t) for t in (text, *negatives)])
        with self.accelerator.autocast():
            img, txt, scale = self.model(self.local_slice(images), text)
            txt, *neg = txt.chunk(1 + len(negatives))
            loss = contrastive_loss(
                gather_features(img), gather_features(txt), scale.float(),
                torch.cat([gather_features(n) for n in neg]) if neg else None,
            )  # fmt: skip
        stats = self.optimize({"loss": loss})
        return StepStats(self.step, stats["loss"], scale.item(), lr)

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        images, captions = batch  # the pairs as they are: no mirrored pairs, no hard negatives
        text = self.tokenizer.encode(captions, self.model_config.text_seq_len).ids
        with self.accelerator.autocast():
            img, txt, scale = model(self.local_slice(images), self.local_slice(text))
            loss = contrastive_loss(gather_features(img), gather_features(txt), scale.float())
        return {"loss": loss}

    def sample(self) -> None:
        """Retrieval and zero-shot figures of the EMA weights on shapes test images, logged."""
        if not self.config.data.startswith("shapes"):
            return
        from dalle.eval.clip_eval import shapes_clip_report

        report = shapes_clip_report(self.ema_model(), self.tokenizer, n=self.config.eval_images)
        self.metrics.append({"step": self.step, "eval": report})
        out = self.run_dir / "samples" / f"step_{self.step:07d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))

    def export(self) -> Path:
        """The EMA weights (fp16) with the tokenizer they read: ``OUT/clip`` holds
        ``config.json``, ``model.safetensors`` and ``tokenizer.json``."""
        directory = super().export()
        self.tokenizer.save(directory / "tokenizer.json")
        return directory


CLIPTrainConfig.register_preset(
    "shapes",
    CLIPTrainConfig(
        data="shapes", steps=4000, batch_size=128, checkpoint_every=250, sample_every=500,
        hard_negatives=True, relation_negatives=True, mirror_pairs=0.25,
    ),
)  # fmt: skip
CLIPTrainConfig.register_preset(
    "clip-tiny",
    CLIPTrainConfig(
        data="shapes", steps=12, batch_size=8, warmup_steps=2, checkpoint_every=4,
        sample_every=6, tokenizer_captions=500, eval_images=8, hard_negatives=True,
        relation_negatives=True, mirror_pairs=0.25,
    ),
)  # fmt: skip
CLIPTrainConfig.register_preset(
    "celeba128",
    CLIPTrainConfig(data="celeba", steps=10000, batch_size=128, checkpoint_every=500,
                    augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
