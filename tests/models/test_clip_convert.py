"""OpenAI / open_clip state dicts: a tiny one written here, checked against a reference forward
pass that reads the raw tensors the way OpenAI's model does (nn.MultiheadAttention, QuickGELU)."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from dalle.models.clip_convert import ExternalClipTokenizer, config_from_openai, load_openai_clip

WIDTH, EMBED, PATCH, GRID, VOCAB, CTX = 64, 16, 4, 2, 50, 6


def block(prefix: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    def r(*shape):
        return 0.1 * torch.randn(*shape, generator=g)

    return {
        f"{prefix}.ln_1.weight": 1 + r(WIDTH), f"{prefix}.ln_1.bias": r(WIDTH),
        f"{prefix}.attn.in_proj_weight": r(3 * WIDTH, WIDTH), f"{prefix}.attn.in_proj_bias": r(3 * WIDTH),
        f"{prefix}.attn.out_proj.weight": r(WIDTH, WIDTH), f"{prefix}.attn.out_proj.bias": r(WIDTH),
        f"{prefix}.ln_2.weight": 1 + r(WIDTH), f"{prefix}.ln_2.bias": r(WIDTH),
        f"{prefix}.mlp.c_fc.weight": r(4 * WIDTH, WIDTH), f"{prefix}.mlp.c_fc.bias": r(4 * WIDTH),
        f"{prefix}.mlp.c_proj.weight": r(WIDTH, 4 * WIDTH), f"{prefix}.mlp.c_proj.bias": r(WIDTH),
    }  # fmt: skip


def openai_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return 0.1 * torch.randn(*shape, generator=g)

    sd = {
        "token_embedding.weight": r(VOCAB, WIDTH), "positional_embedding": r(CTX, WIDTH),
        "ln_final.weight": 1 + r(WIDTH), "ln_final.bias": r(WIDTH),
        "text_projection": r(WIDTH, EMBED), "logit_scale": torch.tensor(4.6052),
        "visual.conv1.weight": r(WIDTH, 3, PATCH, PATCH), "visual.class_embedding": r(WIDTH),
        "visual.positional_embedding": r(GRID * GRID + 1, WIDTH),
        "visual.ln_pre.weight": 1 + r(WIDTH), "visual.ln_pre.bias": r(WIDTH),
        "visual.ln_post.weight": 1 + r(WIDTH), "visual.ln_post.bias": r(WIDTH),
        "visual.proj": r(WIDTH, EMBED),
        "input_resolution": torch.tensor(PATCH * GRID), "context_length": torch.tensor(CTX),
    }  # fmt: skip
    for i in range(2):
        sd.update(block(f"transformer.resblocks.{i}", g))
        sd.update(block(f"visual.transformer.resblocks.{i}", g))
    return sd


def reference_block(x: torch.Tensor, sd: dict, prefix: str, mask=None) -> torch.Tensor:
    """OpenAI's ResidualAttentionBlock on (L, B, D), with PyTorch's own MultiheadAttention."""
    attn = torch.nn.MultiheadAttention(WIDTH, WIDTH // 64)
    attn.load_state_dict(
        {k.split("attn.")[1]: v for k, v in sd.items() if k.startswith(prefix + ".attn.")}
    )
    h = F.layer_norm(x, (WIDTH,), sd[f"{prefix}.ln_1.weight"], sd[f"{prefix}.ln_1.bias"])
    x = x + attn(h, h, h, need_weights=False, attn_mask=mask)[0]
    h = F.layer_norm(x, (WIDTH,), sd[f"{prefix}.ln_2.weight"], sd[f"{prefix}.ln_2.bias"])
    h = F.linear(h, sd[f"{prefix}.mlp.c_fc.weight"], sd[f"{prefix}.mlp.c_fc.bias"])
    h = h * torch.sigmoid(1.702 * h)
    return x + F.linear(h, sd[f"{prefix}.mlp.c_proj.weight"], sd[f"{prefix}.mlp.c_proj.bias"])


def reference_image(sd: dict, pixels: torch.Tensor) -> torch.Tensor:
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + sd["visual.positional_embedding"]
    x = F.layer_norm(x, (WIDTH,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    x = x.transpose(0, 1)
    for i in range(2):
        x = reference_block(x, sd, f"visual.transformer.resblocks.{i}")
    x = F.layer_norm(x[0], (WIDTH,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
    return F.normalize(x @ sd["visual.proj"], dim=-1)


def reference_text(sd: dict, text: torch.Tensor) -> torch.Tensor:
    x = (sd["token_embedding.weight"][text] + sd["positional_embedding"]).transpose(0, 1)
    mask = torch.full((CTX, CTX), float("-inf")).triu(1)
    for i in range(2):
        x = reference_block(x, sd, f"transformer.resblocks.{i}", mask)
    x = F.layer_norm(x.transpose(0, 1), (WIDTH,), sd["ln_final.weight"], sd["ln_final.bias"])
    return F.normalize(x[torch.arange(len(text)), text.argmax(-1)] @ sd["text_projection"], dim=-1)


def test_openai_layout_loads_and_matches_the_reference(tmp_path):
    sd = openai_state_dict()
    path = tmp_path / "clip.safetensors"
    save_file({f"module.{k}": v for k, v in sd.items()}, str(path))  # a DDP prefix, too
    model = load_openai_clip(path)
    c = model.config
    assert (c.image_size, c.patch_size, c.text_seq_len, c.embed_dim) == (8, 4, CTX, EMBED)
    assert (c.text_layers, c.vision_layers, c.eot_id) == (2, 2, VOCAB - 1)
    pixels = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    text = torch.tensor([[VOCAB - 2, 5, 7, VOCAB - 1, 0, 0], [VOCAB - 2, 9, VOCAB - 1, 0, 0, 0]])
    with torch.no_grad():
        # our encoder normalises pixels with OpenAI's statistics first
        mean, std = (
            torch.tensor(c.image_mean).view(1, 3, 1, 1),
            torch.tensor(c.image_std).view(1, 3, 1, 1),
        )
        torch.testing.assert_close(
            model.encode_image(pixels),
            reference_image(sd, (pixels - mean) / std),
            atol=1e-5,
            rtol=1e-4,
        )
        torch.testing.assert_close(
            model.encode_text(text), reference_text(sd, text), atol=1e-5, rtol=1e-4
        )
    assert model.scale().item() == pytest.approx(100.0, rel=1e-3)


def test_pickles_and_other_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        load_openai_clip(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="ViT"):
        config_from_openai({"token_embedding.weight": torch.zeros(3, 4)})


def test_external_clip_tokenizer_format(tmp_path):
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a": 2, "red": 3, "circle": 4, "[UNK]": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)],
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    clip_tok = ExternalClipTokenizer(tmp_path / "tokenizer.json")
    out = clip_tok.encode(["a red circle", "a red red red red circle"], 5)
    assert out.ids.tolist() == [
        [0, 2, 3, 4, 1],
        [0, 2, 3, 3, 1],
    ]  # cut, still ends in <|endoftext|>
    assert clip_tok.eot_id == 1


def test_a_broken_or_misread_checkpoint_is_one_error_naming_the_file(tmp_path):
    sd = openai_state_dict()
    path = tmp_path / "clip.safetensors"
    save_file(sd, str(path))
    path.write_bytes(path.read_bytes()[:200])  # cut short
    with pytest.raises(ValueError, match="clip.safetensors: not a readable safetensors file"):
        load_openai_clip(path)
    save_file({k: v for k, v in sd.items() if k != "text_projection"}, str(path))
    with pytest.raises(ValueError, match="clip.safetensors: not a complete .*text_projection"):
        load_openai_clip(path)
    bad = dict(sd)
    bad["ln_final.weight"] = torch.full_like(sd["ln_final.weight"], float("nan"))
    save_file(bad, str(path))
    with pytest.raises(ValueError, match="clip.safetensors: .*NaN"):
        load_openai_clip(path)
    save_file(sd, str(path))
    with pytest.raises(ValueError, match="not a whole number of 48-wide heads"):
        load_openai_clip(path, head_width=48)
    # the head width is not in the file: read as two heads of 32, the weights load and the
    # features differ from the one 64-wide head they were made with
    two = load_openai_clip(path, head_width=32)
    assert two.config.text_heads == two.config.vision_heads == 2
    text = torch.tensor([[VOCAB - 2, 5, 7, VOCAB - 1, 0, 0]])
    with torch.no_grad():
        assert not torch.allclose(two.encode_text(text), reference_text(sd, text), atol=1e-3)
