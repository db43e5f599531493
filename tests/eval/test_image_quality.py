"""Issue 18: `dalle eval fid` and `dalle eval is` on folders of images."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from dalle.cli import main
from dalle.models.inception import FIDInception


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    for name, seed in (("a", 0), ("b", 1)):
        assert main(["data", "shapes", "--split", "test", "--n", "40", "--seed", str(seed),
                     "--out", str(root / name)]) == 0  # fmt: skip
    blurred = root / "blurred"
    blurred.mkdir()
    for path in sorted((root / "a").glob("*.png")):
        Image.open(path).filter(ImageFilter.GaussianBlur(2)).save(blurred / path.name)
    return root


def fid_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["eval", "fid", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_fid_with_clip_features(folders, capsys, tmp_path):
    same = fid_json(capsys, folders / "a", folders / "a")
    assert same["fid"] == pytest.approx(0, abs=1e-4) and same["n_real"] == same["n_gen"] == 40
    assert set(same) == {"fid", "kid", "kid_std", "n_real", "n_gen", "features"}
    assert same["fid"] >= 0  # never the small negative rounding gives
    assert same["kid_std"] is None  # 40 and 40 images: every subset is both sets whole
    capsys.readouterr()
    assert main(["eval", "fid", str(folders / "a"), str(folders / "a")]) == 0
    assert "no spread" in capsys.readouterr().out
    other = fid_json(capsys, folders / "a", folders / "b")  # two samples of the test split
    blur = fid_json(capsys, folders / "a", folders / "blurred")
    assert 0 < other["fid"] < blur["fid"]
    assert other["kid"] < blur["kid"]
    stats = tmp_path / "a.npz"
    capsys.readouterr()
    assert main(["eval", "fid", str(folders / "a"), str(folders / "b"), "--save-stats",
                 str(stats)]) == 0  # fmt: skip
    with np.load(stats) as saved:
        assert set(saved.files) == {"mu", "sigma"}
    from_stats = fid_json(capsys, stats, folders / "b")
    assert from_stats["fid"] == pytest.approx(other["fid"], rel=1e-9) and from_stats["kid"] is None
    assert main(["eval", "fid", str(folders / "a"), str(tmp_path / "none")]) == 2
    assert main(["eval", "fid", str(folders / "a"), str(folders / "b"), "--features",
                 "inception"]) == 2  # fmt: skip
    assert "pt_inception-2015-12-05" in capsys.readouterr().err


def test_inception_score_and_fid_with_an_inception_weights_file(folders, capsys, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"  # random weights: the plumbing, not a score
    torch.save(FIDInception().state_dict(), weights)
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted((folders / "a").glob("*.png"))[:10]:
        Image.open(path).save(few / path.name)
    capsys.readouterr()
    assert main(["eval", "is", str(few), "--inception-weights", str(weights), "--splits", "2",
                 "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == 10 and 1.0 <= report["is"] <= 1008
    same = fid_json(capsys, few, few, "--features", "inception", "--inception-weights", weights)
    assert same["fid"] == pytest.approx(0, abs=1e-4) and same["features"] == "inception"
