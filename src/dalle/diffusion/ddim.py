"""DDIM sampling (Song et al. 2021, eq. 12) and its deterministic inversion.

From t to the next timestep s, with x0_hat and eps_hat the model's estimates at (x_t, t):
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)   (eq. 16).
eta = 0 is the deterministic sampler (a first-order solver of the probability-flow ODE); eta = 1
has the DDPM posterior variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dalle.diffusion.base import Sampler
from dalle.diffusion.loop import ModelFn
from dalle.diffusion.noise import Generators, randn
from dalle.diffusion.predictions import Prediction
from dalle.diffusion.schedules import NoiseSchedule


class DDIMSampler(Sampler):
    """DDIM with stochasticity ``eta`` in [0, 1] (0: deterministic). With ``eta_below`` (a
    training timestep) the steps from timesteps at or above it are deterministic and ``eta``
    applies to the others: a trajectory that follows x_T's layout through the noisiest part of
    the schedule and varies the rest (variations of an inverted image)."""

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "epsilon",
        eta: float = 0.0,
        clip_x0: float | None = None,
        eta_below: int | None = None,
    ) -> None:
        super().__init__(schedule, prediction, clip_x0)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        self.eta, self.eta_below = eta, eta_below

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at the next (less noisy) timestep by eq. 12."""
        _, abar_t, abar_s = self._lookup(t, model_output, x)
        x0 = self._x0(model_output, x, abar_t)
        eps = self._epsilon(model_output, x, abar_t)  # with clip_x0: the clipped x0's
        eta = self.eta if self.eta_below is None or t < self.eta_below else 0.0
        sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
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
    :meth:`invert` refines each step by fixed-point iteration (eps read again at the x_t found),
    which makes the round trip much closer at the same number of steps. It reads the model's
    eps as it is: solving for a sampler that clips x0 (eps from the clipped x0) converges more
    slowly, and at one refinement round-tripped worse on a toy (docs/editing.md).
    """

    descending = False

    def __init__(self, schedule: NoiseSchedule, prediction: Prediction = "epsilon") -> None:
        super().__init__(schedule, prediction)

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at timestep ``t`` from x at the previous (less noisy) one; ``generator`` is unused."""
        i, abar_t, _ = self._lookup(t, model_output, x)
        return self._advance(x, self._epsilon(model_output, x, abar_t), i)

    def _advance(self, x: torch.Tensor, eps: torch.Tensor, i: int) -> torch.Tensor:
        """x at timestep i from x at timestep i - 1 (the clean data for i = 0), given eps:
        x0_hat = (x_prev - sqrt(1 - abar_prev) eps) / sqrt(abar_prev), then noised to abar_i."""
        abar_t = self._abar[i]
        abar_prev = self._abar[i - 1] if i > 0 else 1.0
        x0 = (1 / math.sqrt(abar_prev)) * x - math.sqrt((1 - abar_prev) / abar_prev) * eps
        return math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps

    @torch.no_grad()
    def invert(
        self, model_fn: ModelFn, x: torch.Tensor, num_steps: int, refine: int = 1,
        on_step: Callable[[int], None] | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """x_T for clean data ``x``: ``num_steps`` inversion steps, each refined ``refine`` times
        by fixed-point iteration: eps is read again at the x_t just found and the step redone
        from x_prev, which converges to the x_t whose DDIM step (eta 0) lands on x_prev exactly
        (``refine`` 0: :meth:`step`'s one-read approximation; each refinement costs one more
        model call per step). ``on_step(i)``, if given, is called as step ``i`` is done."""
        if refine < 0:
            raise ValueError(f"refine must be 0 or more, got {refine}")
        self.set_timesteps(num_steps)
        for i, t in enumerate(self.timesteps.tolist()):
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            x_t = self.step(model_fn(x, t_batch), t, x)
            for _ in range(refine):
                x_t = self._advance(x, self._epsilon(model_fn(x_t, t_batch), x_t, self._abar[i]), i)
            x = x_t
            if on_step is not None:
                on_step(i)
        return x
