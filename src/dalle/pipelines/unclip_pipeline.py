"""unCLIP (Ramesh et al. 2022), text in, CLIP embeddings out: the frozen CLIP and the diffusion
prior. (The decoder and upsampler that draw images from the embeddings join in part 2.)

On disk, a pipeline folder (:mod:`dalle.folders`) with the parts ``tokenizer`` (TextTokenizer),
``clip`` (CLIP) and ``prior`` (DiffusionPrior), and the prior's sampling defaults under
``"prior"`` in ``model_index.json``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dalle.diffusion import DDIMSampler, DDPMSampler, DPMSolverPP2MSampler, NoiseSchedule, sample
from dalle.folders import load_parts, read_pipeline, write_pipeline
from dalle.models.clip import CLIP
from dalle.models.prior import DiffusionPrior
from dalle.text.tokenizer import TextTokenizer

SamplerName = Literal["dpm++2m", "ddim", "ddpm"]


@dataclass(frozen=True)
class PriorSettings:
    sampler: SamplerName = "dpm++2m"
    steps: int = 20
    guidance: float = 1.0  # classifier-free guidance scale of the prior; 1 is off
    best_of: int = 2  # draw this many per caption, keep the one closest to the text embedding

    def __post_init__(self) -> None:
        if self.sampler not in ("dpm++2m", "ddim", "ddpm"):
            raise ValueError(f"unknown sampler {self.sampler!r} (dpm++2m, ddim or ddpm)")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps must be a whole number of at least 1, got {self.steps}")
        if not (np.isfinite(self.guidance) and self.guidance >= 0):
            raise ValueError(f"guidance must be a finite number of at least 0, got {self.guidance}")
        if not (isinstance(self.best_of, int) and self.best_of >= 1):
            raise ValueError(f"best_of must be a whole number of at least 1, got {self.best_of}")


def make_schedule(prior: DiffusionPrior) -> NoiseSchedule:
    c = prior.config
    if c.schedule == "cosine":
        return NoiseSchedule.cosine(c.num_timesteps)
    if c.schedule == "linear":
        return NoiseSchedule.linear(c.num_timesteps)
    raise ValueError(f"unknown noise schedule {c.schedule!r}")


def make_sampler(name: SamplerName, schedule: NoiseSchedule):
    """The prior's sampler of that name, for x0 predictions."""
    if name == "dpm++2m":
        return DPMSolverPP2MSampler(schedule, prediction="x0")
    if name == "ddim":
        return DDIMSampler(schedule, prediction="x0", eta=0.0)
    return DDPMSampler(schedule, prediction="x0")


class UnclipPipeline:
    def __init__(
        self,
        tokenizer: TextTokenizer,
        clip: CLIP,
        prior: DiffusionPrior | None = None,
        prior_defaults: PriorSettings = PriorSettings(),
    ) -> None:
        if (
            tokenizer.eot_id != clip.config.eot_id
            or tokenizer.vocab_size > clip.config.num_text_tokens
        ):
            raise ValueError("the tokenizer does not match the CLIP's text vocabulary")
        if prior is not None and (
            prior.config.embed_dim != clip.config.embed_dim
            or prior.config.text_dim != clip.config.text_dim
            or prior.config.text_seq_len != clip.config.text_seq_len
        ):
            raise ValueError(
                "the prior does not match the CLIP (embedding width, text width or text length)"
            )
        self.tokenizer, self.clip, self.prior = tokenizer, clip.eval(), prior
        self.prior_defaults = prior_defaults

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> UnclipPipeline:
        root, index = read_pipeline(name_or_dir, cls.__name__, ("tokenizer", "clip"))
        parts = load_parts(root, index, device)
        return cls(
            parts["tokenizer"], parts["clip"], parts.get("prior"),
            PriorSettings(**index.defaults.get("prior", {})),
        )  # fmt: skip

    def save_pretrained(
        self, directory: str | os.PathLike, dtype: torch.dtype | None = None
    ) -> Path:
        parts = {"tokenizer": self.tokenizer, "clip": self.clip}
        if self.prior is not None:
            parts["prior"] = self.prior
        tokenizers = {name: "tokenizer" for name in parts if name != "tokenizer"}
        defaults = {"prior": dataclasses.asdict(self.prior_defaults)}
        return write_pipeline(directory, type(self).__name__, parts, defaults, tokenizers, dtype)

    @property
    def device(self) -> torch.device:
        return self.clip.logit_scale.device

    # -- CLIP ---------------------------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer.encode(list(prompts), self.clip.config.text_seq_len).ids.to(
            self.device
        )

    @torch.no_grad()
    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, D) unit CLIP text embeddings."""
        return self.clip.encode_text(self.encode_prompts(prompts)).cpu()

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit CLIP image embeddings of (B, 3, H, W) images in [0, 1] (area-resampled to
        the CLIP's input size if they differ)."""
        size = self.clip.config.image_size
        images = images.to(self.device).float()
        if images.shape[-2:] != (size, size):
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="area")
        return self.clip.encode_image(images).cpu()

    # -- the prior ----------------------------------------------------------------------------
    def prior_settings(self, **given) -> PriorSettings:
        """The pipeline's prior defaults with the given (non-None) settings replacing them."""
        return dataclasses.replace(
            self.prior_defaults, **{k: v for k, v in given.items() if v is not None}
        )

    @torch.no_grad()
    def prior_embeddings(
        self,
        prompts: Sequence[str],
        seed: int = 0,
        settings: PriorSettings | None = None,
        first_index: int = 0,
    ) -> torch.Tensor:
        """(B, D) unit CLIP image embeddings the prior draws for the prompts. Each draw has its
        own generator, seeded from (seed, prompt index, draw) with prompts numbered from
        ``first_index``, so a prompt's embedding does not depend on the others; of ``best_of``
        draws the one with the largest dot product with the prompt's text embedding is kept
        (the paper's best of 2)."""
        if self.prior is None:
            raise ValueError("this pipeline has no prior: train one with `dalle train prior`")
        settings = settings or self.prior_defaults
        prior, k = self.prior, settings.best_of
        ids = self.encode_prompts(prompts)
        tokens, mask, text = self.clip.encode_text_tokens(ids)
        tokens, mask, text_rep = (x.repeat_interleave(k, dim=0) for x in (tokens, mask, text))
        generators = [
            torch.Generator().manual_seed(draw_seed(seed, first_index + i, j))
            for i in range(len(prompts)) for j in range(k)
        ]  # fmt: skip
        sampler = make_sampler(settings.sampler, make_schedule(prior))
        x = sampler.init_noise((len(generators), prior.config.embed_dim), generators)
        x = sample(
            self._model_fn(tokens, mask, text_rep, settings.guidance), sampler, x.to(self.device),
            settings.steps, generators,
        )  # fmt: skip
        draws = prior.unstandardise(x).view(len(prompts), k, -1)
        best = (draws * text[:, None]).sum(-1).argmax(1)  # (B,)
        return draws[torch.arange(len(prompts)), best].cpu()

    def _model_fn(self, tokens, mask, text, guidance: float):
        prior = self.prior

        def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if guidance == 1.0:
                return prior(x, t, tokens, text, mask)
            b = x.shape[0]
            keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)])
            out = prior(
                torch.cat([x, x]), torch.cat([t, t]), torch.cat([tokens, tokens]),
                torch.cat([text, text]), torch.cat([mask, mask]), keep.to(x.device),
            )  # fmt: skip
            cond, uncond = out.chunk(2)  # [conditional; unconditional] in one batch
            return uncond + guidance * (cond - uncond)

        return model_fn


def draw_seed(seed: int, prompt_index: int, draw: int) -> int:
    """The seed of one draw: a hash of (seed, prompt, draw), independent of batching."""
    return int(np.random.SeedSequence([seed, prompt_index, draw, 2]).generate_state(1)[0])
