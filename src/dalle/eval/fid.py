"""Image-quality statistics on feature arrays: Frechet distance (FID), Kernel Inception Distance
(KID) and Inception Score, in float64 numpy, and reference statistics in pytorch-fid's ``.npz``
format (``mu``, ``sigma``).

- FID (Heusel et al. 2017): ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the
  matrix square root is computed as the sum of the square roots of the eigenvalues of
  S1^(1/2) S2 S1^(1/2), which is symmetric positive semi-definite (the same value as
  tr sqrtm(S1 S2), without a general, possibly complex, matrix square root).
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets, as torch-fidelity computes it by
  default (100 subsets of 1,000, drawn by ``numpy.random.RandomState(2020)``); mean and std.
- Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), over ``splits`` splits
  of the shuffled rows, as torch-fidelity computes it by default; mean and std.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dalle.utils.io import atomic_path

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed: KID subsets, IS shuffling


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, float64 (covariance over N - 1)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """The Frechet distance between two Gaussians given by their means and covariances."""
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} and {mu2.shape}")
    if sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"covariance {sigma1.shape} does not match the mean {mu1.shape}")
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    # at least 0: identical statistics give -1e-7 or so by rounding
    return max(float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt), 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    m = len(x)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = FIDELITY_SEED,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of ``subset_size``
    from each set (torch-fidelity's defaults and draw order)."""
    f1 = np.asarray(features1, np.float64)
    f2 = np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"need (N, D) features of one width, got {f1.shape} and {f2.shape}")
    if subset_size < 2 or min(len(f1), len(f2)) < subset_size:
        raise ValueError(
            f"KID subsets of {subset_size} need at least that many images in each set "
            f"(have {len(f1)} and {len(f2)})"
        )
    rng = np.random.RandomState(seed)
    values = np.zeros(subsets)
    for i in range(subsets):
        x = f1[rng.choice(len(f1), subset_size, replace=False)]
        y = f2[rng.choice(len(f2), subset_size, replace=False)]
        values[i] = _mmd2_unbiased(x, y)
    return float(values.mean()), float(values.std())


def inception_score(
    probabilities: np.ndarray, splits: int = 10, seed: int = FIDELITY_SEED
) -> tuple[float, float]:
    """(mean, std) of exp(E KL(p(y|x) || p(y))) over ``splits`` splits of (N, C) class
    probabilities, drawn as torch-fidelity draws them by default: the rows shuffled by
    ``numpy.random.RandomState(seed)``, split ``i`` holding rows ``i N // splits`` to
    ``(i + 1) N // splits``."""
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise ValueError(f"need (N, C) probabilities with N >= splits ({splits}), got {p.shape}")
    n = len(p)
    p = p[np.random.RandomState(seed).permutation(n)]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> Path:
    """``mu`` and ``sigma`` as an ``.npz`` (pytorch-fid's format), written atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: statistics files end in .npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64))
    return path


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``sigma`` of an ``.npz`` statistics file (never unpickled)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = data["mu"], data["sigma"]
    except KeyError as e:
        raise ValueError(
            f"{path}: a statistics file holds 'mu' and 'sigma' (missing {e})"
        ) from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a statistics .npz ({e})") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    return mu.astype(np.float64), sigma.astype(np.float64)
