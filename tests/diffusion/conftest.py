"""Data with exactly known optimal denoisers, used as the "model" in sampler tests.

For x0 ~ N(mu, diag(s^2)) and x_t = sqrt(a) x0 + sqrt(1 - a) eps (a = abar_t), per dimension
    E[x0 | x_t] = mu + sqrt(a) s^2 / (a s^2 + 1 - a) (x_t - sqrt(a) mu),
and the probability-flow ODE keeps the standardised value z = (x_t - sqrt(a) mu) / sd_t fixed
(sd_t^2 = a s^2 + 1 - a), so its exact solution from level T is known too. For a mixture,
E[x0 | x_t] = sum_k r_k(x_t) E_k[x0 | x_t] with posterior responsibilities r_k. E[eps | x_t] and
E[v | x_t] follow linearly from E[x0 | x_t].
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from dalle.diffusion import NoiseSchedule
from dalle.diffusion.predictions import target_from

F64 = torch.float64


class GaussianData:
    """N(mu, diag(s^2)) in a few dimensions."""

    def __init__(self, mu: list[float], s: list[float]) -> None:
        self.mu = torch.tensor(mu, dtype=F64)  # (D,)
        self.s = torch.tensor(s, dtype=F64)  # (D,)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.mu + self.s * torch.randn(n, len(self.mu), generator=generator, dtype=F64)

    def posterior_mean(self, x: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """(B, D) E[x0 | x_t] for (B, D) x_t and (B,) abar."""
        a = abar[:, None]
        var = self.s**2
        return self.mu + a.sqrt() * var / (a * var + 1 - a) * (x - a.sqrt() * self.mu)

    def flow(self, x_T: torch.Tensor, abar_T: float) -> torch.Tensor:
        """The exact probability-flow ODE solution at the data for x_T at level abar_T."""
        sd_T = (abar_T * self.s**2 + 1 - abar_T).sqrt()
        return self.mu + self.s * (x_T - abar_T**0.5 * self.mu) / sd_T


class MixtureData:
    """sum_k w_k N(means_k, diag(stds_k^2))."""

    def __init__(self, weights: list[float], means: list[list[float]], stds: list[list[float]]):
        self.w = torch.tensor(weights, dtype=F64)  # (K,)
        self.means = torch.tensor(means, dtype=F64)  # (K, D)
        self.stds = torch.tensor(stds, dtype=F64)  # (K, D)

    def posterior_mean(self, x: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        a = abar[:, None, None]  # (B, 1, 1)
        var = self.stds**2  # (K, D)
        var_t = a * var + 1 - a  # (B, K, D): per-component marginal variance of x_t
        m_t = a.sqrt() * self.means  # (B, K, D)
        diff = x[:, None] - m_t  # (B, K, D)
        log_p = -0.5 * (diff**2 / var_t + var_t.log()).sum(-1) + self.w.log()  # (B, K)
        resp = log_p.softmax(-1)  # posterior responsibilities r_k(x_t)
        means_k = self.means + a.sqrt() * var / var_t * diff  # (B, K, D) E_k[x0 | x_t]
        return (resp[..., None] * means_k).sum(1)


ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def optimal_model(data, schedule: NoiseSchedule, prediction: str) -> ModelFn:
    """model_fn(x_t, t) returning E[target | x_t] for the given prediction type."""

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = schedule.alphas_cumprod_at(t)  # (B,)
        x0 = data.posterior_mean(x.double(), abar)
        eps = (x.double() - abar.sqrt()[:, None] * x0) / (1 - abar).sqrt()[:, None]
        return target_from(x0, eps, abar, prediction).to(x.dtype)

    return model_fn


@pytest.fixture(scope="session")
def gaussian() -> GaussianData:
    # a sharp, a unit and a wide dimension, with different means
    return GaussianData(mu=[1.5, -0.5, 0.0], s=[0.3, 1.0, 2.0])


@pytest.fixture(scope="session")
def mixture() -> MixtureData:
    # two modes 4 apart in dim 0 (30% / 70%), different means and spreads in dim 1
    return MixtureData(
        weights=[0.3, 0.7], means=[[-2.0, 0.5], [2.0, -1.0]], stds=[[0.5, 0.8], [0.7, 0.4]]
    )


@pytest.fixture(scope="session")
def make_model() -> Callable[..., ModelFn]:
    return optimal_model
