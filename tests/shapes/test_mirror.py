import numpy as np
import torch

from dalle.eval.shapes_scorer import score_image
from dalle.shapes.captions import parse_caption, scene_prompt
from dalle.shapes.mirror import HORIZONTAL, VERTICAL, add_mirror_pairs, mirrored_caption
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import sample_scene


def test_mirrored_captions_by_hand():
    left = "a small yellow triangle to the left of a large white cross"
    assert mirrored_caption(left) == (
        "a small yellow triangle to the right of a large white cross",
        HORIZONTAL,
    )
    assert mirrored_caption("there is a big red box under a blue disc") == (
        "a large red square above a blue circle",
        VERTICAL,
    )
    # a triangle upside down is no shapes triangle; one object or another caption: nothing
    assert mirrored_caption("a red triangle above a blue circle") is None
    assert mirrored_caption("a red circle") is None
    assert mirrored_caption("a photo of a cat") is None


def test_the_flipped_image_shows_the_mirrored_caption():
    # the scorer checks the test's claim; training itself never calls it
    checked = 0
    for index in range(200):
        scene = sample_scene("test", index)
        caption = scene_prompt(scene).canonical()
        mirrored = mirrored_caption(caption)
        if mirrored is None:
            continue
        image = render_scene(scene)  # (H, W, 3)
        flipped = np.flip(image, axis=1 if mirrored[1] == HORIZONTAL else 0)
        assert score_image(image, caption).correct
        assert score_image(flipped, mirrored[0]).correct, (caption, mirrored)
        assert not score_image(flipped, caption).correct
        checked += 1
    assert checked > 40


def test_add_mirror_pairs_keeps_the_batch_size_and_flips_copies():
    captions = [
        "a red circle to the left of a blue square",  # mirrored
        "a red circle",
        "a green cross above a white square",  # mirrored
        "a red triangle below a blue circle",
        "a cyan circle",
        "a blue square to the right of a red circle",  # kept, not mirrored: the budget is 2
        "a small white cross",  # replaced
        "a purple circle",  # replaced
    ]
    images = torch.arange(8 * 3 * 4 * 4, dtype=torch.float32).reshape(8, 3, 4, 4)
    out, out_captions = add_mirror_pairs(images, captions, fraction=0.25)
    assert out.shape == images.shape
    assert out_captions == captions[:6] + [
        "a red circle to the right of a blue square",
        "a green cross below a white square",
    ]
    assert torch.equal(out[:6], images[:6])
    assert torch.equal(out[6], images[0].flip(-1)) and torch.equal(out[7], images[2].flip(-2))
    # nothing to mirror: the batch is returned as it was
    same, same_captions = add_mirror_pairs(images[:2], ["a red circle", "a blue square"], 0.5)
    assert same is images[:2] or torch.equal(same, images[:2])
    assert same_captions == ["a red circle", "a blue square"]
    assert parse_caption(out_captions[6]).relation == "to the right of"
