import numpy as np
import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.eval.clip_score import folder_clipscore
from dalle.folders import PipelineIndex
from dalle.models.clip import CLIP, CLIPConfig
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.dalle_pipeline import DallePipeline

from .conftest import tiny_pipeline


def with_clip(pipe: DallePipeline) -> DallePipeline:
    torch.manual_seed(1)
    config = CLIPConfig.from_preset("clip-tiny").replace(
        num_text_tokens=pipe.tokenizer.vocab_size, eot_id=pipe.tokenizer.eot_id
    )
    pipe.clip = ClipRanker(CLIP(config), pipe.tokenizer)
    return pipe


def test_cosine_is_the_angle_between_the_image_and_text_embeddings():
    pipe = with_clip(tiny_pipeline())
    clip, size = pipe.clip.clip, pipe.clip.clip.config.image_size
    texts = ["a red circle", "a blue square", "a green triangle"]
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    ids = pipe.tokenizer.encode(texts, clip.config.text_seq_len).ids
    with torch.no_grad():  # the towers' raw outputs, normalised here
        img, txt = clip.vision(images).float(), clip.text(ids).float()
    expected = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    torch.testing.assert_close(pipe.clip.cosine(images, texts), expected, atol=1e-5, rtol=0)
    # twice the size: area-averaged down to the CLIP's input first
    big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(pipe.clip.cosine(big, texts), expected, atol=1e-5, rtol=0)


def test_reranking_keeps_the_best_candidates_sorted():
    pipe = with_clip(tiny_pipeline())
    prompts = ["a red circle", "a blue square"]
    every = pipe(prompts, num_images_per_prompt=6, seed=3)  # the 6 candidates, unranked
    pixels = (
        torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in every])
        / 255
    )
    cos = pipe.clip.cosine(pixels, [p for p in prompts for _ in range(6)]).view(2, 6)
    kept = pipe(prompts, num_images_per_prompt=2, seed=3, candidates=6)
    assert len(kept) == 4
    for i in range(2):
        scores = [im.info["clip_score"] for im in kept[2 * i : 2 * i + 2]]
        assert scores == sorted(scores, reverse=True)
        best = cos[i].argsort(descending=True)[:2].tolist()
        assert [im.info["candidate"] for im in kept[2 * i : 2 * i + 2]] == best
        assert scores == pytest.approx(cos[i, best].tolist(), abs=1e-3)
        for im, j in zip(kept[2 * i : 2 * i + 2], best):
            assert np.array_equal(np.asarray(im), np.asarray(every[6 * i + j]))


def test_reranking_needs_clip_and_enough_candidates():
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="CLIP"):
        pipe(["a red circle"], 2, candidates=4)
    with pytest.raises(ValueError, match="at least"):
        with_clip(pipe)(["a red circle"], 2, candidates=1)


def test_pipeline_with_clip_round_trips(tmp_path):
    pipe = with_clip(tiny_pipeline())
    folder = pipe.save_pretrained(tmp_path / "pipe")
    index = PipelineIndex.read(folder)  # the CLIP reads the pipeline's one tokenizer part
    assert index.parts["clip"].tokenizer == "tokenizer" and "clip_tokenizer" not in index.parts
    assert not (folder / "clip" / "tokenizer.json").exists()
    loaded = DallePipeline.from_pretrained(folder)
    a = pipe(["a red circle"], 1, candidates=3)[0]
    b = loaded(["a red circle"], 1, candidates=3)[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert a.info["clip_score"] == pytest.approx(b.info["clip_score"], abs=1e-6)


def test_generate_candidates_writes_scores(tmp_path):
    folder = with_clip(tiny_pipeline()).save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    assert main(["generate", "a red circle", "--model", str(folder), "--num-images", "2",
                 "--candidates", "5", "--out", str(out)]) == 0  # fmt: skip
    scores = [float(Image.open(out / f"0000_{j:02d}.png").text["clip_score"]) for j in range(2)]
    assert scores[0] >= scores[1]
    assert Image.open(out / "0000_00.png").text["candidates"] == "5"


def test_clipscore_is_two_and_a_half_times_the_clipped_cosine(tmp_path):
    pipe = with_clip(tiny_pipeline())
    images = pipe(["a red circle", "a blue square"], 1, seed=0)
    for i, im in enumerate(images):
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("prompt", ["a red circle", "a blue square"][i])
        im.save(tmp_path / f"{i:04d}_00.png", pnginfo=info)
    pixels = (
        torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in images])
        / 255
    )
    cos = pipe.clip.cosine(pixels, ["a red circle", "a blue square"])
    expected = (2.5 * cos.clamp(min=0)).mean().item()
    from_chunks = folder_clipscore(pipe.clip, tmp_path)
    assert from_chunks["images"] == 2
    assert from_chunks["clipscore"] == pytest.approx(expected, abs=1e-5)
    # a prompts file overrides the chunks
    swapped = folder_clipscore(pipe.clip, tmp_path, ["a blue square", "a red circle"])
    other = pipe.clip.cosine(pixels, ["a blue square", "a red circle"])
    assert swapped["clipscore"] == pytest.approx((2.5 * other.clamp(min=0)).mean().item(), abs=1e-5)


def test_clipscore_command_with_openai_weights(tmp_path, capsys):
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    from ..models.test_clip_convert import VOCAB, openai_state_dict

    save_file(openai_state_dict(), str(tmp_path / "clip.safetensors"))
    vocab = {"<|startoftext|>": VOCAB - 2, "<|endoftext|>": VOCAB - 1, "a": 2, "red": 3, "[UNK]": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(images / "0000_00.png")
    (tmp_path / "prompts.txt").write_text("a red\n")
    code = main(["eval", "clipscore", str(images), "--prompts", str(tmp_path / "prompts.txt"),
                 "--clip-weights", str(tmp_path / "clip.safetensors"),
                 "--clip-tokenizer", str(tmp_path / "tokenizer.json"), "--json"])  # fmt: skip
    assert code == 0
    assert '"images": 1' in capsys.readouterr().out
