"""DDIM sampling (Song et al. 2021, eq. 12) and its deterministic inversion.

From t to the next timestep s, with x0_hat and eps_hat the model's estimates at (x_t, t):
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)   (eq. 16).
eta = 0 is the deterministic sampler (a first-order solver of the probability-flow ODE); eta = 1
has the DDPM posterior variance.
"""

from __future__ import annotations

import math

import torch

from dalle.diffusion.base import Sampler
from dalle.diffusion.noise import Generators, randn
from dalle.diffusion.predictions import Prediction, epsilon_from
from dalle.diffusion.schedules import NoiseSchedule


class DDIMSampler(Sampler):
    """DDIM with stochasticity ``eta`` in [0, 1] (0: deterministic)."""

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "epsilon",
        eta: float = 0.0,
        clip_x0: float | None = None,
    ) -> None:
        super().__init__(schedule, prediction, clip_x0)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        self.eta = eta

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at the next (less noisy) timestep by eq. 12."""
        _, abar_t, abar_s = self._lookup(t, model_output, x)
        x0 = self._x0(model_output, x, abar_t)
        if self.clip_x0 is None:
            eps = self._epsilon(model_output, x, abar_t)
        else:  # the eps consistent with the clipped x0: (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)
            eps = epsilon_from(x0, x, self._rows(abar_t, x), "x0")
        sigma = self.eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
        out = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            out = out + sigma * randn(x.shape, generator, x.dtype, x.device)
        return out


class DDIMInverter(Sampler):
    """Deterministic DDIM run backwards: clean data -> x at the noisiest chosen timestep.

    :attr:`timesteps` ascend. ``step(model_output, t, x)`` takes x at the previous timestep of the
    list (the clean data, abar = 1, before the first) and the model's output at (x, t), read as
    the noise estimate eps_hat = eps(x, t); it returns
    x_t = sqrt(abar_t) x0_hat + sqrt(1 - abar_t) eps_hat with x0_hat recovered from x at the
    previous level. This is the usual approximation eps(x_t, t) ~ eps(x_prev, t) (exact as the
    steps shrink); :class:`DDIMSampler` (eta = 0) with the same number of steps undoes it.
    """

    descending = False

    def __init__(self, schedule: NoiseSchedule, prediction: Prediction = "epsilon") -> None:
        super().__init__(schedule, prediction)

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at timestep ``t`` from x at the previous (less noisy) one; ``generator`` is unused."""
        i, abar_t, _ = self._lookup(t, model_output, x)
        abar_prev = self._abar[i - 1] if i > 0 else 1.0
        eps = self._epsilon(model_output, x, abar_t)
        # x0_hat = (x_prev - sqrt(1 - abar_prev) eps) / sqrt(abar_prev)
        x0 = (1 / math.sqrt(abar_prev)) * x - math.sqrt((1 - abar_prev) / abar_prev) * eps
        return math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps
