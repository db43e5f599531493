"""The logit-Laplace likelihood of the DALL·E dVAE (Ramesh et al. 2021, section A.3).

Pixels are squeezed into (eps, 1 - eps) so the logit stays finite; the decoder predicts a location
``mu`` and log-scale ``log_b`` per channel for the logit of each pixel.
"""

from __future__ import annotations

import math

import torch

EPS = 0.1


def map_pixels(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """[0, 1] -> [eps, 1 - eps]."""
    return (1 - 2 * eps) * x + eps


def unmap_pixels(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """[eps, 1 - eps] -> [0, 1], clamped."""
    return ((x - eps) / (1 - 2 * eps)).clamp(0, 1)


def log_prob(x: torch.Tensor, mu: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """Element-wise log density of mapped pixels ``x`` in (0, 1):

    log p(x | mu, b) = -log(2 b) - log x - log(1 - x) - |logit(x) - mu| / b
    """
    logit = torch.log(x) - torch.log1p(-x)
    return (
        -(math.log(2.0) + log_b)
        - torch.log(x)
        - torch.log1p(-x)
        - (logit - mu).abs() * torch.exp(-log_b)
    )


def mean_image(mu: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The reconstruction in [0, 1]: sigmoid of the location, unmapped."""
    return unmap_pixels(torch.sigmoid(mu), eps)
