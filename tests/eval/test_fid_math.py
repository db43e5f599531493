"""Issue 18: FID, KID and IS on feature arrays against closed forms and direct formulas."""

import numpy as np
import pytest

from dalle.eval import fid


def test_frechet_distance_of_gaussians_in_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    # diagonal covariances: ||mu1 - mu2||^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    want = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    got = fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(want, rel=1e-12)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T
    assert fid.frechet_distance(mu1, sigma, mu1, sigma) == pytest.approx(0, abs=1e-9)
    # a rotated copy of a pair: the distance does not change
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    b = rng.normal(size=(5, 5))
    sigma2 = b @ b.T
    rotated = fid.frechet_distance(q @ mu1, q @ sigma @ q.T, q @ mu2, q @ sigma2 @ q.T)
    assert rotated == pytest.approx(fid.frechet_distance(mu1, sigma, mu2, sigma2), rel=1e-9)


def test_fid_of_a_sample_with_itself_is_zero_and_statistics_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 8))
    mu, sigma = fid.statistics(features)
    assert fid.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-9)
    path = fid.save_statistics(tmp_path / "ref.npz", mu, sigma)
    mu2, sigma2 = fid.load_statistics(path)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="'mu' and 'sigma'"):
        fid.load_statistics(tmp_path / "bad.npz")


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = fid.kernel_inception_distance(x, y, subsets=3, subset_size=6)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-12) and std == pytest.approx(0, abs=1e-12)
    same = rng.normal(size=(400, 4))
    assert abs(fid.kernel_inception_distance(same[:200], same[200:], 20, 100)[0]) < 0.05
    with pytest.raises(ValueError, match="at least that many"):
        fid.kernel_inception_distance(x, y, subset_size=1000)


def test_inception_score_bounds():
    uniform = np.full((20, 10), 0.1)  # every image the same spread: score 1
    assert fid.inception_score(uniform, splits=2) == pytest.approx((1.0, 0.0))
    confident = np.eye(10)[np.arange(20) % 10]  # sure, and all classes alike: score 10
    assert fid.inception_score(confident, splits=1)[0] == pytest.approx(10.0)
    # every split below the whole set's score: a split misses classes or holds them unevenly
    assert fid.inception_score(confident, splits=4)[0] < 10.0
