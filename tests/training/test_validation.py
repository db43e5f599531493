"""Validation losses in the shared training loop: ``--val-data``, ``--val-size``, ``--val-every``."""

import math

import pytest
import torch

from dalle.models.transformer import dalle_loss
from dalle.training.metrics_log import MetricsLog

from .test_dalle_training import CAPTIONS, toy_setup


def validation_records(run) -> list[dict]:
    """The validation records of the run folder ``run``'s metrics log."""
    return [r for r in MetricsLog(run / "metrics.jsonl").records() if "val_loss" in r]


def test_validation_is_the_ema_weights_losses_logged_as_training_goes(tmp_path):
    torch.set_num_threads(1)
    trainer, pictures = toy_setup(tmp_path, steps=150)
    trainer.config = trainer.config.replace(val_every=50)
    tokens = pictures.flatten(1)  # (4, 64), as the batches give them
    trainer.val_batches = [(tokens, CAPTIONS), (tokens.flip(0), CAPTIONS[::-1])]
    seen = []
    trainer.train(on_validation=seen.append, stop_at=75)  # stopped mid-run: validated there too
    trainer.train(on_validation=seen.append)
    assert [r["step"] for r in seen] == [50, 75, 100, 150]
    logged = validation_records(tmp_path)
    assert logged == seen
    assert seen[-1]["val_image_loss"] < seen[0]["val_image_loss"] / 3  # it learns the pictures
    # the EMA weights' own losses on the batches (every caption kept), averaged over batches
    ema = trainer.ema_model()
    expected = 0.0
    with torch.no_grad():
        for tokens, captions in trainer.val_batches:
            text = trainer.tokenizer.encode(captions, ema.config.text_seq_len).ids
            expected += dalle_loss(ema, text, tokens, ema.config)["image_loss"].item() / 2
    assert seen[-1]["val_image_loss"] == pytest.approx(expected, rel=1e-5)
    assert {"step": 150, **trainer.validate()} == seen[
        -1
    ]  # the same draws every time: the same figures


def test_validating_does_not_change_what_a_run_trains(tmp_path):
    torch.set_num_threads(1)
    plain, pictures = toy_setup(tmp_path / "plain", steps=12)
    plain.train()
    after_plain = torch.get_rng_state()
    validated, _ = toy_setup(tmp_path / "validated", steps=12)
    validated.config = validated.config.replace(val_every=3, sample_every=4)
    validated.val_batches = [(pictures.flatten(1), CAPTIONS)]
    drawn = []
    validated.sample = lambda: drawn.append(torch.rand(3))  # a grid's draws, say
    validated.train()
    assert len(drawn) == 3 and all(torch.equal(d, drawn[0]) for d in drawn)
    # the global RNG (dropout's) is where training alone leaves it
    assert torch.equal(torch.get_rng_state(), after_plain)
    validated.validate()
    assert torch.equal(torch.get_rng_state(), after_plain)
    for (name, a), b in zip(
        plain.unwrapped.state_dict().items(), validated.unwrapped.state_dict().values()
    ):
        assert torch.equal(a, b), name


STAGES = {  # stage: (preset, extra options, validation losses logged)
    "dvae": ("dvae-tiny", [], {"val_loss", "val_nll", "val_kl", "val_mse"}),
    "dalle": ("dalle-tiny", [], {"val_loss", "val_text_loss", "val_image_loss"}),
    "clip": ("clip-tiny", [], {"val_loss"}),
    "prior": ("prior-tiny", ["--clip", "TINY_CLIP"], {"val_loss"}),
    "decoder": ("decoder-tiny", ["--clip", "TINY_CLIP"], {"val_loss"}),
    "upsampler": ("upsampler-tiny", [], {"val_loss"}),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_validates_on_the_val_data(stage, tiny_clip, tmp_path, capsys):
    from dalle.cli import main

    preset, extra, keys = STAGES[stage]
    extra = [str(tiny_clip) if e == "TINY_CLIP" else e for e in extra]
    out = tmp_path / "run"
    args = ["train", stage, "--preset", preset, "--out", str(out), "--steps", "4",
            "--batch-size", "4", "--checkpoint-every", "4", "--no-bf16", "--threads", "1",
            "--val-data", "shapes:test", "--val-size", "6", "--val-every", "2", *extra]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "validation: 8 examples of shapes:test" in printed  # 6, rounded up to whole batches
    assert "step 4: validation loss" in printed
    records = validation_records(out)
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert set(record) == {"step"} | keys
        assert all(math.isfinite(v) for v in record.values())


def test_a_small_folder_validates_on_each_of_its_examples_once(tmp_path, capsys):
    from types import SimpleNamespace

    from dalle.cli.train_args import validation_batches
    from dalle.training.dvae_trainer import DVAETrainConfig

    from .cli_runs import caption_folder

    data = caption_folder(tmp_path / "data", 6, broken=0, size=16)
    config = DVAETrainConfig(batch_size=4, val_data=str(data), val_size=256)
    one = SimpleNamespace(num_processes=1, is_main_process=True)
    batches = validation_batches(config, 16, one)
    assert [len(b[1]) for b in batches] == [4, 2]  # whole batches, then the rest
    captions = [c for b in batches for c in b[1]]
    assert sorted(captions) == sorted(f"a red circle number {i}" for i in range(6))
    assert "validation: 6 examples of" in capsys.readouterr().out
    four = SimpleNamespace(num_processes=4, is_main_process=True)  # the rest splits evenly
    assert [len(b[1]) for b in validation_batches(config.replace(val_size=5), 16, four)] == [4]


def test_unreadable_validation_files_are_skipped_counted_and_never_repeat_an_example(
    tmp_path, capsys
):
    from types import SimpleNamespace

    from dalle.cli.train_args import validation_batches
    from dalle.training.dvae_trainer import DVAETrainConfig

    from .cli_runs import caption_folder

    data = caption_folder(tmp_path / "data", 5, broken=3, size=16)  # 8 files, 3 unreadable
    config = DVAETrainConfig(batch_size=4, val_data=str(data), val_size=256)
    one = SimpleNamespace(num_processes=1, is_main_process=True)
    batches = validation_batches(config, 16, one)
    captions = [c for b in batches for c in b[1]]
    assert sorted(captions) == sorted(f"a red circle number {i}" for i in range(5))  # each once
    assert [len(b[1]) for b in batches] == [4, 1]
    printed = capsys.readouterr().out
    assert "validation: 5 examples of" in printed and "skipped 3 unreadable files" in printed
    only_bad = caption_folder(tmp_path / "bad", 0, broken=2, size=16)
    with pytest.raises(ValueError, match="no readable examples"):
        validation_batches(config.replace(val_data=str(only_bad)), 16, one)
    four = SimpleNamespace(num_processes=4, is_main_process=True)
    with pytest.raises(ValueError, match="fewer than the 4 processes"):
        validation_batches(config.replace(val_size=3), 16, four)  # at most 3 readable


@pytest.mark.slow
def test_two_processes_validate_like_one(tmp_path):
    """Under torchrun each process scores its share of the validation examples; the shares'
    losses, weighted by their examples, give the one-process figures."""
    from .cli_runs import one_and_two_processes

    one_and_two_processes("dalle", "dalle-tiny", tmp_path, 6, "--val-data", "shapes:test",
                          "--val-size", "8", "--val-every", "3")  # fmt: skip
    one, two = (validation_records(tmp_path / run) for run in ("one", "two"))
    assert [r["step"] for r in one] == [r["step"] for r in two] == [3, 6]
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys()
        assert all(a[k] == pytest.approx(b[k], rel=1e-4) for k in a), (a, b)
