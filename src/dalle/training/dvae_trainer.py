"""Training the discrete VAE (Ramesh et al. 2021, appendix A.2) on the shared loop.

Gumbel-softmax temperature annealed 1 -> 1/16 (cosine), KL weight ramped 0 -> beta (cosine, first
few percent of updates), AdamW with warm-up and cosine learning-rate decay, an EMA of the weights
for use; ``accelerate`` as for every stage (:mod:`dalle.training.loop`), so the same command trains
on a GPU or data-parallel under ``torchrun``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from dalle.data.base import SkipReport
from dalle.data.transforms import Augmentation
from dalle.models.dvae import DiscreteVAE, DVAEConfig, elbo_loss
from dalle.training.batches import StepBatches
from dalle.training.loop import AcceleratedTrainer, RunConfig
from dalle.training.schedules import cosine_anneal, cosine_ramp
from dalle.utils.images import image_grid, save_png, to_pil


@dataclass(frozen=True)
class DVAETrainConfig(RunConfig):
    steps: int = 6000
    lr_end: float = 2e-5
    weight_decay: float = 1e-4  # on weight matrices and convolution kernels
    beta2: float = 0.999
    ema_decay: float = 0.995
    kl_weight: float = 6.6  # beta
    kl_ramp_fraction: float = 0.05  # of the steps
    temperature_start: float = 1.0
    temperature_end: float = 1 / 16
    temperature_fraction: float = 0.6  # anneal over this fraction of the steps, then hold
    # Beyond the paper (docs/dvae.md, "Why the shapes recipe adds a squared error"): an auxiliary
    # squared error of the decoded image with this weight, and the logit-Laplace NLL switched on
    # only after this fraction of the steps. 0 and 0 give the paper's objective.
    sq_weight: float = 0.0
    nll_start_fraction: float = 0.0
    channels_last: bool = True  # faster at 32 x 32 too: 116-118 ms vs 137-144 ms in fp32
    sample_every: int = 500
    usage_window: int = 50  # steps over which codebook use is counted


@dataclass
class StepStats:
    step: int
    loss: float
    nll: float
    kl: float
    mse: float
    temperature: float
    perplexity: float
    dead_codes: int
    lr: float


class CodebookUsage:
    """Code counts over a sliding window of steps: perplexity and dead codes."""

    def __init__(self, num_tokens: int, window: int) -> None:
        self.window = [torch.zeros(num_tokens, dtype=torch.long) for _ in range(window)]
        self.cursor = 0

    def add(self, logits: torch.Tensor) -> None:
        codes = logits.argmax(dim=1).flatten().cpu()
        self.window[self.cursor] = torch.bincount(codes, minlength=len(self.window[0]))
        self.cursor = (self.cursor + 1) % len(self.window)

    def stats(self) -> tuple[float, int]:
        counts = torch.stack(self.window).sum(0).double()
        p = counts / counts.sum().clamp_min(1)
        perplexity = math.exp(-(p * p.clamp_min(1e-12).log()).sum().item())
        return perplexity, int((counts == 0).sum())


class DVAETrainer(AcceleratedTrainer):
    export_name = "vae"

    def __init__(
        self,
        model_config: DVAEConfig,
        config: DVAETrainConfig,
        run_dir: str | Path,
        dataset,
        accelerator: Accelerator | None = None,
    ) -> None:
        torch.manual_seed(config.seed)
        model = DiscreteVAE(model_config)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        super().__init__(model, model_config, config, run_dir, accelerator)
        self.dataset = dataset
        self.usage = CodebookUsage(model_config.num_tokens, config.usage_window)
        self.skipped = SkipReport()
        self._last_images: torch.Tensor | None = None  # for the sample grid

    # -- schedules --------------------------------------------------------------------------
    def temperature_at(self, step: int) -> float:
        c = self.config
        span = int(c.steps * c.temperature_fraction)
        return cosine_anneal(step, span, c.temperature_start, c.temperature_end)

    def kl_weight_at(self, step: int) -> float:
        return cosine_ramp(
            step, int(self.config.steps * self.config.kl_ramp_fraction), self.config.kl_weight
        )

    def nll_weight_at(self, step: int) -> float:
        return 0.0 if step < int(self.config.steps * self.config.nll_start_fraction) else 1.0

    # -- the shared loop's hooks ----------------------------------------------------------------
    def batches(self, start_step: int, position: int | None = None) -> Iterator[Any]:
        c = self.config
        return StepBatches(self.dataset, c.batch_size, start_step, c.seed, self.skipped, position)

    def state_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"usage": {"counts": torch.stack(self.usage.window)}}

    def state_values(self) -> dict[str, Any]:
        return {"usage_cursor": self.usage.cursor}

    def load_state(self, tensors: dict[str, dict[str, torch.Tensor]], values: dict) -> None:
        self.usage.window = list(tensors["usage"]["counts"].unbind(0))
        self.usage.cursor = values["usage_cursor"]

    def train_step(self, batch: tuple[torch.Tensor, list[str]]) -> StepStats:
        images = batch[0]
        self._last_images = images
        temperature = self.temperature_at(self.step)
        lr = self.set_lr()
        weights = self.kl_weight_at(self.step), self.nll_weight_at(self.step)
        out = self.losses(self.model, images, self.generator, temperature, *weights)
        self.usage.add(out["logits"].detach())
        stats = self.optimize({k: out[k] for k in ("loss", "nll", "kl", "mse")})
        perplexity, dead = self.usage.stats()
        return StepStats(
            self.step, stats["loss"], stats["nll"], stats["kl"], stats["mse"], temperature,
            perplexity, dead, lr,
        )  # fmt: skip

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        # at the settings the run ends with (not this step's), so that the figures of two
        # steps differ by the weights alone
        c = self.config
        out = self.losses(model, batch[0], generator, c.temperature_end, c.kl_weight, 1.0)
        return {k: out[k] for k in ("loss", "nll", "kl", "mse")}

    def losses(
        self, model, images: torch.Tensor, generator: torch.Generator, temperature: float,
        kl_weight: float, nll_weight: float,
    ) -> dict:  # fmt: skip
        """``elbo_loss`` of ``model`` on this process's rows of the global batch ``images`` at
        the given temperature and weights, the Gumbel noise drawn from ``generator``."""
        c = self.config
        local = self.local_slice(images)
        if c.channels_last:
            local = local.contiguous(memory_format=torch.channels_last)
        # the Gumbel noise of the whole global batch, so that every process draws what a single
        # process would for its rows: data-parallel runs match one-process runs
        grid, codes = self.model_config.grid_size, self.model_config.num_tokens
        uniform = torch.rand((len(images), codes, grid, grid), generator=generator)
        with self.accelerator.autocast():
            return elbo_loss(
                model, local, temperature, kl_weight, nll_weight=nll_weight,
                sq_weight=c.sq_weight, config=self.model_config, uniform=self.local_slice(uniform),
            )  # fmt: skip

    def sample(self) -> None:
        """Originals (top row) over EMA reconstructions (bottom row) of the last batch."""
        if self._last_images is None:
            return
        vae = self.ema_model()
        images = self._last_images[:8].float().contiguous().to(self.accelerator.device)
        with torch.no_grad():
            recon = vae.decode(vae.encode(images))
        grid = image_grid(to_pil(torch.cat([images, recon])), len(images), scale=2)
        save_png(grid, self.run_dir / "samples" / f"step_{self.step:07d}.png", {"step": self.step})


# The shapes recipe (docs/dvae.md): squared error alone for the first 10 % of the steps, then the
# logit-Laplace NLL with the squared error kept as an auxiliary term. 40,000 steps: the bundled
# model (20,000 left the scorer at 98.6 % / 97.4 %).
DVAETrainConfig.register_preset(
    "shapes",
    DVAETrainConfig(
        data="shapes", steps=40000, batch_size=32, temperature_fraction=0.5, sq_weight=100.0,
        nll_start_fraction=0.1,
    ),
)  # fmt: skip
DVAETrainConfig.register_preset(
    "dvae-tiny",
    DVAETrainConfig(data="shapes", steps=40, batch_size=4, warmup_steps=5, checkpoint_every=10,
                    sample_every=20),
)  # fmt: skip
# CelebA at 128 x 128 with the founding documents' augmentation (random crop, a few degrees of
# rotation, per-pixel noise); --data names the CelebA folder (docs/celeba.md).
DVAETrainConfig.register_preset(
    "celeba128",
    DVAETrainConfig(data="celeba", steps=30000, batch_size=32, temperature_fraction=0.5,
                    sq_weight=100.0, nll_start_fraction=0.1, checkpoint_every=500,
                    augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
