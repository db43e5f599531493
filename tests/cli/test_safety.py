"""Issue 20: nothing lost, nothing silently wrong under user mistakes (resume, numbers, text)."""

import json

import pytest
from PIL import Image

from dalle.cli import main
from dalle.data.base import BadFile, SkipReport
from dalle.eval.shapes_report import read_prompts
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
    capsys.readouterr()
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
