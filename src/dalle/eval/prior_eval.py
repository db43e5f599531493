"""How well the unCLIP prior's image embeddings stand for the images a caption describes.

For canonical prompts of the shapes world (the users mix: mostly two objects, sizes stated, a
quarter held-out) one image per prompt is rendered; each prompt's text embedding and the prior's
image embedding then retrieve among all the rendered images. Retrieval top-1: the nearest image
shows what the prompt says, by the exact shapes scorer (its own image, or another prompt's that
also fits it: "a red circle" is drawn by the image of "a large red circle", "A left of B" by that
of "B right of A"). The prior should come close to the
text embedding's rate, and sit closer (cosine) to the right image than the text embedding does,
since it predicts an *image* embedding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dalle.eval.shapes_scorer import score_image
from dalle.pipelines.unclip_pipeline import PriorSettings, UnclipPipeline
from dalle.shapes.captions import Prompt, parse_caption
from dalle.shapes.prompts import evaluation_prompts
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import scene_for_prompt


def render_prompts(prompts: list[str], seed: int = 0) -> np.ndarray:
    """(N, 64, 64, 3) uint8 images, one scene realising each prompt."""
    return np.stack(
        [render_scene(scene_for_prompt(parse_caption(p), seed, i)) for i, p in enumerate(prompts)]
    )


def depiction(arrays: np.ndarray, prompts: list[Prompt]) -> Callable[[int, int], bool]:
    """``depicts(i, j)``: whether rendered image ``arrays[j]`` shows what ``prompts[i]`` says
    (always for j = i, whose scene realises it), by the exact shapes scorer."""

    def depicts(i: int, j: int) -> bool:
        return i == j or score_image(arrays[j], prompts[i]).correct

    return depicts


def _retrieval(embeds: torch.Tensor, images: torch.Tensor, depicts, held: list[bool]):
    """``depicts(i, j)``: whether image j shows what prompt i says."""
    sims = embeds @ images.t()  # (N, N) cosines: embeddings and images are unit length
    nearest = sims.argmax(1).tolist()
    right = [depicts(i, j) for i, j in enumerate(nearest)]
    cosine = sims.diagonal().tolist()
    out = {}
    for name, keep in (("seen", [not h for h in held]), ("held_out", held)):
        rows = [i for i, k in enumerate(keep) if k]
        out[name] = {
            "prompts": len(rows),
            "top1": sum(right[i] for i in rows) / max(len(rows), 1),
            "cosine": sum(cosine[i] for i in rows) / max(len(rows), 1),
        }
    return out


def shapes_prior_report(
    pipe: UnclipPipeline,
    n: int = 128,
    seed: int = 0,
    prompts_seed: int = 0,
    settings: PriorSettings | None = None,
) -> dict:
    """Retrieval top-1 and mean cosine to the right image, per split (seen / held-out), of the
    text embeddings and of the prior's (seeded by ``seed``), and the prior's rate as a fraction
    of the text's."""
    prompts = evaluation_prompts(n, seed=prompts_seed, mix="users")
    parsed = [parse_caption(p) for p in prompts]
    held = [p.held_out for p in parsed]
    arrays = render_prompts(prompts, seed=prompts_seed)
    images = pipe.image_embeddings(torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255)
    depicts = depiction(arrays, parsed)
    text = _retrieval(pipe.text_embeddings(prompts), images, depicts, held)
    prior = _retrieval(pipe.prior_embeddings(prompts, seed, settings), images, depicts, held)
    ratio = {
        split: prior[split]["top1"] / text[split]["top1"] if text[split]["top1"] else None
        for split in ("seen", "held_out")
    }
    return {"prompts": n, "prompts_seed": prompts_seed, "seed": seed, "text": text,
            "prior": prior, "prior_vs_text": ratio}  # fmt: skip
