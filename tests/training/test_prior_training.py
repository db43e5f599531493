"""`dalle train prior` and `dalle embed`: a tiny prior on a tiny frozen CLIP."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.data import open_dataset
from dalle.data.base import SkipReport
from dalle.models.clip import CLIP
from dalle.models.prior import PriorConfig
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.unclip_pipeline import PriorSettings, UnclipPipeline
from dalle.training.encoded_data import EncodedBatches, clip_image_embeddings, load_cache
from dalle.training.prior_trainer import PriorTrainConfig, PriorTrainer

from .cli_runs import (
    assert_resume_is_bit_exact,
    caption_folder,
    one_and_two_processes,
    run_train,
)


def test_a_tiny_prior_learns(tiny_clip, tmp_path):
    from dalle.data import open_dataset

    torch.set_num_threads(1)
    ranker = ClipRanker.from_pretrained(tiny_clip)
    c = ranker.clip.config
    model_config = PriorConfig.from_preset("prior-tiny")
    config = PriorTrainConfig(
        data="shapes", steps=150, batch_size=32, lr=3e-3, warmup_steps=10, bf16=False,
        checkpoint_every=10**6, sample_every=10**6, stat_batches=4,
    )  # fmt: skip
    data = open_dataset("shapes", image_size=c.image_size, seed=0)
    encoder = clip_image_embeddings(ranker.clip)
    batches = EncodedBatches(data, encoder, config.batch_size, config.seed, None, SkipReport())
    trainer = PriorTrainer(model_config, config, tmp_path, ranker.clip, ranker.tokenizer, batches)
    losses = []
    trainer.train(lambda s: losses.append(s.loss))
    assert abs(trainer.unwrapped.embed_std.mean().item() - 1) > 0.01  # statistics were set
    first, last = np.mean(losses[:15]), np.mean(losses[-15:])
    assert last < 0.6 * first, (first, last)


def run_cli(clip, out, *extra, wait=True):
    return run_train("prior", "prior-tiny", out, "--clip", str(clip), "--no-bf16", *extra,
                     wait=wait)  # fmt: skip


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact(tiny_clip, tmp_path):
    assert_resume_is_bit_exact("prior", "prior-tiny", tmp_path, 12, 4, "--clip", str(tiny_clip),
                               "--no-bf16")  # fmt: skip


@pytest.mark.slow
def test_two_processes_train_like_one(tiny_clip, tmp_path):
    one, two = one_and_two_processes(
        "prior", "prior-tiny", tmp_path, 6, "--clip", str(tiny_clip), "--sample-every", "100"
    )
    for key in one:  # Adam divides by the gradients' size: round-off in near-zero ones shows
        torch.testing.assert_close(one[key], two[key], atol=1e-4, rtol=1e-3)


def test_train_then_embed(tiny_clip, tmp_path, capsys, monkeypatch):
    run_cli(tiny_clip, tmp_path / "run")
    pipe_dir = tmp_path / "run" / "pipeline"
    pipe = UnclipPipeline.from_pretrained(pipe_dir)
    assert pipe.prior is not None and pipe.prior_defaults == PriorSettings()
    prompts = ["a red circle", "a small blue square above a large green cross", "a white cross"]
    (tmp_path / "prompts.txt").write_text("".join(p + "\n" for p in prompts))
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.png", "c.jpg"):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / name)
    (images / "notes.txt").write_text("not an image")

    def embed(*args):
        out = tmp_path / f"e{len(list(tmp_path.glob('e*.npy')))}.npy"
        assert main(["embed", *args, "--model", str(pipe_dir), "--out", str(out)]) == 0
        array = np.load(out)
        assert array.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)
        return array

    text = embed("--prompts", str(tmp_path / "prompts.txt"))
    np.testing.assert_allclose(text, pipe.text_embeddings(prompts).numpy(), atol=1e-6)
    prior = embed("--prompts", str(tmp_path / "prompts.txt"), "--prior", "--seed", "3")
    assert prior.shape == (3, pipe.clip.config.embed_dim)
    np.testing.assert_allclose(prior, pipe.prior_embeddings(prompts, seed=3).numpy(), atol=1e-5)
    # one prompt alone draws what it drew among the others
    alone = pipe.prior_embeddings(prompts[1:2], seed=3, first_index=1)
    np.testing.assert_allclose(alone[0].numpy(), prior[1], atol=1e-5)
    pictures = embed("--images", str(images))
    ranker = ClipRanker.from_pretrained(pipe_dir)
    files = [Image.open(images / n).convert("RGB") for n in ("a.png", "b.png", "c.jpg")]
    with torch.no_grad():
        want = ranker.clip.encode_image(ranker.to_tensor(files)).numpy()
    np.testing.assert_allclose(pictures, want, atol=1e-5)  # sorted file-name order
    # large inputs stream in batches: batches of 2 give the same arrays
    from dalle.cli import embed_cmd

    monkeypatch.setattr(embed_cmd, "BATCH", 2)
    np.testing.assert_allclose(embed("--images", str(images)), pictures, atol=1e-6)
    np.testing.assert_allclose(embed("--prompts", str(tmp_path / "prompts.txt")), text, atol=1e-6)
    batched = embed("--prompts", str(tmp_path / "prompts.txt"), "--prior", "--seed", "3")
    np.testing.assert_allclose(batched, prior, atol=1e-5)
    # the same unCLIP pipeline assembled again from its parts, byte for byte
    again = tmp_path / "again"
    assert main(["pipeline", "assemble", str(again), "--tokenizer", str(pipe_dir), "--clip",
                 str(pipe_dir), "--prior", str(pipe_dir)]) == 0  # fmt: skip
    for file in ("model_index.json", "prior/model.safetensors", "clip/model.safetensors"):
        assert (again / file).read_bytes() == (pipe_dir / file).read_bytes(), file
    mixed = ["pipeline", "assemble", str(tmp_path / "mixed"), "--tokenizer", str(pipe_dir),
             "--prior", str(pipe_dir), "--vae", "shapes"]  # fmt: skip
    assert main(mixed) == 2 and not (tmp_path / "mixed").exists()
    capsys.readouterr()
    assert main(["eval", "prior", "--model", str(pipe_dir), "--n", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["prior"]["seen"]["prompts"] + report["prior"]["held_out"]["prompts"] == 8
    for which in ("text", "prior"):
        for split in ("seen", "held_out"):
            assert 0 <= report[which][split]["top1"] <= 1
            assert -1 <= report[which][split]["cosine"] <= 1


def test_embed_refuses_bad_input_before_loading(tiny_clip, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not a png")
    cases = [
        (["--prompts", str(prompts), "--out", str(tmp_path / "e.txt")], "ending in .npy"),
        (["--images", str(tmp_path), "--prior", "--out", str(tmp_path / "e.npy")], "--prompts"),
        (["--images", str(tmp_path / "none"), "--out", str(tmp_path / "e.npy")], "no such folder"),
        (["--prompts", str(prompts), "--out", str(tmp_path / "no/e.npy")], "does not exist"),
        (["--images", str(bad), "--model", str(tiny_clip), "--out", str(tmp_path / "e.npy")],
         "x.png"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(["embed", *args]) == 2
        assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.npy"))


def test_a_finite_data_set_is_embedded_once_and_cached(tiny_clip, tmp_path):
    data = caption_folder(tmp_path / "data", 5)
    out = tmp_path / "run"
    result = run_train("prior", "prior-tiny", out, "--clip", str(tiny_clip), "--no-bf16",
                       "--data", str(data), "--batch-size", "4", "--steps", "4",
                       "--checkpoint-every", "4")  # fmt: skip
    assert "cached the CLIP image embeddings of 5 images" in result.stdout
    assert "skipped 1 unreadable file" in result.stdout
    ranker = ClipRanker.from_pretrained(tiny_clip)
    embeddings, captions, indices = load_cache(out / "clip_embeddings.safetensors",
                                               clip_image_embeddings(ranker.clip))  # fmt: skip
    assert embeddings.shape == (5, ranker.clip.config.embed_dim) and len(captions) == 5
    dataset = open_dataset(str(data), image_size=16)
    assert [dataset[i][1] for i in indices.tolist()] == captions  # where each example came from
    image = Image.open(data / "3.png").convert("RGB")
    with torch.no_grad():
        want = ranker.clip.encode_image(ranker.to_tensor([image]))[0]
    torch.testing.assert_close(embeddings[captions.index("a red circle number 3")], want,
                               atol=1e-5, rtol=0)  # fmt: skip
    other = CLIP(ranker.clip.config)  # another CLIP's embeddings are never read back
    assert load_cache(out / "clip_embeddings.safetensors", clip_image_embeddings(other)) is None
