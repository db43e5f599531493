"""Ancestral DDPM sampling over a respaced schedule (Ho et al. 2020; Nichol & Dhariwal 2021).

Between consecutive chosen timesteps t > s the respaced step has beta = 1 - abar_t / abar_s and
x_s ~ q(x_s | x_t, x0_hat), the Gaussian posterior (Ho et al. 2020, eqs. 6-7) with x0 replaced by
the model's estimate. This is how unCLIP samples its prior and decoder (250 / 27 / 15 steps).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from dalle.diffusion.base import Sampler
from dalle.diffusion.noise import Generators, randn
from dalle.diffusion.predictions import Prediction
from dalle.diffusion.schedules import NoiseSchedule

Variance = Literal["fixed_small", "fixed_large"]


class DDPMSampler(Sampler):
    """Ancestral sampler; ``variance`` is "fixed_small" (beta tilde) or "fixed_large" (beta)."""

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "epsilon",
        variance: Variance = "fixed_small",
        clip_x0: float | None = None,
    ) -> None:
        super().__init__(schedule, prediction, clip_x0)
        if variance not in ("fixed_small", "fixed_large"):
            raise ValueError(f"variance must be 'fixed_small' or 'fixed_large', got {variance!r}")
        self.variance = variance

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """One draw from the posterior q(x_s | x_t, x0_hat); the last step returns its mean."""
        _, abar_t, abar_s = self._lookup(t, model_output, x)
        x0 = self._x0(model_output, x, abar_t)
        beta = 1 - abar_t / abar_s  # respaced beta_t
        # posterior mean (eq. 7): c0 x0 + ct x_t
        c0 = math.sqrt(abar_s) * beta / (1 - abar_t)
        ct = math.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t)
        mean = c0 * x0 + ct * x
        if abar_s == 1.0:  # last step: no noise (beta tilde is 0 here anyway)
            return mean
        var = beta * (1 - abar_s) / (1 - abar_t) if self.variance == "fixed_small" else beta
        return mean + math.sqrt(var) * randn(x.shape, generator, x.dtype, x.device)
