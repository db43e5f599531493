"""A preallocated key/value cache for autoregressive decoding.

Keys and values of every layer live in two tensors allocated once for the whole sequence, so a
decoding step writes its new entries in place and attends over the filled prefix: the work per
new token grows with the context, not with its square, and nothing is reallocated.
"""

from __future__ import annotations

import torch


class KVCache:
    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (num_layers, batch_size, num_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0  # positions filled so far (all layers)
        self.max_len = max_len

    def update(
        self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``(B, H, n, Dh)`` keys and values at ``start``; return the filled prefix of both."""
        end = start + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions; {end} requested")
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def select(self, index: torch.Tensor) -> None:
        """Keep only the batch rows ``index`` (e.g. after dropping finished samples)."""
        self.keys = self.keys[:, index]
        self.values = self.values[:, index]
