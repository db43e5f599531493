"""Cosine schedules for temperatures, loss weights and learning rates."""

from __future__ import annotations

import math


def cosine_anneal(step: int, steps: int, start: float, end: float) -> float:
    """``start`` at step 0 to ``end`` at ``steps`` (and after) along a half cosine."""
    frac = min(max(step / max(steps, 1), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * frac))


def cosine_ramp(step: int, steps: int, end: float) -> float:
    """0 at step 0 rising to ``end`` at ``steps`` along a half cosine (the dVAE's KL ramp)."""
    return cosine_anneal(step, steps, 0.0, end)
