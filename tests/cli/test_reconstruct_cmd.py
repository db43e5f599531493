import json

import numpy as np
import torch
from PIL import Image

from dalle.cli import main
from dalle.data.images import load_image
from dalle.data.transforms import ImageTransform, TransformConfig
from dalle.eval.reconstruction import psnr
from dalle.models.dvae import DiscreteVAE, DVAEConfig
from dalle.utils.images import to_uint8


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
    assert "skipped 1 unreadable" in out
    # each file is the dVAE's decoding of its tokens, and the PSNR printed is theirs
    vae = DiscreteVAE.from_pretrained(model)
    transform = ImageTransform(TransformConfig(image_size=16))
    names = ("a.png", "b.jpg", "c.png")  # one batch, in the command's order
    inputs = torch.stack([transform(load_image(src / n), "", np.random.default_rng(0))[0]
                          for n in names])  # fmt: skip
    recon = vae.decode(vae.encode(inputs))
    for i in (0, 2):  # the PNGs (the JPEG is lossy)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / names[i])),
                              to_uint8(recon)[i])  # fmt: skip
    assert not np.array_equal(to_uint8(recon)[0], to_uint8(inputs)[0])  # not the input itself
    assert f"mean PSNR {psnr(recon, inputs).mean().item():.2f} dB" in out


def test_reconstruct_of_a_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no images here")
    assert main(["reconstruct", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--model",
                 str(tiny_model(tmp_path / "vae"))]) == 2  # fmt: skip
    assert "no readable image to reconstruct" in capsys.readouterr().err


def test_psnr_by_hand():
    target = torch.zeros(2, 3, 4, 4)
    recon = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])
    torch.testing.assert_close(psnr(recon, target), torch.tensor([20.0, 40.0]))  # 10 log10(1/mse)
    assert psnr(target, target).isinf().all()


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
