"""Open any supported dataset from one spec string, detecting its format from the path."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from dalle.data.celeba import CelebADataset
from dalle.data.folders import CaptionFolderDataset, MetadataFolderDataset
from dalle.data.shards import WebDatasetShards
from dalle.data.transforms import TransformConfig

logger = logging.getLogger(__name__)

ACCEPTED_FORMS = """accepted dataset specs:
  shapes | shapes:train | shapes:test     the procedural shapes world
  shapes:train?two_objects=0.75&size_words=0.75   ... with another mix: the fraction of
                                          two-object scenes, the chance each size is stated
  DIR with metadata.jsonl                 Hugging Face imagefolder (file_name, text)
  DIR with img_align_celeba/ and list_attr_celeba.txt    CelebA
  FILE.tar | 'shard-{000000..000009}.tar' | DIR of *.tar  WebDataset shards
  DIR of images with same-named .txt captions            caption folder"""


def _is_shard_pattern(spec: str) -> bool:
    return (
        ("{" in spec and ".." in spec and "}" in spec) or "://" in spec or spec.startswith("pipe:")
    )


def _detect(path: Path) -> str:
    if (path / "metadata.jsonl").is_file():
        return "metadata"
    if (path / "img_align_celeba").is_dir() and (path / "list_attr_celeba.txt").is_file():
        return "celeba"
    if any(path.glob("*.tar")):
        return "webdataset"
    return "caption_folder"


def _open_shapes(spec: str, image_size: int, split: str, seed: int) -> Any:
    from urllib.parse import parse_qsl

    from dalle.shapes.dataset import ShapesStream  # heavy and optional: only when asked for

    spec, _, query = spec.partition("?")
    _, _, spec_split = spec.partition(":")
    if spec_split and spec_split not in ("train", "test"):
        raise ValueError(f"unknown shapes split {spec_split!r}\n{ACCEPTED_FORMS}")
    mix: dict[str, float] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in ("two_objects", "size_words") or key in mix:
            raise ValueError(f"shapes options are two_objects and size_words, once each: {key!r}")
        try:
            mix[key] = float(value)
        except ValueError:
            raise ValueError(f"shapes option {key}: {value!r} is not a number") from None
    return ShapesStream(split=spec_split or split, seed=seed, image_size=image_size, **mix)


def open_dataset(
    spec: str,
    *,
    image_size: int,
    split: str = "train",
    seed: int = 0,
    transform: TransformConfig | None = None,
) -> Dataset:
    """The dataset named by ``spec`` (see ``ACCEPTED_FORMS``), yielding ``(image, caption)``.

    ``transform`` defaults to a centre crop at ``image_size``; if given, its ``image_size`` must
    match. ``split`` selects CelebA's official partition and the shapes split (``shapes:test``
    overrides it); the folder and shard formats have no splits: point at another path instead.
    """
    if spec == "shapes" or spec.startswith("shapes:"):
        if transform is not None:  # a flip would have to swap left/right in the stream's captions
            raise ValueError("the shapes world renders exact images: it takes no transform")
        return _open_shapes(spec, image_size, split, seed)
    if transform is None:
        transform = TransformConfig(image_size=image_size)
    elif transform.image_size != image_size:
        raise ValueError(
            f"transform.image_size ({transform.image_size}) != image_size ({image_size})"
        )
    if _is_shard_pattern(spec) or spec.endswith(".tar"):
        if not _is_shard_pattern(spec) and not os.path.isfile(spec):
            raise FileNotFoundError(f"shard not found: {spec}\n{ACCEPTED_FORMS}")
        return _no_split(WebDatasetShards(spec, transform, seed=seed), split)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {spec!r}\n{ACCEPTED_FORMS}")
    if not path.is_dir():
        raise ValueError(
            f"not a dataset: {spec!r} is a file but not a .tar shard\n{ACCEPTED_FORMS}"
        )
    kind = _detect(path)
    logger.info("opening %s as %s", spec, kind)
    if kind == "metadata":
        return _no_split(MetadataFolderDataset(path, transform, seed=seed), split)
    if kind == "celeba":
        return CelebADataset(path, transform, split=split, seed=seed)
    if kind == "webdataset":
        return _no_split(WebDatasetShards(path, transform, seed=seed), split)
    return _no_split(CaptionFolderDataset(path, transform, seed=seed), split)


def validation_split(spec: str) -> str:
    """The split validation reads from ``spec``: CelebA's official ``valid`` partition; for the
    shapes world the spec's (``shapes:test``), else ``train`` (validation renders its scenes
    with a seed of its own); the folder and shard formats have no splits (point ``--val-data``
    at held-back files)."""
    path = Path(spec)
    if path.is_dir() and _detect(path) == "celeba":
        return "valid"
    return "train"


def _no_split(dataset: Any, split: str) -> Any:
    if split != "train":
        logger.warning(
            "%s has no %r split: using all of it (point at a separate path for held-out data)",
            type(dataset).__name__,
            split,
        )
    return dataset
