"""Exponential moving average of a model's weights (what gets saved for use).

The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates: without it a run of a
few thousand steps at decay 0.9995 still keeps a third of its random initial weights at step
2,000 (0.9995^2000 = 0.37), and its samples are noise although the model itself draws well."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int | None = None) -> None:
        """Move the average towards ``model``; ``step`` (updates done before this one) warms
        the decay up, None uses it as given."""
        decay = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.float(), 1 - decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) ^ set(state)
        if missing:
            raise ValueError(f"EMA state does not match the model: {sorted(missing)[:5]}")
        self.shadow = {k: v.clone().float() for k, v in state.items()}

    def copy_to(self, model: nn.Module) -> nn.Module:
        model.load_state_dict(
            {k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()}
        )
        return model
