"""Running ``dalle train STAGE`` in a subprocess, and killing it mid-run, for resume tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
