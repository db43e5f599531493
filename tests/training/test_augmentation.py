"""A run's augmentation: drawn anew each epoch of a finite data set, refused for the shapes world."""

import pytest
import torch

from dalle.cli.train_args import open_training_data
from dalle.data.transforms import Augmentation
from dalle.training.batches import StepBatches
from dalle.training.loop import RunConfig

from .cli_runs import caption_folder


def test_each_epoch_draws_its_own_augmentation(tmp_path):
    data = caption_folder(tmp_path / "data", 4, broken=0, size=24)
    config = RunConfig(data=str(data), augment=Augmentation(crop="random", noise_std=0.05))
    dataset = open_training_data(config, 16)
    batches = StepBatches(dataset, 4, 0, seed=0)
    first, second = next(batches), next(batches)  # epoch 0, then epoch 1: the same 4 images
    assert sorted(first[1]) == sorted(second[1])
    by_caption = [dict(zip(b[1], b[0], strict=True)) for b in (first, second)]
    caption = first[1][0]
    assert not torch.equal(by_caption[0][caption], by_caption[1][caption])
    again = next(StepBatches(dataset, 4, 0, seed=0))  # and the same again from the start
    torch.testing.assert_close(again[0], first[0])
    plain = RunConfig(data=str(data))
    assert open_training_data(plain, 16).transform.config.crop == "center"


def test_the_shapes_world_takes_no_augmentation():
    with pytest.raises(ValueError, match="exact images"):
        open_training_data(RunConfig(data="shapes", augment=Augmentation(rotation_degrees=5)), 64)


def test_a_data_set_with_no_readable_file_is_an_error_not_a_hang(tmp_path):
    data = caption_folder(tmp_path / "data", 0, broken=3)
    dataset = open_training_data(RunConfig(data=str(data)), 16)
    with pytest.raises(
        ValueError, match=r"none of the data set's 3 files is readable .*not an image"
    ):
        next(StepBatches(dataset, 2, 0, seed=0))
    # one readable file among broken ones is enough to train on
    data = caption_folder(tmp_path / "one", 1, broken=3)
    images, captions = next(StepBatches(open_training_data(RunConfig(data=str(data)), 16), 2, 0))
    assert captions == ["a red circle number 0"] * 2


def test_caption_files_may_start_with_a_byte_order_mark(tmp_path):
    data = caption_folder(tmp_path / "data", 1, broken=0)
    (data / "0.txt").write_text("\ufeffa cat\n", encoding="utf-8")
    _, captions = next(StepBatches(open_training_data(RunConfig(data=str(data)), 16), 1, 0))
    assert captions == ["a cat"]


def test_resume_checks_the_settings_before_reading_any_data(tmp_path):
    import argparse

    from dalle.cli.train_args import run_folder

    out = tmp_path / "run"
    out.mkdir()
    RunConfig(data="shapes", bf16=None).save(out / "train_config.json")
    args = argparse.Namespace(out=str(out), resume=True, allow_changes=False)
    with pytest.raises(ValueError, match="--data 'shapes' \\(now 'shapes:train'\\)"):
        run_folder(args, RunConfig(data="shapes:train"))  # the commands call it first
    assert run_folder(args, RunConfig(data="shapes", bf16=False)) == out  # the machine's dtype
    args.allow_changes = True
    assert run_folder(args, RunConfig(data="shapes:train")) == out
    assert not list(out.glob("train_config.until_*"))  # kept only once the run goes on
    fresh = argparse.Namespace(out=str(tmp_path / "new"), resume=False, init=str(tmp_path / "no"))
    with pytest.raises(ValueError, match="--init: no model at"):
        run_folder(fresh, RunConfig(data="shapes"))  # before any data is read
