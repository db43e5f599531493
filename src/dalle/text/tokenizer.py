"""Byte-level BPE text tokenizer for captions (DALL·E paper, section 2.2 and appendix).

Captions are NFKC-normalized, lowercased and stripped, then split into byte-level BPE tokens, so
every unicode string (emoji, CJK, control characters) is encodable without ``<unk>`` and decodes
back exactly. Encoded captions have a fixed length ``text_seq_len``: the caption's tokens, then
``<eot>``, then ``<pad>`` to the end.

On disk a tokenizer is one standard Hugging Face ``tokenizer.json``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer

from dalle.folders import register_part
from dalle.utils.io import atomic_path

logger = logging.getLogger(__name__)

PAD_TOKEN = "<pad>"
EOT_TOKEN = "<eot>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, EOT_TOKEN, UNK_TOKEN)  # ids 0, 1, 2 in a trained vocabulary
FILE_NAME = "tokenizer.json"

# The 256 byte symbols plus the special tokens: the smallest vocabulary that can encode anything.
MIN_VOCAB_SIZE = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)


class TruncationWarning(UserWarning):
    """Some captions had more tokens than ``text_seq_len`` and were cut."""


@dataclass
class TokenizedText:
    """A batch of captions encoded to a fixed length."""

    ids: torch.LongTensor  # (B, text_seq_len): tokens, <eot>, then <pad>
    pad_mask: torch.BoolTensor  # (B, text_seq_len): True where the position is padding
    lengths: torch.LongTensor  # (B,): real tokens per caption, <eot> included

    def to(self, device: torch.device | str) -> TokenizedText:
        return TokenizedText(
            ids=self.ids.to(device),
            pad_mask=self.pad_mask.to(device),
            lengths=self.lengths.to(device),
        )


def _untrained_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()]
    )
    # add_prefix_space: the first word gets the same "Ġword" token as every later word.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    # ByteLevel joins all tokens into one string; Strip then removes the added prefix space.
    tokenizer.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
    return tokenizer


def _from_json(spec: str, dropout: float | None) -> Tokenizer:
    """A ``Tokenizer`` from JSON text with its BPE model's dropout set to ``dropout``.

    Dropout is set in the JSON rather than on a live model so that the model is built with it:
    the BPE word cache is only used when dropout is off, so it can never hide dropout.
    """
    data = json.loads(spec)
    if data.get("model", {}).get("type") != "BPE":
        raise ValueError("not a BPE tokenizer.json")
    data["model"]["dropout"] = dropout
    tokenizer = Tokenizer.from_str(json.dumps(data))
    if hasattr(tokenizer, "encode_special_tokens"):
        # A caption that contains the text "<eot>" is encoded as text, not as the special token.
        tokenizer.encode_special_tokens = True
    return tokenizer


def _valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (e.g. from ``surrogateescape`` decoding) replaced by U+FFFD.

    The Rust tokenizer only accepts valid unicode; a surrogate pair left split in a Python str is
    joined back into its character.
    """
    if not isinstance(text, str):
        raise TypeError(f"captions must be str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _resolve_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/tokenizer.json`` when ``path`` is (or looks like) a folder."""
    path = Path(path)
    if path.is_dir() or (not path.exists() and path.suffix == ""):
        return path / FILE_NAME
    return path


@register_part
class TextTokenizer:
    """Lowercasing byte-level BPE with ``<pad>``, ``<eot>`` and ``<unk>`` special tokens."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        missing = [t for t in (PAD_TOKEN, EOT_TOKEN) if tokenizer.token_to_id(t) is None]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        self._setup(tokenizer.to_str())

    def _setup(self, spec: str) -> None:
        self._json = spec
        self._tokenizer = _from_json(spec, dropout=None)
        self._dropout_tokenizers: dict[float, Tokenizer] = {}
        self._pad_id = self._tokenizer.token_to_id(PAD_TOKEN)
        self._eot_id = self._tokenizer.token_to_id(EOT_TOKEN)

    # Pickled (e.g. into DataLoader workers) as its JSON: a pickled ``Tokenizer`` would lose the
    # ``encode_special_tokens`` flag, which tokenizer.json does not store.
    def __getstate__(self) -> dict[str, str]:
        return {"json": self._json}

    def __setstate__(self, state: dict[str, str]) -> None:
        self._setup(state["json"])

    @classmethod
    def train(
        cls,
        captions: Iterable[str],
        vocab_size: int = 4096,
        min_frequency: int = 2,
        show_progress: bool = False,
    ) -> TextTokenizer:
        """Learn BPE merges from ``captions`` (normalized and lowercased as they are read).

        The vocabulary always contains the 256 byte symbols, so the result can encode any text;
        it may be smaller than ``vocab_size`` if the captions allow fewer merges.
        """
        if vocab_size < MIN_VOCAB_SIZE:
            raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE}, got {vocab_size}")
        if min_frequency < 1:
            raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
        tokenizer = _untrained_tokenizer()
        trainer = BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=show_progress,
        )
        tokenizer.train_from_iterator(map(_valid_unicode, captions), trainer=trainer)
        eot_id = tokenizer.token_to_id(EOT_TOKEN)
        # Only for users of the raw tokenizer.json; encode() appends <eot> itself.
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {EOT_TOKEN}", special_tokens=[(EOT_TOKEN, eot_id)]
        )
        logger.info("trained a BPE tokenizer with %d tokens", tokenizer.get_vocab_size())
        return cls(tokenizer)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TextTokenizer:
        """Load a ``tokenizer.json``, given the file or the folder holding it."""
        file = _resolve_file(path)
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer file at {file}")
        try:
            return cls(Tokenizer.from_str(file.read_text(encoding="utf-8")))
        except Exception as e:  # the tokenizers library raises plain Exceptions
            raise ValueError(f"{file}: not a valid tokenizer.json ({e})") from None

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> TextTokenizer:
        """A tokenizer.json, its folder, a pipeline's tokenizer part or a bundled name's."""
        from dalle.folders import part_path

        return cls.from_file(part_path(name_or_dir, cls.__name__))

    def to_json(self) -> str:
        """The tokenizer.json text."""
        return self._json

    @classmethod
    def load_part(cls, path: Path, device: object = None) -> TextTokenizer:
        """As a pipeline part (``dalle.folders``): the recorded ``tokenizer.json``."""
        return cls.from_file(path)

    def save_part(self, directory: Path, name: str, dtype: object = None) -> str:
        self.save(directory / f"{name}.json")
        return f"{name}.json"

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` atomically to ``path`` (or into it, if a folder); return the file."""
        file = _resolve_file(path)
        with atomic_path(file) as tmp:
            self._tokenizer.save(str(tmp), pretty=True)
        logger.info("saved tokenizer to %s", file)
        return file

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def eot_id(self) -> int:
        return self._eot_id

    def __repr__(self) -> str:
        return f"TextTokenizer(vocab_size={self.vocab_size})"

    def _encoder(self, dropout: float) -> Tokenizer:
        """The tokenizer to encode with: deterministic, or a copy that samples BPE-dropout."""
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if dropout == 0.0:
            return self._tokenizer
        if dropout not in self._dropout_tokenizers:
            self._dropout_tokenizers[dropout] = _from_json(self._json, dropout=dropout)
        return self._dropout_tokenizers[dropout]

    def to_tokens(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """The token strings of one sequence of ids, for inspection (spaces show as ``Ġ``)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self._tokenizer.id_to_token(i) for i in ids]

    def encode(
        self, texts: str | Sequence[str], text_seq_len: int, dropout: float = 0.0
    ) -> TokenizedText:
        """Encode captions to ``(B, text_seq_len)`` ids: tokens, ``<eot>``, then ``<pad>``.

        A caption longer than ``text_seq_len - 1`` tokens keeps its first ``text_seq_len - 1``
        tokens and still ends with ``<eot>``; one ``TruncationWarning`` per call reports it.
        ``dropout`` > 0 samples a BPE-dropout segmentation (Provilkov et al. 2020; the DALL·E
        paper used 0.1 for training); the decoded text is the same for any segmentation.
        """
        if text_seq_len < 1:
            raise ValueError(f"text_seq_len must be at least 1, got {text_seq_len}")
        if isinstance(texts, str):
            texts = [texts]
        encoder = self._encoder(dropout)
        rows = [encoder.encode(_valid_unicode(t), add_special_tokens=False).ids for t in texts]
        too_long = [len(row) + 1 for row in rows if len(row) + 1 > text_seq_len]
        if too_long:
            warnings.warn(
                f"{len(too_long)} of {len(rows)} captions exceeded text_seq_len={text_seq_len} "
                f"and were truncated (longest: {max(too_long)} tokens including <eot>)",
                TruncationWarning,
                stacklevel=2,
            )
        return self._pack(rows, text_seq_len)

    def read_part(self, text: str, text_seq_len: int) -> str:
        """What a model reading ``text_seq_len`` tokens (``<eot>`` included) reads of ``text``:
        the text itself when it fits, else its first ``text_seq_len - 1`` tokens decoded."""
        ids = self._encoder(0.0).encode(_valid_unicode(text), add_special_tokens=False).ids
        return text if len(ids) < text_seq_len else self.decode(ids[: text_seq_len - 1])

    def _pack(self, rows: list[list[int]], text_seq_len: int) -> TokenizedText:
        """Cut each row to ``text_seq_len - 1`` tokens, append ``<eot>``, pad to the full length."""
        ids = torch.full((len(rows), text_seq_len), self.pad_id, dtype=torch.long)
        lengths = torch.empty(len(rows), dtype=torch.long)
        for i, row in enumerate(rows):
            row = [*row[: text_seq_len - 1], self.eot_id]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            lengths[i] = len(row)
        pad_mask = torch.arange(text_seq_len)[None, :] >= lengths[:, None]  # (B, text_seq_len)
        return TokenizedText(ids=ids, pad_mask=pad_mask, lengths=lengths)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of one sequence of ids, skipping ``<pad>`` and ``<eot>``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(
                    f"decode takes one sequence (1-D ids), got shape {tuple(ids.shape)}"
                )
            ids = ids.tolist()
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)
