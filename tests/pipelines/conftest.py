"""A tiny random pipeline (tokenizer, dVAE, transformer) saved to a folder."""

from __future__ import annotations

import pytest
import torch

from dalle.models.dvae import DiscreteVAE, DVAEConfig
from dalle.models.transformer import DalleConfig, DalleTransformer
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.pipelines.sampling import DEFAULT_SETTINGS, SamplingSettings
from dalle.text.tokenizer import TextTokenizer

CAPTIONS = ["a red circle", "a blue square", "a green cross above a red circle"] * 4


def tiny_pipeline(defaults: SamplingSettings = DEFAULT_SETTINGS) -> DallePipeline:
    torch.manual_seed(0)
    tokenizer = TextTokenizer.train(CAPTIONS, vocab_size=300, min_frequency=1)
    vae = DiscreteVAE(DVAEConfig.from_preset("dvae-tiny")).eval()
    config = DalleConfig.from_preset("dalle-tiny").replace(
        num_text_tokens=tokenizer.vocab_size, pad_id=tokenizer.pad_id,
        num_image_tokens=vae.config.num_tokens, image_grid=vae.config.grid_size,
    )  # fmt: skip
    return DallePipeline(tokenizer, vae, DalleTransformer(config).eval(), defaults)


@pytest.fixture
def pipeline_dir(tmp_path):
    return tiny_pipeline(SamplingSettings(top_k=4)).save_pretrained(tmp_path / "pipe")
