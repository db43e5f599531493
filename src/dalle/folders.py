"""Where models live: the one resolver for names and folders, and the pipeline folder format.

A **model folder** holds ``config.json`` + ``model.safetensors``; a tokenizer is one
``tokenizer.json``. A **pipeline folder** holds its parts and ``model_index.json``, which records
each part's class and path, and the pipeline's defaults::

    {"_class_name": "DallePipeline", "_dalle_version": "0.1.0",
     "parts": {"tokenizer":   {"class": "TextTokenizer", "path": "tokenizer.json"},
               "vae":         {"class": "DiscreteVAE", "path": "vae"},
               "transformer": {"class": "DalleTransformer", "path": "transformer"},
               "clip":        {"class": "CLIP", "path": "clip", "tokenizer": "tokenizer"}},
     "sampling": {"temperature": 1.0, "top_k": 3, "top_p": null, "guidance": 2.0}}

Loading goes by that record: a part is loaded by the class it names (among the classes registered
with :func:`register_part`, never an arbitrary import), and a part that reads text names the
tokenizer part it shares (``"tokenizer"``), so no pipeline holds two copies of one tokenizer.

**Names.** :func:`resolve` is the only place a name becomes a folder: a bare name of a bundled
pipeline (``shapes``) is the bundled one, also when a folder of that name sits in the working
directory (that is said in a warning: pass ``./shapes`` for the folder); anything else is a path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dalle import __version__
from dalle.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
INDEX_FILE = "model_index.json"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"

PART_CLASSES: dict[str, type] = {}  # class name -> class, for the records of model_index.json

# model_index.json before parts were records (2026-11-29): each key a path, classes by key
_LEGACY_CLASSES = {
    "tokenizer": "TextTokenizer",
    "vae": "DiscreteVAE",
    "transformer": "DalleTransformer",
    "clip": "CLIP",
}


def register_part(cls: type) -> type:
    """Make ``cls`` loadable as a pipeline part recorded under its class name."""
    PART_CLASSES[cls.__name__] = cls
    return cls


def bundled_names() -> list[str]:
    return sorted(p.name for p in ASSETS.iterdir() if p.is_dir()) if ASSETS.is_dir() else []


def resolve(name_or_dir: str | os.PathLike) -> Path:
    """The folder (or file) a model name or path means: a bundled pipeline for a bare bundled
    name, otherwise the path itself, which must exist."""
    text = os.fspath(name_or_dir)
    bare = isinstance(name_or_dir, str) and text and "/" not in text and os.sep not in text
    if bare and text in bundled_names():
        if Path(text).exists():
            logger.warning(
                "loading the bundled %r pipeline, not the folder %r in the working directory "
                "(pass ./%s to load that folder)", text, text, text,
            )  # fmt: skip
        return ASSETS / text
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(
            f"no model at {text!r}: not a file or folder, and not a bundled name "
            f"({', '.join(bundled_names()) or 'none installed'})"
        )
    return path


@dataclasses.dataclass(frozen=True)
class PartRecord:
    cls: str  # a class registered with ``register_part``
    path: str  # relative to the pipeline folder
    tokenizer: str | None = None  # the part holding the tokenizer this part reads


@dataclasses.dataclass(frozen=True)
class PipelineIndex:
    """What ``model_index.json`` says: the pipeline's class, its parts and its defaults."""

    class_name: str
    parts: Mapping[str, PartRecord]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. "sampling"

    @classmethod
    def read(cls, root: Path) -> PipelineIndex:
        file = root / INDEX_FILE
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{file}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
            raise ValueError(f"{file}: expected a JSON object with a _class_name")
        if "parts" not in data:
            data = _from_legacy(data)
        parts = data["parts"]
        if not isinstance(parts, dict) or not parts:
            raise ValueError(f"{file}: 'parts' must be an object naming at least one part")
        records = {}
        for name, record in parts.items():
            if not isinstance(record, dict) or not {"class", "path"} <= record.keys():
                raise ValueError(f"{file}: part {name!r} needs a 'class' and a 'path'")
            if record.get("tokenizer") not in (None, *parts):
                raise ValueError(f"{file}: part {name!r} names a tokenizer part that is not there")
            records[name] = PartRecord(record["class"], record["path"], record.get("tokenizer"))
        defaults = {k: v for k, v in data.items() if not k.startswith("_") and k != "parts"}
        return cls(data["_class_name"], records, defaults)

    def write(self, root: Path) -> None:
        parts = {
            name: {"class": r.cls, "path": r.path}
            | ({"tokenizer": r.tokenizer} if r.tokenizer else {})
            for name, r in self.parts.items()
        }
        data = {"_class_name": self.class_name, "_dalle_version": __version__, "parts": parts}
        atomic_write_text(
            root / INDEX_FILE, json.dumps(data | dict(self.defaults), indent=2) + "\n"
        )

    def find(self, cls: str | None = None, part: str | None = None) -> str:
        """The name of the part called ``part``, or of the one part of class ``cls``."""
        if part is not None:
            if part not in self.parts:
                raise ValueError(
                    f"the pipeline has no part {part!r} (it has {', '.join(self.parts)})"
                )
            return part
        matches = [name for name, r in self.parts.items() if r.cls == cls]
        if len(matches) != 1:
            have = ", ".join(f"{n} ({r.cls})" for n, r in self.parts.items())
            what = "no" if not matches else "more than one"
            raise ValueError(f"the pipeline has {what} {cls} part (it has {have}): name the part")
        return matches[0]


def _from_legacy(data: dict) -> dict:
    """The first model_index.json layout: ``"vae": "vae"`` and so on, CLIP with its own
    tokenizer.json."""
    parts = {}
    for key, cls in _LEGACY_CLASSES.items():
        if isinstance(data.get(key), str):
            parts[key] = {"class": cls, "path": data.pop(key)}
    if "clip" in parts:
        parts["clip_tokenizer"] = {
            "class": "TextTokenizer", "path": f"{parts['clip']['path']}/{TOKENIZER_FILE}"
        }  # fmt: skip
        parts["clip"]["tokenizer"] = "clip_tokenizer"
    return data | {"parts": parts}


def read_index(name_or_dir: str | os.PathLike) -> tuple[Path, PipelineIndex]:
    """A pipeline's folder and its index."""
    root = resolve(name_or_dir)
    if not (root / INDEX_FILE).is_file():
        raise FileNotFoundError(f"{root} is not a pipeline folder (no {INDEX_FILE})")
    return root, PipelineIndex.read(root)


def read_pipeline(
    name_or_dir: str | os.PathLike, class_name: str, required: tuple[str, ...]
) -> tuple[Path, PipelineIndex]:
    """A pipeline folder of class ``class_name`` naming at least the parts ``required``."""
    root, index = read_index(name_or_dir)
    if index.class_name != class_name:
        raise ValueError(f"{root / INDEX_FILE}: holds a {index.class_name}, not a {class_name}")
    missing = [k for k in required if k not in index.parts]
    if missing:
        raise ValueError(f"{root / INDEX_FILE} does not name the parts {missing}")
    return root, index


def part_path(name_or_dir: str | os.PathLike, cls: str, part: str | None = None) -> Path:
    """Where a model of class ``cls`` is: the folder (or tokenizer file) itself, or the part of a
    pipeline (the one of that class, or the one called ``part``)."""
    path = resolve(name_or_dir)
    if (path / INDEX_FILE).is_file():
        index = PipelineIndex.read(path)
        record = index.parts[index.find(cls, part)]
        if record.cls != cls:
            raise ValueError(f"part {part!r} of {path} is a {record.cls}, not a {cls}")
        return path / record.path
    if part is not None:
        raise ValueError(f"{path} is not a pipeline folder: it has no part {part!r}")
    return path


def load_part(root: Path, record: PartRecord, device: Any = "cpu") -> Any:
    """Load one recorded part by its class."""
    if record.cls not in PART_CLASSES:
        raise ValueError(
            f"{root / INDEX_FILE}: unknown part class {record.cls!r} "
            f"(known: {', '.join(sorted(PART_CLASSES))})"
        )
    return PART_CLASSES[record.cls].load_part(root / record.path, device)


def load_parts(root: Path, index: PipelineIndex, device: Any = "cpu") -> dict[str, Any]:
    """Every part of a pipeline, by name; a part that does not load is one error naming it."""
    parts = {}
    for name, record in index.parts.items():
        try:
            parts[name] = load_part(root, record, device)
        except (ValueError, OSError) as e:
            raise ValueError(f"{root}: part {name!r} ({record.cls}): {e}") from None
    return parts


def write_pipeline(
    directory: str | os.PathLike,
    class_name: str,
    parts: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    tokenizers: Mapping[str, str] | None = None,
    dtype: Any = None,
) -> Path:
    """Write a pipeline folder from trained parts: each part saved under its name (models as
    folders with weights cast to ``dtype`` if given, tokenizers as ``NAME.json``), then
    ``model_index.json`` last, so that a folder without one was never finished. ``tokenizers``
    maps a part to the tokenizer part it reads."""
    directory = Path(directory)
    tokenizers = dict(tokenizers or {})
    records = {}
    for name, obj in parts.items():
        if type(obj).__name__ not in PART_CLASSES:
            raise TypeError(f"part {name!r}: {type(obj).__name__} is not a registered part class")
        if tokenizers.get(name, None) not in (None, *parts):
            raise ValueError(f"part {name!r} reads the tokenizer {tokenizers[name]!r}: not a part")
        path = obj.save_part(directory, name, dtype)
        records[name] = PartRecord(type(obj).__name__, path, tokenizers.get(name))
    PipelineIndex(class_name, records, dict(defaults or {})).write(directory)
    return directory


def part_setting(root: Path, index: PipelineIndex, part: str, key: str) -> Any:
    """One field of a pipeline part's config.json, read without loading the part."""
    path = root / index.parts[part].path / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: cannot read its {key} ({e!r})") from None


def output_size(name_or_dir: str | os.PathLike) -> int:
    """The size of the images a pipeline draws, read from its parts' config.json (nothing
    loaded): the upsampler's or decoder's for unCLIP, the dVAE's for DALL·E."""
    root, index = read_index(name_or_dir)
    for part in ("upsampler", "decoder", "vae"):
        if part in index.parts:
            return int(part_setting(root, index, part, "image_size"))
    raise ValueError(f"{root}: the pipeline has no part that draws images")
