import pytest
import torch

from dalle.data import (
    CaptionFolderDataset,
    CelebADataset,
    MetadataFolderDataset,
    TransformConfig,
    WebDatasetShards,
    open_dataset,
)


def test_detects_each_format(caption_folder, metadata_folder, celeba_root, shard_dir):
    assert isinstance(open_dataset(str(caption_folder), image_size=8), CaptionFolderDataset)
    assert isinstance(open_dataset(str(metadata_folder), image_size=8), MetadataFolderDataset)
    celeba = open_dataset(str(celeba_root), image_size=8, split="test")
    assert isinstance(celeba, CelebADataset) and len(celeba) == 2
    for spec in (
        shard_dir,
        shard_dir / "shard-000001.tar",
        f"{shard_dir}/shard-{{000000..000001}}.tar",
    ):
        assert isinstance(open_dataset(str(spec), image_size=8), WebDatasetShards)
    assert len(open_dataset(f"{shard_dir}/shard-{{000000..000001}}.tar", image_size=8).urls) == 2


def test_transform_and_seed_are_passed_on(metadata_folder):
    cfg = TransformConfig(image_size=8, crop="random", noise_std=0.2)
    ds = open_dataset(str(metadata_folder), image_size=8, seed=7, transform=cfg)
    assert ds.seed == 7 and ds.transform.config == cfg
    image, caption = ds[0]
    assert image.shape == (3, 8, 8) and caption == "a blue triangle"
    with pytest.raises(ValueError, match="image_size"):
        open_dataset(str(metadata_folder), image_size=16, transform=cfg)


def test_unknown_specs_list_the_accepted_forms(tmp_path):
    with pytest.raises(FileNotFoundError, match="accepted dataset specs"):
        open_dataset(str(tmp_path / "nowhere"), image_size=8)
    with pytest.raises(FileNotFoundError, match="shard not found"):
        open_dataset(str(tmp_path / "x.tar"), image_size=8)
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="not a .tar shard"):
        open_dataset(str(tmp_path / "notes.csv"), image_size=8)
    with pytest.raises(ValueError, match="unknown shapes split"):
        open_dataset("shapes:val", image_size=8)


@pytest.mark.parametrize(("spec", "split"), [("shapes", "train"), ("shapes:test", "test")])
def test_shapes_spec(spec, split):
    ds = open_dataset(spec, image_size=16, seed=3)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    assert ds.split == split
    image, caption = next(iter(ds))
    assert image.shape == (3, 16, 16) and isinstance(caption, str)
    assert isinstance(next(iter(ds.captions())), str)
