"""Captions of the shapes world: the canonical form, training paraphrases, and a parser.

Canonical: ``a [small|large] COLOUR SHAPE`` for one object, ``OBJ RELATION OBJ`` for two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dalle.shapes.sampling import HashRandom
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, SIZES, Scene, is_held_out

INVERSE_RELATION = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}
SIZE_STATED_PROB = 0.5  # each object's size word is stated with this probability
PARAPHRASE_PROB = 0.5  # the canonical form stays in half of the training captions

_PREFIXES = ("a picture of ", "an image of ", "a drawing of ", "there is ", "this shows ")
_RELATION_WORDS = {
    "to the left of": ("left of", "on the left of"),
    "to the right of": ("right of", "on the right of"),
    "above": ("over",),
    "below": ("under", "beneath"),
}
_SHAPE_WORDS = {"square": ("box",), "cross": ("plus sign",), "circle": ("disc",)}
_SIZE_WORDS = {"small": ("little", "tiny"), "large": ("big",)}


@dataclass(frozen=True)
class ObjectSpec:
    """What a caption says of one object; ``size`` None means the caption leaves it open."""

    colour: str
    shape: str
    size: str | None = None


@dataclass(frozen=True)
class Prompt:
    objects: tuple[ObjectSpec, ...]
    relation: str | None = None

    @property
    def held_out(self) -> bool:
        return any(is_held_out(o.colour, o.shape) for o in self.objects)

    def canonical(self) -> str:
        words = [_noun_phrase(self.objects[0])]
        if self.relation is not None:
            words += [self.relation, _noun_phrase(self.objects[1])]
        return " ".join(words)


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase(obj: ObjectSpec) -> str:
    words = ([obj.size] if obj.size else []) + [obj.colour, obj.shape]
    return _with_article(" ".join(words))


def scene_prompt(scene: Scene, sizes_stated: tuple[bool, ...] | None = None) -> Prompt:
    """The prompt that describes ``scene`` exactly (every size stated unless told otherwise)."""
    stated = sizes_stated or (True,) * len(scene.objects)
    objs = tuple(
        ObjectSpec(o.colour, o.shape, o.size if keep else None)
        for o, keep in zip(scene.objects, stated, strict=True)
    )
    return Prompt(objs, scene.relation)


def _random_prompt(scene: Scene, rng: HashRandom, size_words: float) -> Prompt:
    stated = tuple(rng.random() < size_words for _ in scene.objects)
    prompt = scene_prompt(scene, stated)
    if (
        prompt.relation is not None and rng.random() < 0.5
    ):  # "B inverse-relation A" is canonical too
        prompt = Prompt(prompt.objects[::-1], INVERSE_RELATION[prompt.relation])
    return prompt


def _paraphrase(prompt: Prompt, rng: HashRandom) -> str:
    def noun(obj: ObjectSpec) -> str:
        shape = rng.choice(_SHAPE_WORDS[obj.shape]) if obj.shape in _SHAPE_WORDS else obj.shape
        if rng.random() < 0.5:
            shape = obj.shape
        size = obj.size
        if size and rng.random() < 0.5:
            size = rng.choice(_SIZE_WORDS[size])
        return _with_article(" ".join(([size] if size else []) + [obj.colour, shape]))

    text = noun(prompt.objects[0])
    if prompt.relation is not None:
        relation = prompt.relation
        if rng.random() < 0.6:
            relation = rng.choice(_RELATION_WORDS[relation])
        text = f"{text} {relation} {noun(prompt.objects[1])}"
    if rng.random() < 0.6:
        text = rng.choice(_PREFIXES) + text
    return text


def sample_caption(
    scene: Scene, rng: HashRandom, size_words: float = SIZE_STATED_PROB
) -> tuple[str, str]:
    """A training caption for ``scene`` and its canonical form, as ``(text, canonical)``;
    each object's size is stated with probability ``size_words``."""
    prompt = _random_prompt(scene, rng, size_words)
    canonical = prompt.canonical()
    if rng.random() < PARAPHRASE_PROB:
        return canonical, canonical
    return _paraphrase(prompt, rng), canonical


# ---------------------------------------------------------------------------------------------
# Parsing: canonical captions, and the paraphrases above mapped back to them.

_CANONICAL_WORDS = [  # (pattern, canonical) applied in order to a lowercased caption
    (r"(?:to the |on the )?left of", "to the left of"),
    (r"(?:to the |on the )?right of", "to the right of"),
    (r"above|over", "above"),
    (r"below|under|beneath", "below"),
    (r"box", "square"),
    (r"plus sign", "cross"),
    (r"disc", "circle"),
    (r"little|tiny", "small"),
    (r"big", "large"),
]
_OBJECT = re.compile(
    rf"^an? (?:(?P<size>{'|'.join(SIZES)}) )?(?P<colour>{'|'.join(COLOURS)}) (?P<shape>{'|'.join(SHAPES)})$"
)


def _normalise(text: str) -> str:
    text = re.sub(r"\s+", " ", text.lower().strip().rstrip("."))
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    for pattern, canonical in _CANONICAL_WORDS:
        text = re.sub(rf"\b(?:{pattern})\b", canonical, text)
    return text


def _parse_object(phrase: str, caption: str) -> ObjectSpec:
    m = _OBJECT.match(phrase)
    if m is None:
        raise ValueError(f"cannot read the object {phrase!r} in caption {caption!r}")
    return ObjectSpec(m["colour"], m["shape"], m["size"])


def parse_caption(caption: str) -> Prompt:
    """Read a shapes caption (canonical or a known paraphrase) into a :class:`Prompt`."""
    text = _normalise(caption)
    for relation in RELATIONS:
        left, sep, right = text.partition(f" {relation} ")
        if sep:
            return Prompt((_parse_object(left, caption), _parse_object(right, caption)), relation)
    return Prompt((_parse_object(text, caption),))


def try_parse_caption(caption: str) -> Prompt | None:
    """``parse_caption``, or None when ``caption`` is not a shapes caption."""
    try:
        return parse_caption(caption)
    except ValueError:
        return None
