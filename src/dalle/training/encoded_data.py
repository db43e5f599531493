"""What a frozen model makes of a data set's images, cached when the data set is finite.

The transformer trains on a frozen dVAE's image tokens and the unCLIP prior on a frozen CLIP's
image embeddings: both read ``(encodings, captions)`` batches; the unCLIP decoder reads the images
too, ``(images, encodings, captions)``. A finite (map-style) data set is encoded once into
``RUN/<cache_file>`` (the encodings, captions and data set indices of every readable example,
keyed by the encoder's weights, so another model's cache is never read back); later epochs and
resumed runs read the cache (and, for images, the examples at the cached indices). Streams (the
shapes world, tar shards) are encoded batch by batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset, IterableDataset

from dalle.data.base import BadFile, SkipReport
from dalle.models.pretrained import weights_id
from dalle.training.batches import MappedBatches, StepBatches
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


class EncodedCache(NamedTuple):
    """Every readable example of a finite data set, encoded."""

    encoded: torch.Tensor  # (M, D)
    captions: list[str]
    indices: torch.Tensor | None = None  # (M,) each example's index in the data set


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
) -> EncodedCache:
    """Every readable example of a map-style data set: (M, D) encodings, the M captions and
    their indices in the data set."""
    report = report if report is not None else SkipReport()
    encoded, captions, images, indices = [], [], [], []

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
        indices.append(index)
        if len(images) == batch_size:
            flush()
    flush()
    if not captions:
        raise ValueError("the data set has no readable examples")
    return EncodedCache(torch.cat(encoded), captions, torch.tensor(indices, dtype=torch.long))


def save_cache(
    path: Path, encoder: FrozenEncoder, cache: EncodedCache, data: str | None = None
) -> None:
    """Write the cache, keyed by the encoder's weights and ``data``, a description of the data
    set it was made from (its spec and size), so that neither is mistaken for another."""
    tensors = {encoder.tensor_key: cache.encoded.to(encoder.store_dtype).contiguous()}
    if cache.indices is not None:
        tensors["indices"] = cache.indices.long().contiguous()
    meta = {"captions": json.dumps(cache.captions), encoder.kind: encoder.model_id}
    if data is not None:
        meta["data"] = data
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_cache(path: Path, encoder: FrozenEncoder, data: str | None = None) -> EncodedCache | None:
    """The cached encodings, captions and indices, or None if there is none for this model (and,
    if ``data`` is given, for this data set)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get(encoder.kind) != encoder.model_id:
            logger.warning("%s was made with another %s; encoding again", path, encoder.kind)
            return None
        if data is not None and meta.get("data", data) != data:
            logger.warning("%s was made from %s, not %s; encoding again", path, meta["data"], data)
            return None
        tensors = load_file(str(path))
        encoded = tensors[encoder.tensor_key].flatten(1).to(encoder.dtype)
        return EncodedCache(encoded, json.loads(meta["captions"]), tensors.get("indices"))
    except (SafetensorError, OSError, KeyError, ValueError) as e:  # cut short, or not ours
        logger.warning("%s cannot be read (%s); encoding again", path, e)
        return None


class EncodedBatches:
    """Endless ``(encodings (B, D), captions)`` batches from batch ``start_step`` on, or with
    ``with_images`` ``(images (B, 3, H, W), encodings, captions)``: from the cache (shuffled per
    epoch by (seed, epoch)) or encoded as the data is read."""

    def __init__(
        self,
        dataset,
        encoder: FrozenEncoder | None,
        batch_size: int,
        seed: int,
        cache: EncodedCache | tuple[torch.Tensor, list[str]] | None,
        report: SkipReport,
        with_images: bool = False,
    ) -> None:
        self.dataset, self.encoder, self.batch_size, self.seed = dataset, encoder, batch_size, seed
        self.cache = None if cache is None else EncodedCache(*cache)
        self.report, self.with_images = report, with_images

    def __call__(self, start_step: int, position: int | None = None) -> Iterator[tuple]:
        """Batches from batch ``start_step`` on, or from the data ``position`` a checkpoint
        saved (the iterator's ``position``)."""
        if self.cache is not None:
            source, encode = _CachedExamples(self.cache, self.dataset, self.with_images), None
        elif self.encoder is None:
            raise ValueError("no cache and no encoder: nothing to read batches from")
        else:
            source, encode = self.dataset, self.encoder
        with_images = self.with_images

        def arrange(batch):
            inputs, captions = batch
            if encode is not None:  # read from the data: encode the images
                inputs = (inputs, encode(inputs)) if with_images else encode(inputs)
            return (*inputs, captions) if with_images else (inputs, captions)

        batches = StepBatches(source, self.batch_size, start_step, self.seed, self.report, position)
        return MappedBatches(batches, arrange)


class _CachedExamples(Dataset):
    """A cache as a map-style data set: row i is ``(encoding, caption)``, or with images
    ``((image, encoding), caption)``, the image read from the data set at the cached index (a file
    that went bad since is a BadFile; one that changed is an error)."""

    def __init__(self, cache: EncodedCache, dataset, with_images: bool) -> None:
        self.cache, self.dataset, self.with_images = cache, dataset, with_images
        self.encoded = cache.encoded.flatten(1)
        if with_images:
            if cache.indices is None:
                raise ValueError("this cache has no data set indices: encode the data set again")
            if len(cache.indices) and int(cache.indices.max()) >= len(dataset):
                raise ValueError(
                    "the data set has fewer examples than when its encodings were cached: "
                    "delete the cache file to encode it again"
                )

    def __len__(self) -> int:
        return len(self.cache.captions)

    def __getitem__(self, row: int):
        caption = self.cache.captions[row]
        if not self.with_images:
            return self.encoded[row], caption
        item = self.dataset[int(self.cache.indices[row])]  # type: ignore[index]
        if isinstance(item, BadFile):
            return item
        if item[1] != caption:
            raise ValueError(
                f"example {int(self.cache.indices[row])} of the data set reads {item[1]!r}, "  # type: ignore[index]
                f"but was cached as {caption!r}: the data changed since its encodings were "
                "cached; delete the cache file to encode it again"
            )
        return (item[0], self.encoded[row]), caption
