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
