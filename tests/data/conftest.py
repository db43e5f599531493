"""Tiny on-disk fixtures of every dataset format, built in tmp_path."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dalle.data.celeba import CELEBA_ATTRIBUTES


def random_image(seed: int, size: tuple[int, int] = (20, 30)) -> Image.Image:
    """An RGB image of ``size`` (width, height) with random pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def truncated_jpeg(seed: int = 0) -> bytes:
    data = image_bytes(random_image(seed), "JPEG")
    return data[: len(data) // 2]


GARBAGE = b"this is not an image at all, just some text\n" * 4


@pytest.fixture
def img() -> SimpleNamespace:
    """Image helpers for tests (conftest modules are not importable by name)."""
    return SimpleNamespace(
        random=random_image, to_bytes=image_bytes, truncated_jpeg=truncated_jpeg, garbage=GARBAGE
    )


@pytest.fixture
def caption_folder(tmp_path: Path) -> Path:
    """5 captioned items (2 good at max_pixels=1000), plus one image without caption."""
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    random_image(1).save(root / "a.png")
    (root / "a.txt").write_text("a red square to the left of a circle\n")
    random_image(2).save(root / "sub" / "b.jpg")
    (root / "sub" / "b.txt").write_text("first caption\n\n  second caption  \n")
    random_image(3).save(root / "c.png")  # no caption: left out
    (root / "broken.png").write_bytes(GARBAGE)
    (root / "broken.txt").write_text("never seen")
    (root / "trunc.jpg").write_bytes(truncated_jpeg())
    (root / "trunc.txt").write_text("never seen either")
    random_image(4, (50, 40)).save(root / "big.png")  # 2000 pixels
    (root / "big.txt").write_text("too big")
    (root / "notes.md").write_text("not an image extension: ignored")
    return root


@pytest.fixture
def metadata_folder(tmp_path: Path) -> Path:
    root = tmp_path / "hf"
    (root / "images").mkdir(parents=True)
    random_image(5).save(root / "images" / "x.png")
    random_image(6).save(root / "images" / "y.jpg", quality=95)
    (root / "images" / "fake.jpg").write_bytes(GARBAGE)
    rows = [
        {"file_name": "images/x.png", "text": "a blue triangle", "canonical": {"shape": "tri"}},
        {"file_name": "images/y.jpg", "text": ["one way to say it", "another way"]},
        {"file_name": "images/missing.png", "text": "gone"},
        {"file_name": "images/fake.jpg", "text": "fake"},
    ]
    lines = [json.dumps(row) for row in rows]
    (root / "metadata.jsonl").write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n")
    return root


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


SHARD_CONTENTS = [
    [("k0", "png", "caption zero"), ("k1", "jpg", "caption one"), ("bad", "garbage", "bad one")],
    [("k2", "png", "caption two"), ("k3", "png", "caption three"), ("notxt", "png", None)],
    [("k4", "webp", "caption four"), ("k5", "png", "caption five"), ("onlytxt", None, "lonely")],
]


@pytest.fixture
def good_shard_captions() -> list[str]:
    return sorted(f"caption {n}" for n in "zero one two three four five".split())


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    """3 shards: 6 good samples, a corrupt .png, a sample without .txt, one without image."""
    root = tmp_path / "shards"
    root.mkdir()
    for i, members in enumerate(SHARD_CONTENTS):
        with tarfile.open(root / f"shard-{i:06d}.tar", "w") as tar:
            for j, (key, kind, caption) in enumerate(members):
                if kind == "garbage":
                    _add_member(tar, f"{key}.png", GARBAGE)
                elif kind is not None:
                    fmt = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[kind]
                    data = image_bytes(random_image(10 * i + j), fmt)
                    _add_member(tar, f"{key}.{kind}", data)
                if caption is not None:
                    _add_member(tar, f"{key}.txt", caption.encode())
    return root


def celeba_row(name: str, on: set[str]) -> str:
    values = ["1" if a in on else "-1" for a in CELEBA_ATTRIBUTES]
    return name + " " + "  ".join(f"{v:>2}" for v in values)


CELEBA_ROWS = [
    ("000001.jpg", {"Smiling", "Blond_Hair", "Eyeglasses", "No_Beard"}, 0),
    (
        "000002.jpg",
        {
            "Male",
            "Young",
            "Smiling",
            "Black_Hair",
            "Mustache",
            "Eyeglasses",
            "Wearing_Hat",
            "No_Beard",
        },
        0,
    ),
    ("000003.jpg", {"Male", "Bald", "Big_Nose", "Pointy_Nose", "No_Beard"}, 0),
    ("000004.jpg", {"Young", "Wavy_Hair", "Brown_Hair", "No_Beard", "Wearing_Earrings"}, 1),
    ("000005.jpg", {"No_Beard"}, 2),
    ("000006.jpg", {"Male", "Gray_Hair", "No_Beard"}, 2),
]


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    for i, (name, _, _) in enumerate(CELEBA_ROWS):
        random_image(100 + i, (178, 218)).save(root / "img_align_celeba" / name, quality=90)
    header = [str(len(CELEBA_ROWS)), " ".join(CELEBA_ATTRIBUTES)]
    rows = [celeba_row(name, on) for name, on, _ in CELEBA_ROWS]
    (root / "list_attr_celeba.txt").write_text("\n".join(header + rows) + "\n")
    partition = [f"{name} {split}" for name, _, split in CELEBA_ROWS]
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root
