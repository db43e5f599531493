"""The shapes world as data: single examples, a streaming training set, and a folder export."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info
from tqdm.auto import tqdm

from dalle.shapes.captions import SIZE_STATED_PROB, sample_caption
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import TWO_OBJECT_PROB, HashRandom, sample_scene
from dalle.shapes.spec import CANVAS, Scene
from dalle.utils.io import atomic_path, atomic_write_text


@dataclass(frozen=True)
class ShapesExample:
    scene: Scene
    image: np.ndarray  # (64, 64, 3) uint8
    text: str  # the training caption, possibly a paraphrase
    canonical: str  # its canonical form


def shapes_example(
    split: str, index: int, seed: int = 0, size_words: float = SIZE_STATED_PROB
) -> ShapesExample:
    """Example ``index`` of ``split``: a pure function of its arguments."""
    scene = sample_scene(split, index, seed)
    rng = HashRandom("shapes-v1-caption", split, seed, index)
    text, canonical = sample_caption(scene, rng, size_words)
    return ShapesExample(scene, render_scene(scene), text, canonical)


def _shard_indices(start: int, stop: int | None, shard: int, num_shards: int) -> Iterator[int]:
    index = start + shard
    while stop is None or index < stop:
        yield index
        index += num_shards


def _process_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ShapesStream(IterableDataset):
    """Renders the shapes world on the fly, yielding ``(image (3, H, W) float in [0, 1], caption)``.

    Indices ``start, start + 1, ...`` (up to ``length`` of them, or forever) are split across
    processes and then across data-loader workers, so each index is drawn exactly once.

    Another mix than the split's own: ``two_objects`` (the split's is 0.5) keeps the fraction
    of two-object scenes at that value by skipping one-object scenes (0.5 to 1) or two-object
    ones (below 0.5), decided by a hash of the index, so the stream stays a fixed subsequence of
    the split; ``size_words`` is the chance that a caption states each object's size (0.5).
    """

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        image_size: int = CANVAS,
        start: int = 0,
        length: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        two_objects: float = TWO_OBJECT_PROB,
        size_words: float = SIZE_STATED_PROB,
    ) -> None:
        super().__init__()
        for name, value in (("two_objects", two_objects), ("size_words", size_words)):
            if not 0 <= value <= 1:  # also refuses nan
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        self.two_objects, self.size_words = two_objects, size_words
        sample_scene(split, 0, seed)  # validates the split name early
        if (rank is None) != (world_size is None):
            raise ValueError("pass both rank and world_size, or neither")
        if rank is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.split, self.seed, self.image_size = split, seed, image_size
        self.start, self.length = start, length
        self.rank, self.world_size = rank, world_size

    def _indices(self) -> Iterator[int]:
        rank, world = _process_rank() if self.rank is None else (self.rank, self.world_size)
        worker = get_worker_info()
        wid, nworkers = (worker.id, worker.num_workers) if worker else (0, 1)
        stop = None if self.length is None else self.start + self.length
        return _shard_indices(self.start, stop, rank * nworkers + wid, world * nworkers)

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        if self.image_size != CANVAS:
            size = (self.image_size, self.image_size)
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        return torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255)

    def _keep(self, index: int) -> bool:
        """Whether scene ``index`` is in the stream's mix."""
        if self.two_objects == TWO_OBJECT_PROB:
            return True
        two = len(sample_scene(self.split, index, self.seed).objects) == 2
        p = self.two_objects
        # thin the over-represented kind so that the split's 50/50 becomes p / (1 - p)
        if p > 0.5 and not two:
            keep = (1 - p) / p
        elif p < 0.5 and two:
            keep = p / (1 - p)
        else:
            return True
        return HashRandom("shapes-mix", self.split, self.seed, index).random() < keep

    def at_position(self, position: int) -> ShapesStream:
        """The same stream, unsharded, from its ``position``-th example on (counting only the
        examples the mix keeps, so that a resumed run reads exactly what it would have)."""
        index = self.start
        if self.two_objects == TWO_OBJECT_PROB:
            index += position
        else:
            kept = 0
            while kept < position:  # scenes only, nothing rendered
                kept += self._keep(index)
                index += 1
        return ShapesStream(
            self.split, self.seed, self.image_size, start=index, rank=0, world_size=1,
            two_objects=self.two_objects, size_words=self.size_words,
        )  # fmt: skip

    def __iter__(self) -> Iterator[tuple[torch.Tensor, str]]:
        for index in self._indices():
            if self._keep(index):
                example = shapes_example(self.split, index, self.seed, self.size_words)
                yield self._to_tensor(example.image), example.text

    def captions(self) -> Iterator[str]:
        """Training captions without rendering (infinite unless ``length`` is set). Not split
        across processes: every process reads the same captions (e.g. to train a tokenizer)."""
        stop = None if self.length is None else self.start + self.length
        for index in _shard_indices(self.start, stop, 0, 1):
            if self._keep(index):
                scene = sample_scene(self.split, index, self.seed)
                rng = HashRandom("shapes-v1-caption", self.split, self.seed, index)
                yield sample_caption(scene, rng, self.size_words)[0]


def export_shapes(
    out_dir: str | os.PathLike, split: str, n: int, seed: int = 0, progress: bool = False
) -> Path:
    """Write ``n`` examples as PNGs plus ``metadata.jsonl`` (the Hugging Face imagefolder layout).

    Each metadata line has ``file_name``, ``text`` (the training caption) and ``canonical``.
    Returns the path of ``metadata.jsonl``, which is written last so a finished export is complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(max(n - 1, 0))))
    lines = []
    for index in tqdm(range(n), desc=f"shapes {split}", unit="img", disable=not progress):
        example = shapes_example(split, index, seed)
        name = f"{index:0{digits}d}.png"
        with atomic_path(out / name) as tmp:
            Image.fromarray(example.image).save(tmp, format="PNG")
        record = {"file_name": name, "text": example.text, "canonical": example.canonical}
        lines.append(json.dumps(record) + "\n")
    meta = out / "metadata.jsonl"
    atomic_write_text(meta, "".join(lines))
    return meta
