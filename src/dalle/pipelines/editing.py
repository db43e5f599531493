"""Editing images (Ramesh et al. 2022, section 3): variations, interpolations, text diffs, and
inpainting with either pipeline.

unCLIP encodes an image to a bipartite latent (z_i, x_T): z_i its CLIP image embedding, x_T the
decoder's noise found by DDIM inversion of the image (at the decoder's size) with the decoder
conditioned on z_i and no caption. Decoding (z, x_T) with DDIM gives the image back at eta = 0
and variations of it at eta > 0; z may be moved first (towards another image's embedding, or
along a text diff). The decoder draws at its own size (32 x 32 for the shapes world); the
upsampler then draws the output size from it with fresh noise (its seed derived from the
image's), so a variation's fine detail at 64 x 64 is the upsampler's.

Inpainting keeps every pixel outside the mask exactly and repaints the inside to fit a prompt
that describes the whole image:
- unCLIP, by resampling (RePaint, Lugmayr et al. 2022): at each step of the decoder's (and then
  the upsampler's) sampler the unmasked region is replaced by the source noised to that step,
  and each step is redone ``resample`` times (noised back and denoised again) so that the
  inside comes to agree with the outside;
- DALL·E, by keeping the image tokens of cells the mask does not touch and sampling the others
  in raster order: a sampled token sees the kept tokens above it and to its left, not those
  below or to its right (the transformer reads one way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dalle.config import replace_given
from dalle.diffusion import DDIMInverter, DDIMSampler, sample
from dalle.diffusion.predictions import noisy_from
from dalle.pipelines.clip_ranker import best_scored
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.pipelines.seeds import image_seed, seed_of
from dalle.pipelines.unclip_pipeline import (
    DecoderSettings,
    UnclipPipeline,
    UpsamplerSettings,
    caption_ids,
    draw_unet,
    guided_decoder,
    make_schedule,
    sampling_fn,
)
from dalle.utils.images import area_resize, pil_to_tensor, to_pil


@dataclass(frozen=True)
class EditSettings:
    # DDIM steps of the inversion and of the decoding (100 brought 64 validation scenes back at
    # 35.9 dB against 30.3 at 50, 59 of them read right against 57, for 1.7x the time:
    # docs/editing.md; not yet measured on the edits themselves)
    steps: int = 50
    eta: float = 0.0  # DDIM stochasticity of the decoding: 0 gives the inverted image back
    guidance: float = 1.0  # decoder guidance (on the CLIP embedding) in inversion and decoding
    # fixed-point refinements of each inversion step (DDIMInverter.invert): with 1, 50 steps gave
    # back 30 of 32 validation scenes as their captions (PSNR 28 dB at 32 x 32) against 22 of 32
    # (23 dB) without, for 1.5x the model calls of inversion and decoding together
    refine: int = 1
    # eta applies from this fraction of the schedule down; above it the decoding follows the
    # inverted x_T deterministically, so the source's layout (decided in the noisiest part of the
    # schedule: benchmarks/decoder_noise_levels.py) is kept and the rest varies. 1: every step
    eta_from: float = 1.0
    # decoder guidance in the steps drawn afresh, those eta applies to (below eta_from; None:
    # ``guidance``); the inversion and the steps above follow ``guidance``, so the layout holds
    fresh_guidance: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps must be a whole number of at least 1, got {self.steps}")
        if not (isinstance(self.refine, int) and self.refine >= 0):
            raise ValueError(f"refine must be a whole number of at least 0, got {self.refine}")
        if not (math.isfinite(self.eta) and 0 <= self.eta <= 1):
            raise ValueError(f"eta must be a number in [0, 1], got {self.eta}")
        if not (math.isfinite(self.eta_from) and 0 <= self.eta_from <= 1):
            raise ValueError(f"eta_from must be a number in [0, 1], got {self.eta_from}")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise ValueError(f"guidance must be a finite number of at least 0, got {self.guidance}")
        fresh = self.fresh_guidance
        if fresh is not None and not (math.isfinite(fresh) and fresh >= 0):
            raise ValueError(f"fresh_guidance must be a finite number of at least 0, got {fresh}")


VARIATION_ETA = 1.0  # variations' DDIM eta by default (dalle vary, dalle eval editing)
# ... applied from this fraction of the schedule down (EditSettings.eta_from): 0.7 kept the
# caption in 81 % of the validation variations against 23 % at 1 (docs/editing.md)
VARIATION_ETA_FROM = 0.7
# ... with the decoder guided this much in those steps (EditSettings.fresh_guidance): 3 kept the
# caption in 82.8 % of 128 validation variations against 78.1 % unguided (docs/editing.md)
VARIATION_FRESH_GUIDANCE = 3.0
# ... and drawn this many times over, CLIP keeping those closest to the source (variations'
# ``candidates``): of 64 validation variations 4 kept the caption in 93.8 %, 3 in 92.2 %, 2 in
# 87.5 %, 1 (no reranking) in 79.7 % (docs/editing.md)
VARIATION_CANDIDATES_PER_IMAGE = 4
# text diffs: the decoder reads the --from caption while inverting and the --to one while
# decoding (docs/editing.md)
TEXT_DIFF_CAPTIONS = True

Progress = Callable[[], None] | None  # called after each model step of an edit


def edit_steps(settings: EditSettings, decodings: int = 1) -> int:
    """How many times an edit calls ``on_step``: one inversion, then ``decodings`` decodings
    (variations: one per input image), ``settings.steps`` each."""
    return settings.steps * (1 + decodings)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between (..., D) vectors along their last dimension: t = 0 gives
    ``a``, t = 1 ``b``; the norm moves linearly between theirs (unit vectors stay unit)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    if bool((na < 1e-12).any() or (nb < 1e-12).any()):
        raise ValueError("slerp between a zero vector and another has no direction")
    ua, ub = a64 / na, b64 / nb
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
    if bool((cos < -1 + 1e-9).any()):
        raise ValueError("slerp between opposite vectors has no single path")
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    near = so.abs() < 1e-6  # parallel: fall back to the linear path
    wa = torch.where(near, 1 - t, torch.sin((1 - t) * omega) / torch.where(near, 1, so))
    wb = torch.where(near, t, torch.sin(t * omega) / torch.where(near, 1, so))
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True)
    return (direction * ((1 - t) * na + t * nb)).to(a.dtype)


def read_mask(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool, True where to repaint, by the OpenAI Images API's convention: in an image
    with an alpha channel, the fully transparent pixels; in one without, the white ones. The
    mask must be the image's size (W, H) and mark some, but not all, of it."""
    if mask.size != size:
        raise ValueError(
            f"the mask is {mask.size[0]} x {mask.size[1]}, the image {size[0]} x {size[1]}: "
            "they must match"
        )
    bands = mask.getbands()
    if "A" in bands:
        region = np.asarray(mask.getchannel("A")) == 0
    else:
        region = np.asarray(mask.convert("L")) == 255
    if not region.any():
        raise ValueError(
            "the mask marks nothing to repaint (transparent pixels in an RGBA mask, white ones "
            "in a mask without alpha)"
        )
    if region.all():
        raise ValueError("the mask covers the whole image: there is nothing to keep")
    return torch.from_numpy(region.copy())


# -- unCLIP: the bipartite latent ---------------------------------------------------------------
def _decoder_size(pipe: UnclipPipeline, images: torch.Tensor) -> torch.Tensor:
    return area_resize(images.float(), pipe.decoder.config.image_size) * 2 - 1  # type: ignore[union-attr]


def _decoder_fn(pipe: UnclipPipeline, z: torch.Tensor, guidance: float, bf16: bool, captions=None,
                known=None, draw=None):  # fmt: skip
    """The decoder's (guided) prediction for CLIP embeddings ``z`` and, if given, captions (else
    its null caption: drawing from the embedding alone); an inpainting decoder's known image and
    where it draws (``UNet.forward``)."""
    decoder = pipe.decoder
    texts = [""] * len(z) if captions is None else list(captions)
    ids, mask = caption_ids(pipe.tokenizer, texts, decoder.config.text_seq_len)  # type: ignore[union-attr]
    model_fn = guided_decoder(
        decoder, z.to(pipe.device).float(), ids.to(pipe.device), mask.to(pipe.device), guidance,
        read_caption=captions is not None, known=known, draw=draw,
    )  # fmt: skip
    return sampling_fn(decoder, model_fn, bf16)


@torch.no_grad()
def invert(
    pipe: UnclipPipeline, images: torch.Tensor, z: torch.Tensor, settings: EditSettings,
    bf16: bool = False, captions: Sequence[str] | None = None, on_step: Progress = None,
) -> torch.Tensor:  # fmt: skip
    """x_T (B, 3, S, S): DDIM inversion of (B, 3, H, W) images in [0, 1], resampled to the
    decoder's size S, by the decoder conditioned on their CLIP embeddings ``z`` (B, D) and, if
    given, their captions (else the null caption), each step refined ``settings.refine`` times
    (:meth:`DDIMInverter.invert`); ``on_step()`` after each step."""
    _need_decoder(pipe)
    decoder = pipe.decoder
    inverter = DDIMInverter(make_schedule(decoder), prediction=decoder.config.prediction)  # type: ignore[union-attr]
    model_fn = _decoder_fn(pipe, z, settings.guidance, bf16, captions)
    x0 = _decoder_size(pipe, images).to(pipe.device)
    done = None if on_step is None else (lambda _i: on_step())
    return inverter.invert(model_fn, x0, settings.steps, settings.refine, done)


@torch.no_grad()
def decode_latent(
    pipe: UnclipPipeline, z: torch.Tensor, x_t: torch.Tensor, seeds: Sequence[int],
    settings: EditSettings, bf16: bool = False, captions: Sequence[str] | None = None,
    on_step: Progress = None,
) -> torch.Tensor:  # fmt: skip
    """(B, 3, S, S) images in [0, 1] at the decoder's size: DDIM (``settings.eta``, from
    ``settings.eta_from`` of the schedule down, the decoder guided by ``settings.fresh_guidance``
    there) from x_T conditioned on ``z`` and, if given,
    ``captions`` (else the null caption); row i's noise (eta > 0) seeded ``seeds[i]``;
    ``on_step()`` after each step."""
    _need_decoder(pipe)
    decoder = pipe.decoder
    schedule = make_schedule(decoder)
    below = None if settings.eta_from >= 1 else math.ceil(settings.eta_from * schedule.num_steps)
    sampler = DDIMSampler(schedule, decoder.config.prediction, settings.eta,  # type: ignore[union-attr]
                          clip_x0=1.0, eta_below=below)  # fmt: skip
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    model_fn = _decoder_fn(pipe, z, settings.guidance, bf16, captions)
    fresh = settings.fresh_guidance
    if fresh is not None and fresh != settings.guidance and settings.eta > 0:
        kept, drawn = model_fn, _decoder_fn(pipe, z, fresh, bf16, captions)

        def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            # the steps eta applies to (every step when eta_from is 1)
            return (drawn if below is None or int(t[0]) < below else kept)(x, t)

    done = None if on_step is None else (lambda _i, _x0: on_step())
    x = sample(model_fn, sampler, x_t.to(pipe.device).float(), settings.steps, generators, done)
    return ((x.float().clamp(-1, 1) + 1) / 2).cpu()


def finish(pipe: UnclipPipeline, small: torch.Tensor, seeds: Sequence[int], bf16: bool):
    """The decoder's images at the output size (the upsampler, if the pipeline has one)."""
    if pipe.upsampler is None:
        return small
    return pipe.upsample(small, [seed_of(s, 3) for s in seeds], None, bf16)


def _need_decoder(pipe: UnclipPipeline) -> None:
    if pipe.decoder is None:
        raise ValueError("this pipeline has no decoder: editing needs one (`dalle train decoder`)")


def check_square(image: Image.Image, name: str) -> None:
    """A ValueError naming ``name`` if ``image`` is not square (the edits' one size rule)."""
    if image.size[0] != image.size[1]:
        raise ValueError(
            f"{name} is {image.size[0]} x {image.size[1]}: editing needs square images (crop it "
            "to a square first; square images of any size are resized)"
        )


def as_tensor(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """PIL images as (B, 3, size, size) in [0, 1] (resized if they are square of another size;
    a ValueError if one is not square: stretching it would change the shapes it shows, and
    cropping would drop part of it; the OpenAI Images API also asks for square images)."""
    out = []
    for i, image in enumerate(images):
        check_square(image, f"image {i}")
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BICUBIC)
        out.append(pil_to_tensor(image))
    return torch.stack(out)


def output_size(pipe: UnclipPipeline) -> int:
    return (pipe.upsampler or pipe.decoder).config.image_size  # type: ignore[union-attr]


# -- the edits ----------------------------------------------------------------------------------
def variations(
    pipe: UnclipPipeline,
    images: Sequence[Image.Image],
    num_images: int = 4,
    seed: int = 0,
    settings: EditSettings | None = None,
    bf16: bool = False,
    on_step: Progress = None,
    candidates: int | None = None,
) -> list[list[Image.Image]]:
    """``num_images`` variations of each image (section 3.1): its (z_i, x_T), decoded with DDIM
    at ``settings.eta`` (> 0 for variety; 0 gives the image back; None:
    :func:`variation_settings`), variation j of input k
    seeded by ``image_seed(seed, k, j)``. ``candidates`` M (None: ``num_images`` x
    ``VARIATION_CANDIDATES_PER_IMAGE``) are drawn per input (seeds ``j < M``) and, when M >
    ``num_images``, the ``num_images`` whose CLIP image embeddings lie closest to the input's are
    kept, closest first (``info``: ``clip_score``, the cosine to the input's embedding, and
    ``candidate`` j); M = ``num_images`` keeps them all, in order. ``on_step()`` after each
    model step: the inversion's ``settings.steps``, then as many per input (:func:`edit_steps`)."""
    settings = variation_settings() if settings is None else settings
    draw = variation_candidates(num_images, candidates)
    if num_images < 1:
        raise ValueError("num_images must be at least 1")
    if draw < num_images:
        raise ValueError(f"candidates ({draw}) must be at least num_images ({num_images})")
    pixels = as_tensor(images, output_size(pipe))
    z = pipe.image_embeddings(pixels)
    x_t = invert(pipe, pixels, z, settings, bf16, on_step=on_step)
    out = []
    for k in range(len(images)):
        seeds = [image_seed(seed, k, j) for j in range(draw)]
        zk, xk = z[k : k + 1].expand(draw, -1), x_t[k : k + 1].expand(draw, -1, -1, -1)
        small = decode_latent(pipe, zk, xk, seeds, settings, bf16, on_step=on_step)
        drawn = finish(pipe, small, seeds, bf16)
        if draw == num_images:
            out.append(to_pil(drawn))
        else:
            out.append(best_scored(drawn, pipe.image_embeddings(drawn) @ z[k], num_images))
    return out


def variation_settings(
    steps: int | None = None, fresh_guidance: float | None = None
) -> EditSettings:
    """The variations' default settings (eta ``VARIATION_ETA`` from ``VARIATION_ETA_FROM`` of the
    schedule down, guided by ``VARIATION_FRESH_GUIDANCE`` there), with ``steps`` and
    ``fresh_guidance`` replacing theirs when given."""
    return replace_given(
        EditSettings(eta=VARIATION_ETA, eta_from=VARIATION_ETA_FROM,
                     fresh_guidance=VARIATION_FRESH_GUIDANCE),
        {"steps": steps, "fresh_guidance": fresh_guidance},
    )  # fmt: skip


def variation_candidates(num_images: int, candidates: int | None = None) -> int:
    """How many variations are drawn per input to keep ``num_images``: ``candidates``, or by
    default ``num_images`` x ``VARIATION_CANDIDATES_PER_IMAGE``."""
    return num_images * VARIATION_CANDIDATES_PER_IMAGE if candidates is None else candidates


# how x_T moves between an interpolation's frames; the first is the default
INTERPOLATION_NOISE = ("slerp", "fixed")


def interpolate(
    pipe: UnclipPipeline,
    image_a: Image.Image,
    image_b: Image.Image,
    frames: int = 5,
    seed: int = 0,
    noise: str = INTERPOLATION_NOISE[0],
    settings: EditSettings = EditSettings(),
    bf16: bool = False,
    on_step: Progress = None,
) -> list[Image.Image]:
    """``frames`` images from A to B (section 3.2): z slerped from z_A to z_B; x_T slerped
    between the two inversions (``noise="slerp"``, so that each end is its image's own latent)
    or fixed at A's inversion (``"fixed"``: the last frame draws B's embedding from A's noise,
    which the shapes scorer read as B's caption in none of 16 pairs). Every frame is
    decoded with DDIM at ``settings.eta`` and upsampled with the same seed. ``on_step()`` after
    each model step (the inversion's, then the decoding's: :func:`edit_steps`)."""
    if frames < 2:
        raise ValueError("an interpolation needs at least 2 frames")
    if noise not in INTERPOLATION_NOISE:
        raise ValueError(f"noise must be one of {', '.join(INTERPOLATION_NOISE)}, got {noise!r}")
    pixels = as_tensor([image_a, image_b], output_size(pipe))
    z = pipe.image_embeddings(pixels)
    x_t = invert(pipe, pixels, z, settings, bf16, on_step=on_step)
    ts = torch.linspace(0, 1, frames, dtype=torch.float64)[:, None]
    zs = slerp(z[0:1].expand(frames, -1), z[1:2].expand(frames, -1), ts)
    flat = x_t.flatten(1)
    if noise == "fixed":
        xs = flat[0:1].expand(frames, -1)
    else:
        xs = slerp(flat[0:1].expand(frames, -1), flat[1:2].expand(frames, -1), ts)
    seeds = [image_seed(seed, 0, 0)] * frames
    small = decode_latent(pipe, zs, xs.view(frames, *x_t.shape[1:]), seeds, settings, bf16,
                          on_step=on_step)  # fmt: skip
    return to_pil(finish(pipe, small, seeds, bf16))


def text_diff(
    pipe: UnclipPipeline,
    image: Image.Image,
    source: str,
    target: str,
    amount: float = 0.5,
    num_images: int = 1,
    seed: int = 0,
    settings: EditSettings = EditSettings(),
    bf16: bool = False,
    captions: bool = TEXT_DIFF_CAPTIONS,
    on_step: Progress = None,
) -> list[Image.Image]:
    """The image edited towards ``target`` (section 3.3): z_d = normalise(z_t(target) -
    z_t(source)), z = slerp(z_i, z_d, ``amount``), decoded from the image's inverted x_T.
    ``captions``: the decoder also reads the texts, ``source`` while inverting and ``target``
    while decoding (else the null caption both ways: the paper's edit in CLIP space alone).
    ``on_step()`` after each model step (the inversion's, then the decoding's: :func:`edit_steps`)."""
    if not (math.isfinite(amount) and 0 <= amount <= 1):
        raise ValueError(f"amount must be a number in [0, 1], got {amount}")
    if num_images < 1:
        raise ValueError("num_images must be at least 1")
    texts = pipe.text_embeddings([source, target])
    if float((texts[1] - texts[0]).norm()) < 1e-4:
        raise ValueError(
            f"{source!r} and {target!r} have the same CLIP text embedding: there is no "
            "difference to move along"
        )
    pixels = as_tensor([image], output_size(pipe))
    z_i = pipe.image_embeddings(pixels)
    x_t = invert(pipe, pixels, z_i, settings, bf16, [source] if captions else None, on_step)
    z_d = F.normalize(texts[1] - texts[0], dim=-1)[None]
    z = slerp(z_i, z_d, amount).expand(num_images, -1)
    seeds = [image_seed(seed, 0, j) for j in range(num_images)]
    small = decode_latent(pipe, z, x_t.expand(num_images, -1, -1, -1), seeds, settings, bf16,
                          [target] * num_images if captions else None, on_step)  # fmt: skip
    return to_pil(finish(pipe, small, seeds, bf16))


INPAINT_METHODS = ("mask", "repaint")


# RePaint's decoder and upsampler steps when not given: the counts its figures were measured at
# (docs/editing.md). Its sampler is its own (DDIM at eta 1, each step resampled, evenly spaced),
# so it does not follow the pipeline's text-to-image samplers and steps, which a faster sampler
# or a spacing may cut.
REPAINT_STEPS = 25
REPAINT_UPSAMPLER_STEPS = 15


@dataclass(frozen=True)
class InpaintSettings:
    """unCLIP inpainting: how the decoder repaints (``method``: "mask", a decoder trained with
    the known pixels and a mask as input, GLIDE's way, sampled as the pipeline samples; or
    "repaint", any decoder, resampling with DDIM at eta 1; None: "mask" when the decoder was
    trained for it), the decoder's steps and guidance (None: the pipeline's defaults; RePaint's
    steps: :data:`REPAINT_STEPS`), the upsampler's steps (None:
    :data:`REPAINT_UPSAMPLER_STEPS`), and how many times RePaint does each step."""

    steps: int | None = None
    guidance: float | None = None
    upsampler_steps: int | None = None
    resample: int = 3  # RePaint: each step done this many times
    method: str | None = None

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in INPAINT_METHODS:
            raise ValueError(f"method must be one of {', '.join(INPAINT_METHODS)}, "
                             f"got {self.method!r}")  # fmt: skip
        if not (isinstance(self.resample, int) and self.resample >= 1):
            raise ValueError(f"resample must be a whole number of at least 1, got {self.resample}")
        DecoderSettings(
            steps=self.steps or 1, guidance=1.0 if self.guidance is None else self.guidance
        )
        UpsamplerSettings(steps=self.upsampler_steps or 1)  # the same checks as sampling's

    def resolved_method(self, pipe: UnclipPipeline) -> str:
        """The method used with ``pipe``: the one asked for, else "mask" when its decoder was
        trained to inpaint, else "repaint"."""
        _need_decoder(pipe)
        trained = pipe.decoder.config.inpaint  # type: ignore[union-attr]
        if self.method == "mask" and not trained:
            raise ValueError("this decoder was not trained to inpaint (`dalle train decoder "
                             "--inpaint-prob`): use method 'repaint'")  # fmt: skip
        return self.method or ("mask" if trained else "repaint")

    def stages(self, pipe: UnclipPipeline) -> tuple[DecoderSettings, UpsamplerSettings]:
        """The decoder's and the upsampler's sampler settings for an inpainting with ``pipe``."""

        def repaint_steps(count: int, unet) -> int:  # no more than the model has timesteps
            return min(count, unet.config.num_timesteps)

        steps = self.steps
        if steps is None and self.resolved_method(pipe) == "repaint":
            # its own sampler, not the pipeline's text-to-image steps
            steps = repaint_steps(REPAINT_STEPS, pipe.decoder)
        decoder = pipe.decoder_settings(steps=steps, guidance=self.guidance)
        up_steps = self.upsampler_steps  # the upsampler always repaints
        if up_steps is None and pipe.upsampler is not None:
            up_steps = repaint_steps(REPAINT_UPSAMPLER_STEPS, pipe.upsampler)
        return decoder, pipe.upsampler_settings(steps=up_steps, spacing=1.0)


def _repaint(
    unet, model_fn, known: torch.Tensor, region: torch.Tensor, steps: int, resample: int,
    seeds: Sequence[int], on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:  # fmt: skip
    """RePaint with DDIM (eta = 1, the DDPM posterior): ``known`` (B, 3, S, S) in [-1, 1] is kept
    where ``region`` (S, S) is False. Returns (B, 3, S, S) in [-1, 1]. ``on_step(i, x0)``: the
    model's estimate of the whole image at step ``i`` (its first pass), as in sampling."""
    c = unet.config
    device = known.device
    sampler = DDIMSampler(make_schedule(unet), c.prediction, eta=1.0, clip_x0=1.0)
    sampler.set_timesteps(steps)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    x = sampler.init_noise(known.shape, generators).to(device)
    inside = region.to(device)[None, None].to(known.dtype)
    ts = sampler.timesteps.tolist()

    def abar(t: int) -> float:
        return float(sampler.schedule.alphas_cumprod_at(torch.tensor([t]))[0])

    def noise_like() -> torch.Tensor:
        return sampler.init_noise(known.shape, generators).to(device)

    for i, t in enumerate(ts):
        for r in range(resample):
            t_batch = torch.full((len(x),), t, dtype=torch.long, device=device)
            out = model_fn(x, t_batch)
            if on_step is not None and r == 0:
                on_step(i, sampler.schedule.predict_x0(out, x, t_batch.cpu(), c.prediction))
            x_next = sampler.step(out, t, x, generators)
            a_next = abar(ts[i + 1]) if i + 1 < len(ts) else 1.0
            if a_next < 1.0:
                rows = torch.full((len(x),), a_next, dtype=torch.float64)
                known_next = noisy_from(known, noise_like(), rows)
            else:
                known_next = known
            x_next = inside * x_next + (1 - inside) * known_next
            if r + 1 < resample and a_next < 1.0:  # back to t: x_t ~ q(x_t | x_next)
                ratio = abar(t) / a_next
                x = math.sqrt(ratio) * x_next + math.sqrt(1 - ratio) * noise_like()
            else:
                x = x_next
                break
    return x


@torch.no_grad()
def inpaint_unclip(
    pipe: UnclipPipeline,
    image: Image.Image,
    region: torch.Tensor,
    prompt: str,
    num_images: int = 1,
    seed: int = 0,
    settings: InpaintSettings = InpaintSettings(),
    bf16: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    on_upsampler_step: Callable[[int], None] | None = None,
) -> list[Image.Image]:
    """``image`` with ``region`` (H, W bool, True = repaint) drawn anew for ``prompt`` (which
    describes the whole result): the prior's embedding for the prompt conditions the decoder,
    which repaints at its size by resampling, then the upsampler at the output size the same
    way; every pixel outside the region is the source's, exactly. ``on_step(i, x0)``: the
    decoder's estimate at each of its steps (in [-1, 1], at the decoder's size);
    ``on_upsampler_step(i)``: the upsampler's step ``i`` is done."""
    _need_decoder(pipe)
    if pipe.prior is None:
        raise ValueError("inpainting from a prompt needs the pipeline's prior")
    size = output_size(pipe)
    if image.size != (size, size) or tuple(region.shape) != (size, size):
        raise ValueError(f"this pipeline inpaints {size} x {size} images; got {image.size}")
    source = pil_to_tensor(image.convert("RGB"))[None]  # (1, 3, H, W) in [0, 1]
    seeds = [image_seed(seed, 0, j) for j in range(num_images)]
    z = pipe._prior_draws([prompt] * num_images, [(s, 1) for s in seeds], pipe.prior_defaults)
    decoder = pipe.decoder
    s_dec = decoder.config.image_size  # type: ignore[union-attr]
    small_region = touched_cells(region, s_dec)  # the decoder's pixels the region touches
    known = (area_resize(source, s_dec) * 2 - 1).expand(num_images, -1, -1, -1).to(pipe.device)
    decoder_settings, upsampler_settings = settings.stages(pipe)
    if settings.resolved_method(pipe) == "mask":
        draw = small_region.to(known.device, known.dtype)[None, None].expand(num_images, 1, -1, -1)
        model_fn = _decoder_fn(pipe, z, decoder_settings.guidance, bf16, [prompt] * num_images,
                               known=known, draw=draw)  # fmt: skip
        drawn = draw_unet(decoder, model_fn, decoder_settings, [seed_of(s, 2) for s in seeds],
                          on_step)  # fmt: skip
        inside = small_region[None, None]  # the known pixels stand outside, as RePaint keeps them
        drawn = torch.where(inside, drawn, (known.cpu() + 1) / 2)
    else:
        model_fn = _decoder_fn(pipe, z, decoder_settings.guidance, bf16, [prompt] * num_images)
        small = _repaint(decoder, model_fn, known, small_region, decoder_settings.steps,
                         settings.resample, [seed_of(s, 2) for s in seeds], on_step)  # fmt: skip
        drawn = (small.float().clamp(-1, 1) + 1) / 2
    if pipe.upsampler is not None:
        up = pipe.upsampler
        low_res = drawn * 2 - 1

        def up_fn(x, t):
            return up(x, t, low_res=low_res.to(x.dtype))

        known_up = (source * 2 - 1).expand(num_images, -1, -1, -1).to(pipe.device)
        up_steps = upsampler_settings.steps
        big = _repaint(up, sampling_fn(up, up_fn, bf16), known_up, region, up_steps, settings.resample,
                       [seed_of(s, 3) for s in seeds],
                       on_upsampler_step and (lambda i, _: on_upsampler_step(i)))  # fmt: skip
        drawn = (big.float().clamp(-1, 1) + 1) / 2
    return keep_outside(image, to_pil(drawn.cpu()), region)


def keep_outside(
    source: Image.Image, drawn: Sequence[Image.Image], region: torch.Tensor
) -> list[Image.Image]:
    """Each drawn image with the source's pixels, exactly, outside ``region``."""
    src = np.asarray(source.convert("RGB"))
    inside = region.numpy()[:, :, None]
    out = []
    for image in drawn:
        array = np.where(inside, np.asarray(image.convert("RGB")), src)
        out.append(Image.fromarray(array.astype(np.uint8)))
    return out


def touched_cells(region: torch.Tensor, grid: int) -> torch.Tensor:
    """(grid, grid) bool: the token cells that any pixel of ``region`` (H, W) falls in."""
    return F.adaptive_max_pool2d(region[None, None].float(), grid)[0, 0] > 0


@torch.no_grad()
def inpaint_dalle(
    pipe: DallePipeline,
    image: Image.Image,
    region: torch.Tensor,
    prompt: str,
    num_images: int = 1,
    seed: int = 0,
    settings=None,
    bf16: bool | None = None,
    on_token: Callable[[int, torch.Tensor], None] | None = None,
) -> list[Image.Image]:
    """``image`` with ``region`` drawn anew for ``prompt``: the dVAE tokens of cells the region
    does not touch are kept, the others sampled in raster order (each seeing the tokens above
    and to its left), then decoded; every pixel outside the region is the source's, exactly.
    ``on_token(k, tokens)`` as in sampling: token ``k`` is final."""
    size = pipe.vae.config.image_size
    if image.size != (size, size) or tuple(region.shape) != (size, size):
        raise ValueError(f"this pipeline inpaints {size} x {size} images; got {image.size}")
    keep = ~touched_cells(region, pipe.transformer.config.image_grid).flatten()
    known = pipe.image_tokens(image).expand(num_images, -1)
    seeds = [image_seed(seed, 0, j) for j in range(num_images)]
    settings = settings if settings is not None else pipe.defaults
    tokens = pipe.generate_tokens(
        [prompt] * num_images,
        seeds,
        settings,
        known=known,
        keep=keep,
        bf16=bf16,
        on_token=on_token,
    )
    return keep_outside(image, pipe.decode(tokens, bf16), region)


def inpaint(
    pipe: UnclipPipeline | DallePipeline,
    image: Image.Image,
    region: torch.Tensor,
    prompt: str,
    num_images: int = 1,
    seed: int = 0,
    settings: InpaintSettings | None = None,
    bf16: bool | None = None,
    sampling=None,
    on_progress: Callable[[int, torch.Tensor], None] | None = None,
    on_upsampler_step: Callable[[int], None] | None = None,
) -> list[Image.Image]:
    """Inpainting with either pipeline: ``settings`` are unCLIP's (None: its defaults),
    ``sampling`` DALL·E's ``SamplingSettings`` (None: its defaults). ``on_progress`` is the
    pipeline's own progress hook: unCLIP's ``on_step(i, x0)``, DALL·E's ``on_token(k, tokens)``;
    ``on_upsampler_step(i)`` unCLIP's, after each of its upsampler's steps."""
    if isinstance(pipe, UnclipPipeline):
        from dalle.utils.device import use_bf16

        return inpaint_unclip(pipe, image, region, prompt, num_images, seed,
                              settings or InpaintSettings(), use_bf16(bf16, pipe.device),
                              on_progress, on_upsampler_step)  # fmt: skip
    if settings is not None and settings != InpaintSettings():
        raise ValueError("steps, guidance and resampling are unCLIP inpainting's settings")
    return inpaint_dalle(pipe, image, region, prompt, num_images, seed, sampling, bf16, on_progress)
