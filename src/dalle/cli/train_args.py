"""Options every ``dalle train STAGE`` command shares, and the run config they produce."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path
from typing import TypeVar

from dalle.config import Config

C = TypeVar("C", bound=Config)


def add_run_arguments(p: argparse.ArgumentParser, presets: list[str], out: str) -> None:
    """``--preset``, ``--data``, ``--out``, ``--resume`` and the overrides of a run config."""
    p.add_argument(
        "--preset",
        default="shapes",
        help=f"model and training preset (known: {', '.join(presets)})",
    )
    p.add_argument(
        "--data",
        default=None,
        help="data set: shapes, a folder, metadata.jsonl folder, tar shards, CelebA "
        "(default from the preset)",
    )
    p.add_argument("--out", default=out, help=f"run folder (default {out})")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out, exactly",
    )
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=None, help="(global) batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--sample-every", type=int, default=None)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default on: faster on CPUs with AVX-512 bf16 / AMX; --no-bf16 for fp32)",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="stop (after a checkpoint) at this step, keeping the schedule of --steps",
    )


def run_config(cls: type[C], args: argparse.Namespace) -> C:
    """The preset's run config (or the defaults) with every option the user gave applied."""
    base = cls.presets.get(args.preset, cls())
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    return base.replace(**changes)


def prepare_tokenizer(given: str | None, config, dataset, out: Path, accelerator):
    """The tokenizer at ``given``, else the run's ``OUT/tokenizer.json``, trained on the data's
    first ``config.tokenizer_captions`` captions by the main process if it is not there yet."""
    from dalle.text.tokenizer import TextTokenizer

    if given:
        return TextTokenizer.from_file(given)
    path = out / "tokenizer.json"
    if accelerator.is_main_process and not path.is_file():
        captions = itertools.islice(dataset.captions(), config.tokenizer_captions)
        TextTokenizer.train(captions, vocab_size=config.tokenizer_vocab).save(path)
    accelerator.wait_for_everyone()
    return TextTokenizer.from_file(path)
