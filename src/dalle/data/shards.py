"""WebDataset tar shards (``KEY.jpg`` + ``KEY.txt``), streamed and split across workers and nodes.

The ``webdataset`` library lists, splits, reads and groups the tar members; the images are
decoded here with :func:`~dalle.data.images.load_image`, so a corrupt member, a sample missing its
image or text, or an unreadable shard is a :class:`BadFile` in the stream, never an exception.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
import random
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch.utils.data
import webdataset as wds
from webdataset.shardlists import expand_urls

from dalle.data.base import BadFile, Sample, caption_lines, load_sample
from dalle.data.images import DEFAULT_MAX_PIXELS
from dalle.data.transforms import ImageTransform, TransformConfig, as_transform

logger = logging.getLogger(__name__)

SHARD_IMAGE_KEYS = ("png", "jpg", "jpeg", "webp")


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("pipe:")


def expand_shard_urls(urls: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """A list of shard paths/URLs from a list, a folder of ``*.tar`` or a brace pattern.

    Local shards must exist (``FileNotFoundError`` names the first missing one).
    """
    if isinstance(urls, (str, os.PathLike)):
        spec = os.fspath(urls)
        if os.path.isdir(spec):
            expanded = sorted(glob.glob(os.path.join(glob.escape(spec), "*.tar")))
            if not expanded:
                raise FileNotFoundError(f"no *.tar shards in folder {spec}")
        else:
            expanded = list(expand_urls(spec))
    else:
        expanded = [os.fspath(u) for u in urls]
    if not expanded:
        raise ValueError("no shards given")
    missing = [u for u in expanded if not _is_remote(u) and not os.path.isfile(u)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(expanded)} shards not found, first: {missing[0]}"
        )
    return expanded


def _every_nth(start: int, step: int) -> Callable[[Iterable[Any]], Iterator[Any]]:
    def split(src: Iterable[Any]) -> Iterator[Any]:
        yield from itertools.islice(src, start, None, step)

    return split


class WebDatasetShards(torch.utils.data.IterableDataset):
    """Samples from WebDataset tar shards; an ``IterableDataset`` yielding samples or BadFiles.

    Shards are split first across processes, then across ``DataLoader`` workers. The process
    ``rank``/``world_size`` come from torch.distributed or the ``RANK``/``WORLD_SIZE`` environment
    variables (as accelerate and torchrun set them) unless given. ``shuffle_buffer > 0`` shuffles
    the shard order per epoch (identically on every rank) and samples within a buffer that size.
    Augmentations are drawn from ``(seed, epoch, shard name, key)``, independent of the split.
    A ``.txt`` member with several non-empty lines holds alternative captions; one is picked.
    Call ``set_epoch`` before each epoch (with non-persistent workers, as the loader copies it).
    """

    def __init__(
        self,
        urls: str | os.PathLike | Sequence[str | os.PathLike],
        transform: ImageTransform | TransformConfig,
        seed: int = 0,
        shuffle_buffer: int = 0,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__()
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if world_size is not None and not 0 <= rank < world_size:  # type: ignore[operator]
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if seed < 0 or shuffle_buffer < 0:
            raise ValueError("seed and shuffle_buffer must be >= 0")
        self.urls = expand_shard_urls(urls)
        self.transform = as_transform(transform)
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.rank = rank
        self.world_size = world_size
        self.max_pixels = max_pixels
        self.epoch = 0
        self._checked_cuts: list[str] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _node_info(self) -> tuple[int, int, int, int]:
        """(rank, world_size, worker, num_workers) for the current process."""
        rank, world_size, worker, num_workers = wds.utils.pytorch_worker_info()
        if self.world_size is not None:
            rank, world_size = self.rank, self.world_size
        return rank, world_size, worker, num_workers  # type: ignore[return-value]

    def _epoch_urls(self) -> list[str]:
        urls = list(self.urls)
        if self.shuffle_buffer > 0:  # the same order on every rank, so the split stays a partition
            random.Random(f"shards-{self.seed}-{self.epoch}").shuffle(urls)
        return urls

    def __iter__(self) -> Iterator[Sample | BadFile]:
        rank, world_size, worker, num_workers = self._node_info()
        if len(self.urls) < world_size * num_workers:
            logger.warning(
                "%d shards for %d processes x %d workers: some get no data",
                len(self.urls),
                world_size,
                num_workers,
            )
        errors: list[BadFile] = [BadFile(url, "truncated shard") for url in self._cut_shards()]

        def record(exn: Exception) -> bool:
            url = next((a for a in reversed(exn.args) if a in self.urls), "<unknown shard>")
            logger.warning("unreadable shard %s: %s", url, exn)
            errors.append(BadFile(str(url), "unreadable shard"))
            return True  # carry on with the next member or shard

        explicit = self.world_size is not None
        stages: list[Any] = [
            wds.SimpleShardList(self._epoch_urls()),
            _every_nth(rank, world_size) if explicit else wds.split_by_node,
            wds.split_by_worker,
            wds.tarfile_to_samples(handler=record),
        ]
        if self.shuffle_buffer > 0:
            rng = random.Random(f"samples-{self.seed}-{self.epoch}-{rank}-{worker}")
            stages.append(wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng))
        for raw in wds.DataPipeline(*stages):
            yield from _drain(errors)
            yield self._to_sample(raw)
        yield from _drain(errors)

    def _cut_shards(self) -> list[str]:
        """Local shards that end without tar's end-of-archive marker (two zero blocks): cut
        short at a member boundary, which a tar reader takes for the end, so the samples after
        the cut would be lost without a word. Their samples before the cut are still read."""
        if self._checked_cuts is None:
            self._checked_cuts = []
            for url in self.urls:
                if _is_remote(url) or not os.path.isfile(url):
                    continue
                with open(url, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(size - 1024, 0))
                    tail = f.read()
                if size >= 1024 and tail.strip(b"\0"):  # smaller: unreadable, said so later
                    logger.warning(
                        "shard %s ends without the end-of-archive marker: cut short?", url
                    )
                    self._checked_cuts.append(url)
        return self._checked_cuts

    def _to_sample(self, raw: dict[str, Any]) -> Sample | BadFile:
        url, key = raw["__url__"], raw["__key__"]
        label = f"{url}:{key}"
        image = next((raw[k] for k in SHARD_IMAGE_KEYS if k in raw), None)
        if image is None:
            return BadFile(label, "missing image")
        if "txt" not in raw:
            return BadFile(label, "missing caption")
        try:
            lines = caption_lines(raw["txt"].decode("utf-8"))
        except UnicodeDecodeError:
            return BadFile(label, "unreadable caption")
        if not lines:
            return BadFile(label, "empty caption")
        name = f"{os.path.basename(url)}:{key}"
        rng = np.random.default_rng([self.seed, self.epoch, zlib.crc32(name.encode())])
        caption = lines[int(rng.integers(len(lines)))] if len(lines) > 1 else lines[0]
        return load_sample(image, label, caption, self.transform, rng, self.max_pixels)

    def captions(self) -> Iterator[str]:
        """Every caption line in every shard (not split), read from the ``.txt`` members only."""
        for url in self.urls:
            try:
                yield from _shard_captions(url)
            except (tarfile.TarError, OSError, EOFError) as e:
                logger.warning("stopped reading captions of unreadable shard %s: %s", url, e)


def _drain(errors: list[BadFile]) -> Iterator[BadFile]:
    while errors:
        yield errors.pop(0)


def _shard_captions(url: str) -> Iterator[str]:
    with wds.gopen(url) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if not (member.isreg() and member.name.lower().endswith(".txt")):
                continue
            data = tar.extractfile(member)
            try:
                yield from caption_lines(data.read().decode("utf-8"))  # type: ignore[union-attr]
            except UnicodeDecodeError:
                logger.warning("undecodable caption %s in %s", member.name, url)
