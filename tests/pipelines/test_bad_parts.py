"""A pipeline part with bad weights or files is one clear error naming the part and the file."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from dalle.cli import main
from dalle.pipelines.dalle_pipeline import DallePipeline

from .conftest import tiny_pipeline


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("good") / "pipe")


def _tensors(path):  # copies: the file is rewritten while a memory map would still read it
    return {k: v.clone() for k, v in load_file(str(path)).items()}


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path):
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())


def _pickle(path):
    torch.save(_tensors(path), path)  # a pickle renamed .safetensors is never unpickled


def _drop_tensor(path):
    state = _tensors(path)
    state.pop(sorted(state)[0])
    save_file(state, str(path))


def _nan(path):
    state = _tensors(path)
    key = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, str(path))


def _other_config(path):
    config = json.loads((path.parent / "config.json").read_text())
    config["dim"] = config["dim"] * 2
    (path.parent / "config.json").write_text(json.dumps(config))


def _other_heads(path):  # every tensor keeps its shape: only the saved config can tell
    config = json.loads((path.parent / "config.json").read_text())
    config["num_heads"], config["head_dim"] = config["num_heads"] * 2, config["head_dim"] // 2
    (path.parent / "config.json").write_text(json.dumps(config))


def _older_file_other_config(path):  # written before the config went into the metadata
    save_file(_tensors(path), str(path), metadata={"format": "pt"})
    _other_config(path)


def _bad_config_json(path):
    (path.parent / "config.json").write_text("{ not json")


CASES = {
    "truncated": ("transformer", _truncate, "not a readable safetensors file"),
    "random bytes": ("vae", _random_bytes, "not a readable safetensors file"),
    "pickle": ("transformer", _pickle, "not a readable safetensors file"),
    "missing tensor": ("vae", _drop_tensor, "tensors missing"),
    "NaN": ("transformer", _nan, "NaN or infinite"),
    "config not matching the weights": ("transformer", _other_config, "does not describe"),
    "config keeping every shape": (
        "transformer",
        _other_heads,
        r"head_dim \d+ -> \d+, num_heads \d+ -> \d+",
    ),
    "older file, config not matching": (
        "transformer",
        _older_file_other_config,
        "the config makes",
    ),
    "malformed config.json": ("vae", _bad_config_json, "not valid JSON|invalid JSON"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_part_is_named(good, tmp_path, capsys, case):
    part, damage, message = CASES[case]
    pipe = tmp_path / "pipe"
    shutil.copytree(good, pipe)
    damage(pipe / part / "model.safetensors")
    with pytest.raises(ValueError, match=message) as error:
        DallePipeline.from_pretrained(pipe)
    assert f"part '{part}'" in str(error.value) and str(pipe / part) in str(error.value)
    out = tmp_path / "out"
    assert main(["generate", "a red circle", "--model", str(pipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dalle: error:") and f"part '{part}'" in err and "Traceback" not in err
    assert not list(out.glob("*.png"))


def test_a_bad_tokenizer_is_named(good, tmp_path):
    pipe = tmp_path / "pipe"
    shutil.copytree(good, pipe)
    (pipe / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ValueError, match="part 'tokenizer'.*not a valid tokenizer.json"):
        DallePipeline.from_pretrained(pipe)
