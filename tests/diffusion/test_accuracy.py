"""Deterministic samplers against the exact probability-flow ODE solution, and DDIM inversion.

For Gaussian data the ODE maps x_T to mu + s (x_T - sqrt(abar_T) mu) / sd_T exactly, so the
error of a deterministic sampler can be measured sample by sample, without sampling noise.
"""

from __future__ import annotations

import pytest
import torch

from dalle.diffusion import (
    DDIMInverter,
    DDIMSampler,
    DDPMSampler,
    DPMSolverPP2MSampler,
    NoiseSchedule,
    sample,
)

N = 4000


def flow_error(sampler_cls, kind, steps, data, make_model):
    """(D,) RMS distance to the exact ODE solution, and (D,) |sample std / exact std - 1|."""
    schedule = getattr(NoiseSchedule, kind)()
    x_T = torch.randn(N, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = sample(make_model(data, schedule, "epsilon"), sampler_cls(schedule), x_T, steps)
    exact = data.flow(x_T, schedule.alphas_cumprod[-1].item())
    rms = (x - exact).pow(2).mean(0).sqrt()
    return rms, (x.std(0) / exact.std(0) - 1).abs()


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_dpm_solver_beats_ddim_at_20_steps_in_every_dimension(kind, gaussian, make_model):
    # measured RMS error (s = 0.3, 1, 2): cosine DDIM (.033 .062 .155) vs DPM++ (.009 .004 .050);
    # linear DDIM (.062 .091 .152) vs DPM++ (.041 .001 .010)
    ddim_rms, ddim_std = flow_error(DDIMSampler, kind, 20, gaussian, make_model)
    dpm_rms, dpm_std = flow_error(DPMSolverPP2MSampler, kind, 20, gaussian, make_model)
    assert bool((dpm_rms < ddim_rms).all()), (dpm_rms, ddim_rms)
    assert dpm_std.max() < ddim_std.max(), (dpm_std, ddim_std)


def test_convergence_orders_ddim_first_dpm_solver_second(gaussian, make_model):
    # halving the step size divides DDIM's error by ~2 and DPM-Solver++'s by ~4
    ddim = [flow_error(DDIMSampler, "cosine", n, gaussian, make_model)[0].norm() for n in (40, 80)]
    dpm = [
        flow_error(DPMSolverPP2MSampler, "cosine", n, gaussian, make_model)[0].norm()
        for n in (80, 160)
    ]
    assert 1.8 < ddim[0] / ddim[1] < 2.2
    assert dpm[0] / dpm[1] > 3.0
    assert dpm[1] < 2e-3


@pytest.mark.parametrize(
    "kind, prediction, steps, rms_tol, max_tol",
    [
        ("cosine", "epsilon", 50, 0.08, 0.25),  # measured RMS .069/.059/.057, max 0.19
        ("cosine", "v", 100, 0.05, 0.15),  # measured RMS .040/.035/.032, max 0.11
        ("linear", "x0", 100, 0.05, 0.15),  # measured RMS .034/.019/.030, max 0.10
    ],
)
def test_ddim_inversion_round_trip(kind, prediction, steps, rms_tol, max_tol, gaussian, make_model):
    schedule = getattr(NoiseSchedule, kind)()
    model = make_model(gaussian, schedule, prediction)
    x0 = gaussian.draw(2000, torch.Generator().manual_seed(2))
    x_T = sample(model, DDIMInverter(schedule, prediction), x0, steps)
    # the inverted latents look like noise
    torch.testing.assert_close(x_T.std(0), torch.ones(3, dtype=torch.float64), rtol=0, atol=0.1)
    back = sample(model, DDIMSampler(schedule, prediction), x_T, steps)
    err = back - x0
    assert err.pow(2).mean(0).sqrt().max() < rms_tol
    assert err.abs().max() < max_tol


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_refined_inversion_round_trip_is_closer(prediction, gaussian, make_model):
    # fixed-point refinement solves for the x_t whose DDIM step lands on x_prev: the round trip
    # at 20 steps must be much closer than the one-read approximation's
    schedule = NoiseSchedule.cosine()
    model = make_model(gaussian, schedule, prediction)
    x0 = gaussian.draw(500, torch.Generator().manual_seed(5))
    errors = []
    for refine in (0, 1, 3):
        x_T = DDIMInverter(schedule, prediction).invert(model, x0, 20, refine=refine)
        back = sample(model, DDIMSampler(schedule, prediction), x_T, 20)
        errors.append(float((back - x0).pow(2).mean().sqrt()))
    assert errors[1] < errors[0] / 2, errors
    assert errors[2] < errors[1], errors


def test_refined_inversion_without_refinement_is_the_sampling_loop(gaussian, make_model):
    schedule = NoiseSchedule.cosine()
    model = make_model(gaussian, schedule, "v")
    x0 = gaussian.draw(50, torch.Generator().manual_seed(6))
    looped = sample(model, DDIMInverter(schedule, "v"), x0, 15)
    torch.testing.assert_close(DDIMInverter(schedule, "v").invert(model, x0, 15, refine=0), looped,
                               rtol=0, atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="refine"):
        DDIMInverter(schedule).invert(model, x0, 15, refine=-1)


def test_inversion_is_exact_with_a_model_that_ignores_x():
    # if eps does not depend on x_t, the inverter's eps(x_prev, t) is exactly the sampler's
    schedule = NoiseSchedule.cosine()
    eps = torch.randn(5, 3, dtype=torch.float64)
    model = lambda x, t: eps  # noqa: E731
    x0 = torch.randn(5, 3, dtype=torch.float64)
    back = sample(model, DDIMSampler(schedule), sample(model, DDIMInverter(schedule), x0, 30), 30)
    torch.testing.assert_close(back, x0, rtol=0, atol=1e-9)


def test_ddim_eta_1_equals_ddpm_fixed_small(gaussian, make_model):
    # Song et al. 2021, eq. 16: eta = 1 gives the DDPM posterior variance beta tilde
    schedule = NoiseSchedule.linear()
    model = make_model(gaussian, schedule, "epsilon")
    x_T = torch.randn(64, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    runs = [
        sample(model, s, x_T, 30, torch.Generator().manual_seed(4))
        for s in (DDIMSampler(schedule, eta=1.0), DDPMSampler(schedule))
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_float32_sampling_stays_within_1e3_of_float64(kind, gaussian, make_model):
    schedule = getattr(NoiseSchedule, kind)()
    x_T = torch.randn(256, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for prediction in ("epsilon", "v"):
        model = make_model(gaussian, schedule, prediction)
        sampler = DPMSolverPP2MSampler(schedule, prediction)
        x64 = sample(model, sampler, x_T, 20)
        x32 = sample(model, sampler, x_T.float(), 20)
        assert x32.dtype == torch.float32
        torch.testing.assert_close(x32.double(), x64, rtol=0, atol=1e-3)
