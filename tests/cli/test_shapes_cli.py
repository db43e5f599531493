import json

import numpy as np
from PIL import Image

from dalle.cli import main
from dalle.eval.shapes_report import score_folder
from dalle.shapes.dataset import shapes_example
from dalle.shapes.spec import HELD_OUT_PAIRS


def test_data_shapes_writes_imagefolder_layout(tmp_path, capsys):
    out = tmp_path / "test"
    assert (
        main(["data", "shapes", "--split", "test", "--n", "12", "--seed", "3", "--out", str(out)])
        == 0
    )
    assert "wrote 12 images" in capsys.readouterr().out
    lines = (out / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 12
    for index, line in enumerate(lines):
        record = json.loads(line)
        assert set(record) == {"file_name", "text", "canonical"}
        example = shapes_example("test", index, seed=3)
        assert record["text"] == example.text and record["canonical"] == example.canonical
        pixels = np.asarray(Image.open(out / record["file_name"]))
        assert (pixels == example.image).all()
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


def write_generated(folder, prompts_and_images):
    folder.mkdir()
    for p, images in enumerate(prompts_and_images):
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{p:04d}_{i:02d}.png")


def test_eval_shapes_reports_accuracy_errors_and_failure_grid(tmp_path, capsys):
    good = [shapes_example("test", i, 0) for i in range(40)]
    held = next(
        e for e in good if any((o.colour, o.shape) in HELD_OUT_PAIRS for o in e.scene.objects)
    )
    seen = [e for e in good if e is not held][:2]
    prompts = [seen[0].canonical, seen[1].canonical, held.canonical]
    blank = np.zeros((64, 64, 3), np.uint8)
    # prompt 0: 2 right; prompt 1: 1 right + 1 blank; prompt 2 (held-out): 1 right + prompt 0's image
    write_generated(
        tmp_path / "gen",
        [[seen[0].image, seen[0].image], [seen[1].image, blank], [held.image, seen[0].image]],
    )
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")

    report = score_folder(tmp_path / "gen", prompts)
    assert report.seen_accuracy == 3 / 4 and report.held_out_accuracy == 1 / 2
    assert report.error_counts["count"] >= 1 and len(report.failures) == 2

    code = main(
        [
            "eval",
            "shapes",
            str(tmp_path / "gen"),
            "--prompts",
            str(tmp_path / "prompts.txt"),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seen"] == {"images": 4, "accuracy": 0.75}
    assert summary["held_out"] == {"images": 2, "accuracy": 0.5}
    grid = Image.open(summary["failure_grid"])
    assert grid.size[0] > 0 and summary["failure_grid"].endswith("failures.png")


def test_eval_shapes_bad_prompt_file_is_a_clear_error(tmp_path, capsys):
    write_generated(tmp_path / "gen", [[np.zeros((64, 64, 3), np.uint8)]])
    (tmp_path / "prompts.txt").write_text("a purple banana\n")
    assert (
        main(["eval", "shapes", str(tmp_path / "gen"), "--prompts", str(tmp_path / "prompts.txt")])
        == 2
    )
    assert "cannot read the object" in capsys.readouterr().err


def test_eval_shapes_unreadable_or_wrong_size_image_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "0000_00.png").write_text("not an image")
    (tmp_path / "prompts.txt").write_text("a red circle\n")
    args = ["eval", "shapes", str(tmp_path / "gen"), "--prompts", str(tmp_path / "prompts.txt")]
    assert main(args) == 2
    assert "0000_00.png" in capsys.readouterr().err
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "gen" / "0000_00.png")
    assert main(args) == 2
    assert "reads 64 x 64 images, got 32 x 32" in capsys.readouterr().err


def test_shapes_prompts_file(tmp_path, capsys):
    from dalle.shapes.captions import parse_caption

    out = tmp_path / "prompts.txt"
    assert main(["data", "shapes-prompts", "--n", "100", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 100
    parsed = [parse_caption(line) for line in lines]
    assert all(p.canonical() == line for p, line in zip(parsed, lines))
    # the users mix: three quarters two-object, a quarter held-out in each kind, most sized
    two = [p for p in parsed if len(p.objects) == 2]
    one = [p for p in parsed if len(p.objects) == 1]
    assert len(two) == 75 and sum(p.held_out for p in parsed) == 25
    assert sum(p.held_out for p in one) == 7 and sum(p.held_out for p in two) == 18
    assert sum(any(o.size for o in p.objects) for p in parsed) > 60
    assert "75 two-object, 25 held-out" in capsys.readouterr().out
    # the balanced mix is the earlier set, prompt for prompt
    assert (
        main(["data", "shapes-prompts", "--n", "100", "--mix", "balanced", "--out", str(out)]) == 0
    )
    lines = out.read_text().splitlines()
    assert lines[:4] == [
        "a green cross", "an orange cross above an orange triangle", "a green circle",
        "a white cross to the right of a blue cross",
    ]  # fmt: skip
    parsed = [parse_caption(line) for line in lines]
    assert sum(p.held_out for p in parsed) == 25
    assert sum(len(p.objects) == 2 for p in parsed) == 50
    assert not any(o.size for p in parsed if len(p.objects) == 2 for o in p.objects)


def test_eval_shapes_reports_accuracy_per_category(tmp_path):
    from dalle.shapes.captions import scene_prompt

    examples = [shapes_example("test", i, 0) for i in range(80)]

    def first(objects: int, held_out: bool):
        return next(
            e for e in examples
            if len(e.scene.objects) == objects and scene_prompt(e.scene).held_out == held_out
        )  # fmt: skip

    one, two_seen, two_held = first(1, False), first(2, False), first(2, True)
    blank = np.zeros((64, 64, 3), np.uint8)
    prompts = [
        scene_prompt(one.scene).canonical(),  # every size stated
        scene_prompt(one.scene, (False,)).canonical(),  # size open
        scene_prompt(two_seen.scene).canonical(),
        scene_prompt(two_held.scene).canonical(),
    ]
    # one object, sized: 1 of 2 right; size open: 2 of 2; two seen: 0 of 2; two held-out: 2 of 2
    write_generated(tmp_path / "gen", [
        [one.image, blank], [one.image, one.image], [blank, one.image],
        [two_held.image, two_held.image],
    ])  # fmt: skip
    cats = score_folder(tmp_path / "gen", prompts).to_dict()["categories"]
    assert cats["one_object"] == {"images": 4, "accuracy": 0.75}
    assert cats["two_objects"] == {"images": 4, "accuracy": 0.5}
    assert cats["size_open"] == {"images": 2, "accuracy": 1.0}
    assert cats["size_stated"] == {"images": 6, "accuracy": 0.5}
    assert cats["seen"] == {"images": 6, "accuracy": 0.5}
    assert cats["held_out"] == {"images": 2, "accuracy": 1.0}
