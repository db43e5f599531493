"""CLIP: contrastive text and image encoders (Radford et al. 2021).

A causal text transformer read at its end-of-text token and a Vision Transformer read at its class
token, each projected into a shared space and L2-normalised. The module layout follows OpenAI's
released models closely enough that their (and open_clip's) ViT checkpoints map onto it one to one
(:mod:`dalle.models.clip_convert`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dalle.config import Config
from dalle.models.layers import Activation, Block
from dalle.models.pretrained import PretrainedMixin


@dataclass(frozen=True)
class CLIPConfig(Config):
    embed_dim: int = 128  # the shared space
    # text encoder
    num_text_tokens: int = 512
    text_seq_len: int = 24
    text_dim: int = 128
    text_layers: int = 4
    text_heads: int = 4
    eot_id: int = 1  # features are read at the first end-of-text token
    # image encoder
    image_size: int = 64
    patch_size: int = 8
    vision_dim: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    act: Activation = "gelu"  # OpenAI's models use "quick_gelu"
    # pixels are normalised with these per-channel statistics before the patch embedding
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    init_temperature: float = 0.07  # logit scale starts at 1 / 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        self.require(positive=("embed_dim", "num_text_tokens", "text_seq_len", "text_dim",
                               "text_layers", "text_heads", "image_size", "patch_size",
                               "vision_dim", "vision_layers", "vision_heads", "init_temperature",
                               "max_logit_scale"), non_negative=("eot_id",))  # fmt: skip
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of {self.patch_size}")
        for dim, heads, what in (
            (self.text_dim, self.text_heads, "text"),
            (self.vision_dim, self.vision_heads, "vision"),
        ):
            if dim % heads:
                raise ValueError(f"{what} width {dim} does not split into {heads} heads")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class TextEncoder(nn.Module):
    def __init__(self, c: CLIPConfig) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(c.num_text_tokens, c.text_dim)
        self.pos_emb = nn.Parameter(torch.empty(c.text_seq_len, c.text_dim).normal_(std=0.01))
        head_dim = c.text_dim // c.text_heads
        self.blocks = nn.ModuleList(
            Block(c.text_dim, c.text_heads, head_dim, act=c.act) for _ in range(c.text_layers)
        )
        self.ln_final = nn.LayerNorm(c.text_dim)
        self.proj = nn.Linear(c.text_dim, c.embed_dim, bias=False)
        causal = torch.ones(c.text_seq_len, c.text_seq_len, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)
        self.eot_id = c.eot_id

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, embed_dim) features, not normalised."""
        return self.pool(text, self.hidden(text))

    def hidden(self, text: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, text_dim): every position's final (normalised) state."""
        n = text.shape[1]
        x = self.token_emb(text) + self.pos_emb[:n]
        mask = self.causal[:n, :n]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x)

    def end_index(self, text: torch.Tensor) -> torch.Tensor:
        """(B,) the first <eot> of each row (a row without one: its last position)."""
        is_eot = text == self.eot_id
        last = torch.full_like(text[:, 0], text.shape[1] - 1)
        return torch.where(is_eot.any(1), is_eot.int().argmax(1), last)

    def pool(self, text: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The features read at each row's end-of-text, projected: (B, embed_dim)."""
        return self.proj(hidden[torch.arange(len(text), device=text.device), self.end_index(text)])


class VisionEncoder(nn.Module):
    def __init__(self, c: CLIPConfig) -> None:
        super().__init__()
        width = c.vision_dim
        self.patch_emb = nn.Conv2d(3, width, c.patch_size, stride=c.patch_size, bias=False)
        scale = width**-0.5
        self.class_emb = nn.Parameter(scale * torch.randn(width))
        self.pos_emb = nn.Parameter(scale * torch.randn(c.num_patches + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        head_dim = width // c.vision_heads
        self.blocks = nn.ModuleList(
            Block(width, c.vision_heads, head_dim, act=c.act) for _ in range(c.vision_layers)
        )
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Linear(width, c.embed_dim, bias=False)
        self.register_buffer("mean", torch.tensor(c.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.image_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, embed_dim) features, not normalised."""
        x = self.patch_emb((images - self.mean) / self.std)  # (B, width, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B, patches, width)
        cls = self.class_emb.expand(x.shape[0], 1, -1).to(x.dtype)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.pos_emb)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.ln_post(x[:, 0]))


class CLIP(PretrainedMixin, nn.Module):
    config_class = CLIPConfig

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.text = TextEncoder(config)
        self.vision = VisionEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, embed_dim), unit length."""
        return F.normalize(self.text(text).float(), dim=-1)

    def encode_text_tokens(
        self, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T) ids -> the token encodings (B, T, text_dim), which of them are the caption's
        (B, T) bool, up to and including its end-of-text, and the unit embedding (B, D): what
        the unCLIP prior reads."""
        hidden = self.text.hidden(text)
        positions = torch.arange(text.shape[1], device=text.device)
        mask = positions[None] <= self.text.end_index(text)[:, None]
        return hidden, mask, F.normalize(self.text.pool(text, hidden).float(), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, embed_dim), unit length."""
        return F.normalize(self.vision(images).float(), dim=-1)

    def scale(self) -> torch.Tensor:
        """The learned inverse temperature, exp(logit_scale), at most ``max_logit_scale``."""
        return self.logit_scale.exp().clamp(max=self.config.max_logit_scale)

    def forward(
        self, images: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit image features (B, D), unit text features (B, D) and the logit scale: what the
        contrastive loss takes (through ``forward``, so that DDP sees the whole step)."""
        return self.encode_image(images), self.encode_text(text), self.scale()

    @torch.no_grad()
    def similarity(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B_images, B_texts) cosine similarities."""
        return self.encode_image(images) @ self.encode_text(text).t()


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scale: torch.Tensor,
    negative_text_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric cross-entropy over the (B, B) similarity matrix: image ``i`` belongs to text
    ``i``. Features are unit length; with several processes pass the gathered features.
    ``negative_text_features`` (M, D) are extra texts every image is contrasted with (hard
    negatives); they add columns to the image-to-text side only."""
    logits = scale * image_features @ text_features.t()
    labels = torch.arange(len(logits), device=logits.device)
    image_to_text = logits
    if negative_text_features is not None:
        image_to_text = torch.cat([logits, scale * image_features @ negative_text_features.t()], 1)
    return (F.cross_entropy(image_to_text, labels) + F.cross_entropy(logits.t(), labels)) / 2


CLIPConfig.register_preset(
    "shapes",
    CLIPConfig(
        embed_dim=128, num_text_tokens=512, text_seq_len=24, text_dim=128, text_layers=4,
        text_heads=4, image_size=64, patch_size=8, vision_dim=128, vision_layers=4,
        vision_heads=4,
    ),
)  # fmt: skip
CLIPConfig.register_preset(
    "clip-tiny",
    CLIPConfig(
        embed_dim=16, num_text_tokens=300, text_seq_len=20, text_dim=16, text_layers=1,
        text_heads=2, image_size=16, patch_size=4, vision_dim=16, vision_layers=1,
        vision_heads=2,
    ),
)  # fmt: skip
CLIPConfig.register_preset(
    "celeba128",
    CLIPConfig(
        embed_dim=256, num_text_tokens=1024, text_seq_len=64, text_dim=256, text_layers=4,
        text_heads=4, image_size=128, patch_size=16, vision_dim=256, vision_layers=6,
        vision_heads=4,
    ),
)  # fmt: skip
