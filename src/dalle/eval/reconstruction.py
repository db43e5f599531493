"""Reconstruction quality of an image tokenizer: PSNR, codebook use, and the shapes scorer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dalle.eval.shapes_scorer import score_image
from dalle.shapes.captions import scene_prompt
from dalle.shapes.dataset import shapes_example


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, C, H, W) images in [0, 1]; inf for identical images."""
    mse = (reconstruction.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


@dataclass(frozen=True)
class ShapesReconstructionReport:
    images: int
    mean_psnr: float
    seen_accuracy: float
    held_out_accuracy: float | None
    codes_used: int
    num_tokens: int


@torch.no_grad()
def shapes_reconstruction_report(
    vae, n: int = 1000, split: str = "test", seed: int = 0, batch_size: int = 100
) -> ShapesReconstructionReport:
    """Encode and decode ``n`` shapes images; score reconstructions against their scenes, every
    object's colour, shape and size (a canonical caption states a size half of the time)."""
    psnrs, seen, held, used = [], [], [], torch.zeros(vae.config.num_tokens, dtype=torch.bool)
    for start in range(0, n, batch_size):
        examples = [
            shapes_example(split, i, seed) for i in range(start, min(start + batch_size, n))
        ]
        images = (
            torch.stack([torch.from_numpy(e.image).permute(2, 0, 1) for e in examples]).float()
            / 255
        )
        tokens = vae.encode(images)
        used[tokens.unique()] = True
        recon = vae.decode(tokens)
        psnrs += psnr(recon, images).clamp(max=100.0).tolist()  # an exact copy counts as 100 dB
        pixels = (recon.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for example, image in zip(examples, pixels, strict=True):
            prompt = scene_prompt(example.scene)  # every size stated: all of them checked
            (held if prompt.held_out else seen).append(score_image(image, prompt).correct)
    return ShapesReconstructionReport(
        images=n,
        mean_psnr=float(np.mean(psnrs)),
        seen_accuracy=float(np.mean(seen)),
        held_out_accuracy=float(np.mean(held)) if held else None,
        codes_used=int(used.sum()),
        num_tokens=vae.config.num_tokens,
    )
