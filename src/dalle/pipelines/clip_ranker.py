"""CLIP with its tokenizer, scoring images against texts: reranking and CLIPScore.

A CLIP folder holds ``config.json``, ``model.safetensors`` and the ``tokenizer.json`` it was
trained with (what ``dalle train clip`` writes to ``OUT/clip``, and the ``clip/`` part of a
pipeline). OpenAI / open_clip ViT checkpoints load with :meth:`ClipRanker.from_openai`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dalle.folders import INDEX_FILE, TOKENIZER_FILE, PipelineIndex, load_part, resolve
from dalle.models.clip import CLIP
from dalle.text.tokenizer import TextTokenizer
from dalle.utils.images import area_resize

CLIPSCORE_WEIGHT = 2.5  # Hessel et al. 2021: CLIPScore = 2.5 * max(cos, 0)


class ClipRanker:
    def __init__(self, clip: CLIP, tokenizer) -> None:
        """``tokenizer`` encodes ``(texts, text_seq_len)`` to ids ending in the CLIP's eot."""
        if tokenizer.eot_id != clip.config.eot_id:
            raise ValueError(
                f"the tokenizer's end-of-text id {tokenizer.eot_id} is not the CLIP's "
                f"({clip.config.eot_id})"
            )
        self.clip, self.tokenizer = clip.eval(), tokenizer

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, device: str = "cpu") -> ClipRanker:
        """A pipeline's CLIP part with the tokenizer part it reads, or a CLIP folder holding its
        own tokenizer.json (what ``dalle train clip`` writes)."""
        path = resolve(name_or_dir)
        if (path / INDEX_FILE).is_file():
            index = PipelineIndex.read(path)
            record = index.parts[index.find("CLIP")]
            if record.tokenizer is None:
                raise ValueError(f"{path / INDEX_FILE}: the CLIP part names no tokenizer part")
            return cls(
                load_part(path, record, device), load_part(path, index.parts[record.tokenizer])
            )
        if not (path / TOKENIZER_FILE).is_file():
            raise FileNotFoundError(f"{path} has no {TOKENIZER_FILE} beside the CLIP weights")
        return cls(CLIP.from_pretrained(path, device), TextTokenizer.from_file(path))

    @classmethod
    def from_openai(
        cls, weights: str | os.PathLike, tokenizer: str | os.PathLike, act: str = "quick_gelu",
        head_width: int = 64,
    ) -> ClipRanker:  # fmt: skip
        """An OpenAI- or open_clip-layout ViT state dict (safetensors) and its tokenizer.json;
        ``head_width``: its attention heads' width (64 in OpenAI's models)."""
        from dalle.models.clip_convert import ExternalClipTokenizer, load_openai_clip

        clip = load_openai_clip(weights, act, head_width=head_width)  # type: ignore[arg-type]
        return cls(clip, ExternalClipTokenizer(tokenizer))  # type: ignore[arg-type]

    def save_pretrained(
        self, directory: str | os.PathLike, dtype: torch.dtype | None = None
    ) -> Path:
        """A CLIP folder with its own tokenizer.json (a pipeline records the tokenizer as a part)."""
        directory = self.clip.save_pretrained(directory, dtype)
        self.tokenizer.save(directory / TOKENIZER_FILE)
        return directory

    @property
    def device(self) -> torch.device:
        return self.clip.logit_scale.device

    def to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images resized (shorter side) and centre-cropped to the CLIP's input, (B, 3, S, S)."""
        from dalle.data.transforms import ImageTransform, TransformConfig

        transform = ImageTransform(TransformConfig(image_size=self.clip.config.image_size))
        rng = np.random.default_rng(0)
        return torch.stack([transform(im.convert("RGB"), "", rng)[0] for im in images])

    @torch.no_grad()
    def cosine(
        self, images: torch.Tensor, texts: Sequence[str], batch_size: int = 64
    ) -> torch.Tensor:
        """(B,) cosine similarity of image ``i`` (B, 3, H, W in [0, 1]) with text ``i``."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        size, out = self.clip.config.image_size, []
        for i in range(0, len(texts), batch_size):
            chunk = images[i : i + batch_size].to(self.device).float()
            chunk = area_resize(chunk, size)
            ids = self.tokenizer.encode(
                list(texts[i : i + batch_size]), self.clip.config.text_seq_len
            ).ids
            img, txt = self.clip.encode_image(chunk), self.clip.encode_text(ids.to(self.device))
            out.append((img * txt).sum(-1))
        return torch.cat(out).cpu()

    def clipscore(self, images: Sequence[Image.Image], texts: Sequence[str]) -> torch.Tensor:
        """(B,) CLIPScore, ``2.5 * max(cos, 0)``, of each image with its text."""
        return CLIPSCORE_WEIGHT * self.cosine(self.to_tensor(images), texts).clamp(min=0)


def keep_best(
    ranker: ClipRanker | None, images: torch.Tensor, prompt: str, keep: int
) -> list[Image.Image]:
    """The ``keep`` of (M, 3, H, W) ``images`` that the ranker's CLIP scores best for ``prompt``,
    best first, each with its ``clip_score`` (cosine) and ``candidate`` index in ``info``; all
    of them, in order and unscored, when M = ``keep``."""
    from dalle.utils.images import to_pil

    if len(images) == keep:
        return to_pil(images)
    if ranker is None:
        raise ValueError("reranking candidates needs a CLIP in the pipeline (a clip/ part)")
    return best_scored(images, ranker.cosine(images, [prompt] * len(images)), keep)


def best_scored(images: torch.Tensor, scores: torch.Tensor, keep: int) -> list[Image.Image]:
    """The ``keep`` of (M, 3, H, W) ``images`` with the highest (M,) CLIP ``scores``, best
    first, each with its ``clip_score`` and ``candidate`` index in ``info``."""
    from dalle.utils.images import to_pil

    out = []
    for j in scores.argsort(descending=True)[:keep].tolist():
        image = to_pil(images[j][None])[0]
        image.info.update(clip_score=float(scores[j]), candidate=j)
        out.append(image)
    return out
