"""CLIPScore over a folder of generated images (Hessel et al. 2021)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from dalle.pipelines.clip_ranker import ClipRanker
from dalle.utils.images import parse_output_name


def folder_clipscore(
    ranker: ClipRanker, folder: str | os.PathLike, prompts: list[str] | None = None
) -> dict:
    """Mean CLIPScore of ``folder/{prompt:04d}_{image:02d}.png`` with ``prompts[prompt]``, or with
    the ``prompt`` text chunk of each PNG when ``prompts`` is None."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    images, texts = [], []
    for path in sorted(folder.iterdir()):
        parsed = parse_output_name(path.name)
        if parsed is None:
            continue
        with Image.open(path) as im:
            im.load()
            if prompts is not None:
                index = parsed[0]
                if index >= len(prompts):
                    raise ValueError(
                        f"{path.name}: prompt {index} but the prompts file has {len(prompts)}"
                    )
                texts.append(prompts[index])
            elif "prompt" in getattr(im, "text", {}):
                texts.append(im.text["prompt"])
            else:
                raise ValueError(f"{path.name} carries no prompt text chunk: pass --prompts")
            images.append(im.convert("RGB"))
    if not images:
        raise ValueError(f"{folder} holds no images named like 0000_00.png")
    scores = ranker.clipscore(images, texts)
    return {"images": len(images), "clipscore": float(scores.mean()), "scores": scores.tolist()}
