"""Issue 19: every command refuses bad input with a clear error naming the option or file,
exit status 2, before any model is loaded and without writing anything half-way."""

import pickle

import numpy as np
import pytest
from PIL import Image

from dalle.cli import main


def run(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of ``dalle ARGV``, whether argparse or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except Exception as e:  # a traceback: what this file exists to find
        code = f"{type(e).__name__}: {e}"
    return code, capsys.readouterr().err


@pytest.fixture()
def files(tmp_path):
    """Good and bad inputs: an image, a corrupt PNG, a folder, a file, prompts files, and model
    folders that must not load (malformed JSON, a pickle renamed .safetensors)."""
    f = type("Files", (), {})()
    f.root = tmp_path
    f.image = tmp_path / "image.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(f.image)
    f.corrupt = tmp_path / "corrupt.png"
    f.corrupt.write_bytes(f.image.read_bytes()[:60])
    f.text = tmp_path / "notes.txt"
    f.text.write_text("not an image")
    f.binary = tmp_path / "binary.txt"
    f.binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    f.prompts = tmp_path / "prompts.txt"
    f.prompts.write_text("a red circle\n")
    f.folder = tmp_path / "folder"
    f.folder.mkdir()
    f.missing = tmp_path / "missing"
    f.under_file = tmp_path / "notes.txt" / "out"  # a place that cannot exist
    f.bad_index = tmp_path / "bad_index"
    f.bad_index.mkdir()
    (f.bad_index / "model_index.json").write_text("{not json")
    f.pickled = tmp_path / "pickled"
    f.pickled.mkdir()
    (f.pickled / "config.json").write_text('{"image_size": 16}')
    (f.pickled / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    f.bad_config = tmp_path / "bad_config"
    f.bad_config.mkdir()
    (f.bad_config / "config.json").write_text("{")
    return f


def cases(f):
    """(argv, a fragment the error must contain) for every command; each case that names
    ``out`` gets its own output folder."""
    img, out = str(f.image), ["--out", "{out}"]
    return [
        # generate
        (["generate", "a red circle", "--temperature", "nan", *out], "argument --temperature: must be a finite"),
        (["generate", "a red circle", "--guidance", "inf", *out], "argument --guidance: must be a finite"),
        (["generate", "a red circle", "--top-p", "2", *out], "argument --top-p: must lie in (0, 1]"),
        (["generate", "a red circle", "--top-k", "-3", *out], "argument --top-k: must be at least 0"),
        (["generate", "a red circle", "--decoder-guidance-interval", "0.8,0.2", *out],
         "argument --decoder-guidance-interval: must be two noise levels 0 <= low <= high <= 1, got 0.8,0.2"),
        (["generate", "a red circle", "--decoder-guidance-interval", "0.5", *out],
         "argument --decoder-guidance-interval: expected LOW,HIGH"),
        (["generate", "a red circle", "--num-images", "0", *out], "--num-images"),
        (["generate", "a red circle", "--candidates", "0", *out], "--candidates"),
        (["generate", "a red circle", "--threads", "-1", *out], "--threads"),
        (["generate", "   ", *out], "prompt 0 is empty"),
        (["generate", "a red\x07circle", *out], "control character"),
        (["generate", "x" * 20000, *out], "characters"),
        (["generate", "--prompts-file", str(f.missing), *out], str(f.missing)),
        (["generate", "--prompts-file", str(f.folder), *out], str(f.folder)),
        (["generate", "--prompts-file", str(f.binary), *out], "not UTF-8"),
        (["generate", "a red circle", "--model", str(f.missing), *out], str(f.missing)),
        (["generate", "a red circle", "--model", str(f.bad_index), *out], "model_index.json"),
        (["generate", "a red circle", "--out", str(f.text)], "not a folder"),
        (["generate", "a red circle", "--out", str(f.under_file)], "cannot create"),
        # complete
        (["complete", str(f.missing), "a red circle", "--rows", "2", *out], str(f.missing)),
        (["complete", str(f.corrupt), "a red circle", "--rows", "2", *out], str(f.corrupt)),
        (["complete", str(f.text), "a red circle", "--rows", "2", *out], "not an image"),
        (["complete", img, "a red circle", "--rows", "99", *out], "rows"),
        # editing
        (["vary", str(f.corrupt), *out], str(f.corrupt)),
        (["vary", img, "--eta", "2", *out], "argument --eta: must lie in [0, 1]"),
        (["vary", img, "--eta-from", "1.5", *out], "argument --eta-from:"),
        (["vary", img, "--decoder-guidance", "nan", *out], "argument --decoder-guidance:"),
        (["interpolate", img, str(f.missing), *out], str(f.missing)),
        (["interpolate", img, img, "--steps", "0", *out], "--steps"),
        (["edit", img, "--from", "", "--to", "a blue circle", *out], "--from"),
        (["edit", img, "--from", "a", "--to", "b", "--amount", "nan", *out], "argument --amount:"),
        (["inpaint", img, "a red circle", "--mask", str(f.corrupt), *out], "--mask"),
        (["inpaint", img, "a red circle", "--mask", img, *out], "marks nothing"),
        # data
        (["data", "shapes", "--n", "0", "--out", str(f.root / "d")], "--n"),
        (["data", "shapes", "--n", "2", "--out", str(f.text)], str(f.text)),
        (["data", "shapes-prompts", "--n", "-1", "--out", str(f.root / "p.txt")], "--n"),
        (["data", "shapes-prompts", "--n", "4", "--out", str(f.under_file)], str(f.under_file)),
        # tokenizer
        (["tokenizer", "train", "--data", str(f.missing), "--out", str(f.root / "t.json")],
         str(f.missing)),
        (["tokenizer", "train", "--data", "shapes", "--vocab-size", "0", "--out",
          str(f.root / "t.json")], "--vocab-size"),
        (["tokenizer", "train", "--data", "shapes", "--out", str(f.under_file)],
         str(f.under_file)),
        # training
        (["train", "dvae", "--preset", "nope", *out], "nope"),
        (["train", "dalle", "--lr", "nan", *out], "--lr"),
        (["train", "clip", "--steps", "0", *out], "--steps"),
        (["train", "prior", "--ema-decay", "1", *out], "--ema-decay"),
        (["train", "decoder", "--warmup-steps", "-5", *out], "--warmup-steps"),
        (["train", "decoder", "--caption-dropout", "1", *out], "--caption-dropout"),
        (["train", "dalle", "--caption-dropout", "-0.1", *out], "--caption-dropout"),
        (["train", "prior", "--data", str(f.missing), "--out", str(f.root / "r")],
         str(f.missing)),
        (["train", "decoder", "--clip", str(f.bad_config), "--out", str(f.root / "r2")],
         str(f.bad_config)),
        (["train", "upsampler", "--crop-size", "-1", *out], "--crop-size"),
        (["train", "dalle", "--vae", str(f.pickled), "--out", str(f.root / "r3")], "safetensors"),
        # reconstruct
        (["reconstruct", str(f.missing), *out], str(f.missing)),
        (["reconstruct", str(f.folder), "--model", str(f.pickled), *out], "safetensors"),
        (["reconstruct", str(f.folder), "--batch-size", "0", *out], "--batch-size"),
        (["reconstruct", str(f.folder), "--model", str(f.bad_config), *out],
         str(f.bad_config / "config.json")),
        # eval
        (["eval", "shapes", str(f.missing), "--prompts", str(f.prompts)], str(f.missing)),
        (["eval", "shapes", str(f.folder), "--prompts", str(f.missing)], str(f.missing)),
        (["eval", "reconstruction", "--n", "0"], "--n"),
        (["eval", "generation", "--n-prompts", "0", *out], "--n-prompts"),
        (["eval", "clip", "--n", "-5"], "--n"),
        (["eval", "prior", "--prior-guidance", "nan"], "argument --prior-guidance:"),
        (["eval", "clipscore", str(f.missing)], str(f.missing)),
        (["eval", "editing", "--amount", "nan"], "--amount"),
        (["eval", "editing", "--eta", "1.5"], "--eta"),
        (["eval", "editing", "--eta-from", "-0.5"], "--eta-from"),
        (["eval", "editing", "--edits", "variations,warp"], "--edits"),
        (["eval", "editing", "--decoder-steps", "0"], "--decoder-steps"),
        (["eval", "editing", "--num-variations", "3", "--candidates", "2"],
         "at least --num-variations"),
        (["eval", "editing", "--decoder-guidance", "nan"], "--decoder-guidance"),
        (["eval", "editing", "--fresh-guidance", "-1"], "--fresh-guidance"),
        # pipeline, embed
        (["pipeline", "assemble", str(f.folder), "--tokenizer", "shapes", "--vae", "shapes",
          "--transformer", "shapes"], "exists"),
        (["pipeline", "assemble", str(f.root / "new"), "--tokenizer", str(f.missing), "--vae",
          "shapes", "--transformer", "shapes"], str(f.missing)),
        (["embed", "--prompts", str(f.binary), "--out", str(f.root / "e.npy")], "not UTF-8"),
        (["embed", "--images", str(f.folder), "--out", str(f.root / "e.npy")], "no image files"),
        (["embed", "--prompts", str(f.prompts), "--model", str(f.bad_index), "--out",
          str(f.root / "e.npy")], "model_index.json"),
    ]  # fmt: skip


def test_every_command_refuses_bad_input_clearly(files, capsys):
    failures = []
    for k, (argv, fragment) in enumerate(cases(files)):
        argv = [a.replace("{out}", str(files.root / f"out{k}")) for a in argv]
        code, err = run(argv, capsys)
        if code != 2 or fragment not in err or "Traceback" in err:
            shown = [a[:40] for a in argv[:4]]
            failures.append(f"{shown}: exit {code}, stderr {err.strip()[-300:]!r}")
    assert not failures, "\n".join(failures)
    leftovers = [p for p in files.root.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    assert not leftovers  # no temporary file left behind
    assert not any(files.root.glob("out*/*.png"))  # nothing drawn for a refused command


def test_the_tokenizer_floor_the_cli_checks_is_the_library_s():
    from dalle.text.tokenizer import MIN_VOCAB_SIZE

    assert MIN_VOCAB_SIZE == 259  # tokenizer_cmd's --vocab-size check


def test_prompts_are_checked_by_the_library_too():
    from dalle.text.prompts import MAX_PROMPT_CHARS, check_prompts

    assert check_prompts(["a red\tcircle", "a red\r\ncircle"]) == ["a red circle", "a red  circle"]
    for bad, message in ((" ", "empty"), ("a\x00b", "U\\+0000"), ("a\ud800", "surrogate"),
                         ("x" * (MAX_PROMPT_CHARS + 1), "characters")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            check_prompts(["fine", bad])
