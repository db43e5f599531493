"""``dalle tokenizer``: train a BPE caption tokenizer on a data set, and inspect encodings."""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Iterable, Iterator

from dalle.cli.validate import int_at_least, output_file

logger = logging.getLogger(__name__)

DEFAULT_MAX_CAPTIONS = 100_000


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tokenizer",
        help="train or inspect the text (caption) tokenizer",
        description="Byte-level BPE tokenizer for captions, stored as a Hugging Face tokenizer.json.",
    )
    commands = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    _register_train(commands)
    _register_encode(commands)


def _register_train(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train",
        help="train a BPE tokenizer on a data set's captions",
        description="Train a lowercasing byte-level BPE tokenizer on the captions of a data set "
        "(images are not decoded) and write it as tokenizer.json.",
    )
    p.add_argument("--data", required=True, metavar="SPEC", help='data set spec, e.g. "shapes"')
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output file, or a folder to write tokenizer.json into",
    )
    p.add_argument("--split", default="train", help="data set split to read (default: train)")
    p.add_argument(
        "--vocab-size",
        type=int_at_least(259),  # the byte alphabet and 3 special tokens: MIN_VOCAB_SIZE
        default=4096,
        metavar="N",
        help="target vocabulary size (default: 4096)",
    )
    p.add_argument(
        "--min-frequency",
        type=int,
        default=2,
        metavar="N",
        help="a merge must occur at least this often (default: 2)",
    )
    p.add_argument(
        "--max-captions",
        type=int,
        default=DEFAULT_MAX_CAPTIONS,
        metavar="N",
        help=f"read at most N captions (default: {DEFAULT_MAX_CAPTIONS}); 0 reads them all, "
        "which never ends for infinite sources such as shapes",
    )
    p.set_defaults(func=_train)


def _register_encode(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "encode",
        help="show how a text is encoded",
        description="Print the tokens, ids and padding mask of TEXT encoded to text_seq_len.",
    )
    p.add_argument(
        "--tokenizer", required=True, metavar="PATH", help="tokenizer.json or its folder"
    )
    p.add_argument(
        "--text-seq-len", type=int, default=64, metavar="N", help="encoded length (default: 64)"
    )
    p.add_argument(
        "--dropout", type=float, default=0.0, metavar="P", help="BPE dropout to sample (default: 0)"
    )
    p.add_argument("text", metavar="TEXT", help="the caption to encode")
    p.set_defaults(func=_encode)


class _Counted:
    """Iterate over captions while counting them and keeping the first one as an example."""

    def __init__(self, captions: Iterable[str]) -> None:
        self._captions = captions
        self.count = 0
        self.first: str | None = None

    def __iter__(self) -> Iterator[str]:
        for caption in self._captions:
            if self.first is None:
                self.first = caption
            self.count += 1
            yield caption


def _train(args: argparse.Namespace) -> int:
    from dalle.data import open_dataset
    from dalle.text.tokenizer import TextTokenizer

    if args.max_captions < 0:
        raise ValueError(f"--max-captions must be >= 0, got {args.max_captions}")
    output_file(args.out)
    dataset = open_dataset(args.data, image_size=64, split=args.split)
    captions: Iterable[str] = dataset.captions()
    if args.max_captions:
        captions = itertools.islice(captions, args.max_captions)
    counted = _Counted(captions)
    tokenizer = TextTokenizer.train(
        counted, vocab_size=args.vocab_size, min_frequency=args.min_frequency
    )
    if counted.count == 0:
        raise ValueError(f"data set {args.data!r} (split {args.split!r}) has no captions")
    path = tokenizer.save(args.out)
    print(f"wrote {path}")
    print(f"vocab size: {tokenizer.vocab_size} (trained on {counted.count} captions)")
    example = counted.first or ""
    # Long enough for any caption: NFKC grows a character to at most a few byte-level tokens.
    encoded = tokenizer.encode(example, text_seq_len=4 * len(example.encode()) + 2)
    ids = encoded.ids[0, : int(encoded.lengths[0])]
    print(f"example: {example!r}")
    print(f"  tokens: {tokenizer.to_tokens(ids)}")
    print(f"  ids:    {ids.tolist()}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from dalle.text.tokenizer import TextTokenizer

    tokenizer = TextTokenizer.from_file(args.tokenizer)
    encoded = tokenizer.encode(args.text, text_seq_len=args.text_seq_len, dropout=args.dropout)
    length = int(encoded.lengths[0])
    print(f"tokens:   {tokenizer.to_tokens(encoded.ids[0, :length])}")
    print(f"ids:      {encoded.ids[0].tolist()}")
    print(f"pad_mask: {encoded.pad_mask[0].int().tolist()}")
    print(f"length:   {length} (of {args.text_seq_len}, <eot> included)")
    print(f"decoded:  {tokenizer.decode(encoded.ids[0])!r}")
    return 0
