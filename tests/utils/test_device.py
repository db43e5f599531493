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


def test_unclip_samples_its_unets_in_the_layout_of_the_dtype(cpu, tiny_unclip, tmp_path):
    """The pipeline's U-Nets take the layout of the dtype each call samples in (channels-last
    for fp32 on a CPU, contiguous for bf16), draw the same images in either, and still save."""
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    pipe = UnclipPipeline.from_pretrained(tiny_unclip)

    def layouts():
        return {
            fmt: all(p.is_contiguous(memory_format=fmt) for m in (pipe.decoder, pipe.upsampler)
                     for p in m.parameters() if p.dim() == 4)
            for fmt in (torch.channels_last, torch.contiguous_format)
        }  # fmt: skip

    assert layouts() == {torch.channels_last: False, torch.contiguous_format: True}  # as loaded
    pipe.draw_pixels(["a red circle", "a blue square"], [0, 1], bf16=True)
    assert layouts()[torch.contiguous_format]
    fp32 = pipe.draw_pixels(["a red circle", "a blue square"], [0, 1], bf16=False)
    assert layouts() == {torch.channels_last: True, torch.contiguous_format: False}
    pipe.decoder.to(memory_format=torch.contiguous_format)
    pipe.upsampler.to(memory_format=torch.contiguous_format)
    import dalle.pipelines.unclip_pipeline as unclip

    chosen = unclip.conv_memory_format
    try:  # the same fp32 draw, the layout held contiguous
        unclip.conv_memory_format = lambda device, bf16: torch.contiguous_format
        same = pipe.draw_pixels(["a red circle", "a blue square"], [0, 1], bf16=False)
    finally:
        unclip.conv_memory_format = chosen
    assert torch.allclose(fp32, same, atol=1e-4)
    pipe.draw_pixels(["a red circle"], [0], bf16=False)  # channels-last again
    saved = UnclipPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "pipe"))
    for a, b in zip(pipe.decoder.parameters(), saved.decoder.parameters(), strict=True):
        assert torch.equal(a, b)
