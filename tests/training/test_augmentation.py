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
