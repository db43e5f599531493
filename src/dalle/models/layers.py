"""Transformer layers shared by the DALL·E transformer and CLIP's encoders."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dalle.models.kv_cache import KVCache
from dalle.models.sparse_attention import SparsePattern
from dalle.utils.device import cpu_flags

Activation = Literal["gelu", "gelu_tanh", "quick_gelu"]
CAUSAL = "causal"  # as a mask: the square causal mask, which the kernel need not be given


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the GELU approximation OpenAI's CLIP models were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class TanhGELU(nn.GELU):
    """``nn.GELU(approximate="tanh")``, computed the fastest way on a CPU.

    PyTorch's CPU tanh-GELU kernels are slow, so on a CPU:
    - float32 without gradients (sampling): ``x * sigmoid(2 u)``, ``u = sqrt(2 / pi) (x +
      0.044715 x^3)``, in place: the same function (``(1 + tanh(u)) / 2 = sigmoid(2 u)``; they
      differ by float rounding, under 1e-6 here); 1.2 against 0.6 ms for 512 x 1024 values on an
      AMD EPYC Zen 3, 2 threads.
    - bfloat16 (bf16 sampling and bf16 autocast training): the erf GELU. The two differ by at
      most 4.7e-4 (at |x| = 2.7, where a bf16 value's spacing is 1.6e-2), far less than bf16
      rounding moves the result, and the erf kernels are 3-6x faster: 32 x 279 x 1024 bf16 values
      (a shapes-transformer MLP at batch 32) 2.2 against 10.1 ms forward, 9.2 against 22.1 ms
      forward and backward (AMD EPYC Zen 4, 2 threads; benchmarks/bench_gelu.py).
    Float32 training and other devices keep the fused tanh kernel."""

    def __init__(self) -> None:
        super().__init__(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.bfloat16:
            return F.gelu(x)
        if torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu":
            return super().forward(x)
        k = 2 * math.sqrt(2 / math.pi)
        u = x * x
        u.mul_(k * 0.044715).add_(k).mul_(x)
        return u.sigmoid_().mul_(x)


def exact_tanh_gelu(model: nn.Module) -> nn.Module:
    """``model`` with each ``TanhGELU`` replaced by PyTorch's own tanh-GELU kernel, in place: the
    tanh function in bf16 too (at that kernel's speed), to compare against."""
    for name, child in model.named_children():
        if isinstance(child, TanhGELU):
            setattr(model, name, nn.GELU(approximate="tanh"))
        else:
            exact_tanh_gelu(child)
    return model


def activation(name: Activation) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return TanhGELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unknown activation {name!r}")


def built_like(cls, config, like: torch.Tensor) -> nn.Module:
    """``cls(config)`` initialised from seed 0 (so alike in every process of a distributed run,
    whatever the global random state) on ``like``'s device and dtype: the start of a model grown
    from a smaller one, whose new parts must not differ between processes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(config)
    return model.to(like.device, like.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``, with an optional
    key/value cache for decoding."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner)
        self.out = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | str | SparsePattern | None,
        cache: KVCache | None = None,
        layer: int = 0,
        start: int = 0,
    ) -> torch.Tensor:
        """``mask``: a boolean (n, keys) tensor, ``CAUSAL``, None (every key), or a
        :class:`SparsePattern` (whole sequences from position 0, or one new token after the
        text), which reads only the keys its mask allows."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, n, Dh)
        dropout = self.dropout if self.training else 0.0
        sparse = isinstance(mask, SparsePattern)
        if cache is not None:
            # Decoding attends in the cache's dtype (the model's, unless the cache was made
            # otherwise: a bf16 cache halves the bytes each step reads, which is what a
            # single query's attention costs: 1.4-2.5x faster than float32 at 8-512 rows).
            q, k, v = (t.to(cache.dtype) for t in (q, k, v))
            cache.write(layer, start, k, v)
            if sparse and start > 0:  # one new token: the keys its mask allows, in place
                k, v, mask = cache.read(layer, start)
                sparse = False
            elif not sparse:
                k, v = cache.prefix(layer, start + n)
        if sparse:  # a whole sequence from position 0
            y = mask.attend(q, k, v, dropout)
        elif n == 1 and cache is not None and not isinstance(mask, str):
            y = decode_attention(q, k, v, mask)
        else:
            causal = isinstance(mask, str) and mask == CAUSAL
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None if causal else mask, is_causal=causal, dropout_p=dropout
            )
        return self.out(y.to(x.dtype).transpose(1, 2).reshape(b, n, -1))  # y: (B, H, n, Dh)


# Below this many keys a single query's attention is faster as two matrix products than through
# the fused kernel on a CPU with AMX (Intel Xeon, 2 threads, 256-512 rows x 4 heads of 64: 2.0
# ms vs 3.1 ms in bf16 at 41 keys; the fused kernel wins in bf16 at 121); in float32 the matrix
# products won at every size measured (1.2 vs 1.5 ms at 41 keys, 5.6 vs 8.5 ms at 121). Keys
# that are not one contiguous block (a column layer's region of its cache) go to the fused
# kernel there: the matrix product would first copy them (3 ms at 512 rows). On a CPU whose
# bf16 units are AVX512-BF16 dot products alone (AMD Zen 4), the fused kernel's bf16 path is
# 2-10x slower than the matrix products at every size (512 rows: 7.1 vs 0.7 ms at 41 keys, 14.7
# vs 3.1 at 121, 4.8 vs 2.5 for a column's strided 32): bf16 always takes the matrix products
# there. ``docs/benchmarks.md``.
DECODE_MATMUL_MAX_KEYS_BF16 = 64


def fused_decode_kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether a single query's attention runs faster through the fused kernel than as two
    matrix products, for these inputs on this machine (measurements above)."""
    bf16 = q.dtype == torch.bfloat16
    if bf16 and q.device.type == "cpu" and "amx_bf16" not in cpu_flags():
        return False
    many = bf16 and k.shape[-2] > DECODE_MATMUL_MAX_KEYS_BF16
    return many or not (k.is_contiguous() and v.is_contiguous())


def decode_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """One query per (row, head): (B, H, 1, Dh) against (B, H, m, Dh) keys, ``mask`` None or a
    boolean (1, m) of the keys it may see. The softmax runs in float32 at least."""
    if fused_decode_kernel(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return matmul_attention(q, k, v, mask)


def matmul_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Softmax attention as two matrix products, the softmax in float32 at least; ``mask``
    None or boolean, broadcast against the (..., queries, keys) scores."""
    scores = (q @ k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1).to(v.dtype) @ v


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        ff_mult: int = 4,
        dropout: float = 0.0,
        act: Activation = "gelu_tanh",
    ) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, head_dim, dropout)
        self.ln_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            activation(act),
            nn.Linear(ff_mult * dim, dim),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
        )

    def forward(self, x, mask=None, cache=None, layer=0, start=0) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x), mask, cache, layer, start)
        return x + self.mlp(self.ln_mlp(x))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) diffusion timesteps -> (B, dim) sinusoidal features (Vaswani et al. 2017; as in
    DDPM): ``cos`` then ``sin`` of ``t`` at ``dim / 2`` frequencies from 1 to ``1 / max_period``,
    computed in float32."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    angles = t.float()[:, None] * freqs[None]
    out = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return F.pad(out, (0, dim % 2))  # an odd width gets a zero column
