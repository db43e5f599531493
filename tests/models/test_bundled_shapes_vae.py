"""The dVAE bundled in ``dalle/assets/shapes/vae``: it loads by name and reconstructs the shapes world."""

import numpy as np
import torch
from PIL import Image

from dalle.cli import main
from dalle.eval.reconstruction import shapes_reconstruction_report
from dalle.folders import ASSETS
from dalle.models.dvae import DiscreteVAE
from dalle.shapes.dataset import shapes_example


def test_bundled_weights_are_small_half_precision_files():
    files = list((ASSETS / "shapes" / "vae").iterdir())
    assert sorted(f.name for f in files) == ["config.json", "model.safetensors"]
    assert sum(f.stat().st_size for f in files) < 5_000_000
    from safetensors import safe_open

    with safe_open(str(ASSETS / "shapes" / "vae" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def test_bundled_vae_reconstructs_test_images():
    torch.set_num_threads(2)
    vae = DiscreteVAE.from_pretrained("shapes")
    assert vae.config.image_size == 64 and vae.config.grid_size <= 16
    report = shapes_reconstruction_report(vae, n=100, seed=7)  # other images than docs' figures
    # docs/dvae.md has the full figures (1,000 images); these are a floor well under them
    assert report.mean_psnr > 30.0
    assert report.seen_accuracy >= 0.9 and report.held_out_accuracy >= 0.85
    assert report.codes_used > vae.config.num_tokens // 4


def test_reconstruct_defaults_to_the_bundled_model(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(shapes_example("test", i, 0).image).save(src / f"{i}.png")
    assert main(["reconstruct", str(src), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    grid = DiscreteVAE.from_pretrained("shapes").config.grid_size
    assert f"tokens per image {grid * grid}" in out
    back = np.asarray(Image.open(tmp_path / "out" / "0.png"))
    assert back.shape == (64, 64, 3)
