"""Batches as a function of the data position, so a resumed run sees exactly the data it would
have seen.

The position is what was read before the next batch: ``step * batch_size`` samples when no file
was bad; a run saves the position itself with each checkpoint (``StepBatches.position``), since
skipped files move it further.
- Streams that can start anywhere (the shapes world) start at the position.
- Finite map-style data sets are shuffled per epoch by a permutation seeded with (seed, epoch),
  and told the epoch (their random augmentation and caption choice depend on it); the position
  counts the indices read, bad files included.
- Other streams (tar shards) are replayed and the first ``position`` good samples skipped.
Bad files are skipped and recorded in the ``SkipReport``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

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
    """``(position after it, sample)`` for each readable sample from position ``start`` on."""
    if isinstance(dataset, ShapesStream):
        # every process reads the same global batches (and takes its slice), so no sharding here
        for k, item in enumerate(dataset.at_position(start)):
            yield start + k + 1, item
    elif isinstance(dataset, IterableDataset):
        epoch, skip, position = 0, start, start
        while True:  # replay the stream, epoch after epoch
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            seen = 0
            for item in iter_samples(dataset, report):
                seen += 1
                if skip > 0:
                    skip -= 1
                    continue
                position += 1
                yield position, item
            if seen == 0:
                raise ValueError(f"the data set yielded no readable samples ({report.summary()})")
            epoch += 1
    else:
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError("the data set is empty")
        current, bad_run = None, 0
        for position, index in enumerate(_map_indices(n, start, seed), start + 1):
            epoch = (position - 1) // n
            if epoch != current and hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)  # each epoch its own augmentation and caption choice
                current = epoch
            item = dataset[index]
            if isinstance(item, BadFile):
                report.add(item)
                bad_run += 1
                if bad_run >= 2 * n:  # a whole epoch lies within: no file is readable
                    raise ValueError(f"none of the data set's {n} files is readable "
                                     f"({report.summary()})")  # fmt: skip
                continue
            bad_run = 0
            yield position, item


class StepBatches:
    """Endless ``(images (B, 3, H, W), captions)`` batches from batch ``start_step`` on, or from
    the data ``position`` a checkpoint saved; ``position`` is, after each batch, where the next
    one starts. (A data set whose samples hold a tuple of tensors gives a tuple of batches.)"""

    def __init__(
        self,
        dataset: Dataset | IterableDataset,
        batch_size: int,
        start_step: int = 0,
        seed: int = 0,
        report: SkipReport | None = None,
        position: int | None = None,
    ) -> None:
        report = report if report is not None else SkipReport()
        self.batch_size = batch_size
        self.position = start_step * batch_size if position is None else position
        self._samples = _samples(dataset, self.position, seed, report)

    def __iter__(self) -> StepBatches:
        return self

    def close(self) -> None:
        """Stop reading (closing any open shard)."""
        self._samples.close()

    def __next__(self) -> tuple[torch.Tensor, list[str]]:
        chunk = list(itertools.islice(self._samples, self.batch_size))
        if len(chunk) < self.batch_size:
            raise ValueError("the data stream ended")
        self.position = chunk[-1][0]
        inputs, captions = zip(*(item for _, item in chunk), strict=True)
        if isinstance(inputs[0], tuple):  # several tensors per sample: stack each
            return tuple(torch.stack(x) for x in zip(*inputs, strict=True)), list(captions)
        return torch.stack(inputs), list(captions)


class MappedBatches:
    """``fn`` of each batch of ``batches``, with its data ``position``."""

    def __init__(self, batches: StepBatches, fn: Callable) -> None:
        self.batches, self.fn = batches, fn

    @property
    def position(self) -> int:
        return self.batches.position

    def __iter__(self) -> MappedBatches:
        return self

    def close(self) -> None:
        self.batches.close()

    def __next__(self):
        return self.fn(next(self.batches))
