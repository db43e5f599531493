"""Image tokens for transformer training: encoded by a frozen dVAE, cached when the data is finite.

A finite (map-style) data set is encoded once into ``RUN/image_tokens.safetensors`` (tokens and
the caption of every readable example); later epochs and resumed runs read the cache. Streams
(the shapes world, tar shards) are encoded batch by batch as they are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import IterableDataset

from dalle.data.base import BadFile, SkipReport
from dalle.models.dvae import DiscreteVAE
from dalle.training.batches import step_batches
from dalle.utils.io import atomic_path

logger = logging.getLogger(__name__)
CACHE_FILE = "image_tokens.safetensors"


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def is_finite(dataset) -> bool:
    """A map-style data set (folders, CelebA) rather than a stream (shapes, tar shards)."""
    return not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__")


@torch.no_grad()
def encode_dataset(
    dataset,
    vae: DiscreteVAE,
    batch_size: int = 64,
    report: SkipReport | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Every readable example of a map-style data set: (M, h, w) tokens and the M captions."""
    report = report if report is not None else SkipReport()
    tokens, captions, images = [], [], []

    def flush() -> None:
        if images:
            pixels = torch.stack(images).to(_device(vae))
            tokens.append(vae.encode(pixels).to(torch.int16).cpu())
            if on_batch is not None:
                on_batch(len(images))
            images.clear()

    for index in range(len(dataset)):
        item = dataset[index]
        if isinstance(item, BadFile):
            report.add(item)
            continue
        images.append(item[0])
        captions.append(item[1])
        if len(images) == batch_size:
            flush()
    flush()
    if not captions:
        raise ValueError("the data set has no readable examples")
    return torch.cat(tokens), captions


def save_token_cache(path: Path, tokens: torch.Tensor, captions: list[str], vae_id: str) -> None:
    with atomic_path(path) as tmp:
        save_file(
            {"tokens": tokens.contiguous()},
            str(tmp),
            metadata={"captions": json.dumps(captions), "vae": vae_id},
        )


def load_token_cache(path: Path, vae_id: str) -> tuple[torch.Tensor, list[str]] | None:
    """The cached tokens and captions, or None if there is no cache for this dVAE."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("vae") != vae_id:
        logger.warning("%s was made with another dVAE; encoding again", path)
        return None
    return load_file(str(path))["tokens"].long(), json.loads(meta["captions"])


class TokenBatches:
    """Endless ``(image tokens (B, N), captions)`` batches from batch ``start_step`` on."""

    def __init__(
        self,
        dataset,
        vae: DiscreteVAE,
        batch_size: int,
        seed: int,
        cache: tuple[torch.Tensor, list[str]] | None,
        report: SkipReport,
    ) -> None:
        self.dataset, self.vae, self.batch_size, self.seed = dataset, vae, batch_size, seed
        self.cache, self.report = cache, report

    def __call__(self, start_step: int) -> Iterator[tuple[torch.Tensor, list[str]]]:
        if self.cache is not None:
            yield from self._cached(start_step)
        else:
            for images, captions in step_batches(
                self.dataset, self.batch_size, start_step, self.seed, self.report
            ):
                yield self.vae.encode(images.to(_device(self.vae))).flatten(1).cpu(), captions

    def _cached(self, start_step: int) -> Iterator[tuple[torch.Tensor, list[str]]]:
        tokens, captions = self.cache  # type: ignore[misc]
        n = len(captions)
        position = start_step * self.batch_size
        epoch, offset = divmod(position, n)
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        while True:
            index = []
            while len(index) < self.batch_size:
                take = order[offset : offset + self.batch_size - len(index)]
                index += take.tolist()
                offset += len(take)
                if offset == n:
                    epoch, offset = epoch + 1, 0
                    order = np.random.default_rng([self.seed, epoch]).permutation(n)
            yield tokens[index].flatten(1), [captions[i] for i in index]
