"""The paper's sparse attention computed over only the keys each mask allows.

The masks of :mod:`dalle.models.attention_masks` say which keys a query may see; applied as dense
``(L, L)`` masks they still cost ``L^2`` work per layer. Here each kind reads only its keys:

- ``row``: image row ``r`` (``W`` queries) needs the text and image rows ``r - 1`` and ``r``.
- ``conv``: image row ``r`` needs the text and rows ``r - span .. r``, ``span`` the rows a
  ``kernel x kernel`` causal neighbourhood reaches back in raster order (6 for 11 x 11 on 16).
- ``column``: the image is transposed so that each column is a short causal sequence after the
  text (the paper's own trick on GPUs, figure 11b).

Text queries attend causally to the text alone. Results equal dense masked attention (tested);
with a 16 x 16 grid and 24 text tokens a row layer does 1/5 of the dense work, a column layer
1/7, the conv layer 1/2. While decoding, one new query reads the same few keys from the cache:
a contiguous slice (row, conv) or a strided one (column) instead of the whole prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dalle.models.attention_masks import MaskKind, image_mask

SPARSE_KINDS: tuple[MaskKind, ...] = ("row", "column", "conv")


@dataclass(frozen=True, eq=False)
class SparsePattern:
    """One sparse layer's pattern over ``[text (text_len); image (grid x grid)]``."""

    kind: MaskKind
    text_len: int
    grid: int
    kernel: int = 11
    _tables: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SPARSE_KINDS:
            raise ValueError(f"{self.kind!r} is not a sparse kind ({', '.join(SPARSE_KINDS)})")

    @property
    def span(self) -> int:
        """Image rows before its own that a query row needs (row and conv kinds)."""
        if self.kind == "row":
            return 1
        half = self.kernel // 2
        return -(-(half * self.grid + half) // self.grid)  # ceil

    # -- whole sequences from position 0 (training, and the prompt's pass when sampling) -------
    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0
    ) -> torch.Tensor:
        """(B, H, L, Dh) outputs for (B, H, L, Dh) inputs at positions ``0 .. L - 1``."""
        t = self.text_len
        text_out = F.scaled_dot_product_attention(
            q[:, :, :t], k[:, :, :t], v[:, :, :t], is_causal=True, dropout_p=dropout
        )
        n = q.shape[2] - t
        if n <= 0:
            return text_out
        rows = -(-n // self.grid)
        pad = rows * self.grid - n  # complete the last row; causal, so nothing earlier changes
        qi, ki, vi = (F.pad(x[:, :, t:], (0, 0, 0, pad)) for x in (q, k, v))
        if self.kind == "column":
            image_out = self._columns(q, k, v, qi, ki, vi, rows, dropout)
        else:
            image_out = self._rows(q, k, v, qi, ki, vi, rows, dropout)
        return torch.cat([text_out, image_out[:, :, :n]], dim=2)

    def _rows(self, q, k, v, qi, ki, vi, rows: int, dropout: float) -> torch.Tensor:
        b, h, _, d = q.shape
        w, t, span = self.grid, self.text_len, self.span

        def shifted(
            x: torch.Tensor,
        ) -> list[torch.Tensor]:  # rows r - span .. r, each (B, H, rows, W, Dh)
            x = F.pad(x, (0, 0, span * w, 0)).view(b, h, rows + span, w, d)
            return [x[:, :, j : j + rows] for j in range(span + 1)]

        out = _attend_groups(
            qi.view(b, h, rows, w, d),
            [(k[:, :, None, :t], v[:, :, None, :t])]  # text keys, shared by every row
            + list(zip(shifted(ki), shifted(vi), strict=True)),
            self._row_mask(rows, q.device),
            dropout,
        )  # (B, H, rows, W, Dh)
        return out.reshape(b, h, rows * w, d)

    def _row_mask(self, rows: int, device: torch.device) -> torch.Tensor:
        """(rows, W, T + (span + 1) W): text always, then the image mask's band, keys before
        image row 0 excluded."""
        key = ("rows", rows, str(device))
        if key not in self._tables:
            w, span, t = self.grid, self.span, self.text_len
            full = image_mask(self.kind, (rows + span) * w, w, self.kernel)  # padded raster
            masks = []
            for r in range(rows):
                q0 = (r + span) * w  # the row's first query in the padded raster
                band = full[q0 : q0 + w, r * w : q0 + w].clone()  # keys of rows r - span .. r
                band[:, : max(span - r, 0) * w] = False  # rows before the image
                masks.append(torch.cat([torch.ones(w, t, dtype=torch.bool), band], dim=1))
            self._tables[key] = torch.stack(masks).to(device)
        return self._tables[key]

    def _columns(self, q, k, v, qi, ki, vi, rows: int, dropout: float) -> torch.Tensor:
        b, h, _, d = q.shape
        w, t = self.grid, self.text_len

        def by_column(x: torch.Tensor) -> torch.Tensor:  # (B, H, W, rows, Dh)
            return x.view(b, h, rows, w, d).transpose(2, 3)

        key = ("columns", rows, str(q.device))
        if key not in self._tables:
            causal = torch.ones(rows, rows, dtype=torch.bool).tril()
            text = torch.ones(rows, t, dtype=torch.bool)
            self._tables[key] = torch.cat([text, causal], dim=1).to(q.device)
        out = _attend_groups(
            by_column(qi),
            [(k[:, :, None, :t], v[:, :, None, :t]), (by_column(ki), by_column(vi))],
            self._tables[key],
            dropout,
        )  # (B, H, W, rows, Dh)
        return out.transpose(2, 3).reshape(b, h, rows * w, d)

    # -- the key/value cache (a ``CacheLayout``): only what the mask can still reach ----------
    # Attention does not depend on the order of its keys, so the row and conv layers keep their
    # image keys in a ring after the text (the newest overwrites the one that fell out of
    # reach), and the column layer keeps one region per column, each holding its own copy of
    # the text keys followed by that column's rows. A query then reads one contiguous slice.
    def _ring(self) -> int:
        return self.grid + 1 if self.kind == "row" else self.span * self.grid + 1

    def cache_size(self, total_len: int) -> int:
        if self.kind == "column":
            return self.grid * (self.text_len + self.grid)
        return self.text_len + self._ring()

    def _slots(self, image_index: torch.Tensor | int) -> torch.Tensor | int:
        t, w = self.text_len, self.grid
        if self.kind == "column":
            row, col = image_index // w, image_index % w
            return col * (t + w) + t + row
        return t + image_index % self._ring()

    def cache_write(self, keys, values, start, k, v) -> None:
        t, w = self.text_len, self.grid
        n = k.shape[2]
        if start < t:  # text: in front (row, conv), or in front of every column's region
            text_k, text_v = k[:, :, : t - start], v[:, :, : t - start]
            if self.kind == "column":
                b, h, _, d = keys.shape
                for buf, x in ((keys, text_k), (values, text_v)):
                    buf.view(b, h, w, t + w, d)[:, :, :, start:t] = x[:, :, None]
            else:
                keys[:, :, start:t], values[:, :, start:t] = text_k, text_v
        first = max(start, t)  # the first new image position
        if first >= start + n:
            return
        if n == 1:  # a decoding step: one slot, written through a plain slice
            slot = self._slots(start - t)
            keys[:, :, slot : slot + 1], values[:, :, slot : slot + 1] = k, v
            return
        image = torch.arange(first - t, start + n - t, device=keys.device)
        if self.kind != "column":
            image = image[-self._ring() :]  # older ones would be overwritten anyway
        local = n - len(image)  # where ``image`` starts among the new tokens
        slots = self._slots(image)
        keys.index_copy_(2, slots, k[:, :, local:])
        values.index_copy_(2, slots, v[:, :, local:])

    def cache_read(self, keys, values, position):
        t, w = self.text_len, self.grid
        i = position - t  # image index of the query
        if i < 0:
            raise ValueError("a sparse layer's cache serves image positions")
        if self.kind == "column":
            lo = (i % w) * (t + w)
            end = lo + t + i // w + 1
            return keys[:, :, lo:end], values[:, :, lo:end], None
        end = t + min(i + 1, self._ring())
        return keys[:, :, :end], values[:, :, :end], self._ring_mask(i, keys.device)

    def _ring_mask(self, i: int, device: torch.device) -> torch.Tensor | None:
        """(1, T + filled slots): which ring slots the query at image index ``i`` may see."""
        if self.kind == "row":
            return None  # the ring holds exactly keys i - W .. i
        key = ("ring_mask", i, str(device))
        if key not in self._tables:
            ring = self._ring()
            filled = min(i + 1, ring)
            slot = torch.arange(filled)
            held = i - (i - slot) % ring  # the image index each slot holds
            allowed = image_mask(self.kind, i + 1, self.grid, self.kernel)[i, held]
            mask = torch.cat([torch.ones(self.text_len, dtype=torch.bool), allowed])[None]
            self._tables[key] = None if bool(mask.all()) else mask.to(device)
        return self._tables[key]


def _attend_groups(
    q: torch.Tensor,
    groups: list[tuple[torch.Tensor, torch.Tensor]],
    mask: torch.Tensor,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Softmax attention of queries (..., n, Dh) over keys given in groups of (..., m_i, Dh)
    (broadcast against the queries' leading dimensions), as if the groups were concatenated:
    ``mask`` (..., n, sum m_i) says which keys each query sees. Plain matrix products, so the
    backward pass is matrix products too (the CPU flash kernel's backward is slow for many small
    blocks) and no key is copied into a window."""
    scale = q.shape[-1] ** -0.5
    scores = torch.cat([q @ k.transpose(-1, -2) for k, _ in groups], dim=-1) * scale
    wide = torch.promote_types(scores.dtype, torch.float32)  # softmax in float32 at least
    probs = scores.to(wide).masked_fill(~mask, float("-inf")).softmax(dim=-1).to(q.dtype)
    if dropout > 0:
        probs = F.dropout(probs, dropout)
    sizes = [k.shape[-2] for k, _ in groups]
    return sum(p @ v for p, (_, v) in zip(probs.split(sizes, dim=-1), groups, strict=True))
