"""Diffusion maths without weights: float64 noise schedules and samplers.

Schedules (:class:`NoiseSchedule`) noise data and convert between the three things a model may
predict (eps, x0, v); samplers (:class:`DDPMSampler`, :class:`DDIMSampler`,
:class:`DPMSolverPP2MSampler`, :class:`DDIMInverter`) share ``set_timesteps`` / ``step`` and are
driven by :func:`sample`.
"""

from dalle.diffusion.base import Sampler
from dalle.diffusion.ddim import DDIMInverter, DDIMSampler
from dalle.diffusion.ddpm import DDPMSampler
from dalle.diffusion.dpm_solver import DPMSolverPP2MSampler
from dalle.diffusion.loop import sample
from dalle.diffusion.noise import randn
from dalle.diffusion.predictions import PREDICTION_TYPES, Prediction
from dalle.diffusion.schedules import (
    NoiseSchedule,
    cosine_betas,
    evenly_spaced_timesteps,
    linear_betas,
    spaced_timesteps,
)

__all__ = [
    "PREDICTION_TYPES",
    "DDIMInverter",
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverPP2MSampler",
    "NoiseSchedule",
    "Prediction",
    "Sampler",
    "cosine_betas",
    "evenly_spaced_timesteps",
    "linear_betas",
    "randn",
    "sample",
    "spaced_timesteps",
]
