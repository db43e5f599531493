import hashlib
import itertools

import pytest
import torch

from dalle.eval.shapes_scorer import score_image
from dalle.shapes.captions import parse_caption, sample_caption
from dalle.shapes.dataset import shapes_example
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import HashRandom, sample_scene, satisfies_relation
from dalle.shapes.spec import BORDER, CANVAS, HELD_OUT_PAIRS


def pairs(scene):
    return {(o.colour, o.shape) for o in scene.objects}


def test_hash_random_is_a_pure_function_of_its_key():
    a, b, c = HashRandom("k", 1), HashRandom("k", 1), HashRandom("k", 2)
    xs = [a.randint(0, 1000) for _ in range(20)]
    assert xs == [b.randint(0, 1000) for _ in range(20)]
    assert xs != [c.randint(0, 1000) for _ in range(20)]
    assert all(0 <= x <= 1000 for x in xs)
    assert all(0.0 <= a.random() < 1.0 for _ in range(100))


def test_same_split_index_seed_same_bytes_pinned():
    # Pinned digests: the spec requires the same bytes on any machine, today and later.
    digest = hashlib.sha256()
    for split in ("train", "test"):
        for index in range(20):
            ex = shapes_example(split, index, seed=0)
            digest.update(ex.image.tobytes() + ex.text.encode() + ex.canonical.encode())
    assert digest.hexdigest() == PINNED_DIGEST


PINNED_DIGEST = "a8cd66b640c3303125d0bb0e5e09159609db137450f83953569b349b006d7255"


def test_seed_and_split_change_the_data():
    a = shapes_example("train", 3, seed=0)
    assert shapes_example("train", 3, seed=1).image.tobytes() != a.image.tobytes()
    assert shapes_example("test", 3, seed=0).image.tobytes() != a.image.tobytes()


def test_held_out_pairs_never_in_train_and_all_in_test():
    for index in range(3000):
        assert not pairs(sample_scene("train", index, 0)) & HELD_OUT_PAIRS, index
    seen_in_test = set()
    for index in range(600):
        seen_in_test |= pairs(sample_scene("test", index, 0)) & HELD_OUT_PAIRS
    assert seen_in_test == HELD_OUT_PAIRS


def test_every_colour_and_shape_still_in_train():
    found = set()
    for index in range(500):
        found |= pairs(sample_scene("train", index, 0))
    assert {c for c, _ in found} == {
        "red",
        "orange",
        "yellow",
        "green",
        "cyan",
        "blue",
        "purple",
        "white",
    }
    assert {s for _, s in found} == {"circle", "square", "triangle", "cross"}
    assert len(found) == 28


def test_scenes_obey_the_geometry_rules():
    counts = {1: 0, 2: 0}
    for index in range(1000):
        scene = sample_scene("test", index, 5)
        counts[len(scene.objects)] += 1
        for o in scene.objects:
            assert o.x0 >= BORDER and o.y0 >= BORDER
            assert o.x0 + o.size_px <= CANVAS - BORDER and o.y0 + o.size_px <= CANVAS - BORDER
            lo, hi = (10, 14) if o.size == "small" else (20, 26)
            assert lo <= o.size_px <= hi
        if scene.relation:
            assert satisfies_relation(*scene.objects, scene.relation)
            # objects never touch: the rendered image has exactly the two shapes' pixels
            img = render_scene(scene)
            assert (img.max(axis=2) > 0).sum() == sum(
                (render_scene(type(scene)((o,))).max(axis=2) > 0).sum() for o in scene.objects
            )
    assert 400 < counts[1] < 600


def test_relation_rule_hand_cases():
    from dalle.shapes.spec import ShapeObject

    a = ShapeObject("red", "square", "small", x0=2, y0=20, size_px=10)  # centre (6.5, 24.5)
    b = ShapeObject("blue", "square", "small", x0=16, y0=24, size_px=10)  # centre (20.5, 28.5)
    assert satisfies_relation(a, b, "to the left of")  # dx 14, dy 4 <= 7, gap 4
    assert satisfies_relation(b, a, "to the right of")
    assert not satisfies_relation(a, b, "to the right of")
    assert not satisfies_relation(a, b, "above")
    c = ShapeObject("blue", "square", "small", x0=16, y0=28, size_px=10)  # dy 8 > 7
    assert not satisfies_relation(a, c, "to the left of")
    d = ShapeObject("blue", "square", "small", x0=14, y0=20, size_px=10)  # gap 2 < 3 and dx 12
    assert not satisfies_relation(a, d, "to the left of")


def test_captions_canonical_in_the_mix_and_paraphrases_mean_the_same():
    canonical_count = 0
    for index in range(400):
        scene = sample_scene("train", index, 0)
        text, canonical = sample_caption(scene, HashRandom("t", index))
        canonical_count += text == canonical
        wanted = parse_caption(canonical)
        assert parse_caption(text) == wanted
        if index < 150:  # the scene, scored against either caption, is correct
            image = render_scene(scene)
            assert score_image(image, text).correct and score_image(image, canonical).correct
    assert 150 < canonical_count < 250


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="unknown shapes split 'val'"):
        sample_scene("val", 0)


def test_stream_splits_indices_across_workers_and_processes():
    import torch

    from dalle.shapes.dataset import ShapesStream

    def captions(ds, workers=0):
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        return [c for _, c in loader]

    whole = [shapes_example("train", i, 0).text for i in range(12)]
    assert captions(ShapesStream("train", length=12)) == whole
    assert sorted(captions(ShapesStream("train", length=12), workers=2)) == sorted(whole)
    halves = [captions(ShapesStream("train", length=12, rank=r, world_size=2)) for r in (0, 1)]
    assert halves[0] == whole[0::2] and halves[1] == whole[1::2]
    with pytest.raises(ValueError, match="both rank and world_size"):
        ShapesStream("train", rank=1)
    with pytest.raises(ValueError, match="outside"):
        ShapesStream("train", rank=2, world_size=2)


def test_stream_mix_options_and_exact_positions():
    from dalle.data import open_dataset
    from dalle.shapes.captions import parse_caption

    stream = open_dataset("shapes:train?two_objects=0.75&size_words=0.9", image_size=64, seed=2)
    captions = list(itertools.islice(stream.captions(), 1200))
    parsed = [parse_caption(c) for c in captions]
    two = sum(len(p.objects) == 2 for p in parsed) / len(parsed)
    sized = [o.size is not None for p in parsed for o in p.objects]
    assert abs(two - 0.75) < 0.04 and abs(sum(sized) / len(sized) - 0.9) < 0.03
    assert not any(p.held_out for p in parsed)  # still the train split
    # the mix is a fixed subsequence: reading from position 37 continues the same stream
    items = list(itertools.islice(iter(stream), 40))
    later = list(itertools.islice(iter(stream.at_position(37)), 3))
    for (a_image, a_text), (b_image, b_text) in zip(items[37:], later, strict=True):
        assert a_text == b_text and torch.equal(a_image, b_image)
    fewer = open_dataset("shapes:train?two_objects=0.2", image_size=64)
    parsed = [parse_caption(c) for c in itertools.islice(fewer.captions(), 1000)]
    assert abs(sum(len(p.objects) == 2 for p in parsed) / 1000 - 0.2) < 0.04
    # the default stream is untouched by the options' existence
    plain = open_dataset("shapes:train", image_size=64)
    assert list(itertools.islice(plain.captions(), 5)) == [
        shapes_example("train", i, 0).text for i in range(5)
    ]


@pytest.mark.parametrize("spec", [
    "shapes:train?two_objects=1.5", "shapes:train?colour=3", "shapes:train?size_words=x",
    "shapes:train?two_objects=nan", "shapes:train?two_objects=0.5&two_objects=0.6",
    "shapes:train?two_objects",
])  # fmt: skip
def test_stream_mix_options_are_checked(spec):
    from dalle.data import open_dataset

    with pytest.raises(ValueError, match="two_objects|size_words|probability"):
        open_dataset(spec, image_size=64)


def test_numpy_integers_key_the_same_examples_as_python_s():
    import numpy as np

    from dalle.shapes.dataset import shapes_example

    for index in range(20):
        a = shapes_example("train", index, 0)
        b = shapes_example("train", np.int64(index), np.int64(0))
        assert (a.text, a.canonical, a.scene) == (b.text, b.canonical, b.scene)


def test_asking_for_more_prompts_than_a_mix_holds_is_an_error_not_a_hang():
    import pytest

    from dalle.shapes.prompts import evaluation_prompts

    assert len(evaluation_prompts(192)) == 192
    with pytest.raises(ValueError, match="ask for at most 192"):
        evaluation_prompts(193)
