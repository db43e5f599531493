import math

import pytest
import torch

from dalle.models.clip import CLIP, CLIPConfig, contrastive_loss

TINY = CLIPConfig.from_preset("clip-tiny")


def toy_batch(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(3, TINY.num_text_tokens, (b, TINY.text_seq_len), generator=g)
    text[:, 4] = TINY.eot_id
    text[:, 5:] = 0
    return torch.rand(b, 3, TINY.image_size, TINY.image_size, generator=g), text


def test_shapes_norms_and_initial_temperature():
    torch.manual_seed(0)
    model = CLIP(TINY)
    images, text = toy_batch()
    img, txt = model.encode_image(images), model.encode_text(text)
    assert img.shape == txt.shape == (4, TINY.embed_dim)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(4))
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)  # e^10 is far above the clamp
    assert model.scale().item() == pytest.approx(100.0)
    img_f, txt_f, scale = model(images, text)
    assert torch.equal(img_f, img) and torch.equal(txt_f, txt) and scale.item() == 100.0
    assert model.similarity(images, text).shape == (4, 4)


def test_text_features_are_read_at_the_first_end_of_text():
    torch.manual_seed(0)
    model = CLIP(TINY).eval()
    _, text = toy_batch()
    changed = text.clone()
    changed[:, 5:] = 7  # after <eot>: the causal mask keeps it from the feature
    torch.testing.assert_close(model.encode_text(text), model.encode_text(changed))
    changed[:, 2] = 9  # before <eot>: it matters
    assert not torch.allclose(model.encode_text(text), model.encode_text(changed))


def test_loss_is_symmetric_and_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(3, 5, generator=g), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(3, 5, generator=g), dim=-1)
    scale = torch.tensor(2.0)
    assert contrastive_loss(a, b, scale).item() == pytest.approx(
        contrastive_loss(b, a, scale).item()
    )
    logits = 2.0 * a @ b.t()
    rows = [-(logits[i, i] - logits[i].logsumexp(0)) for i in range(3)]
    cols = [-(logits[i, i] - logits[:, i].logsumexp(0)) for i in range(3)]
    expected = (sum(rows) / 3 + sum(cols) / 3) / 2
    assert contrastive_loss(a, b, scale).item() == pytest.approx(expected.item(), rel=1e-5)


def test_matched_pairs_at_high_scale_give_near_zero_loss():
    features = torch.eye(4, 8)  # four orthogonal unit vectors, each paired with itself
    assert contrastive_loss(features, features, torch.tensor(100.0)).item() < 1e-6
    # and a mismatched pairing gives a large loss
    shuffled = features[[1, 0, 3, 2]]
    assert contrastive_loss(features, shuffled, torch.tensor(100.0)).item() > 50


def test_tiny_clip_learns_to_match_toy_pairs():
    torch.manual_seed(0)
    model = CLIP(TINY)
    # four captions, each with its own flat colour
    colours = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])
    images = colours[:, :, None, None].expand(4, 3, TINY.image_size, TINY.image_size)
    text = torch.zeros(4, TINY.text_seq_len, dtype=torch.long)
    text[:, 0] = torch.tensor([10, 20, 30, 40])
    text[:, 1] = TINY.eot_id
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = contrastive_loss(model.encode_image(images), model.encode_text(text), model.scale())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    assert torch.equal(model.similarity(images, text).argmax(1), torch.arange(4))
    assert loss.item() < math.log(4) / 10


def test_save_then_load_gives_identical_embeddings(tmp_path):
    torch.manual_seed(0)
    model = CLIP(TINY).eval()
    model.save_pretrained(tmp_path / "clip")
    loaded = CLIP.from_pretrained(tmp_path / "clip")
    images, text = toy_batch()
    assert torch.equal(model.encode_image(images), loaded.encode_image(images))
    assert torch.equal(model.encode_text(text), loaded.encode_text(text))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        CLIPConfig(image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="heads"):
        CLIPConfig(text_dim=30, text_heads=4)
