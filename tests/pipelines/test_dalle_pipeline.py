import json

import numpy as np
import pytest
import torch
from PIL import Image

from dalle.models.transformer import DalleConfig, DalleTransformer
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.pipelines.sampling import SamplingSettings
from dalle.pipelines.seeds import image_seed

from .conftest import tiny_pipeline


def test_folder_layout_and_round_trip(pipeline_dir):
    index = json.loads((pipeline_dir / "model_index.json").read_text())
    assert index["_class_name"] == "DallePipeline" and index["sampling"]["top_k"] == 4
    assert index["parts"] == {
        "tokenizer": {"class": "TextTokenizer", "path": "tokenizer.json"},
        "vae": {"class": "DiscreteVAE", "path": "vae"},
        "transformer": {"class": "DalleTransformer", "path": "transformer"},
    }
    for part in ("vae", "transformer"):
        assert (pipeline_dir / part / "config.json").is_file()
        assert (pipeline_dir / part / "model.safetensors").is_file()
    original = tiny_pipeline(SamplingSettings(top_k=4))
    loaded = DallePipeline.from_pretrained(pipeline_dir)
    assert loaded.defaults == SamplingSettings(top_k=4)
    a = original(["a red circle", "a blue square"], num_images_per_prompt=2, seed=3)
    b = loaded(["a red circle", "a blue square"], num_images_per_prompt=2, seed=3)
    assert len(a) == 4 and all(isinstance(im, Image.Image) for im in a)
    assert a[0].size == (16, 16)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_images_do_not_depend_on_batch_size():
    pipe = tiny_pipeline()
    # exactly so in fp32 (in bf16 the kernels round by batch shape: docs/transformer.md)
    a = pipe(["a red circle", "a blue square"], 3, seed=1, batch_size=6, bf16=False)
    b = pipe(["a red circle", "a blue square"], 3, seed=1, batch_size=2, bf16=False)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    c = pipe(["a red circle", "a blue square"], 3, seed=2, bf16=False)
    assert any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, c))
    assert image_seed(0, 1, 2) != image_seed(0, 2, 1)


def test_call_settings_override_the_defaults():
    pipe = tiny_pipeline(SamplingSettings(temperature=0.0))
    assert pipe.settings(top_k=3) == SamplingSettings(temperature=0.0, top_k=3)
    greedy = pipe(["a red circle"] * 2, 1)  # temperature 0: both prompts draw the same image
    assert np.array_equal(np.asarray(greedy[0]), np.asarray(greedy[1]))


def test_completion_keeps_the_top_rows():
    pipe = tiny_pipeline()
    source = pipe(["a red circle"], 1, seed=0)[0]
    grid = pipe.transformer.config.image_grid
    kept = pipe.image_tokens(source)[0, : 3 * grid]
    out = pipe.complete_tokens(source, rows=3, prompt="a blue square", num_images=2, seed=1)
    assert out.shape == (2, grid * grid)
    assert torch.equal(out[0, : 3 * grid], kept) and torch.equal(out[1, : 3 * grid], kept)
    assert not torch.equal(out[0], out[1])  # the rest is sampled, per image
    images = pipe.complete(source, rows=3, prompt="a blue square", num_images=2, seed=1)
    assert len(images) == 2 and images[0].size == source.size
    with pytest.raises(ValueError, match="rows"):
        pipe.complete(source, rows=grid, prompt="x")


def test_mismatched_parts_and_missing_folders_are_refused(tmp_path):
    pipe = tiny_pipeline()
    wrong = DalleTransformer(DalleConfig.from_preset("dalle-tiny").replace(image_grid=4))
    with pytest.raises(ValueError, match="dVAE gives"):
        DallePipeline(pipe.tokenizer, pipe.vae, wrong)
    with pytest.raises(FileNotFoundError, match="no model at .*nothing-here"):
        DallePipeline.from_pretrained(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a pipeline folder .no model_index.json"):
        DallePipeline.from_pretrained(tmp_path / "empty")
