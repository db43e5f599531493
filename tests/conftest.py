"""Fixtures shared across the test folders: tiny random models trained a few steps."""

import pytest
import torch

from dalle.cli import main
from dalle.models.clip import CLIP, CLIPConfig
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.shapes.captions import sample_caption
from dalle.shapes.sampling import HashRandom, sample_scene
from dalle.text.tokenizer import TextTokenizer


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A random clip-tiny CLIP with a tokenizer of shapes captions, as `dalle train clip` writes."""
    captions = [sample_caption(sample_scene("train", i), HashRandom("t", i))[0] for i in range(300)]
    tokenizer = TextTokenizer.train(captions, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    config = CLIPConfig.from_preset("clip-tiny").replace(
        num_text_tokens=tokenizer.vocab_size, eot_id=tokenizer.eot_id
    )
    return ClipRanker(CLIP(config), tokenizer).save_pretrained(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def tiny_unclip(tiny_clip, tmp_path_factory):
    """An unCLIP pipeline of tiny parts, each trained a few steps by the CLI in this process:
    CLIP (random), prior, decoder (8 x 8) and upsampler (16 x 16)."""
    root = tmp_path_factory.mktemp("unclip")
    common = ["--no-bf16", "--threads", "1"]
    torch.manual_seed(0)
    for stage, extra in (("prior", ["--clip", str(tiny_clip)]),
                         ("decoder", ["--clip", str(tiny_clip)]), ("upsampler", [])):  # fmt: skip
        assert main(["train", stage, "--preset", f"{stage}-tiny", "--out", str(root / stage),
                     *extra, *common]) == 0  # fmt: skip
    out = root / "pipe"
    assert main(["pipeline", "assemble", str(out), "--tokenizer", str(tiny_clip), "--clip",
                 str(tiny_clip), "--prior", str(root / "prior/pipeline"), "--decoder",
                 str(root / "decoder/decoder"), "--upsampler", str(root / "upsampler/upsampler"),
                 "--prior-steps", "4", "--decoder-steps", "6", "--decoder-guidance", "2",
                 "--upsampler-steps", "3", "--dtype", "fp32"]) == 0  # fmt: skip
    return out
