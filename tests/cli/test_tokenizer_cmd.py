import itertools
import json

import pytest
from PIL import Image

import dalle.data
from dalle.cli import main
from dalle.text.tokenizer import TextTokenizer

CAPTIONS = [
    "a small red circle above a large blue square",
    "a large green triangle to the left of a small white cross",
    "a small cyan square below a large purple circle",
    "a large yellow cross to the right of a small orange triangle",
]


def make_imagefolder(root, captions):
    root.mkdir()
    lines = []
    for i, caption in enumerate(captions):
        name = f"{i:03d}.png"
        Image.new("RGB", (8, 8), (40 * i % 256, 0, 0)).save(root / name)
        lines.append(json.dumps({"file_name": name, "text": caption}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_train_on_imagefolder(tmp_path, capsys):
    folder = make_imagefolder(tmp_path / "imgs", CAPTIONS * 5)
    out = tmp_path / "tok"
    code = main(
        ["tokenizer", "train", "--data", str(folder), "--out", str(out), "--vocab-size", "300"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out / "tokenizer.json") in printed and "vocab size" in printed
    tok = TextTokenizer.from_file(out)
    assert tok.decode(tok.encode(CAPTIONS[0], text_seq_len=48).ids[0]) == CAPTIONS[0]


class InfiniteCaptions:
    def __init__(self):
        self.read = 0

    def captions(self):
        for caption in itertools.cycle(CAPTIONS):
            self.read += 1
            yield caption


def test_train_stops_at_max_captions(tmp_path, capsys, monkeypatch):
    source = InfiniteCaptions()
    calls = []

    def fake_open_dataset(spec, image_size, split):
        calls.append((spec, image_size, split))
        return source

    monkeypatch.setattr(dalle.data, "open_dataset", fake_open_dataset, raising=False)
    out = tmp_path / "tok.json"
    argv = ["tokenizer", "train", "--data", "shapes", "--out", str(out), "--max-captions", "50"]
    assert main([*argv, "--vocab-size", "300", "--split", "test"]) == 0
    assert calls == [("shapes", 64, "test")]
    assert source.read == 50
    printed = capsys.readouterr().out
    assert "trained on 50 captions" in printed and "example:" in printed
    assert TextTokenizer.from_file(out).vocab_size <= 300


def test_train_rejects_empty_source(tmp_path, capsys, monkeypatch):
    class Empty:
        def captions(self):
            return iter(())

    monkeypatch.setattr(dalle.data, "open_dataset", lambda *a, **k: Empty(), raising=False)
    assert main(["tokenizer", "train", "--data", "x", "--out", str(tmp_path / "t")]) == 2
    assert "no captions" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_encode_prints_ids_and_pad_mask(tmp_path, capsys):
    TextTokenizer.train(CAPTIONS * 5, vocab_size=512).save(tmp_path)
    argv = ["tokenizer", "encode", "--tokenizer", str(tmp_path), "--text-seq-len", "6"]
    assert main([*argv, "A Red Circle"]) == 0
    printed = capsys.readouterr().out
    assert "pad_mask: [0, 0, 0, 0, 1, 1]" in printed
    assert "decoded:  'a red circle'" in printed


def test_encode_missing_tokenizer_is_an_error(tmp_path, capsys):
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path), "hi"]) == 2
    assert "no tokenizer file" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tokenizer", "train", "--help"])
    assert exc.value.code == 0
    assert "--max-captions" in capsys.readouterr().out
