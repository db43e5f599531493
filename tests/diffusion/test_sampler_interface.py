"""The shared sampler interface: timesteps, seeding per row, state, clipping and bad inputs."""

from __future__ import annotations

import pytest
import torch

from dalle.diffusion import (
    DDIMInverter,
    DDIMSampler,
    DDPMSampler,
    DPMSolverPP2MSampler,
    NoiseSchedule,
    randn,
    sample,
)

SAMPLERS = {
    "ddpm": lambda s: DDPMSampler(s),
    "ddim_eta_0.5": lambda s: DDIMSampler(s, eta=0.5),
    "dpm_solver": lambda s: DPMSolverPP2MSampler(s),
}


def test_timesteps_are_original_scale_and_descending():
    sampler = DDPMSampler(NoiseSchedule.cosine())
    sampler.set_timesteps(27)
    ts = sampler.timesteps
    assert ts.dtype == torch.long and ts.shape == (27,)
    assert ts[0] == 999 and ts[-1] == 0 and bool((ts[1:] < ts[:-1]).all())
    inverter = DDIMInverter(NoiseSchedule.cosine())
    inverter.set_timesteps(27)
    assert torch.equal(inverter.timesteps, ts.flip(0))


def test_sampler_over_a_respaced_schedule_reports_original_timesteps(gaussian, make_model):
    base = NoiseSchedule.linear()
    sub = base.respace_evenly(100)
    sampler = DDIMSampler(sub)
    sampler.set_timesteps(10)
    assert set(sampler.timesteps.tolist()) <= set(sub.timesteps.tolist())
    assert sampler.timesteps[0] == 999 and sampler.timesteps[-1] == 0
    # the model is called with original t; same result as sampling the base at those steps
    x_T = torch.randn(8, 3, dtype=torch.float64)
    seen = []
    model = make_model(gaussian, base, "epsilon")
    out = sample(lambda x, t: seen.append(t[0].item()) or model(x, t), sampler, x_T, 10)
    assert seen == sampler.timesteps.tolist()
    torch.testing.assert_close(out, sample(model, DDIMSampler(base.respace(seen)), x_T, 10))


@pytest.mark.parametrize("name", ["ddim", "dpm_solver"])
def test_spacing_walks_the_spaced_timesteps(name, gaussian, make_model):
    base = NoiseSchedule.cosine()
    make = {"ddim": DDIMSampler, "dpm_solver": DPMSolverPP2MSampler}[name]
    sampler = make(base)
    sampler.set_timesteps(6, spacing=0.5)
    # (i / 5)^0.5 of 999: 0, 446.8, 631.8, 773.8, 893.5, 999
    assert sampler.timesteps.tolist() == [999, 894, 774, 632, 447, 0]
    model = make_model(gaussian, base, "epsilon")
    x_T = torch.randn(8, 3, dtype=torch.float64)
    seen = []
    out = sample(lambda x, t: seen.append(t[0].item()) or model(x, t), make(base), x_T, 6,
                 spacing=0.5)  # fmt: skip
    assert seen == sampler.timesteps.tolist()
    # the same walk as every step of the schedule respaced onto those timesteps
    torch.testing.assert_close(out, sample(model, make(base.respace(seen)), x_T, 6))
    assert not torch.allclose(out, sample(model, make(base), x_T, 6))  # evenly: another walk


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_generator_same_samples(name, gaussian, make_model):
    schedule = NoiseSchedule.cosine()
    model = make_model(gaussian, schedule, "epsilon")
    runs = []
    for _ in range(2):  # also checks that no state leaks from one run into the next
        g = torch.Generator().manual_seed(7)
        sampler = SAMPLERS[name](schedule)
        runs.append(sample(model, sampler, sampler.init_noise((5, 3), g, torch.float64), 15, g))
    assert torch.equal(runs[0], runs[1])
    torch.manual_seed(7)
    a = sample(model, SAMPLERS[name](schedule), torch.randn(5, 3, dtype=torch.float64), 15)
    torch.manual_seed(7)
    b = sample(model, SAMPLERS[name](schedule), torch.randn(5, 3, dtype=torch.float64), 15)
    assert torch.equal(a, b)  # generator=None uses the global RNG


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_per_row_generators_make_a_row_independent_of_its_batch(name, gaussian, make_model):
    schedule = NoiseSchedule.linear()
    model = make_model(gaussian, schedule, "epsilon")
    sampler = SAMPLERS[name](schedule)

    def run(seeds):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        x_T = sampler.init_noise((len(seeds), 3), gens, torch.float64)
        return sample(model, sampler, x_T, 12, gens)

    batch = run([10, 11, 12])
    assert torch.equal(batch[1:2], run([11]))
    assert torch.equal(batch[2:3], run([99, 12])[1:2])
    assert not torch.equal(batch[0], batch[1])


def test_randn_per_row_and_shared_generator():
    rows = randn((3, 2, 4), [torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    assert rows.shape == (3, 2, 4) and rows.dtype == torch.float32
    assert torch.equal(rows[1], torch.randn(2, 4, generator=torch.Generator().manual_seed(2)))
    shared = randn((3, 4), torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(
        shared, torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="2 generators for a batch of shape"):
        randn((3, 4), [torch.Generator(), torch.Generator()])


@pytest.mark.parametrize(
    "make",
    [
        lambda s: DDPMSampler(s, clip_x0=1.0),
        lambda s: DDIMSampler(s, clip_x0=1.0),
        lambda s: DPMSolverPP2MSampler(s, clip_x0=1.0),
    ],
    ids=["ddpm", "ddim", "dpm_solver"],
)
def test_clip_x0_bounds_the_final_sample(make, gaussian, make_model):
    schedule = NoiseSchedule.cosine()
    x_T = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = make_model(gaussian, schedule, "epsilon")
    assert sample(model, DDIMSampler(schedule), x_T, 20).abs().max() > 3  # unclipped (s = 2)
    assert sample(model, make(schedule), x_T, 20).abs().max() <= 1.0


def test_ddim_eta_below_keeps_the_noisiest_steps_deterministic(gaussian, make_model):
    """With eta_below, DDIM follows the eta 0 trajectory through the steps from timesteps at or
    above it and is stochastic (eta) after: its x there equals eta 0's, its result differs."""
    schedule = NoiseSchedule.cosine()
    model = make_model(gaussian, schedule, "epsilon")
    x_T = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen: dict[str, list[torch.Tensor]] = {}
    for name, sampler in {
        "eta0": DDIMSampler(schedule, eta=0.0),
        "split": DDIMSampler(schedule, eta=1.0, eta_below=600),
        "eta1": DDIMSampler(schedule, eta=1.0),
    }.items():
        xs = seen[name] = []
        g = torch.Generator().manual_seed(1)
        sample(lambda x, t, xs=xs: xs.append(x) or model(x, t), sampler, x_T, 20, g)
    probe = DDIMSampler(schedule)
    probe.set_timesteps(20)
    ts = probe.timesteps.tolist()
    last_kept = max(i for i, t in enumerate(ts) if t >= 600)  # its step is still deterministic
    for i in range(last_kept + 2):  # x before each kept step, and x after the last kept one
        torch.testing.assert_close(seen["split"][i], seen["eta0"][i])
    assert (seen["split"][-1] - seen["eta0"][-1]).abs().max() > 0.05
    assert (seen["eta1"][1] - seen["eta0"][1]).abs().max() > 0.01  # eta 1 from the first step


def test_single_step_returns_the_predicted_x0(gaussian, make_model):
    schedule = NoiseSchedule.cosine()
    model = make_model(gaussian, schedule, "x0")
    x_T = torch.randn(4, 3, dtype=torch.float64)
    t999 = torch.full((4,), 999)
    for sampler in (DDPMSampler(schedule, "x0"), DDIMSampler(schedule, "x0")):
        torch.testing.assert_close(sample(model, sampler, x_T, 1), model(x_T, t999))


def test_bad_sampler_arguments_raise():
    schedule = NoiseSchedule.cosine(100)
    with pytest.raises(ValueError, match="unknown prediction type 'score'"):
        DDIMSampler(schedule, prediction="score")
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\]"):
        DDIMSampler(schedule, eta=1.5)
    with pytest.raises(ValueError, match="variance must be"):
        DDPMSampler(schedule, variance="learned")
    with pytest.raises(ValueError, match="clip_x0 must be positive"):
        DPMSolverPP2MSampler(schedule, clip_x0=0.0)
    sampler = DDPMSampler(schedule)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="call set_timesteps before step"):
        sampler.step(x, 99, x)
    with pytest.raises(ValueError, match="positive integer"):
        sampler.set_timesteps(0)
    with pytest.raises(ValueError, match="cannot choose 101 steps out of 100"):
        sampler.set_timesteps(101)
    sampler.set_timesteps(10)
    with pytest.raises(ValueError, match="t = 98 is not one of the sampler's timesteps"):
        sampler.step(x, 98, x)
    with pytest.raises(ValueError, match="model output shape"):
        sampler.step(torch.zeros(2, 4), 99, x)
