"""Saving and loading models as ``config.json`` + ``model.safetensors`` folders.

Names and folders are resolved by :mod:`dalle.folders` (a user's folder, a bundled pipeline, a
pipeline's part); every subclass is a part class that pipeline folders can record.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from dalle.config import Config, dict_changes
from dalle.folders import CONFIG_FILE, part_path, register_part
from dalle.utils.io import atomic_write_bytes

M = TypeVar("M", bound="PretrainedMixin")
WEIGHTS_FILE = "model.safetensors"
CONFIG_METADATA = "dalle_config"  # the model config, as JSON, in the weights file's metadata


def read_weights_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (on the CPU) and metadata of a safetensors file, read once (nothing is ever
    unpickled): one clear error naming the file if it is missing or unreadable."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing (a model folder holds config.json and {path.name})"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error type for every malformed file
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (:func:`read_weights_file` without the metadata)."""
    return read_weights_file(path)[0]


def canonical(data: bytes) -> bytes:
    """A safetensors file with its JSON header's keys sorted: the same weights and metadata
    make the same bytes in every process (safetensors writes the metadata's keys in a hash
    map's order, which changes between processes). The data and its offsets are unchanged."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), separators=(",", ":"), sort_keys=True)
    text = header.encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def check_saved_config(
    metadata: dict[str, str], config: Config, path: Path, config_path: Path
) -> None:
    """An error if the weights file ``path`` (its ``metadata``) was saved with a model config
    other than ``config`` (read from ``config_path``): a config.json edited or copied from
    another model can keep every tensor's shape (4 heads of 64 against 8 of 32) and would load
    into a model that draws nonsense. Files written before the config went into the metadata
    (2026-12-05) have none and are not checked; fields only one side knows (another release)
    are ignored."""
    text = metadata.get(CONFIG_METADATA)
    if text is None:
        return
    try:
        saved = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{path}: its metadata's {CONFIG_METADATA} is not JSON") from None
    given = config.to_dict()
    shared = sorted(saved.keys() & given.keys())
    changes = dict_changes({k: saved[k] for k in shared}, {k: given[k] for k in shared})
    if changes:
        raise ValueError(
            f"{config_path} does not describe the weights in {path.name}, which were saved with "
            f"another config (the weights' value -> config.json's): {changes}. Restore the "
            "config.json saved with them"
        )


def checked_state(
    state: dict[str, torch.Tensor], model: nn.Module, path: Path, made_by: str
) -> dict[str, torch.Tensor]:
    """``state`` in the model's dtypes, checked against ``model`` (which ``made_by`` built): one
    clear error naming ``path`` for tensors missing, extra, misshapen or not finite."""
    expected = model.state_dict()
    problems = []
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing:
        problems.append(f"{len(missing)} tensors missing (first {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} tensors not in the model (first {extra[0]})")
    for key in sorted(expected.keys() & state.keys()):
        if state[key].shape != expected[key].shape:
            problems.append(
                f"{key} is {tuple(state[key].shape)}, the config makes {tuple(expected[key].shape)}"
            )
            break
        if state[key].is_floating_point() and not bool(state[key].isfinite().all()):
            problems.append(f"{key} holds NaN or infinite values")
            break
    if problems:
        raise ValueError(f"{path}: the weights do not match {made_by}: {'; '.join(problems)}")
    return {k: v.to(expected[k].dtype) for k, v in state.items()}


def weights_id(model: nn.Module) -> str:
    """A short hash of a model's weights (names and bytes): which weights made a cache or a run."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:16]


class PretrainedMixin:
    """For ``nn.Module``s built as ``Model(config)``; the config travels with the weights."""

    config_class: ClassVar[type[Config]]
    config: Config

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        register_part(cls)

    def save_pretrained(
        self, directory: str | os.PathLike, dtype: torch.dtype | None = None
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (weights cast to ``dtype`` if given)."""
        assert isinstance(self, nn.Module)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
            for k, v in self.state_dict().items()
        }
        metadata = {"format": "pt", CONFIG_METADATA: json.dumps(self.config.to_dict())}
        atomic_write_bytes(
            directory / WEIGHTS_FILE, canonical(safetensors_bytes(tensors, metadata))
        )
        self.config.save(directory / CONFIG_FILE)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[M],
        name_or_dir: str | os.PathLike,
        device: str | torch.device = "cpu",
        part: str | None = None,
    ) -> M:
        """Load from a model folder, a pipeline folder or a bundled name (the pipeline's part of
        this class, or the one called ``part``); weights come back as float32."""
        directory = part_path(name_or_dir, cls.__name__, part)
        if not (directory / CONFIG_FILE).is_file():
            inside = sorted(p.parent.name for p in directory.glob(f"*/{CONFIG_FILE}"))
            hint = f" (its sub-folders {', '.join(inside)} have one)" if inside else ""
            raise FileNotFoundError(
                f"no {cls.__name__} at {directory}: expected {CONFIG_FILE} and model.safetensors"
                f"{hint}"
            )
        config = cls.config_class.load(directory / CONFIG_FILE)
        weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
        state, metadata = read_weights_file(weights)
        check_saved_config(metadata, config, weights, config_path)
        model = cls(config)  # type: ignore[call-arg]
        model.load_state_dict(checked_state(state, model, weights, str(config_path)))  # type: ignore[attr-defined]
        return model.to(device).eval()  # type: ignore[attr-defined]

    # -- as a pipeline part (dalle.folders) ------------------------------------------------------
    @classmethod
    def load_part(cls: type[M], path: Path, device: str | torch.device = "cpu") -> M:
        return cls.from_pretrained(path, device)

    def save_part(self, directory: Path, name: str, dtype: torch.dtype | None = None) -> str:
        self.save_pretrained(directory / name, dtype)
        return name
