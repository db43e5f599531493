"""Noise schedules held in float64, and timestep respacing.

A schedule is the sequence beta_0..beta_{N-1}; abar_i = prod_{j<=i} (1 - beta_j) is the signal
kept at step i, x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) eps. A respaced schedule keeps a subset
of the steps with their abar unchanged (Nichol & Dhariwal 2021, sec. 4) and remembers which
timestep of the training schedule each kept step was, so a model trained on all T steps is always
called with its own t values. Every method here takes those original-scale t values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from dalle.diffusion.predictions import (
    Prediction,
    check_prediction,
    epsilon_from,
    noisy_from,
    target_from,
    x0_from,
)

SCHEDULES = ("cosine", "linear")  # the noise schedules a model config may name


def cosine_betas(
    num_train_timesteps: int, s: float = 0.008, max_beta: float = 0.999
) -> torch.Tensor:
    """(T,) float64 betas with abar(t) = f(t) / f(0), f(t) = cos(((t/T + s) / (1 + s)) pi/2)^2.

    Nichol & Dhariwal 2021, eq. 17; beta_i = 1 - abar((i+1)/T) / abar(i/T), clipped at
    ``max_beta`` so the last step does not reach abar = 0 exactly.
    """
    check_positive(num_train_timesteps, "num_train_timesteps")
    t = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def linear_betas(
    num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """(T,) float64 betas rising linearly (Ho et al. 2020).

    ``beta_start`` and ``beta_end`` are given for a 1000-step schedule and scaled by
    1000 / T, as guided-diffusion does, so that abar at the last step stays about the same.
    """
    check_positive(num_train_timesteps, "num_train_timesteps")
    scale = 1000 / num_train_timesteps
    start, end = scale * beta_start, scale * beta_end
    if not 0 < start <= end < 1:
        raise ValueError(
            f"linear betas must satisfy 0 < start <= end < 1 after scaling by 1000/T; "
            f"got {start} .. {end} for T = {num_train_timesteps}"
        )
    return torch.linspace(start, end, num_train_timesteps, dtype=torch.float64)


def check_positive(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return n


def _check_step_counts(num_timesteps: int, num_steps: int) -> None:
    """A ValueError unless both are positive whole numbers and the steps fit in the timesteps."""
    check_positive(num_timesteps, "num_timesteps")
    check_positive(num_steps, "num_steps")
    if num_steps > num_timesteps:
        raise ValueError(f"cannot choose {num_steps} steps out of {num_timesteps}")


def evenly_spaced_timesteps(num_timesteps: int, num_steps: int) -> torch.Tensor:
    """(num_steps,) ascending long indices in [0, num_timesteps), evenly spread.

    Like guided-diffusion's ``space_timesteps`` with a single section: step i is
    round(i (T-1) / (n-1)) (halves rounded up), so 0 and T-1 are always kept. A single step keeps
    only T-1 (sampling then goes from pure noise straight to the predicted x0).
    """
    _check_step_counts(num_timesteps, num_steps)
    if num_steps == 1:
        return torch.tensor([num_timesteps - 1])
    i = torch.arange(num_steps)
    # floor(i (T-1) / (n-1) + 1/2) in integers; the stride is >= 1 so the steps are distinct
    return (2 * i * (num_timesteps - 1) + (num_steps - 1)) // (2 * (num_steps - 1))


def check_spacing(power: float) -> float:
    """``power`` as a float if it is a finite number above 0 (a ValueError otherwise)."""
    ok = isinstance(power, (int, float)) and not isinstance(power, bool)
    if not (ok and math.isfinite(power) and power > 0):
        raise ValueError(f"spacing must be a finite number above 0, got {power!r}")
    return float(power)


def spaced_timesteps(num_timesteps: int, num_steps: int, power: float = 1.0) -> torch.Tensor:
    """(num_steps,) ascending distinct long indices in [0, num_timesteps), step i near
    (T-1) (i / (n-1))^power: 1 is :func:`evenly_spaced_timesteps`; below 1 packs the steps at the
    noisy end (T-1), above 1 at the clean end. 0 and T-1 are always kept.
    """
    power = check_spacing(power)
    if power == 1.0 or num_steps == 1:
        return evenly_spaced_timesteps(num_timesteps, num_steps)
    _check_step_counts(num_timesteps, num_steps)
    i = torch.arange(num_steps)
    frac = (i.double() / (num_steps - 1)) ** power
    raw = torch.floor(frac * (num_timesteps - 1) + 0.5).long()
    # where the curve climbs less than one timestep a step (the noisy end below 1, the clean end
    # above) rounding merges neighbours: step i keeps at least i steps below it and n - 1 - i
    # above, which separates them (the curve is concave or convex, so they merge only at one end)
    return torch.minimum(torch.maximum(raw, i), num_timesteps - num_steps + i)


class NoiseSchedule:
    """A float64 noise schedule over some (or all) of a model's training timesteps.

    Attributes: ``num_train_timesteps`` (T of the model), ``betas`` and ``alphas_cumprod`` (N,)
    float64, ``timesteps`` (N,) ascending long: the training timestep of each step
    (``arange(T)`` unless respaced).
    """

    def __init__(
        self,
        betas: torch.Tensor,
        num_train_timesteps: int | None = None,
        timesteps: torch.Tensor | None = None,
    ) -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.ndim != 1 or betas.numel() == 0:
            raise ValueError(
                f"betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}"
            )
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        n = betas.numel()
        self.num_train_timesteps = check_positive(
            n if num_train_timesteps is None else num_train_timesteps, "num_train_timesteps"
        )
        steps = torch.arange(n) if timesteps is None else torch.as_tensor(timesteps).long().cpu()
        if steps.shape != (n,) or (n > 1 and not bool((steps[1:] > steps[:-1]).all())):
            raise ValueError("timesteps must be one strictly ascending value per beta")
        if steps[0] < 0 or steps[-1] >= self.num_train_timesteps:
            raise ValueError(f"timesteps must lie in [0, {self.num_train_timesteps})")
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)  # abar_i
        self.timesteps = steps

    @classmethod
    def cosine(cls, num_train_timesteps: int = 1000, s: float = 0.008) -> NoiseSchedule:
        """The cosine schedule of Nichol & Dhariwal 2021 (betas clipped at 0.999)."""
        return cls(cosine_betas(num_train_timesteps, s))

    @classmethod
    def linear(
        cls, num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> NoiseSchedule:
        """The linear schedule of Ho et al. 2020, scaled by 1000 / T."""
        return cls(linear_betas(num_train_timesteps, beta_start, beta_end))

    @classmethod
    def from_alphas_cumprod(
        cls,
        alphas_cumprod: torch.Tensor,
        num_train_timesteps: int | None = None,
        timesteps: torch.Tensor | None = None,
    ) -> NoiseSchedule:
        """The schedule with exactly these abar (strictly decreasing, in (0, 1)).

        beta_i = 1 - abar_i / abar_{i-1} (abar_{-1} = 1); ``alphas_cumprod`` is kept as given
        rather than recomputed from the betas, which would lose digits where abar is tiny.
        """
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).detach().cpu()
        if abar.ndim != 1 or abar.numel() == 0:
            raise ValueError("alphas_cumprod must be a non-empty 1-D tensor")
        prev = torch.cat([abar.new_ones(1), abar[:-1]])
        schedule = cls(1 - abar / prev, num_train_timesteps, timesteps)
        schedule.alphas_cumprod = abar.clone()
        return schedule

    @property
    def num_steps(self) -> int:
        return self.betas.numel()

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(num_steps={self.num_steps}, "
            f"num_train_timesteps={self.num_train_timesteps})"
        )

    def positions(self, t: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Where each training timestep in ``t`` sits in this schedule (ValueError if absent)."""
        t = torch.as_tensor(t).cpu()
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"timesteps must be integers, got dtype {t.dtype}")
        t = t.long()
        pos = torch.searchsorted(self.timesteps, t).clamp(max=self.num_steps - 1)
        bad = self.timesteps[pos] != t
        if bool(bad.any()):
            raise ValueError(
                f"timesteps {t[bad].unique().tolist()[:8]} are not steps of this schedule "
                f"({self.num_steps} steps in [0, {self.num_train_timesteps}))"
            )
        return pos

    def alphas_cumprod_at(self, t: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """abar at the training timesteps ``t``, float64, same shape as ``t``."""
        return self.alphas_cumprod[self.positions(t)]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, ...) x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise for (B,) long ``t``."""
        return noisy_from(x0, noise, self.alphas_cumprod_at(t))

    def target(
        self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction: Prediction
    ) -> torch.Tensor:
        """The training target: noise, x0, or v = sqrt(abar) noise - sqrt(1 - abar) x0."""
        check_prediction(prediction)
        return target_from(x0, noise, self.alphas_cumprod_at(t), prediction)

    def predict_x0(
        self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, prediction: Prediction
    ) -> torch.Tensor:
        """The x0 implied by a ``prediction``-type model output at (x_t, t)."""
        check_prediction(prediction)
        return x0_from(model_output, x_t, self.alphas_cumprod_at(t), prediction)

    def predict_epsilon(
        self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, prediction: Prediction
    ) -> torch.Tensor:
        """The noise implied by a ``prediction``-type model output at (x_t, t)."""
        check_prediction(prediction)
        return epsilon_from(model_output, x_t, self.alphas_cumprod_at(t), prediction)

    def respace(self, kept_timesteps: torch.Tensor | Sequence[int]) -> NoiseSchedule:
        """A schedule over the kept training timesteps with the same abar at each.

        beta_i = 1 - abar_i / abar_{i-1} between consecutive kept steps (abar_{-1} = 1).
        ``kept_timesteps`` are training timesteps of this schedule, in any order.
        """
        kept = torch.as_tensor(kept_timesteps)
        if kept.ndim != 1 or kept.numel() == 0:
            raise ValueError("kept_timesteps must be a non-empty 1-D list of timesteps")
        pos = self.positions(kept).unique()  # sorted, duplicates dropped
        return NoiseSchedule.from_alphas_cumprod(
            self.alphas_cumprod[pos], self.num_train_timesteps, self.timesteps[pos]
        )

    def respace_evenly(self, num_steps: int) -> NoiseSchedule:
        """:meth:`respace` onto ``num_steps`` evenly spaced steps (including the first and last)."""
        pos = evenly_spaced_timesteps(self.num_steps, num_steps)
        return self.respace(self.timesteps[pos])
