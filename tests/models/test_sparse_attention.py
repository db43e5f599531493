"""Sparse attention over only the allowed keys equals dense masked attention."""

import pytest
import torch
import torch.nn.functional as F

from dalle.models.attention_masks import attention_mask
from dalle.models.sparse_attention import SparsePattern
from dalle.models.transformer import DalleConfig, DalleTransformer


def _dense(q, k, v, kind, text_len, grid, kernel):
    n = q.shape[2]
    mask = attention_mask(kind, text_len, grid * grid, grid, kernel)[:n, :n]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("kind", ["row", "column", "conv"])
@pytest.mark.parametrize(("text_len", "grid", "kernel", "n_image"), [
    (3, 4, 3, 16), (3, 4, 3, 15), (5, 5, 5, 7), (2, 6, 7, 36), (4, 4, 3, 0), (4, 5, 3, 1),
])  # fmt: skip
def test_sparse_equals_dense_masked_attention(kind, text_len, grid, kernel, n_image):
    torch.manual_seed(0)
    n = text_len + n_image
    q, k, v = (torch.randn(2, 3, n, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    pattern = SparsePattern(kind, text_len, grid, kernel)
    got = pattern.attend(q, k, v)
    want = _dense(q, k, v, kind, text_len, grid, kernel)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # gradients too: training runs through this path
    weights = torch.randn_like(want)
    g_got = torch.autograd.grad((got * weights).sum(), (q, k, v))
    g_want = torch.autograd.grad((want * weights).sum(), (q, k, v))
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["row", "column", "conv"])
@pytest.mark.parametrize("prefill", [0, 3, 13])  # image tokens written with the text
def test_cache_layout_reads_only_the_allowed_keys_and_agrees(kind, prefill):
    torch.manual_seed(1)
    text_len, grid, kernel = 3, 5, 5  # the conv ring holds 11 image keys: 13 wraps it
    total = text_len + grid * grid
    pattern = SparsePattern(kind, text_len, grid, kernel)
    k_all, v_all = torch.randn(1, 2, total, 4), torch.randn(1, 2, total, 4)
    size = pattern.cache_size(total)
    keys, values = torch.zeros(1, 2, size, 4), torch.zeros(1, 2, size, 4)
    if kind != "column":
        assert size < total  # a ring: only what the mask can still reach
    first = text_len + prefill
    pattern.cache_write(keys, values, 0, k_all[:, :, :first], v_all[:, :, :first])
    dense = attention_mask(kind, text_len, grid * grid, grid, kernel)
    for position in range(first, total):
        pattern.cache_write(keys, values, position, k_all[:, :, position : position + 1],
                            v_all[:, :, position : position + 1])  # fmt: skip
        q = torch.randn(1, 2, 1, 4)
        k, v, mask = pattern.cache_read(keys, values, position)
        allowed = int(dense[position].sum())
        assert (k.shape[2] if mask is None else int(mask.sum())) == allowed
        if kind != "conv":  # row and column read exactly their keys, no mask needed
            assert mask is None and k.shape[2] == allowed
        got = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        want = F.scaled_dot_product_attention(
            q, k_all[:, :, : position + 1], v_all[:, :, : position + 1],
            attn_mask=dense[position : position + 1, : position + 1],
        )  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_conv_span_covers_the_kernel():
    assert SparsePattern("conv", 24, 16, 11).span == 6  # 5 rows and 5 columns back: 85 keys
    assert SparsePattern("row", 24, 16, 11).span == 1
    with pytest.raises(ValueError, match="not a sparse kind"):
        SparsePattern("full", 24, 16)


def test_transformer_sparse_and_dense_agree_in_training_and_decoding():
    torch.manual_seed(2)
    config = DalleConfig.from_preset("dalle-tiny").replace(num_layers=4, image_grid=5)
    model = DalleTransformer(config).eval()
    text = torch.randint(1, config.num_text_tokens, (2, config.text_seq_len))
    image = torch.randint(0, config.num_image_tokens, (2, config.image_seq_len))
    outs = {}
    for sparse in (True, False):
        model.use_sparse = sparse
        _, full = model(text, image[:, :-1])
        cache = model.new_cache(2)
        _, logits = model(text, image[:, :12], cache)  # a prefix longer than the conv ring
        steps = [logits[:, -1]]
        for k in range(12, config.image_seq_len - 1):
            _, logits = model(None, image[:, k : k + 1], cache)
            steps.append(logits[:, -1])
        outs[sparse] = (full, torch.stack(steps, 1))
    for a, b in zip(outs[True], outs[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the cached decode agrees with the full forward pass
    torch.testing.assert_close(outs[True][1], outs[True][0][:, 12:], rtol=1e-4, atol=1e-5)
