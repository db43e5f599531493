"""How well the unCLIP prior's image embeddings stand for the images a caption describes.

For canonical prompts of the shapes world (the users mix: mostly two objects, sizes stated, a
quarter held-out) one image per prompt is rendered; each prompt's text embedding and the prior's
image embedding then retrieve among all the rendered images. Retrieval top-1: the nearest image is
one of the prompt's (prompts that repeat share their images). The prior should come close to the
text embedding's rate, and sit closer (cosine) to the right image than the text embedding does,
since it predicts an *image* embedding.
"""

from __future__ import annotations

import numpy as np
import torch

from dalle.pipelines.unclip_pipeline import PriorSettings, UnclipPipeline
from dalle.shapes.captions import parse_caption
from dalle.shapes.prompts import evaluation_prompts
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import scene_for_prompt


def render_prompts(prompts: list[str], seed: int = 0) -> torch.Tensor:
    """(N, 3, 64, 64) images in [0, 1], one scene realising each prompt."""
    arrays = [
        render_scene(scene_for_prompt(parse_caption(p), seed, i)) for i, p in enumerate(prompts)
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def _retrieval(embeds: torch.Tensor, images: torch.Tensor, prompts: list[str], held: list[bool]):
    sims = embeds @ images.t()  # (N, N) cosines: embeddings and images are unit length
    nearest = sims.argmax(1).tolist()
    right = [prompts[j] == prompts[i] for i, j in enumerate(nearest)]
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
    held = [parse_caption(p).held_out for p in prompts]
    images = pipe.image_embeddings(render_prompts(prompts, seed=prompts_seed))
    text = _retrieval(pipe.text_embeddings(prompts), images, prompts, held)
    prior = _retrieval(pipe.prior_embeddings(prompts, seed, settings), images, prompts, held)
    ratio = {
        split: prior[split]["top1"] / text[split]["top1"] if text[split]["top1"] else None
        for split in ("seen", "held_out")
    }
    return {"prompts": n, "prompts_seed": prompts_seed, "seed": seed, "text": text,
            "prior": prior, "prior_vs_text": ratio}  # fmt: skip
