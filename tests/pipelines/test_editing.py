"""Issue 16: variations, interpolations, text diffs and inpainting (library and CLI)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from dalle.cli import main
from dalle.config import replace_given
from dalle.pipelines import editing as E
from dalle.pipelines.unclip_pipeline import UnclipPipeline

FAST = E.EditSettings(steps=8)


def picture(seed: int, size: int = 16) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_slerp_against_the_closed_form():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(E.slerp(a, b, 0.0), a)
    torch.testing.assert_close(E.slerp(a, b, 1.0), b)
    half = torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2)
    torch.testing.assert_close(E.slerp(a, b, 0.5), half)
    third = E.slerp(a, b, 1 / 3)  # 30 degrees along the arc
    torch.testing.assert_close(third, torch.tensor([math.cos(math.pi / 6), 0.5, 0.0]))
    torch.testing.assert_close(E.slerp(2 * a, 4 * b, 0.5), 3 * half)  # norms move linearly
    torch.testing.assert_close(E.slerp(a, a, 0.3), a)  # parallel: no division by zero
    rows = E.slerp(a.expand(3, -1), b.expand(3, -1), torch.tensor([[0.0], [0.5], [1.0]]))
    torch.testing.assert_close(rows, torch.stack([a, half, b]))
    for bad in (-a, torch.zeros(3)):  # no single path: opposite vectors, a zero vector
        with pytest.raises(ValueError):
            E.slerp(a, bad, 0.5)


def test_masks_follow_the_images_api_convention():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 255))
    rgba.putpixel((1, 2), (0, 0, 0, 0))
    region = E.read_mask(rgba, (4, 4))
    assert region.tolist() == [[(x, y) == (1, 2) for x in range(4)] for y in range(4)]
    plain = Image.new("L", (4, 4), 0)
    plain.putpixel((3, 0), 255)
    assert E.read_mask(plain, (4, 4)).nonzero().tolist() == [[0, 3]]
    for mask, size, message in [
        (plain, (5, 4), "must match"),
        (Image.new("L", (4, 4), 0), (4, 4), "marks nothing"),
        (Image.new("RGBA", (4, 4), (9, 9, 9, 0)), (4, 4), "covers the whole image"),
    ]:
        with pytest.raises(ValueError, match=message):
            E.read_mask(mask, size)


def test_ddim_decoding_of_the_inversion_gives_the_image_back(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    images = E.as_tensor([picture(0), picture(1)], 16)
    z = pipe.image_embeddings(images)
    x_t = E.invert(pipe, images, z, E.EditSettings(steps=50))
    back = E.decode_latent(pipe, z, x_t, [0, 1], E.EditSettings(steps=50))
    small = torch.nn.functional.interpolate(images, size=8, mode="area")
    assert (back - small).abs().max() < 0.02
    assert not torch.allclose(x_t[0], x_t[1])
    # eta 0 is deterministic whatever the seed; eta 1 varies with it
    same = E.decode_latent(pipe, z[:1].expand(2, -1), x_t[:1].expand(2, -1, -1, -1), [3, 4], FAST)
    torch.testing.assert_close(same[0], same[1])
    varied = E.EditSettings(steps=8, eta=1.0)
    rows = E.decode_latent(pipe, z[:1].expand(2, -1), x_t[:1].expand(2, -1, -1, -1), [3, 4], varied)
    assert not torch.allclose(rows[0], rows[1])
    # eta applied from 0 of the schedule down: no step is stochastic, eta 0's image comes back
    kept = E.EditSettings(steps=8, eta=1.0, eta_from=0.0)
    rows = E.decode_latent(pipe, z[:1].expand(2, -1), x_t[:1].expand(2, -1, -1, -1), [3, 4], kept)
    plain = E.decode_latent(pipe, z[:1], x_t[:1], [3], E.EditSettings(steps=8))
    torch.testing.assert_close(rows[0], rows[1])
    torch.testing.assert_close(rows[:1], plain)
    half = E.EditSettings(steps=8, eta=1.0, eta_from=0.5)  # the noisy half kept, the rest varies
    rows = E.decode_latent(pipe, z[:1].expand(2, -1), x_t[:1].expand(2, -1, -1, -1), [3, 4], half)
    assert not torch.allclose(rows[0], rows[1])


def test_fresh_guidance_guides_only_the_steps_drawn_afresh(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    images = E.as_tensor([picture(0)], 16)
    z = pipe.image_embeddings(images)
    x_t = E.invert(pipe, images, z, E.EditSettings(steps=8))

    def decoded(**settings):
        return E.decode_latent(pipe, z, x_t, [3], E.EditSettings(steps=8, eta=1.0, **settings))

    half = decoded(eta_from=0.5)
    assert not torch.allclose(decoded(eta_from=0.5, fresh_guidance=5.0), half)
    torch.testing.assert_close(decoded(eta_from=0.5, fresh_guidance=1.0), half)  # = guidance
    # no step drawn afresh (eta from 0): the guidance has nowhere to apply, the image comes back
    torch.testing.assert_close(decoded(eta_from=0.0, fresh_guidance=5.0), decoded(eta_from=0.0))
    # eta on every step (from 1): every step is drawn afresh, so guided throughout
    torch.testing.assert_close(decoded(fresh_guidance=5.0), decoded(guidance=5.0))
    assert not torch.allclose(decoded(fresh_guidance=5.0), decoded())
    with pytest.raises(ValueError, match="fresh_guidance"):
        E.EditSettings(fresh_guidance=float("nan"))


def test_edits_return_what_they_promise(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    a, b = picture(0), picture(1)
    found = E.variations(pipe, [a, b], 3, seed=1, settings=E.EditSettings(steps=8, eta=1.0))
    assert [len(v) for v in found] == [3, 3] and found[0][0].size == (16, 16)
    again = E.variations(pipe, [b], 3, seed=1, settings=E.EditSettings(steps=8, eta=1.0))
    assert not np.array_equal(np.asarray(again[0][0]), np.asarray(found[1][0]))  # input index
    frames = E.interpolate(pipe, a, b, 4, settings=FAST)
    assert len(frames) == 4
    assert len(E.interpolate(pipe, a, b, 3, noise="fixed", settings=FAST)) == 3
    # by default both ends are their images' own latents: A -> B ends where B -> A starts
    back = E.interpolate(pipe, b, a, 4, settings=FAST)
    for one, other in ((frames[-1], back[0]), (frames[0], back[-1])):
        diff = np.abs(np.asarray(one, np.int16) - np.asarray(other, np.int16))
        assert diff.max() <= 1
    edited = E.text_diff(pipe, a, "a red circle", "a blue circle", 0.5, 2, settings=FAST)
    assert len(edited) == 2
    with pytest.raises(ValueError, match="amount"):
        E.text_diff(pipe, a, "a red circle", "a blue circle", 1.5)
    with pytest.raises(ValueError, match="same CLIP text embedding"):
        E.text_diff(pipe, a, "a red circle", "a red circle", 0.5)


def test_variation_candidates_keep_those_closest_to_the_source(tiny_unclip):
    """With candidates M, the M variations are the ones drawn without reranking (seeds j < M),
    and the kept ones are those whose CLIP image embeddings are closest to the source's."""
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    a = picture(0)
    settings = E.EditSettings(steps=8, eta=1.0)
    (every,) = E.variations(pipe, [a], 4, seed=2, settings=settings, candidates=4)
    (kept,) = E.variations(pipe, [a], 2, seed=2, settings=settings)  # 2 x 2 by default
    z = pipe.image_embeddings(E.as_tensor([a], 16))[0]
    cosines = pipe.image_embeddings(E.as_tensor(every, 16)) @ z  # of the 8-bit images
    chosen = [v.info["candidate"] for v in kept]
    others = [j for j in range(4) if j not in chosen]
    assert len(set(chosen)) == 2 and kept[0].info["clip_score"] >= kept[1].info["clip_score"]
    assert float(cosines[chosen].min()) >= float(cosines[others].max()) - 1e-4
    for v in kept:
        assert np.array_equal(np.asarray(v), np.asarray(every[v.info["candidate"]]))
        assert v.info["clip_score"] == pytest.approx(float(cosines[v.info["candidate"]]), abs=1e-4)
    (same,) = E.variations(pipe, [a], 2, seed=2, settings=settings, candidates=2)  # M = N: as is
    assert [np.asarray(v).tolist() for v in same] == [np.asarray(v).tolist() for v in every[:2]]
    with pytest.raises(ValueError, match="at least num_images"):
        E.variations(pipe, [a], 3, settings=settings, candidates=2)


def test_text_diffs_read_the_captions_both_ways(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    a = picture(0)
    images = E.as_tensor([a], 16)
    z = pipe.image_embeddings(images)
    # inverted and decoded with one caption at eta 0: the image comes back through the caption path
    x_t = E.invert(pipe, images, z, E.EditSettings(steps=50), captions=["a red circle"])
    blind = E.invert(pipe, images, z, E.EditSettings(steps=50))
    assert not torch.allclose(x_t, blind)  # the caption changes what the decoder predicts
    back = E.decode_latent(pipe, z, x_t, [0], E.EditSettings(steps=50), captions=["a red circle"])
    assert (back - torch.nn.functional.interpolate(images, size=8, mode="area")).abs().max() < 0.02
    # the edit: --from read while inverting, --to while decoding, the moved embedding in both
    source, target = "a red circle", "a blue circle"
    edited = E.text_diff(pipe, a, source, target, 0.5, 1, seed=3, settings=FAST, captions=True)
    x_t = E.invert(pipe, images, z, FAST, captions=[source])
    texts = pipe.text_embeddings([source, target])
    moved = E.slerp(z, torch.nn.functional.normalize(texts[1] - texts[0], dim=-1)[None], 0.5)
    seeds = [E.image_seed(3, 0, 0)]
    small = E.decode_latent(pipe, moved, x_t, seeds, FAST, captions=[target])
    by_hand = E.to_pil(E.finish(pipe, small, seeds, False))
    assert np.array_equal(np.asarray(edited[0]), np.asarray(by_hand[0]))
    # the target caption is read: without it the same latent decodes to another image
    uncaptioned = E.decode_latent(pipe, moved, x_t, seeds, FAST)
    assert not torch.equal(small, uncaptioned)  # (exactly equal when the caption is not passed)


def test_inpainting_keeps_every_pixel_outside_the_mask(tiny_unclip):
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    source = picture(2)
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[3:9, 5:12] = True
    fast = E.InpaintSettings(steps=5, upsampler_steps=3, resample=2)
    drawn = E.inpaint_unclip(pipe, source, region, "a red circle", 2, settings=fast)
    src = np.asarray(source)
    for image in drawn:
        out = np.asarray(image)
        assert np.array_equal(out[~region.numpy()], src[~region.numpy()])
        assert not np.array_equal(out[region.numpy()], src[region.numpy()])
    with pytest.raises(ValueError, match="16 x 16"):
        E.inpaint_unclip(pipe, picture(2, 20), torch.zeros(20, 20, dtype=torch.bool), "x")


def test_inpainting_with_a_decoder_trained_to_read_a_mask(tiny_unclip):
    from dalle.models.unet import UNet

    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[3:9, 5:12] = True
    fast = E.InpaintSettings(steps=5, upsampler_steps=3, resample=2)
    assert fast.resolved_method(pipe) == "repaint"
    # RePaint's own step count, not the pipeline's text-to-image sampling (6 DDIM steps here)
    assert pipe.decoder_defaults.steps != E.REPAINT_STEPS
    decoder, upsampler = E.InpaintSettings().stages(pipe)
    assert decoder.steps == E.REPAINT_STEPS and upsampler.steps == E.REPAINT_UPSAMPLER_STEPS
    assert E.InpaintSettings(upsampler_steps=3).stages(pipe)[1].steps == 3
    with pytest.raises(ValueError, match="not trained to inpaint"):
        E.inpaint_unclip(pipe, picture(2), region, "x", settings=E.InpaintSettings(method="mask"))
    with pytest.raises(ValueError, match="method must be one of"):
        E.InpaintSettings(method="blend")
    pipe.decoder = UNet.inpainting_from(pipe.decoder)
    assert fast.resolved_method(pipe) == "mask"
    assert E.InpaintSettings().stages(pipe)[0] == pipe.decoder_defaults  # sampled as it samples
    assert E.InpaintSettings().stages(pipe)[1].steps == E.REPAINT_UPSAMPLER_STEPS  # repaints
    seen = []
    drawn = E.inpaint_unclip(pipe, picture(2), region, "a red circle", 2, settings=fast,
                             on_step=lambda i, x0: seen.append((i, tuple(x0.shape))))  # fmt: skip
    assert seen == [(i, (2, 3, 8, 8)) for i in range(5)]  # the pipeline's sampler, no resampling
    src = np.asarray(picture(2))
    for image in drawn:
        out = np.asarray(image)
        assert np.array_equal(out[~region.numpy()], src[~region.numpy()])
        assert not np.array_equal(out[region.numpy()], src[region.numpy()])
    # the same decoder by resampling, when asked
    again = E.inpaint_unclip(pipe, picture(2), region, "a red circle", 1,
                             settings=E.InpaintSettings(5, None, 3, 2, "repaint"))  # fmt: skip
    assert np.array_equal(np.asarray(again[0])[~region.numpy()], src[~region.numpy()])


def test_dalle_inpainting_keeps_the_untouched_tokens_and_pixels():
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.shapes.dataset import shapes_example

    pipe = DallePipeline.from_pretrained("shapes")
    source = Image.fromarray(shapes_example("test", 3).image)
    region = torch.zeros(64, 64, dtype=torch.bool)
    region[20:30, 33:50] = True
    drawn = E.inpaint_dalle(pipe, source, region, "a red circle", 2, seed=0, bf16=False)
    src = np.asarray(source)
    for image in drawn:
        assert np.array_equal(np.asarray(image)[~region.numpy()], src[~region.numpy()])


def two_pictures(tmp_path) -> tuple:
    """Two 16 x 16 pictures saved as a.png and b.png, their paths."""
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    picture(0).save(a)
    picture(1).save(b)
    return a, b


def test_the_editing_commands(tiny_unclip, tmp_path, capsys):
    a, b = two_pictures(tmp_path)
    model = ["--model", str(tiny_unclip), "--decoder-steps", "6", "--threads", "1"]
    out = tmp_path / "vary"
    assert main(["vary", str(a), str(b), "--num-images", "2", "--out", str(out), *model]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "0000_01.png",
                                                      "0001_00.png", "0001_01.png"]  # fmt: skip
    info = Image.open(out / "0001_00.png").text
    assert info["edit"] == "variation" and info["source"] == str(b) and info["eta"] == "1.0"
    drawn = 2 * E.VARIATION_CANDIDATES_PER_IMAGE  # the default: so many drawn per kept one
    assert info["candidates"] == str(drawn) and int(info["candidate"]) in range(drawn)
    assert float(info["clip_score"])
    out = tmp_path / "vary1"
    assert main(["vary", str(a), "--num-images", "1", "--candidates", "1", "--out", str(out),
                 *model]) == 0  # fmt: skip
    assert "candidates" not in Image.open(out / "0000_00.png").text  # not reranked
    # the options reach the pixels: the library's variation with the same settings
    out = tmp_path / "vary_eta"
    assert main(["vary", str(a), "--num-images", "1", "--candidates", "1", "--eta", "0.5",
                 "--seed", "2", "--no-bf16", "--out", str(out), *model]) == 0  # fmt: skip
    pipe = UnclipPipeline.from_pretrained(tiny_unclip)
    settings = replace_given(E.variation_settings(steps=6), {"eta": 0.5})
    mine = E.variations(pipe, [Image.open(a).convert("RGB")], 1, 2, settings, False)[0][0]
    drawn = np.asarray(Image.open(out / "0000_00.png").convert("RGB"))
    assert np.array_equal(drawn, np.asarray(mine))
    default_eta = E.variations(pipe, [Image.open(a).convert("RGB")], 1, 2,
                               E.variation_settings(steps=6), False)[0][0]  # fmt: skip
    assert not np.array_equal(drawn, np.asarray(default_eta))
    out = tmp_path / "interp"
    assert main(["interpolate", str(a), str(b), "--steps", "3", "--out", str(out), *model]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00.png", "01.png", "02.png", "strip.png"]
    assert Image.open(out / "strip.png").size == (48, 16)
    out = tmp_path / "edit"
    assert main(["edit", str(a), "--from", "a red circle", "--to", "a blue circle", "--amount",
                 "0.4", "--out", str(out), *model]) == 0  # fmt: skip
    info = Image.open(out / "0000_00.png").text
    assert info["target_text"] == "a blue circle" and info["amount"] == "0.4"
    assert info["decoder_captions"] == "True"
    assert main(["edit", str(a), "--from", "a red circle", "--to", "a blue circle",
                 "--no-decoder-captions", "--replace", "--out", str(out), *model]) == 0  # fmt: skip
    assert Image.open(out / "0000_00.png").text["decoder_captions"] == "False"
    mask = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    for x in range(4, 9):
        mask.putpixel((x, 5), (0, 0, 0, 0))
    mask.save(tmp_path / "mask.png")
    out = tmp_path / "inpaint"
    assert main(["inpaint", str(a), "a red circle", "--mask", str(tmp_path / "mask.png"),
                 "--resample", "1", "--num-images", "2", "--out", str(out), *model]) == 0  # fmt: skip
    got = np.asarray(Image.open(out / "0000_01.png").convert("RGB"))
    keep = np.asarray(mask)[:, :, 3] != 0
    assert np.array_equal(got[keep], np.asarray(picture(0))[keep])
    assert Image.open(out / "0000_01.png").text["mask"] == str(tmp_path / "mask.png")
    assert Image.open(out / "0000_01.png").text["method"] == "repaint"  # a plain decoder
    assert {"prior_steps", "prior_guidance", "upsampler_steps"} <= set(
        Image.open(out / "0000_01.png").text
    )
    capsys.readouterr()
    Image.new("L", (16, 16), 0).save(tmp_path / "empty.png")
    picture(3, 20).save(tmp_path / "big.png")
    big_mask = Image.new("L", (20, 20), 0)
    big_mask.putpixel((2, 2), 255)
    big_mask.save(tmp_path / "big_mask.png")
    Image.new("L", (10, 16), 255).save(tmp_path / "small.png")
    (tmp_path / "fake.png").write_bytes(b"not a png")
    bad_out, m = str(tmp_path / "bad"), ["--model", str(tiny_unclip)]
    bad = [
        (["inpaint", str(a), "x", "--mask", str(tmp_path / "empty.png")], "marks nothing"),
        (["inpaint", str(a), "x", "--mask", str(tmp_path / "small.png")], "must match"),
        (["inpaint", str(tmp_path / "fake.png"), "x", "--mask", str(a)], "not an image"),
        (["inpaint", str(a), " ", "--mask", str(tmp_path / "mask.png")], "prompt is empty"),
        (
            ["inpaint", str(a), "x", "--mask", str(tmp_path / "mask.png"), "--method", "mask"],
            "not trained to inpaint",
        ),  # fmt: skip
        (["edit", str(a), "--from", "x", "--to", "y", "--amount", "2"], "--amount"),
        (["vary", str(a), "--eta", "nan"], "eta"),
        (["vary", str(a), "--num-images", "3", "--candidates", "2"], "at least --num-images"),
        (
            ["vary", str(a), str(tmp_path / "small.png")],
            "small.png is 10 x 16: editing needs square",
        ),
        (["interpolate", str(tmp_path / "small.png"), str(a)], "needs square"),
        (["edit", str(tmp_path / "small.png"), "--from", "x", "--to", "y"], "needs square"),
        (
            ["inpaint", str(tmp_path / "big.png"), "x", "--mask", str(tmp_path / "big_mask.png")],
            "inpaints 16 x 16",
        ),
    ]
    for args, message in bad:
        try:  # argparse refuses some (SystemExit), the command the others (status 2)
            code = main([*args, *m, "--out", bad_out])
        except SystemExit as e:
            code = e.code
        assert code == 2, args
        assert message in capsys.readouterr().err, args
    assert main(["vary", str(a), "--model", "shapes", "--out", bad_out]) == 2
    assert "needs an unCLIP pipeline" in capsys.readouterr().err
    assert not list((tmp_path / "bad").glob("*.png"))
    assert main(["vary", str(a), *m, "--out", str(tmp_path / "vary")]) == 2  # the first run's
    assert "earlier run" in capsys.readouterr().err


def test_the_editing_commands_replace_whole_runs_show_progress_and_describe_the_strip(
    tiny_unclip, tmp_path, capsys
):
    a, b = two_pictures(tmp_path)
    model = ["--model", str(tiny_unclip), "--decoder-steps", "4", "--threads", "1"]
    out = tmp_path / "vary"
    assert main(["vary", str(a), str(b), "--num-images", "2", "--out", str(out), *model]) == 0
    err = capsys.readouterr().err
    assert "vary" in err and "12/12" in err  # the inversion's 4 steps, then 4 per input
    (out / "notes.txt").write_text("mine")
    # a smaller run with --replace leaves none of the earlier run's images behind
    assert main(["vary", str(a), "--num-images", "1", "--replace", "--out", str(out), *model]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000_00.png", "notes.txt"]
    # --replace never deletes an input, and a run that fails deletes nothing
    before = (out / "0000_00.png").read_bytes()
    (out / "0003_00.png").write_bytes(before)  # an image named like a run's, given as input
    assert main(["vary", str(out / "0003_00.png"), "--replace", "--out", str(out), *model]) == 2
    assert "an input of this command" in capsys.readouterr().err
    mask = Image.new("L", (16, 16), 0)
    mask.putpixel((3, 3), 255)
    mask.save(tmp_path / "mask.png")
    failing = ["inpaint", str(a), "x", "--mask", str(tmp_path / "mask.png"), "--method", "mask"]
    assert main([*failing, "--replace", "--out", str(out), *model]) == 2
    assert "not trained to inpaint" in capsys.readouterr().err
    assert (out / "0000_00.png").read_bytes() == before and (out / "0003_00.png").exists()
    # a command that stops with an error leaves no empty folder of its own making
    never = tmp_path / "never"
    assert main(["vary", str(tmp_path / "missing.png"), "--out", str(never), *model]) == 2
    assert "missing.png" in capsys.readouterr().err and not never.exists()

    out = tmp_path / "interp"
    assert main(["interpolate", str(a), str(b), "--steps", "3", "--out", str(out), *model]) == 0
    assert "8/8" in capsys.readouterr().err  # inversion and decoding, 4 steps each
    (out / "100.png").write_bytes((out / "00.png").read_bytes())  # as a 101-frame run leaves
    assert main(["interpolate", str(a), str(b), "--steps", "2", "--seed", "5", "--replace",
                 "--out", str(out), *model]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["00.png", "01.png", "strip.png"]
    strip = Image.open(out / "strip.png").text
    assert strip["edit"] == "interpolation strip" and strip["source_b"] == str(b)
    assert (strip["seed"], strip["steps"], strip["frames"]) == ("5", "4", "2")
    assert "frame" not in strip and Image.open(out / "01.png").text["frame"] == "1"

    assert main(["edit", str(a), "--from", "a red circle", "--to", "a blue circle",
                 "--out", str(tmp_path / "edit"), *model]) == 0  # fmt: skip
    assert "edit" in (err := capsys.readouterr().err) and "8/8" in err
    assert main(["inpaint", str(a), "a red circle", "--mask", str(tmp_path / "mask.png"),
                 "--resample", "1", "--out", str(tmp_path / "inpaint"), *model]) == 0  # fmt: skip
    # the decoder's 4, then the upsampler's REPAINT_UPSAMPLER_STEPS (15; not the pipeline's 3)
    assert "inpaint" in (err := capsys.readouterr().err) and "19/19" in err
