"""Issue 18: the celeba128 recipe end to end on a fake CelebA (a few dozen 178 x 218 images with
the attribute and partition files): every stage trains a few steps at 128 px with the recipe's
augmentation, both pipelines draw, and FID and IS are computed."""

import json

import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.data.celeba import write_fake_celeba
from dalle.models.inception import FIDInception


@pytest.mark.slow
def test_the_celeba128_recipe_end_to_end(tmp_path, capsys):
    data = write_fake_celeba(tmp_path / "celeba")
    runs = tmp_path / "runs"
    short = ["--steps", "2", "--batch-size", "4", "--checkpoint-every", "2", "--no-bf16",
             "--threads", "2", "--data", str(data)]  # fmt: skip

    def train(stage: str, *extra: str) -> None:
        assert main(["train", stage, "--preset", "celeba128", "--out", str(runs / stage),
                     *short, *extra]) == 0, stage  # fmt: skip

    train("dvae")
    train("clip")
    train("dalle", "--vae", str(runs / "dvae" / "vae"))
    out = tmp_path / "drawn"
    assert main(["generate", "a smiling woman with blond hair", "--model",
                 str(runs / "dalle" / "pipeline"), "--num-images", "2", "--out", str(out),
                 "--no-bf16"]) == 0  # fmt: skip
    assert Image.open(out / "0000_00.png").size == (128, 128)
    clip = str(runs / "clip" / "clip")
    train("prior", "--clip", clip)
    train("decoder", "--clip", clip, "--sample-steps", "2")  # the grids' drawings: seconds
    train("upsampler", "--sample-steps", "2")
    for stage in ("decoder", "upsampler"):
        assert json.loads((runs / stage / "train_config.json").read_text())["sample_steps"] == 2
    unclip = tmp_path / "unclip"
    assert main(["pipeline", "assemble", str(unclip), "--tokenizer", clip, "--clip", clip,
                 "--prior", str(runs / "prior" / "pipeline"), "--decoder",
                 str(runs / "decoder" / "decoder"), "--upsampler",
                 str(runs / "upsampler" / "upsampler"), "--prior-steps", "3",
                 "--decoder-steps", "3", "--upsampler-steps", "3"]) == 0  # fmt: skip
    assert main(["generate", "a smiling woman with blond hair", "--model", str(unclip),
                 "--num-images", "2", "--out", str(tmp_path / "drawn2"), "--no-bf16"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "drawn2" / "0000_01.png").size == (128, 128)
    capsys.readouterr()
    assert main(["eval", "fid", str(data / "img_align_celeba"), str(out), "--model", clip,
                 "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_real"] == 30 and report["n_gen"] == 2 and report["fid"] > 0
    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(FIDInception().state_dict(), weights)
    assert main(["eval", "is", str(out), "--inception-weights", str(weights), "--splits", "1",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 2
