"""Training checkpoints without pickle: tensors in safetensors files, the rest in JSON.

A checkpoint is a folder ``RUN/checkpoints/step_NNNNNNN`` written under a temporary name and
renamed when complete, so a run killed at any moment leaves only whole checkpoints behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dalle.config import dict_changes
from dalle.utils.io import atomic_write_bytes, current_umask, fsync_path, temp_dir

STATE_FILE = "trainer_state.json"
REQUIRED_TENSORS = ("model", "ema", "optimizer", "rng")  # what every training checkpoint holds
PACKED = "packed"  # trainer-state key of a packed checkpoint (see pack_run): no optimizer moments

logger = logging.getLogger(__name__)


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
    text_files: dict[str, str] | None = None,
) -> Path:
    """Write ``{name}.safetensors`` for each entry of ``tensor_files``, ``trainer_state.json`` and
    the ``text_files`` (name -> text) into a temporary folder, flush them to the disk, and rename
    it into place; then keep the newest ``keep`` checkpoints. Temporary folders of a save that
    was killed midway are removed first."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".step_*"):  # only the main process saves, one save at a time
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step_{step:07d}"
    tmp = temp_dir(root, f".step_{step:07d}.")
    try:
        for name, tensors in tensor_files.items():
            save_file(
                {k: v.contiguous() for k, v in tensors.items()}, str(tmp / f"{name}.safetensors")
            )
        (tmp / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=1))
        for name, text in (text_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        mode = 0o666 & ~current_umask()
        for path in tmp.iterdir():
            path.chmod(mode)  # safetensors makes its files private (0600)
            fsync_path(path)  # on the disk before the rename makes it a checkpoint
        fsync_path(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(root.glob("step_*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's checkpoint folders that were completed (renamed into place), newest first."""
    found = sorted((Path(run_dir) / "checkpoints").glob("step_*"), reverse=True)
    return [p for p in found if (p / STATE_FILE).is_file()]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = checkpoints(run_dir)
    return found[0] if found else None


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


def save_training_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    ema,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    model_config,
    train_config,
    extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
    extra_state: dict[str, Any] | None = None,
) -> Path:
    """A trainer's whole state (weights, EMA, optimizer, RNG, configs, step), plus extras; the
    model config is also written as ``config.json`` beside the weights (in the same atomic
    save)."""
    optim_tensors, optim_meta = optimizer_to_tensors(optimizer)
    path = save_checkpoint(
        run_dir,
        step,
        {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": optim_tensors,
            "rng": rng_tensors(generator),
            **(extra_tensors or {}),
        },
        {
            "optimizer": optim_meta,
            "model_config": model_config.to_dict(),
            "train_config": train_config.to_dict(),
            **(extra_state or {}),
        },
        text_files={"config.json": model_config.to_json()},
    )
    return path


def newest_readable_checkpoint(
    run_dir: str | os.PathLike, purpose: str = "using"
) -> tuple[Path, dict[str, dict[str, torch.Tensor]], dict] | None:
    """The newest checkpoint of a run that reads whole (its path, tensors and state); None if
    the run has none. A checkpoint damaged after it was written (a truncated or corrupt file,
    e.g. a disk that filled up or a copy cut short) is reported and the one before it is used;
    if none can be read, a ValueError lists why."""
    found = checkpoints(run_dir)
    if not found:
        return None
    damaged = []
    for path in found:
        try:
            tensors, state = load_checkpoint(path)
            required = [n for n in REQUIRED_TENSORS if not (n == "optimizer" and state.get(PACKED))]
            missing = [name for name in required if name not in tensors]
            if missing:
                raise ValueError(f"no {', '.join(missing)} tensors")
            state["step"], state["model_config"], state["optimizer"]  # noqa: B018
            break
        except Exception as e:  # safetensors, JSON or missing-key errors alike
            damaged.append(f"{path} ({type(e).__name__}: {e})")
            logger.warning("checkpoint %s cannot be read (%s); trying the one before", path, e)
    else:
        raise ValueError("no checkpoint of the run can be read: " + "; ".join(damaged))
    if damaged:
        logger.warning("%s %s: the newer checkpoint could not be read", purpose, path)
    return path, tensors, state


def load_training_checkpoint(
    run_dir: str | os.PathLike,
    model: torch.nn.Module,
    ema,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    model_config,
) -> tuple[Path, dict[str, dict[str, torch.Tensor]], dict] | None:
    """Restore the newest readable checkpoint of a run (``newest_readable_checkpoint``) into
    the given objects; None if there is none. Returns its path, tensors and state (the step is
    ``state["step"]``) for any extras."""
    found = newest_readable_checkpoint(run_dir, "resuming from")
    if found is None:
        return None
    path, tensors, state = found
    if state["model_config"] != model_config.to_dict():
        changed = dict_changes(state["model_config"], model_config.to_dict())
        raise ValueError(
            f"{path}: the checkpoint was made with another model config (checkpoint -> this "
            f"run: {changed})"
        )
    model.load_state_dict(tensors["model"])  # (a packed checkpoint's fp16 cast back up)
    ema.load_state_dict(tensors["ema"])
    if "optimizer" in tensors:  # a packed one has none: the optimizer starts afresh
        optimizer_from_tensors(optimizer, tensors["optimizer"], state["optimizer"])
    restore_rng(tensors["rng"], generator)
    return path, tensors, state


def pack_run(
    run_dir: str | os.PathLike, out: str | os.PathLike, dtype: torch.dtype = torch.float16
) -> Path:
    """A small copy of a run in the new (or empty) folder ``out`` that ``--resume`` continues
    from, on this machine or another: the newest readable checkpoint's weight matrices (every
    tensor of two or more dimensions: the bulk of the bytes) and their EMA in ``dtype``, its
    other tensors (norms, biases, statistics, RNG) and trainer state as they are, but not the
    optimizer's moments (two more copies of the weights in fp32; in fp16 a quarter of the size
    is left); and the run's own small files (its configs, metrics log, tokenizer). A resume from
    it starts the optimizer afresh and warms the learning rate up again to where the schedule
    is (``AcceleratedTrainer.resume``). Written in a temporary folder and renamed into place.
    Returns the packed checkpoint's folder."""
    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise ValueError("pack a run into another folder than its own")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} is not an empty folder: pack into a new one")
    found = newest_readable_checkpoint(run_dir, "packing")
    if found is None:
        raise ValueError(f"{run_dir} holds no checkpoint to pack")
    last, tensors, state = found
    for name in ("model", "ema"):
        for key, value in tensors[name].items():
            if value.is_floating_point() and value.dim() >= 2:
                cast = value.to(dtype)
                if not bool(cast.isfinite().all()) and bool(value.isfinite().all()):
                    raise ValueError(
                        f"{last}: {name} tensor {key} does not fit in {dtype} (values up to "
                        f"{value.abs().max().item():.3g}); pack with another --dtype"
                    )
                tensors[name][key] = cast
    tensors.pop("optimizer", None)
    step = state.pop("step")
    state.update({"optimizer": None, PACKED: {"from_step": step, "dtype": str(dtype)}})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out.parent, f".{out.name}.packing-")
    try:
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and path.suffix in (".json", ".jsonl"):
                atomic_write_bytes(tmp / path.name, path.read_bytes())
        config = last / "config.json"
        texts = {"config.json": config.read_text(encoding="utf-8")} if config.is_file() else None
        packed = save_checkpoint(tmp, step, tensors, state, keep=1, text_files=texts)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / packed.relative_to(tmp)
