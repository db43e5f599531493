"""Issue 16's measures of the edits, on scenes the shapes world renders exactly.

For each canonical prompt (seen colour/shape pairs, every size stated; a quarter one-object) a
scene is drawn that realises it and rendered; then:

- variations: does each variation still show the source's caption (the shapes scorer), and does
  it differ from the source by more than noise (PSNR under 35 dB)?
- text diffs: the caption with the first object's colour changed to another seen one, as
  ``--from`` (the source caption) and ``--to`` (the changed one): is the edit read as the target?
- inpainting (two-object prompts): the mask is one object's box plus a 2 px margin, the prompt
  the scene with that object's colour changed: is the result read as the new caption, and is
  every pixel outside the mask within 2 levels of the source?
- interpolation: prompt k's scene to prompt k+1's: are the first and the last frames read as
  their sources' captions?

Each kind of edit draws its changes from a stream of its own (keyed by the seed), so a figure does
not depend on which other kinds ran with it (``--edits``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from dalle.eval.shapes_scorer import score_image
from dalle.pipelines import editing
from dalle.shapes.captions import ObjectSpec, Prompt
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import HashRandom, scene_for_prompt
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, is_held_out

PSNR_COPY_DB = 35.0  # a variation closer than this to its source counts as a copy
MASK_MARGIN = 2  # pixels around the replaced object's box
KEEP_TOLERANCE = 2  # levels a pixel outside the mask may move
EDITS = ("variations", "text_diff", "inpaint", "interpolate")


def check_edits(edits: tuple[str, ...]) -> tuple[str, ...]:
    """``edits`` if it is a non-empty subset of ``EDITS``, else a ValueError naming them."""
    if not edits or any(e not in EDITS for e in edits):
        raise ValueError(f"--edits takes a comma-separated subset of {', '.join(EDITS)}")
    return edits


def _seen_object(rng: HashRandom) -> ObjectSpec:
    while True:
        colour, shape = rng.choice(tuple(COLOURS)), rng.choice(SHAPES)
        if not is_held_out(colour, shape):
            return ObjectSpec(colour, shape, rng.choice(("small", "large")))


def editing_prompts(n: int, seed: int = 0) -> list[Prompt]:
    """``n`` distinct prompts, every size stated, only seen colour/shape pairs; prompt ``i`` has
    one object when ``i % 4 == 0``, two otherwise."""
    rng = HashRandom("shapes-editing-prompts", seed)
    prompts: list[Prompt] = []
    while len(prompts) < n:
        if len(prompts) % 4 == 0:
            prompt = Prompt((_seen_object(rng),))
        else:
            a, b = _seen_object(rng), _seen_object(rng)
            if (a.colour, a.shape) == (b.colour, b.shape):
                continue
            prompt = Prompt((a, b), rng.choice(RELATIONS))
        if prompt not in prompts:
            prompts.append(prompt)
    return prompts


def editing_sources(n: int, seed: int = 0) -> tuple[list[Prompt], list[Image.Image]]:
    """``editing_prompts(n, seed)`` and the scene rendered for each (what every edit starts from)."""
    prompts = editing_prompts(n, seed)
    scenes = [render_scene(scene_for_prompt(p, "editing", seed, i)) for i, p in enumerate(prompts)]
    return prompts, [Image.fromarray(scene) for scene in scenes]


def recoloured(prompt: Prompt, index: int, rng: HashRandom) -> Prompt:
    """``prompt`` with object ``index`` in another colour that is seen with its shape and
    differs from every colour in the prompt."""
    obj = prompt.objects[index]
    taken = {o.colour for o in prompt.objects}
    colours = [c for c in COLOURS if c not in taken and not is_held_out(c, obj.shape)]
    objects = list(prompt.objects)
    objects[index] = replace(obj, colour=rng.choice(colours))
    return Prompt(tuple(objects), prompt.relation)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def reads_as(image: Image.Image, prompt: Prompt) -> bool:
    """Whether the shapes scorer reads ``image`` as ``prompt``."""
    return score_image(np.asarray(image.convert("RGB")), prompt).correct


@dataclass
class Rate:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(hit)
        self.total += 1

    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


def editing_report(
    pipe,
    n_prompts: int = 64,
    seed: int = 0,
    num_variations: int = 2,
    amount: float = 0.5,
    dalle_pipe=None,
    bf16: bool | None = None,
    edits: tuple[str, ...] = EDITS,
    on_prompt: Callable[[str], None] | None = None,
    inpaint_method: str | None = None,
    eta: float = editing.VARIATION_ETA,
    eta_from: float = editing.VARIATION_ETA_FROM,
    fresh_guidance: float = editing.VARIATION_FRESH_GUIDANCE,
    diff_captions: bool = editing.TEXT_DIFF_CAPTIONS,
    steps: int = editing.EditSettings.steps,
    guidance: float = editing.EditSettings.guidance,
    candidates: int | None = None,
) -> dict:
    """The rates above for the unCLIP pipeline ``pipe`` (and inpainting for the DALL·E
    pipeline ``dalle_pipe`` too, when given), over ``editing_prompts(n_prompts, seed)``;
    ``inpaint_method`` as in ``editing.InpaintSettings`` (None: the decoder's own); ``eta``: the
    variations' DDIM eta, applied from ``eta_from`` of the schedule down with the decoder guided
    by ``fresh_guidance`` there; ``diff_captions``:
    whether the text diffs' decoder reads the captions (``editing.text_diff``); ``steps`` and
    ``guidance``: the DDIM steps and decoder guidance of every inversion and decoding
    (variations, text diffs, interpolations; ``editing.EditSettings``); ``candidates``: the
    variations drawn per scene, of which CLIP keeps the ``num_variations`` closest to it
    (None: ``editing.variations``' default)."""
    from dalle.utils.device import use_bf16

    check_edits(edits)
    bf16 = use_bf16(bf16, pipe.device)
    prompts, sources = editing_sources(n_prompts, seed)
    inpainting = editing.InpaintSettings(method=inpaint_method)
    # text diffs and interpolations decode at eta 0
    plain = editing.EditSettings(steps=steps, guidance=guidance)
    rates = {k: Rate() for k in ("variation_keeps_caption", "variation_not_copy", "text_diff",
                                 "inpaint_unclip", "inpaint_unclip_kept", "inpaint_dalle",
                                 "inpaint_dalle_kept", "interpolation_ends")}  # fmt: skip

    if "variations" in edits:
        settings = editing.EditSettings(steps=steps, eta=eta, guidance=guidance, eta_from=eta_from,
                                        fresh_guidance=fresh_guidance)  # fmt: skip
        for start in range(0, len(prompts), 16):
            drawn = editing.variations(pipe, sources[start : start + 16], num_variations, seed,
                                       settings, bf16, candidates=candidates)  # fmt: skip
            for k, images in enumerate(drawn):
                source = np.asarray(sources[start + k])
                for image in images:
                    rates["variation_keeps_caption"].add(reads_as(image, prompts[start + k]))
                    rates["variation_not_copy"].add(psnr(np.asarray(image), source) < PSNR_COPY_DB)
            if on_prompt:
                on_prompt("variations")
    if "text_diff" in edits:
        rng = HashRandom("shapes-editing-changes", seed)
        for prompt, source in zip(prompts, sources):
            target = recoloured(prompt, 0, rng)
            (image,) = editing.text_diff(pipe, source, prompt.canonical(), target.canonical(),
                                         amount, 1, seed, plain, bf16=bf16,
                                         captions=diff_captions)  # fmt: skip
            rates["text_diff"].add(reads_as(image, target))
            if on_prompt:
                on_prompt("text_diff")
    if "inpaint" in edits:
        rng = HashRandom("shapes-editing-inpaint-changes", seed)
        pipes = [("unclip", pipe)] + ([("dalle", dalle_pipe)] if dalle_pipe is not None else [])
        for i, (prompt, source) in enumerate(zip(prompts, sources)):
            if prompt.relation is None:
                continue
            index = i % 2
            scene = scene_for_prompt(prompt, "editing", seed, i)
            obj = scene.objects[index]
            region = torch.zeros(source.size[1], source.size[0], dtype=torch.bool)
            y0, x0 = max(obj.y0 - MASK_MARGIN, 0), max(obj.x0 - MASK_MARGIN, 0)
            region[y0 : obj.y0 + obj.size_px + MASK_MARGIN,
                   x0 : obj.x0 + obj.size_px + MASK_MARGIN] = True  # fmt: skip
            target = recoloured(prompt, index, rng)
            for name, p in pipes:
                (image,) = editing.inpaint(p, source, region, target.canonical(), 1, seed,
                                           inpainting if name == "unclip" else None,
                                           bf16=bf16)  # fmt: skip
                out, src = np.asarray(image, np.int16), np.asarray(source, np.int16)
                outside = ~region.numpy()
                rates[f"inpaint_{name}"].add(reads_as(image, target))
                rates[f"inpaint_{name}_kept"].add(
                    bool(np.abs(out - src)[outside].max(initial=0) <= KEEP_TOLERANCE)
                )
            if on_prompt:
                on_prompt("inpaint")
    if "interpolate" in edits:
        for i in range(0, len(prompts) - 1, 2):
            frames = editing.interpolate(pipe, sources[i], sources[i + 1], 5, seed,
                                         settings=plain, bf16=bf16)  # fmt: skip
            rates["interpolation_ends"].add(reads_as(frames[0], prompts[i]))
            rates["interpolation_ends"].add(reads_as(frames[-1], prompts[i + 1]))
            if on_prompt:
                on_prompt("interpolate")
    report = {k: r.value() for k, r in rates.items()}
    report["counts"] = {k: r.total for k, r in rates.items()}
    report.update(n_prompts=n_prompts, seed=seed, num_variations=num_variations, amount=amount,
                  candidates=editing.variation_candidates(num_variations, candidates))  # fmt: skip
    report.update(eta=eta, eta_from=eta_from, fresh_guidance=fresh_guidance, diff_captions=diff_captions, steps=steps,
                  guidance=guidance)  # fmt: skip
    if "inpaint" in edits:
        report["inpaint_method"] = inpainting.resolved_method(pipe)
    return report
