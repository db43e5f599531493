import copy

import pytest
import torch
from torch import nn

from dalle.models.layers import (
    DECODE_MATMUL_MAX_KEYS_BF16,
    Block,
    TanhGELU,
    decode_attention,
    erf_gelu_for_bf16,
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


def test_erf_gelu_replaces_only_the_tanh_gelu():
    model = nn.Sequential(Block(16, 2, 8, act="gelu_tanh"), nn.GELU(), Block(16, 2, 8, act="gelu"))
    swapped = erf_gelu_for_bf16(copy.deepcopy(model))
    gelus = [m for m in swapped.modules() if isinstance(m, nn.GELU)]
    assert len(gelus) == 3 and all(m.approximate == "none" for m in gelus)
    assert model[0].mlp[1].approximate == "tanh"  # the original is untouched


def test_erf_gelu_moves_bf16_logits_less_than_bf16_itself():
    torch.manual_seed(0)
    config = DalleConfig.from_preset("dalle-tiny").replace(dim=64, head_dim=32)
    model = DalleTransformer(config).eval()
    for p in model.parameters():  # larger activations than at initialisation, where GELU matters
        p.data.mul_(3)
    g = torch.Generator().manual_seed(1)
    text = torch.randint(3, config.num_text_tokens, (4, config.text_seq_len), generator=g)
    image = torch.randint(0, config.num_image_tokens, (4, config.image_seq_len), generator=g)
    with torch.inference_mode():
        exact = model(text, image)[1].double()
        tanh = copy.deepcopy(model).to(torch.bfloat16)(text, image)[1].double()
        erf = erf_gelu_for_bf16(copy.deepcopy(model).to(torch.bfloat16))(text, image)[1].double()
    bf16_error = (tanh - exact).abs().mean()
    assert bf16_error > 0
    assert (erf - exact).abs().mean() < 1.5 * bf16_error
    assert (erf - tanh).abs().mean() < 1.5 * bf16_error
