import numpy as np
import pytest
from PIL import Image, ImageFilter

from dalle.eval.shapes_scorer import analyse_image, connected_regions, score_image
from dalle.shapes.captions import INVERSE_RELATION, ObjectSpec, Prompt, scene_prompt
from dalle.shapes.render import render_scene
from dalle.shapes.spec import ALL_PAIRS, COLOURS, RELATIONS, SHAPES, Scene, ShapeObject

# Two-object layouts that satisfy each relation: (x0, y0) of A then of B, both size 12.
LAYOUTS = {
    "to the left of": ((6, 26), (40, 30)),
    "to the right of": ((40, 26), (6, 22)),
    "above": ((26, 5), (22, 40)),
    "below": ((26, 40), (30, 5)),
}


def single(colour, shape, size="small", s=None, x0=20, y0=20):
    s = s or (12 if size == "small" else 24)
    return Scene((ShapeObject(colour, shape, size, x0, y0, s),))


def pair_scene(relation, a=("red", "circle"), b=("blue", "square"), sizes=(12, 12)):
    (ax, ay), (bx, by) = LAYOUTS[relation]
    size_a, size_b = ("small" if s < 17 else "large" for s in sizes)
    return Scene(
        (
            ShapeObject(*a, size_a, ax, ay, sizes[0]),
            ShapeObject(*b, size_b, bx, by, sizes[1]),
        ),
        relation,
    )


def test_connected_regions_uses_8_neighbourhood():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # diagonal chain: one region
    mask[4, 4] = mask[4, 3] = True  # a separate region (no diagonal contact with (2, 2))
    sizes = sorted(len(r) for r in connected_regions(mask))
    assert sizes == [2, 3]


@pytest.mark.parametrize("size,s", [("small", 10), ("small", 14), ("large", 20), ("large", 26)])
def test_all_32_pairs_at_both_sizes_are_read_exactly(size, s):
    for colour, shape in ALL_PAIRS:
        scene = single(colour, shape, size, s, x0=17, y0=19)
        objects = analyse_image(render_scene(scene))
        assert [(o.colour, o.shape, o.size) for o in objects] == [(colour, shape, size)]
        assert score_image(render_scene(scene), scene_prompt(scene)).correct


@pytest.mark.parametrize("relation", RELATIONS)
def test_all_relations_in_both_wordings(relation):
    scene = pair_scene(relation, ("green", "cross"), ("white", "triangle"), sizes=(12, 22))
    image = render_scene(scene)
    prompt = scene_prompt(scene)
    assert score_image(image, prompt).correct
    swapped = Prompt(prompt.objects[::-1], INVERSE_RELATION[relation])
    assert score_image(image, swapped).correct
    assert score_image(image, prompt.canonical()).correct  # from text


def altered_prompts(prompt: Prompt):
    """Every prompt that differs from ``prompt`` in exactly one attribute."""
    for i, obj in enumerate(prompt.objects):

        def swap(new, i=i):
            objs = list(prompt.objects)
            objs[i] = new
            return Prompt(tuple(objs), prompt.relation)

        for colour in COLOURS:
            if colour != obj.colour:
                yield "colour", swap(ObjectSpec(colour, obj.shape, obj.size))
        for shape in SHAPES:
            if shape != obj.shape:
                yield "shape", swap(ObjectSpec(obj.colour, shape, obj.size))
        yield (
            "size",
            swap(ObjectSpec(obj.colour, obj.shape, "large" if obj.size == "small" else "small")),
        )
    if prompt.relation:
        for relation in RELATIONS:
            if relation != prompt.relation:
                yield "relation", Prompt(prompt.objects, relation)
        yield "count", Prompt(prompt.objects[:1])
    else:
        yield "count", Prompt(prompt.objects * 2, "to the left of")


@pytest.mark.parametrize("relation", [None, *RELATIONS])
def test_any_single_altered_attribute_is_rejected(relation):
    if relation is None:
        scene = single("purple", "triangle", "large", 22)
    else:
        scene = pair_scene(relation, ("orange", "circle"), ("cyan", "cross"), sizes=(11, 24))
    image = render_scene(scene)
    for attribute, wrong in altered_prompts(scene_prompt(scene)):
        result = score_image(image, wrong)
        assert not result.correct, (attribute, wrong.canonical())
        assert attribute in result.errors, (attribute, result.errors)


def test_a_caption_without_size_allows_either():
    image = render_scene(single("red", "square", "large", 24))
    assert score_image(image, "a red square").correct
    assert not score_image(image, "a small red square").correct


def test_blank_and_noise_are_rejected():
    blank = np.zeros((64, 64, 3), np.uint8)
    result = score_image(blank, "a red circle")
    assert not result.correct and result.errors == {"count"}
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for prompt in ("a red circle", "a red circle to the left of a blue square"):
        assert not score_image(noise, prompt).correct


def test_off_palette_colour_and_specks():
    image = render_scene(single("white", "square", "small", 12))
    grey = np.where(image > 0, 128, 0).astype(np.uint8)  # grey is 185 from white: no colour
    result = score_image(grey, "a white square")
    assert result.errors == {"colour"}
    speck = image.copy()
    speck[50:54, 50:54] = 255  # 16 pixels: under the 20-pixel floor, so not an object
    assert score_image(speck, "a small white square").correct


def test_mildly_blurred_renders_still_score():
    # generated images are soft; the scorer reads a lightly blurred render the same way
    for relation in RELATIONS:
        scene = pair_scene(relation, ("yellow", "triangle"), ("purple", "circle"), sizes=(13, 21))
        soft = Image.fromarray(render_scene(scene)).filter(ImageFilter.GaussianBlur(0.6))
        assert score_image(np.asarray(soft), scene_prompt(scene)).correct, relation


def test_unreadable_prompt_is_an_error():
    with pytest.raises(ValueError, match="cannot read"):
        score_image(np.zeros((64, 64, 3), np.uint8), "a banana")


def test_retrieval_counts_an_image_that_fits_the_prompt_as_right():
    from dalle.eval.prior_eval import depiction, render_prompts
    from dalle.shapes.captions import parse_caption

    prompts = ["a small red circle above a large blue square",
               "a large blue square below a small red circle", "a large red circle"]  # fmt: skip
    depicts = depiction(render_prompts(prompts), [parse_caption(p) for p in prompts])
    assert depicts(0, 1) and depicts(1, 0)  # the same scene said the other way round
    assert not depicts(2, 0) and not depicts(0, 2)
