"""CelebA as distributed (aligned 178x218 faces), captioned from its 40 binary attributes.

Layout under ``root``::

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt      # line 1: count; line 2: 40 names; then "000001.jpg -1  1 ..."
    list_eval_partition.txt   # "000001.jpg 0"  (0 train, 1 val, 2 test: the official split)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dalle.data.base import BadFile, DatasetFormatError, MapDataset, Sample, load_sample
from dalle.data.images import DEFAULT_MAX_PIXELS
from dalle.data.transforms import ImageTransform, TransformConfig, as_transform

logger = logging.getLogger(__name__)

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
SPLITS = {"train": 0, "val": 1, "valid": 1, "test": 2, "all": None}
MAX_IMAGE_SIZE = 128  # the face crop is 140 px; we only ever downscale it
FACE_CROP_FRACTION = 140 / 178  # side of the centred square crop, relative to the shorter side

# (attribute, phrase) in caption order; adjectives go before "man"/"woman".
_ADJECTIVES = [("Young", "young"), ("Chubby", "chubby"), ("Pale_Skin", "pale-skinned")]
_ADJECTIVES += [("Smiling", "smiling"), ("Bald", "bald")]
_HAIR_COLOURS = [("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown")]
_HAIR_COLOURS += [("Gray_Hair", "gray")]
_FEATURES = [("Bangs", "bangs"), ("Receding_Hairline", "a receding hairline")]
_FEATURES += [("Goatee", "a goatee"), ("Mustache", "a mustache"), ("Sideburns", "sideburns")]
_FEATURES += [("5_o_Clock_Shadow", "stubble"), ("Narrow_Eyes", "narrow eyes")]
_FEATURES += [("Bags_Under_Eyes", "bags under the eyes"), ("Big_Lips", "big lips")]
_FEATURES += [("Mouth_Slightly_Open", "a slightly open mouth"), ("Rosy_Cheeks", "rosy cheeks")]
_FEATURES += [("High_Cheekbones", "high cheekbones"), ("Oval_Face", "an oval face")]
_FEATURES += [("Double_Chin", "a double chin"), ("Eyeglasses", "eyeglasses")]
_FEATURES += [("Heavy_Makeup", "heavy makeup")]
_WEARING = [("Wearing_Hat", "a hat"), ("Wearing_Lipstick", "lipstick")]
_WEARING += [("Wearing_Earrings", "earrings"), ("Wearing_Necklace", "a necklace")]
_WEARING += [("Wearing_Necktie", "a necktie")]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _present(has: Mapping[str, bool], pairs: list[tuple[str, str]]) -> list[str]:
    """The phrases of the attributes that are set."""
    return [phrase for key, phrase in pairs if has.get(key, False)]


def _hair(has: Mapping[str, bool]) -> list[str]:
    if has.get("Bald", False):
        return []
    texture = _present(has, [("Wavy_Hair", "wavy"), ("Straight_Hair", "straight")])[:1]
    colours = " and ".join(_present(has, _HAIR_COLOURS))
    words = " ".join(texture + ([colours] if colours else []))
    return [f"{words} hair"] if words else []


def _face(has: Mapping[str, bool]) -> list[str]:
    parts = []
    # No_Beard is the only negative attribute; a goatee is already a kind of beard.
    if not has.get("No_Beard", True) and not has.get("Goatee", False):
        parts.append("a beard")
    brows = _present(has, [("Bushy_Eyebrows", "bushy"), ("Arched_Eyebrows", "arched")])
    if brows:
        parts.append(" ".join(brows) + " eyebrows")
    nose = _present(has, [("Big_Nose", "big"), ("Pointy_Nose", "pointy")])
    if nose:
        parts.append("a " + " ".join(nose) + " nose")
    return parts


def celeba_caption(attrs: Mapping[str, bool]) -> str:
    """Readable English from CelebA attributes.

    Missing keys count as absent (a missing ``No_Beard`` as no beard); Attractive and Blurry
    are not described.

    >>> celeba_caption({"Male": True, "Young": True, "Smiling": True, "Black_Hair": True,
    ...                 "Mustache": True, "Eyeglasses": True, "Wearing_Hat": True})
    'a young smiling man with black hair, a mustache and eyeglasses, wearing a hat'
    """
    words = _present(attrs, _ADJECTIVES) + ["man" if attrs.get("Male", False) else "woman"]
    article = "an" if words[0][0] in "aeiou" else "a"
    caption = f"{article} {' '.join(words)}"
    features = _hair(attrs) + _face(attrs) + _present(attrs, _FEATURES)
    if features:
        caption += " with " + _join(features)
    wearing = _present(attrs, _WEARING)
    if wearing:
        caption += (", wearing " if features else " wearing ") + _join(wearing)
    return caption


def read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt``: (attribute names, file names, values bool (N, K))."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA attribute file not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DatasetFormatError(f"{path}:1: expected the number of images, got {lines[:1]!r}")
    names = lines[1].split()
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or not all(v in ("1", "-1") for v in fields[1:]):
            raise DatasetFormatError(
                f"{path}:{lineno}: expected a file name and {len(names)} values of 1 or -1, "
                f"got {line[:80]!r}"
            )
        files.append(fields[0])
        rows.append([v == "1" for v in fields[1:]])
    if len(files) != int(lines[0]):
        raise DatasetFormatError(f"{path}: header says {int(lines[0])} images, found {len(files)}")
    unknown = sorted(set(names) - set(CELEBA_ATTRIBUTES))
    if unknown:
        logger.warning("%s: attributes not used in captions: %s", path, ", ".join(unknown))
    return names, files, np.array(rows, dtype=bool).reshape(len(files), len(names))


def read_celeba_partition(path: Path) -> dict[str, int]:
    """Parse ``list_eval_partition.txt``: file name -> 0 (train), 1 (val) or 2 (test)."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA partition file not found: {path}")
    partition = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise DatasetFormatError(
                    f"{path}:{lineno}: expected '<file> <0|1|2>', got {line.strip()[:80]!r}"
                )
            partition[fields[0]] = int(fields[1])
    return partition


def write_fake_celeba(root: str | os.PathLike, n: int = 30, n_test: int = 6) -> Path:
    """A stand-in with CelebA's layout (``img_align_celeba/NNNNNN.jpg`` of 178 x 218 random
    pixels, random attributes, the last ``n_test`` images in the ``test`` partition and the rest
    in ``train``), to try the recipe's commands and to time its steps without the data set."""
    root = Path(root)
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, partition = [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        face = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(face).save(images / name, quality=90)
        values = rng.choice(["1", "-1"], len(CELEBA_ATTRIBUTES))
        rows.append(name + " " + " ".join(f"{v:>2}" for v in values))
        partition.append(f"{name} {0 if i < n - n_test else 2}")
    header = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    (root / "list_attr_celeba.txt").write_text("\n".join(header + rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


def face_crop(image: Image.Image) -> Image.Image:
    """The centred square holding the face: 140 px of an aligned 178x218 image, (19, 39) offset."""
    width, height = image.size
    side = round(min(width, height) * FACE_CROP_FRACTION)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


class _FaceCropThen:
    """Crop the face, then apply the user's transform."""

    def __init__(self, transform: ImageTransform) -> None:
        self.transform = transform

    def __call__(
        self, image: Image.Image, caption: str, rng: np.random.Generator
    ) -> tuple[torch.Tensor, str]:
        return self.transform(face_crop(image), caption, rng)


class CelebADataset(MapDataset):
    """CelebA faces at up to 128 x 128 with attribute captions, on the official partition."""

    def __init__(
        self,
        root: str | os.PathLike,
        transform_or_image_size: ImageTransform | TransformConfig | int,
        split: str = "train",
        seed: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__(seed)
        if split not in SPLITS:
            raise ValueError(f"unknown CelebA split {split!r} (choose from {', '.join(SPLITS)})")
        if isinstance(transform_or_image_size, int):
            transform_or_image_size = TransformConfig(image_size=transform_or_image_size)
        transform = as_transform(transform_or_image_size)
        if transform.config.image_size > MAX_IMAGE_SIZE:
            raise ValueError(
                f"CelebA image_size must be at most {MAX_IMAGE_SIZE} (the aligned faces give a "
                f"140 px crop), got {transform.config.image_size}"
            )
        self.root = Path(root)
        self.split = split
        self.max_pixels = max_pixels
        self.transform = _FaceCropThen(transform)
        self.image_dir = self.root / "img_align_celeba"
        if (self.image_dir / "img_align_celeba").is_dir():  # the Kaggle archive nests it
            self.image_dir = self.image_dir / "img_align_celeba"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"CelebA image folder not found: {self.image_dir}")
        attr_path = self.root / "list_attr_celeba.txt"
        self.attribute_names, files, values = read_celeba_attributes(attr_path)
        keep = self._split_mask(files, attr_path)
        self.files = [name for name, k in zip(files, keep, strict=True) if k]
        self.values = values[keep]  # (N, K) bool
        if not self.files:
            raise ValueError(f"CelebA split {split!r} in {self.root} is empty")

    def _split_mask(self, files: list[str], attr_path: Path) -> np.ndarray:
        wanted = SPLITS[self.split]
        if wanted is None:
            return np.ones(len(files), dtype=bool)
        partition_path = self.root / "list_eval_partition.txt"
        partition = read_celeba_partition(partition_path)
        missing = [name for name in files if name not in partition]
        if missing:
            raise DatasetFormatError(
                f"{partition_path}: no partition for {len(missing)} image(s) listed in "
                f"{attr_path}, first {missing[0]}"
            )
        return np.array([partition[name] == wanted for name in files], dtype=bool)

    def __len__(self) -> int:
        return len(self.files)

    def attributes(self, index: int) -> dict[str, bool]:
        return dict(zip(self.attribute_names, self.values[index].tolist(), strict=True))

    def _get(self, index: int, rng: np.random.Generator) -> Sample | BadFile:
        path = self.image_dir / self.files[index]
        caption = celeba_caption(self.attributes(index))
        return load_sample(path, str(path), caption, self.transform, rng, self.max_pixels)

    def captions(self) -> Iterator[str]:
        """The caption of every image in the split, without decoding images."""
        for index in range(len(self)):
            yield celeba_caption(self.attributes(index))
