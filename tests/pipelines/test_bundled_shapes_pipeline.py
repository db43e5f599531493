"""The pipeline bundled in ``dalle/assets/shapes``: it loads by name, its parts are small fp16
files, and ``dalle generate`` with no ``--model`` draws what the prompt says."""

import json

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

from dalle.cli import main
from dalle.eval.clip_eval import shapes_clip_report
from dalle.eval.generation import shapes_generation_report
from dalle.folders import ASSETS
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.shapes.prompts import evaluation_prompts

BUNDLED = ASSETS / "shapes"


def test_model_index_names_small_half_precision_parts():
    index = json.loads((BUNDLED / "model_index.json").read_text())
    parts = index["parts"]
    assert parts["tokenizer"] == {"class": "TextTokenizer", "path": "tokenizer.json"}
    assert parts["clip"]["tokenizer"] == "tokenizer"  # one tokenizer file, shared
    assert [p.name for p in BUNDLED.rglob("tokenizer.json")] == ["tokenizer.json"]
    for part in ("vae", "transformer", "clip"):
        with safe_open(str(BUNDLED / parts[part]["path"] / "model.safetensors"), "pt") as f:
            assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 40_000_000  # tens of MB at most, as the project promises
    assert index["sampling"]["guidance"] >= 1.0  # the settings measured best travel along


def test_bundled_pipeline_draws_what_the_prompts_say(tmp_path):
    torch.set_num_threads(2)
    pipe = DallePipeline.from_pretrained("shapes")
    # other prompts than the figures in docs/transformer.md (seed 0); a floor well under them
    prompts = [p for p in evaluation_prompts(32, seed=5) if p.count(" a ") == 0][:6]
    report = shapes_generation_report(pipe, prompts, tmp_path, num_images=2, seed=3)
    assert len(report.images) == 12
    assert report.seen_accuracy is not None and report.seen_accuracy >= 0.6


def test_generate_defaults_to_the_bundled_pipeline(tmp_path, capsys):
    out = tmp_path / "out"
    prompt = "a red circle to the left of a blue square"
    assert main(["generate", prompt, "--num-images", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "0000_01.png"]
    with Image.open(out / "0000_01.png") as im:
        assert im.text["model"] == "shapes" and im.text["prompt"] == prompt
        assert np.asarray(im).shape == (64, 64, 3)
    assert str(out) in capsys.readouterr().out


def test_bundled_clip_matches_test_images_to_their_captions():
    torch.set_num_threads(2)
    clip = DallePipeline.from_pretrained("shapes").clip
    assert clip is not None
    # test-split images (held-out pairs included), other than the 1,000 of docs/clip.md
    report = shapes_clip_report(clip.clip, clip.tokenizer, n=200, seed=7)
    assert report["retrieval_top1"]["seen"] >= 0.8  # 1,000 images, seed 0: see docs/clip.md
    assert report["zero_shot"]["colour"]["seen"] >= 0.95


def test_generate_reranks_with_the_bundled_clip(tmp_path):
    out = tmp_path / "out"
    prompt = "a large green circle"
    args = ["generate", prompt, "--num-images", "2", "--candidates", "4", "--out", str(out)]
    assert main(args) == 0
    scores = []
    for name in ("0000_00.png", "0000_01.png"):
        with Image.open(out / name) as im:
            assert im.text["candidates"] == "4"
            scores.append(float(im.text["clip_score"]))
    assert scores[0] >= scores[1]  # best first
