"""Noise schedules: closed forms, respacing, noising statistics and prediction conversions."""

from __future__ import annotations

import math

import pytest
import torch

from dalle.diffusion import NoiseSchedule, evenly_spaced_timesteps, spaced_timesteps

F64 = torch.float64


def test_cosine_alpha_bar_matches_closed_form_to_1e12():
    sched = NoiseSchedule.cosine(1000)
    assert sched.betas.dtype == F64 and sched.alphas_cumprod.dtype == F64
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 1, 10, 500, 900, 980):  # below the steps where beta is clipped
        assert sched.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-12)
    assert sched.betas.max().item() == pytest.approx(0.999)  # the clip at the last step
    assert bool((sched.alphas_cumprod[1:] < sched.alphas_cumprod[:-1]).all())


def test_linear_betas_scaled_by_1000_over_T():
    full = NoiseSchedule.linear(1000)
    assert full.betas[0].item() == pytest.approx(1e-4) and full.betas[-1].item() == 0.02
    short = NoiseSchedule.linear(250)
    assert short.betas[0].item() == pytest.approx(4e-4) and short.betas[-1].item() == 0.08
    assert short.num_train_timesteps == 250


def test_evenly_spaced_matches_guided_diffusion_and_keeps_ends():
    steps = evenly_spaced_timesteps(1000, 250)
    expected = [round(i * 999 / 249) for i in range(250)]  # space_timesteps(1000, "250")
    assert steps.tolist() == expected
    for n in (2, 15, 27, 50, 999, 1000):
        s = evenly_spaced_timesteps(1000, n)
        assert s[0] == 0 and s[-1] == 999 and len(set(s.tolist())) == n
    assert evenly_spaced_timesteps(1000, 1).tolist() == [999]
    assert evenly_spaced_timesteps(7, 7).tolist() == list(range(7))


def test_power_spacing_by_hand_and_always_distinct():
    # (i / 4)^0.5 of 999: 0, 499.5, 706.4, 865.2, 999 (halves rounded up)
    assert spaced_timesteps(1000, 5, 0.5).tolist() == [0, 500, 706, 865, 999]
    # (i / 4)^2 of 999: 0, 62.4, 249.75, 561.9, 999
    assert spaced_timesteps(1000, 5, 2.0).tolist() == [0, 62, 250, 562, 999]
    for n in (1, 2, 16, 250, 1000):
        assert torch.equal(spaced_timesteps(1000, n, 1.0), evenly_spaced_timesteps(1000, n))
        # the power rule itself next to 1 (not the even rule's integer arithmetic): within a
        # timestep of it (exact halves may round the other way)
        near = spaced_timesteps(1000, n, 1 + 1e-9) - evenly_spaced_timesteps(1000, n)
        assert near.abs().max() <= 1
    # where rounding would merge neighbours (the flat end of the curve) they are pushed apart
    assert spaced_timesteps(10, 6, 0.1).tolist() == [0, 5, 6, 7, 8, 9]  # raw 0, 8, 8, 9, 9, 9
    assert spaced_timesteps(10, 6, 4.0).tolist() == [0, 1, 2, 3, 4, 9]  # raw 0, 0, 0, 1, 4, 9
    for total in (2, 7, 50, 1000):
        for n in [*range(1, total + 1, max(total // 40, 1)), total - 1, total]:
            for power in (0.05, 0.3, 0.7, 1.5, 3.0, 8.0):
                s = spaced_timesteps(total, n, power)
                assert len(s) == n and s[-1] == total - 1 and (n == 1 or s[0] == 0)
                assert bool((s[1:] > s[:-1]).all()), (total, n, power)
    # below 1 the steps crowd the noisy end: 16 at 0.7 put 10 above t = 500, evenly 8
    assert (spaced_timesteps(1000, 16, 0.7) > 500).sum() == 10
    assert (evenly_spaced_timesteps(1000, 16) > 500).sum() == 8


def test_respace_keeps_alpha_bar_at_kept_steps_exactly():
    base = NoiseSchedule.cosine(1000)
    kept = evenly_spaced_timesteps(1000, 27)
    sub = base.respace(kept)
    assert sub.num_steps == 27 and sub.num_train_timesteps == 1000
    assert torch.equal(sub.timesteps, kept)
    assert torch.equal(sub.alphas_cumprod, base.alphas_cumprod[kept])
    prev = torch.cat([torch.ones(1, dtype=F64), base.alphas_cumprod[kept][:-1]])
    torch.testing.assert_close(sub.betas, 1 - base.alphas_cumprod[kept] / prev)
    # respacing a respaced schedule, with its kept steps given in any order and repeated
    subsub = sub.respace([999, 0, kept[5].item(), 999])
    assert subsub.timesteps.tolist() == [0, kept[5].item(), 999]
    assert torch.equal(subsub.alphas_cumprod, base.alphas_cumprod[subsub.timesteps])
    # the respaced schedule noises exactly like the base one at the kept (original) timesteps
    x0, noise = torch.randn(3, 4, dtype=F64), torch.randn(3, 4, dtype=F64)
    t = kept[[0, 10, 26]]
    torch.testing.assert_close(sub.add_noise(x0, noise, t), base.add_noise(x0, noise, t))
    assert base.respace_evenly(27).timesteps.tolist() == kept.tolist()


def test_add_noise_statistics_within_3_percent():
    sched = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(0)
    n = 20000
    x0 = torch.full((n, 1), 1.5, dtype=F64)
    for t_val in (0, 300, 999):
        abar = sched.alphas_cumprod[t_val].item()
        t = torch.full((n,), t_val, dtype=torch.long)
        xt = sched.add_noise(x0, torch.randn(n, 1, generator=g, dtype=F64), t)
        assert xt.mean().item() == pytest.approx(1.5 * math.sqrt(abar), abs=0.03)
        assert xt.var().item() == pytest.approx(1 - abar, rel=0.03, abs=1e-5)


def test_add_noise_exact_per_row_and_keeps_dtype():
    sched = NoiseSchedule.cosine()
    x0, noise = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)  # float32 images
    t = torch.tensor([0, 500, 999])
    xt = sched.add_noise(x0, noise, t)
    assert xt.dtype == torch.float32
    a = sched.alphas_cumprod[t].view(3, 1, 1, 1)
    expected = a.sqrt().float() * x0 + (1 - a).sqrt().float() * noise
    torch.testing.assert_close(xt, expected, rtol=0, atol=0)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_prediction_conversions_invert_each_other_to_1e9(kind, prediction):
    sched = getattr(NoiseSchedule, kind)()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(6, 5, generator=g, dtype=F64)
    eps = torch.randn(6, 5, generator=g, dtype=F64)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    xt = sched.add_noise(x0, eps, t)
    out = sched.target(x0, eps, t, prediction)
    torch.testing.assert_close(sched.predict_x0(out, xt, t, prediction), x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        sched.predict_epsilon(out, xt, t, prediction), eps, rtol=0, atol=1e-9
    )


def test_v_target_is_salimans_ho_velocity():
    sched = NoiseSchedule.cosine()
    x0, eps = torch.randn(2, 3, dtype=F64), torch.randn(2, 3, dtype=F64)
    t = torch.tensor([100, 700])
    a = sched.alphas_cumprod[t][:, None]
    torch.testing.assert_close(
        sched.target(x0, eps, t, "v"), a.sqrt() * eps - (1 - a).sqrt() * x0, rtol=0, atol=1e-15
    )
    assert torch.equal(sched.target(x0, eps, t, "epsilon"), eps)
    assert torch.equal(sched.target(x0, eps, t, "x0"), x0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: NoiseSchedule.cosine(0), "positive integer"),
        (lambda: NoiseSchedule.linear(-3), "positive integer"),
        (lambda: NoiseSchedule.linear(10), "0 < start <= end < 1"),  # beta_end 2.0 after scaling
        (lambda: NoiseSchedule(torch.tensor([0.1, 1.0])), r"\(0, 1\)"),
        (lambda: evenly_spaced_timesteps(10, 11), "cannot choose 11 steps out of 10"),
        (lambda: evenly_spaced_timesteps(10, 0), "positive integer"),
        (lambda: NoiseSchedule.cosine(10).respace([]), "non-empty"),
        (lambda: NoiseSchedule.cosine(10).respace([3, 10]), "not steps of this schedule"),
        (lambda: NoiseSchedule.cosine(10).respace([2, 5]).respace([3]), "not steps"),
        (lambda: NoiseSchedule.cosine(10).respace_evenly(0), "positive integer"),
        (lambda: spaced_timesteps(10, 3, 0.0), "spacing must be a finite number above 0"),
        (lambda: spaced_timesteps(10, 3, float("nan")), "spacing must be"),
        (lambda: spaced_timesteps(10, 3, True), "spacing must be"),
        (lambda: spaced_timesteps(10, 11, 0.5), "cannot choose 11 steps out of 10"),
    ],
)
def test_bad_schedule_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_timesteps_and_prediction_raise():
    sched = NoiseSchedule.cosine(100)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="not steps of this schedule"):
        sched.add_noise(x, x, torch.tensor([0, 100]))
    with pytest.raises(ValueError, match="not steps of this schedule"):
        sched.add_noise(x, x, torch.tensor([-1, 5]))
    with pytest.raises(ValueError, match="must be integers"):
        sched.add_noise(x, x, torch.tensor([0.0, 5.0]))
    with pytest.raises(ValueError, match="one timestep per row"):
        sched.add_noise(x, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="unknown prediction type 'score'"):
        sched.target(x, x, torch.tensor([1, 2]), "score")
    with pytest.raises(ValueError, match="unknown prediction type"):
        sched.predict_x0(x, x, torch.tensor([1, 2]), "eps")
