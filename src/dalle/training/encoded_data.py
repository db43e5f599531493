"""What a frozen model makes of a data set's images, cached when the data set is finite.

The transformer trains on a frozen dVAE's image tokens and the unCLIP prior on a frozen CLIP's
image embeddings: both read ``(encodings, captions)`` batches. A finite (map-style) data set is
encoded once into ``RUN/<cache_file>`` (the encodings and captions of every readable example,
keyed by the encoder's weights, so another model's cache is never read back); later epochs and
resumed runs read the cache. Streams (the shapes world, tar shards) are encoded batch by batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import IterableDataset

from dalle.data.base import BadFile, SkipReport
from dalle.models.pretrained import weights_id
from dalle.training.batches import step_batches
from dalle.utils.io import atomic_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrozenEncoder:
    """A frozen model's view of images: ``encode`` (B, 3, H, W) -> (B, ...) on its device."""

    kind: str  # the metadata key of the cache ("vae", "clip")
    model_id: str  # weights_id of the model
    encode: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    cache_file: str
    tensor_key: str
    store_dtype: torch.dtype  # on disk
    dtype: torch.dtype  # in batches
    description: str  # for people: "image tokens"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) flattened encodings, on the CPU, in ``dtype``."""
        return self.encode(images.to(self.device)).flatten(1).to(self.dtype).cpu()


def dvae_tokens(vae) -> FrozenEncoder:
    """A dVAE's image tokens (B, h * w); cached as int16 in ``image_tokens.safetensors``."""
    return FrozenEncoder(
        "vae", weights_id(vae), vae.encode, next(vae.parameters()).device,
        "image_tokens.safetensors", "tokens", torch.int16, torch.long, "image tokens",
    )  # fmt: skip


def clip_image_embeddings(clip) -> FrozenEncoder:
    """A CLIP's unit image embeddings (B, D); cached in ``clip_embeddings.safetensors``."""
    return FrozenEncoder(
        "clip", weights_id(clip), clip.encode_image, clip.logit_scale.device,
        "clip_embeddings.safetensors", "embeddings", torch.float32, torch.float32,
        "CLIP image embeddings",
    )  # fmt: skip


def is_finite(dataset) -> bool:
    """A map-style data set (folders, CelebA) rather than a stream (shapes, tar shards)."""
    return not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__")


def encode_dataset(
    dataset,
    encoder: FrozenEncoder,
    batch_size: int = 64,
    report: SkipReport | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Every readable example of a map-style data set: (M, D) encodings and the M captions."""
    report = report if report is not None else SkipReport()
    encoded, captions, images = [], [], []

    def flush() -> None:
        if images:
            encoded.append(encoder(torch.stack(images)))
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
    return torch.cat(encoded), captions


def save_cache(path: Path, encoder: FrozenEncoder, encoded: torch.Tensor, captions: list[str]):
    with atomic_path(path) as tmp:
        save_file(
            {encoder.tensor_key: encoded.to(encoder.store_dtype).contiguous()},
            str(tmp),
            metadata={"captions": json.dumps(captions), encoder.kind: encoder.model_id},
        )


def load_cache(path: Path, encoder: FrozenEncoder) -> tuple[torch.Tensor, list[str]] | None:
    """The cached (M, D) encodings and captions, or None if there is none for this model."""
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get(encoder.kind) != encoder.model_id:
        logger.warning("%s was made with another %s; encoding again", path, encoder.kind)
        return None
    encoded = load_file(str(path))[encoder.tensor_key].flatten(1).to(encoder.dtype)
    return encoded, json.loads(meta["captions"])


class EncodedBatches:
    """Endless ``(encodings (B, D), captions)`` batches from batch ``start_step`` on: from the
    cache (shuffled per epoch by (seed, epoch)) or encoded as the data is read."""

    def __init__(
        self,
        dataset,
        encoder: FrozenEncoder | None,
        batch_size: int,
        seed: int,
        cache: tuple[torch.Tensor, list[str]] | None,
        report: SkipReport,
    ) -> None:
        self.dataset, self.encoder, self.batch_size, self.seed = dataset, encoder, batch_size, seed
        self.cache, self.report = cache, report

    def __call__(self, start_step: int) -> Iterator[tuple[torch.Tensor, list[str]]]:
        if self.cache is not None:
            yield from self._cached(start_step)
            return
        if self.encoder is None:
            raise ValueError("no cache and no encoder: nothing to read batches from")
        for images, captions in step_batches(
            self.dataset, self.batch_size, start_step, self.seed, self.report
        ):
            yield self.encoder(images), captions

    def _cached(self, start_step: int) -> Iterator[tuple[torch.Tensor, list[str]]]:
        encoded, captions = self.cache  # type: ignore[misc]
        encoded = encoded.flatten(1)
        n = len(captions)
        epoch, offset = divmod(start_step * self.batch_size, n)
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
            yield encoded[index], [captions[i] for i in index]
