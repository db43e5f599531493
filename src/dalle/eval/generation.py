"""How often a pipeline draws what a shapes prompt says: generate, save, score."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from dalle.eval.shapes_report import ShapesReport, score_folder
from dalle.utils.images import save_prompt_images
from dalle.utils.io import atomic_write_text, remove_unwritten


def shapes_generation_report(
    pipe,
    prompts: list[str],
    out_dir: str | os.PathLike,
    num_images: int = 4,
    seed: int = 0,
    on_image: Callable[[int], None] | None = None,
    earlier: Iterable[Path] = (),
    **sampling,
) -> ShapesReport:
    """Draw ``num_images`` per prompt with a pipeline (DALL·E or unCLIP; ``sampling``: the
    keyword arguments of its ``iter_images``, e.g. ``candidates``) into
    ``out_dir/{prompt:04d}_{image:02d}.png`` (with ``out_dir/prompts.txt``) and score them with
    the exact shapes scorer. ``earlier``: an earlier run's images in ``out_dir`` being replaced;
    those the new ones do not overwrite are deleted before scoring."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "prompts.txt", "".join(p + "\n" for p in prompts))
    found = pipe.iter_images(prompts, num_images, seed, on_image=on_image, **sampling)
    written = save_prompt_images(found, out, lambda i, j, _: {"prompt": prompts[i], "seed": seed})
    remove_unwritten(earlier, written)
    return score_folder(out, prompts)
