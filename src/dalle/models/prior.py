"""The diffusion prior of unCLIP (Ramesh et al. 2022, section 2.2): a caption's CLIP text
embedding -> a CLIP image embedding.

A decoder-only transformer with a causal mask over the sequence

    [caption token encodings (T); CLIP text embedding; timestep; noised image embedding; query]

whose output at the final query token predicts the clean image embedding (x0, trained with a mean
squared error). Image embeddings are standardised per dimension with a mean and standard
deviation held as buffers (saved with the weights): unit-norm CLIP embeddings have a tiny spread
per dimension, badly scaled for Gaussian diffusion. For classifier-free guidance the caption's
token encodings and text embedding are replaced, per sample, by learned null ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dalle.config import Config
from dalle.diffusion.schedules import SCHEDULES
from dalle.models.layers import Block, timestep_embedding
from dalle.models.pretrained import PretrainedMixin


@dataclass(frozen=True)
class PriorConfig(Config):
    embed_dim: int = 128  # the CLIP embedding space
    text_dim: int = 128  # width of the CLIP text encoder's token encodings
    text_seq_len: int = 24
    dim: int = 256
    num_layers: int = 6
    num_heads: int = 4
    head_dim: int = 64
    ff_mult: int = 4
    num_timesteps: int = 1000  # of the training schedule
    schedule: str = "cosine"  # "cosine" or "linear" (dalle.diffusion.NoiseSchedule)

    def __post_init__(self) -> None:
        self.require(positive=("embed_dim", "text_dim", "text_seq_len", "dim", "num_layers",
                               "num_heads", "head_dim", "ff_mult", "num_timesteps"))  # fmt: skip
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )

    @property
    def seq_len(self) -> int:
        return self.text_seq_len + 4  # text, text embedding, timestep, noised embedding, query


class DiffusionPrior(PretrainedMixin, nn.Module):
    config_class = PriorConfig

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.text_in = nn.Linear(c.text_dim, c.dim)
        self.text_emb_in = nn.Linear(c.embed_dim, c.dim)
        self.image_in = nn.Linear(c.embed_dim, c.dim)
        self.time_mlp = nn.Sequential(nn.Linear(c.dim, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim))
        self.null_text = nn.Parameter(torch.zeros(c.text_seq_len, c.text_dim))  # guidance
        self.null_text_emb = nn.Parameter(torch.zeros(c.embed_dim))
        self.query = nn.Parameter(torch.randn(c.dim) * 0.02)
        self.pos_emb = nn.Parameter(torch.randn(c.seq_len, c.dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(c.dim, c.num_heads, c.head_dim, c.ff_mult, act="gelu")
            for _ in range(c.num_layers)
        )
        self.ln_out = nn.LayerNorm(c.dim)
        self.out = nn.Linear(c.dim, c.embed_dim)
        causal = torch.ones(c.seq_len, c.seq_len, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)
        # per-dimension statistics of the training image embeddings (set before training)
        self.register_buffer("embed_mean", torch.zeros(c.embed_dim))
        self.register_buffer("embed_std", torch.ones(c.embed_dim))

    # -- the standardised space the diffusion runs in ---------------------------------------------
    def set_statistics(self, image_embeds: torch.Tensor) -> None:
        """Standardise by these (N, D) image embeddings' per-dimension mean and std."""
        self.embed_mean.copy_(image_embeds.mean(0))
        self.embed_std.copy_(image_embeds.std(0).clamp_min(1e-6))

    def standardise(self, image_embeds: torch.Tensor) -> torch.Tensor:
        return (image_embeds - self.embed_mean) / self.embed_std

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        """Back to CLIP's space, unit length (CLIP embeddings are compared by cosine)."""
        return F.normalize(x * self.embed_std + self.embed_mean, dim=-1)

    # -- forward ----------------------------------------------------------------------------------
    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        text_tokens: torch.Tensor,
        text_embed: torch.Tensor,
        text_mask: torch.Tensor,
        keep_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The predicted clean (standardised) image embedding, (B, D).

        ``x_t`` (B, D) noised standardised embeddings at timesteps ``t`` (B,); ``text_tokens``
        (B, T, text_dim) the CLIP text encoder's token encodings, ``text_embed`` (B, D) its
        embedding, ``text_mask`` (B, T) which tokens are the caption's (up to its end-of-text);
        ``keep_text`` (B,) bool: False replaces the caption by the learned null one (guidance).
        """
        c = self.config
        b = x_t.shape[0]
        if keep_text is not None:
            keep = keep_text.view(b, 1, 1)
            text_tokens = torch.where(keep, text_tokens, self.null_text.to(text_tokens.dtype))
            text_embed = torch.where(keep[:, 0], text_embed, self.null_text_emb.to(x_t.dtype))
            text_mask = text_mask | ~keep[:, :, 0]  # the null caption is read in full
        time = self.time_mlp(timestep_embedding(t, c.dim).to(x_t.dtype))
        x = torch.cat(
            [
                self.text_in(text_tokens),
                self.text_emb_in(text_embed)[:, None],
                time[:, None],
                self.image_in(x_t)[:, None],
                self.query.to(x_t.dtype).expand(b, 1, -1),
            ],
            dim=1,
        ) + self.pos_emb.to(x_t.dtype)
        # causal, and no query reads the padding after a caption's end
        visible = torch.cat([text_mask, text_mask.new_ones(b, 4)], dim=1)  # (B, L)
        mask = (self.causal[None] & visible[:, None, :])[:, None]  # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, mask)
        return self.out(self.ln_out(x[:, -1]))


# the shapes world: 4 layers of width 256 (the depth of the public port's benchmark case D)
PriorConfig.register_preset("shapes", PriorConfig(num_layers=4))
PriorConfig.register_preset(
    "prior-tiny",
    PriorConfig(embed_dim=16, text_dim=16, text_seq_len=20, dim=32, num_layers=2, num_heads=2,
                head_dim=16, num_timesteps=100),
)  # fmt: skip
# CelebA: widths taken from the celeba128 CLIP when the prior is trained on it.
PriorConfig.register_preset("celeba128", PriorConfig(num_layers=6))
