"""Hard negative captions for contrastive training: a caption changed in exactly one attribute.

A batch of random shapes captions rarely holds two that differ in one word only, so CLIP can
match images to captions without binding colours to shapes or reading the relation. Adding, for
each caption, a copy with one attribute changed (a colour, a shape, a stated size, or the
relation) as an extra negative for its image teaches exactly those distinctions (in the spirit of
Yuksekgonul et al. 2023, NegCLIP). A changed colour or shape never names a held-out pair (until
2026-12-04 about 7 % of the negatives did: the bundled CLIP was trained so, docs/clip.md). One such negative per caption leaves the relation rare among
them (a quarter of the two-object ones), and a text encoder can then still treat a caption as a
bag of words; ``relation_negative`` adds the negatives that only word order and the relation
word tell apart: the other relations, and the two objects swapped. Only captions are used:
never the scorer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dalle.shapes.captions import Prompt, try_parse_caption
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, SIZES, is_held_out


def _other(values: tuple[str, ...], current: str, rng: np.random.Generator, allowed=None) -> str:
    """Another of ``values`` than ``current`` (one ``allowed(v)`` accepts, if given)."""
    return str(rng.choice([v for v in values if v != current and (allowed is None or allowed(v))]))


def hard_negative(caption: str, rng: np.random.Generator) -> str | None:
    """The canonical caption of ``caption`` with one attribute changed; None if it is not a
    shapes caption."""
    prompt = try_parse_caption(caption)
    if prompt is None:
        return None
    changes = ["colour", "shape", "size"] + (["relation"] if prompt.relation else [])
    change = changes[int(rng.integers(len(changes)))]
    if change == "relation":
        return Prompt(prompt.objects, _other(RELATIONS, prompt.relation, rng)).canonical()
    objects = list(prompt.objects)
    i = int(rng.integers(len(objects)))
    obj = objects[i]

    # a changed colour or shape never makes a held-out pair: those stay out of training, as text too
    def colour_ok(c: str) -> bool:
        return not is_held_out(c, obj.shape)

    if change == "shape":
        obj = dataclasses.replace(
            obj, shape=_other(SHAPES, obj.shape, rng, lambda s: not is_held_out(obj.colour, s))
        )
    elif change == "size" and obj.size is not None:  # a stated size flips
        obj = dataclasses.replace(obj, size=_other(tuple(SIZES), obj.size, rng))
    else:  # the colour; also for an unstated size (stating one would still allow the image)
        obj = dataclasses.replace(obj, colour=_other(tuple(COLOURS), obj.colour, rng, colour_ok))
    objects[i] = obj
    return Prompt(tuple(objects), prompt.relation).canonical()


def relation_negative(caption: str, rng: np.random.Generator) -> str | None:
    """For a two-object caption: the same objects under another relation, or (half of the time)
    the two objects swapped under the same relation; None for other captions. Either is false
    of the image unless the two objects read the same, when the relation changes instead."""
    prompt = try_parse_caption(caption)
    if prompt is None or prompt.relation is None:
        return None
    swapped = Prompt(prompt.objects[::-1], prompt.relation)
    if rng.random() < 0.5 and swapped.objects != prompt.objects:
        return swapped.canonical()
    return Prompt(prompt.objects, _other(RELATIONS, prompt.relation, rng)).canonical()
