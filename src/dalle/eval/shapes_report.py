"""Scoring a folder of generated images, ``{prompt:04d}_{image:02d}.png``, against its prompts."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dalle.data.images import BadImageError, load_image
from dalle.eval.shapes_scorer import ATTRIBUTES, score_image
from dalle.shapes.captions import parse_caption
from dalle.shapes.spec import CANVAS
from dalle.utils.images import parse_output_name
from dalle.utils.io import atomic_path

CATEGORIES = ("one_object", "two_objects", "size_stated", "size_open", "seen", "held_out")


@dataclass(frozen=True)
class ScoredImage:
    path: Path
    prompt_index: int
    prompt: str
    held_out: bool
    correct: bool
    errors: frozenset[str]
    objects: int = 1  # how many objects the prompt names
    size_stated: bool = False  # the prompt states the size of at least one object

    @property
    def categories(self) -> tuple[str, ...]:
        """The report categories this image counts in."""
        return (
            "two_objects" if self.objects == 2 else "one_object",
            "size_stated" if self.size_stated else "size_open",
            "held_out" if self.held_out else "seen",
        )


@dataclass
class ShapesReport:
    images: list[ScoredImage] = field(default_factory=list)

    def _accuracy(self, held_out: bool) -> float | None:
        group = [s.correct for s in self.images if s.held_out == held_out]
        return sum(group) / len(group) if group else None

    @property
    def seen_accuracy(self) -> float | None:
        return self._accuracy(held_out=False)

    @property
    def held_out_accuracy(self) -> float | None:
        return self._accuracy(held_out=True)

    @property
    def error_counts(self) -> dict[str, int]:
        counts = Counter(e for s in self.images for e in s.errors)
        return {a: counts.get(a, 0) for a in ATTRIBUTES}

    @property
    def failures(self) -> list[ScoredImage]:
        return [s for s in self.images if not s.correct]

    def category_accuracy(self) -> dict[str, dict[str, float | int | None]]:
        """Accuracy per category: one / two objects, size stated / open, seen / held-out."""
        out = {}
        for name in CATEGORIES:
            group = [s.correct for s in self.images if name in s.categories]
            out[name] = {
                "images": len(group),
                "accuracy": sum(group) / len(group) if group else None,
            }
        return out

    def to_dict(self) -> dict:
        seen = [s for s in self.images if not s.held_out]
        return {
            "images": len(self.images),
            "seen": {"images": len(seen), "accuracy": self.seen_accuracy},
            "held_out": {
                "images": len(self.images) - len(seen),
                "accuracy": self.held_out_accuracy,
            },
            "errors": self.error_counts,
            "categories": self.category_accuracy(),
        }


def score_folder(folder: str | os.PathLike, prompts: list[str]) -> ShapesReport:
    """Score every ``{prompt:04d}_{image:02d}.png`` in ``folder`` against ``prompts[prompt]``;
    an image whose PNG text names another prompt (an earlier run's) is an error, not a score."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    parsed = [parse_caption(p) for p in prompts]  # an unreadable prompt is an error up front
    report = ShapesReport()
    for path in sorted(folder.iterdir()):
        parsed_name = parse_output_name(path.name)
        if parsed_name is None:
            continue
        index = parsed_name[0]
        if index >= len(prompts):
            raise ValueError(f"{path.name}: prompt {index} but the prompts file has {len(prompts)}")
        try:
            picture = load_image(path)
        except BadImageError as e:
            raise ValueError(f"{path}: {e}") from None
        drawn_for = picture.info.get("prompt")
        if drawn_for is not None and drawn_for != prompts[index]:
            raise ValueError(
                f"{path} was drawn for {drawn_for!r}, not for prompt {index} of the prompts "
                f"({prompts[index]!r}): an image of another run? Score each run's own folder"
            )
        image = np.asarray(picture)
        if image.shape[:2] != (CANVAS, CANVAS):
            raise ValueError(
                f"{path}: the scorer reads {CANVAS} x {CANVAS} images, got {image.shape[1]} x {image.shape[0]}"
            )
        result = score_image(image, parsed[index])
        prompt = parsed[index]
        report.images.append(
            ScoredImage(
                path,
                index,
                prompts[index],
                prompt.held_out,
                result.correct,
                result.errors,
                len(prompt.objects),
                any(o.size for o in prompt.objects),
            )  # fmt: skip
        )
    if not report.images:
        raise ValueError(f"{folder} holds no images named like 0000_00.png")
    return report


def failure_grid(
    failures: list[ScoredImage], out: str | os.PathLike, columns: int = 4, scale: int = 3
) -> Path:
    """A PNG grid of failed images, each with its prompt and what was wrong written beneath."""
    out = Path(out)
    cell_w, text_h = 64 * scale, 36
    rows = max(1, -(-len(failures) // columns))
    grid = Image.new("RGB", (columns * cell_w, rows * (cell_w + text_h)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, item in enumerate(failures):
        x, y = (i % columns) * cell_w, (i // columns) * (cell_w + text_h)
        with Image.open(item.path) as im:
            tile = im.convert("RGB").resize((cell_w, cell_w), Image.Resampling.NEAREST)
        grid.paste(tile, (x, y))
        words = item.prompt.split()
        half = (len(words) + 1) // 2
        label = f"{' '.join(words[:half])}\n{' '.join(words[half:])}\nwrong: {', '.join(sorted(item.errors))}"
        draw.multiline_text((x + 2, y + cell_w + 1), label, fill=(0, 0, 0), spacing=1)
    with atomic_path(out) as tmp:
        grid.save(tmp, format="PNG")
    return out
