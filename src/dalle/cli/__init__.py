"""The ``dalle`` command. Each sub-command lives in its own module with ``register(subparsers)``.

The CLI only parses arguments and calls library functions; it is the only layer that prints.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dalle import __version__
from dalle.cli import (
    data_cmd,
    edit_cmd,
    embed_cmd,
    eval_cmd,
    generate_cmd,
    pipeline_cmd,
    reconstruct_cmd,
    serve_cmd,
    tokenizer_cmd,
    train_cmd,
)

COMMAND_GROUPS = (
    generate_cmd, edit_cmd, data_cmd, tokenizer_cmd, train_cmd, reconstruct_cmd, eval_cmd,
    pipeline_cmd, embed_cmd, serve_cmd,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dalle",
        description="Train, sample and evaluate DALL·E-family text-to-image models.",
    )
    parser.add_argument("--version", action="version", version=f"dalle {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    out = getattr(args, "out", None)
    new_folder = isinstance(out, str) and not os.path.exists(out)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:
        _drop_if_empty(out, new_folder)
        print(f"dalle: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _drop_if_empty(out, new_folder)
        print("dalle: interrupted", file=sys.stderr)
        return 130


def _drop_if_empty(out: str | None, new_folder: bool) -> None:
    """A command that stops with an error leaves no empty ``--out`` folder of its own making
    behind (a folder that was there before, or holds anything, is kept)."""
    if new_folder and out is not None and os.path.isdir(out):
        try:
            os.rmdir(out)
        except OSError:
            pass  # not empty: it holds what the command wrote before stopping
