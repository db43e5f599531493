"""FID, KID and Inception Score of folders of images, offline.

Features come from a bundled CLIP's image tower (the default: no download, works on any machine
here) or from the FID Inception-v3 with the standard weights file the user provides
(``dalle.models.inception``). Images are read as 8-bit RGB and resized with PIL's bicubic filter
to the network's input size, as clean-fid recommends (Parmar et al. 2022), on the 8-bit image
(clean-fid resizes each channel in float: the results differ by the rounding); JPEG files are
counted and warned about, since their compression shifts FID. Either side of an FID may be a
saved statistics file (``.npz`` with ``mu`` and ``sigma``, pytorch-fid's format), which has no
features to compute KID from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dalle.data.images import IMAGE_EXTENSIONS, BadImageError, load_image
from dalle.eval import fid as fid_math
from dalle.utils.images import pil_to_tensor

logger = logging.getLogger(__name__)


@dataclass
class FeatureNet:
    """What turns (B, 3, S, S) images in [0, 1] into features (and, for Inception, logits)."""

    name: str  # "clip" or "inception"
    size: int  # the input size images are resized to
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def clip_features(model: str = "shapes", device: str = "cpu") -> FeatureNet:
    """A CLIP image tower's (unnormalised) image features."""
    from dalle.pipelines.clip_ranker import ClipRanker

    clip = ClipRanker.from_pretrained(model, device).clip

    def forward(images: torch.Tensor):
        return clip.vision(images.to(device)).float(), None

    return FeatureNet("clip", clip.config.image_size, forward)


def inception_features(weights: str | os.PathLike, device: str = "cpu") -> FeatureNet:
    """The FID Inception's 2,048 pool features and its 1,008 logits."""
    from dalle.models.inception import load_fid_inception

    net = load_fid_inception(weights, device)

    def forward(images: torch.Tensor):
        features, logits = net(images.to(device))
        return features.float(), logits.float()

    return FeatureNet("inception", 299, forward)


@dataclass
class FolderFeatures:
    features: np.ndarray  # (N, D)
    logits: np.ndarray | None  # (N, C) for Inception
    skipped: list[str]
    jpeg: int


def image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


@torch.no_grad()
def folder_features(
    folder: str | os.PathLike,
    net: FeatureNet,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> FolderFeatures:
    """Features of every readable image in ``folder`` (sorted by name); unreadable files are
    skipped and listed."""
    files = image_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    feats, logits, skipped, batch = [], [], [], []
    jpeg = sum(p.suffix.lower() in (".jpg", ".jpeg") for p in files)

    def flush() -> None:
        if batch:
            f, lg = net.forward(torch.stack(batch))
            feats.append(f.cpu().numpy())
            if lg is not None:
                logits.append(lg.cpu().numpy())
            if on_batch is not None:
                on_batch(len(batch))
            batch.clear()

    for path in files:
        try:
            image = load_image(path)
        except BadImageError as e:
            skipped.append(f"{path.name} ({e})")
            continue
        if image.size != (net.size, net.size):
            image = image.resize((net.size, net.size), Image.Resampling.BICUBIC)
        batch.append(pil_to_tensor(image))
        if len(batch) == batch_size:
            flush()
    flush()
    if not feats:
        raise ValueError(f"{folder}: none of its {len(files)} image files could be read")
    return FolderFeatures(
        np.concatenate(feats).astype(np.float64),
        np.concatenate(logits).astype(np.float64) if logits else None, skipped, jpeg,
    )  # fmt: skip


def _side(path: str, net: FeatureNet, batch_size: int, on_batch):
    """(features or None, mu, sigma, n) of a folder or a statistics file."""
    if str(path).endswith(".npz") and os.path.isfile(path):
        mu, sigma = fid_math.load_statistics(path)
        return None, mu, sigma, None, None
    found = folder_features(path, net, batch_size, on_batch)
    if found.jpeg:
        logger.warning("%s: %d JPEG images; JPEG compression shifts FID (clean-fid, Parmar et "
                       "al. 2022): compare PNGs with PNGs", path, found.jpeg)  # fmt: skip
    mu, sigma = fid_math.statistics(found.features)
    return found.features, mu, sigma, len(found.features), found


def fid_report(
    real: str,
    generated: str,
    net: FeatureNet,
    batch_size: int = 64,
    kid_subset_size: int = fid_math.KID_SUBSET_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """``{"fid", "kid", "kid_std", "n_real", "n_gen", "features"}`` between two folders (or a
    folder and a statistics file: then ``kid`` is None). KID's subsets are at most as large
    as the smaller set; when that set is read whole in every subset, its spread is not measured
    and ``kid_std`` is None (torch-fidelity refuses such sets)."""
    f1, mu1, s1, n1, found1 = _side(real, net, batch_size, on_batch)
    f2, mu2, s2, n2, found2 = _side(generated, net, batch_size, on_batch)
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"the statistics have {len(mu1)} and {len(mu2)} features: made by different networks"
        )
    kid = kid_std = None
    if f1 is not None and f2 is not None:
        size = min(kid_subset_size, len(f1), len(f2))
        kid, kid_std = fid_math.kernel_inception_distance(f1, f2, subset_size=size)
        if size == min(len(f1), len(f2)):  # the same images in every subset: no spread to show
            kid_std = None
    skipped = [s for f in (found1, found2) if f is not None for s in f.skipped]
    return {
        "fid": fid_math.frechet_distance(mu1, s1, mu2, s2), "kid": kid, "kid_std": kid_std,
        "n_real": n1, "n_gen": n2, "features": net.name, "skipped": skipped,
    }  # fmt: skip


def save_folder_statistics(folder: str, out: str, net: FeatureNet, batch_size: int = 64) -> int:
    """Write a folder's feature statistics to ``out`` (.npz); the number of images."""
    found = folder_features(folder, net, batch_size)
    fid_math.save_statistics(out, *fid_math.statistics(found.features))
    return len(found.features)


def inception_score_report(folder: str, net: FeatureNet, splits: int = 10, batch_size: int = 64,
                           on_batch=None) -> dict:  # fmt: skip
    """``{"is", "is_std", "n", "splits"}`` of a folder, from the Inception's class
    probabilities (its 1,008 logits, the unused class 0 included, as in the TF graph)."""
    if net.name != "inception":
        raise ValueError("the Inception Score needs the Inception network (--inception-weights)")
    found = folder_features(folder, net, batch_size, on_batch)
    logits = found.logits
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    mean, std = fid_math.inception_score(probabilities, splits)
    return {"is": mean, "is_std": std, "n": len(probabilities), "splits": splits,
            "skipped": found.skipped}  # fmt: skip
