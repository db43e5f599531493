"""The U-Net of unCLIP's decoder and upsamplers (Ramesh et al. 2022, section 2.1 and appendix C),
in the ADM / GLIDE style (Dhariwal & Nichol 2021; Nichol et al. 2021).

Residual blocks take the timestep embedding as a scale and shift of their second normalisation;
self-attention blocks at the resolutions in ``attention_resolutions`` also attend to a context of
tokens. The decoder's conditioning is the paper's: the CLIP image embedding is projected and
added to the timestep embedding, and projected into ``clip_tokens`` extra context tokens placed
before the caption's token encodings from the decoder's own small text transformer. For
classifier-free guidance the CLIP embedding and the caption are each replaced, per sample, by
learned null ones. The upsampler is the same class without attention, text or CLIP: the
low-resolution image is upsampled to the output size and concatenated to the noisy input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dalle.config import Config
from dalle.diffusion.predictions import PREDICTIONS
from dalle.diffusion.schedules import SCHEDULES
from dalle.models.layers import Block, built_like, timestep_embedding
from dalle.models.pretrained import PretrainedMixin


@dataclass(frozen=True)
class UNetConfig(Config):
    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3  # a fixed variance: the model predicts eps or v only
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16, 8)
    head_dim: int = 32
    dropout: float = 0.0
    num_groups: int = 32  # GroupNorm groups (at most the channel count)
    # diffusion
    num_timesteps: int = 1000
    schedule: str = "cosine"
    prediction: str = "v"  # "epsilon" or "v" (dalle.diffusion)
    # conditioning (0 switches each off)
    embed_dim: int = 0  # the CLIP embedding's width
    clip_tokens: int = 4
    num_text_tokens: int = 0  # the caption tokenizer's vocabulary
    text_seq_len: int = 0
    text_dim: int = 128
    text_layers: int = 2
    text_heads: int = 4
    # GLIDE: the caption's last token encoding (its end-of-text) projected and added to the
    # timestep embedding too, so that every residual block reads the caption, not only attention
    text_time: bool = False
    low_res_channels: int = 0  # upsampler: channels of the low-resolution image
    low_res_size: int = 0  # upsampler: the size it upsamples from (the decoder's)
    inpaint: bool = False  # GLIDE's inpainting input: the known pixels and a mask, 4 channels

    def __post_init__(self) -> None:
        self.require(
            positive=("image_size", "in_channels", "out_channels", "base_channels",
                      "num_res_blocks", "head_dim", "num_groups", "num_timesteps", "clip_tokens",
                      "text_dim", "text_layers", "text_heads"),
            non_negative=("embed_dim", "num_text_tokens", "text_seq_len", "low_res_channels",
                          "low_res_size"),
            fractions=("dropout",),
        )  # fmt: skip
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"channel_mults must be positive, got {self.channel_mults}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.prediction not in PREDICTIONS:
            raise ValueError(
                f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}"
            )
        levels = [self.image_size // 2**i for i in range(len(self.channel_mults))]
        widths = [self.base_channels * m for m in self.channel_mults]
        bad = sorted({w for w in widths if w % min(self.num_groups, w)})
        if bad:
            raise ValueError(f"channel widths {bad} do not split into num_groups {self.num_groups}")
        attended = [
            w for w, r in zip(widths, levels, strict=True) if r in self.attention_resolutions
        ]
        attended += widths[-1:] if self.attention_resolutions else []  # the middle block's
        bad = sorted({w for w in attended if w >= self.head_dim and w % self.head_dim})
        if bad:
            raise ValueError(f"attention widths {bad} do not split into heads of {self.head_dim}")
        if self.image_size % 2 ** (len(self.channel_mults) - 1):
            raise ValueError(f"image_size {self.image_size} does not halve {len(levels) - 1} times")
        unknown = set(self.attention_resolutions) - set(levels)
        if unknown:
            raise ValueError(f"attention_resolutions {sorted(unknown)} are not levels {levels}")
        if self.text_time and not self.has_text:
            raise ValueError("text_time needs a caption (text_seq_len and num_text_tokens)")
        if self.low_res_channels and not 0 < self.low_res_size < self.image_size:
            raise ValueError(
                f"an upsampler's low_res_size must lie between 0 and its image_size "
                f"{self.image_size}, got {self.low_res_size}"
            )

    @property
    def time_dim(self) -> int:
        return 4 * self.base_channels

    @property
    def has_text(self) -> bool:
        return self.text_seq_len > 0 and self.num_text_tokens > 0

    @property
    def context_dim(self) -> int:
        return self.text_dim


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; GroupNorm scaled by (1 + s) and shifted by b from the timestep
    embedding (ADM's "scale-shift norm"), SiLU, dropout, conv (zero-initialised); plus the input."""

    def __init__(self, cin: int, cout: int, time_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, 2 * cout)
        self.norm2, self.conv2 = _norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.dropout(F.silu(h)))


class AttentionBlock(nn.Module):
    """Self-attention over the image's positions, whose keys and values also include the context
    tokens (GLIDE): (B, C, H, W) + (B, L, context_dim) -> (B, C, H, W)."""

    def __init__(self, channels: int, head_dim: int, groups: int, context_dim: int) -> None:
        super().__init__()
        self.heads = max(channels // head_dim, 1)
        self.norm = _norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.context_kv = nn.Linear(context_dim, 2 * channels) if context_dim else None
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None
    ) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        mask = None
        if context is not None and self.context_kv is not None:
            ck, cv = self.context_kv(context).chunk(2, dim=-1)  # (B, L, C)
            k, v = torch.cat([ck, k], dim=1), torch.cat([cv, v], dim=1)
            if context_mask is not None:
                image = context_mask.new_ones(b, h * w)
                mask = torch.cat([context_mask, image], dim=1)[:, None, None, :]  # (B,1,1,L+HW)

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, n, C) -> (B, heads, n, C / heads)
            return t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        y = attention(heads(q), heads(k), heads(v), mask)
        y = self.out(y.transpose(1, 2).reshape(b, h * w, c))
        return x + y.transpose(1, 2).reshape(b, c, h, w)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Softmax attention, (B, heads, n, d) queries over (B, heads, m, d) keys and values, by
    ``scaled_dot_product_attention`` on every device: its CPU kernel keeps the softmax in
    float32 under bf16 autocast, and measured (2026-12-05, Intel Xeon with AMX, decoder preset,
    batch 32) 15 % faster than the two matrix products in fp32 training, 13 % faster in bf16
    sampling and 7 % slower in bf16 training (docs/unclip.md).
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class TextEncoder(nn.Module):
    """The decoder's own small causal text transformer: (B, T) ids -> (B, T, text_dim)."""

    def __init__(self, c: UNetConfig) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(c.num_text_tokens, c.text_dim)
        self.pos_emb = nn.Parameter(torch.randn(c.text_seq_len, c.text_dim) * 0.01)
        self.blocks = nn.ModuleList(
            Block(c.text_dim, c.text_heads, c.text_dim // c.text_heads, act="gelu")
            for _ in range(c.text_layers)
        )
        self.ln = nn.LayerNorm(c.text_dim)
        causal = torch.ones(c.text_seq_len, c.text_seq_len, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        x = self.token_emb(text) + self.pos_emb[: text.shape[1]]
        mask = self.causal[: text.shape[1], : text.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x)


class UNet(PretrainedMixin, nn.Module):
    config_class = UNetConfig

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        c = self.config = config
        g, td = c.num_groups, c.time_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(c.base_channels, td), nn.SiLU(), nn.Linear(td, td)
        )  # fmt: skip
        context_dim = 0
        if c.embed_dim:
            self.clip_time = nn.Linear(c.embed_dim, td)
            self.clip_context = nn.Linear(c.embed_dim, c.clip_tokens * c.context_dim)
            self.null_clip = nn.Parameter(torch.zeros(c.embed_dim))
            context_dim = c.context_dim
        if c.has_text:
            self.text = TextEncoder(c)
            self.null_text = nn.Parameter(torch.zeros(c.text_seq_len, c.text_dim))
            context_dim = c.context_dim
            if c.text_time:
                self.text_time = nn.Linear(c.text_dim, td)
                nn.init.zeros_(self.text_time.weight)  # starts as a decoder without it
                nn.init.zeros_(self.text_time.bias)
        inputs = c.in_channels + c.low_res_channels + (c.in_channels + 1 if c.inpaint else 0)
        self.input = nn.Conv2d(inputs, c.base_channels, 3, padding=1)
        widths, ch, size = [c.base_channels], c.base_channels, c.image_size
        self.down = nn.ModuleList()
        for level, mult in enumerate(c.channel_mults):
            for _ in range(c.num_res_blocks):
                layer = nn.ModuleList([ResBlock(ch, c.base_channels * mult, td, g, c.dropout)])
                ch = c.base_channels * mult
                if size in c.attention_resolutions:
                    layer.append(AttentionBlock(ch, c.head_dim, g, context_dim))
                self.down.append(layer)
                widths.append(ch)
            if level < len(c.channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                widths.append(ch)
                size //= 2
        middle_attention = (
            [AttentionBlock(ch, c.head_dim, g, context_dim)] if c.attention_resolutions else []
        )  # the upsampler has no attention anywhere
        self.middle = nn.ModuleList(
            [ResBlock(ch, ch, td, g, c.dropout), *middle_attention,
             ResBlock(ch, ch, td, g, c.dropout)]
        )  # fmt: skip
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mults))):
            for i in range(c.num_res_blocks + 1):
                layer = nn.ModuleList(
                    [ResBlock(ch + widths.pop(), c.base_channels * mult, td, g, c.dropout)]
                )
                ch = c.base_channels * mult
                if size in c.attention_resolutions:
                    layer.append(AttentionBlock(ch, c.head_dim, g, context_dim))
                if level > 0 and i == c.num_res_blocks:
                    layer.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    layer.append(nn.Conv2d(ch, ch, 3, padding=1))
                    size *= 2
                self.up.append(layer)
        self.out_norm = _norm(ch, g)
        self.out = nn.Conv2d(ch, c.out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def conditioning(
        self,
        t: torch.Tensor,
        clip_embed: torch.Tensor | None,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        keep_clip: torch.Tensor | None,
        keep_text: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The timestep embedding (B, time_dim) and the context tokens (B, L, context_dim) with
        their mask (B, L)."""
        c = self.config
        temb = self.time_mlp(timestep_embedding(t, c.base_channels))
        context, masks = [], []
        if c.embed_dim:
            if clip_embed is None:
                raise ValueError("this U-Net is conditioned on a CLIP image embedding")
            if keep_clip is not None:
                clip_embed = torch.where(keep_clip[:, None], clip_embed, self.null_clip)
            temb = temb + self.clip_time(clip_embed)
            context.append(self.clip_context(clip_embed).view(len(t), c.clip_tokens, -1))
            masks.append(torch.ones(len(t), c.clip_tokens, dtype=torch.bool, device=t.device))
        if c.has_text:
            if text is None or text_mask is None:
                raise ValueError("this U-Net reads a caption: give text ids and their mask")
            encoded = self.text(text)
            if keep_text is not None:
                keep = keep_text[:, None, None]
                encoded = torch.where(keep, encoded, self.null_text.to(encoded.dtype))
                text_mask = text_mask | ~keep_text[:, None]  # the null caption is read in full
            context.append(encoded)
            masks.append(text_mask)
            if c.text_time:  # the encoding at the end-of-text: the last position read
                positions = torch.arange(text_mask.shape[1], device=text_mask.device)
                last = (text_mask * positions).argmax(dim=1)
                rows = torch.arange(len(t), device=text_mask.device)
                temb = temb + self.text_time(encoded[rows, last])
        if not context:
            return temb, None, None
        return temb, torch.cat(context, dim=1), torch.cat(masks, dim=1)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        clip_embed: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        low_res: torch.Tensor | None = None,
        keep_clip: torch.Tensor | None = None,
        keep_text: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        draw: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The prediction (eps or v) for noisy images ``x`` (B, C, S, S) at timesteps ``t`` (B,).

        Decoder: ``clip_embed`` (B, D), ``text`` (B, T) caption ids and ``text_mask`` (B, T) (which
        of them to read, up to the end-of-text); ``keep_clip`` / ``keep_text`` (B,) bool, False
        replacing that sample's CLIP embedding or caption by the learned null one (guidance).
        Upsampler: ``low_res`` (B, C, s, s), upsampled (bilinear) to S and concatenated to ``x``.
        Inpainting U-Net (``config.inpaint``, GLIDE): ``known`` (B, C, S, S) in [-1, 1], the
        image to keep, and ``draw`` (B, 1, S, S), 1 where the model draws anew; the known pixels
        (zero where drawn) and ``draw`` are concatenated to ``x``. Without them everything is
        drawn: plain generation.
        """
        c = self.config
        temb, context, mask = self.conditioning(
            t, clip_embed, text, text_mask, keep_clip, keep_text
        )
        if c.low_res_channels:
            if low_res is None:
                raise ValueError("this upsampler needs the low-resolution image")
            up = F.interpolate(low_res.to(x.dtype), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)  # fmt: skip
            x = torch.cat([x, up], dim=1)
        if c.inpaint:
            if (known is None) != (draw is None):
                raise ValueError("give both the known image and where to draw, or neither")
            if draw is None:
                b, _, h, w = x.shape
                draw = x.new_ones(b, 1, h, w)
                known = x.new_zeros(b, c.in_channels, h, w)
            draw = draw.to(x.dtype)
            x = torch.cat([x, known.to(x.dtype) * (1 - draw), draw], dim=1)
        elif known is not None or draw is not None:
            raise ValueError("this U-Net does not inpaint (its config has inpaint = False)")
        h = self.input(x)
        skips = [h]
        for layer in self.down:
            h = self._run(layer, h, temb, context, mask)
            skips.append(h)
        h = self._run(self.middle, h, temb, context, mask)
        for layer in self.up:
            h = self._run(layer, torch.cat([h, skips.pop()], dim=1), temb, context, mask)
        return self.out(F.silu(self.out_norm(h)))

    @classmethod
    def inpainting_from(cls, plain: UNet) -> UNet:
        """An inpainting U-Net that starts as ``plain``: the same weights, the input layer's
        extra channels (known pixels, mask) zero, so that it predicts what ``plain`` does until
        training teaches it to read them (GLIDE fine-tuned its inpainting model so)."""
        if plain.config.inpaint:
            raise ValueError("this U-Net inpaints already")
        return cls.grown_from(plain, plain.config.replace(inpaint=True))

    @classmethod
    def grown_from(cls, small: UNet, config: UNetConfig) -> UNet:
        """A U-Net of ``config`` that computes what ``small`` computes, to train on from its
        weights: ``config`` may add attention resolutions, caption encoder layers, the caption
        in the timestep embedding (``text_time``) and the inpainting input; every part it adds
        starts at zero output (attention and text layers are residual, the inpainting input's
        channels and ``text_time`` zero). Anything else must match: a clear error otherwise."""
        old = small.config
        grown = old.replace(
            attention_resolutions=config.attention_resolutions, text_layers=config.text_layers,
            text_time=config.text_time, inpaint=config.inpaint,
        )  # fmt: skip
        problems = []
        if not set(old.attention_resolutions) <= set(config.attention_resolutions):
            problems.append(f"attention_resolutions {old.attention_resolutions} -> "
                            f"{config.attention_resolutions} drops some")  # fmt: skip
        if config.text_layers < old.text_layers:
            problems.append(f"text_layers {old.text_layers} -> {config.text_layers}")
        for flag in ("text_time", "inpaint"):
            if getattr(old, flag) and not getattr(config, flag):
                problems.append(f"{flag} True -> False")
        if grown != config:
            problems.append(grown.changes(config))
        if problems:
            raise ValueError(f"cannot grow this U-Net into the given config: {'; '.join(problems)}")
        model = built_like(cls, config, small.input.weight)
        state = model.state_dict()
        for key, value in small.state_dict().items():
            new_key = _grown_key(key, small, model)
            if key == "input.weight" and value.shape != state[new_key].shape:
                extra = state[new_key].shape[1] - value.shape[1]  # the inpainting input's
                value = F.pad(value, (0, 0, 0, 0, 0, extra))
            state[new_key] = value
        for i in range(old.text_layers, config.text_layers if config.has_text else 0):
            # new caption layers: identity
            for name in ("attn.out", "mlp.2"):
                state[f"text.blocks.{i}.{name}.weight"].zero_()
                state[f"text.blocks.{i}.{name}.bias"].zero_()
        model.load_state_dict(state)
        return model

    @staticmethod
    def _run(layer, h, temb, context, mask) -> torch.Tensor:
        for module in layer:
            if isinstance(module, ResBlock):
                h = module(h, temb)
            elif isinstance(module, AttentionBlock):
                h = module(h, context, mask)
            else:
                h = module(h)
        return h


def _grown_key(key: str, small: UNet, grown: UNet) -> str:
    """``small``'s state key under ``grown``'s names: a layer that gained an attention block
    (right after its residual block) shifts the index of the modules after it."""
    parts = key.split(".")
    depth = {"down": 2, "up": 2, "middle": 1}.get(parts[0])
    if depth is None:
        return key
    old_layer, new_layer = getattr(small, parts[0]), getattr(grown, parts[0])
    if depth == 2:
        old_layer, new_layer = old_layer[int(parts[1])], new_layer[int(parts[1])]
    at = int(parts[depth])
    if not isinstance(old_layer[at], AttentionBlock):  # the same place among the others
        at = _non_attention(new_layer)[_non_attention(old_layer).index(at)]
    return ".".join([*parts[:depth], str(at), *parts[depth + 1 :]])


def _non_attention(layer: nn.ModuleList) -> list[int]:
    return [i for i, m in enumerate(layer) if not isinstance(m, AttentionBlock)]


# The shapes world's decoder: 32 x 32 (the paper's 64 x 64 base, at our scale), attention at
# 16 x 16 and 8 x 8 (and in the middle), conditioned on the 128-wide shapes CLIP and the caption
# (24 tokens of a 512 vocabulary; a 4-layer encoder, its end-of-text in the timestep embedding as
# in GLIDE). The first bundled decoder had attention at 8 x 8 only and 2 caption layers, and drew
# 10 % of two-object scenes right (docs/unclip.md); this one grows from it (UNet.grown_from).
UNetConfig.register_preset(
    "shapes-decoder",
    UNetConfig(image_size=32, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
               attention_resolutions=(16, 8), embed_dim=128, num_text_tokens=512,
               text_seq_len=24, text_dim=128, text_layers=4, text_heads=4, text_time=True),
)  # fmt: skip
# The upsampler 32 -> 64: no attention, no text, no CLIP.
UNetConfig.register_preset(
    "shapes-upsampler",
    UNetConfig(image_size=64, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=1,
               attention_resolutions=(), low_res_channels=3, low_res_size=32),
)  # fmt: skip
UNetConfig.register_preset(
    "unet-tiny",
    UNetConfig(image_size=8, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(4,), num_groups=8, embed_dim=16, clip_tokens=2,
               num_text_tokens=50, text_seq_len=6, text_dim=16, text_layers=1, text_heads=2,
               num_timesteps=100),
)  # fmt: skip
# Tiny ones for tests: a decoder at 8 x 8 (widths set from the CLIP it reads) and an
# upsampler 8 -> 16.
UNetConfig.register_preset(
    "decoder-tiny",
    UNetConfig(image_size=8, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(4,), num_groups=8, embed_dim=32, clip_tokens=2,
               num_text_tokens=512, text_seq_len=12, text_dim=16, text_layers=1, text_heads=2,
               num_timesteps=100),
)  # fmt: skip
UNetConfig.register_preset(
    "upsampler-tiny",
    UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(), num_groups=8, low_res_channels=3, low_res_size=8,
               num_timesteps=100),
)  # fmt: skip
# CelebA: the decoder at 64 x 64 (the paper's base size), the upsampler 64 -> 128.
UNetConfig.register_preset(
    "celeba-decoder",
    UNetConfig(image_size=64, base_channels=96, channel_mults=(1, 2, 3, 4), num_res_blocks=2,
               attention_resolutions=(16, 8), embed_dim=256, num_text_tokens=1024,
               text_seq_len=64, text_dim=256, text_layers=2, text_heads=4),
)  # fmt: skip
UNetConfig.register_preset(
    "celeba-upsampler",
    UNetConfig(image_size=128, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=1,
               attention_resolutions=(), low_res_channels=3, low_res_size=64),
)  # fmt: skip
