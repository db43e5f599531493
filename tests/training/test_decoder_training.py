"""`dalle train decoder` / `dalle train upsampler`, and the unCLIP pipeline drawing images."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.data import open_dataset
from dalle.data.base import SkipReport
from dalle.models.unet import UNet, UNetConfig
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.unclip_pipeline import (
    DecoderSettings,
    PriorSettings,
    UnclipPipeline,
    UpsamplerSettings,
    caption_ids,
    make_sampler,
    make_schedule,
)
from dalle.training.decoder_trainer import (
    DecoderTrainConfig,
    DecoderTrainer,
    UpsamplerTrainConfig,
    UpsamplerTrainer,
    random_boxes,
    training_timesteps,
)
from dalle.training.encoded_data import EncodedBatches, clip_image_embeddings, load_cache
from dalle.utils.images import area_resize

from .cli_runs import (
    assert_resume_is_bit_exact,
    caption_folder,
    one_and_two_processes,
    run_train,
)


def decoder_config(ranker: ClipRanker) -> UNetConfig:
    c = ranker.clip.config
    return UNetConfig.from_preset("decoder-tiny").replace(
        embed_dim=c.embed_dim, num_text_tokens=c.num_text_tokens, text_seq_len=c.text_seq_len
    )


def test_a_tiny_decoder_learns(tiny_clip, tmp_path):
    torch.set_num_threads(1)
    ranker = ClipRanker.from_pretrained(tiny_clip)
    config = DecoderTrainConfig(
        unet="decoder-tiny", data="shapes", steps=120, batch_size=16, lr=2e-3, warmup_steps=10,
        bf16=False, checkpoint_every=10**6, sample_every=10**6, ema_decay=0.9,
    )  # fmt: skip
    data = open_dataset("shapes", image_size=ranker.clip.config.image_size, seed=0)
    encoder = clip_image_embeddings(ranker.clip)
    batches = EncodedBatches(data, encoder, 16, 0, None, SkipReport(), with_images=True)
    trainer = DecoderTrainer(
        decoder_config(ranker), config, tmp_path, ranker.clip, ranker.tokenizer, batches
    )
    losses = []
    trainer.train(lambda s: losses.append(s.loss))
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert last < 0.5 * first, (first, last)
    grid = Image.open(trainer.sample())  # data images above the decoder's drawings
    assert grid.size == (2 * 8 * 8, 2 * 2 * 8)


class ColourBatches:
    """Solid red or blue 16 x 16 images captioned with their colour (or, with ``say=False``,
    all "a picture"); the CLIP embeddings zero (so only the caption can tell the colour)."""

    report = SkipReport()

    def __init__(self, dim: int, say: bool = True):
        self.dim, self.say = dim, say

    def __call__(self, start_step: int, position=None):
        g = torch.Generator().manual_seed(start_step)
        while True:
            red = torch.rand(16, generator=g) < 0.5
            colour = torch.where(red[:, None], torch.tensor([0.9, 0.1, 0.1]),
                                 torch.tensor([0.1, 0.1, 0.9]))  # fmt: skip
            images = colour[:, :, None, None].expand(16, 3, 16, 16).clone()
            captions = ["a red picture" if r else "a blue picture" for r in red.tolist()]
            captions = captions if self.say else ["a picture"] * 16
            yield images, torch.zeros(16, self.dim), captions


def test_a_tiny_decoder_learns_to_read_its_caption(tiny_clip, tmp_path):
    torch.set_num_threads(1)
    ranker = ClipRanker.from_pretrained(tiny_clip)
    config = DecoderTrainConfig(
        unet="decoder-tiny", steps=150, batch_size=16, lr=3e-3, warmup_steps=10, bf16=False,
        checkpoint_every=10**6, sample_every=10**6, text_dropout=0.2, ema_decay=0.9,
    )  # fmt: skip
    batches = ColourBatches(ranker.clip.config.embed_dim)
    trainer = DecoderTrainer(
        decoder_config(ranker), config, tmp_path, ranker.clip, ranker.tokenizer, batches
    )
    trainer.train()
    images, embeds, captions = next(batches(10**6))
    x0 = area_resize(images, 8) * 2 - 1
    g = torch.Generator().manual_seed(0)
    t = torch.randint(40, 90, (16,), generator=g)  # noisy enough that the colour is unclear
    noise = torch.randn(x0.shape, generator=g)
    x_t = trainer.schedule.add_noise(x0, noise, t)
    target = trainer.schedule.target(x0, noise, t, "v")

    def loss(texts):
        ids, mask = caption_ids(ranker.tokenizer, texts, ranker.clip.config.text_seq_len)
        with torch.no_grad():
            out = trainer.unwrapped(x_t, t, embeds, ids, mask)
        return torch.nn.functional.mse_loss(out, target).item()

    swapped = ["a blue picture" if "red" in c else "a red picture" for c in captions]
    assert loss(captions) < 0.7 * loss(swapped), (loss(captions), loss(swapped))


def test_random_boxes():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_boxes(5, 32, g, 0.0), torch.ones(5, 1, 32, 32))
    boxes = random_boxes(200, 32, g, 1.0)
    for box in boxes[:, 0]:
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 4 <= h <= 24 and 4 <= w <= 24  # an eighth to three quarters of the side
        assert box.sum() == h * w  # one rectangle, zero outside
        assert torch.equal(rows, torch.arange(rows[0], rows[0] + h))
    some = random_boxes(400, 32, g, 0.25)
    assert 0.15 < (some.mean((1, 2, 3)) < 1).float().mean() < 0.35


def test_training_timesteps_can_favour_the_noisiest_part_of_the_schedule():
    g = torch.Generator().manual_seed(0)
    uniform = training_timesteps(20000, 1000, g)
    assert uniform.min() == 0 and uniform.max() == 999
    assert abs((uniform >= 700).float().mean().item() - 0.3) < 0.015
    # the option off draws exactly what a run without it drew
    a = training_timesteps(64, 1000, torch.Generator().manual_seed(5))
    b = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    # half from t >= 700, half uniform: 0.5 + 0.5 * 0.3 of them at t >= 700, all in range
    t = training_timesteps(20000, 1000, g, noisy_share=0.5, noisy_from=0.7)
    assert t.min() == 0 and t.max() == 999
    assert abs((t >= 700).float().mean().item() - 0.65) < 0.015
    assert abs((t < 350).float().mean().item() - 0.175) < 0.015  # the low end still trained
    every = training_timesteps(1000, 1000, g, noisy_share=1.0, noisy_from=0.9)
    assert every.min() >= 900
    with pytest.raises(ValueError, match="noisy_share"):
        DecoderTrainConfig(noisy_share=1.5)
    with pytest.raises(ValueError, match="noisy_from"):
        DecoderTrainConfig(noisy_from=1.0)


def test_an_inpainting_decoder_starts_as_its_plain_decoder_and_learns_to_read_the_known_pixels(
    tiny_clip, tmp_path
):
    torch.set_num_threads(1)
    ranker = ClipRanker.from_pretrained(tiny_clip)
    torch.manual_seed(0)
    plain = UNet(decoder_config(ranker))
    for p in plain.parameters():  # zero-initialised output layers would hide any difference
        p.data.add_(0.05 * torch.randn_like(p))
    model = UNet.inpainting_from(plain)
    assert model.config.inpaint and model.input.weight.shape[1] == 7
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(3, 3, 8, 8, generator=g), torch.tensor([5, 50, 90])
    z = torch.randn(3, ranker.clip.config.embed_dim, generator=g)
    ids, mask = caption_ids(ranker.tokenizer, ["a", "b", "c"], ranker.clip.config.text_seq_len)
    known, draw = torch.rand(3, 3, 8, 8, generator=g), (torch.rand(3, 1, 8, 8, generator=g) > 0.5)
    with torch.no_grad():
        expected = plain(x, t, z, ids, mask)
        torch.testing.assert_close(model(x, t, z, ids, mask), expected)
        torch.testing.assert_close(model(x, t, z, ids, mask, known=known, draw=draw), expected)
    with pytest.raises(ValueError, match="both"):
        model(x, t, z, ids, mask, known=known)
    with pytest.raises(ValueError, match="does not inpaint"):
        plain(x, t, z, ids, mask, known=known, draw=draw)

    # trained on solid red or blue pictures, all captioned "a picture", the outside of a box
    # is the only clue to the colour inside it
    config = DecoderTrainConfig(
        unet="decoder-tiny", steps=150, batch_size=16, lr=3e-3, warmup_steps=10, bf16=False,
        checkpoint_every=10**6, sample_every=10**6, ema_decay=0.9, inpaint_prob=1.0,
    )  # fmt: skip
    batches = ColourBatches(ranker.clip.config.embed_dim, say=False)
    with pytest.raises(ValueError, match="inpainting U-Net"):
        DecoderTrainer(decoder_config(ranker), config, tmp_path, ranker.clip, ranker.tokenizer,
                       batches)  # fmt: skip
    trainer = DecoderTrainer(decoder_config(ranker).replace(inpaint=True), config, tmp_path,
                             ranker.clip, ranker.tokenizer, batches)  # fmt: skip
    trainer.train()
    images, embeds, captions = next(batches(10**6))
    x0 = area_resize(images, 8) * 2 - 1
    t = torch.randint(40, 90, (16,), generator=g)  # noisy enough that the colour is unclear
    noise = torch.randn(x0.shape, generator=g)
    x_t = trainer.schedule.add_noise(x0, noise, t)
    target = trainer.schedule.target(x0, noise, t, "v")
    box = torch.zeros(16, 1, 8, 8)
    box[:, :, 2:6, 2:6] = 1
    ids, mask = caption_ids(ranker.tokenizer, captions, ranker.clip.config.text_seq_len)

    def loss(known):
        with torch.no_grad():
            out = trainer.unwrapped(x_t, t, embeds, ids, mask, known=known, draw=box)
        return torch.nn.functional.mse_loss(out[:, :, 2:6, 2:6], target[:, :, 2:6, 2:6]).item()

    swapped = x0.flip(1)  # red <-> blue outside the box
    assert loss(x0) < 0.7 * loss(swapped), (loss(x0), loss(swapped))


def test_a_tiny_upsampler_learns_and_sharpens(tmp_path):
    torch.set_num_threads(1)
    config = UpsamplerTrainConfig(
        unet="upsampler-tiny", data="shapes", steps=300, batch_size=16, lr=2e-3,
        warmup_steps=10, bf16=False, checkpoint_every=10**6, sample_every=10**6, ema_decay=0.9,
    )  # fmt: skip
    model_config = UNetConfig.from_preset("upsampler-tiny")
    data = open_dataset("shapes", image_size=16, seed=0)
    trainer = UpsamplerTrainer(model_config, config, tmp_path, data)
    losses = []
    trainer.train(lambda s: losses.append(s.loss))
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert last < 0.5 * first, (first, last)
    # it draws what the low-resolution image shows: far closer to the originals than what it
    # draws from the other images' low-resolution copies
    from dalle.pipelines.unclip_pipeline import upsample_images

    images, _ = next(trainer.batches(500))
    small, model = area_resize(images, 8), trainer.ema_model()
    drawn = upsample_images(model, small, list(range(16)), UpsamplerSettings())
    shuffled = upsample_images(model, small.roll(1, 0), list(range(16)), UpsamplerSettings())
    assert (drawn - images).abs().mean() < 0.6 * (shuffled - images).abs().mean()
    assert Image.open(trainer.sample()).size == (2 * 8 * 16, 2 * 3 * 16)


def test_upsampler_crops_stay_aligned_with_the_low_resolution_image(tmp_path):
    config = UpsamplerTrainConfig(unet="upsampler-tiny", crop_size=8, bf16=False)
    trainer = UpsamplerTrainer(UNetConfig.from_preset("upsampler-tiny"), config, tmp_path, None)
    x0 = torch.rand(6, 3, 16, 16)
    x0_crop, low_crop = trainer._crop(x0, area_resize(x0, 8), trainer.generator)
    assert x0_crop.shape == (6, 3, 8, 8) and low_crop.shape == (6, 3, 4, 4)
    torch.testing.assert_close(area_resize(x0_crop, 4), low_crop)
    with pytest.raises(ValueError, match="multiple of the scale factor"):
        UpsamplerTrainer(UNetConfig.from_preset("upsampler-tiny"),
                         config.replace(crop_size=7), tmp_path, None)  # fmt: skip


def test_cached_embeddings_come_back_with_their_images(tiny_clip, tmp_path):
    data = caption_folder(tmp_path / "data", 6)
    out = tmp_path / "run"
    result = run_train("decoder", "decoder-tiny", out, "--clip", str(tiny_clip), "--no-bf16",
                       "--data", str(data), "--batch-size", "4", "--steps", "4",
                       "--checkpoint-every", "4", "--caption-dropout", "0.2",
                       "--clip-dropout", "0")  # fmt: skip
    assert "cached the CLIP image embeddings of 6 images" in result.stdout
    saved = json.loads((out / "train_config.json").read_text())
    assert (saved["text_dropout"], saved["clip_dropout"]) == (0.2, 0.0)
    assert "skipped 1 unreadable file" in result.stdout
    ranker = ClipRanker.from_pretrained(tiny_clip)
    encoder = clip_image_embeddings(ranker.clip)
    cache = load_cache(out / encoder.cache_file, encoder)
    dataset = open_dataset(str(data), image_size=16)
    batches = EncodedBatches(dataset, encoder, 4, 0, cache, SkipReport(), with_images=True)
    seen = set()
    for images, embeds, captions in [next(batches(step)) for step in range(3)]:
        with torch.no_grad():
            want = ranker.clip.encode_image(images)
        torch.testing.assert_close(embeds, want, atol=1e-5, rtol=0)  # each with its own image
        assert all(c.startswith("a red circle number") for c in captions)
        seen.update(captions)
    assert len(seen) == 6  # every readable example within two epochs


@pytest.mark.slow
def test_decoder_resume_after_sigkill_is_bit_exact(tiny_clip, tmp_path):
    assert_resume_is_bit_exact("decoder", "decoder-tiny", tmp_path, 12, 4, "--clip",
                               str(tiny_clip), "--no-bf16")  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "killed/samples").iterdir()) == [
        "step_0000006.png", "step_0000012.png"
    ]  # fmt: skip


@pytest.mark.slow
def test_resume_on_cached_folder_data_and_the_upsampler_are_bit_exact(tiny_clip, tmp_path):
    data = caption_folder(tmp_path / "data", 9, broken=0, seed=1)
    decoder = ["--clip", str(tiny_clip), "--data", str(data), "--batch-size", "4"]
    for stage, extra in (("decoder", decoder), ("upsampler", ["--crop-size", "8"])):
        assert_resume_is_bit_exact(stage, f"{stage}-tiny", tmp_path / stage, 12, 4, *extra,
                                   "--no-bf16", "--checkpoint-every", "4")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["decoder", "upsampler"])
def test_two_processes_train_like_one(stage, tiny_clip, tmp_path):
    extra = ["--clip", str(tiny_clip)] if stage == "decoder" else []
    one, two = one_and_two_processes(
        stage, f"{stage}-tiny", tmp_path, 6, *extra, "--sample-every", "2"
    )
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=1e-4, rtol=1e-3)


def test_the_pipeline_draws_each_image_from_its_own_seed(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    assert pipe.decoder_defaults == DecoderSettings(steps=6, guidance=2.0)
    assert pipe.upsampler_defaults == UpsamplerSettings(steps=3)
    assert pipe.prior_defaults == PriorSettings(steps=4)
    prompts = ["a red circle", "a small blue square above a large green cross"]
    images = pipe(prompts, 3, seed=5, batch_size=4, bf16=False)
    assert len(images) == 6 and all(im.size == (16, 16) for im in images)
    arrays = [np.asarray(im) for im in images]
    assert not np.array_equal(arrays[0], arrays[1])
    again = pipe(prompts, 3, seed=5, batch_size=1, bf16=False)  # other batches, same images
    for a, b in zip(arrays, again, strict=True):
        assert np.abs(a.astype(int) - np.asarray(b).astype(int)).max() <= 1
    second = dict(pipe.iter_images(prompts, 3, seed=5, bf16=False))[1]  # default batch
    assert np.abs(np.asarray(second[2]).astype(int) - arrays[5].astype(int)).max() <= 1
    other = pipe(prompts[:1], 1, seed=6, bf16=False)[0]
    assert not np.array_equal(np.asarray(other), arrays[0])


def test_the_prior_draws_the_same_embedding_whatever_the_batch(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    prompts = ["a red circle", "a small blue square above a large green cross", "a white cross"]
    together = pipe._prior_draws(prompts, [(5, i) for i in range(3)], pipe.prior_defaults)
    alone = torch.cat([pipe._prior_draws([p], [(5, i)], pipe.prior_defaults)
                       for i, p in enumerate(prompts)])  # fmt: skip
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)  # fp32 whatever the machine


def test_decoder_guidance_is_uncond_plus_scale_times_the_difference():
    from dalle.pipelines.unclip_pipeline import guided_decoder

    calls = []

    class Stub(torch.nn.Module):  # cond: x + 1 everywhere; uncond (both nulls): x - 1
        def forward(self, x, t, clip, ids, mask, keep_clip=None, keep_text=None):
            calls.append((keep_clip, keep_text))
            keep = torch.ones(len(x), dtype=torch.bool) if keep_clip is None else keep_clip
            return x + torch.where(keep, 1.0, -1.0)[:, None, None, None]

    x, t = torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    e, ids, mask = torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3) > 0
    for g, want in ((0.0, -1.0), (1.0, 1.0), (2.0, 3.0), (3.0, 5.0)):
        out = guided_decoder(Stub(), e, ids, mask, g)(x, t)
        torch.testing.assert_close(out, torch.full_like(x, want))
    keep_clip, keep_text = calls[-1]  # one batch: [conditional; both nulls]
    assert keep_clip.tolist() == [True, True, False, False] and torch.equal(keep_clip, keep_text)


def test_caption_guidance_scales_the_caption_s_own_difference():
    from dalle.pipelines.unclip_pipeline import guided_decoder

    calls = []

    class Stub(torch.nn.Module):  # x + 1 for the CLIP embedding, + 10 for the caption
        def forward(self, x, t, clip, ids, mask, keep_clip=None, keep_text=None):
            calls.append((keep_clip.tolist(), keep_text.tolist()))
            return x + (keep_clip.float() + 10 * keep_text.float())[:, None, None, None]

    x, t = torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    e, ids, mask = torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3) > 0
    # uncond 0, CLIP alone 1, both 11: 0 + g (1 - 0) + gc (11 - 1)
    for g, gc, want in ((3.0, 5.0, 53.0), (2.0, 0.0, 2.0), (1.0, 2.0, 21.0), (3.0, 3.0, 33.0)):
        calls.clear()
        out = guided_decoder(Stub(), e, ids, mask, g, caption_guidance=gc)(x, t)
        torch.testing.assert_close(out, torch.full_like(x, want))
        assert len(calls) == 1 and len(calls[0][0]) == (4 if gc == g else 6)  # one batch
    calls.clear()  # without the caption (variations) the caption's scale has nothing to scale
    out = guided_decoder(Stub(), e, ids, mask, 3.0, read_caption=False, caption_guidance=5.0)
    torch.testing.assert_close(out(x, t), torch.full_like(x, 3.0))
    # the caption alone (the null CLIP embedding in the conditional half): uncond 0, caption 10
    for g, want in ((3.0, 30.0), (1.0, 10.0)):
        calls.clear()
        out = guided_decoder(Stub(), e, ids, mask, g, read_clip=False, caption_guidance=5.0)
        torch.testing.assert_close(out(x, t), torch.full_like(x, want))
        assert not any(calls[0][0]) and calls[0][1][:2] == [True, True]
    with pytest.raises(ValueError, match="guidance"):
        DecoderSettings(caption_guidance=-1.0)


def test_the_guidance_interval_guides_only_the_steps_inside_it():
    from types import SimpleNamespace

    from dalle.pipelines.unclip_pipeline import guided_decoder

    rows = []

    class Stub(torch.nn.Module):  # cond: x + 1; uncond: x - 1 (as above); 11 timesteps
        config = SimpleNamespace(num_timesteps=11)

        def forward(self, x, t, clip, ids, mask, keep_clip=None, keep_text=None):
            rows.append(len(x))
            return x + torch.where(keep_clip, 1.0, -1.0)[:, None, None, None]

    x = torch.zeros(2, 3, 4, 4)
    e, ids, mask = torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3) > 0
    fn = guided_decoder(Stub(), e, ids, mask, 3.0, interval=(0.2, 0.6))  # t 2 to 6 of 0-10
    for t, want, batch in ((0, 1.0, 2), (1, 1.0, 2), (2, 5.0, 4), (6, 5.0, 4), (7, 1.0, 2),
                           (10, 1.0, 2)):  # fmt: skip
        rows.clear()
        out = fn(x, torch.full((2,), t, dtype=torch.long))
        torch.testing.assert_close(out, torch.full_like(x, want))
        assert rows == [batch]  # unguided steps run the conditional half alone
    # the caption's own scale follows the same interval: one batch of 2 outside, 6 inside
    fn = guided_decoder(Stub(), e, ids, mask, 3.0, caption_guidance=5.0, interval=(0.5, 1.0))
    for t, batch in ((4, 2), (5, 6)):
        rows.clear()
        fn(x, torch.full((2,), t, dtype=torch.long))
        assert rows == [batch]
    # settings: read back from JSON as a list, checked
    assert DecoderSettings(guidance_interval=[0, 0.5]).guidance_interval == (0.0, 0.5)
    assert DecoderSettings().guidance_interval == (0.0, 1.0)
    for bad in ((0.6, 0.5), (-0.1, 1.0), (0.0, 1.5), (0.5,), (0.0, float("nan")), 0.4, None,
                (False, True)):  # fmt: skip
        with pytest.raises(ValueError, match="guidance_interval"):
            DecoderSettings(guidance_interval=bad)


def test_the_guidance_interval_saves_and_draws(tiny_unclip, tmp_path):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    embeds = pipe.text_embeddings(["a red circle"] * 2)
    everywhere = pipe.decode(embeds, ["a red circle"] * 2, [1, 2])
    sampler = make_sampler("ddim", make_schedule(pipe.decoder))
    sampler.set_timesteps(pipe.decoder_defaults.steps)
    levels = sorted(t / (pipe.decoder.config.num_timesteps - 1) for t in sampler.timesteps.tolist())
    late = replace(pipe.decoder_defaults, guidance_interval=(0.0, 0.5))  # guides some steps only
    assert pipe.decoder_defaults.guidance != 1 and levels[0] <= 0.5 < levels[-1]
    assert not torch.allclose(everywhere, pipe.decode(embeds, ["a red circle"] * 2, [1, 2], late))
    # an interval strictly between two of the sampler's steps guides none of them
    nowhere = replace(late, guidance_interval=(levels[0] + 1e-6, levels[1] - 1e-6))
    torch.testing.assert_close(pipe.decode(embeds, ["a red circle"] * 2, [1, 2], nowhere),
                               pipe.decode(embeds, ["a red circle"] * 2, [1, 2],
                                           replace(late, guidance=1.0)))  # fmt: skip
    torch.testing.assert_close(everywhere, pipe.decode(embeds, ["a red circle"] * 2, [1, 2],
                                                       replace(late, guidance_interval=(0, 1))))  # fmt: skip
    pipe.decoder_defaults = late
    pipe.save_pretrained(tmp_path / "p")
    assert UnclipPipeline.from_pretrained(tmp_path / "p").decoder_defaults == late


def test_spacing_changes_the_drawing_and_saves(tiny_unclip, tmp_path):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    embeds = pipe.text_embeddings(["a red circle"] * 2)
    steps = pipe.decoder_defaults.steps
    assert steps >= 3  # else every spacing is the same two timesteps
    even = pipe.decode(embeds, ["a red circle"] * 2, [1, 2])
    packed = replace(pipe.decoder_defaults, spacing=0.5)
    assert not torch.allclose(even, pipe.decode(embeds, ["a red circle"] * 2, [1, 2], packed))
    torch.testing.assert_close(even, pipe.decode(embeds, ["a red circle"] * 2, [1, 2],
                                                 replace(packed, spacing=1)))  # fmt: skip
    pipe.decoder_defaults = packed
    pipe.prior_defaults = replace(pipe.prior_defaults, spacing=2.0)
    pipe.save_pretrained(tmp_path / "p")
    loaded = UnclipPipeline.from_pretrained(tmp_path / "p")
    assert loaded.decoder_defaults == packed and loaded.prior_defaults.spacing == 2.0
    assert loaded.upsampler_defaults.spacing == 1.0
    for make in (DecoderSettings, PriorSettings, UpsamplerSettings):
        for bad in (0, -1.0, float("inf"), "0.5", None, False):
            with pytest.raises(ValueError, match="spacing must be a finite number above 0"):
                make(spacing=bad)


def test_guidance_and_steps_change_the_drawing(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    embeds = pipe.text_embeddings(["a red circle"] * 2)
    base = pipe.decode(embeds, ["a red circle"] * 2, [1, 2])
    assert base.shape == (2, 3, 8, 8) and 0 <= base.min() and base.max() <= 1
    unguided = pipe.decode(embeds, ["a red circle"] * 2, [1, 2], DecoderSettings(guidance=1.0))
    assert not torch.allclose(base, unguided)
    fewer = pipe.decode(embeds, ["a red circle"] * 2, [1, 2], DecoderSettings(steps=3))
    assert not torch.allclose(base, fewer)
    torch.testing.assert_close(pipe.decode(embeds[:1], ["a red circle"], [1]), base[:1])


def test_generate_with_an_unclip_pipeline(tiny_unclip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "a red circle", "a white cross", "--model", str(tiny_unclip),
                 "--num-images", "2", "--out", str(out), "--decoder-guidance", "1.5",
                 "--decoder-guidance-interval", "0,0.7", "--decoder-spacing", "0.5", "--no-bf16",
                 "--threads", "1"]) == 0  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0000_00.png", "0000_01.png", "0001_00.png", "0001_01.png"]
    image = Image.open(out / "0001_01.png")
    assert image.size == (16, 16)
    assert image.text["prompt"] == "a white cross" and image.text["decoder_guidance"] == "1.5"
    assert image.text["decoder_steps"] == "6" and image.text["upsampler_steps"] == "3"
    assert image.text["decoder_guidance_interval"] == "0.0,0.7"
    assert image.text["decoder_spacing"] == "0.5" and image.text["upsampler_spacing"] == "1.0"
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    want = pipe(["a red circle", "a white cross"], 2, seed=0, bf16=False,
                decoder=DecoderSettings(steps=6, guidance=1.5, guidance_interval=(0, 0.7),
                                        spacing=0.5),
                upsampler=UpsamplerSettings(steps=3), prior=PriorSettings(steps=4))  # fmt: skip
    got = np.asarray(image).astype(int)
    assert np.abs(got - np.asarray(want[3]).astype(int)).max() <= 1
    capsys.readouterr()
    bad = [
        (["--top-k", "3"], "DALL·E sampling options"),
        (["--decoder-guidance", "nan"], "guidance"),
        (["--decoder-steps", "0"], "--decoder-steps"),
        (["--decoder-spacing", "0"], "--decoder-spacing"),
        (["--prior-sampler", "euler"], "--prior-sampler"),
    ]
    for extra, message in bad:
        try:  # argparse's own checks exit; ours return 2
            code = main(["generate", "a red circle", "--model", str(tiny_unclip), "--out",
                         str(tmp_path / "bad"), *extra])  # fmt: skip
        except SystemExit as e:
            code = e.code
        assert code == 2
        assert message in capsys.readouterr().err
    assert not list((tmp_path / "bad").glob("*.png"))
    assert main(["generate", "a red circle", "--decoder-steps", "3", "--out",
                 str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "unCLIP options" in capsys.readouterr().err


def test_options_are_checked_before_loading_or_deleting(tiny_unclip, tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(UnclipPipeline, "from_pretrained", no_loading)
    out = tmp_path / "out"
    out.mkdir()
    (out / "0000_00.png").write_bytes(b"an earlier run's image")
    bad = [
        (["--top-k", "3"], "DALL·E sampling options"),
        (["--decoder-guidance", "inf"], "guidance"),
        (["--num-images", "2", "--candidates", "1"], "--candidates 1"),
        (["--decoder-steps", "101"], "--decoder-steps"),  # the tiny decoder has 100 timesteps
        (["--prior-steps", "101"], "--prior-steps: the prior's steps (101) exceed the 100"),
    ]
    for extra, message in bad:
        try:  # argparse refuses some (SystemExit), the command the others (status 2)
            code = main(["generate", "a red circle", "--model", str(tiny_unclip), "--out",
                         str(out), "--replace", *extra])  # fmt: skip
        except SystemExit as e:
            code = e.code
        assert code == 2 and message in capsys.readouterr().err
        assert (out / "0000_00.png").exists()  # --replace deleted nothing
    code = main(["complete", str(tmp_path / "x.png"), "a red circle", "--rows", "2", "--model",
                 str(tiny_unclip), "--out", str(out), "--replace"])  # fmt: skip
    assert code == 2 and "needs a DALL·E pipeline" in capsys.readouterr().err
    assert (out / "0000_00.png").exists()


def test_train_decoder_inpaint_from_a_pipeline_s_decoder(tiny_clip, tiny_unclip, tmp_path):
    out = tmp_path / "inpaint"
    assert main(["train", "decoder", "--preset", "decoder-tiny", "--clip", str(tiny_clip),
                 "--init", str(tiny_unclip), "--inpaint-prob", "0.5", "--steps", "4",
                 "--no-bf16", "--threads", "1", "--out", str(out), "--ema-decay", "0.5",
                 "--warmup-steps", "1", "--noisy-share", "0.5", "--noisy-from", "0.8"]) == 0  # fmt: skip
    settings = json.loads((out / "train_config.json").read_text())
    assert settings["ema_decay"] == 0.5 and settings["warmup_steps"] == 1
    assert settings["noisy_share"] == 0.5 and settings["noisy_from"] == 0.8
    plain = UNet.from_pretrained(tiny_unclip, part="decoder")
    trained = UNet.from_pretrained(out / "decoder")
    assert trained.config == plain.config.replace(inpaint=True)
    weight = trained.input.weight
    assert weight[:, 3:].abs().max() > 0  # the extra channels started at zero and moved
    # 4 steps from the pipeline's decoder: its other weights moved a little, not from scratch
    assert (weight[:, :3] - plain.input.weight).abs().max() < 0.1
    assert main(["train", "decoder", "--preset", "decoder-tiny", "--clip", str(tiny_clip),
                 "--inpaint-prob", "1.5", "--out", str(tmp_path / "bad")]) == 2  # fmt: skip


def test_prior_guidance_is_uncond_plus_scale_times_the_difference():
    from dalle.pipelines.unclip_pipeline import guided_prior

    calls = []

    class Stub(torch.nn.Module):  # with the caption: x + 1; caption dropped: x - 1
        def forward(self, x, t, tokens, text, mask, keep=None):
            calls.append(keep)
            kept = torch.ones(len(x), dtype=torch.bool) if keep is None else keep
            return x + torch.where(kept, 1.0, -1.0)[:, None]

    x, t = torch.zeros(2, 8), torch.zeros(2, dtype=torch.long)
    tokens, text, mask = torch.zeros(2, 3, 4), torch.zeros(2, 4), torch.ones(2, 3) > 0
    for g, want in ((0.0, -1.0), (1.0, 1.0), (1.5, 2.0), (3.0, 5.0)):
        out = guided_prior(Stub(), tokens, mask, text, g)(x, t)
        torch.testing.assert_close(out, torch.full_like(x, want))
    assert calls[1] is None  # g = 1: the conditional prediction alone, one pass
    assert calls[-1].tolist() == [True, True, False, False]  # one batch: [cond; uncond]
