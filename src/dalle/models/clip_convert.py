"""Loading CLIP ViT checkpoints in OpenAI's or open_clip's state-dict layout.

Both name their parameters the way OpenAI's ``clip/model.py`` does (``visual.conv1.weight``,
``transformer.resblocks.0.attn.in_proj_weight``, ``text_projection``, ...). The file must be
safetensors: pickled checkpoints (``.pt``, ``.bin``) are refused, because unpickling runs code.
Convert one once, where you trust it, with
``safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, "clip.safetensors")``.

The text side needs the model's own tokenizer: a Hugging Face ``tokenizer.json`` of the CLIP
byte-level BPE with ``<|startoftext|>`` and ``<|endoftext|>``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch
from tokenizers import Tokenizer

from dalle.models.clip import CLIP, CLIPConfig
from dalle.models.layers import Activation
from dalle.models.pretrained import checked_state, read_weights
from dalle.text.tokenizer import TokenizedText, TruncationWarning

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_IGNORED = {"input_resolution", "context_length", "vocab_size", "attn_mask"}

# (their name, ours) for the parts of one residual block
_BLOCK = (
    ("ln_1", "ln_attn"),
    ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"),
    ("attn.out_proj", "attn.out"),
    ("ln_2", "ln_mlp"),
    ("mlp.c_fc", "mlp.0"),
    ("mlp.c_proj", "mlp.2"),
)
_TOP = (
    ("token_embedding.weight", "text.token_emb.weight"),
    ("positional_embedding", "text.pos_emb"),
    ("ln_final", "text.ln_final"),
    ("logit_scale", "logit_scale"),
    ("visual.conv1.weight", "vision.patch_emb.weight"),
    ("visual.class_embedding", "vision.class_emb"),
    ("visual.positional_embedding", "vision.pos_emb"),
    ("visual.ln_pre", "vision.ln_pre"),
    ("visual.ln_post", "vision.ln_post"),
)
_BLOCK_KEY = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def _clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix (DDP checkpoints) and buffers that are not weights."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.split(".")[-1] not in _IGNORED:
            out[key] = value
    return out


def _count_blocks(state: dict[str, torch.Tensor], visual: bool) -> int:
    found = {int(m[2]) for k in state if (m := _BLOCK_KEY.match(k)) and bool(m[1]) == visual}
    return max(found) + 1 if found else 0


def config_from_openai(
    state: dict[str, torch.Tensor], act: Activation = "quick_gelu", head_width: int = 64
) -> CLIPConfig:
    """The :class:`CLIPConfig` a ViT checkpoint was built with, its heads ``head_width`` wide
    (64 as OpenAI's; the checkpoint does not record it)."""
    state = _clean(state)
    if "visual.conv1.weight" not in state:
        raise ValueError(
            "not a CLIP ViT state dict (no visual.conv1.weight; ResNet towers are not supported)"
        )
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vocab, text_width = state["token_embedding.weight"].shape
    return CLIPConfig(
        embed_dim=state["text_projection"].shape[1],
        num_text_tokens=vocab,
        text_seq_len=state["positional_embedding"].shape[0],
        text_dim=text_width,
        text_layers=_count_blocks(state, visual=False),
        text_heads=_heads(text_width, head_width, "text"),
        eot_id=vocab - 1,  # <|endoftext|> is the last id of OpenAI's vocabulary
        image_size=patch * grid,
        patch_size=patch,
        vision_dim=vision_width,
        vision_layers=_count_blocks(state, visual=True),
        vision_heads=_heads(vision_width, head_width, "vision"),
        act=act,
        image_mean=OPENAI_MEAN,
        image_std=OPENAI_STD,
    )


def convert_openai_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Their parameter names and layouts to ours."""
    state = _clean(state)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _BLOCK_KEY.match(key)
        if m:
            tower = "vision" if m[1] else "text"
            rest = m[3]
            for theirs, ours in _BLOCK:
                if rest == theirs or rest.startswith(theirs + "."):
                    out[f"{tower}.blocks.{m[2]}.{ours}{rest[len(theirs) :]}"] = value
                    break
            else:
                raise ValueError(f"unexpected block parameter {key!r}")
            continue
        for theirs, ours in _TOP:
            if key == theirs or key.startswith(theirs + "."):
                out[ours + key[len(theirs) :]] = value
                break
        else:
            if key == "text_projection":  # (width, embed): x @ P, ours is a Linear (embed, width)
                out["text.proj.weight"] = value.t()
            elif key == "visual.proj":
                out["vision.proj.weight"] = value.t()
            else:
                raise ValueError(f"unexpected parameter {key!r}")
    return out


def _heads(width: int, head_width: int, tower: str) -> int:
    if width % head_width:
        raise ValueError(
            f"the {tower} tower is {width} wide: not a whole number of {head_width}-wide heads "
            "(give the model's head width: 64 for OpenAI's, 80 for open_clip's ViT-H-14)"
        )
    return width // head_width


def load_openai_clip(
    path: str | os.PathLike, act: Activation = "quick_gelu", device: str | torch.device = "cpu",
    head_width: int = 64,
) -> CLIP:  # fmt: skip
    """A CLIP from an OpenAI- or open_clip-layout ViT state dict stored as safetensors; its
    attention heads ``head_width`` wide (64 in OpenAI's models; the file does not say)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path}: only .safetensors files are loaded (pickled checkpoints can run code); "
            "convert it once with safetensors.torch.save_file"
        )
    state = read_weights(path)
    try:
        model = CLIP(config_from_openai(state, act, head_width))
        converted = convert_openai_state_dict(state)
    except KeyError as e:
        raise ValueError(f"{path}: not a complete CLIP ViT state dict (no {e})") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    model.load_state_dict(checked_state(converted, model, path, "an OpenAI-layout CLIP ViT"))
    return model.to(device).eval()


class ExternalClipTokenizer:
    """OpenAI CLIP's text format from a Hugging Face ``tokenizer.json``:
    ``<|startoftext|> tokens <|endoftext|>`` then zeros, cut to ``text_seq_len``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.tokenizer = Tokenizer.from_file(str(path))
        self.sot = self.tokenizer.token_to_id("<|startoftext|>")
        self.eot = self.tokenizer.token_to_id("<|endoftext|>")
        if self.sot is None or self.eot is None:
            raise ValueError(f"{path}: not a CLIP tokenizer (no <|startoftext|> / <|endoftext|>)")

    @property
    def eot_id(self) -> int:
        return self.eot

    def encode(self, texts: str | list[str], text_seq_len: int) -> TokenizedText:
        if isinstance(texts, str):
            texts = [texts]
        ids = torch.zeros(len(texts), text_seq_len, dtype=torch.long)
        lengths = torch.empty(len(texts), dtype=torch.long)
        cut = 0
        for i, text in enumerate(texts):
            body = [t for t in self.tokenizer.encode(text).ids if t not in (self.sot, self.eot)]
            cut += len(body) > text_seq_len - 2
            row = [self.sot, *body[: text_seq_len - 2], self.eot]
            ids[i, : len(row)] = torch.tensor(row)
            lengths[i] = len(row)
        if cut:  # as the project's own tokenizer reports it
            warnings.warn(f"{cut} of {len(texts)} captions exceeded text_seq_len={text_seq_len} "
                          "and were truncated", TruncationWarning, stacklevel=2)  # fmt: skip
        pad_mask = torch.arange(text_seq_len)[None, :] >= lengths[:, None]
        return TokenizedText(ids=ids, pad_mask=pad_mask, lengths=lengths)
