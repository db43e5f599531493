"""Argument types that refuse bad numbers while the command line is parsed, before any work:
argparse then prints ``dalle ...: error: argument --threads: ...`` and exits with status 2."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from dalle.utils.io import remove_unwritten


def _number_type(kind: type, ok: Callable[[float], bool], must: str, doc: str):
    """An argparse type: ``kind`` (int or float) parsed from the text, refused unless ``ok``
    (``must`` says what it must be; nan fails every range check)."""
    expected = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must {must}, got {text.strip()}")
        return value

    parse.__doc__ = doc
    return parse


def int_at_least(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    return _number_type(int, lambda v: v >= minimum, f"be at least {minimum}", f">= {minimum}")


positive_int = _number_type(
    int, lambda v: v >= 1, "be at least 1",
    "A whole number of at least 1 (steps, batch sizes, threads, intervals, counts).",
)  # fmt: skip
non_negative_int = _number_type(
    int, lambda v: v >= 0, "be at least 0",
    'A whole number of at least 0 (0 meaning "off", e.g. no crops).',
)  # fmt: skip
positive_float = _number_type(
    float, lambda v: math.isfinite(v) and v > 0, "be a finite number above 0",
    "A finite number above 0 (learning rates).",
)  # fmt: skip
non_negative_float = _number_type(
    float, lambda v: math.isfinite(v) and v >= 0, "be a finite number of at least 0",
    "A finite number of at least 0 (temperatures, guidance scales).",
)  # fmt: skip
probability_mass = _number_type(
    float, lambda v: 0 < v <= 1, "lie in (0, 1]",
    "A number in (0, 1] (top-p: the probability the kept tokens hold; 1 keeps all).",
)  # fmt: skip
unit_interval = _number_type(
    float, lambda v: 0 <= v <= 1, "lie in [0, 1]",
    "A number in [0, 1] (DDIM's eta, where along the schedule, slerp amounts).",
)  # fmt: skip
fraction = _number_type(
    float, lambda v: 0 <= v < 1, "lie in [0, 1)",
    "A number in [0, 1) (decays, probabilities that must leave something).",
)  # fmt: skip


def noise_interval(text: str) -> tuple[float, float]:
    """An argparse type: ``LOW,HIGH``, two noise levels with 0 <= LOW <= HIGH <= 1 (the rule of
    ``DecoderSettings.guidance_interval``)."""
    parts = text.split(",")
    try:
        low, high = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    from dalle.pipelines.unclip_pipeline import check_noise_interval  # the settings' rule

    try:
        return check_noise_interval((low, high), text.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def check_candidates(candidates: int | None, kept: int, kept_option: str = "--num-images") -> None:
    """A ValueError naming both options unless ``--candidates`` (None: not given) is at least
    the number of images kept."""
    if candidates is not None and candidates < kept:
        raise ValueError(f"--candidates {candidates}: must be at least {kept_option} ({kept})")


def add_replace_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--replace",
        action="store_true",
        help="if --out holds an earlier run's images (NNNN_NN.png), delete them (other files "
        "are kept); without it such a folder is refused, so that runs never mix",
    )


@dataclass(frozen=True)
class OutputFolder:
    """A checked output folder (``output_folder``). ``earlier``: with ``--replace``, the files
    of an earlier run in it, listed before anything is written; ``finish`` deletes those the new
    run did not overwrite, once every new file is on disk, so that a run that fails loses
    neither its own files nor the earlier ones."""

    path: Path
    earlier: tuple[Path, ...] = ()

    def finish(self, written: Collection[str]) -> None:
        """Called with the names the new run wrote, after the last of them is written."""
        remove_unwritten(self.earlier, written)


def output_folder(
    path: str | os.PathLike,
    option: str = "--out",
    replace: bool = False,
    names: Callable[[str], bool] | None = None,
) -> OutputFolder:
    """The folder generated images go to, checked and created before any model is loaded (so
    that no drawing is lost). A folder already holding generated images (``NNNN_NN.png``) is
    refused, since the new run's files would mix with the earlier run's and be scored together,
    unless ``replace`` (then ``OutputFolder.finish`` deletes those the new files do not
    overwrite). ``names`` says which file names a run writes (default ``NNNN_NN.png``)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {path}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option} {path}: cannot create the folder ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"{option} {path}: the folder is not writable")
    earlier = earlier_run(out, names)
    if earlier and not replace:
        raise ValueError(
            f"{option} {path} holds {len(earlier)} images of an earlier run ({earlier[0].name}, "
            "...): choose another folder, or pass --replace to delete them first"
        )
    return OutputFolder(out, tuple(earlier))


def earlier_run(out: Path, names: Callable[[str], bool] | None = None) -> list[Path]:
    """The files of an earlier run in ``out``: ``NNNN_NN.png``, or those ``names`` accepts."""
    from dalle.utils.images import parse_output_name

    def ours(name: str) -> bool:
        return names(name) if names is not None else parse_output_name(name) is not None

    return sorted(p for p in out.iterdir() if ours(p.name) and p.is_file())


def refuse_overwriting(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]):
    """A ValueError if any output file would be one of the input files (or the same file by
    another path), before anything is written."""
    given = [Path(p) for p in inputs]
    for out in map(Path, outputs):
        for inp in given:
            if out.exists() and inp.exists() and os.path.samefile(out, inp):
                raise ValueError(f"{out} is the input {inp}: writing it would overwrite the input")


def output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """A file a command will write (atomically), checked before any work: not a folder, in a
    folder that exists and is writable."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name")
    parent = out.parent
    if not parent.exists():
        raise ValueError(f"{option} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {path}: the folder {parent} is not writable")
    return out


def input_images(paths, option: str | None = None, keep_alpha: bool = False) -> list:
    """The images at ``paths`` (PIL, RGB; RGBA with ``keep_alpha`` if they have alpha), or a
    ValueError naming the file (and ``option``) and what is wrong with it."""
    from dalle.data.images import BadImageError, load_image

    out = []
    for path in paths:
        try:
            out.append(load_image(path, keep_alpha=keep_alpha))
        except BadImageError as e:
            where = f"{option} {path}" if option else str(path)
            raise ValueError(f"{where}: {e}") from None
    return out
