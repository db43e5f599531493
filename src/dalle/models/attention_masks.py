"""The attention masks of the DALL·E transformer (Ramesh et al. 2021, appendix B.1, figure 11).

Every mask is a boolean ``(L, L)`` tensor over the input sequence ``[text; image]``, True where
query ``i`` may attend to key ``j``. Text tokens attend causally among themselves and every image
token sees all text tokens; the kinds differ only in which earlier image tokens an image token
sees. Image tokens are in raster order on a ``grid x grid`` layout; ``k`` below is an image
token's raster index and ``(r, c) = divmod(k, grid)`` its row and column.

- ``full``: every earlier image token (the standard causal mask).
- ``row``: the previous ``grid + 1`` image tokens in raster order, itself included, so the last
  one it reaches back to is the token in its column one row up (figure 11a).
- ``column``: the earlier image tokens in its own column (figure 11b).
- ``conv``: a causal ``kernel x kernel`` neighbourhood in raster offsets, so it wraps around row
  ends like the row mask does (figure 11d): key ``k - dr * grid + dc`` for ``dr`` in
  ``0 .. kernel // 2`` and ``dc`` in ``-(kernel // 2) .. kernel // 2``, never a later token.
"""

from __future__ import annotations

from typing import Literal

import torch

MaskKind = Literal["full", "row", "column", "conv"]
MASK_KINDS: tuple[MaskKind, ...] = ("full", "row", "column", "conv")


def _raster(image_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.arange(image_len)
    return k[:, None], k[None, :]  # query index (N, 1), key index (1, N)


def image_full(image_len: int) -> torch.Tensor:
    q, k = _raster(image_len)
    return k <= q


def image_row(image_len: int, grid: int) -> torch.Tensor:
    q, k = _raster(image_len)
    return (k <= q) & (k >= q - grid)


def image_column(image_len: int, grid: int) -> torch.Tensor:
    q, k = _raster(image_len)
    return (k <= q) & ((q - k) % grid == 0)


def image_conv(image_len: int, grid: int, kernel: int) -> torch.Tensor:
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"the convolutional kernel must be odd and positive, got {kernel}")
    q, k = _raster(image_len)
    half = kernel // 2
    offset = q - k  # how far back the key lies in raster order
    near = torch.zeros(image_len, image_len, dtype=torch.bool)
    for dr in range(half + 1):  # keys dr rows up, within half a kernel of the query's column
        near |= (offset - dr * grid).abs() <= half
    return near & (offset >= 0)


def image_mask(kind: MaskKind, image_len: int, grid: int, kernel: int = 11) -> torch.Tensor:
    """The ``(N, N)`` image-to-image part of a mask."""
    if kind == "full":
        return image_full(image_len)
    if kind == "row":
        return image_row(image_len, grid)
    if kind == "column":
        return image_column(image_len, grid)
    if kind == "conv":
        return image_conv(image_len, grid, kernel)
    raise ValueError(f"unknown attention mask {kind!r} (known: {', '.join(MASK_KINDS)})")


def attention_mask(
    kind: MaskKind, text_len: int, image_len: int, grid: int, kernel: int = 11
) -> torch.Tensor:
    """The ``(T + N, T + N)`` mask of one layer: causal text, image sees all text, ``kind`` within image."""
    total = text_len + image_len
    mask = torch.zeros(total, total, dtype=torch.bool)
    mask[:text_len, :text_len] = torch.ones(text_len, text_len).tril().bool()
    mask[text_len:, :text_len] = True
    mask[text_len:, text_len:] = image_mask(kind, image_len, grid, kernel)
    return mask


def layer_schedule(
    num_layers: int, attention: Literal["sparse", "full"], full_every: int = 0
) -> list[MaskKind]:
    """The mask of each layer. ``sparse`` is the paper's: layer ``i`` (counted from 1) uses column
    attention when ``(i - 2) mod 4 == 0`` and row attention otherwise, and the last layer uses the
    convolutional mask. ``full`` is causal attention everywhere. With ``sparse`` and
    ``full_every`` = k > 0, every k-th layer but the last is ``full`` and the other layers follow
    the paper's schedule among themselves (so a sparse model's layers keep their order and kinds
    when full layers are put between them)."""
    if attention == "full":
        return ["full"] * num_layers
    if attention != "sparse":
        raise ValueError(f"attention must be 'sparse' or 'full', got {attention!r}")
    if full_every < 0:
        raise ValueError(f"full_every must be 0 (none) or positive, got {full_every}")
    full = {i for i in range(1, num_layers) if full_every and i % full_every == 0}
    n = num_layers - len(full)
    kinds: list[MaskKind] = ["column" if (i - 2) % 4 == 0 else "row" for i in range(1, n + 1)]
    kinds[-1] = "conv"
    sparse = iter(kinds)
    return ["full" if i in full else next(sparse) for i in range(1, num_layers + 1)]
