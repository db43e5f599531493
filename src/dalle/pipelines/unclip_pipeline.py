"""unCLIP (Ramesh et al. 2022), text in, images out: the frozen CLIP, the diffusion prior (text
embedding -> CLIP image embedding), the diffusion decoder (image embedding and caption -> a
small image) and the diffusion upsampler (small image -> the output size).

On disk, a pipeline folder (:mod:`dalle.folders`) with the parts ``tokenizer`` (TextTokenizer),
``clip`` (CLIP), ``prior`` (DiffusionPrior), ``decoder`` and ``upsampler`` (UNet; the decoder reads
the tokenizer), and each stage's sampling defaults under ``"prior"``, ``"decoder"`` and
``"upsampler"`` in ``model_index.json``. A folder with only some stages serves what they can
(``dalle embed`` needs CLIP and prior; ``dalle generate`` all of them).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image

from dalle.config import replace_given
from dalle.diffusion import DDIMSampler, DDPMSampler, DPMSolverPP2MSampler, NoiseSchedule, sample
from dalle.diffusion.schedules import check_spacing
from dalle.folders import load_parts, read_pipeline, write_pipeline
from dalle.models.clip import CLIP
from dalle.models.prior import DiffusionPrior
from dalle.models.unet import UNet
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.sampling import guide
from dalle.pipelines.seeds import seed_of
from dalle.pipelines.text_to_image import images_by_prompt
from dalle.text.tokenizer import TextTokenizer
from dalle.utils.device import conv_memory_format, use_bf16
from dalle.utils.images import area_resize

SamplerName = Literal["dpm++2m", "ddim", "ddpm"]


# images drawn at once, the fastest measured (docs/benchmarks.md): 16 with bf16 autocast (Intel
# AMX: 8 to 32 within the machine's drift), 8 in fp32 (AMD Zen 3: 0.27 images/s against 0.24-0.25
# at 16 and 32, two rounds)
DEFAULT_BATCH_SIZE = {True: 16, False: 8}


def default_batch_size(bf16: bool) -> int:
    """Images drawn at once when the user does not say: by the dtype the pipeline samples in."""
    return DEFAULT_BATCH_SIZE[bool(bf16)]


SAMPLERS: tuple[str, ...] = get_args(SamplerName)


def _check_stage(sampler: str, steps: int, guidance: float, spacing: float = 1.0) -> float:
    """Raise a ValueError for a bad stage setting; the spacing as a float (1 from JSON -> 1.0)."""
    spacing = check_spacing(spacing)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (one of {', '.join(SAMPLERS)})")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be a whole number of at least 1, got {steps}")
    if not (np.isfinite(guidance) and guidance >= 0):
        raise ValueError(f"guidance must be a finite number of at least 0, got {guidance}")
    return spacing


def check_noise_interval(value, shown: str | None = None) -> tuple[float, float]:
    """``value`` (two numbers: a tuple, or a list read from JSON) as floats (low, high) with
    0 <= low <= high <= 1; else a ValueError saying so (``shown``: how to quote the value)."""
    try:
        interval = tuple(value)
    except TypeError:
        interval = ()
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in interval
    )
    if not (len(interval) == 2 and numbers and 0 <= interval[0] <= interval[1] <= 1):
        shown = repr(value) if shown is None else shown
        raise ValueError(f"must be two noise levels 0 <= low <= high <= 1, got {shown}")
    return float(interval[0]), float(interval[1])


@dataclass(frozen=True)
class PriorSettings:
    sampler: SamplerName = "dpm++2m"
    steps: int = 20
    guidance: float = 1.0  # classifier-free guidance scale of the prior; 1 is off
    best_of: int = 2  # draw this many per caption, keep the one closest to the text embedding
    spacing: float = 1.0  # 1: evenly spaced steps; below 1 packed at the noisy end

    def __post_init__(self) -> None:
        spacing = _check_stage(self.sampler, self.steps, self.guidance, self.spacing)
        object.__setattr__(self, "spacing", spacing)
        if not (isinstance(self.best_of, int) and self.best_of >= 1):
            raise ValueError(f"best_of must be a whole number of at least 1, got {self.best_of}")


@dataclass(frozen=True)
class DecoderSettings:
    sampler: SamplerName = "ddim"
    steps: int = 50
    guidance: float = 3.0  # classifier-free guidance (CLIP embedding and caption together)
    # the caption's own scale: uncond + g (clip - uncond) + caption_guidance (clip and caption -
    # clip), a third prediction a step; None: the caption's scale is ``guidance`` (one pair)
    caption_guidance: float | None = None
    # guide only the steps whose noise level t / (T - 1) lies in [low, high] (1: pure noise);
    # the others run the conditional prediction alone: one prediction instead of two (three
    # with caption guidance) (Kynkaanniemi et al. 2024). Text to image only: edits guide every step
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    spacing: float = 1.0  # 1: evenly spaced steps; below 1 packed at the noisy end

    def __post_init__(self) -> None:
        spacing = _check_stage(self.sampler, self.steps, self.guidance, self.spacing)
        object.__setattr__(self, "spacing", spacing)
        if self.caption_guidance is not None:
            _check_stage(self.sampler, self.steps, self.caption_guidance)
        try:
            interval = check_noise_interval(
                self.guidance_interval
            )  # a JSON list from model_index.json
        except ValueError as e:
            raise ValueError(f"guidance_interval {e}") from None
        object.__setattr__(self, "guidance_interval", interval)


@dataclass(frozen=True)
class UpsamplerSettings:
    sampler: SamplerName = "ddim"
    steps: int = 15
    spacing: float = 1.0  # 1: evenly spaced steps; below 1 packed at the noisy end

    def __post_init__(self) -> None:
        spacing = _check_stage(self.sampler, self.steps, 1.0, self.spacing)
        object.__setattr__(self, "spacing", spacing)


def make_schedule(model: DiffusionPrior | UNet) -> NoiseSchedule:
    """The training noise schedule a diffusion model's config names."""
    c = model.config
    if c.schedule == "cosine":
        return NoiseSchedule.cosine(c.num_timesteps)
    return NoiseSchedule.linear(c.num_timesteps)  # the configs allow only SCHEDULES


def make_sampler(
    name: SamplerName, schedule: NoiseSchedule, prediction: str = "x0", clip_x0: float | None = None
):
    """The sampler of that name (DDIM deterministic) for a model predicting ``prediction``;
    ``clip_x0`` clips its x0 estimates to [-clip_x0, clip_x0] (images: 1)."""
    kwargs = {"prediction": prediction, "clip_x0": clip_x0}
    if name == "dpm++2m":
        return DPMSolverPP2MSampler(schedule, **kwargs)
    if name == "ddim":
        return DDIMSampler(schedule, eta=0.0, **kwargs)
    return DDPMSampler(schedule, **kwargs)


def caption_ids(
    tokenizer: TextTokenizer, captions: Sequence[str], text_seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids of the captions and (B, T) bool of the positions to read (up to the
    end-of-text): what the decoder's text encoder takes."""
    encoded = tokenizer.encode(list(captions), text_seq_len)
    return encoded.ids, ~encoded.pad_mask


def check_steps(stage: str, steps: int, num_timesteps: int, which: str = "") -> None:
    """A ValueError unless ``steps`` sampling steps fit the ``num_timesteps`` the ``stage``'s
    model was trained with (``which``: "default " for a pipeline's recorded defaults)."""
    if steps > num_timesteps:
        raise ValueError(
            f"the {stage}'s {which}steps ({steps}) exceed the {num_timesteps} timesteps it was "
            f"trained with: at most {num_timesteps}"
        )


class UnclipPipeline:
    def __init__(
        self,
        tokenizer: TextTokenizer,
        clip: CLIP,
        prior: DiffusionPrior | None = None,
        prior_defaults: PriorSettings = PriorSettings(),
        decoder: UNet | None = None,
        upsampler: UNet | None = None,
        decoder_defaults: DecoderSettings = DecoderSettings(),
        upsampler_defaults: UpsamplerSettings = UpsamplerSettings(),
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
        if decoder is not None:
            d = decoder.config
            if d.embed_dim != clip.config.embed_dim:
                raise ValueError(
                    f"the decoder reads {d.embed_dim}-wide CLIP embeddings; the CLIP's are "
                    f"{clip.config.embed_dim}-wide"
                )
            if d.has_text and tokenizer.vocab_size > d.num_text_tokens:
                raise ValueError("the tokenizer does not match the decoder's text vocabulary")
        if upsampler is not None:
            u = upsampler.config
            if not u.low_res_channels:
                raise ValueError("the upsampler part is not an upsampler (no low-resolution input)")
            if decoder is not None and u.low_res_size != decoder.config.image_size:
                raise ValueError(
                    f"the upsampler enlarges {u.low_res_size} x {u.low_res_size} images; the "
                    f"decoder draws {decoder.config.image_size} x {decoder.config.image_size}"
                )
        for stage, model, settings in (
            ("prior", prior, prior_defaults), ("decoder", decoder, decoder_defaults),
            ("upsampler", upsampler, upsampler_defaults),
        ):  # fmt: skip
            if model is not None:
                check_steps(stage, settings.steps, model.config.num_timesteps, "default ")
        self.tokenizer, self.clip, self.prior = tokenizer, clip.eval(), prior
        self.decoder = None if decoder is None else decoder.eval()
        self.upsampler = None if upsampler is None else upsampler.eval()
        self.prior_defaults = prior_defaults
        self.decoder_defaults, self.upsampler_defaults = decoder_defaults, upsampler_defaults

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> UnclipPipeline:
        root, index = read_pipeline(name_or_dir, cls.__name__, ("tokenizer", "clip"))
        parts = load_parts(root, index, device)
        d = index.defaults
        return cls(
            parts["tokenizer"], parts["clip"], parts.get("prior"),
            PriorSettings(**d.get("prior", {})), parts.get("decoder"), parts.get("upsampler"),
            DecoderSettings(**d.get("decoder", {})), UpsamplerSettings(**d.get("upsampler", {})),
        )  # fmt: skip

    def save_pretrained(
        self, directory: str | os.PathLike, dtype: torch.dtype | None = None
    ) -> Path:
        parts = {"tokenizer": self.tokenizer, "clip": self.clip}
        defaults: dict[str, dict] = {}
        for name, model, settings in (
            ("prior", self.prior, self.prior_defaults),
            ("decoder", self.decoder, self.decoder_defaults),
            ("upsampler", self.upsampler, self.upsampler_defaults),
        ):
            if model is not None:
                parts[name] = model
            defaults[name] = dataclasses.asdict(settings)
        readers = ("clip", "prior", "decoder")  # the parts that read captions
        tokenizers = {name: "tokenizer" for name in parts if name in readers}
        return write_pipeline(directory, type(self).__name__, parts, defaults, tokenizers, dtype)

    @property
    def device(self) -> torch.device:
        return self.clip.logit_scale.device

    # -- CLIP ---------------------------------------------------------------------------------
    @property
    def text_seq_len(self) -> int:
        """Caption tokens CLIP and the prior read (``<eot>`` included)."""
        return self.clip.config.text_seq_len

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer.encode(list(prompts), self.text_seq_len).ids.to(self.device)

    @torch.no_grad()
    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, D) unit CLIP text embeddings."""
        return self.clip.encode_text(self.encode_prompts(prompts)).cpu()

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit CLIP image embeddings of (B, 3, H, W) images in [0, 1] (area-resampled to
        the CLIP's input size if they differ)."""
        images = area_resize(images.to(self.device).float(), self.clip.config.image_size)
        return self.clip.encode_image(images).cpu()

    # -- the prior ----------------------------------------------------------------------------
    def prior_settings(self, **given) -> PriorSettings:
        """The pipeline's prior defaults with the given (non-None) settings replacing them."""
        return replace_given(self.prior_defaults, given)

    def decoder_settings(self, **given) -> DecoderSettings:
        return replace_given(self.decoder_defaults, given)

    def upsampler_settings(self, **given) -> UpsamplerSettings:
        return replace_given(self.upsampler_defaults, given)

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
        keys = [(seed, first_index + i) for i in range(len(prompts))]
        return self._prior_draws(prompts, keys, settings or self.prior_defaults)

    def _prior_draws(
        self, prompts: Sequence[str], keys: Sequence[tuple[int, ...]], settings: PriorSettings
    ) -> torch.Tensor:
        """The prior's embeddings, draw k of row i seeded by ``seed_of(*keys[i], k, 2)``, in fp32
        (whatever the batch, the same embedding)."""
        if self.prior is None:
            raise ValueError("this pipeline has no prior: train one with `dalle train prior`")
        prior, k = self.prior, settings.best_of
        ids = self.encode_prompts(prompts)
        tokens, mask, text = self.clip.encode_text_tokens(ids)
        tokens, mask, text_rep = (x.repeat_interleave(k, dim=0) for x in (tokens, mask, text))
        generators = [
            torch.Generator().manual_seed(seed_of(*key, j, 2)) for key in keys for j in range(k)
        ]  # fmt: skip
        sampler = make_sampler(settings.sampler, make_schedule(prior))
        x = sampler.init_noise((len(generators), prior.config.embed_dim), generators)
        model_fn = guided_prior(prior, tokens, mask, text_rep, settings.guidance)
        x = sample(model_fn, sampler, x.to(self.device), settings.steps, generators,
                       spacing=settings.spacing)  # fmt: skip
        draws = prior.unstandardise(x).view(len(prompts), k, -1)
        best = (draws * text[:, None]).sum(-1).argmax(1)  # (B,)
        return draws[torch.arange(len(prompts)), best].cpu()

    # -- the decoder and the upsampler --------------------------------------------------------
    @torch.no_grad()
    def decode(
        self,
        embeddings: torch.Tensor,
        prompts: Sequence[str],
        seeds: Sequence[int],
        settings: DecoderSettings | None = None,
        bf16: bool = False,
        on_step: Callable[[int, torch.Tensor], None] | None = None,
        read_clip: bool = True,
        read_caption: bool = True,
    ) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] the decoder draws for (B, D) CLIP image embeddings and
        their captions; row i's noise is drawn from its own generator seeded ``seeds[i]``.
        ``on_step(i, x0)``: each step's estimate of the images (in [-1, 1]). ``read_clip`` /
        ``read_caption`` False: the decoder reads the null embedding / caption instead (what it
        draws from the other alone; ``guided_decoder``)."""
        if self.decoder is None:
            raise ValueError("this pipeline has no decoder: train one with `dalle train decoder`")
        settings = settings or self.decoder_defaults
        decoder, c = self.decoder, self.decoder.config
        embeddings = embeddings.to(self.device).float()
        ids, mask = (
            x.to(self.device) for x in caption_ids(self.tokenizer, prompts, c.text_seq_len)
        )
        model_fn = sampling_fn(
            decoder,
            guided_decoder(
                decoder,
                embeddings,
                ids,
                mask,
                settings.guidance,
                read_caption=read_caption,
                caption_guidance=settings.caption_guidance,
                read_clip=read_clip,
                interval=settings.guidance_interval,
            ),
            bf16,  # fmt: skip
        )
        return draw_unet(decoder, model_fn, settings, seeds, on_step)

    @torch.no_grad()
    def upsample(
        self,
        images: torch.Tensor,
        seeds: Sequence[int],
        settings: UpsamplerSettings | None = None,
        bf16: bool = False,
        on_step: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] at the upsampler's size, from (B, 3, s, s) ones.
        ``on_step(i, x0)``: each step's estimate of the images (in [-1, 1], size S)."""
        if self.upsampler is None:
            raise ValueError(
                "this pipeline has no upsampler: train one with `dalle train upsampler`"
            )
        return upsample_images(self.upsampler, images, seeds, settings or self.upsampler_defaults,
                               bf16, on_step)  # fmt: skip

    # -- text to images -----------------------------------------------------------------------
    @torch.no_grad()
    def draw_pixels(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        prior: PriorSettings | None = None,
        decoder: DecoderSettings | None = None,
        upsampler: UpsamplerSettings | None = None,
        bf16: bool | None = None,
        on_step: Callable[[int, torch.Tensor], None] | None = None,
        on_upsampler_step: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """(B, 3, S, S) pixels in [0, 1], one image per (prompt, seed) pair, all drawn at once:
        prior -> decoder -> upsampler (when the pipeline has one), each stage's noise seeded
        from the image's seed. ``on_step(i, x0)``: the decoder's estimate at each of its steps
        (previews, in [-1, 1] at the decoder's size); ``on_upsampler_step(i, x0)`` the same for
        the upsampler's steps, at its size."""
        if self.prior is None or self.decoder is None:
            missing = "prior" if self.prior is None else "decoder"
            raise ValueError(f"this pipeline has no {missing}: it cannot draw images from text")
        bf16 = use_bf16(bf16, self.device)
        # the prior always in fp32: it is small, and its bf16 rounding depended on the batch (an
        # image of three drawn together came out up to 72 levels from the same image alone)
        embeds = self._prior_draws(prompts, [(s, 1) for s in seeds], prior or self.prior_defaults)
        images = self.decode(embeds, prompts, [seed_of(s, 2) for s in seeds],
                             decoder or self.decoder_defaults, bf16, on_step)  # fmt: skip
        if self.upsampler is not None:
            images = self.upsample(images, [seed_of(s, 3) for s in seeds],
                                   upsampler or self.upsampler_defaults, bf16,
                                   on_upsampler_step)  # fmt: skip
        return images

    def __call__(
        self,
        prompts: str | Sequence[str],
        num_images_per_prompt: int = 1,
        seed: int = 0,
        candidates: int | None = None,
        batch_size: int | None = None,
        bf16: bool | None = None,
        **settings,
    ) -> list[Image.Image]:
        """Images for each prompt, prompt by prompt (see :meth:`iter_images`). ``settings``:
        ``prior``, ``decoder``, ``upsampler`` (settings objects; None: the defaults)."""
        found = self.iter_images(
            prompts, num_images_per_prompt, seed, candidates=candidates, batch_size=batch_size,
            bf16=bf16, **settings,
        )  # fmt: skip
        return [image for _, images in found for image in images]

    def iter_images(
        self,
        prompts: str | Sequence[str],
        num_images_per_prompt: int = 1,
        seed: int = 0,
        prior: PriorSettings | None = None,
        decoder: DecoderSettings | None = None,
        upsampler: UpsamplerSettings | None = None,
        candidates: int | None = None,
        batch_size: int | None = None,
        bf16: bool | None = None,
        on_image: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, list[Image.Image]]]:
        """``(prompt index, its images)`` for each prompt in order, each as soon as it is final:
        prior -> decoder -> upsampler (when the pipeline has one).

        Image ``j`` of prompt ``i`` draws every stage's noise from seeds derived from
        ``image_seed(seed, i, j)``, so it is the same whatever ``batch_size`` is (default
        :func:`default_batch_size`: 16 in bf16, 8 in fp32). With ``candidates`` M >
        ``num_images_per_prompt``, M are drawn and the CLIP keeps the best, best first
        (``info``: ``clip_score``, ``candidate``).
        ``bf16`` None: bf16 autocast where the machine has bf16 matrix units."""
        if self.prior is None or self.decoder is None:
            missing = "prior" if self.prior is None else "decoder"
            raise ValueError(f"this pipeline has no {missing}: it cannot draw images from text")
        bf16 = use_bf16(bf16, self.device)

        def draw_batch(texts: list[str], seeds: list[int]) -> torch.Tensor:
            return self.draw_pixels(texts, seeds, prior, decoder, upsampler, bf16)

        batch_size = default_batch_size(bf16) if batch_size is None else batch_size
        return images_by_prompt(
            prompts, num_images_per_prompt, seed, draw_batch, batch_size, candidates,
            ClipRanker(self.clip, self.tokenizer), on_image,
        )  # fmt: skip


@torch.no_grad()
def upsample_images(
    upsampler: UNet,
    images: torch.Tensor,
    seeds: Sequence[int],
    settings: UpsamplerSettings,
    bf16: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """(B, 3, S, S) images in [0, 1] an upsampler draws from (B, 3, s, s) ones in [0, 1]
    (``on_step`` as in :func:`draw_unet`)."""
    low_res = images.to(next(upsampler.parameters()).device).float() * 2 - 1
    model_fn = sampling_fn(upsampler, lambda x, t: upsampler(x, t, low_res=low_res), bf16)
    return draw_unet(upsampler, model_fn, settings, seeds, on_step)


def draw_unet(unet: UNet, model_fn, settings, seeds: Sequence[int], on_step=None) -> torch.Tensor:
    """Images in [0, 1] sampled with a U-Net's ``model_fn``, row i's noise seeded ``seeds[i]``
    (``on_step`` as in :func:`dalle.diffusion.sample`)."""
    c = unet.config
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    sampler = make_sampler(settings.sampler, make_schedule(unet), c.prediction, clip_x0=1.0)
    x = sampler.init_noise((len(seeds), c.out_channels, c.image_size, c.image_size), generators)
    device = next(unet.parameters()).device
    x = sample(model_fn, sampler, x.to(device), settings.steps, generators, on_step,
               settings.spacing)  # fmt: skip
    return ((x.float().clamp(-1, 1) + 1) / 2).cpu()


def sampling_fn(unet: UNet, model_fn, bf16: bool):
    """``model_fn`` (a prediction of ``unet``) as it samples fastest: under bf16 autocast if
    asked, its output back in float32, with ``unet``'s convolution weights in the memory format
    :func:`~dalle.utils.device.conv_memory_format` gives for that dtype on its device (converted
    in place when they are not, so a later call in the same dtype finds them so; the values do
    not change). A model in training mode keeps its layout (its optimizer holds its tensors)."""
    layout = conv_memory_format(next(unet.parameters()).device, bf16)
    weights = [p for p in unet.parameters() if p.dim() == 4]
    if not unet.training and not all(w.is_contiguous(memory_format=layout) for w in weights):
        # normal tensors even when called under inference mode, so the model can still train
        with torch.inference_mode(False), torch.no_grad():
            unet.to(memory_format=layout)
    if not bf16:
        return model_fn

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, torch.bfloat16):
            return model_fn(x, t).float()

    return run


def guided_decoder(
    decoder: UNet, embeddings, ids, mask, guidance: float, read_caption: bool = True,
    known: torch.Tensor | None = None, draw: torch.Tensor | None = None,
    caption_guidance: float | None = None, read_clip: bool = True,
    interval: tuple[float, float] = (0.0, 1.0),
):  # fmt: skip
    """The decoder's prediction, guided: uncond + g (cond - uncond), the unconditional half
    with the learned null CLIP embedding and null caption, both halves in one batch. With
    ``read_caption`` False the conditional half has the null caption too (drawing from the CLIP
    embedding alone, as variations do); with ``read_clip`` False it has the learned null CLIP
    embedding (drawing from the caption alone: a diagnostic of what the caption carries). An
    inpainting decoder reads ``known`` and ``draw`` (see
    ``UNet.forward``) in both halves. ``caption_guidance`` g_c (with the caption read): a third
    prediction from the CLIP embedding alone, and uncond + g (clip - uncond) + g_c (cond - clip),
    which is the pair's formula when g_c = g. Steps whose noise level t / (T - 1) lies outside
    ``interval`` run the conditional prediction alone (unguided, one prediction); each call's
    rows share one timestep, as in :func:`dalle.diffusion.sample`."""
    if not read_caption or not read_clip or caption_guidance == guidance:
        caption_guidance = None
    everywhere = tuple(interval) == (0.0, 1.0)
    last_t = 1 if everywhere else max(decoder.config.num_timesteps - 1, 1)

    def guided_at(t: torch.Tensor) -> bool:
        return everywhere or interval[0] <= int(t[0]) / last_t <= interval[1]

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        on = torch.ones(b, dtype=torch.bool, device=x.device)
        text_on = on if read_caption else ~on
        clip_on = on if read_clip else ~on
        given = {} if known is None else {"known": known, "draw": draw}
        if (guidance == 1.0 and caption_guidance is None) or not guided_at(t):
            return decoder(x, t, embeddings, ids, mask, keep_clip=clip_on, keep_text=text_on,
                           **given)  # fmt: skip
        if caption_guidance is not None:  # cond, CLIP alone, uncond in one batch
            keep, keep_text = torch.cat([on, on, ~on]), torch.cat([on, ~on, ~on])
            given = {k: torch.cat([v, v, v]) for k, v in given.items()}
            out = decoder(
                torch.cat([x, x, x]), torch.cat([t, t, t]), embeddings.repeat(3, 1),
                ids.repeat(3, 1), mask.repeat(3, 1), keep_clip=keep, keep_text=keep_text,
                **given,
            )  # fmt: skip
            cond, clip, uncond = out.float().chunk(3)
            return uncond + guidance * (clip - uncond) + caption_guidance * (cond - clip)
        keep, keep_text = torch.cat([clip_on, ~on]), torch.cat([text_on, ~on])
        given = {k: torch.cat([v, v]) for k, v in given.items()}
        out = decoder(
            torch.cat([x, x]), torch.cat([t, t]), torch.cat([embeddings, embeddings]),
            torch.cat([ids, ids]), torch.cat([mask, mask]), keep_clip=keep, keep_text=keep_text,
            **given,
        )  # fmt: skip
        return guide(out.float(), guidance)

    return model_fn


def guided_prior(prior: DiffusionPrior, tokens, mask, text, guidance: float):
    """The prior's prediction, guided: uncond + g (cond - uncond), the unconditional half with
    the caption dropped (the prior's learned null), both halves in one batch."""

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance == 1.0:
            return prior(x, t, tokens, text, mask)
        b = x.shape[0]
        keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)])
        out = prior(
            torch.cat([x, x]), torch.cat([t, t]), torch.cat([tokens, tokens]),
            torch.cat([text, text]), torch.cat([mask, mask]), keep.to(x.device),
        )  # fmt: skip
        return guide(out, guidance)  # [conditional; unconditional]

    return model_fn
