import numpy as np

from dalle.shapes.captions import parse_caption
from dalle.shapes.negatives import hard_negative, relation_negative


def differences(a: str, b: str) -> int:
    pa, pb = parse_caption(a), parse_caption(b)
    count = int(pa.relation != pb.relation)
    for x, y in zip(pa.objects, pb.objects):
        count += (x.colour != y.colour) + (x.shape != y.shape) + (x.size != y.size)
    return count


def test_a_negative_differs_in_exactly_one_attribute():
    rng = np.random.default_rng(0)
    captions = [
        "a red circle", "a large blue square", "a picture of a big green box under a tiny red disc",
        "a small yellow triangle to the left of a large white cross",
    ]  # fmt: skip
    for caption in captions:
        for _ in range(20):
            negative = hard_negative(caption, rng)
            assert negative is not None and negative == parse_caption(negative).canonical()
            assert differences(caption, negative) == 1, (caption, negative)


def test_other_captions_get_none():
    assert hard_negative("a photo of a cat", np.random.default_rng(0)) is None
    assert relation_negative("a photo of a cat", np.random.default_rng(0)) is None
    assert relation_negative("a red circle", np.random.default_rng(0)) is None


def test_relation_negatives_change_the_relation_or_swap_the_objects():
    rng = np.random.default_rng(0)
    caption = "a small yellow triangle to the left of a large white cross"
    seen = {relation_negative(caption, rng) for _ in range(60)}
    assert seen == {
        "a large white cross to the left of a small yellow triangle",
        "a small yellow triangle to the right of a large white cross",
        "a small yellow triangle above a large white cross",
        "a small yellow triangle below a large white cross",
    }
    # two objects that read the same cannot be told apart by swapping: the relation changes
    same = "a red circle above a red circle"
    for _ in range(20):
        negative = parse_caption(relation_negative(same, rng))
        assert negative.relation != "above" and negative.objects == parse_caption(same).objects


def test_hard_negatives_only_add_image_to_text_columns():
    import torch

    from dalle.models.clip import contrastive_loss

    feats = torch.eye(3, 6)
    far = -torch.eye(3, 6)  # negatives pointing away: no change at high scale
    base = contrastive_loss(feats, feats, torch.tensor(50.0)).item()
    assert contrastive_loss(feats, feats, torch.tensor(50.0), far).item() == base
    close = torch.eye(3, 6)  # negatives identical to the positives: each image is torn in two
    torn = contrastive_loss(feats, feats, torch.tensor(50.0), close).item()
    assert abs(torn - np.log(2) / 2) < 1e-4  # log 2 on the image side, 0 on the text side


def test_negatives_of_training_captions_never_name_a_held_out_pair():
    from dalle.shapes.dataset import shapes_example

    rng = np.random.default_rng(0)
    named = 0
    for index in range(600):
        caption = shapes_example("train", index, seed=3).text
        for negative in (hard_negative(caption, rng), relation_negative(caption, rng)):
            if negative is not None:
                named += 1
                assert not parse_caption(negative).held_out, (caption, negative)
    assert named > 600  # a negative for every caption, a relation one for the two-object ones
