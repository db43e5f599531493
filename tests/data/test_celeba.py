import numpy as np
import pytest
import torch
from PIL import Image

from dalle.data.base import DatasetFormatError
from dalle.data.celeba import CELEBA_ATTRIBUTES, CelebADataset, celeba_caption, face_crop
from dalle.data.transforms import TransformConfig


def test_partition_split_sizes(celeba_root):
    sizes = {
        split: len(CelebADataset(celeba_root, 32, split=split))
        for split in ("train", "val", "test", "all")
    }
    assert sizes == {"train": 3, "val": 1, "test": 2, "all": 6}
    assert CelebADataset(celeba_root, 32, split="test").files == ["000005.jpg", "000006.jpg"]


def test_samples_and_captions(celeba_root):
    ds = CelebADataset(celeba_root, 32, split="train")
    image, caption = ds[1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    assert (
        caption == "a young smiling man with black hair, a mustache and eyeglasses, wearing a hat"
    )
    assert list(ds.captions()) == [
        "a smiling woman with blond hair and eyeglasses",
        "a young smiling man with black hair, a mustache and eyeglasses, wearing a hat",
        "a bald man with a big pointy nose",
    ]
    assert list(CelebADataset(celeba_root, 32, split="val").captions()) == [
        "a young woman with wavy brown hair, wearing earrings"
    ]


def test_caption_from_a_hand_written_attribute_row(tmp_path, celeba_root):
    values = {name: -1 for name in CELEBA_ATTRIBUTES}
    for name in ("Male", "Gray_Hair", "Straight_Hair", "Bushy_Eyebrows", "Wearing_Necktie"):
        values[name] = 1  # No_Beard stays -1: he has a beard
    row = "000001.jpg " + "  ".join(str(values[name]) for name in CELEBA_ATTRIBUTES)
    attr = celeba_root / "list_attr_celeba.txt"
    attr.write_text(f"1\n{' '.join(CELEBA_ATTRIBUTES)}\n{row}\n")
    ds = CelebADataset(celeba_root, 16, split="train")
    assert (
        ds[0][1] == "a man with straight gray hair, a beard and bushy eyebrows, wearing a necktie"
    )


def test_caption_function_edge_cases():
    assert celeba_caption({}) == "a woman"
    assert (
        celeba_caption({"Male": True, "No_Beard": False, "Goatee": True}) == "a man with a goatee"
    )
    assert celeba_caption({"Bald": True, "Black_Hair": True}) == "a bald woman"
    assert celeba_caption({"Wearing_Lipstick": True}) == "a woman wearing lipstick"


def test_face_crop_is_the_centred_140_px_square():
    pixels = np.zeros((218, 178, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(178)[None, :]
    pixels[..., 1] = np.arange(218)[:, None]
    crop = np.asarray(face_crop(Image.fromarray(pixels)))
    assert crop.shape == (140, 140, 3)
    assert crop[0, 0, :2].tolist() == [19, 39]
    assert crop[-1, -1, :2].tolist() == [158, 178]


def test_image_size_limit_and_transform_config(celeba_root):
    with pytest.raises(ValueError, match="at most 128"):
        CelebADataset(celeba_root, 129)
    ds = CelebADataset(celeba_root, TransformConfig(image_size=128, hflip_prob=1.0), split="test")
    assert ds[0][0].shape == (3, 128, 128)


def test_malformed_attribute_line_names_file_and_line(celeba_root):
    attr = celeba_root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = lines[4].replace("-1", "0", 1)
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetFormatError, match=r"list_attr_celeba\.txt:5: expected a file name and 40"
    ):
        CelebADataset(celeba_root, 32)


def test_missing_files_are_clear_errors(celeba_root):
    (celeba_root / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        CelebADataset(celeba_root, 32)
    (celeba_root / "list_attr_celeba.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        CelebADataset(celeba_root, 32, split="all")


def test_partition_must_cover_every_image(celeba_root):
    part = celeba_root / "list_eval_partition.txt"
    part.write_text("\n".join(part.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetFormatError, match="000006.jpg"):
        CelebADataset(celeba_root, 32)
    part.write_text("000001.jpg train\n")
    with pytest.raises(DatasetFormatError, match=r"list_eval_partition\.txt:1"):
        CelebADataset(celeba_root, 32)


def test_missing_image_is_a_bad_file(celeba_root):
    (celeba_root / "img_align_celeba" / "000002.jpg").unlink()
    bad = CelebADataset(celeba_root, 32)[1]
    assert bad.reason == "missing file" and bad.path.endswith("000002.jpg")
