"""Gaussian noise drawn per row, so that a sample depends on its own generator only."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def randn(
    shape: Sequence[int],
    generator: Generators = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal noise of ``shape`` (B, ...).

    ``generator`` is None (the global RNG), one ``torch.Generator`` for the whole tensor, or one
    generator per row: row i is then ``randn(shape[1:], generator=generators[i])``, the same
    whatever else shares the batch. Noise is drawn on each generator's device, then moved.
    """
    shape = tuple(shape)
    if generator is None:
        return torch.randn(shape, dtype=dtype, device=device)
    if isinstance(generator, torch.Generator):
        out = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device)
        return out if device is None else out.to(device)
    generators = list(generator)
    if not shape or len(generators) != shape[0]:
        raise ValueError(f"got {len(generators)} generators for a batch of shape {shape}")
    rows = [torch.randn(shape[1:], generator=g, dtype=dtype, device=g.device) for g in generators]
    out = torch.stack(rows)  # (B, ...)
    return out if device is None else out.to(device)
