import math

import pytest
import torch
import torch.nn.functional as F

from dalle.models.transformer import DalleConfig, DalleTransformer, dalle_loss

TINY = DalleConfig.from_preset("dalle-tiny")  # T = 8, 8 x 8 image grid, 32 image tokens


def batch(config=TINY, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(3, config.num_text_tokens, (b, config.text_seq_len), generator=g)
    text[:, 5] = 1  # <eot>
    text[:, 6:] = config.pad_id
    image = torch.randint(0, config.num_image_tokens, (b, config.image_seq_len), generator=g)
    return text, image


def test_logit_shapes_and_gradients():
    torch.manual_seed(0)
    model = DalleTransformer(TINY)
    text, image = batch()
    text_logits, image_logits = model(text, image[:, :-1])
    assert text_logits.shape == (3, TINY.text_seq_len - 1, TINY.num_text_tokens + TINY.text_seq_len)
    assert image_logits.shape == (3, TINY.image_seq_len, TINY.num_image_tokens)
    dalle_loss(model, text, image)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # every block and embedding gets gradient (the last text position's pad embedding is
    # input-only, but it is still read)
    assert model.row_emb.weight.grad.abs().sum() > 0 and model.col_emb.weight.grad.abs().sum() > 0


def test_each_text_position_has_its_own_pad_token():
    model = DalleTransformer(TINY)
    text, _ = batch(b=1)
    targets = model.text_targets(text)[0]
    pads = [TINY.num_text_tokens + p for p in range(6, TINY.text_seq_len)]
    assert targets[6:].tolist() == pads and torch.equal(targets[:6], text[0, :6])


def test_loss_weights_text_one_eighth_image_seven_eighths():
    torch.manual_seed(0)
    model = DalleTransformer(TINY)
    text, image = batch()
    out = dalle_loss(model, text, image)
    text_logits, image_logits = model(text, image[:, :-1])
    text_ce = F.cross_entropy(text_logits.flatten(0, 1), model.text_targets(text)[:, 1:].flatten())
    image_ce = F.cross_entropy(image_logits.flatten(0, 1), image.flatten())
    assert out["text_loss"].item() == pytest.approx(text_ce.item(), rel=1e-6)
    assert out["image_loss"].item() == pytest.approx(image_ce.item(), rel=1e-6)
    assert out["loss"].item() == pytest.approx((text_ce + 7 * image_ce).item() / 8, rel=1e-6)
    # at initialisation the image loss is close to log(vocabulary)
    assert abs(out["image_loss"].item() - math.log(TINY.num_image_tokens)) < 0.3


@pytest.mark.parametrize("attention,full_every", [("sparse", 0), ("full", 0), ("sparse", 2)])
def test_cached_logits_equal_uncached(attention, full_every):
    torch.manual_seed(0)
    config = TINY.replace(attention=attention, full_every=full_every, num_layers=4)
    model = DalleTransformer(config).eval()
    text, image = batch()
    _, full = model(text, image)  # (B, N, V): predictions of image tokens 0 .. N - 1
    cache = model.new_cache(3)
    _, first = model(text, image[:, :5], cache)  # the text and a 5-token prefix at once
    steps = [first]
    for k in range(5, TINY.image_seq_len):
        steps.append(model(None, image[:, k : k + 1], cache)[1])
    cached = torch.cat(steps, dim=1)
    assert cached.shape == full.shape
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
    assert cache.length == TINY.total_seq_len


def test_sparse_layers_use_their_masks():
    """Changing an image token only changes later predictions the masks let it reach."""
    torch.manual_seed(0)
    config = TINY.replace(num_layers=1)  # a single conv layer (the last layer is conv)
    model = DalleTransformer(config).eval()
    text, image = batch(config, b=1)
    _, before = model(text, image[:, :-1])
    changed = image.clone()
    changed[0, 0] = (changed[0, 0] + 1) % config.num_image_tokens
    _, after = model(text, changed[:, :-1])
    moved = (after - before).abs().amax(-1)[0] > 1e-6  # prediction p reads input image p - 1
    reach = {p - 1 for p in range(1, config.image_seq_len) if moved[p]}
    grid, half = config.image_grid, config.conv_kernel // 2
    expected = {k for k in range(config.image_seq_len - 1) if 0 <= k <= half * grid + half}
    expected = {k for k in expected if any(abs(k - dr * grid) <= half for dr in range(half + 1))}
    assert reach == expected


def test_save_then_load_gives_identical_logits(tmp_path):
    torch.manual_seed(0)
    model = DalleTransformer(TINY).eval()
    model.save_pretrained(tmp_path / "transformer")
    loaded = DalleTransformer.from_pretrained(tmp_path / "transformer")
    text, image = batch()
    for a, b in zip(model(text, image), loaded(text, image)):
        assert torch.equal(a, b)


def test_paper_preset_has_twelve_billion_parameters():
    config = DalleConfig.from_preset("dalle-paper-12b")
    assert (config.num_layers, config.num_heads, config.head_dim, config.dim) == (64, 62, 64, 3968)
    assert (config.text_seq_len, config.image_seq_len) == (256, 1024)
    assert (config.num_text_tokens, config.num_image_tokens) == (16384, 8192)
    with torch.device("meta"):
        model = DalleTransformer(config)
    # the transformer's 12.0 B, counted as in scaling-law work: the blocks, without embeddings
    assert abs(model.num_parameters(embeddings=False) / 12.0e9 - 1) < 0.01
    # embeddings and output heads add ~0.2 B
    assert 12.2e9 < model.num_parameters() < 12.35e9
    assert model.kinds.count("column") == 16 and model.kinds[-1] == "conv"


def test_bad_inputs_are_refused():
    model = DalleTransformer(TINY)
    text, image = batch()
    with pytest.raises(ValueError, match="whole"):
        model(text[:, :4], image)
    with pytest.raises(ValueError, match="at most"):
        model(text, torch.zeros(3, TINY.image_seq_len + 1, dtype=torch.long))
    cache = model.new_cache(3)
    model(text, None, cache)
    with pytest.raises(ValueError, match="already holds the text"):
        model(text, image[:, :1], cache)


@pytest.mark.parametrize("attention", ["sparse", "full"])
def test_a_deeper_transformer_grown_from_a_shallow_one_computes_the_same(attention):
    torch.manual_seed(0)
    small = DalleTransformer(TINY.replace(num_layers=3, attention=attention)).eval()
    grown = DalleTransformer.grown_from(small, small.config.replace(num_layers=6)).eval()
    assert len(grown.blocks) == 6
    if attention == "sparse":  # the convolutional layer stays last, the others keep places
        assert grown.kinds[:2] == small.kinds[:2] and grown.kinds[-1] == small.kinds[-1] == "conv"
    text, image = batch()
    with torch.no_grad():
        for a, b in zip(small(text, image[:, :-1]), grown(text, image[:, :-1])):
            torch.testing.assert_close(b, a)
    # the new layers learn: each gets gradient once the loss flows
    dalle_loss(grown, text, image)["loss"].backward()
    assert grown.blocks[3].attn.out.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="grows only in depth.*dim 32 -> 64"):
        DalleTransformer.grown_from(small, small.config.replace(num_layers=6, dim=64))
    with pytest.raises(ValueError, match="num_layers 3 -> 2"):
        DalleTransformer.grown_from(small, small.config.replace(num_layers=2))


def test_full_layers_grown_between_a_sparse_models_layers_compute_the_same():
    """Growing with ``full_every``: the old layers keep their kinds and order, the new full
    layers between them start as the identity, so the logits are unchanged at first."""
    torch.manual_seed(0)
    small = DalleTransformer(TINY.replace(num_layers=4)).eval()
    assert small.kinds == ["row", "column", "row", "conv"]
    grown = DalleTransformer.grown_from(
        small, small.config.replace(num_layers=6, full_every=3)
    ).eval()
    assert grown.kinds == ["row", "column", "full", "row", "row", "conv"]
    # the bundled layers went to 0, 1, 3, 5: their weights are there
    torch.testing.assert_close(grown.blocks[3].attn.out.weight, small.blocks[2].attn.out.weight)
    torch.testing.assert_close(grown.blocks[5].attn.out.weight, small.blocks[3].attn.out.weight)
    text, image = batch()
    with torch.no_grad():
        for a, b in zip(small(text, image[:, :-1]), grown(text, image[:, :-1])):
            torch.testing.assert_close(b, a)
    dalle_loss(grown, text, image)["loss"].backward()
    assert grown.blocks[2].attn.out.weight.grad.abs().sum() > 0  # the full layer learns
    with pytest.raises(ValueError, match="grows only in depth"):
        DalleTransformer.grown_from(small, small.config.replace(num_layers=6, attention="full"))
