import math

import pytest
import torch

from dalle.models import logit_laplace
from dalle.models.dvae import DiscreteVAE, DVAEConfig, elbo_loss, gumbel_softmax, kl_to_uniform

TINY = DVAEConfig.from_preset("dvae-tiny")


def test_shapes_and_gradients():
    vae = DiscreteVAE(TINY)
    x = torch.rand(2, 3, 16, 16)
    assert vae.logits(x).shape == (2, 32, 8, 8)
    tokens = vae.encode(x)
    assert tokens.shape == (2, 8, 8) and tokens.dtype == torch.long
    images = vae.decode(tokens)
    assert images.shape == (2, 3, 16, 16) and images.min() >= 0 and images.max() <= 1
    out = elbo_loss(vae, x, temperature=1.0, kl_weight=6.6)
    out["loss"].backward()
    for name, p in vae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert vae.encoder.net[-1].weight.grad.abs().sum() > 0  # gradients reach through the relaxation


def test_grid_size_and_bad_config():
    assert DVAEConfig(image_size=64, num_groups=4).grid_size == 8
    assert DVAEConfig(image_size=64, num_groups=3).grid_size == 16
    with pytest.raises(ValueError, match="not divisible"):
        DVAEConfig(image_size=60, num_groups=4)


def test_kl_is_zero_for_uniform_logits_and_log_k_for_one_hot():
    assert kl_to_uniform(torch.zeros(2, 16, 3, 3)).abs().max() < 1e-6
    peaked = torch.full((1, 16, 1, 1), -1e4)
    peaked[0, 5] = 0
    assert abs(kl_to_uniform(peaked).item() - math.log(16)) < 1e-4


def test_logit_laplace_matches_hand_computation():
    x, mu, log_b = 0.3, 0.2, math.log(0.5)
    b = 0.5
    logit = math.log(x / (1 - x))
    by_hand = -math.log(2 * b) - math.log(x) - math.log(1 - x) - abs(logit - mu) / b
    got = logit_laplace.log_prob(torch.tensor([x]), torch.tensor([mu]), torch.tensor([log_b]))
    assert abs(got.item() - by_hand) < 1e-6
    # it is a density on (0, 1): it integrates to 1
    grid = torch.linspace(1e-6, 1 - 1e-6, 200001, dtype=torch.float64)
    dens = logit_laplace.log_prob(
        grid, torch.tensor(0.4, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64)
    ).exp()
    assert abs(torch.trapezoid(dens, grid).item() - 1) < 1e-3


def test_pixel_mapping_round_trip():
    x = torch.rand(100)
    mapped = logit_laplace.map_pixels(x)
    assert mapped.min() >= 0.1 and mapped.max() <= 0.9
    assert torch.allclose(logit_laplace.unmap_pixels(mapped), x, atol=1e-6)


def test_gumbel_softmax_is_a_distribution_and_hardens_with_temperature():
    logits = torch.randn(4, 10, 2, 2)
    g = torch.Generator().manual_seed(0)
    soft = gumbel_softmax(logits, 1.0, g)
    assert torch.allclose(soft.sum(1), torch.ones(4, 2, 2), atol=1e-5)
    hard = gumbel_softmax(logits, 1 / 16, torch.Generator().manual_seed(0))
    assert hard.max(1).values.mean() > soft.max(1).values.mean()
    # the same noise at any temperature picks the same argmax
    assert torch.equal(hard.argmax(1), soft.argmax(1))


def test_save_then_load_gives_identical_outputs(tmp_path):
    vae = DiscreteVAE(TINY).eval()
    x = torch.rand(3, 3, 16, 16)
    vae.save_pretrained(tmp_path / "vae")
    loaded = DiscreteVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == vae.config
    assert torch.equal(loaded.encode(x), vae.encode(x))
    assert torch.equal(loaded.decode(vae.encode(x)), vae.decode(vae.encode(x)))
    # stored small: fp16 weights reload as float32 and stay close
    vae.save_pretrained(tmp_path / "half", dtype=torch.float16)
    half = DiscreteVAE.from_pretrained(tmp_path / "half")
    assert next(half.parameters()).dtype == torch.float32
    assert (half.decode(vae.encode(x)) - vae.decode(vae.encode(x))).abs().max() < 1e-2


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        DiscreteVAE.from_pretrained(tmp_path / "nothing")


@pytest.mark.slow
def test_paper_preset_forward_and_backward():
    config = DVAEConfig.from_preset("dvae-paper")
    assert (config.image_size, config.grid_size, config.num_tokens) == (256, 32, 8192)
    vae = DiscreteVAE(config)
    out = elbo_loss(vae, torch.rand(1, 3, 256, 256), temperature=1.0, kl_weight=6.6)
    assert out["logits"].shape == (1, 8192, 32, 32)
    out["loss"].backward()
    assert torch.isfinite(vae.encoder.net[0].weight.grad).all()


def test_decoder_upsampling_reorder_is_exact():
    """Skip and first residual conv run before the 2x upsampling: same as upsampling first."""
    torch.manual_seed(0)
    vae = DiscreteVAE(TINY).double()
    block = next(b for b in vae.decoder.blocks if isinstance(b.up, torch.nn.Upsample))
    x = torch.randn(2, block.pre[1].in_channels, 4, 4, dtype=torch.float64)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    by_hand = block.skip(up) + block.post_gain * block.res(block.pre(up))
    assert torch.allclose(block(x), by_hand, atol=1e-12)


def test_decode_by_lookup_equals_decoding_one_hots():
    torch.manual_seed(0)
    vae = DiscreteVAE(TINY).eval()
    tokens = torch.randint(0, TINY.num_tokens, (2, 8, 8))
    one_hot = torch.nn.functional.one_hot(tokens, TINY.num_tokens).permute(0, 3, 1, 2).float()
    mu, _ = vae.decode_soft(one_hot)
    assert torch.allclose(vae.decode(tokens), logit_laplace.mean_image(mu), atol=1e-6)
    with pytest.raises(ValueError, match="token ids"):
        vae.decode(torch.full((1, 8, 8), TINY.num_tokens))


def test_likelihood_head_stays_float32_under_autocast():
    vae = DiscreteVAE(TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vae.decoder(torch.rand(1, TINY.num_tokens, 8, 8))
    assert out.dtype == torch.float32


def test_loss_terms_combine_as_weighted_sum():
    vae = DiscreteVAE(TINY)
    x = torch.rand(2, 3, 16, 16)

    def run(**weights):
        return elbo_loss(vae, x, 0.5, 2.0, torch.Generator().manual_seed(3), **weights)

    paper, mixed = run(), run(nll_weight=0.0, sq_weight=10.0)
    assert torch.allclose(paper["loss"], paper["nll"] + 2.0 * paper["kl"])
    assert torch.allclose(mixed["loss"], 2.0 * mixed["kl"] + 10.0 * mixed["sq"])
    # sq by hand: squared error of sigmoid(mu) against the mapped pixels, summed over channels,
    # averaged over the batch, divided by H x W
    z = gumbel_softmax(vae.logits(x), 0.5, torch.Generator().manual_seed(3))
    mu, _ = vae.decode_soft(z)
    target = logit_laplace.map_pixels(x)
    expected = ((torch.sigmoid(mu) - target) ** 2).sum() / (2 * 16 * 16)
    assert torch.allclose(mixed["sq"], expected, rtol=1e-5)
    # only sq and KL carry gradient when the NLL is switched off: the head's log-scale outputs
    # (its second half of channels) are read by the NLL alone, so their weights get none
    mixed["loss"].backward()
    head = vae.decoder.head
    c = vae.config.channels
    assert head.weight.grad[c:].abs().max() == 0 and head.bias.grad[c:].abs().max() == 0
    assert head.weight.grad[:c].abs().max() > 0  # the means carry sq's gradient
    vae.zero_grad()
    paper["loss"].backward()
    assert head.weight.grad[c:].abs().max() > 0  # with the NLL on, the scales learn
