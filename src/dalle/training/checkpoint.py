"""Training checkpoints without pickle: tensors in safetensors files, the rest in JSON.

A checkpoint is a folder ``RUN/checkpoints/step_NNNNNNN`` written under a temporary name and
renamed when complete, so a run killed at any moment leaves only whole checkpoints behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.json"


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into flat tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, slots in state["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value.contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    tensor_files: dict[str, dict[str, torch.Tensor]],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``{name}.safetensors`` for each entry of ``tensor_files`` and ``trainer_state.json``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".step_{step:07d}."))
    try:
        for name, tensors in tensor_files.items():
            save_file(
                {k: v.contiguous() for k, v in tensors.items()}, str(tmp / f"{name}.safetensors")
            )
        (tmp / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(root.glob("step_*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = sorted((Path(run_dir) / "checkpoints").glob("step_*"))
    found = [p for p in found if (p / STATE_FILE).is_file()]
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Every ``*.safetensors`` of a checkpoint folder by name, and its trainer state."""
    path = Path(path)
    tensors = {p.stem: load_file(str(p)) for p in sorted(path.glob("*.safetensors"))}
    return tensors, json.loads((path / STATE_FILE).read_text())


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"torch": torch.get_rng_state(), "generator": generator.get_state()}


def restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["torch"])
    generator.set_state(tensors["generator"])
