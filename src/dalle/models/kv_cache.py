"""Preallocated key/value caches for autoregressive decoding, laid out per layer.

Each layer's keys and values live in buffers allocated once, written in place as tokens arrive.
How a layer's buffer is laid out depends on what its attention reads (a ``CacheLayout``):
causal layers keep the whole sequence in order (:class:`DenseLayout`); the paper's sparse layers
keep only what their mask can still reach, so that a decoding step reads exactly those keys,
contiguously, without copying them first (``dalle.models.sparse_attention``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class CacheLayout(Protocol):
    def cache_size(self, total_len: int) -> int:
        """Slots a buffer needs for a sequence of ``total_len`` positions."""
        ...

    def cache_write(self, keys: torch.Tensor, values: torch.Tensor, start: int,
                    k: torch.Tensor, v: torch.Tensor) -> None:  # fmt: skip
        """Store (B, H, n, Dh) keys and values of positions ``start .. start + n - 1``."""
        ...

    def cache_read(
        self, keys: torch.Tensor, values: torch.Tensor, position: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What the query at ``position`` attends to: keys, values and a mask (None: all)."""
        ...


class DenseLayout:
    """The whole sequence in order; a query reads the filled prefix."""

    def cache_size(self, total_len: int) -> int:
        return total_len

    def cache_write(self, keys, values, start, k, v) -> None:
        end = start + k.shape[2]
        keys[:, :, start:end] = k
        values[:, :, start:end] = v

    def cache_read(self, keys, values, position):
        return keys[:, :, : position + 1], values[:, :, : position + 1], None


class KVCache:
    def __init__(
        self,
        layouts: Sequence[CacheLayout],
        batch_size: int,
        num_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.layouts = list(layouts)
        self.keys, self.values = [], []
        for layout in self.layouts:
            shape = (batch_size, num_heads, layout.cache_size(max_len), head_dim)
            self.keys.append(torch.zeros(shape, dtype=dtype, device=device))
            self.values.append(torch.zeros(shape, dtype=dtype, device=device))
        self.length = 0  # positions filled so far (all layers)
        self.max_len = max_len
        self.dtype = dtype

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``(B, H, n, Dh)`` keys and values of positions ``start ..`` for ``layer``."""
        if start + k.shape[2] > self.max_len:
            raise ValueError(
                f"the cache holds {self.max_len} positions; {start + k.shape[2]} requested"
            )
        self.layouts[layer].cache_write(self.keys[layer], self.values[layer], start, k, v)

    def prefix(self, layer: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of positions ``0 .. end - 1`` in order (dense layers only)."""
        if not isinstance(self.layouts[layer], DenseLayout):
            raise ValueError(f"layer {layer} keeps only what its sparse mask reads")
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def read(
        self, layer: int, position: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What the query at ``position`` attends to in ``layer``: keys, values, mask."""
        return self.layouts[layer].cache_read(self.keys[layer], self.values[layer], position)

    def advance(self, n: int) -> None:
        self.length += n
