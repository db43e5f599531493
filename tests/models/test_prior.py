"""The unCLIP diffusion prior: its sequence, masks, guidance null and standardisation."""

import math

import torch
import torch.nn.functional as F

from dalle.models.layers import timestep_embedding
from dalle.models.prior import DiffusionPrior, PriorConfig

TINY = PriorConfig.from_preset("prior-tiny")


def inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = TINY
    x = torch.randn(b, c.embed_dim, generator=g)
    t = torch.randint(0, c.num_timesteps, (b,), generator=g)
    tokens = torch.randn(b, c.text_seq_len, c.text_dim, generator=g)
    text = F.normalize(torch.randn(b, c.embed_dim, generator=g), dim=-1)
    mask = torch.arange(c.text_seq_len)[None] <= torch.tensor([3, 7, 19])[:b, None]
    return x, t, tokens, text, mask


def test_timestep_embedding_is_the_sinusoid():
    emb = timestep_embedding(torch.tensor([0, 1, 500]), 8)
    assert emb.shape == (3, 8)
    assert torch.equal(emb[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]))
    freqs = [10000 ** (-i / 4) for i in range(4)]
    want = [math.cos(f) for f in freqs] + [math.sin(f) for f in freqs]
    torch.testing.assert_close(emb[1], torch.tensor(want))
    assert timestep_embedding(torch.tensor([3]), 7).shape == (1, 7)  # odd widths padded


def test_prior_reads_the_caption_up_to_its_end_and_the_noised_embedding():
    torch.manual_seed(0)
    prior = DiffusionPrior(TINY).eval()
    x, t, tokens, text, mask = inputs()
    out = prior(x, t, tokens, text, mask)
    assert out.shape == (3, TINY.embed_dim)
    padded = tokens.clone()
    padded[~mask] = 100.0  # what lies after a caption's end is never read
    torch.testing.assert_close(prior(x, t, padded, text, mask), out)
    changed = tokens.clone()
    changed[0, 0] += 1.0  # the caption itself is
    assert not torch.allclose(prior(x, t, changed, text, mask)[0], out[0])
    assert torch.allclose(prior(x, t, changed, text, mask)[1:], out[1:])  # rows are independent
    assert not torch.allclose(prior(x + 0.1, t, tokens, text, mask), out)
    assert not torch.allclose(prior(x, (t + 7) % TINY.num_timesteps, tokens, text, mask), out)


def test_dropped_captions_read_the_learned_null_caption():
    torch.manual_seed(0)
    prior = DiffusionPrior(TINY).eval()
    x, t, tokens, text, mask = inputs()
    keep = torch.tensor([True, False, False])
    a = prior(x, t, tokens, text, mask, keep)
    b = prior(x, t, torch.randn_like(tokens), -text, ~mask, keep)
    torch.testing.assert_close(a[1:], b[1:])  # the text of a dropped row does not matter
    assert not torch.allclose(a[0], b[0])
    torch.testing.assert_close(a[0], prior(x, t, tokens, text, mask)[0])


def test_standardisation_round_trips_and_travels_with_the_weights(tmp_path):
    torch.manual_seed(0)
    prior = DiffusionPrior(TINY).eval()
    embeds = F.normalize(torch.randn(500, TINY.embed_dim) * 0.1 + 1.0, dim=-1)
    prior.set_statistics(embeds)
    z = prior.standardise(embeds)
    torch.testing.assert_close(z.mean(0), torch.zeros(TINY.embed_dim), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(TINY.embed_dim), atol=1e-4, rtol=0)
    torch.testing.assert_close(prior.unstandardise(z), embeds, atol=1e-5, rtol=0)
    prior.save_pretrained(tmp_path / "prior")
    loaded = DiffusionPrior.from_pretrained(tmp_path / "prior")
    assert torch.equal(loaded.embed_mean, prior.embed_mean)
    x, t, tokens, text, mask = inputs()
    assert torch.equal(loaded(x, t, tokens, text, mask), prior(x, t, tokens, text, mask))
