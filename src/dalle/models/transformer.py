"""The DALL·E transformer (Ramesh et al. 2021, section 2.2 and appendix B.1).

A decoder-only transformer over the sequence ``[text tokens; image tokens]``. Output ``p``
predicts token ``p + 1``: outputs ``0 .. T - 2`` predict text, outputs ``T - 1 .. T + N - 2``
predict the ``N`` image tokens. Padding in the text is replaced by a learned pad token per text
position; image positions get learned row and column embeddings. Each layer uses the attention
mask its place in the paper's schedule gives it (:mod:`dalle.models.attention_masks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dalle.config import Config
from dalle.models.attention_masks import attention_mask, layer_schedule
from dalle.models.kv_cache import DenseLayout, KVCache
from dalle.models.layers import CAUSAL, Block, built_like
from dalle.models.pretrained import PretrainedMixin
from dalle.models.sparse_attention import SPARSE_KINDS, SparsePattern

TEXT_LOSS_WEIGHT = 1 / 8  # the paper's 1:7 weighting of the text and image cross-entropies
IMAGE_LOSS_WEIGHT = 7 / 8


@dataclass(frozen=True)
class DalleConfig(Config):
    num_text_tokens: int = 1024  # the text tokenizer's vocabulary
    text_seq_len: int = 32  # T
    num_image_tokens: int = 256  # the dVAE's codebook size
    image_grid: int = 16  # the dVAE's grid: N = image_grid ** 2 image tokens
    dim: int = 256
    num_layers: int = 8
    num_heads: int = 8
    head_dim: int = 32
    ff_mult: int = 4
    attention: Literal["sparse", "full"] = "sparse"  # the paper's row/column/conv, or causal
    full_every: int = 0  # sparse: every full_every-th layer (not the last) is full; 0: none
    conv_kernel: int = 11
    dropout: float = 0.0
    pad_id: int = 0  # the tokenizer's <pad>, replaced by the per-position pad tokens

    def __post_init__(self) -> None:
        self.require(
            positive=("num_text_tokens", "text_seq_len", "num_image_tokens", "image_grid", "dim",
                      "num_layers", "num_heads", "head_dim", "ff_mult", "conv_kernel"),
            non_negative=("full_every", "pad_id"), fractions=("dropout",),
        )  # fmt: skip

    @property
    def image_seq_len(self) -> int:
        return self.image_grid**2

    @property
    def total_seq_len(self) -> int:
        return self.text_seq_len + self.image_seq_len

    @property
    def text_vocab(self) -> int:
        """Text ids plus one pad token per text position."""
        return self.num_text_tokens + self.text_seq_len


def text_targets(text: torch.Tensor, config: DalleConfig) -> torch.Tensor:
    """(B, T) ids with each <pad> replaced by the pad token of its position."""
    positions = torch.arange(text.shape[1], device=text.device)
    return torch.where(text == config.pad_id, config.num_text_tokens + positions, text)


class DalleTransformer(PretrainedMixin, nn.Module):
    config_class = DalleConfig

    def __init__(self, config: DalleConfig) -> None:
        super().__init__()
        if config.pad_id >= config.num_text_tokens:
            raise ValueError("pad_id must be a text token id")
        self.config = config
        c = config
        self.text_emb = nn.Embedding(c.text_vocab, c.dim)
        self.text_pos = nn.Embedding(c.text_seq_len, c.dim)
        self.image_emb = nn.Embedding(c.num_image_tokens, c.dim)
        self.row_emb = nn.Embedding(c.image_grid, c.dim)
        self.col_emb = nn.Embedding(c.image_grid, c.dim)
        self.blocks = nn.ModuleList(
            Block(c.dim, c.num_heads, c.head_dim, c.ff_mult, c.dropout) for _ in range(c.num_layers)
        )
        self.ln_out = nn.LayerNorm(c.dim)
        self.text_head = nn.Linear(c.dim, c.text_vocab)
        self.image_head = nn.Linear(c.dim, c.num_image_tokens)
        self.kinds = layer_schedule(c.num_layers, c.attention, c.full_every)
        for kind in sorted(set(self.kinds)):  # one (L, L) bool buffer per distinct mask
            mask = attention_mask(
                kind, c.text_seq_len, c.image_seq_len, c.image_grid, c.conv_kernel
            )
            self.register_buffer(f"mask_{kind}", mask, persistent=False)
        self.patterns = {  # the same masks, computed over only the keys they allow
            kind: SparsePattern(kind, c.text_seq_len, c.image_grid, c.conv_kernel)
            for kind in set(self.kinds) & set(SPARSE_KINDS)
        }
        self.use_sparse = True  # False: dense masks everywhere (the reference, in tests)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2: N(0, 0.02), residual output projections scaled by 1 / sqrt(2 * layers)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.out, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.config.num_layers))

    @classmethod
    def grown_from(cls, small: DalleTransformer, config: DalleConfig) -> DalleTransformer:
        """A deeper transformer of ``config`` that computes what ``small`` computes, to train on
        from its weights: ``small``'s layers keep their order and attention masks (each goes to
        the first free layer of its kind in ``config``'s schedule, the convolutional one last)
        and the new layers, of any kind (e.g. the full layers of a larger ``full_every``), start
        as the identity (their residual output projections zero). Only ``num_layers`` and
        ``full_every`` may change."""
        old = small.config
        same = config.replace(num_layers=old.num_layers, full_every=old.full_every) == old
        if config.num_layers < old.num_layers or not same:
            raise ValueError(
                f"a transformer grows only in depth (more num_layers, or full layers between its "
                f"own; everything else equal): {old.changes(config)}"
            )
        model = built_like(cls, config, small.text_emb.weight)
        places: list[int] = []
        for kind in small.kinds:  # the first free layer of the same kind, in order
            start = places[-1] + 1 if places else 0
            found = [i for i in range(start, config.num_layers) if model.kinds[i] == kind]
            if kind == "conv" and found:
                found = found[-1:]
            if not found:
                raise ValueError(
                    f"the {config.num_layers}-layer schedule {model.kinds} does not hold "
                    f"{small.kinds} in order"
                )
            places.append(found[0])
        state = model.state_dict()
        for key, value in small.state_dict().items():
            parts = key.split(".")
            if parts[0] == "blocks":
                parts[1] = str(places[int(parts[1])])
            state[".".join(parts)] = value
        for i in sorted(set(range(config.num_layers)) - set(places)):
            for name in ("attn.out", "mlp.2"):
                state[f"blocks.{i}.{name}.weight"].zero_()
                state[f"blocks.{i}.{name}.bias"].zero_()
        model.load_state_dict(state)
        return model

    def num_parameters(self, embeddings: bool = True) -> int:
        """Parameters, or only those of the blocks (the scaling-law count) without embeddings."""
        if embeddings:
            return sum(p.numel() for p in self.parameters())
        return sum(p.numel() for p in self.blocks.parameters())

    # -- inputs ---------------------------------------------------------------------------------
    def text_targets(self, text: torch.Tensor) -> torch.Tensor:
        """(B, T) ids with each <pad> replaced by the pad token of its position."""
        positions = torch.arange(text.shape[1], device=text.device)
        return torch.where(
            text == self.config.pad_id, self.config.num_text_tokens + positions, text
        )

    def embed(
        self, text: torch.Tensor | None, image: torch.Tensor | None, start: int
    ) -> torch.Tensor:
        """Embed the positions ``start ..`` of the sequence: ``text`` (B, T) in full when
        ``start`` is 0, then ``image`` tokens (B, n) from image position ``max(start - T, 0)``."""
        c, parts = self.config, []
        if text is not None:
            if start != 0 or text.shape[1] != c.text_seq_len:
                raise ValueError(f"text must be the whole (B, {c.text_seq_len}) caption at start 0")
            parts.append(self.text_emb(self.text_targets(text)) + self.text_pos.weight)
        if image is not None and image.shape[1] > 0:
            first = max(start - c.text_seq_len, 0)
            index = torch.arange(first, first + image.shape[1], device=image.device)
            if index[-1] >= c.image_seq_len:
                raise ValueError(f"at most {c.image_seq_len} image tokens")
            rows, cols = index // c.image_grid, index % c.image_grid
            parts.append(self.image_emb(image) + self.row_emb(rows) + self.col_emb(cols))
        if not parts:
            raise ValueError("nothing to embed: give text and/or image tokens")
        return torch.cat(parts, dim=1)

    # -- forward --------------------------------------------------------------------------------
    def forward(
        self,
        text: torch.Tensor | None,
        image: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits for the positions given: ``(text_logits, image_logits)``.

        Without a cache, ``text`` is the whole (B, T) caption and ``image`` the first ``n <= N``
        image tokens; ``text_logits`` (B, T - 1, T_vocab) predict text tokens ``1 .. T - 1`` and
        ``image_logits`` (B, n + 1, num_image_tokens) predict image tokens ``0 .. n`` (the last
        is dropped when ``n = N``). With a cache, the positions continue where the cache ends:
        pass ``text`` (and optionally an image prefix) first, then ``image`` tokens alone.
        """
        c = self.config
        start = cache.length if cache is not None else 0
        x = self.embed(text if start == 0 else None, image, start)  # (B, n, dim)
        if start > 0 and text is not None:
            raise ValueError("the cache already holds the text: pass only new image tokens")
        end = start + x.shape[1]
        keys = end if cache is not None else x.shape[1]
        masks = {kind: self._layer_mask(kind, start, end, keys) for kind in set(self.kinds)}
        for i, (block, kind) in enumerate(zip(self.blocks, self.kinds)):
            x = block(x, masks[kind], cache, i, start)
        if cache is not None:
            cache.advance(x.shape[1])
        x = self.ln_out(x)
        # output p predicts token p + 1: text up to position T - 2, image from T - 1
        split = min(max(c.text_seq_len - 1 - start, 0), x.shape[1])
        image_out = x[:, split:]
        if end > c.total_seq_len - 1:  # the last image token predicts nothing
            image_out = image_out[:, : image_out.shape[1] - (end - c.total_seq_len + 1)]
        return self.text_head(x[:, :split]), self.image_head(image_out)

    def _layer_mask(
        self, kind: str, start: int, end: int, keys: int
    ) -> torch.Tensor | str | SparsePattern | None:
        pattern = self.patterns.get(kind) if self.use_sparse else None
        if pattern is not None and (
            start == 0 or (end - start == 1 and start >= self.config.text_seq_len)
        ):
            return pattern
        if kind == "full" and end - start == 1:
            return None  # one new token under the causal mask sees every cached key
        if kind == "full" and start == 0:
            # the whole full mask from position 0 is lower-triangular (text causal, image sees
            # all text, image causal): the attention kernel then skips the upper blocks, ~2x
            return CAUSAL
        return getattr(self, f"mask_{kind}")[start:end, :keys]

    def new_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache for ``batch_size`` sequences, in the model's dtype unless told
        otherwise; sparse layers keep only the keys their masks can still reach."""
        c = self.config
        device = self.image_emb.weight.device
        dtype = self.image_emb.weight.dtype if dtype is None else dtype
        layouts = [
            self.patterns[kind] if self.use_sparse and kind in self.patterns else DenseLayout()
            for kind in self.kinds
        ]
        return KVCache(layouts, batch_size, c.num_heads, c.total_seq_len, c.head_dim, dtype, device)


def dalle_loss(
    model: nn.Module, text: torch.Tensor, image: torch.Tensor, config: DalleConfig | None = None
) -> dict[str, torch.Tensor]:
    """Cross-entropy of a (B, T) caption and its (B, N) image tokens, text 1/8 and image 7/8,
    each averaged over its own tokens (section 2.2). ``model`` may be wrapped (DDP), in which
    case ``config`` gives its configuration."""
    config = config if config is not None else model.config
    text_logits, image_logits = model(text, image[:, :-1])
    targets = text_targets(text, config)[:, 1:]
    text_loss = F.cross_entropy(text_logits.flatten(0, 1).float(), targets.flatten())
    image_loss = F.cross_entropy(image_logits.flatten(0, 1).float(), image.flatten())
    loss = TEXT_LOSS_WEIGHT * text_loss + IMAGE_LOSS_WEIGHT * image_loss
    return {"loss": loss, "text_loss": text_loss, "image_loss": image_loss}


# The shapes world: captions fit in 24 BPE tokens; 16 x 16 tokens from the bundled dVAE (K = 256).
# 4 heads of 64 rather than 8 of 32: the same width, 13 % faster training steps on the CPU,
# whose attention kernel is slow for narrow heads (1.36 s vs 1.57 s per step of batch 32).
DalleConfig.register_preset(
    "shapes",
    DalleConfig(
        num_text_tokens=512, text_seq_len=24, num_image_tokens=256, image_grid=16, dim=256,
        num_layers=8, num_heads=4, head_dim=64, attention="sparse", conv_kernel=11,
    ),
)  # fmt: skip
# Ramesh et al. 2021: 64 layers, 62 heads of 64, 256 text + 32 x 32 image positions.
DalleConfig.register_preset(
    "dalle-paper-12b",
    DalleConfig(
        num_text_tokens=16384, text_seq_len=256, num_image_tokens=8192, image_grid=32, dim=3968,
        num_layers=64, num_heads=62, head_dim=64, attention="sparse", conv_kernel=11,
    ),
)  # fmt: skip
DalleConfig.register_preset(
    "dalle-tiny",
    DalleConfig(
        num_text_tokens=300, text_seq_len=8, num_image_tokens=32, image_grid=8, dim=32,
        num_layers=2, num_heads=2, head_dim=16, conv_kernel=3,
    ),
)  # fmt: skip
# CelebA at 128 x 128: 64 caption tokens, the celeba128 dVAE's 16 x 16 tokens of 1,024.
DalleConfig.register_preset(
    "celeba128",
    DalleConfig(
        num_text_tokens=1024, text_seq_len=64, num_image_tokens=1024, image_grid=16, dim=384,
        num_layers=12, num_heads=6, head_dim=64, attention="sparse", conv_kernel=11,
    ),
)  # fmt: skip
