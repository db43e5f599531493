"""Running ``dalle train STAGE`` in a subprocess, and killing it mid-run, for resume tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from dalle.training.checkpoint import latest_checkpoint


def run_train(stage: str, preset: str, out: Path, *extra: str, wait: bool = True):
    """The finished process (``wait``) or the running one."""
    cmd = [sys.executable, "-m", "dalle", "train", stage, "--preset", preset, "--out", str(out),
           "--threads", "1", *extra]  # fmt: skip
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if wait:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def kill_after_checkpoint(proc: subprocess.Popen, run_dir: Path, at_least: str) -> Path | None:
    """SIGKILL ``proc`` once ``run_dir`` has a checkpoint named ``at_least`` or later; return
    the newest checkpoint left behind."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = latest_checkpoint(run_dir)
        if found is not None and found.name >= at_least:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return latest_checkpoint(run_dir)


def free_port() -> str:
    """A TCP port nothing listens on now, for a torchrun rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def one_and_two_processes(stage: str, preset: str, tmp_path: Path, steps: int, *extra: str):
    """Train ``stage`` for ``steps`` steps alone (``tmp_path/one``) and under torchrun with two
    processes over gloo (``tmp_path/two``); the two final checkpoints' model weights."""
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    args = ["-m", "dalle", "train", stage, "--preset", preset, "--threads", "1", "--no-bf16",
            "--steps", str(steps), "--checkpoint-every", str(steps), *extra]  # fmt: skip
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], check=True, env=env,
                   capture_output=True)  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", free_port()]  # fmt: skip
    subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")], check=True, env=env,
                   capture_output=True, timeout=300)  # fmt: skip
    step = f"checkpoints/step_{steps:07d}/model.safetensors"
    return load_file(str(tmp_path / "one" / step)), load_file(str(tmp_path / "two" / step))


def assert_resume_is_bit_exact(
    stage: str, preset: str, tmp_path: Path, steps: int, kill_after: int, *extra: str
):
    """Train ``stage`` straight through (``tmp_path/straight``) and again killed by SIGKILL once
    checkpoint ``kill_after`` is written, then ``--resume`` d (``tmp_path/killed``); assert the
    final model and EMA weights are identical and the logged losses equal. Returns the resumed
    run's finished process."""
    from dalle.training.metrics_log import MetricsLog

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_train(stage, preset, straight, *extra)
    proc = run_train(stage, preset, killed, *extra, wait=False)
    at = kill_after_checkpoint(proc, killed, f"step_{kill_after:07d}")
    assert at is not None and at.name < f"step_{steps:07d}", "the run ended before the kill"
    result = run_train(stage, preset, killed, *extra, "--resume")
    assert f"trained {steps} steps" in result.stdout
    last = f"checkpoints/step_{steps:07d}"
    for name in ("model", "ema"):
        a = load_file(str(straight / last / f"{name}.safetensors"))
        b = load_file(str(killed / last / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    logs = [MetricsLog(run / "metrics.jsonl").records() for run in (straight, killed)]
    assert [r.get("loss") for r in logs[0]] == [r.get("loss") for r in logs[1]]
    return result


def caption_folder(root: Path, n: int, broken: int = 1, size: int = 16, seed: int = 0) -> Path:
    """``root`` as a folder data set: ``n`` random ``size`` x ``size`` PNGs captioned
    "a red circle number i", and ``broken`` files that are not images (with captions)."""
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i}.png")
        (root / f"{i}.txt").write_text(f"a red circle number {i}")
    for i in range(broken):
        (root / f"broken{i}.png").write_bytes(b"not an image")
        (root / f"broken{i}.txt").write_text("broken")
    return root
