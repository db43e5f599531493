import json

import pytest
import torch

from dalle.models.dvae import DVAEConfig
from dalle.shapes.dataset import ShapesStream
from dalle.training.dvae_trainer import DVAETrainConfig, DVAETrainer
from dalle.training.metrics_log import MetricsLog
from dalle.training.schedules import cosine_anneal, cosine_ramp

from .cli_runs import assert_resume_is_bit_exact, caption_folder, one_and_two_processes

TINY = DVAEConfig.from_preset("dvae-tiny")


def test_schedules_hit_their_end_points():
    config = DVAETrainConfig(
        steps=1000, kl_ramp_fraction=0.05, temperature_fraction=0.6, bf16=False
    )
    trainer = DVAETrainer(TINY, config, "/nonexistent-run", dataset=None)
    assert trainer.temperature_at(0) == 1.0
    assert abs(trainer.temperature_at(600) - 1 / 16) < 1e-12
    assert abs(trainer.temperature_at(999) - 1 / 16) < 1e-12
    assert trainer.kl_weight_at(0) == 0.0
    assert (
        abs(trainer.kl_weight_at(50) - 6.6) < 1e-12 and abs(trainer.kl_weight_at(900) - 6.6) < 1e-12
    )
    assert 0 < trainer.kl_weight_at(25) < 6.6
    assert abs(trainer.lr_at(config.steps) - config.lr_end) < 1e-12
    assert trainer.nll_weight_at(0) == 1.0  # the paper's objective by default
    late = DVAETrainer(TINY, config.replace(nll_start_fraction=0.1), "/nonexistent", dataset=None)
    assert late.nll_weight_at(99) == 0.0 and late.nll_weight_at(100) == 1.0
    assert cosine_anneal(5, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert cosine_ramp(10, 10, 3.0) == pytest.approx(3.0)


class EightImages(torch.utils.data.Dataset):
    def __init__(self):
        stream = iter(ShapesStream("train", seed=1, image_size=16))
        self.items = [next(stream) for _ in range(8)]

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.items[i]


def test_tiny_model_overfits_eight_images(tmp_path):
    torch.set_num_threads(1)
    data = EightImages()
    config = DVAETrainConfig(
        steps=300, batch_size=8, lr=3e-3, warmup_steps=10, ema_decay=0.9,
        checkpoint_every=10**6, sample_every=10**6, channels_last=False, bf16=False,
    )  # fmt: skip
    trainer = DVAETrainer(TINY, config, tmp_path, data)
    images = torch.stack([x for x, _ in data.items])

    def error():
        vae = trainer.ema_model()
        return (vae.decode(vae.encode(images)) - images).pow(2).mean().item()

    before = error()
    trainer.train()
    after = error()
    assert after < before / 4, (before, after)


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact(tmp_path):
    assert_resume_is_bit_exact("dvae", "dvae-tiny", tmp_path, 40, 15, "--checkpoint-every", "5")
    assert (tmp_path / "killed" / "vae" / "model.safetensors").is_file()
    logs = MetricsLog(tmp_path / "killed" / "metrics.jsonl").records()
    assert [r["step"] for r in logs] == [10, 20, 30, 40]  # each logged step once


def test_existing_run_needs_resume(tmp_path):
    from dalle.cli import main

    base = ["train", "dvae", "--preset", "dvae-tiny", "--out", str(tmp_path), "--threads", "1"]
    assert main([*base, "--stop-at", "1"]) == 0  # a run with a checkpoint
    assert main(base) == 2


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """On the shared loop under torchrun (gloo on the CPU) each process takes half of every
    global batch and its slice of the batch's Gumbel noise: the run matches one process."""
    one, two = one_and_two_processes("dvae", "dvae-tiny", tmp_path, 10)
    for key in one:  # Adam divides by the gradients' size: round-off in near-zero ones shows
        torch.testing.assert_close(one[key], two[key], atol=1e-4, rtol=1e-3)
    assert (tmp_path / "two" / "vae" / "model.safetensors").is_file()  # exported once


@pytest.mark.slow
def test_resume_on_data_with_corrupt_files_is_bit_exact(tmp_path):
    data = caption_folder(tmp_path / "data", 10, broken=10)  # half the files unreadable
    extra = ["--data", str(data), "--no-bf16", "--steps", "12", "--checkpoint-every", "4"]
    assert_resume_is_bit_exact("dvae", "dvae-tiny", tmp_path, 12, 4, *extra)
    first = json.loads(
        (tmp_path / "killed/checkpoints/step_0000012/trainer_state.json").read_text()
    )
    assert first["data_position"] > 12 * 4  # the skipped files moved it on
