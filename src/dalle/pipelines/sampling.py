"""Autoregressive sampling of image tokens from the DALL·E transformer.

Each sample draws its noise from its own ``torch.Generator``, so an image depends only on its
prompt, its seed and the settings, never on what else shares the batch. Sampling uses the
Gumbel-max trick: ``argmax(logits / temperature + Gumbel noise)`` is an exact draw from
``softmax(logits / temperature)`` over the tokens the top-k / top-p filters keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dalle.models.transformer import DalleTransformer


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 picks the most likely token
    top_k: int | None = None  # keep the k most likely tokens (None or 0: all)
    top_p: float | None = (
        None  # keep the smallest set holding this much probability (None or 1: all)
    )
    guidance: float = 1.0  # classifier-free guidance scale g; 1 is plain conditional sampling

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "guidance"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):  # nan passes every comparison
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be at least 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be at least 0 (0 keeps every token), got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be at least 0, got {self.guidance}")

    @property
    def guided(self) -> bool:
        return self.guidance != 1.0


DEFAULT_SETTINGS = SamplingSettings()


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """(B, V) logits with the tokens outside top-k and the top-p nucleus set to -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
        drop_sorted = before >= top_p  # the most likely token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def gumbel_noise(generators: Sequence[torch.Generator], vocab: int) -> torch.Tensor:
    """(B, V) standard Gumbel noise, row ``i`` drawn from ``generators[i]``."""
    u = torch.stack([torch.rand(vocab, generator=g) for g in generators])
    exponential = (-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20)  # -log u > 0
    return -torch.log(exponential)


def pick_tokens(
    logits: torch.Tensor, settings: SamplingSettings, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """Draw one token per row of (B, V) logits."""
    logits = logits.float()
    if settings.temperature == 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits / settings.temperature, settings.top_k, settings.top_p)
    noise = gumbel_noise(generators, logits.shape[-1])  # drawn on the CPU generators
    return (logits + noise.to(logits.device)).argmax(dim=-1)


def guide(logits: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance, uncond + g (cond - uncond), on a (2B, ...) batch of
    [conditional; unconditional] predictions (the transformer's logits, a diffusion model's
    outputs)."""
    cond, uncond = logits.chunk(2)
    return uncond + guidance * (cond - uncond)


@torch.inference_mode()
def sample_image_tokens(
    model: DalleTransformer,
    text: torch.Tensor,
    generators: Sequence[torch.Generator],
    settings: SamplingSettings = DEFAULT_SETTINGS,
    null_text: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
    use_cache: bool = True,
    on_token: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Sample (B, N) image tokens for (B, T) captions.

    ``null_text`` (T,) is the empty caption the unconditional half of guidance reads; it is
    required when ``settings.guidance != 1``. ``known`` (B, N) tokens are kept where ``keep``
    (N,) is True and the others sampled, in raster order: each sampled token sees the kept and
    sampled tokens before it (completion keeps the first rows; inpainting the tokens outside the
    mask). With ``use_cache`` every step after the first runs the transformer on the one new
    token against a preallocated key/value cache; without it every step reruns the whole
    sequence. Runs in the model's dtype: a bf16 copy of the model samples in bf16 (see
    ``DallePipeline``).
    """
    c = model.config
    batch = text.shape[0]
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} generators for {batch} samples")
    if settings.guided:
        if null_text is None:
            raise ValueError("guidance needs the empty caption (null_text)")
        text = torch.cat([text, null_text.expand(batch, -1)])  # [cond; uncond]
    out = torch.zeros(batch, c.image_seq_len, dtype=torch.long, device=text.device)
    if (known is None) != (keep is None):
        raise ValueError("give both known tokens and which to keep, or neither")
    if keep is None:
        keep = torch.zeros(c.image_seq_len, dtype=torch.bool)
    else:
        if keep.shape != (c.image_seq_len,) or known.shape != out.shape:  # type: ignore[union-attr]
            raise ValueError(f"known tokens (B, {c.image_seq_len}) and keep ({c.image_seq_len},)")
        if bool(keep.all()):
            raise ValueError("every token is kept: there is nothing to sample")
        out[:, keep] = known[:, keep]  # type: ignore[index]
    keep = keep.tolist()
    start = keep.index(False)  # the kept tokens before the first sampled one are read at once

    def both(tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([tokens, tokens]) if settings.guided else tokens

    def next_token(logits: torch.Tensor) -> torch.Tensor:
        logits = logits[:, -1].float()
        if settings.guided:
            logits = guide(logits, settings.guidance)
        return pick_tokens(logits, settings, generators)

    cache = model.new_cache(text.shape[0]) if use_cache else None
    _, logits = model(text, both(out[:, :start]), cache)
    for k in range(start, c.image_seq_len):
        if not keep[k]:
            out[:, k] = next_token(logits)
        if on_token is not None:  # token k is final: (k, the (B, N) tokens so far)
            on_token(k, out)
        if k + 1 == c.image_seq_len or all(keep[k + 1 :]):
            break
        if cache is not None:
            _, logits = model(None, both(out[:, k : k + 1]), cache)
        else:
            _, logits = model(text, both(out[:, : k + 1]))
    return out
