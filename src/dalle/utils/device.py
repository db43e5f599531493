"""What the machine can do, and the dtype that follows from it.

Every default that picks a dtype (sampling weights, training autocast) asks :func:`use_bf16`, so
that the same command is fast on a CPU with bf16 matrix units (Intel AMX, or AVX512-BF16 as on
AMD Zen 4), on one without them (AMD Zen 3 and older, where bf16 matrix products run 100x slower
than fp32: 1 against 87 GFLOP/s measured), and on GPUs. A user's explicit choice always wins.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

# CPU flags (as /proc/cpuinfo names them) of units that run bf16 matrix products natively
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty
    where that file does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bf16_is_fast(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 matrix products beat fp32 ones on ``device``: a CUDA GPU that supports bf16,
    or a CPU with AMX or AVX512-BF16 units. (Arm CPUs and Apple GPUs: no, to be safe.)"""
    device = torch.device(device)
    if device.type == "cuda":  # bf16 in hardware (Ampere on): emulated bf16 is slow (T4, V100)
        if not torch.cuda.is_available():
            return False
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_flags() & BF16_CPU_FLAGS)
    return False


def use_bf16(requested: bool | None, device: str | torch.device = "cpu") -> bool:
    """The user's choice if given (True / False), else whether bf16 is fast on ``device``."""
    if requested is not None:
        return bool(requested)
    return bf16_is_fast(device)


def conv_memory_format(device: str | torch.device, bf16: bool) -> torch.memory_format:
    """The memory format a convolutional network samples in on ``device`` in the dtype ``bf16``
    says: channels-last for fp32 on a CPU (the unCLIP U-Nets sampled 1.10-1.30x faster so on an
    AMD Zen 3, ``benchmarks/unet_layout.py``; on Intel, fp32 training steps were faster
    channels-last too), contiguous otherwise (bf16 training ran slower channels-last on Intel
    AMX; bf16 sampling by layout, other CPUs and GPUs are not measured: that script times bf16
    where the machine has the units)."""
    if torch.device(device).type == "cpu" and not bf16:
        return torch.channels_last
    return torch.contiguous_format


def default_device() -> torch.device:
    """The first CUDA GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
