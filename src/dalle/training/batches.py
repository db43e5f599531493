"""Batches as a function of the step, so a resumed run sees exactly the data it would have seen.

- Streams that can start anywhere (the shapes world) start at ``step * batch_size``.
- Finite map-style data sets are shuffled per epoch by a permutation seeded with (seed, epoch).
- Other streams (tar shards) are replayed and the first ``step * batch_size`` samples skipped.
Bad files are skipped and recorded in the ``SkipReport``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from dalle.data.base import BadFile, SkipReport, iter_samples
from dalle.shapes.dataset import ShapesStream


def _map_indices(n: int, start: int, seed: int) -> Iterator[int]:
    epoch, offset = divmod(start, n)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        yield from (int(i) for i in order[offset:])
        epoch, offset = epoch + 1, 0


def _samples(dataset: Dataset | IterableDataset, start: int, seed: int, report: SkipReport):
    if isinstance(dataset, ShapesStream):
        # every process reads the same global batches (and takes its slice), so no sharding here
        yield from dataset.at_position(start)
    elif isinstance(dataset, IterableDataset):
        epoch = 0
        while True:  # replay the stream, epoch after epoch
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            seen = 0
            for item in iter_samples(dataset, report):
                seen += 1
                if start > 0:
                    start -= 1
                    continue
                yield item
            if seen == 0:
                raise ValueError("the data set yielded no readable samples")
            epoch += 1
    else:
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError("the data set is empty")
        for index in _map_indices(n, start, seed):
            item = dataset[index]
            if isinstance(item, BadFile):
                report.add(item)
                continue
            yield item


def step_batches(
    dataset: Dataset | IterableDataset,
    batch_size: int,
    start_step: int = 0,
    seed: int = 0,
    report: SkipReport | None = None,
) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Endless ``(images (B, 3, H, W), captions)`` batches, starting at batch ``start_step``."""
    report = report if report is not None else SkipReport()
    samples = _samples(dataset, start_step * batch_size, seed, report)
    while True:
        chunk = list(itertools.islice(samples, batch_size))
        if len(chunk) < batch_size:
            raise ValueError("the data stream ended")
        images, captions = zip(*chunk, strict=True)
        yield torch.stack(images), list(captions)
