"""The dataset interface shared by every format: samples, bad files, the skip report, batching.

Every dataset yields ``(image, caption)`` samples, ``image`` a float32 tensor (3, H, W) in [0, 1].
A file that cannot be read is not an exception: the dataset returns (map-style) or yields
(iterable) a :class:`BadFile` in its place, so one corrupt image never stops a run. Consumers
filter them into a :class:`SkipReport` with :func:`iter_samples`, or, through a ``DataLoader``,
with :func:`collate_image_text`, which hands them back beside each batch so the counts survive
worker processes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset

from dalle.data.images import DEFAULT_MAX_PIXELS, BadImageError, load_image

logger = logging.getLogger(__name__)

Sample = tuple[torch.Tensor, str]
Batch = tuple[torch.Tensor, list[str], list["BadFile"]]
# (image, caption, rng) -> (tensor, caption), e.g. an ImageTransform
TransformFn = Callable[[Image.Image, str, np.random.Generator], Sample]


class DatasetFormatError(ValueError):
    """An index file (metadata.jsonl, CelebA's lists) is malformed; the message names file and line."""


@dataclass(frozen=True)
class BadFile:
    """A file that was skipped: where it is and why (a short, countable reason)."""

    path: str
    reason: str


class SkipReport:
    """Counts skipped files by reason and keeps the first few for the end-of-run summary."""

    def __init__(self, max_examples: int = 10) -> None:
        self.max_examples = max_examples
        self.examples: list[BadFile] = []
        self._counts: Counter[str] = Counter()
        self._seen: set[str] = set()  # a file read again (next epoch, a replayed stream) once

    def add(self, bad: BadFile) -> None:
        key = str(bad.path)
        if key in self._seen:
            return
        self._seen.add(key)
        self._counts[bad.reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(bad)
        logger.debug("skipped %s: %s", bad.path, bad.reason)

    def extend(self, bads: Iterable[BadFile]) -> None:
        for bad in bads:
            self.add(bad)

    @property
    def count(self) -> int:
        return sum(self._counts.values())

    def by_reason(self) -> dict[str, int]:
        """Skip counts per reason, most frequent first."""
        return dict(self._counts.most_common())

    def summary(self) -> str:
        """One line such as ``skipped 3 unreadable files (2 corrupt image, 1 too many pixels); ...``."""
        n = self.count
        if n == 0:
            return "no files skipped"
        reasons = ", ".join(f"{k} {reason}" for reason, k in self.by_reason().items())
        first = self.examples[0]
        noun = "file" if n == 1 else "files"
        return f"skipped {n} unreadable {noun} ({reasons}); first: {first.path} ({first.reason})"

    def __repr__(self) -> str:
        return f"SkipReport({self.summary()!r})"


def iter_samples(
    dataset_iterable: Iterable[Sample | BadFile], report: SkipReport
) -> Iterator[Sample]:
    """Yield the good samples of ``dataset_iterable``, adding every :class:`BadFile` to ``report``."""
    for item in dataset_iterable:
        if isinstance(item, BadFile):
            report.add(item)
        else:
            yield item


def iter_batches(
    loader: Iterable[Batch], report: SkipReport
) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Yield ``(images, captions)`` from a :func:`make_loader` loader, recording its bad files."""
    for images, captions, bad in loader:
        report.extend(bad)
        if captions:
            yield images, captions


def collate_image_text(items: list[Sample | BadFile]) -> Batch:
    """Batch samples for a ``DataLoader``: ``(images (B, 3, H, W), captions, bad_files)``.

    Bad files are dropped from the batch but returned as its third element, so skip counts made in
    worker processes reach the main process. A batch of only bad files has images of shape
    (0, 3, 0, 0).
    """
    good = [item for item in items if not isinstance(item, BadFile)]
    bad = [item for item in items if isinstance(item, BadFile)]
    if good:
        images = torch.stack([image for image, _ in good])  # (B, 3, H, W)
    else:
        images = torch.empty((0, 3, 0, 0), dtype=torch.float32)
    return images, [caption for _, caption in good], bad


def make_loader(
    dataset: Dataset | IterableDataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` batched with :func:`collate_image_text`.

    ``seed`` fixes the sampler's shuffle order. ``shuffle`` is ignored for iterable datasets (they
    shuffle themselves, e.g. ``WebDatasetShards(shuffle_buffer=...)``). Batches can be smaller
    than ``batch_size`` when they contained bad files.
    """
    is_iterable = isinstance(dataset, IterableDataset)
    if is_iterable and shuffle:
        logger.debug("shuffle ignored for iterable dataset %s", type(dataset).__name__)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and not is_iterable,
        num_workers=num_workers,
        collate_fn=collate_image_text,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
    )


def caption_lines(text: str) -> list[str]:
    """The non-empty, stripped lines of a caption file: alternative captions for one image (a
    byte-order mark, which editors on Windows write, is not part of the first)."""
    text = text.removeprefix("\ufeff")
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_sample(
    source: str | PathLike | bytes,
    label: str,
    caption: str,
    transform: TransformFn,
    rng: np.random.Generator,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Sample | BadFile:
    """Decode and transform one image, or a :class:`BadFile` (at ``label``) if it is unusable."""
    try:
        image = load_image(source, max_pixels=max_pixels)
    except BadImageError as e:
        return BadFile(label, e.reason)
    return transform(image, caption, rng)


class MapDataset(Dataset):
    """Base for map-style datasets: per-item randomness from ``(seed, epoch, index)``.

    Subclasses implement ``__len__``, ``_get(index, rng)`` and ``captions()``.
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentations drawn for every item (call before each epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator for item ``index`` this epoch: the same item always gets the same draws."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample | BadFile:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
        return self._get(index, self.item_rng(index))

    def _get(self, index: int, rng: np.random.Generator) -> Sample | BadFile:
        raise NotImplementedError

    def captions(self) -> Iterator[str]:
        raise NotImplementedError
