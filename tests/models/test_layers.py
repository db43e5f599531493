import copy

import pytest
import torch
from torch import nn

from dalle.models.layers import (
    DECODE_MATMUL_MAX_KEYS_BF16,
    TanhGELU,
    decode_attention,
    exact_tanh_gelu,
    fused_decode_kernel,
)
from dalle.models.transformer import DalleConfig, DalleTransformer


def reference(q, k, v, mask):
    """Softmax attention written out in float64."""
    q, k, v = (t.double() for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("keys", [5, DECODE_MATMUL_MAX_KEYS_BF16 + 9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("contiguous", [False, True])
def test_decode_attention_is_softmax_attention(keys, dtype, masked, contiguous):
    g = torch.Generator().manual_seed(keys)
    q = torch.randn(3, 2, 1, 16, generator=g).to(dtype)
    buffer = torch.randn(2, 3, 2, keys + 4, 16, generator=g).to(dtype)  # keys, values
    k, v = buffer[0, :, :, 2 : 2 + keys], buffer[1, :, :, 2 : 2 + keys]  # a slice, as a cache read
    if contiguous:
        k, v = k.contiguous(), v.contiguous()
    mask = None
    if masked:
        mask = torch.rand(1, keys, generator=g) < 0.6
        mask[0, 0] = True
    out = decode_attention(q, k, v, mask)
    assert out.shape == (3, 2, 1, 16) and out.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.double(), reference(q, k, v, mask), atol=tolerance, rtol=0)


@pytest.mark.parametrize("flags", [{"amx_bf16", "avx512_bf16"}, {"avx512_bf16"}, set()])
def test_decode_attention_takes_the_kernel_measured_faster_on_the_machine(flags, monkeypatch):
    """Intel AMX: the fused kernel for many bf16 keys or strided ones; bf16 on a CPU without AMX
    (AVX512-BF16 alone, or no bf16 units): always the matrix products; float32 as on AMX."""
    monkeypatch.setattr("dalle.models.layers.cpu_flags", lambda: frozenset(flags))
    q = torch.zeros(2, 2, 1, 8)
    few, many = torch.zeros(2, 2, 5, 8), torch.zeros(2, 2, DECODE_MATMUL_MAX_KEYS_BF16 + 1, 8)
    amx = "amx_bf16" in flags
    for dtype in (torch.float32, torch.bfloat16):
        bf16 = dtype == torch.bfloat16
        qd = q.to(dtype)
        assert fused_decode_kernel(qd, few.to(dtype), few.to(dtype)) is False
        assert fused_decode_kernel(qd, many.to(dtype), many.to(dtype)) is (bf16 and amx)
        s = torch.zeros(2, 2, 10, 8, dtype=dtype)[:, :, 2:7]  # a cache region, not contiguous
        assert fused_decode_kernel(qd, s, s) is (not bf16 or amx)


def test_tanh_gelu_without_gradients_is_the_tanh_formula():
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    c = (2 / torch.pi) ** 0.5
    expected = 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * x**3)))  # the formula, in float64
    gelu = TanhGELU()
    with torch.no_grad():
        fast = gelu(x.float().clone())
    torch.testing.assert_close(fast.double(), expected, atol=2e-6, rtol=0)
    slow = gelu(x.float().requires_grad_())  # training: the fused kernel, which has a gradient
    assert slow.grad_fn is not None
    torch.testing.assert_close(slow.detach().double(), expected, atol=2e-6, rtol=0)
    x32 = x.float()
    with torch.no_grad():
        gelu(x32)  # not in place on its input
    assert torch.equal(x32, x.float())


def test_tanh_gelu_in_bf16_is_the_erf_gelu_with_gradients():
    x = torch.linspace(-8, 8, 4001).to(torch.bfloat16).requires_grad_()
    y = TanhGELU()(x)
    torch.testing.assert_close(y, torch.nn.functional.gelu(x), atol=0, rtol=0)
    assert y.grad_fn is not None
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad.float()).all()
    c = (2 / torch.pi) ** 0.5
    xd = x.detach().double()
    formula = 0.5 * xd * (1 + torch.tanh(c * (xd + 0.044715 * xd**3)))
    spacing = 2.0 ** (torch.frexp(formula.abs().clamp_min(1e-3)).exponent - 8)  # bf16's step
    assert ((y.detach().double() - formula).abs() <= spacing + 4.8e-4).all()


def _tiny_transformer():
    torch.manual_seed(0)
    config = DalleConfig.from_preset("dalle-tiny").replace(dim=64, head_dim=32)
    model = DalleTransformer(config)
    for p in model.parameters():  # larger activations than at initialisation, where GELU matters
        p.data.mul_(3)
    g = torch.Generator().manual_seed(1)
    text = torch.randint(3, config.num_text_tokens, (4, config.text_seq_len), generator=g)
    image = torch.randint(0, config.num_image_tokens, (4, config.image_seq_len), generator=g)
    return model, text, image


def test_erf_gelu_in_bf16_moves_logits_less_than_bf16_itself():
    model, text, image = _tiny_transformer()
    model.eval()
    with torch.inference_mode():
        exact = model(text, image)[1].double()
        bf16 = copy.deepcopy(model).to(torch.bfloat16)
        erf = bf16(text, image)[1].double()  # TanhGELU computes the erf GELU in bf16
        tanh = exact_tanh_gelu(bf16)(text, image)[1].double()
    bf16_error = (tanh - exact).abs().mean()
    assert bf16_error > 0 and not torch.equal(erf, tanh)
    assert (erf - exact).abs().mean() < 1.5 * bf16_error
    assert (erf - tanh).abs().mean() < 1.5 * bf16_error


def test_erf_gelu_in_bf16_training_moves_gradients_less_than_autocast_itself():
    from dalle.models.transformer import dalle_loss

    model, text, image = _tiny_transformer()

    def grads(m: nn.Module, bf16: bool) -> torch.Tensor:
        m.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            dalle_loss(m, text, image)["loss"].backward()
        return torch.cat([p.grad.flatten().double() for p in m.parameters() if p.grad is not None])

    exact = grads(model, False)
    erf = grads(model, True)  # the GELU's input is bf16 under autocast: the erf kernel
    tanh = grads(exact_tanh_gelu(copy.deepcopy(model)), True)
    autocast_error = (tanh - exact).abs().mean()
    assert autocast_error > 0 and not torch.equal(erf, tanh)
    assert (erf - exact).abs().mean() < 1.5 * autocast_error
    assert (erf - tanh).abs().mean() < 1.5 * autocast_error
