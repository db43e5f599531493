"""The interface every sampler shares: choose timesteps, then step from one to the next.

A sampler walks a descending list of the schedule's training timesteps t_{n-1} > ... > t_0 and
then to the clean data, where abar = 1 ("t = -1"). ``step`` gets the model's output at (x, t) and
returns x at the next timestep of the list. Coefficients are float64 Python numbers, so the
arithmetic on x keeps x's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dalle.diffusion.noise import Generators, randn
from dalle.diffusion.predictions import Prediction, check_prediction, epsilon_from, x0_from
from dalle.diffusion.schedules import NoiseSchedule, spaced_timesteps


class Sampler:
    """Base class: holds the schedule, the chosen timesteps and the prediction type."""

    descending = True  # the DDIM inverter walks the other way

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction: Prediction = "epsilon",
        clip_x0: float | None = None,
    ) -> None:
        if clip_x0 is not None and not clip_x0 > 0:
            raise ValueError(f"clip_x0 must be positive or None, got {clip_x0}")
        self.schedule = schedule
        self.prediction = check_prediction(prediction)
        self.clip_x0 = clip_x0
        self.timesteps = torch.empty(0, dtype=torch.long)
        self._index: dict[int, int] = {}
        self._abar: list[float] = []  # abar at each of self.timesteps (float64 values)
        self.reset()

    def set_timesteps(self, num_steps: int, spacing: float = 1.0) -> None:
        """Choose ``num_steps`` training timesteps, the first and last included: evenly spaced
        (``spacing`` 1), or packed at the noisy end (below 1) or the clean end (above 1), as in
        :func:`dalle.diffusion.schedules.spaced_timesteps`."""
        pos = spaced_timesteps(self.schedule.num_steps, num_steps, spacing)
        if self.descending:
            pos = pos.flip(0)
        self.timesteps = self.schedule.timesteps[pos]  # (n,) long, training scale
        self._abar = self.schedule.alphas_cumprod[pos].tolist()
        self._index = {t: i for i, t in enumerate(self.timesteps.tolist())}
        self.reset()

    def reset(self) -> None:
        """Forget any state kept between steps (multistep samplers override this)."""

    def init_noise(
        self,
        shape: Sequence[int],
        generator: Generators = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """x_T ~ N(0, I) of ``shape``, drawn per row like the noise in :meth:`step`."""
        return randn(shape, generator, dtype, device)

    def step(
        self, model_output: torch.Tensor, t: int, x: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        """x at the timestep after ``t`` in :attr:`timesteps` (the clean data after the last)."""
        raise NotImplementedError

    # helpers for subclasses

    def _lookup(
        self, t: int, model_output: torch.Tensor, x: torch.Tensor
    ) -> tuple[int, float, float]:
        """(index of t, abar at t, abar at the next timestep: 1.0 after the last step)."""
        if not self._index:
            raise ValueError("call set_timesteps before step")
        if t not in self._index:
            raise ValueError(f"t = {t} is not one of the sampler's timesteps")
        if model_output.shape != x.shape:
            raise ValueError(
                f"model output shape {tuple(model_output.shape)} differs from x {tuple(x.shape)}"
            )
        i = self._index[t]
        abar_next = self._abar[i + 1] if i + 1 < len(self._abar) else 1.0
        return i, self._abar[i], abar_next

    def _rows(self, abar: float, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), abar, dtype=torch.float64)

    def _x0(self, model_output: torch.Tensor, x: torch.Tensor, abar: float) -> torch.Tensor:
        """The predicted x0, clipped to [-clip_x0, clip_x0] if asked."""
        x0 = x0_from(model_output, x, self._rows(abar, x), self.prediction)
        return x0 if self.clip_x0 is None else x0.clamp(-self.clip_x0, self.clip_x0)

    def _epsilon(self, model_output: torch.Tensor, x: torch.Tensor, abar: float) -> torch.Tensor:
        """The predicted noise; with ``clip_x0``, the noise consistent with the clipped x0,
        (x_t - sqrt(abar) x0) / sqrt(1 - abar), as a step that reads the clipped x0 implies."""
        if self.clip_x0 is None:
            return epsilon_from(model_output, x, self._rows(abar, x), self.prediction)
        return epsilon_from(self._x0(model_output, x, abar), x, self._rows(abar, x), "x0")
