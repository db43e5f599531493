import json
import logging

import pytest
import torch

from dalle.data.base import BadFile, DatasetFormatError, SkipReport, iter_samples
from dalle.data.folders import CaptionFolderDataset, MetadataFolderDataset
from dalle.data.transforms import TransformConfig


def test_caption_folder_samples_and_skips(caption_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="dalle.data.folders"):
        ds = CaptionFolderDataset(caption_folder, TransformConfig(image_size=16), max_pixels=1000)
    assert "1 of 6 images" in caplog.text and "c.png" in caplog.text
    assert len(ds) == 5 and ds.num_uncaptioned == 1
    report = SkipReport()
    good = list(iter_samples((ds[i] for i in range(len(ds))), report))
    for image, caption in good:
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert 0.0 <= image.min().item() and image.max().item() <= 1.0
        assert isinstance(caption, str)
    captions = sorted(c for _, c in good)
    assert captions[0] == "a red square to the left of a circle"
    assert captions[1] in ("first caption", "second caption")
    assert report.by_reason() == {"too many pixels": 1, "not an image": 1, "truncated image": 1}
    bad_paths = sorted(b.path.rsplit("/", 1)[-1] for b in report.examples)
    assert bad_paths == ["big.png", "broken.png", "trunc.jpg"]


def test_caption_folder_picks_a_line_per_item_reproducibly(caption_folder):
    ds = CaptionFolderDataset(caption_folder, TransformConfig(image_size=8))
    index = next(i for i, (p, _) in enumerate(ds.items) if p.name == "b.jpg")
    seen = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        seen.add(ds[index][1])
    assert seen == {"first caption", "second caption"}


def test_caption_folder_captions_do_not_decode_images(caption_folder, monkeypatch):
    ds = CaptionFolderDataset(caption_folder, TransformConfig(image_size=8))

    def fail(*args, **kwargs):
        raise AssertionError("captions() decoded an image")

    monkeypatch.setattr("dalle.data.base.load_image", fail)
    assert sorted(ds.captions()) == [
        "a red square to the left of a circle",
        "first caption",
        "never seen",
        "never seen either",
        "second caption",
        "too big",
    ]


def test_map_datasets_are_reproducible_per_seed_epoch_index(caption_folder):
    cfg = TransformConfig(image_size=8, crop="random", noise_std=0.1, hflip_prob=0.5)
    a = CaptionFolderDataset(caption_folder, cfg, seed=3)
    b = CaptionFolderDataset(caption_folder, cfg, seed=3)
    index = next(i for i, (p, _) in enumerate(a.items) if p.name == "a.png")
    assert torch.equal(a[index][0], b[index][0])
    a.set_epoch(1)
    assert not torch.equal(a[index][0], b[index][0])
    b.set_epoch(1)
    assert torch.equal(a[index][0], b[index][0])
    other = CaptionFolderDataset(caption_folder, cfg, seed=4)
    assert not torch.equal(
        other[index][0], CaptionFolderDataset(caption_folder, cfg, seed=3)[index][0]
    )
    with pytest.raises(IndexError):
        a[len(a)]


def test_metadata_folder(metadata_folder):
    ds = MetadataFolderDataset(metadata_folder, TransformConfig(image_size=12))
    assert len(ds) == 4
    x_image, x_caption = ds[0]
    assert x_image.shape == (3, 12, 12) and x_caption == "a blue triangle"
    assert ds[1][1] in ("one way to say it", "another way")
    assert isinstance(ds[2], BadFile) and ds[2].reason == "missing file"
    assert ds[2].path.endswith("missing.png")
    assert ds[3] == BadFile(str(metadata_folder / "images" / "fake.jpg"), "not an image")
    assert list(ds.captions()) == [
        "a blue triangle",
        "one way to say it",
        "another way",
        "gone",
        "fake",
    ]


def test_metadata_caption_column(metadata_folder):
    with pytest.raises(DatasetFormatError, match=r"metadata.jsonl:1: no caption column 'caption'"):
        MetadataFolderDataset(
            metadata_folder, TransformConfig(image_size=8), caption_column="caption"
        )


def test_malformed_metadata_line_names_the_line(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    good = json.dumps({"file_name": "a.png", "text": "a"})
    (root / "metadata.jsonl").write_text(good + "\n" + '{"file_name": "b.png", "text": \n')
    with pytest.raises(DatasetFormatError, match=r"metadata\.jsonl:2: invalid JSON"):
        MetadataFolderDataset(root, TransformConfig(image_size=8))
    (root / "metadata.jsonl").write_text(good + "\n" + json.dumps({"text": "no file"}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"metadata\.jsonl:2: .*file_name"):
        MetadataFolderDataset(root, TransformConfig(image_size=8))


def test_missing_folders_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        CaptionFolderDataset(tmp_path / "nope", TransformConfig(image_size=8))
    with pytest.raises(FileNotFoundError, match="metadata.jsonl"):
        MetadataFolderDataset(tmp_path, TransformConfig(image_size=8))
    with pytest.raises(ValueError, match="no captioned images"):
        CaptionFolderDataset(tmp_path, TransformConfig(image_size=8))
