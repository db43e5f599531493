"""The loop every text-to-image pipeline shares: prompts x images in batches, each image seeded
by itself, candidates reranked by CLIP, each prompt's images handed out as soon as they are final.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image

from dalle.pipelines.clip_ranker import ClipRanker, keep_best
from dalle.pipelines.seeds import image_seed
from dalle.text.prompts import check_prompts

# (prompts, seeds) of a batch -> (B, 3, H, W) pixels in [0, 1]
DrawBatch = Callable[[list[str], list[int]], torch.Tensor]


def images_by_prompt(
    prompts: str | Sequence[str],
    num_images_per_prompt: int,
    seed: int,
    draw_batch: DrawBatch,
    batch_size: int,
    candidates: int | None = None,
    ranker: ClipRanker | None = None,
    on_image: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, list[Image.Image]]]:
    """``(prompt index, its images)`` for each prompt in order, each as soon as it is final.

    Image ``j`` of prompt ``i`` is drawn by ``draw_batch`` with the seed ``image_seed(seed, i, j)``
    among up to ``batch_size`` others, so it is the same whatever the batching. With
    ``candidates`` M > ``num_images_per_prompt``, M are drawn per prompt (seeds ``j < M``) and
    ``ranker`` keeps the best, best first, each kept image's ``info`` holding its ``clip_score``
    and ``candidate`` j. ``on_image(n)`` is called as each batch of ``n`` images is drawn.
    """
    prompts = check_prompts([prompts] if isinstance(prompts, str) else prompts)
    keep = num_images_per_prompt
    draw = keep if candidates is None else candidates
    if keep < 1 or batch_size < 1:
        raise ValueError("num_images_per_prompt and batch_size must be at least 1")
    if draw < keep:
        raise ValueError(f"candidates ({draw}) must be at least num_images_per_prompt ({keep})")
    if draw > keep and ranker is None:
        raise ValueError("reranking candidates needs a CLIP in the pipeline (a clip/ part)")
    jobs = [(i, j) for i in range(len(prompts)) for j in range(draw)]
    pixels: list[torch.Tensor] = []  # images of the prompts not yet given out
    done = 0  # prompts given out
    for b in range(0, len(jobs), batch_size):
        chunk = jobs[b : b + batch_size]
        drawn = draw_batch(
            [prompts[i] for i, _ in chunk], [image_seed(seed, i, j) for i, j in chunk]
        )
        pixels += list(drawn.cpu())
        if on_image is not None:
            on_image(len(chunk))
        finished = (b + len(chunk)) // draw  # prompts whose every candidate is drawn
        for i in range(done, finished):
            images, pixels = torch.stack(pixels[:draw]), pixels[draw:]
            yield i, keep_best(ranker, images, prompts[i], keep)
        done = finished
