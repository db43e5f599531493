"""Canonical evaluation prompts for the shapes world: one- and two-object, a quarter held-out.

The set is a deterministic function of its size and seed, so figures measured on it can be
reproduced anywhere. Two-object prompts state no sizes (either size is correct) and one-object
prompts state a size half of the time.
"""

from __future__ import annotations

from dalle.shapes.captions import ObjectSpec, Prompt
from dalle.shapes.sampling import HashRandom
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, SIZES, is_held_out

SAMPLE_PROMPTS = (
    "a red circle",
    "a large blue square",
    "a small yellow triangle to the left of a large white cross",
    "a green circle above an orange square",
)


def _object(rng: HashRandom, held_out: bool | None, size: bool) -> ObjectSpec:
    while True:
        colour, shape = rng.choice(tuple(COLOURS)), rng.choice(SHAPES)
        if held_out is None or is_held_out(colour, shape) == held_out:
            return ObjectSpec(colour, shape, rng.choice(tuple(SIZES)) if size else None)


def evaluation_prompts(n: int = 128, seed: int = 0) -> list[str]:
    """``n`` distinct canonical prompts: half one-object, half two-object; every fourth held-out."""
    prompts: list[str] = []
    rng = HashRandom("shapes-eval-prompts", seed)
    while len(prompts) < n:
        i = len(prompts)
        held = i % 4 == 3
        if i % 2 == 0:
            prompt = Prompt((_object(rng, held, size=rng.random() < 0.5),))
        else:
            pair = [_object(rng, held, size=False), _object(rng, False, size=False)]
            if rng.random() < 0.5:  # the held-out object goes first or second
                pair.reverse()
            prompt = Prompt(tuple(pair), rng.choice(RELATIONS))
        text = prompt.canonical()
        if text not in prompts:
            prompts.append(text)
    return prompts
