import json

import numpy as np
import torch
from PIL import Image

from dalle.cli import main
from dalle.models.dvae import DiscreteVAE, DVAEConfig


def tiny_model(path):
    torch.manual_seed(0)
    DiscreteVAE(DVAEConfig.from_preset("dvae-tiny")).save_pretrained(path)
    return path


def test_reconstruct_writes_same_names_and_reports(tmp_path, capsys):
    model = tiny_model(tmp_path / "vae")
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg", "c.png"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(src / name)
    (src / "broken.png").write_bytes(b"not a png at all")
    (src / "notes.txt").write_text("ignored")

    assert (
        main(["reconstruct", str(src), "--out", str(tmp_path / "out"), "--model", str(model)]) == 0
    )
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg", "c.png"]
    assert Image.open(tmp_path / "out" / "b.jpg").format == "JPEG"
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)
    assert "tokens per image 64 (8 x 8, vocabulary 32)" in out
    assert "mean PSNR" in out and "skipped 1 unreadable" in out


def test_reconstruct_missing_folder_or_model(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "in").mkdir()
    assert (
        main(
            [
                "reconstruct",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "o"),
                "--model",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert "no model at" in capsys.readouterr().err


def test_eval_reconstruction_json(tmp_path, capsys):
    model = tmp_path / "vae"
    torch.manual_seed(0)  # the report feeds 64 x 64 shapes images: a 64-pixel untrained model
    config = DVAEConfig(image_size=64, num_tokens=16, hidden_dim=8, num_groups=3, codebook_dim=8)
    DiscreteVAE(config).save_pretrained(model)
    assert main(["eval", "reconstruction", "--model", str(model), "--n", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 8 and report["num_tokens"] == 16
    assert 1 <= report["codes_used"] <= 16
    assert 0.0 <= report["seen_accuracy"] <= 1.0 and report["mean_psnr"] > 0
