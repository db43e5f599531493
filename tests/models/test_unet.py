"""The unCLIP U-Net (decoder and upsampler): shapes, conditioning paths, guidance nulls."""

import pytest
import torch

from dalle.models.unet import UNet, UNetConfig

TINY = UNetConfig.from_preset("unet-tiny")


def perturbed(config=TINY, seed=0):
    """A U-Net whose zero-initialised output layers are not zero, so every path shows."""
    torch.manual_seed(seed)
    model = UNet(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0 and p.dim() > 0:
                p.normal_(0, 0.1)
    return model


def inputs(b=3, config=TINY, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, config.image_size, config.image_size, generator=g)
    t = torch.randint(0, config.num_timesteps, (b,), generator=g)
    clip = torch.randn(b, config.embed_dim, generator=g)
    text = torch.randint(1, config.num_text_tokens, (b, config.text_seq_len), generator=g)
    mask = torch.arange(config.text_seq_len)[None] <= torch.tensor([1, 3, 5])[:b, None]
    return x, t, clip, text, mask


def test_output_shape_zero_init_and_channels_last():
    torch.manual_seed(0)
    x, t, clip, text, mask = inputs()
    fresh = UNet(TINY).eval()
    assert torch.equal(fresh(x, t, clip, text, mask), torch.zeros_like(x))  # zero-init output
    model = perturbed()
    out = model(x, t, clip, text, mask)
    assert out.shape == x.shape
    last = model.to(memory_format=torch.channels_last)
    got = last(x.contiguous(memory_format=torch.channels_last), t, clip, text, mask)
    torch.testing.assert_close(got, out, atol=1e-5, rtol=1e-4)


def test_every_condition_is_read_and_samples_are_independent():
    model = perturbed()
    x, t, clip, text, mask = inputs()
    out = model(x, t, clip, text, mask)
    assert not torch.allclose(model(x, t, clip + 0.5, text, mask), out)
    assert not torch.allclose(model(x, (t + 9) % TINY.num_timesteps, clip, text, mask), out)
    changed = text.clone()
    changed[:, 0] = (changed[:, 0] % (TINY.num_text_tokens - 1)) + 1
    assert not torch.allclose(model(x, t, clip, changed, mask), out)
    after = text.clone()
    after[~mask] = 1  # tokens after a caption's end are not read
    torch.testing.assert_close(model(x, t, clip, after, mask), out)
    alone = model(x[1:2], t[1:2], clip[1:2], text[1:2], mask[1:2])  # no batch coupling
    torch.testing.assert_close(alone, out[1:2], atol=1e-5, rtol=1e-4)


def test_dropped_conditions_read_the_learned_nulls():
    model = perturbed()
    x, t, clip, text, mask = inputs()
    keep = torch.tensor([True, False, False])
    a = model(x, t, clip, text, mask, keep_clip=keep, keep_text=keep)
    other = inputs(seed=5)
    b = model(x, t, other[2], other[3], ~mask, keep_clip=keep, keep_text=keep)
    torch.testing.assert_close(a[1:], b[1:])
    assert not torch.allclose(a[0], b[0])
    only_text = model(x, t, clip, text, mask, keep_clip=torch.ones(3, dtype=torch.bool),
                      keep_text=keep)  # fmt: skip
    assert not torch.allclose(only_text[1:], a[1:])  # the CLIP embedding still counts


def test_upsampler_reads_the_low_resolution_image_and_has_no_attention():
    config = UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                        attention_resolutions=(), num_groups=8, low_res_channels=3,
                        low_res_size=4)  # fmt: skip
    model = perturbed(config)
    assert not any("AttentionBlock" in type(m).__name__ for m in model.modules())
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([3, 500])
    low = torch.rand(2, 3, 8, 8)
    out = model(x, t, low_res=low)
    assert out.shape == x.shape
    assert not torch.allclose(model(x, t, low_res=low.flip(-1)), out)
    with pytest.raises(ValueError, match="low-resolution"):
        model(x, t)


def test_save_load_round_trip(tmp_path):
    model = perturbed()
    model.save_pretrained(tmp_path / "decoder")
    loaded = UNet.from_pretrained(tmp_path / "decoder")
    x, t, clip, text, mask = inputs()
    assert torch.equal(loaded(x, t, clip, text, mask), model(x, t, clip, text, mask))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="attention_resolutions"):
        UNetConfig(image_size=32, channel_mults=(1, 2), attention_resolutions=(8,))
    with pytest.raises(ValueError, match="halve"):
        UNetConfig(image_size=20, channel_mults=(1, 2, 2, 2))


def test_the_shapes_presets_build():
    for name in ("shapes-decoder", "shapes-upsampler"):
        with torch.device("meta"):
            model = UNet(UNetConfig.from_preset(name))
        assert sum(p.numel() for p in model.parameters()) < 30_000_000


def test_attention_is_softmax_attention_with_the_softmax_in_float32():
    from dalle.models.unet import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (4 * torch.randn(2, 3, 5 if i == 0 else 300, 8, generator=g) for i in range(3))
    mask = torch.rand(2, 1, 1, 300, generator=g) > 0.3
    mask[..., 0] = True  # every row reads at least one key
    for m in (None, mask):
        d = q.double(), k.double(), v.double()
        scores = d[0] @ d[1].transpose(-1, -2) / 8**0.5
        if m is not None:
            scores = scores.masked_fill(~m, float("-inf"))
        want = scores.softmax(-1) @ d[2]
        torch.testing.assert_close(attention(q, k, v, m).double(), want, atol=1e-5, rtol=1e-5)
        # bf16 inputs against the exact answer for the same rounded inputs: 0.2 % off at most
        # (scores and softmax in float32); the scores and softmax in bf16 are 6 % off here
        qb, kb, vb = (t.bfloat16() for t in (q, k, v))
        scores = qb.double() @ kb.double().transpose(-1, -2) / 8**0.5
        if m is not None:
            scores = scores.masked_fill(~m, float("-inf"))
        exact = scores.softmax(-1) @ vb.double()
        got = attention(qb, kb, vb, m).double()
        assert (got - exact).abs().max() < 0.01 * exact.abs().max()


def test_the_caption_in_the_timestep_embedding_reads_its_end_of_text():
    # without attention the caption reaches the U-Net only through text_time
    blind = TINY.replace(attention_resolutions=())
    x, t, clip, text, mask = inputs(config=blind)
    changed = text.clone()
    ends = mask.sum(1) - 1
    changed[torch.arange(3), ends] = text[torch.arange(3), ends] % (TINY.num_text_tokens - 1) + 1
    without = perturbed(blind)
    torch.testing.assert_close(without(x, t, clip, changed, mask), without(x, t, clip, text, mask))
    model = perturbed(blind.replace(text_time=True))
    out = model(x, t, clip, text, mask)
    assert not torch.allclose(model(x, t, clip, changed, mask)[0], out[0])
    after = text.clone()
    after[~mask] = 1  # tokens after a caption's end are not read
    torch.testing.assert_close(model(x, t, clip, after, mask), out)
    keep = torch.tensor([False, True, True])  # a dropped caption reads the null caption's end
    dropped = model(x, t, clip, text, mask, keep_text=keep)
    torch.testing.assert_close(model(x, t, clip, changed, ~mask, keep_text=keep)[0], dropped[0])
    torch.testing.assert_close(dropped[1:], out[1:])


@pytest.mark.parametrize(
    ("before", "after"),
    [((4,), (8, 4)), ((8,), (8, 4)), ((), (4,))],
    ids=["attention-at-8", "attention-at-4-shifts-the-upsampling-conv", "middle-attention"],
)
def test_a_grown_unet_computes_what_the_small_one_did_until_trained(before, after):
    small = perturbed(TINY.replace(attention_resolutions=before))
    bigger = TINY.replace(attention_resolutions=after, text_layers=3, text_time=True,
                          inpaint=True)  # fmt: skip
    grown = UNet.grown_from(small, bigger).eval()
    assert grown.config == bigger and len(grown.text.blocks) == 3
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in small.parameters())
    x, t, clip, text, mask = inputs()
    want = small(x, t, clip, text, mask)
    torch.testing.assert_close(grown(x, t, clip, text, mask), want)
    known, draw = torch.rand_like(x), torch.rand(3, 1, 8, 8) > 0.5
    torch.testing.assert_close(grown(x, t, clip, text, mask, known=known, draw=draw), want)
    with pytest.raises(ValueError, match="base_channels"):
        UNet.grown_from(small, TINY.replace(base_channels=32))
    with pytest.raises(ValueError, match="drops"):
        UNet.grown_from(grown, bigger.replace(attention_resolutions=()))
    with pytest.raises(ValueError, match="text_layers"):
        UNet.grown_from(grown, bigger.replace(text_layers=1))


def test_an_upsampler_grows_attention_and_text_time_needs_a_caption():
    small = perturbed(UNetConfig.from_preset("upsampler-tiny"))
    grown = UNet.grown_from(small, small.config.replace(attention_resolutions=(8,), text_layers=4))
    x = torch.randn(2, 3, 16, 16)
    t, low = torch.tensor([3, 70]), torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(grown(x, t, low_res=low), small(x, t, low_res=low))
    with pytest.raises(ValueError, match="text_time needs a caption"):
        small.config.replace(text_time=True)
