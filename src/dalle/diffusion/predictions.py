"""What a denoiser predicts, and the exact conversions between the three choices.

With x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, a model may predict the noise eps (Ho et al.
2020), the clean data x0 (as the unCLIP prior does), or the velocity
v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022, eq. 10 with alpha = sqrt(abar),
sigma = sqrt(1 - abar)). Given x_t and abar, any one of them determines the other two.

Every function here takes ``abar`` as a float64 tensor of shape (B,), one value per row; the
coefficients are computed in float64 and only then cast to the data's dtype.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

Prediction = Literal["epsilon", "x0", "v"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)
PREDICTION_TYPES: tuple[str, ...] = get_args(Prediction)


def check_prediction(prediction: str) -> Prediction:
    """``prediction`` itself, or a ValueError naming the allowed types."""
    if prediction not in PREDICTION_TYPES:
        raise ValueError(
            f"unknown prediction type {prediction!r}; expected one of {PREDICTION_TYPES}"
        )
    return prediction  # type: ignore[return-value]


def expand_coef(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) float64 coefficients -> (B, 1, ..., 1) in ``like``'s dtype and device."""
    shape = (coef.shape[0],) + (1,) * (like.ndim - 1)
    return coef.to(device=like.device, dtype=like.dtype).reshape(shape)


def _check_rows(abar: torch.Tensor, *tensors: torch.Tensor) -> None:
    for x in tensors:
        if x.shape != tensors[0].shape:
            raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(tensors[0].shape)}")
    if abar.ndim != 1 or abar.shape[0] != tensors[0].shape[0]:
        raise ValueError(
            f"need one timestep per row: got {tuple(abar.shape)} for a batch of "
            f"{tensors[0].shape[0]}"
        )


def noisy_from(x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (Ho et al. 2020, eq. 4)."""
    _check_rows(abar, x0, noise)
    a, s = expand_coef(abar.sqrt(), x0), expand_coef((1 - abar).sqrt(), x0)
    return a * x0 + s * noise


def target_from(
    x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor, prediction: Prediction
) -> torch.Tensor:
    """The regression target of a model trained to predict ``prediction``."""
    _check_rows(abar, x0, noise)
    check_prediction(prediction)
    if prediction == "epsilon":
        return noise
    if prediction == "x0":
        return x0
    a, s = expand_coef(abar.sqrt(), x0), expand_coef((1 - abar).sqrt(), x0)
    return a * noise - s * x0  # v = alpha eps - sigma x0


def x0_from(
    output: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor, prediction: Prediction
) -> torch.Tensor:
    """The x0 implied by a model's ``output`` at (x_t, abar)."""
    _check_rows(abar, output, x_t)
    check_prediction(prediction)
    if prediction == "x0":
        return output
    if prediction == "epsilon":
        # x0 = (x_t - sigma eps) / alpha
        c_x, c_out = abar.rsqrt(), ((1 - abar) / abar).sqrt()
        return expand_coef(c_x, x_t) * x_t - expand_coef(c_out, x_t) * output
    # x0 = alpha x_t - sigma v  (alpha^2 + sigma^2 = 1)
    return expand_coef(abar.sqrt(), x_t) * x_t - expand_coef((1 - abar).sqrt(), x_t) * output


def epsilon_from(
    output: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor, prediction: Prediction
) -> torch.Tensor:
    """The eps implied by a model's ``output`` at (x_t, abar)."""
    _check_rows(abar, output, x_t)
    check_prediction(prediction)
    if prediction == "epsilon":
        return output
    if prediction == "x0":
        # eps = (x_t - alpha x0) / sigma
        c_x, c_out = (1 - abar).rsqrt(), (abar / (1 - abar)).sqrt()
        return expand_coef(c_x, x_t) * x_t - expand_coef(c_out, x_t) * output
    # eps = sigma x_t + alpha v
    return expand_coef((1 - abar).sqrt(), x_t) * x_t + expand_coef(abar.sqrt(), x_t) * output
