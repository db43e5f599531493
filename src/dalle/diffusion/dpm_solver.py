"""DPM-Solver++(2M): multistep second-order solver of the probability-flow ODE.

Lu et al. 2022 ("DPM-Solver++", Algorithm 2), in data prediction form. With alpha = sqrt(abar),
sigma = sqrt(1 - abar) and lambda = log(alpha / sigma), one step from s to the next timestep t is
    h = lambda_t - lambda_s,
    x_t = (sigma_t / sigma_s) x_s - alpha_t (exp(-h) - 1) D,
where D = x0_hat(x_s, s) for the first step (first order, = deterministic DDIM) and otherwise
D = (1 + 1/(2r)) x0_hat_s - 1/(2r) x0_hat_prev, r = h_prev / h, using the x0 estimate kept
from the previous step. The last step, to abar = 1 (lambda = +inf), returns x0_hat_s.

The step into the last chosen timestep t_0 = 0 is first order too ("lower order final", as in
diffusers): with evenly spaced t, lambda jumps far more on that step than on the one before (cosine,
20 steps: h = 2.7 after h_prev = 0.6), r is small and the extrapolation 1/(2r) overshoots. On
Gaussian data this makes the 20-step sample's std error 3% instead of 18% in the sharpest dimension.
"""

from __future__ import annotations

import math

import torch

from dalle.diffusion.base import Sampler
from dalle.diffusion.noise import Generators


def _lambda(abar: float) -> float:
    return 0.5 * (math.log(abar) - math.log1p(-abar))  # log(alpha / sigma)


class DPMSolverPP2MSampler(Sampler):
    """Deterministic DPM-Solver++(2M); keeps the previous step's x0 estimate as state."""

    def reset(self) -> None:
        self._prev: tuple[int, float, torch.Tensor] | None = None  # (index, lambda, x0_hat)

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at the next timestep; ``generator`` is unused (the solver is deterministic)."""
        i, abar_s, abar_t = self._lookup(t, model_output, x)
        x0 = self._x0(model_output, x, abar_s)
        lam_s = _lambda(abar_s)
        prev, self._prev = self._prev, (i, lam_s, x0)
        if abar_t == 1.0:  # final step to the data: first order gives x0_hat exactly
            return x0
        lam_t = _lambda(abar_t)
        h = lam_t - lam_s
        d = x0
        # second order from the kept estimate, except into the last timestep t_0 (see above)
        if prev is not None and prev[0] == i - 1 and i + 2 < len(self._abar):
            _, lam_prev, x0_prev = prev
            r = (lam_s - lam_prev) / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        sigma_ratio = math.sqrt((1 - abar_t) / (1 - abar_s))
        return sigma_ratio * x - math.sqrt(abar_t) * math.expm1(-h) * d
