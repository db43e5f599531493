import math

import pytest
import torch

from dalle.models.transformer import DalleConfig, DalleTransformer
from dalle.pipelines.sampling import (
    SamplingSettings,
    filter_logits,
    guide,
    pick_tokens,
    sample_image_tokens,
)

TINY = DalleConfig.from_preset("dalle-tiny")
NEG = float("-inf")


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0]])
    assert filter_logits(logits, 2, None).tolist() == [[NEG, 4.0, NEG, 3.0]]
    assert torch.equal(filter_logits(logits, 0, None), logits)  # 0 keeps all
    assert torch.equal(filter_logits(logits, 10, None), logits)


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.1, 0.3, 0.1]])
    logits = probs.log()
    # sorted 0.5, 0.3, 0.1, 0.1: 0.5 < 0.7, 0.5 + 0.3 >= 0.7, so the nucleus is {0, 2}
    kept = filter_logits(logits, None, 0.7).isfinite()
    assert kept.tolist() == [[True, False, True, False]]
    assert filter_logits(logits, None, 0.4).isfinite().tolist() == [[True, False, False, False]]
    assert filter_logits(logits, None, 1.0).isfinite().all()


def test_guidance_formula():
    cond, uncond = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    out = guide(torch.cat([cond, uncond]), 3.0)
    assert out.tolist() == [[1.0 + 3.0 * 1.0, 1.0 + 3.0 * -1.0]]
    assert torch.equal(guide(torch.cat([cond, uncond]), 1.0), cond)


def test_temperature_zero_is_argmax_and_sampling_follows_softmax():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # probabilities 1/4, 3/4
    assert pick_tokens(logits, SamplingSettings(temperature=0), gens(0)).item() == 1
    g = gens(123)
    draws = [pick_tokens(logits, SamplingSettings(), g).item() for _ in range(4000)]
    assert abs(sum(draws) / 4000 - 0.75) < 0.03
    # temperature 2 flattens to sqrt weights: 1 : sqrt(3)
    g = gens(7)
    draws = [pick_tokens(logits, SamplingSettings(temperature=2.0), g).item() for _ in range(4000)]
    assert abs(sum(draws) / 4000 - math.sqrt(3) / (1 + math.sqrt(3))) < 0.03
    # top-k 1 is greedy whatever the noise
    assert all(pick_tokens(logits, SamplingSettings(top_k=1), g).item() == 1 for _ in range(50))


def model_and_text(b=3):
    torch.manual_seed(0)
    model = DalleTransformer(TINY).eval()
    text = torch.randint(3, TINY.num_text_tokens, (b, TINY.text_seq_len))
    return model, text


def test_sampling_is_deterministic_per_seed_and_independent_of_the_batch():
    model, text = model_and_text()
    settings = SamplingSettings(top_k=8)
    a = sample_image_tokens(model, text, gens(1, 2, 3), settings)
    b = sample_image_tokens(model, text, gens(1, 2, 3), settings)
    assert torch.equal(a, b) and a.shape == (3, TINY.image_seq_len)
    alone = sample_image_tokens(model, text[1:2], gens(2), settings)
    assert torch.equal(alone[0], a[1])  # same sample with or without batch neighbours
    other = sample_image_tokens(model, text, gens(4, 5, 6), settings)
    assert not torch.equal(a, other)
    assert a.min() >= 0 and a.max() < TINY.num_image_tokens


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_cache_and_no_cache_sample_the_same_tokens(guidance):
    model, text = model_and_text(2)
    null = torch.full((TINY.text_seq_len,), TINY.pad_id)
    null[0] = 1
    settings = SamplingSettings(guidance=guidance)
    a = sample_image_tokens(model, text, gens(0, 1), settings, null_text=null)
    b = sample_image_tokens(model, text, gens(0, 1), settings, null_text=null, use_cache=False)
    assert torch.equal(a, b)


def test_guidance_needs_the_empty_caption_and_changes_samples():
    model, text = model_and_text(2)
    with pytest.raises(ValueError, match="null_text"):
        sample_image_tokens(model, text, gens(0, 1), SamplingSettings(guidance=2.0))
    null = torch.full((TINY.text_seq_len,), TINY.pad_id)
    plain = sample_image_tokens(model, text, gens(0, 1))
    guided = sample_image_tokens(model, text, gens(0, 1), SamplingSettings(guidance=5.0), null)
    assert not torch.equal(plain, guided)


def test_known_tokens_are_kept_and_the_rest_sampled_in_raster_order():
    model, text = model_and_text(2)
    n = TINY.image_seq_len
    known = torch.randint(0, TINY.num_image_tokens, (2, n))
    prefix = torch.arange(n) < 3 * TINY.image_grid  # completion: the first rows kept
    out = sample_image_tokens(model, text, gens(0, 1), known=known, keep=prefix)
    assert torch.equal(out[:, prefix], known[:, prefix]) and not torch.equal(out, known)
    scattered = torch.rand(n, generator=torch.Generator().manual_seed(3)) < 0.5
    scattered[0] = False
    out = sample_image_tokens(model, text, gens(0, 1), known=known, keep=scattered)
    assert torch.equal(out[:, scattered], known[:, scattered])
    again = sample_image_tokens(model, text, gens(0, 1), known=known, keep=scattered,
                                use_cache=False)  # fmt: skip
    assert torch.equal(out, again)
    # tokens kept after the last sampled one are never seen by it: the first half sampled with
    # the second half kept is a plain sample's first half
    tail = torch.arange(n) >= n // 2
    half = sample_image_tokens(model, text, gens(0, 1), known=known, keep=tail)
    plain = sample_image_tokens(model, text, gens(0, 1))
    assert torch.equal(half[:, : n // 2], plain[:, : n // 2])
    with pytest.raises(ValueError, match="nothing to sample"):
        sample_image_tokens(model, text, gens(0, 1), known=known, keep=torch.ones(n) > 0)
    with pytest.raises(ValueError, match="neither"):
        sample_image_tokens(model, text, gens(0, 1), known=known)


def test_settings_are_validated():
    for bad in (dict(temperature=-1), dict(top_k=-1), dict(top_p=0.0), dict(guidance=-2)):
        with pytest.raises(ValueError):
            SamplingSettings(**bad)
