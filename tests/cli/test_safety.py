"""Issue 20: nothing lost, nothing silently wrong under user mistakes (resume, numbers, text)."""

import json
import math

import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.data.base import BadFile, SkipReport
from dalle.text.prompts import read_prompts
from dalle.utils.images import save_png


@pytest.mark.parametrize(
    "option", [["--threads", "-1"], ["--checkpoint-every", "0"], ["--steps", "0"],
               ["--batch-size", "0"], ["--lr", "nan"], ["--lr", "-1e-3"], ["--stop-at", "0"]],
)  # fmt: skip
def test_out_of_range_training_numbers_are_refused_while_parsing(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "dvae", "--preset", "dvae-tiny", "--out", str(tmp_path / "r"), *option])
    assert exit_.value.code == 2
    assert f"argument {option[0]}" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_generate_numbers_are_refused_while_parsing(tmp_path, capsys):
    for option in (["--num-images", "0"], ["--threads", "-2"], ["--batch-size", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(["generate", "a red circle", "--out", str(tmp_path / "o"), *option])
        assert exit_.value.code == 2 and f"argument {option[0]}" in capsys.readouterr().err


def test_resume_refuses_changed_settings_unless_allowed(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "dvae", "--preset", "dvae-tiny", "--out", str(out), "--no-bf16",
            "--threads", "1", "--checkpoint-every", "2"]  # fmt: skip
    assert main([*base, "--stop-at", "2"]) == 0
    assert "stopped at step 2 of " in capsys.readouterr().out
    assert (out / "vae" / "model.safetensors").is_file()  # the model so far, to evaluate mid-run
    original = (out / "train_config.json").read_text()
    assert main([*base, "--resume", "--batch-size", "8", "--stop-at", "4"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size 4 (now 8)" in err and "--allow-changes" in err
    assert (out / "train_config.json").read_text() == original  # kept as it was
    # how often it checkpoints does not alter the run
    assert main([*base[:-1], "3", "--resume", "--stop-at", "3"]) == 0
    assert main([*base, "--resume", "--steps", "50", "--allow-changes", "--stop-at", "4"]) == 0
    assert json.loads((out / "train_config.json").read_text())["steps"] == 50
    kept = sorted(out.glob("train_config.until_*.json"))
    assert [p.name for p in kept] == ["train_config.until_step_0000003.json"]
    assert json.loads(kept[0].read_text())["steps"] == 40


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("\ufeffa red circle\na blue square\n".encode())
    assert read_prompts(path) == ["a red circle", "a blue square"]


def test_nul_bytes_do_not_reach_png_text_chunks(tmp_path):
    path = save_png(Image.new("RGB", (2, 2)), tmp_path / "x.png", {"prompt": "a\x00b"})
    with Image.open(path) as im:
        assert im.text["prompt"] == "a\ufffdb"


def test_a_file_read_again_is_counted_once():
    report = SkipReport()
    for _ in range(3):  # three epochs over the same two broken files
        report.add(BadFile("a.png", "corrupt image"))
        report.add(BadFile("b.png", "corrupt image"))
    assert report.count == 2 and report.by_reason() == {"corrupt image": 2}


def test_reconstruct_refuses_to_overwrite_its_input_folder(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(folder / "a.png")
    before = (folder / "a.png").read_bytes()
    for out in (folder, tmp_path / "." / "pictures"):
        assert main(["reconstruct", str(folder), "--out", str(out)]) == 2
        assert "would overwrite the original images" in capsys.readouterr().err
    assert (folder / "a.png").read_bytes() == before


def test_complete_refuses_to_overwrite_its_input_image(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (64, 64)).save(out / "0000_00.png")
    before = (out / "0000_00.png").read_bytes()
    code = main(["complete", str(out / "0000_00.png"), "a red circle", "--rows", "4", "--out",
                 str(out), "--replace"])  # fmt: skip
    assert code == 2 and "would overwrite the input" in capsys.readouterr().err
    assert (out / "0000_00.png").read_bytes() == before


def test_a_folder_of_an_earlier_run_is_refused_unless_replaced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    save_png(Image.new("RGB", (64, 64)), out / "0003_00.png", {"prompt": "a blue square"})
    (out / "notes.txt").write_text("mine")
    args = ["generate", "a red circle", "--num-images", "1", "--out", str(out), "--seed", "1"]
    assert main(args) == 2
    assert "holds 1 images of an earlier run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["0003_00.png", "notes.txt"]
    assert main([*args, "--replace"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "notes.txt"]


def test_a_run_that_fails_after_loading_loses_no_earlier_image(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for j in range(4):
        save_png(Image.new("RGB", (64, 64)), out / f"0000_{j:02d}.png", {"prompt": "a blue square"})
    image = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(image)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    args = ["complete", str(image), "a red circle", "--out", str(out), "--replace"]
    assert main([*args, "--rows", "99"]) == 2  # found only once the model is loaded
    assert "rows must be in 0 .. 15" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a run that succeeds replaces: its two images new, the earlier two it did not write gone
    assert main([*args, "--rows", "14", "--num-images", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "0000_01.png"]
    assert {Image.open(p).text["prompt"] for p in out.iterdir()} == {"a red circle"}


def test_scoring_refuses_images_drawn_for_other_prompts(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    save_png(Image.new("RGB", (64, 64)), out / "0000_00.png", {"prompt": "a blue square"})
    (tmp_path / "prompts.txt").write_text("a red circle\n")
    assert main(["eval", "shapes", str(out), "--prompts", str(tmp_path / "prompts.txt")]) == 2
    assert "was drawn for 'a blue square'" in capsys.readouterr().err


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    from safetensors.torch import load_file

    out, straight = tmp_path / "run", tmp_path / "straight"
    base = ["train", "dvae", "--preset", "dvae-tiny", "--no-bf16", "--threads", "1",
            "--checkpoint-every", "2", "--steps", "6"]  # fmt: skip
    assert main([*base, "--out", str(straight)]) == 0
    assert main([*base, "--out", str(out), "--stop-at", "4"]) == 0
    weights = out / "checkpoints/step_0000004/model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut short, as by a full disk
    with caplog.at_level("WARNING"):
        assert main([*base, "--out", str(out), "--resume"]) == 0
    assert "step_0000004" in caplog.text and "resuming from" in caplog.text
    a = load_file(str(out / "checkpoints/step_0000006/model.safetensors"))
    b = load_file(str(straight / "checkpoints/step_0000006/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # went on from step 2, exactly
    for state in (out / "checkpoints").glob("step_*/trainer_state.json"):
        state.write_text("{")  # every checkpoint damaged: one clear error
    assert main([*base, "--out", str(out), "--resume"]) == 2


def test_embed_refuses_to_overwrite_its_prompts_file(tmp_path, capsys):
    prompts = tmp_path / "prompts.npy"  # a prompts file, oddly named
    prompts.write_text("a red circle\n")
    assert main(["embed", "--prompts", str(prompts), "--out", str(prompts)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert prompts.read_text() == "a red circle\n"


def test_a_resume_with_another_number_of_steps_anneals_on_from_the_rate_it_had(tmp_path):
    from dataclasses import replace

    from dalle.training.loop import RunConfig, scheduled_lr

    out = tmp_path / "run"
    base = ["train", "dvae", "--preset", "dvae-tiny", "--out", str(out), "--no-bf16",
            "--threads", "1", "--checkpoint-every", "10", "--warmup-steps", "2"]  # fmt: skip
    assert main([*base, "--steps", "100", "--stop-at", "20"]) == 0
    saved = json.loads((out / "train_config.json").read_text())
    assert main([*base, "--steps", "40", "--resume", "--allow-changes"]) == 0
    logged = {r["step"]: r["lr"] for r in map(json.loads, open(out / "metrics.jsonl"))}
    assert sorted(logged) == [10, 20, 30, 40]  # each step logged once
    first = RunConfig(steps=100, lr=saved["lr"], lr_end=saved["lr_end"], warmup_steps=2)
    at_20 = scheduled_lr(first, None, 20)  # the rate the first schedule had at the resume
    shortened = replace(first, steps=40)
    # the record of step N holds the rate of the step that led to it (N - 1)
    assert logged[30] == pytest.approx(scheduled_lr(shortened, (20, at_20), 29))
    assert logged[30] == pytest.approx(
        saved["lr_end"] + (at_20 - saved["lr_end"]) * 0.5 * (1 + math.cos(math.pi * 9 / 20))
    )
    assert logged[40] < logged[30] < at_20
    assert logged[30] != pytest.approx(scheduled_lr(shortened, None, 29))  # not the jump


def test_a_run_started_again_logs_each_step_once_and_saves_leave_no_temporary_folders(tmp_path):
    import shutil

    out = tmp_path / "run"
    base = ["train", "dvae", "--preset", "dvae-tiny", "--out", str(out), "--no-bf16",
            "--threads", "1", "--checkpoint-every", "10"]  # fmt: skip
    assert main([*base, "--stop-at", "3"]) == 0
    shutil.rmtree(out / "checkpoints")  # as if killed before its first checkpoint
    stale = out / "checkpoints" / ".step_0000002.x1y2"  # a save killed midway
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"partial")
    assert main([*base, "--stop-at", "3"]) == 0
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == [3]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_0000003"]
    saved = out / "checkpoints" / "step_0000003"
    assert (
        json.loads((saved / "config.json").read_text())
        == json.loads((saved / "trainer_state.json").read_text())["model_config"]
    )
