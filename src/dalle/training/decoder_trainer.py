"""Training unCLIP's diffusion decoder and upsampler (Ramesh et al. 2022, section 2.1) on the
shared loop.

Both regress the U-Net's prediction (``UNetConfig.prediction``: v or eps) of a noised image with
a mean squared error. The timesteps, noise and dropout of a step are drawn for the whole global
batch from the run's generator, so that a data-parallel run draws what a single process would.

- The **decoder** reads each image's embedding by the frozen CLIP (cached for a finite data set,
  computed batch by batch for a stream: ``dalle.training.encoded_data``) and its caption; the
  image is area-resampled to the decoder's size (32 x 32 for the shapes world). For guidance the
  CLIP embedding is replaced by the learned null one for ``clip_dropout`` of the samples (the
  paper's 10 %) and the caption by the null caption for ``text_dropout`` (50 %).
- The **upsampler** reads the image at its size and the image area-resampled to the low
  resolution, corrupted by a Gaussian blur of a random width per sample (the paper's
  corruption of the first upsampler's conditioning), optionally on random crops.
"""

from __future__ import annotations

import math
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
from dalle.models.unet import UNet, UNetConfig
from dalle.pipelines.unclip_pipeline import (
    DecoderSettings,
    UnclipPipeline,
    UpsamplerSettings,
    caption_ids,
    make_schedule,
    upsample_images,
)
from dalle.text.tokenizer import TextTokenizer
from dalle.training.batches import StepBatches
from dalle.training.encoded_data import EncodedBatches
from dalle.training.loop import AcceleratedTrainer, RunConfig
from dalle.utils.images import area_resize, gaussian_blur, image_grid, save_png, to_pil


@dataclass(frozen=True)
class DecoderTrainConfig(RunConfig):
    unet: str = "shapes-decoder"  # the U-Net preset (dalle.models.unet)
    clip: str = "shapes"  # the frozen CLIP: a folder, a pipeline or a bundled name
    clip_dropout: float = 0.1  # the paper's 10 %
    text_dropout: float = 0.5  # the paper's 50 %
    lr: float = 3e-4
    weight_decay: float = 0.0
    beta2: float = 0.999
    ema_decay: float = 0.9995
    sample_images: int = 8  # images of the first batch redrawn in each sample grid
    sample_steps: int = 25  # DDIM steps of the sample grids (evenly spaced; the pipeline default
    # until 2026-12-05, within 2 points of 250 steps: docs/unclip.md)
    # > 0 trains an inpainting decoder (GLIDE): this fraction of the samples is given the image
    # outside a random rectangle and the rectangle to draw; the rest everything to draw
    inpaint_prob: float = 0.0
    # this fraction of the samples draws its timestep from the noisiest part of the schedule,
    # t >= noisy_from * T, where a scene's layout and binding are decided
    # (benchmarks/decoder_noise_levels.py); the rest (all, at 0) uniformly from 0 .. T - 1
    noisy_share: float = 0.0
    noisy_from: float = 0.7

    def __post_init__(self) -> None:
        if not 0 <= self.inpaint_prob <= 1:
            raise ValueError(f"inpaint_prob must lie in [0, 1], got {self.inpaint_prob}")
        if not 0 <= self.noisy_share <= 1:
            raise ValueError(f"noisy_share must lie in [0, 1], got {self.noisy_share}")
        if not 0 <= self.noisy_from < 1:
            raise ValueError(f"noisy_from must lie in [0, 1), got {self.noisy_from}")


def random_boxes(n: int, size: int, generator: torch.Generator, p: float) -> torch.Tensor:
    """(n, 1, size, size) float: 1 where to draw. With probability ``p`` a sample gets a random
    rectangle (sides from an eighth to three quarters of the image, anywhere inside it), else
    the whole image."""
    draw = torch.ones(n, 1, size, size)
    chosen = torch.rand(n, generator=generator) < p
    low, high = max(size // 8, 1), max(size * 3 // 4, 1)
    sides = torch.randint(low, high + 1, (n, 2), generator=generator)
    corner = torch.rand(n, 2, generator=generator)
    for i in chosen.nonzero().flatten().tolist():
        h, w = sides[i].tolist()
        top, left = int(corner[i, 0] * (size - h + 1)), int(corner[i, 1] * (size - w + 1))
        draw[i] = 0
        draw[i, :, top : top + h, left : left + w] = 1
    return draw


def training_timesteps(
    n: int, steps: int, generator: torch.Generator, noisy_share: float = 0.0,
    noisy_from: float = 0.7,
) -> torch.Tensor:  # fmt: skip
    """(n,) timesteps uniform over ``0 .. steps - 1``, except that ``noisy_share`` of them are
    drawn uniformly from the noisiest part, ``ceil(noisy_from * steps) .. steps - 1``."""
    if noisy_share == 0:  # the draws of a run without the option
        return torch.randint(0, steps, (n,), generator=generator)
    low = min(math.ceil(noisy_from * steps), steps - 1)
    uniform = torch.randint(0, steps, (n,), generator=generator)
    noisy = torch.randint(low, steps, (n,), generator=generator)
    chosen = torch.rand(n, generator=generator) < noisy_share
    return torch.where(chosen, noisy, uniform)


@dataclass(frozen=True)
class UpsamplerTrainConfig(RunConfig):
    unet: str = "shapes-upsampler"  # the U-Net preset (dalle.models.unet), with its low_res_size
    blur_min: float = 0.4  # Gaussian blur of the low-resolution image: sigma in its pixels,
    blur_max: float = 0.6  # uniform in [blur_min, blur_max] per sample
    crop_size: int = 0  # train on random crops of this size (0: whole images)
    lr: float = 3e-4
    weight_decay: float = 0.0
    beta2: float = 0.999
    ema_decay: float = 0.9995
    sample_images: int = 8
    sample_steps: int = 15

    def __post_init__(self) -> None:
        if not 0 <= self.blur_min <= self.blur_max:
            raise ValueError(
                f"need 0 <= blur_min <= blur_max, got {self.blur_min}, {self.blur_max}"
            )
        if self.crop_size < 0:
            raise ValueError(
                f"crop_size must be 0 (whole images) or positive, got {self.crop_size}"
            )


@dataclass
class StepStats:
    step: int
    loss: float
    lr: float


class _DiffusionTrainer(AcceleratedTrainer):
    """What the decoder and upsampler trainers share: the noising and the loss."""

    def __init__(self, model_config: UNetConfig, config, run_dir, accelerator) -> None:
        torch.manual_seed(config.seed)
        super().__init__(UNet(model_config), model_config, config, run_dir, accelerator)
        self.schedule = make_schedule(self.unwrapped)

    def diffusion_loss(
        self, model, generator: torch.Generator, x0: torch.Tensor, **conditions
    ) -> torch.Tensor:
        """MSE of ``model``'s prediction at a random timestep (drawn, with the noise, from
        ``generator``); ``x0`` (B, 3, S, S) in [-1, 1] is the global batch, the ``conditions``
        this process's rows (on its device)."""
        n = x0.shape[0]
        t = self.draw_timesteps(n, generator)
        noise = torch.randn(x0.shape, generator=generator)
        x0, t, noise = (self.local_slice(x) for x in (x0, t, noise))
        x_t = self.schedule.add_noise(x0, noise, t)
        target = self.schedule.target(x0, noise, t, self.model_config.prediction)
        with self.accelerator.autocast():
            out = model(x_t, t, **conditions)
        return F.mse_loss(out.float(), target)

    def draw_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) training timesteps, uniform over the schedule."""
        return training_timesteps(n, self.schedule.num_steps, generator)

    def first_examples(self) -> tuple:
        """The first ``sample_images`` examples of the data, which every sample grid redraws:
        read once when the trainer is made, before training reads the data (so that reading
        them never moves the training data on), the same in a resumed run."""
        batches = self.batches(0)
        try:
            batch = next(batches)
        finally:
            if hasattr(batches, "close"):
                batches.close()
        k = self.config.sample_images
        return tuple(x[:k] for x in batch)

    def save_grid(self, rows: list[torch.Tensor]) -> Path:
        """``OUT/samples/step_N.png``: one row per (k, 3, S, S) tensor in [0, 1], all shown at
        the largest size."""
        size = max(r.shape[-1] for r in rows)
        cells = [im for r in rows for im in to_pil(F.interpolate(r.float(), size=size))]
        out = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        grid = image_grid(cells, len(rows[0]), scale=2)
        return save_png(grid, out, {"step": self.step})


class DecoderTrainer(_DiffusionTrainer):
    export_name = "decoder"

    def __init__(
        self,
        model_config: UNetConfig,
        config: DecoderTrainConfig,
        run_dir: str | Path,
        clip: CLIP,
        tokenizer: TextTokenizer,
        batches: EncodedBatches,
        accelerator: Accelerator | None = None,
    ) -> None:
        """``batches``: (images, CLIP image embeddings, captions) of the data
        (``EncodedBatches`` of ``clip_image_embeddings(clip)`` with images)."""
        if config.inpaint_prob > 0 and not model_config.inpaint:
            raise ValueError("inpaint_prob > 0 trains an inpainting U-Net (config inpaint = True)")
        super().__init__(model_config, config, run_dir, accelerator)
        self.clip = clip.to(self.accelerator.device).eval().requires_grad_(False)
        self.tokenizer, self.data = tokenizer, batches
        self.skipped: SkipReport = batches.report
        self.sample_inputs = self.first_examples()

    def extra_state(self) -> dict[str, str]:
        return {"clip": weights_id(self.clip)}  # a resumed run must read the same CLIP

    def draw_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        c = self.config
        return training_timesteps(
            n, self.schedule.num_steps, generator, c.noisy_share, c.noisy_from
        )  # fmt: skip

    def batches(
        self, start_step: int, position: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        return self.data(start_step, position)

    def train_step(self, batch) -> StepStats:
        lr = self.set_lr()
        c = self.config
        loss = self.loss(self.model, batch, self.generator, c.clip_dropout, c.text_dropout)
        stats = self.optimize({"loss": loss})
        return StepStats(self.step, stats["loss"], lr)

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(model, batch, generator, clip_dropout=0.0, text_dropout=0.0)}

    def loss(
        self, model, batch, generator: torch.Generator, clip_dropout: float, text_dropout: float
    ) -> torch.Tensor:
        """The diffusion loss on (images, CLIP embeddings, captions), the embedding and the
        caption each replaced by its null with the given probabilities."""
        images, embeds, captions = batch
        n, c = len(captions), self.model_config
        keep_clip = torch.rand(n, generator=generator) >= clip_dropout
        keep_text = torch.rand(n, generator=generator) >= text_dropout
        x0 = area_resize(images.float(), c.image_size) * 2 - 1
        ids, mask = caption_ids(self.tokenizer, captions[self.local_range(n)], c.text_seq_len)
        conditions = {
            "clip_embed": self.local_slice(embeds.float()),
            "text": ids.to(self.accelerator.device),
            "text_mask": mask.to(self.accelerator.device),
            "keep_clip": self.local_slice(keep_clip),
            "keep_text": self.local_slice(keep_text),
        }
        if c.inpaint:
            draw = random_boxes(n, c.image_size, generator, self.config.inpaint_prob)
            conditions["known"] = self.local_slice(x0)
            conditions["draw"] = self.local_slice(draw)
        return self.diffusion_loss(model, generator, x0, **conditions)

    def pipeline(self) -> UnclipPipeline:
        """The frozen CLIP, its tokenizer and the EMA decoder."""
        return UnclipPipeline(self.tokenizer, self.clip, decoder=self.ema_model())

    def sample(self) -> Path:
        """A grid: the first batch's images (at the decoder's size), then the EMA decoder's
        drawings from their CLIP embeddings and captions (DDIM, the default guidance)."""
        images, embeds, captions = self.sample_inputs
        size = self.model_config.image_size
        settings = DecoderSettings(sampler="ddim", steps=self.config.sample_steps)
        seeds = list(range(len(captions)))
        drawn = self.pipeline().decode(embeds, captions, seeds, settings)
        return self.save_grid([area_resize(images.float(), size), drawn])


class UpsamplerTrainer(_DiffusionTrainer):
    export_name = "upsampler"

    def __init__(
        self,
        model_config: UNetConfig,
        config: UpsamplerTrainConfig,
        run_dir: str | Path,
        dataset,
        accelerator: Accelerator | None = None,
    ) -> None:
        """Trains on ``dataset``'s images at ``model_config.image_size``, conditioned on them at
        ``model_config.low_res_size``."""
        low_res_size = model_config.low_res_size
        if not model_config.low_res_channels:
            raise ValueError("the U-Net is not an upsampler (no low-resolution input)")
        if model_config.image_size % low_res_size:
            raise ValueError(
                f"the low resolution {low_res_size} does not divide the upsampler's size "
                f"{model_config.image_size}"
            )
        if config.crop_size and (
            config.crop_size > model_config.image_size
            or config.crop_size % (model_config.image_size // low_res_size)
        ):
            raise ValueError(
                f"crop_size {config.crop_size} must be at most {model_config.image_size} and a "
                f"multiple of the scale factor {model_config.image_size // low_res_size}"
            )
        super().__init__(model_config, config, run_dir, accelerator)
        self.dataset, self.low_res_size = dataset, low_res_size
        self.skipped = SkipReport()
        self.sample_inputs = self.first_examples() if dataset is not None else None

    def batches(
        self, start_step: int, position: int | None = None
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        c = self.config
        return StepBatches(self.dataset, c.batch_size, start_step, c.seed, self.skipped, position)

    def low_res(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, s, s) in [0, 1]: the images at the low resolution, blurred."""
        small = area_resize(images.float(), self.low_res_size)
        c = self.config
        sigma = c.blur_min + (c.blur_max - c.blur_min) * torch.rand(
            len(images), generator=generator
        )
        return gaussian_blur(small, sigma) if c.blur_max > 0 else small

    def _crop(
        self, x0: torch.Tensor, low: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random aligned crops (one position per sample) of the image and its low-res copy."""
        size, crop = self.model_config.image_size, self.config.crop_size
        if not crop or crop == size:
            return x0, low
        scale = size // self.low_res_size
        cells = (size - crop) // scale + 1  # crop positions on the low-res grid
        pos = torch.randint(0, cells, (len(x0), 2), generator=generator).tolist()
        small = crop // scale
        x0 = torch.stack([x[:, i * scale : i * scale + crop, j * scale : j * scale + crop]
                          for x, (i, j) in zip(x0, pos, strict=True)])  # fmt: skip
        low = torch.stack([x[:, i : i + small, j : j + small]
                           for x, (i, j) in zip(low, pos, strict=True)])  # fmt: skip
        return x0, low

    def train_step(self, batch) -> StepStats:
        images, _ = batch
        lr = self.set_lr()
        x0 = area_resize(images.float(), self.model_config.image_size) * 2 - 1
        low = self.low_res(images, self.generator) * 2 - 1
        x0, low = self._crop(x0, low, self.generator)
        loss = self.diffusion_loss(self.model, self.generator, x0, low_res=self.local_slice(low))
        stats = self.optimize({"loss": loss})
        return StepStats(self.step, stats["loss"], lr)

    def validation_losses(self, model, batch, generator) -> dict[str, torch.Tensor]:
        images, _ = batch  # blurred and cropped as in training
        x0 = area_resize(images.float(), self.model_config.image_size) * 2 - 1
        low = self.low_res(images, generator) * 2 - 1
        x0, low = self._crop(x0, low, generator)
        return {"loss": self.diffusion_loss(model, generator, x0, low_res=self.local_slice(low))}

    def sample(self) -> Path:
        """A grid: the low-resolution images (unblurred), the EMA upsampler's drawings from them,
        and the originals."""
        images, _ = self.sample_inputs
        small = area_resize(images.float(), self.low_res_size)
        settings = UpsamplerSettings(sampler="ddim", steps=self.config.sample_steps)
        drawn = upsample_images(self.ema_model(), small, list(range(len(images))), settings)
        return self.save_grid([small, drawn, area_resize(images.float(), drawn.shape[-1])])


# The shapes world's decoder (32 x 32) on the frozen bundled CLIP, batch 32. The bundled one: 6,000
# steps on `shapes`, 3,000 on the users mix (two_objects=0.75&size_words=0.75), then grown to the
# shapes-decoder preset (--init) and 4,500 more on the users mix (docs/unclip.md); 0.7-1.7 s a
# step in bf16 on a 2-core Emerald Rapids, resumed across sessions.
DecoderTrainConfig.register_preset(
    "shapes",
    DecoderTrainConfig(data="shapes", steps=12000, batch_size=32, warmup_steps=500,
                       checkpoint_every=250, sample_every=1000),
)  # fmt: skip
DecoderTrainConfig.register_preset(
    "decoder-tiny",
    DecoderTrainConfig(unet="decoder-tiny", data="shapes", steps=12, batch_size=8,
                       warmup_steps=2, checkpoint_every=4, sample_every=6, sample_images=4,
                       sample_steps=4),
)  # fmt: skip
# The shapes world's upsampler 32 -> 64.
UpsamplerTrainConfig.register_preset(
    "shapes",
    UpsamplerTrainConfig(data="shapes", steps=4000, batch_size=32, warmup_steps=200,
                         checkpoint_every=250, sample_every=1000),
)  # fmt: skip
UpsamplerTrainConfig.register_preset(
    "upsampler-tiny",
    UpsamplerTrainConfig(unet="upsampler-tiny", data="shapes", steps=12,
                         batch_size=8, warmup_steps=2, checkpoint_every=4, sample_every=6,
                         sample_images=4, sample_steps=4),
)  # fmt: skip
DecoderTrainConfig.register_preset(
    "celeba128",
    DecoderTrainConfig(unet="celeba-decoder", clip="runs/clip-celeba128/clip", data="celeba",
                       steps=20000, batch_size=32, warmup_steps=500, checkpoint_every=250,
                       augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
UpsamplerTrainConfig.register_preset(
    "celeba128",
    UpsamplerTrainConfig(unet="celeba-upsampler", data="celeba", steps=10000, batch_size=32,
                         checkpoint_every=250, augment=Augmentation(crop="random", rotation_degrees=5.0, noise_std=0.02)),
)  # fmt: skip
