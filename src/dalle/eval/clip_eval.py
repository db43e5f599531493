"""CLIP on the shapes world: caption retrieval and zero-shot attribute accuracy.

- Retrieval: each test image against every distinct canonical caption of the test images
  (sizes stated); top-1 is correct when the image's own caption ranks first.
- Zero-shot: for one attribute at a time, the image's full caption is varied in that attribute
  only (the first object's colour over 8 colours, its shape over 4, its size over 2; the
  relation over 4 for two-object images) and the best-ranked variant must be the true one.
Both are reported separately for images with and without a held-out colour/shape pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dalle.models.clip import CLIP
from dalle.shapes.captions import Prompt, scene_prompt
from dalle.shapes.dataset import shapes_example
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, SIZES
from dalle.text.tokenizer import TextTokenizer
from dalle.utils.images import area_resize

ATTRIBUTES = ("colour", "shape", "size", "relation")


@dataclass
class Split:
    seen: list[bool] = dataclasses.field(default_factory=list)
    held_out: list[bool] = dataclasses.field(default_factory=list)

    def add(self, held_out: bool, correct: bool) -> None:
        (self.held_out if held_out else self.seen).append(correct)

    def to_dict(self) -> dict[str, float | int | None]:
        def mean(xs: list[bool]) -> float | None:
            return float(np.mean(xs)) if xs else None

        return {
            "seen": mean(self.seen), "seen_n": len(self.seen),
            "held_out": mean(self.held_out), "held_out_n": len(self.held_out),
        }  # fmt: skip


@torch.no_grad()
def text_features(
    clip: CLIP, tokenizer: TextTokenizer, texts: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """(len(texts), embed_dim) unit text features."""
    device = clip.logit_scale.device
    out = []
    for i in range(0, len(texts), batch_size):
        ids = tokenizer.encode(list(texts[i : i + batch_size]), clip.config.text_seq_len).ids
        out.append(clip.encode_text(ids.to(device)))
    return torch.cat(out)


@torch.no_grad()
def image_features(clip: CLIP, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(B, embed_dim) unit image features of (B, 3, H, W) images in [0, 1], resized (area) to the
    model's size if they differ."""
    device, size = clip.logit_scale.device, clip.config.image_size
    out = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size].to(device)
        chunk = area_resize(chunk, size)
        out.append(clip.encode_image(chunk))
    return torch.cat(out)


def _variants(prompt: Prompt, attribute: str) -> tuple[list[str], int] | None:
    """The prompt varied in one attribute, and the index of the true variant."""
    first = prompt.objects[0]
    if attribute == "relation":
        if prompt.relation is None:
            return None
        options = [Prompt(prompt.objects, r) for r in RELATIONS]
        return [p.canonical() for p in options], RELATIONS.index(prompt.relation)
    values = {"colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES)}[attribute]
    options = [
        Prompt((dataclasses.replace(first, **{attribute: v}), *prompt.objects[1:]), prompt.relation)
        for v in values
    ]
    return [p.canonical() for p in options], values.index(getattr(first, attribute))


def shapes_clip_report(
    clip: CLIP,
    tokenizer: TextTokenizer,
    n: int = 1000,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Retrieval top-1 and zero-shot accuracies on ``n`` images of the shapes test split."""
    clip = clip.eval()
    examples = [shapes_example("test", i, seed) for i in range(n)]
    prompts = [scene_prompt(e.scene) for e in examples]  # sizes stated
    captions = [p.canonical() for p in prompts]
    images = (
        torch.stack([torch.from_numpy(e.image).permute(2, 0, 1) for e in examples]).float() / 255
    )
    img = image_features(clip, images)
    if on_batch is not None:
        on_batch(n)
    candidates = sorted(set(captions))
    ranked = (img @ text_features(clip, tokenizer, candidates).t()).argmax(1)
    retrieval = Split()
    for prompt, caption, best in zip(prompts, captions, ranked.tolist(), strict=True):
        retrieval.add(prompt.held_out, candidates[best] == caption)
    zero_shot = {a: Split() for a in ATTRIBUTES}
    for attribute in ATTRIBUTES:
        for i, prompt in enumerate(prompts):
            found = _variants(prompt, attribute)
            if found is None:
                continue
            texts, truth = found
            scores = img[i] @ text_features(clip, tokenizer, texts).t()
            zero_shot[attribute].add(prompt.held_out, int(scores.argmax()) == truth)
    return {
        "images": n,
        "captions": len(candidates),
        "retrieval_top1": retrieval.to_dict(),
        "zero_shot": {a: s.to_dict() for a, s in zero_shot.items()},
    }
