"""How much do variations vary, and is the PSNR test of `dalle eval editing` (a variation is not a
copy when its PSNR to the source is under 35 dB) able to tell a variation from a reconstruction?
For the editing eval's scenes (``--prompts-seed 1``: validation), ``--num`` variations each per
config, as ``dalle vary`` draws them; eta 0 (the config ``0:1:50``) is the reconstruction,
which is no variation at all and is the reference. Per config: the share read as the source's
caption, the median PSNR to the source and between a scene's variations, and how far the objects
moved or changed size (the largest change of an object's centre or width, in pixels, as the
shapes scorer finds them, over scenes whose variation has the source's number of objects).

    python benchmarks/variation_variety.py [--model shapes-unclip] [--n 16] \
        [--configs 0:1:50,1:0.7:50,1:1:50]

Each config is ETA:ETA_FROM:STEPS[:FRESH_GUIDANCE] (default: the variations' default guidance
in the steps drawn afresh); ``--candidates M`` as `dalle vary` (default its 4 per kept variation;
the figures in docs/editing.md before 2026-12-02's AMD session were drawn without reranking, as
``--candidates`` equal to ``--num`` draws them). Prints one JSON line per config.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dalle.eval.editing import editing_sources, psnr, reads_as
from dalle.eval.shapes_scorer import analyse_image
from dalle.pipelines import editing
from dalle.pipelines.unclip_pipeline import UnclipPipeline
from dalle.utils.device import use_bf16


def objects(image) -> list[tuple]:
    """(colour, shape, centre, width) of each object the scorer finds, in a stable order."""
    found = analyse_image(np.asarray(image))
    return sorted((o.colour or "", o.shape, o.centre, o.bbox[2] - o.bbox[0] + 1) for o in found)


def largest_change(a: list[tuple], b: list[tuple]) -> float | None:
    """The largest move of a centre or change of width between matched objects, in pixels."""
    if len(a) != len(b):
        return None
    return max(
        max(abs(p[2][0] - q[2][0]), abs(p[2][1] - q[2][1]), abs(p[3] - q[3]))
        for p, q in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--num", type=int, default=2, help="variations per scene")
    parser.add_argument("--prompts-seed", type=int, default=1, help="1: the validation prompts")
    parser.add_argument(
        "--configs", default="0:1:50,1:0.7:50,1:1:50", help="ETA:ETA_FROM:STEPS,..."
    )
    parser.add_argument(
        "--candidates", type=int, default=None,
        help="variations drawn per scene, CLIP keeping --num (default: dalle vary's; --num: "
        "as drawn, no reranking)",
    )  # fmt: skip
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()

    pipe = UnclipPipeline.from_pretrained(args.model)
    bf16 = use_bf16(args.bf16, pipe.device)
    prompts, sources = editing_sources(args.n, args.prompts_seed)
    source_objects = [objects(s) for s in sources]
    for config in args.configs.split(","):
        eta, eta_from, steps, *fresh = config.split(":")
        guided = float(fresh[0]) if fresh else editing.VARIATION_FRESH_GUIDANCE
        settings = editing.EditSettings(steps=int(steps), eta=float(eta), eta_from=float(eta_from),
                                        fresh_guidance=guided)  # fmt: skip
        start = time.perf_counter()
        drawn = editing.variations(pipe, sources, args.num, 1, settings, bf16,
                                   candidates=args.candidates)  # fmt: skip
        keeps, to_source, between, changes = [], [], [], []
        for k, images in enumerate(drawn):
            arrays = [np.asarray(im) for im in images]
            for image, array in zip(images, arrays, strict=True):
                keeps.append(reads_as(image, prompts[k]))
                to_source.append(psnr(array, np.asarray(sources[k])))
                change = largest_change(source_objects[k], objects(image))
                if change is not None:
                    changes.append(change)
            between += [psnr(arrays[i], arrays[i + 1]) for i in range(len(arrays) - 1)]
        moved = np.array(changes)
        print(json.dumps({
            "eta": float(eta), "eta_from": float(eta_from), "steps": int(steps),
            "fresh_guidance": guided,
            "keeps_caption": round(float(np.mean(keeps)), 3),
            "psnr_to_source_median": round(float(np.median(to_source)), 1),
            "psnr_to_source_max": round(float(np.max(to_source)), 1),
            "psnr_between_variations_median": round(float(np.median(between)), 1),
            "moved_2px": round(float(np.mean(moved >= 2)), 3),
            "moved_4px": round(float(np.mean(moved >= 4)), 3),
            "moved_median_px": round(float(np.median(moved)), 1), "counted": len(moved),
            "seconds": round(time.perf_counter() - start, 1),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
