import numpy as np
import pytest
from PIL import Image

from dalle.cli import main
from dalle.pipelines.sampling import SamplingSettings

from ..pipelines.conftest import tiny_pipeline


@pytest.fixture
def pipe_dir(tmp_path):
    return tiny_pipeline(SamplingSettings(top_k=4)).save_pretrained(tmp_path / "pipe")


def test_generate_writes_numbered_pngs_with_text_chunks(tmp_path, pipe_dir, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a green cross\n")
    out = tmp_path / "out"
    code = main([
        "generate", "a red circle", "a blue square", "--prompts-file", str(prompts),
        "--model", str(pipe_dir), "--num-images", "2", "--seed", "5", "--out", str(out),
        "--guidance", "2.5",
    ])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:04d}_{j:02d}.png" for i in range(3) for j in range(2)]
    with Image.open(out / "0002_01.png") as im:
        text = dict(im.text)
    assert text["prompt"] == "a green cross" and text["seed"] == "5"
    assert text["image_index"] == "1" and text["model"] == str(pipe_dir)
    assert text["guidance"] == "2.5" and text["top_k"] == "4"  # top-k from the pipeline
    assert str(out) in capsys.readouterr().out
    # the same command gives the same pixels
    again = tmp_path / "again"
    main(["generate", "a red circle", "--model", str(pipe_dir), "--num-images", "1", "--seed",
          "5", "--out", str(again), "--guidance", "2.5"])  # fmt: skip
    a, b = (np.asarray(Image.open(d / "0000_00.png")) for d in (out, again))
    assert np.array_equal(a, b)


def test_generate_s_sampling_options_reach_the_pixels(tmp_path, pipe_dir):
    pipe = tiny_pipeline(SamplingSettings(top_k=4))
    prompts = ["a red circle", "a blue square"]
    given = {"temperature": 0.7, "top_p": 0.9, "guidance": 2.5, "top_k": 3}
    options = [f"--{k.replace('_', '-')}={v}" for k, v in given.items()]
    out = tmp_path / "out"
    assert main(["generate", *prompts, "--model", str(pipe_dir), "--num-images", "2", "--seed",
                 "5", "--no-bf16", "--out", str(out), *options]) == 0  # fmt: skip
    drawn = [np.asarray(Image.open(out / f"{i:04d}_{j:02d}.png")) for i in range(2)
             for j in range(2)]  # fmt: skip
    library = pipe(prompts, 2, seed=5, bf16=False, **given)
    defaults = pipe(prompts, 2, seed=5, bf16=False)
    for a, b in zip(drawn, library, strict=True):
        assert np.array_equal(a, np.asarray(b))
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(drawn, defaults, strict=True))


def test_generate_without_prompts_is_an_error(tmp_path, pipe_dir, capsys):
    assert main(["generate", "--model", str(pipe_dir), "--out", str(tmp_path)]) == 2
    assert "no prompts" in capsys.readouterr().err


def test_complete_writes_its_images(tmp_path, pipe_dir):
    source = tmp_path / "source.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(source)
    out = tmp_path / "done"
    code = main(["complete", str(source), "a red circle", "--rows", "2", "--model",
                 str(pipe_dir), "--num-images", "3", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "0000_01.png", "0000_02.png"]
    with Image.open(out / "0000_02.png") as im:
        assert im.text["rows"] == "2" and im.text["prompt"] == "a red circle"
    assert main(["complete", str(source), "x", "--rows", "99", "--model", str(pipe_dir)]) == 2


def test_an_interrupted_generate_keeps_the_prompts_it_finished(tmp_path, pipe_dir, monkeypatch):
    from dalle.pipelines.dalle_pipeline import DallePipeline

    original = DallePipeline.generate_tokens
    calls = []

    def stop_on_third_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C while batch 3 is drawn
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DallePipeline, "generate_tokens", stop_on_third_batch)
    out = tmp_path / "out"
    code = main(["generate", "a red circle", "a blue square", "a green cross", "--model",
                 str(pipe_dir), "--num-images", "3", "--batch-size", "2", "--out", str(out)])  # fmt: skip
    assert code == 130
    # batches of 2 over 3 x 3 images: after two batches prompt 0 (images 0-2) was final
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "0000_01.png", "0000_02.png"]


def test_iter_images_gives_each_prompt_once_in_order_as_call_does():
    pipe = tiny_pipeline(SamplingSettings(top_k=4))
    prompts = ["a red circle", "a blue square", "a green cross"]
    found = list(pipe.iter_images(prompts, 2, seed=3, batch_size=3))
    assert [i for i, _ in found] == [0, 1, 2] and all(len(images) == 2 for _, images in found)
    flat = [np.asarray(image) for _, images in found for image in images]
    for a, b in zip(flat, pipe(prompts, 2, seed=3, batch_size=5), strict=True):
        assert np.array_equal(a, np.asarray(b))


@pytest.mark.parametrize("option", [
    ["--temperature", "nan"], ["--temperature", "inf"], ["--guidance", "nan"],
    ["--top-p", "nan"], ["--guidance=-inf"],
])  # fmt: skip
def test_non_finite_numbers_are_refused_before_any_work(tmp_path, pipe_dir, capsys, option):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:  # argparse refuses it: nothing is loaded
        main(["generate", "a red circle", "--model", str(pipe_dir), "--out", str(out), *option])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    name = option[0].split("=")[0]  # the option, named as the user wrote it
    assert f"argument {name}: must" in err and ("nan" in err or "inf" in err)
    assert not any(out.glob("*.png"))


def test_empty_prompts_and_an_out_file_are_refused_before_loading(tmp_path, capsys):
    missing_model = str(tmp_path / "no-such-model")  # never reached: the checks come first
    assert main(["generate", "  ", "--model", missing_model, "--out", str(tmp_path / "o")]) == 2
    assert "prompt 0 is empty" in capsys.readouterr().err
    afile = tmp_path / "taken"
    afile.write_text("mine")
    assert main(["generate", "a red circle", "--model", missing_model, "--out", str(afile)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert afile.read_text() == "mine"


def test_a_malformed_model_index_names_its_file(tmp_path, pipe_dir, capsys):
    (pipe_dir / "model_index.json").write_text("{not json")
    assert main(["generate", "a red circle", "--model", str(pipe_dir), "--out", str(tmp_path)]) == 2
    assert str(pipe_dir / "model_index.json") in capsys.readouterr().err


def test_unquoted_words_are_noted(tmp_path, pipe_dir, capsys):
    out = tmp_path / "out"
    assert main(["generate", "red", "circle", "--model", str(pipe_dir), "--num-images", "1",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "2 prompts of one word each" in capsys.readouterr().err
    assert main(["generate", "a red circle", "a blue square", "--model", str(pipe_dir),
                 "--num-images", "1", "--out", str(tmp_path / "two")]) == 0  # fmt: skip
    assert "one word" not in capsys.readouterr().err
