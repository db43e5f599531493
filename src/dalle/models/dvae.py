"""The discrete VAE of DALL·E (Ramesh et al. 2021, section 2.1 and appendix A).

The encoder maps an image to logits over ``num_tokens`` codebook entries per grid cell; training
relaxes the categorical with Gumbel-softmax, inference takes the argmax. The decoder reads a
(soft) one-hot grid and predicts logit-Laplace parameters for every pixel (6 channels for RGB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dalle.config import Config
from dalle.models import logit_laplace
from dalle.models.pretrained import PretrainedMixin


@dataclass(frozen=True)
class DVAEConfig(Config):
    image_size: int = 64
    channels: int = 3
    num_tokens: int = 512  # K, the codebook size
    hidden_dim: int = 64  # n_hid: width of the first group; group g is hidden_dim * 2**g wide
    num_groups: int = 4  # the grid is image_size / 2**(num_groups - 1)
    blocks_per_group: int = 1
    codebook_dim: int = 256  # width of the decoder's 1x1 input conv (the "codebook" embedding)
    eps: float = logit_laplace.EPS  # pixels live in (eps, 1 - eps) for the likelihood
    min_log_scale: float = -3.0  # floor of log b for the logit-Laplace scale

    def __post_init__(self) -> None:
        self.require(positive=("image_size", "channels", "num_tokens", "hidden_dim", "num_groups",
                               "blocks_per_group", "codebook_dim", "eps"))  # fmt: skip
        if not self.eps < 0.5:
            raise ValueError(
                f"eps must be below 0.5 (pixels live in (eps, 1 - eps)), got {self.eps}"
            )
        if self.hidden_dim % 4:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be a multiple of 4 (its blocks "
                             "run at a quarter of the width)")  # fmt: skip
        factor = 2 ** (self.num_groups - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**(num_groups - 1) = {factor}"
            )

    @property
    def grid_size(self) -> int:
        return self.image_size // 2 ** (self.num_groups - 1)

    def group_widths(self) -> list[int]:
        return [self.hidden_dim * 2**g for g in range(self.num_groups)]


def _skip(dim_in: int, dim_out: int) -> nn.Module:
    """The identity path of a residual block: a 1x1 conv only where the width changes."""
    return nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()


class EncoderBlock(nn.Module):
    """Bottleneck residual block: 3x3, 3x3, 3x3, 1x1 convs at a quarter of the width."""

    def __init__(self, dim_in: int, dim_out: int, post_gain: float) -> None:
        super().__init__()
        hidden = dim_out // 4
        self.skip = _skip(dim_in, dim_out)
        self.res = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim_in, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, dim_out, 1),
        )  # fmt: skip
        self.post_gain = post_gain  # small residual scale keeps early training stable (A.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(self.skip(x), self.res(x), alpha=self.post_gain)


class DecoderBlock(nn.Module):
    """Mirror of :class:`EncoderBlock`: 1x1, 3x3, 3x3, 3x3, optionally after a 2x upsampling.

    With ``upsample`` the block reads the coarser grid: the skip's 1x1 conv and the residual
    branch's ReLU + 1x1 conv commute with nearest-neighbour upsampling, so they run before it at a
    quarter of the cost and give the same result as upsampling first.
    """

    def __init__(self, dim_in: int, dim_out: int, post_gain: float, upsample: bool) -> None:
        super().__init__()
        hidden = dim_out // 4
        self.skip = _skip(dim_in, dim_out)
        self.pre = nn.Sequential(nn.ReLU(), nn.Conv2d(dim_in, hidden, 1))
        self.up = nn.Upsample(scale_factor=2, mode="nearest") if upsample else nn.Identity()
        self.res = nn.Sequential(
            nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, dim_out, 3, padding=1),
        )  # fmt: skip
        self.post_gain = post_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(
            self.up(self.skip(x)), self.res(self.up(self.pre(x))), alpha=self.post_gain
        )


class Encoder(nn.Module):
    def __init__(self, config: DVAEConfig) -> None:
        super().__init__()
        widths = config.group_widths()
        gain = 1 / (config.num_groups * config.blocks_per_group) ** 2
        layers: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 7, padding=3)]
        dim = widths[0]
        for g, width in enumerate(widths):
            for _ in range(config.blocks_per_group):
                layers.append(EncoderBlock(dim, width, gain))
                dim = width
            if g < config.num_groups - 1:
                layers.append(nn.MaxPool2d(2))
        # a 1x1 conv right before the relaxation (A.2: small receptive field there generalises)
        layers += [nn.ReLU(), nn.Conv2d(dim, config.num_tokens, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, K, h, w) logits


class Decoder(nn.Module):
    def __init__(self, config: DVAEConfig) -> None:
        super().__init__()
        widths = config.group_widths()[::-1]
        gain = 1 / (config.num_groups * config.blocks_per_group) ** 2
        # a 1x1 conv right after the relaxation; on one-hot tokens it is an embedding lookup
        self.codebook = nn.Conv2d(config.num_tokens, config.codebook_dim, 1)
        blocks: list[nn.Module] = []
        dim = config.codebook_dim
        for g, width in enumerate(widths):
            for b in range(config.blocks_per_group):
                blocks.append(DecoderBlock(dim, width, gain, upsample=g > 0 and b == 0))
                dim = width
        self.blocks = nn.Sequential(*blocks)
        # the logit-Laplace head stays in float32 under autocast: bf16 cannot place mu finely
        # enough (its spacing near logit(0.1) = -2.2 is 1/64, wider than an 8-bit pixel's bin)
        self.head = nn.Conv2d(dim, 2 * config.channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.project(self.codebook(z))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) token ids -> (B, codebook_dim, h, w): the 1x1 conv of their one-hots."""
        table = self.codebook.weight[:, :, 0, 0].t()  # (K, codebook_dim)
        return (F.embedding(tokens, table) + self.codebook.bias).permute(0, 3, 1, 2)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """(B, codebook_dim, h, w) -> (B, 2C, H, W): logit-Laplace mu and log b."""
        h = F.relu(self.blocks(h))
        with torch.autocast(h.device.type, enabled=False):
            return self.head(h.float())


class DiscreteVAE(PretrainedMixin, nn.Module):
    config_class = DVAEConfig

    def __init__(self, config: DVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(
        self,
        images: torch.Tensor,
        temperature: float,
        generator: torch.Generator | None = None,
        uniform: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The relaxed pass of training: (B, C, H, W) images in [0, 1] -> codebook logits
        (B, K, h, w) and the logit-Laplace ``(mu, log_b)`` of a Gumbel-softmax sample of them
        (its uniform noise drawn from ``generator``, or given as ``uniform``)."""
        logits = self.logits(images)
        z = gumbel_softmax(logits, temperature, generator, uniform)
        return (logits, *self.decode_soft(z.to(logits.dtype)))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, K, h, w) codebook logits."""
        return self.encoder(logit_laplace.map_pixels(images, self.config.eps))

    def decode_soft(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A (B, K, h, w) relaxed one-hot grid -> logit-Laplace ``(mu, log_b)``, each (B, C, H, W)."""
        return self._split(self.decoder(z))

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_b = params.float().chunk(2, dim=1)
        # b has a floor: on exactly-valued pixels (flat synthetic colours) the density is
        # otherwise unbounded as b -> 0 and training diverges.
        return mu, log_b.clamp(min=self.config.min_log_scale)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, h, w) token ids (argmax, no Gumbel noise)."""
        return self.logits(images).argmax(dim=1)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) token ids -> (B, C, H, W) images in [0, 1]."""
        low, high = torch.aminmax(tokens)
        if low < 0 or high >= self.config.num_tokens:
            raise ValueError(f"token ids must lie in [0, {self.config.num_tokens})")
        mu, _ = self._split(self.decoder.project(self.decoder.embed(tokens)))
        return logit_laplace.mean_image(mu, self.config.eps)


def gumbel_softmax(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
    uniform: torch.Tensor | None = None,
) -> torch.Tensor:
    """Relaxed one-hot sample over dim 1 (Jang et al. 2017; Maddison et al. 2017), from
    ``uniform`` noise of the logits' shape if given (data-parallel training draws the global
    batch's noise and gives each process its slice), else drawn from ``generator``."""
    # uniform + two logs: torch's exponential_ sampler is several times slower on the CPU
    if uniform is None:
        uniform = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    u = uniform.to(logits.device)
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    return F.softmax((logits.float() + gumbel) / temperature, dim=1)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(q || uniform over K) per grid cell, (B, h, w): sum_k q log q + log K."""
    log_q = F.log_softmax(logits.float(), dim=1)
    return (log_q.exp() * log_q).sum(dim=1) + math.log(logits.shape[1])


def elbo_loss(
    vae: DiscreteVAE,
    images: torch.Tensor,
    temperature: float,
    kl_weight: float,
    generator: torch.Generator | None = None,
    nll_weight: float = 1.0,
    sq_weight: float = 0.0,
    config: DVAEConfig | None = None,
    uniform: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The negative ELBO with weighted KL; every term is a sum divided by the number of pixels.

    ``loss = nll_weight * nll + kl_weight * kl + sq_weight * sq``. The paper's objective is the
    default (``nll_weight`` 1, ``sq_weight`` 0); ``sq`` is the squared error of the decoded
    median ``sigmoid(mu)`` against the mapped pixels, an optional auxiliary term (see
    docs/dvae.md for why the shapes recipe uses it). ``vae`` may be wrapped (DDP), in which case
    ``config`` gives its configuration.
    """
    eps = (config if config is not None else vae.config).eps
    logits, mu, log_b = vae(images, temperature, generator, uniform)
    target = logit_laplace.map_pixels(images.float(), eps)
    pixels = images.shape[-2] * images.shape[-1]  # normalised per pixel (channels summed)
    grad = torch.is_grad_enabled()
    # a term with weight 0 is still reported, but builds no graph for the backward pass
    with torch.set_grad_enabled(grad and nll_weight != 0):
        nll = -logit_laplace.log_prob(target, mu, log_b).flatten(1).sum(1).mean() / pixels
    kl = kl_to_uniform(logits).flatten(1).sum(1).mean() / pixels
    median = torch.sigmoid(mu)
    with torch.set_grad_enabled(grad and sq_weight != 0):
        sq = (median - target).square().flatten(1).sum(1).mean() / pixels
    loss = nll_weight * nll + kl_weight * kl + sq_weight * sq
    with torch.no_grad():
        mse = F.mse_loss(logit_laplace.unmap_pixels(median, eps), images.float())
    return {"loss": loss, "nll": nll, "kl": kl, "sq": sq, "mse": mse, "logits": logits}


DVAEConfig.register_preset(
    "shapes",
    DVAEConfig(image_size=64, num_tokens=256, hidden_dim=32, num_groups=3, codebook_dim=256),
)
# Ramesh et al. 2021: 256 x 256 -> 32 x 32 tokens, K = 8192, n_hid 256, 2 blocks per group.
DVAEConfig.register_preset(
    "dvae-paper",
    DVAEConfig(
        image_size=256, num_tokens=8192, hidden_dim=256, num_groups=4, blocks_per_group=2,
        codebook_dim=128,
    ),
)  # fmt: skip
# A few-second model for tests and smoke runs.
DVAEConfig.register_preset(
    "dvae-tiny",
    DVAEConfig(image_size=16, num_tokens=32, hidden_dim=8, num_groups=2, codebook_dim=16),
)
# CelebA at 128 x 128 (docs/celeba.md): 16 x 16 tokens of a 1,024 codebook.
DVAEConfig.register_preset(
    "celeba128",
    DVAEConfig(image_size=128, num_tokens=1024, hidden_dim=64, num_groups=4, codebook_dim=256),
)
