"""The dtype every default picks follows the machine's bf16 capability (faked both ways)."""

import pytest
import torch

from dalle.utils import device

FAST = frozenset({"avx512f", "amx_bf16", "amx_tile"})  # Sapphire Rapids
SLOW = frozenset({"avx2", "fma"})  # AMD Zen 3


@pytest.fixture
def cpu(monkeypatch):
    def fake(flags):
        monkeypatch.setattr(device, "cpu_flags", lambda: flags)

    return fake


def test_bf16_follows_the_cpu_flags(cpu):
    cpu(FAST)
    assert device.bf16_is_fast("cpu") and device.use_bf16(None)
    cpu(SLOW)
    assert not device.bf16_is_fast("cpu") and not device.use_bf16(None)
    cpu(frozenset({"avx512_bf16"}))  # Cooper Lake, Zen 4
    assert device.use_bf16(None)


def test_an_explicit_choice_always_wins(cpu):
    cpu(SLOW)
    assert device.use_bf16(True)
    cpu(FAST)
    assert not device.use_bf16(False)


def test_cpu_flags_reads_this_machine():
    flags = device.cpu_flags()
    assert isinstance(flags, frozenset)
    if flags:  # Linux: x86 'flags' or Arm 'Features'
        assert any(f in flags for f in ("fpu", "sse2", "fp", "asimd"))


def test_training_autocast_follows_the_machine(cpu):
    from accelerate.state import AcceleratorState

    from dalle.training.loop import make_accelerator

    for flags, requested, want in ((FAST, None, "bf16"), (SLOW, None, "no"), (SLOW, True, "bf16")):
        cpu(flags)
        AcceleratorState._reset_state(reset_partial_state=True)  # a process holds one state
        assert make_accelerator(requested).mixed_precision == want
    AcceleratorState._reset_state(reset_partial_state=True)


def test_dvae_trainer_autocast_follows_the_machine(cpu, tmp_path):
    """The dVAE trains on the shared loop: its autocast is the shared decision."""
    from accelerate.state import AcceleratorState

    from dalle.models.dvae import DVAEConfig
    from dalle.training.dvae_trainer import DVAETrainConfig, DVAETrainer

    for flags, want in ((FAST, "bf16"), (SLOW, "no")):
        cpu(flags)
        AcceleratorState._reset_state(reset_partial_state=True)
        trainer = DVAETrainer(
            DVAEConfig.from_preset("dvae-tiny"), DVAETrainConfig(), tmp_path, dataset=None
        )
        assert trainer.accelerator.mixed_precision == want
    AcceleratorState._reset_state(reset_partial_state=True)


def test_sampling_dtype_follows_the_machine(cpu):
    from ..pipelines.conftest import tiny_pipeline

    pipe = tiny_pipeline()
    cpu(SLOW)
    pipe(["a red circle"], 1, batch_size=1)
    assert pipe._bf16_transformer is None  # fp32 weights only
    cpu(FAST)
    pipe(["a red circle"], 1, batch_size=1)
    assert pipe._bf16_transformer is not None
    assert pipe._bf16_transformer.image_emb.weight.dtype == torch.bfloat16


def test_a_run_resumed_on_another_kind_of_cpu_says_its_precision_changed(cpu, tmp_path, caplog):
    from dalle.cli import main

    out = tmp_path / "run"
    base = ["train", "dvae", "--preset", "dvae-tiny", "--out", str(out), "--threads", "1",
            "--checkpoint-every", "2"]  # fmt: skip
    cpu(SLOW)
    assert main([*base, "--stop-at", "2"]) == 0
    cpu(FAST)
    with caplog.at_level("WARNING", logger="dalle.training.loop"):
        assert main([*base, "--resume", "--stop-at", "4"]) == 0
    assert "trained in fp32 until step 2 and goes on in bf16 (what this machine" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="dalle.training.loop"):
        assert main([*base, "--resume", "--stop-at", "6"]) == 0
    assert "goes on" not in caplog.text  # in bf16 both times now


def test_unclip_draws_in_batches_sized_for_the_dtype(cpu, tiny_unclip, monkeypatch):
    """16 images at once with bf16 units, 8 without (each the fastest measured there); a
    --batch-size always wins."""
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    batches = []

    def draw_pixels(prompts, seeds, prior, decoder, upsampler, bf16):
        batches.append((len(prompts), bf16))
        return torch.zeros(len(prompts), 3, 16, 16)

    monkeypatch.setattr(pipe, "draw_pixels", draw_pixels)
    for flags, batch_size, expected in ((FAST, None, [(16, True)]),
                                        (SLOW, None, [(8, False), (8, False)]),
                                        (SLOW, 16, [(16, False)])):  # fmt: skip
        cpu(flags)
        batches.clear()
        drawn = list(pipe.iter_images(["a red circle"], 16, batch_size=batch_size))
        assert len(drawn[0][1]) == 16 and batches == expected


def test_convolutions_sample_channels_last_in_fp32_on_a_cpu():
    assert device.conv_memory_format("cpu", bf16=False) == torch.channels_last
    assert device.conv_memory_format("cpu", bf16=True) == torch.contiguous_format
    assert device.conv_memory_format("cuda", bf16=False) == torch.contiguous_format


def test_unclip_samples_its_unets_in_the_layout_of_the_dtype(tiny_unclip, tmp_path, monkeypatch):
    """The pipeline's U-Nets take the layout of the dtype each call samples in (channels-last
    for fp32 on a CPU, contiguous for bf16, both ways), draw the same images in either, still
    save as they were, and a model in training keeps its layout."""
    import dalle.pipelines.unclip_pipeline as unclip
    from dalle.pipelines.unclip_pipeline import UnclipPipeline, sampling_fn

    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    unets = (pipe.decoder, pipe.upsampler)
    prompts, seeds = ["a red circle", "a blue square"], [0, 1]

    def layout():  # the layout every 3 x 3 weight is in (1 x 1 ones are both)
        weights = [p for m in unets for p in m.parameters() if p.dim() == 4 and p.shape[-1] > 1]
        found = [f for f in (torch.channels_last, torch.contiguous_format)
                 if all(w.is_contiguous(memory_format=f) for w in weights)]  # fmt: skip
        assert len(found) == 1, "the weights are in mixed layouts"
        return found[0]

    assert layout() == torch.contiguous_format  # as loaded
    fp32 = pipe.draw_pixels(prompts, seeds, bf16=False)
    assert layout() == torch.channels_last
    pipe.draw_pixels(prompts[:1], seeds[:1], bf16=True)
    assert layout() == torch.contiguous_format  # and back for bf16
    monkeypatch.setattr(unclip, "conv_memory_format", lambda device, bf16: torch.contiguous_format)
    same = pipe.draw_pixels(prompts, seeds, bf16=False)  # fp32, the layout held contiguous
    assert layout() == torch.contiguous_format
    assert torch.allclose(fp32, same, atol=1e-4)
    monkeypatch.undo()
    pipe.draw_pixels(prompts[:1], seeds[:1], bf16=False)
    assert layout() == torch.channels_last
    saved = UnclipPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "pipe"))
    for mine, theirs in ((pipe.decoder, saved.decoder), (pipe.upsampler, saved.upsampler)):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b)
    training = saved.decoder.train()
    with torch.inference_mode():
        sampling_fn(training, lambda x, t: x, bf16=False)
        sampling_fn(saved.upsampler, lambda x, t: x, bf16=False)  # an eval model converts
    assert all(p.is_contiguous() for p in training.parameters())
    converted = [p for p in saved.upsampler.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in converted)
    assert not any(p.is_inference() for p in saved.upsampler.parameters())  # it can still train
