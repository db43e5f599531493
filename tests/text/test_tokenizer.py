import json
import pickle
import random
import unicodedata
import warnings

import pytest
import torch
from tokenizers import Tokenizer, models

from dalle.text.tokenizer import TextTokenizer, TokenizedText, TruncationWarning

COLOURS = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
SHAPES = ["circle", "square", "triangle", "cross"]
SIZES = ["small", "large"]
RELATIONS = ["to the left of", "to the right of", "above", "below"]


def shapes_captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)

    def obj() -> str:
        return f"a {rng.choice(SIZES)} {rng.choice(COLOURS)} {rng.choice(SHAPES)}"

    return [f"{obj()} {rng.choice(RELATIONS)} {obj()}" for _ in range(n)]


def normalized(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().strip()


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.train(shapes_captions(500), vocab_size=400, min_frequency=2)


def test_special_ids_and_vocab(tok):
    assert (tok.pad_id, tok.eot_id) == (0, 1)
    assert 256 + 3 < tok.vocab_size <= 400
    assert tok.to_tokens([0, 1, 2]) == ["<pad>", "<eot>", "<unk>"]


def test_round_trip(tok):
    for caption in shapes_captions(20, seed=1) + ["  A Small RED Circle  ", "two  spaces"]:
        out = tok.encode(caption, text_seq_len=32)
        assert tok.decode(out.ids[0]) == normalized(caption)


def test_lowercasing(tok):
    upper = tok.encode("A LARGE Red Circle", text_seq_len=8).ids
    assert torch.equal(upper, tok.encode("a large red circle", text_seq_len=8).ids)


def test_layout_hand_checked(tok):
    out = tok.encode(["a red circle", ""], text_seq_len=6)
    assert isinstance(out, TokenizedText)
    assert out.ids.dtype == torch.long and out.pad_mask.dtype == torch.bool
    assert out.ids.shape == out.pad_mask.shape == (2, 6)
    assert tok.to_tokens(out.ids[0]) == ["Ġa", "Ġred", "Ġcircle", "<eot>", "<pad>", "<pad>"]
    assert out.ids[1].tolist() == [1, 0, 0, 0, 0, 0]
    assert out.pad_mask.tolist() == [
        [False, False, False, False, True, True],
        [False, True, True, True, True, True],
    ]
    assert out.lengths.tolist() == [4, 1]


def test_single_string_has_batch_dim(tok):
    out = tok.encode("a cross", text_seq_len=4)
    assert out.ids.shape == (1, 4) and out.lengths.shape == (1,)


def test_exact_fit_does_not_warn(tok):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tok.encode("a red circle", text_seq_len=4)  # 3 tokens + eot
    assert out.ids[0, -1] == tok.eot_id and not out.pad_mask.any()


def test_truncation_warns_once_and_keeps_length(tok):
    long = " ".join(shapes_captions(5, seed=2))
    with pytest.warns(TruncationWarning, match="2 of 3 captions") as record:
        out = tok.encode([long, "a cross", long + " above"], text_seq_len=5)
    assert len(record) == 1
    assert out.ids.shape == (3, 5)
    assert out.lengths.tolist() == [5, 3, 5]
    assert out.ids[0, -1] == tok.eot_id and out.ids[2, -1] == tok.eot_id
    assert not out.pad_mask[0].any()
    assert long.startswith(tok.decode(out.ids[0]))


def test_shortest_length_is_only_eot(tok):
    with pytest.warns(TruncationWarning):
        out = tok.encode("a red circle", text_seq_len=1)
    assert out.ids.tolist() == [[tok.eot_id]]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🎉 a red 🐍 circle",
        "猫が好き",
        "Ünïcödé ＦＵＬＬ",
        "a\x00b\u200bc",
        "<eot> <pad>",
    ],
)
def test_any_text_encodes_and_decodes_back(tok, text):
    out = tok.encode(text, text_seq_len=48)
    real = out.ids[0, : out.lengths[0]]
    assert 2 not in real.tolist()  # byte-level BPE never needs <unk>
    assert (real == tok.eot_id).sum() == 1  # the literal text "<eot>" is not the token
    assert tok.decode(out.ids[0]) == normalized(text)


def test_lone_surrogate_is_replaced_not_fatal(tok):
    out = tok.encode("bad \udcff byte", text_seq_len=16)
    assert tok.decode(out.ids[0]) == "bad \ufffd byte"


def test_dropout_changes_segmentation_not_text(tok):
    assert tok.to_tokens(tok.encode("triangle", text_seq_len=2).ids[0]) == ["Ġtriangle", "<eot>"]
    out = tok.encode(["triangle"] * 200, text_seq_len=12, dropout=0.1)
    assert len({tuple(row) for row in out.ids.tolist()}) > 1
    assert {tok.decode(row) for row in out.ids} == {"triangle"}


def test_dropout_zero_is_deterministic(tok):
    captions = shapes_captions(10, seed=3)
    first = tok.encode(captions, text_seq_len=24).ids
    tok.encode(captions, text_seq_len=64, dropout=0.5)  # must not leak into dropout=0
    for _ in range(5):
        assert torch.equal(tok.encode(captions, text_seq_len=24).ids, first)


def test_dropout_one_gives_bytes(tok):
    out = tok.encode("circle", text_seq_len=10, dropout=1.0)
    assert tok.to_tokens(out.ids[0, : out.lengths[0] - 1]) == list("Ġcircle")


def test_bad_arguments_raise(tok):
    with pytest.raises(ValueError):
        tok.encode("a", text_seq_len=0)
    with pytest.raises(ValueError):
        tok.encode("a", text_seq_len=4, dropout=1.5)
    with pytest.raises(ValueError):
        TextTokenizer.train(["a"], vocab_size=100)


def test_save_load_identical(tok, tmp_path):
    path = tok.save(tmp_path)
    assert path == tmp_path / "tokenizer.json"
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temporary left over
    captions = shapes_captions(10, seed=4) + ["🎉 猫"]
    expected = tok.encode(captions, text_seq_len=24).ids
    for source in (tmp_path, path):
        loaded = TextTokenizer.from_file(source)
        assert loaded.vocab_size == tok.vocab_size
        assert torch.equal(loaded.encode(captions, text_seq_len=24).ids, expected)


def test_pickle_round_trip(tok):
    captions = ["a red <eot> circle", "🎉"]
    clone = pickle.loads(pickle.dumps(tok))
    assert torch.equal(clone.encode(captions, 16).ids, tok.encode(captions, 16).ids)


def test_saved_file_is_standard_hf_json(tok, tmp_path):
    path = tok.save(tmp_path / "sub" / "my_tokenizer.json")
    assert json.loads(path.read_text())["model"]["type"] == "BPE"
    hf = Tokenizer.from_file(str(path))
    caption = "a small green cross below a large white square"
    ours = tok.encode(caption, text_seq_len=32)
    assert hf.encode(caption).ids == ours.ids[0, : ours.lengths[0]].tolist()  # eot appended


def test_from_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        TextTokenizer.from_file(tmp_path)
    Tokenizer(models.BPE()).save(str(tmp_path / "tokenizer.json"))  # no <pad> or <eot>
    with pytest.raises(ValueError, match="special tokens"):
        TextTokenizer.from_file(tmp_path)
