"""Issue 16's editing measures: the prompt set and the changes it makes."""

import math

import numpy as np

from dalle.eval.editing import editing_prompts, editing_sources, psnr, recoloured
from dalle.eval.shapes_scorer import score_image
from dalle.shapes.render import render_scene
from dalle.shapes.sampling import HashRandom, scene_for_prompt
from dalle.shapes.spec import is_held_out


def test_the_editing_prompts_state_sizes_and_name_seen_pairs_only():
    prompts = editing_prompts(64, seed=0)
    assert len({p.canonical() for p in prompts}) == 64
    assert prompts == editing_prompts(64, seed=0) and prompts != editing_prompts(64, seed=1)
    # editing_sources hands out these prompts and scenes (what every edit starts from)
    found, sources = editing_sources(64, seed=0)
    assert found == prompts
    for i, (p, source) in enumerate(zip(prompts, sources)):
        assert len(p.objects) == (1 if i % 4 == 0 else 2)
        assert all(o.size is not None and not is_held_out(o.colour, o.shape) for o in p.objects)
        # the rendered scene is read as its prompt: the measures start from correct sources
        image = render_scene(scene_for_prompt(p, "editing", 0, i))
        assert np.array_equal(np.asarray(source), image)
        assert score_image(image, p).correct, p.canonical()


def test_a_recoloured_prompt_changes_one_colour_to_a_seen_unused_one():
    rng = HashRandom("t")
    for p in editing_prompts(32, seed=3):
        for index in range(len(p.objects)):
            q = recoloured(p, index, rng)
            changed = [k for k in range(len(p.objects)) if p.objects[k] != q.objects[k]]
            assert changed == [index]
            new = q.objects[index]
            assert new.shape == p.objects[index].shape and new.size == p.objects[index].size
            assert new.colour not in {o.colour for o in p.objects}
            assert not is_held_out(new.colour, new.shape) and q.relation == p.relation


def test_psnr_against_hand_computed_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0, 0] = 255  # mse = 255^2 / 48
    assert psnr(a, b) == np.float64(10 * math.log10(48))


def test_the_report_on_the_bundled_pipelines_counts_every_edit_and_keeps_the_unmasked_pixels():
    from dalle.eval.editing import editing_report
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.pipelines.editing import VARIATION_ETA, VARIATION_ETA_FROM, EditSettings
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    pipe = UnclipPipeline.from_pretrained("shapes-unclip")
    # few DDIM steps and no reranking: the counts and the kept pixels do not depend on them, and
    # the defaults' 50 steps and 4 draws per variation made this test 5 min on an fp32-only CPU
    report = editing_report(pipe, n_prompts=4, num_variations=1, steps=6, candidates=1,
                            dalle_pipe=DallePipeline.from_pretrained("shapes"))  # fmt: skip
    # 4 prompts: prompt 0 one-object, 1-3 two-object; interpolations 0 -> 1 and 2 -> 3
    assert report["counts"] == {
        "variation_keeps_caption": 4, "variation_not_copy": 4, "text_diff": 4,
        "inpaint_unclip": 3, "inpaint_unclip_kept": 3, "inpaint_dalle": 3,
        "inpaint_dalle_kept": 3, "interpolation_ends": 4,
    }  # fmt: skip
    assert report["inpaint_unclip_kept"] == 1.0 and report["inpaint_dalle_kept"] == 1.0
    assert report["eta"] == VARIATION_ETA and report["eta_from"] == VARIATION_ETA_FROM
    assert report["steps"] == 6 and report["guidance"] == EditSettings.guidance
    assert report["candidates"] == 1
    assert report["inpaint_method"] == ("mask" if pipe.decoder.config.inpaint else "repaint")
    assert all(0 <= report[k] <= 1 for k in report["counts"])


def test_the_reports_steps_and_guidance_reach_every_inversion_and_decoding(monkeypatch):
    from dalle.eval.editing import editing_report
    from dalle.pipelines import editing
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    seen = []
    real_invert = editing.invert

    def spy(pipe, pixels, z, settings, *args, **kwargs):
        seen.append((settings.steps, settings.guidance))
        return real_invert(pipe, pixels, z, settings, *args, **kwargs)

    monkeypatch.setattr(editing, "invert", spy)
    pipe = UnclipPipeline.from_pretrained("shapes-unclip")
    report = editing_report(pipe, n_prompts=2, num_variations=1, steps=3, guidance=1.5,
                            edits=("variations", "text_diff", "interpolate"),
                            candidates=2)  # fmt: skip
    # one inversion for the variations' batch, one per text diff, one per interpolation
    assert seen == [(3, 1.5)] * 4
    assert report["steps"] == 3 and report["guidance"] == 1.5 and report["candidates"] == 2
    assert report["counts"]["variation_keeps_caption"] == 2  # the kept ones, not the candidates
