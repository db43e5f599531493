"""The sampling loop shared by every sampler (guidance is the model function's business)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dalle.diffusion.base import Sampler
from dalle.diffusion.noise import Generators

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sample(
    model_fn: ModelFn,
    sampler: Sampler,
    x: torch.Tensor,
    num_steps: int,
    generator: Generators = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    spacing: float = 1.0,
) -> torch.Tensor:
    """Run ``sampler`` for ``num_steps`` steps from ``x`` (x_T, or clean data for the inverter).

    ``model_fn(x, t)`` gets (B, ...) x and a (B,) long tensor of training timesteps and returns
    the sampler's prediction type. Runs without autograd; ``generator`` as in :meth:`Sampler.step`.
    ``on_step(i, x0)``, if given, gets each step's index and the model's estimate of the clean
    data at that step (what a progress preview shows). ``spacing`` spreads the steps as in
    :meth:`Sampler.set_timesteps` (1: evenly).
    """
    sampler.set_timesteps(num_steps, spacing)
    for i, t in enumerate(sampler.timesteps.tolist()):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        out = model_fn(x, t_batch)
        if on_step is not None:
            on_step(i, sampler.schedule.predict_x0(out, x, t_batch.cpu(), sampler.prediction))
        x = sampler.step(out, t, x, generator=generator)
    return x
