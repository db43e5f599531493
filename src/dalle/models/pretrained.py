"""Saving and loading models as ``config.json`` + ``model.safetensors`` folders.

A name that is not an existing folder is looked up among the pipelines bundled with the package
(``dalle/assets/NAME``); ``part`` is the sub-folder of that pipeline holding the model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dalle.config import Config
from dalle.utils.io import atomic_path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
M = TypeVar("M", bound="PretrainedMixin")


def bundled_names() -> list[str]:
    return sorted(p.name for p in ASSETS.iterdir() if p.is_dir()) if ASSETS.is_dir() else []


def resolve_model_dir(name_or_dir: str | os.PathLike, part: str) -> Path:
    """The folder holding ``config.json``: a user's folder, a pipeline's part, or a bundled one."""
    path = Path(name_or_dir)
    for candidate in (path, path / part):
        if (candidate / "config.json").is_file():
            return candidate
    bundled = ASSETS / str(name_or_dir) / part
    if (bundled / "config.json").is_file():
        return bundled
    raise FileNotFoundError(
        f"no model at {str(name_or_dir)!r}: expected a folder with config.json and "
        f"model.safetensors (or its {part}/ sub-folder), or a bundled name "
        f"({', '.join(bundled_names()) or 'none installed'})"
    )


def weights_id(model: nn.Module) -> str:
    """A short hash of a model's weights (names and bytes): which weights made a cache or a run."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class PretrainedMixin:
    """For ``nn.Module``s built as ``Model(config)``; the config travels with the weights."""

    config_class: ClassVar[type[Config]]
    pipeline_part: ClassVar[str]
    config: Config

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
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        self.config.save(directory / "config.json")
        return directory

    @classmethod
    def from_pretrained(
        cls: type[M], name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> M:
        """Load from a folder or a bundled pipeline name; weights come back as float32."""
        directory = resolve_model_dir(name_or_dir, cls.pipeline_part)
        config = cls.config_class.load(directory / "config.json")
        model = cls(config)  # type: ignore[call-arg]
        state = load_file(str(directory / "model.safetensors"))  # to the CPU, then moved
        expected = model.state_dict()  # type: ignore[attr-defined]
        state = {k: v.to(expected[k].dtype) if k in expected else v for k, v in state.items()}
        model.load_state_dict(state)  # type: ignore[attr-defined]
        return model.to(device).eval()  # type: ignore[attr-defined]
