"""What a prompt may be: the one check every command, pipeline and the server apply."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence

MAX_PROMPT_CHARS = 10_000  # far beyond any caption a model reads; past it, a mistake


WHITESPACE_CONTROLS = "\t\n\r"  # read as spaces: a prompt typed over several lines is one prompt


def check_prompt(prompt: str, name: str = "the prompt") -> str:
    """The prompt, or a ValueError naming it (``name``): empty or blank (every image is drawn
    for a prompt), holding control characters other than tabs and line breaks (which read as
    spaces) or lone surrogates (not text: they cannot be written as UTF-8), or over
    ``MAX_PROMPT_CHARS`` characters. (Prompts over the model's token length are truncated with a
    warning by the tokenizer.)"""
    if not isinstance(prompt, str):
        raise ValueError(f"{name} is not text: {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError(f"{name} is empty: every image is drawn for a prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"{name} has {len(prompt):,} characters; prompts are at most {MAX_PROMPT_CHARS:,}"
        )
    bad = next((c for c in prompt if unicodedata.category(c) in ("Cc", "Cs")
                and c not in WHITESPACE_CONTROLS), None)  # fmt: skip
    if bad is not None:
        what = "a lone surrogate" if unicodedata.category(bad) == "Cs" else "the control character"
        raise ValueError(f"{name} holds {what} U+{ord(bad):04X}: prompts are text")
    for c in WHITESPACE_CONTROLS:
        prompt = prompt.replace(c, " ")
    return prompt


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """The prompts, each checked by :func:`check_prompt`; the error names the first bad one by
    its index."""
    return [check_prompt(prompt, f"prompt {i}") for i, prompt in enumerate(prompts)]


def read_prompts(path: str | os.PathLike) -> list[str]:
    """One prompt per line of a UTF-8 text file (a byte-order mark is not part of prompt 0);
    trailing blank lines are dropped, blank lines between prompts refused (they would shift
    the numbering); every prompt checked by :func:`check_prompts`."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, not a prompts file") from None
    except FileNotFoundError:
        raise ValueError(f"{path}: no such prompts file") from None
    while lines and not lines[-1]:
        lines.pop()
    if any(not line for line in lines):
        raise ValueError(f"{path}: blank prompt lines would shift the prompt numbering")
    try:
        return check_prompts(lines)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
