"""Image folders: captions in ``.txt`` files beside the images, or in a ``metadata.jsonl`` index."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dalle.data.base import (
    BadFile,
    DatasetFormatError,
    MapDataset,
    Sample,
    caption_lines,
    load_sample,
)
from dalle.data.images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from dalle.data.transforms import ImageTransform, TransformConfig, as_transform

logger = logging.getLogger(__name__)


def _existing_dir(root: str | os.PathLike) -> Path:
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {path}")
    return path


def find_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, sorted), skipping hidden files and folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found)


class CaptionFolderDataset(MapDataset):
    """A folder of images, each with a same-named ``.txt`` caption (``cat.jpg`` + ``cat.txt``).

    Images without a caption file are left out (a warning gives the count). A caption file with
    several non-empty lines holds alternatives: each item picks one at random.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: ImageTransform | TransformConfig,
        seed: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__(seed)
        self.root = _existing_dir(root)
        self.transform = as_transform(transform)
        self.max_pixels = max_pixels
        self.items: list[tuple[Path, Path]] = []
        uncaptioned: list[Path] = []
        for image_path in find_images(self.root):
            caption_path = image_path.with_suffix(".txt")
            if caption_path.is_file():
                self.items.append((image_path, caption_path))
            else:
                uncaptioned.append(image_path)
        self.num_uncaptioned = len(uncaptioned)
        if uncaptioned:
            logger.warning(
                "%d of %d images in %s have no .txt caption and are left out (first: %s)",
                len(uncaptioned),
                len(uncaptioned) + len(self.items),
                self.root,
                uncaptioned[0],
            )
        if not self.items:
            raise ValueError(f"no captioned images ({', '.join(IMAGE_EXTENSIONS)}) in {self.root}")

    def __len__(self) -> int:
        return len(self.items)

    def _get(self, index: int, rng: np.random.Generator) -> Sample | BadFile:
        image_path, caption_path = self.items[index]
        try:
            lines = caption_lines(caption_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return BadFile(str(caption_path), "unreadable caption")
        if not lines:
            return BadFile(str(caption_path), "empty caption")
        caption = lines[int(rng.integers(len(lines)))] if len(lines) > 1 else lines[0]
        return load_sample(
            image_path, str(image_path), caption, self.transform, rng, self.max_pixels
        )

    def captions(self) -> Iterator[str]:
        """Every caption line of every item, without decoding images."""
        for _, caption_path in self.items:
            try:
                yield from caption_lines(caption_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as e:
                logger.warning("unreadable caption %s: %s", caption_path, e)


class MetadataFolderDataset(MapDataset):
    """The Hugging Face ``imagefolder`` layout: ``root/metadata.jsonl`` lists the images.

    Each line is a JSON object with ``file_name`` (relative to ``root``) and the caption under
    ``caption_column`` (a string, or a list of alternative strings); other keys are ignored. A
    malformed line raises :class:`DatasetFormatError`; a missing image is a :class:`BadFile`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: ImageTransform | TransformConfig,
        seed: int = 0,
        caption_column: str = "text",
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__(seed)
        self.root = _existing_dir(root)
        self.transform = as_transform(transform)
        self.caption_column = caption_column
        self.max_pixels = max_pixels
        self.metadata_path = self.root / "metadata.jsonl"
        if not self.metadata_path.is_file():
            raise FileNotFoundError(f"no metadata.jsonl in {self.root}")
        self.items = self._read_metadata()
        if not self.items:
            raise ValueError(f"{self.metadata_path} lists no images")

    def _read_metadata(self) -> list[tuple[str, list[str]]]:
        items = []
        with open(self.metadata_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    items.append(self._parse_line(line, lineno))
        return items

    def _parse_line(self, line: str, lineno: int) -> tuple[str, list[str]]:
        where = f"{self.metadata_path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise DatasetFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
        file_name = row.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DatasetFormatError(f"{where}: missing or non-string 'file_name'")
        if self.caption_column not in row:
            raise DatasetFormatError(
                f"{where}: no caption column {self.caption_column!r} (keys: {', '.join(row)})"
            )
        value = row[self.caption_column]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DatasetFormatError(
                f"{where}: {self.caption_column!r} must be a string or strings"
            )
        return file_name, [v.strip() for v in value if v.strip()]

    def __len__(self) -> int:
        return len(self.items)

    def _get(self, index: int, rng: np.random.Generator) -> Sample | BadFile:
        file_name, captions = self.items[index]
        image_path = self.root / file_name
        if not captions:
            return BadFile(str(image_path), "empty caption")
        caption = captions[int(rng.integers(len(captions)))] if len(captions) > 1 else captions[0]
        return load_sample(
            image_path, str(image_path), caption, self.transform, rng, self.max_pixels
        )

    def captions(self) -> Iterator[str]:
        """Every caption in the index, without opening images."""
        for _, captions in self.items:
            yield from captions
