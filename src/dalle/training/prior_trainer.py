"""Training the unCLIP diffusion prior (Ramesh et al. 2022, section 2.2) on the shared loop.

Each step reads the images' embeddings by the frozen CLIP (encoded once and cached for a finite
data set, batch by batch for a stream: ``dalle.training.encoded_data``), encodes the captions
(token encodings and text embedding), noises the standardised image embedding at a random timestep,
and regresses the clean one (x0) with a mean squared error. The caption is replaced by the learned
null caption for ``text_dropout`` of the samples (classifier-free guidance). The timesteps, noise
and dropout of a step are drawn for the whole global batch from the run's generator, so that a
data-parallel run draws what a single process would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from dalle.data.base import SkipReport
from dalle.data.transforms import Augmentation
from dalle.models.clip import CLIP
from dalle.models.pretrained import weights_id
from dalle.models.prior import DiffusionPrior, PriorConfig
from dalle.pipelines.unclip_pipeline import PriorSettings, UnclipPipeline, make_schedule
from dalle.text.tokenizer import TextTokenizer
from dalle.training.encoded_data import EncodedBatches
from dalle.training.loop import AcceleratedTrainer, RunConfig


@dataclass(frozen=True)
class PriorTrainConfig(RunConfig):
    clip: str = "shapes"  # the frozen CLIP: a folder, a pipeline or a bundled name
    text_dropout: float = 0.1  # the paper's 10 %, for classifier-free guidance
    stat_batches: int = 16  # batches whose image embeddings set the standardisation
    lr: float = 3e-4
    weight_decay: float = 0.01
    beta2: float = 0.999
    ema_decay: float = 0.999
    eval_prompts: int = 64  # shapes runs: retrieval of the prior's embeddings at each sample


@dataclass
class StepStats:
    step: int
    loss: float
    lr: float


class PriorTrainer(AcceleratedTrainer):
    export_name = "pipeline"

    def __init__(
        self,
        model_config: PriorConfig,
        config: PriorTrainConfig,
        run_dir: str | Path,
        clip: CLIP,
        tokenizer: TextTokenizer,
        batches: EncodedBatches,
        accelerator: Accelerator | None = None,
    ) -> None:
        """``batches``: the data's CLIP image embeddings and captions
        (``EncodedBatches`` of ``clip_image_embeddings(clip)``)."""
        torch.manual_seed(config.seed)
        super().__init__(DiffusionPrior(model_config), model_config, config, run_dir, accelerator)
        self.clip = clip.to(self.accelerator.device).eval().requires_grad_(False)
        self.tokenizer, self.embedding_batches = tokenizer, batches
        self.schedule = make_schedule(self.unwrapped)
        self.skipped: SkipReport = batches.report

    def extra_state(self) -> dict[str, str]:
        return {"clip": weights_id(self.clip)}  # a resumed run must read the same CLIP

    def batches(
        self, start_step: int, position: int | None = None
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        return self.embedding_batches(start_step, position)

    @torch.no_grad()
    def encode_captions(self, captions: list[str]):
        """The frozen CLIP's token encodings, caption mask and text embedding."""
        ids = self.tokenizer.encode(captions, self.clip.config.text_seq_len).ids
        return self.clip.encode_text_tokens(ids.to(self.accelerator.device))

    def begin(self) -> None:
        """Standardise by the image embeddings of the first ``stat_batches`` batches."""
        batches = self.batches(0)
        embeds = [next(batches)[0] for _ in range(self.config.stat_batches)]
        self.unwrapped.set_statistics(torch.cat(embeds).float().to(self.accelerator.device))
        self.ema.shadow["embed_mean"] = self.unwrapped.embed_mean.detach().clone().float()
        self.ema.shadow["embed_std"] = self.unwrapped.embed_std.detach().clone().float()

    def train_step(self, batch: tuple[torch.Tensor, list[str]]) -> StepStats:
        lr = self.set_lr()
        loss = self.loss(self.model, batch, self.generator, self.config.text_dropout)
        stats = self.optimize({"loss": loss})
        return StepStats(self.step, stats["loss"], lr)

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(model, batch, generator, text_dropout=0.0)}

    def loss(self, model, batch, generator: torch.Generator, text_dropout: float) -> torch.Tensor:
        """MSE of the predicted (standardised) image embedding at a random timestep, the
        captions dropped with probability ``text_dropout``; this process's rows."""
        image, captions = batch  # (B, D) CLIP image embeddings
        n = len(captions)
        t = torch.randint(0, self.schedule.num_steps, (n,), generator=generator)
        noise = torch.randn(n, self.model_config.embed_dim, generator=generator)
        keep = torch.rand(n, generator=generator) >= text_dropout
        tokens, mask, text = self.encode_captions(captions[self.local_range(n)])
        x0 = self.accelerator.unwrap_model(model).standardise(self.local_slice(image))
        t, noise, keep = (self.local_slice(x) for x in (t, noise, keep))
        x_t = self.schedule.add_noise(x0, noise, t)
        with self.accelerator.autocast():
            pred = model(x_t, t, tokens, text, mask, keep)
        return F.mse_loss(pred.float(), x0)

    def pipeline(self, settings: PriorSettings | None = None) -> UnclipPipeline:
        """The EMA prior with the frozen CLIP and its tokenizer."""
        return UnclipPipeline(
            self.tokenizer, self.clip, self.ema_model(), settings or PriorSettings()
        )

    def sample(self) -> None:
        """Retrieval of rendered test images by the prior's embeddings, logged (shapes data)."""
        if not self.config.data.startswith("shapes"):
            return
        from dalle.eval.prior_eval import shapes_prior_report

        report = shapes_prior_report(self.pipeline(), n=self.config.eval_prompts, seed=1)
        self.metrics.append({"step": self.step, "eval": report})

    def export(self) -> Path:
        """``OUT/pipeline``: tokenizer, CLIP and the EMA prior (fp16), an unCLIP pipeline
        folder ``dalle embed --model`` reads."""
        return self.pipeline().save_pretrained(self.run_dir / self.export_name, torch.float16)


# 3,000 steps of batch 64 (~0.3 s a step in bf16 on a 2-core Emerald Rapids: 16 min)
PriorTrainConfig.register_preset(
    "shapes",
    PriorTrainConfig(data="shapes", steps=3000, batch_size=64, warmup_steps=200,
                     checkpoint_every=500, sample_every=1000),
)  # fmt: skip
PriorTrainConfig.register_preset(
    "prior-tiny",
    PriorTrainConfig(data="shapes", steps=12, batch_size=8, warmup_steps=2, checkpoint_every=4,
                     sample_every=6, stat_batches=2, eval_prompts=8),
)  # fmt: skip
PriorTrainConfig.register_preset(
    "celeba128",
    PriorTrainConfig(clip="runs/clip-celeba128/clip", data="celeba", steps=10000, batch_size=64,
                     warmup_steps=200, checkpoint_every=500, augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
