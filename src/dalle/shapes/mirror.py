"""Mirrored image/caption pairs: a shapes image flipped, with the caption that is true of it.

A two-object image flipped left-right is again a shapes image (every shape is symmetric about its
vertical axis) in which "A to the left of B" has become "A to the right of B": the displacement
between the centres changes sign and nothing else. Upside down the same holds for "above" and
"below", unless a triangle (which points up) is in the picture. Putting such a pair into one
contrastive batch gives each image a caption that only the relation tells apart, and each caption
an image that only the objects' places tell apart: a negative on both sides of the loss, which
caption-only negatives (``dalle.shapes.negatives``) cannot give the image tower. Only captions
are parsed; the scorer is never used.
"""

from __future__ import annotations

import torch

from dalle.shapes.captions import INVERSE_RELATION, Prompt, try_parse_caption

HORIZONTAL, VERTICAL = -1, -2  # the image dimension a flip reverses


def mirrored_caption(caption: str) -> tuple[str, int] | None:
    """The canonical caption of the flipped image and the dimension to flip (``HORIZONTAL`` for
    left/right, ``VERTICAL`` for above/below without a triangle); None when no flip changes the
    caption or keeps the image a shapes image (one object, a triangle above or below, not a
    shapes caption)."""
    prompt = try_parse_caption(caption)
    if prompt is None or prompt.relation is None:
        return None
    if prompt.relation in ("above", "below"):
        if any(o.shape == "triangle" for o in prompt.objects):
            return None
        dim = VERTICAL
    else:
        dim = HORIZONTAL
    return Prompt(prompt.objects, INVERSE_RELATION[prompt.relation]).canonical(), dim


def add_mirror_pairs(
    images: torch.Tensor, captions: list[str], fraction: float = 0.25
) -> tuple[torch.Tensor, list[str]]:
    """The batch with up to ``fraction`` of it replaced by mirrored copies of other images in
    it: the first mirrorable images are flipped and their copies take the places of the last
    images, so the batch keeps its size (and its cost). ``images`` is (B, C, H, W)."""
    budget = int(len(captions) * fraction)
    keep = len(captions) - budget
    pairs = [(i, m) for i, c in enumerate(captions[:keep]) if (m := mirrored_caption(c))]
    pairs = pairs[:budget]
    if not pairs:
        return images, captions
    keep = len(captions) - len(pairs)
    flipped = [images[i].flip(dim) for i, (_, dim) in pairs]
    return (
        torch.cat([images[:keep], torch.stack(flipped)]),
        captions[:keep] + [caption for _, (caption, _) in pairs],
    )
