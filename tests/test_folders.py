"""The one resolver and the pipeline folder format (dalle.folders)."""

import json
import logging
import shutil

import pytest
import torch

from dalle.cli import main
from dalle.folders import (
    ASSETS,
    INDEX_FILE,
    PipelineIndex,
    part_path,
    read_index,
    resolve,
    write_pipeline,
)
from dalle.models.clip import CLIP
from dalle.models.dvae import DiscreteVAE, DVAEConfig
from dalle.models.transformer import DalleTransformer
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.text.tokenizer import TextTokenizer


def test_a_bundled_name_is_the_bundled_pipeline_and_a_same_named_folder_is_said(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    assert resolve("shapes") == ASSETS / "shapes"
    assert not caplog.records
    DVAEConfig.from_preset("dvae-tiny")  # a folder named like the bundled pipeline, here
    DiscreteVAE(DVAEConfig.from_preset("dvae-tiny")).save_pretrained(tmp_path / "shapes")
    with caplog.at_level(logging.WARNING, logger="dalle.folders"):
        assert resolve("shapes") == ASSETS / "shapes"
    assert "./shapes" in caplog.text  # which one was loaded, and how to get the other
    # a path, not a bare name, is the folder
    local = DiscreteVAE.from_pretrained("./shapes")
    assert local.config == DVAEConfig.from_preset("dvae-tiny")
    assert DiscreteVAE.from_pretrained("shapes").config != local.config


def test_unknown_names_list_the_bundled_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled name.*shapes"):
        resolve(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="shapes"):
        DallePipeline.from_pretrained("no-such-pipeline")


def test_a_part_is_found_by_its_class_or_its_name(tmp_path):
    root = ASSETS / "shapes"
    assert part_path("shapes", "DiscreteVAE") == root / "vae"
    assert part_path("shapes", "CLIP") == root / "clip"
    assert part_path("shapes", "TextTokenizer") == root / "tokenizer.json"
    assert part_path("shapes", "DalleTransformer", part="transformer") == root / "transformer"
    with pytest.raises(ValueError, match="is a DalleTransformer, not a DiscreteVAE"):
        part_path("shapes", "DiscreteVAE", part="transformer")
    with pytest.raises(ValueError, match="no part 'decoder'"):
        part_path("shapes", "DiscreteVAE", part="decoder")
    # two parts of one class: the name must be given
    vae = DiscreteVAE(DVAEConfig.from_preset("dvae-tiny"))
    write_pipeline(tmp_path / "two", "Test", {"a": vae, "b": vae})
    with pytest.raises(ValueError, match="more than one DiscreteVAE part"):
        DiscreteVAE.from_pretrained(tmp_path / "two")
    assert isinstance(DiscreteVAE.from_pretrained(tmp_path / "two", part="b"), DiscreteVAE)
    # a run folder holding the model one level down says where
    vae.save_pretrained(tmp_path / "run" / "vae")
    with pytest.raises(FileNotFoundError, match="sub-folders vae"):
        DiscreteVAE.from_pretrained(tmp_path / "run")


def test_write_then_read_a_pipeline_folder(tmp_path):
    vae = DiscreteVAE(DVAEConfig.from_preset("dvae-tiny")).eval()
    tokenizer = TextTokenizer.from_pretrained("shapes")
    folder = write_pipeline(
        tmp_path / "p", "Test", {"tok": tokenizer, "vae": vae}, {"sampling": {"top_k": 2}},
        tokenizers={"vae": "tok"}, dtype=torch.float16,
    )  # fmt: skip
    root, index = read_index(folder)
    assert index.class_name == "Test" and index.defaults == {"sampling": {"top_k": 2}}
    assert index.parts["tok"].path == "tok.json" and index.parts["vae"].tokenizer == "tok"
    loaded = DiscreteVAE.from_pretrained(folder)
    for name, tensor in vae.state_dict().items():  # stored in fp16, loaded as float32
        torch.testing.assert_close(loaded.state_dict()[name], tensor.half().float())
    assert TextTokenizer.from_pretrained(folder).to_json() == tokenizer.to_json()
    with pytest.raises(TypeError, match="not a registered part class"):
        write_pipeline(tmp_path / "q", "Test", {"x": object()})
    with pytest.raises(ValueError, match="not a part"):
        write_pipeline(tmp_path / "q", "Test", {"vae": vae}, tokenizers={"vae": "tok"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "JSON object with a _class_name"),
        ('{"_class_name": "DallePipeline", "parts": {}}', "at least one part"),
        ('{"_class_name": "DallePipeline", "parts": {"vae": {"path": "vae"}}}', "'class'"),
        ('{"_class_name": "DallePipeline", "parts": {"vae": {"class": "Pickle", "path": "vae"}, '
         '"tokenizer": {"class": "TextTokenizer", "path": "t.json"}, '
         '"transformer": {"class": "DalleTransformer", "path": "x"}}}',
         "unknown part class 'Pickle'"),
        ('{"_class_name": "UnknownPipeline", "parts": {"vae": {"class": "DiscreteVAE", '
         '"path": "vae"}}}', "holds a UnknownPipeline, not a DallePipeline"),
    ],
)  # fmt: skip
def test_a_malformed_index_names_its_file(tmp_path, text, message):
    (tmp_path / INDEX_FILE).write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        DallePipeline.from_pretrained(tmp_path)
    assert INDEX_FILE in str(error.value)


def test_the_first_index_layout_still_loads(tmp_path):
    """Pipelines written before parts were records: keys as paths, CLIP with its own tokenizer."""
    shutil.copytree(ASSETS / "shapes", tmp_path / "old")
    shutil.copy(ASSETS / "shapes" / "tokenizer.json", tmp_path / "old" / "clip")
    legacy = {"_class_name": "DallePipeline", "_dalle_version": "0.1.0",
              "tokenizer": "tokenizer.json", "vae": "vae", "transformer": "transformer",
              "sampling": {"temperature": 1.0, "top_k": 3, "top_p": None, "guidance": 2.0},
              "clip": "clip"}  # fmt: skip
    (tmp_path / "old" / INDEX_FILE).write_text(json.dumps(legacy))
    index = PipelineIndex.read(tmp_path / "old")
    assert index.parts["clip"].tokenizer == "clip_tokenizer"
    pipe = DallePipeline.from_pretrained(tmp_path / "old")
    assert pipe.clip is not None and pipe.defaults.top_k == 3
    assert isinstance(ClipRanker.from_pretrained(tmp_path / "old").clip, CLIP)


def test_assemble_rebuilds_the_bundled_pipeline_byte_for_byte(tmp_path, capsys):
    out = tmp_path / "rebuilt"
    args = ["pipeline", "assemble", str(out), "--tokenizer", "shapes", "--vae", "shapes",
            "--transformer", "shapes", "--clip", "shapes"]  # fmt: skip
    assert main(args) == 0
    bundled = ASSETS / "shapes"
    for file in ("model_index.json", "tokenizer.json", "vae/model.safetensors",
                 "transformer/model.safetensors", "clip/model.safetensors", "clip/config.json"):  # fmt: skip
        assert (out / file).read_bytes() == (bundled / file).read_bytes(), file
    assert not (out / "clip" / "tokenizer.json").exists()  # one tokenizer, shared by its record
    # the sampling options set the defaults; an existing folder is refused before any work
    assert main([*args[:2], str(tmp_path / "g2"), *args[3:], "--guidance", "1.5"]) == 0
    assert DallePipeline.from_pretrained(tmp_path / "g2").defaults.guidance == 1.5
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse: before any work
        main([*args[:2], str(tmp_path / "nan"), *args[3:], "--top-p", "nan"])
    assert refused.value.code == 2
    assert not (tmp_path / "nan").exists()


def test_models_no_longer_carry_pipeline_folder_names():
    for cls in (DiscreteVAE, DalleTransformer, CLIP):
        assert not hasattr(cls, "pipeline_part")


def test_weights_files_are_written_canonically():
    # safetensors writes its metadata in a hash map's order, which changes between processes;
    # the project's files sort their header, so the same weights make the same bytes
    from safetensors.torch import load, save

    from dalle.models.pretrained import canonical

    tensors = {"b": torch.arange(3.0), "a": torch.zeros(2, dtype=torch.float16)}
    one = canonical(save(tensors, {"x": "1", "format": "pt"}))
    assert canonical(one) == one
    n = int.from_bytes(one[:8], "little")
    assert n % 8 == 0 and one[8:].startswith(b'{"__metadata__":{"format":"pt","x":"1"},"a":')
    back = load(one)
    assert back.keys() == tensors.keys()
    assert all(torch.equal(back[k], v) and back[k].dtype == v.dtype for k, v in tensors.items())
