import dataclasses
import json

import pytest
import torch
from tokenizers import Tokenizer

from dalle.data.base import SkipReport
from dalle.models.dvae import DiscreteVAE, DVAEConfig
from dalle.models.transformer import DalleConfig, DalleTransformer
from dalle.pipelines.sampling import SamplingSettings
from dalle.text.tokenizer import TextTokenizer
from dalle.training.dalle_trainer import DalleTrainConfig, DalleTrainer, fit_model_config
from dalle.training.encoded_data import EncodedBatches, dvae_tokens, load_cache
from dalle.training.metrics_log import MetricsLog

from .cli_runs import (
    assert_resume_is_bit_exact,
    caption_folder,
    one_and_two_processes,
    run_train,
)

CAPTIONS = ["a red circle", "a blue square", "a green cross", "a white triangle"]


def toy_setup(tmp_path, steps=150):
    """Four captions, each always paired with its own fixed 8 x 8 token picture."""
    torch.manual_seed(0)
    tokenizer = TextTokenizer.train(CAPTIONS * 3, vocab_size=300, min_frequency=1)
    vae = DiscreteVAE(DVAEConfig.from_preset("dvae-tiny"))
    pictures = torch.randint(
        0, vae.config.num_tokens, (4, 8, 8), generator=torch.Generator().manual_seed(1)
    )
    config = DalleTrainConfig(
        steps=steps, batch_size=8, lr=3e-3, warmup_steps=10, caption_dropout=0.0, ema_decay=0.9,
        bf16=False, checkpoint_every=10**6, sample_every=10**6,
    )  # fmt: skip
    model_config = fit_model_config(DalleConfig.from_preset("dalle-tiny"), tokenizer, vae)
    batches = EncodedBatches(None, None, config.batch_size, 0, (pictures, CAPTIONS), SkipReport())
    trainer = DalleTrainer(model_config, config, tmp_path, tokenizer, vae, batches, CAPTIONS[:2])
    return trainer, pictures


def test_tiny_transformer_learns_captions_to_token_pictures(tmp_path):
    torch.set_num_threads(1)
    trainer, pictures = toy_setup(tmp_path)
    losses = []
    trainer.train(on_step=lambda s: losses.append(s.image_loss))
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    pipe = trainer.pipeline()
    tokens = pipe.generate_tokens(CAPTIONS, [0, 1, 2, 3], SamplingSettings(temperature=0))
    assert torch.equal(tokens, pictures.flatten(1))  # each caption draws its own picture


def test_lr_schedule_end_points(tmp_path):
    trainer, _ = toy_setup(tmp_path, steps=1000)
    c = trainer.config
    assert trainer.lr_at(0) == pytest.approx(c.lr / c.warmup_steps)
    assert trainer.lr_at(c.warmup_steps) == pytest.approx(c.lr)
    assert trainer.lr_at(c.steps) == pytest.approx(c.lr_end)


def test_cached_batches_cover_each_epoch_once():
    tokens = torch.arange(10).view(10, 1, 1)
    batches = EncodedBatches(None, None, 4, 0, (tokens, [str(i) for i in range(10)]), SkipReport())
    first = [b for _, (b, _) in zip(range(5), batches(0))]
    seen = torch.cat(first).flatten().tolist()
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    resumed = next(batches(3))[0]  # starting at batch 3 gives batch 3
    assert torch.equal(resumed, first[3])


def run_cli(out, *extra, wait=True, data=None):
    return run_train(
        "dalle", "dalle-tiny", out, *extra, *(["--data", str(data)] if data else []), wait=wait
    )


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact(tmp_path):
    assert_resume_is_bit_exact("dalle", "dalle-tiny", tmp_path, 20, 8, "--checkpoint-every", "4")
    logs = MetricsLog(tmp_path / "killed/metrics.jsonl").records()
    assert [r["step"] for r in logs] == [10, 20]
    assert (tmp_path / "killed/pipeline/model_index.json").is_file()
    assert list((tmp_path / "killed/samples").glob("step_*.png"))


@pytest.mark.slow
def test_finite_data_is_tokenized_once_and_cached(tmp_path):

    data = caption_folder(tmp_path / "data", 6, size=64)
    result = run_cli(tmp_path / "run", "--steps", "4", data=data)
    assert "cached the image tokens of 6 images" in result.stdout
    assert "skipped 1 unreadable file" in result.stdout
    cache = tmp_path / "run" / "image_tokens.safetensors"
    from dalle.models.dvae import DiscreteVAE

    # keyed by the dVAE's weights: another dVAE's tokens are never read back
    other = DiscreteVAE(DiscreteVAE.from_pretrained("shapes").config)
    assert load_cache(cache, dvae_tokens(other)) is None
    tokens, captions, _ = load_cache(cache, dvae_tokens(DiscreteVAE.from_pretrained("shapes")))
    assert tokens.shape == (6, 256) and tokens.dtype == torch.long
    assert sorted(captions)[0] == "a red circle number 0"
    # a cache cut short (a disk filled up) is read as no cache: encoded again, with a warning
    cache.write_bytes(cache.read_bytes()[:100])
    assert load_cache(cache, dvae_tokens(DiscreteVAE.from_pretrained("shapes"))) is None


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """Under torchrun (gloo on the CPU) each process takes half of every global batch; the
    averaged gradients make the run match a single-process run."""
    one, two = one_and_two_processes("dalle", "dalle-tiny", tmp_path, 10)
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=1e-5, rtol=1e-4)
    losses = [
        MetricsLog(tmp_path / r / "metrics.jsonl").records()[-1]["loss"] for r in ("one", "two")
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_resume_takes_the_runs_weight_decay_and_beta2(tmp_path):
    trainer, _ = toy_setup(tmp_path, steps=4)
    trainer.train()
    again, _ = toy_setup(tmp_path, steps=4)  # as `--resume --allow-changes` with new values
    again.config = dataclasses.replace(again.config, weight_decay=0.3, beta2=0.9)
    assert again.resume() and again.step == 4
    groups = again.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.3, 0.0]  # none on biases and norms, still
    assert [g["betas"] for g in groups] == [(0.9, 0.9), (0.9, 0.9)]
    assert again.optimizer.state  # the moments came back


def test_resume_refuses_another_dvae(tmp_path):
    trainer, _ = toy_setup(tmp_path, steps=4)
    trainer.train()
    again, _ = toy_setup(tmp_path, steps=4)
    assert again.resume() and again.step == 4  # same dVAE: fine
    other, _ = toy_setup(tmp_path, steps=4)
    with torch.no_grad():
        next(other.vae.parameters()).add_(1.0)
    with pytest.raises(ValueError, match="vae"):
        other.resume()


def test_resume_refuses_another_tokenizer_of_the_same_size(tmp_path):
    """Same vocabulary size (so the model config matches) but two tokens' ids swapped: the
    captions would map to other embeddings, so the resume is refused by name."""
    trainer, _ = toy_setup(tmp_path, steps=4)
    trainer.train()
    data = json.loads(trainer.tokenizer.to_json())
    vocab = data["model"]["vocab"]
    a, b = "Ġred", "Ġblue"
    vocab[a], vocab[b] = vocab[b], vocab[a]
    other, _ = toy_setup(tmp_path, steps=4)
    other.tokenizer = TextTokenizer(Tokenizer.from_str(json.dumps(data)))
    assert other.tokenizer.vocab_size == trainer.tokenizer.vocab_size
    assert (
        other.tokenizer.encode(["a red circle"], 8).ids[0, 1]
        == trainer.tokenizer.encode(["a blue circle"], 8).ids[0, 1]
    )
    with pytest.raises(ValueError, match="made with tokenizer"):
        other.resume()


def test_init_from_starts_a_run_from_given_weights(tmp_path):
    torch.set_num_threads(1)
    trainer, _ = toy_setup(tmp_path / "a", steps=100)
    trainer.train()
    trained = trainer.ema_model()
    fresh, _ = toy_setup(tmp_path / "b", steps=30)
    fresh.init_from(trained)
    for (name, a), b in zip(trained.state_dict().items(), fresh.ema_model().state_dict().values()):
        assert torch.equal(a, b), name  # the model and its EMA both start there
    first = []
    fresh.train(on_step=lambda s: first.append(s.image_loss), stop_at=1)
    scratch, _ = toy_setup(tmp_path / "c", steps=30)
    again = []
    scratch.train(on_step=lambda s: again.append(s.image_loss), stop_at=1)
    assert first[0] < 0.6 * again[0]  # it continues from the trained weights' loss
    with pytest.raises(ValueError, match="is for a new run"):
        fresh.init_from(trained)
    other, _ = toy_setup(tmp_path / "d", steps=30)
    wider = type(trained)(trained.config.replace(dim=48))
    with pytest.raises(ValueError, match="dim 32 -> 48"):
        other.init_from(wider)


def test_train_dalle_init_grows_a_shallower_transformer(tmp_path, capsys):
    from dalle.cli import main

    first, deeper = tmp_path / "first", tmp_path / "deeper"
    common = ["--preset", "dalle-tiny", "--steps", "2", "--no-bf16", "--threads", "1"]
    assert main(["train", "dalle", *common, "--out", str(first)]) == 0
    small = DalleTransformer.from_pretrained(first / "pipeline")
    assert main(["train", "dalle", *common, "--out", str(deeper), "--layers", "4",
                 "--full-every", "2", "--init", str(first / "pipeline"),
                 "--tokenizer", str(first / "tokenizer.json")]) == 0  # fmt: skip
    assert "grown (num_layers 2 -> 4, full_every 0 -> 2)" in capsys.readouterr().out
    grown = DalleTransformer.from_pretrained(deeper / "pipeline")
    assert small.config.num_layers == 2 and grown.config.num_layers == 4
    assert grown.config == small.config.replace(num_layers=4, full_every=2)
    # the small model's row and conv layers first and last, a full layer grown between
    assert small.kinds == ["row", "conv"] and grown.kinds == ["row", "full", "column", "conv"]
    # two steps on from the small model's weights: its layers moved a little, not from scratch
    moved = grown.blocks[3].mlp[0].weight - small.blocks[1].mlp[0].weight
    assert moved.abs().max() < 0.05
    assert main(["train", "dalle", *common, "--out", str(tmp_path / "bad"), "--layers", "1",
                 "--init", str(first / "pipeline"),
                 "--tokenizer", str(first / "tokenizer.json")]) == 2  # fmt: skip
    assert "cannot grow into it" in capsys.readouterr().err


def test_a_packed_run_resumes_with_fp16_weights_a_fresh_optimizer_and_a_rewarmed_rate(
    tmp_path, capsys
):
    from safetensors.torch import load_file

    from dalle.training.checkpoint import latest_checkpoint, pack_run
    from dalle.training.loop import rewarm_steps, scheduled_lr

    torch.set_num_threads(1)
    trainer, _ = toy_setup(tmp_path / "run", steps=60)
    trainer.config.save(tmp_path / "run" / "train_config.json")
    trainer.train(stop_at=30)
    full = latest_checkpoint(tmp_path / "run")
    packed = pack_run(tmp_path / "run", tmp_path / "packed")
    assert packed.name == full.name == "step_0000030"
    assert not (packed / "optimizer.safetensors").exists()
    assert (tmp_path / "packed" / "train_config.json").is_file()
    for name in ("model", "ema"):
        a, b = (
            load_file(str(full / f"{name}.safetensors")),
            load_file(str(packed / f"{name}.safetensors")),
        )
        for k in a:  # weight matrices in fp16; norms and biases as they were
            assert torch.equal(a[k].half() if a[k].dim() >= 2 else a[k], b[k]), (name, k)
    size = sum(f.stat().st_size for f in packed.iterdir())
    assert size < 0.3 * sum(f.stat().st_size for f in full.iterdir())

    again, _ = toy_setup(tmp_path / "packed", steps=60)
    assert again.resume() and again.step == 30
    assert not again.optimizer.state  # no moments: the optimizer starts afresh
    for (k, a), b in zip(
        trainer.unwrapped.state_dict().items(), again.unwrapped.state_dict().values()
    ):
        assert torch.equal(a.half().float() if a.dim() >= 2 else a, b), k
    r = rewarm_steps(again.config)
    assert r == 10  # the run's own warm-up (10) is shorter than 2 / (1 - 0.96) = 50
    on_schedule = [scheduled_lr(again.config, None, s) for s in range(30, 30 + r + 1)]
    assert [again.lr_at(s) for s in range(30, 30 + r + 1)] == pytest.approx(
        [lr * min(1, (i + 1) / r) for i, lr in enumerate(on_schedule)]
    )
    losses = []
    again.train(on_step=lambda s: losses.append(s.image_loss))
    assert again.step == 60 and again.optimizer.state
    straight, _ = toy_setup(tmp_path / "straight", steps=60)
    reference = []
    straight.train(on_step=lambda s: reference.append(s.image_loss))
    tail, reference_tail = sum(losses[-5:]) / 5, sum(reference[-5:]) / 5
    assert tail < 0.9 * losses[0] and tail < 1.15 * reference_tail  # learning on, as if unbroken
    third, _ = toy_setup(tmp_path / "packed", steps=60)  # a full checkpoint of it: moments kept
    assert third.resume() and third.rewarm == (30, 10) and third.optimizer.state
    with pytest.raises(ValueError, match="not an empty folder"):
        pack_run(tmp_path / "run", tmp_path / "packed")
    with pytest.raises(ValueError, match="no checkpoint to pack"):
        pack_run(tmp_path / "nothing", tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()  # nothing half-written
    newest = latest_checkpoint(tmp_path / "packed")  # step 60, a full checkpoint: damage it
    (newest / "model.safetensors").write_bytes(b"truncated")
    older = pack_run(tmp_path / "packed", tmp_path / "from_older")  # the one before is used
    assert older.name == "step_0000030"

    from dalle.cli import main

    assert main(["train", "pack", str(tmp_path / "run"), "--out", str(tmp_path / "cli")]) == 0
    assert "--resume" in capsys.readouterr().out
    assert latest_checkpoint(tmp_path / "cli").name == "step_0000030"
    assert main(["train", "pack", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no checkpoint to pack" in capsys.readouterr().err
