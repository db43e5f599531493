"""How many variations to draw per kept one: CLIP keeping the closest of the first D draws.

Draws ``--draws`` variations of each scene of `dalle eval editing` (its prompts and seeds, the
variations' default settings), scores every draw with the shapes scorer and records its CLIP
cosine to the source; then, for each D from ``--keep`` to ``--draws``, keeps the ``--keep`` of
the first D draws closest to the source in CLIP space, which is what ``--candidates D`` keeps
(variation j is seeded by its index whatever D is; the cosines here are of the 8-bit images).

    python benchmarks/variation_candidates.py [--model shapes-unclip] [--n 32] \
        [--prompts-seed 1] [--draws 8] [--keep 2] [--json FILE]

Prints one JSON line per D (keeps the caption, not copies, PSNR to the source and between the
kept ones), then one with what no ranking can recover: scenes none of whose draws keeps the
caption, and the rate a perfect ranking of all the draws would reach. ``--json`` also writes
every draw's score and cosine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dalle.eval.editing import PSNR_COPY_DB, editing_sources, psnr, reads_as
from dalle.pipelines import editing
from dalle.pipelines.unclip_pipeline import UnclipPipeline
from dalle.utils.device import use_bf16
from dalle.utils.images import pil_to_tensor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=32, help="scenes")
    parser.add_argument("--prompts-seed", type=int, default=1, help="1: the validation prompts")
    parser.add_argument("--draws", type=int, default=8, help="variations drawn per scene")
    parser.add_argument("--keep", type=int, default=2, help="variations kept per scene")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--json", type=Path, help="also write every draw's record here")
    args = parser.parse_args()
    if not 1 <= args.keep <= args.draws:
        parser.error("--keep must be between 1 and --draws")

    pipe = UnclipPipeline.from_pretrained(args.model)
    bf16 = use_bf16(args.bf16, pipe.device)
    prompts, sources = editing_sources(args.n, args.prompts_seed)
    records = []
    start = time.perf_counter()
    for first in range(0, args.n, 16):  # the eval's blocks: the same seeds and batches
        block = sources[first : first + 16]
        drawn = editing.variations(pipe, block, args.draws, args.prompts_seed, None, bf16,
                                   candidates=args.draws)  # fmt: skip
        z = pipe.image_embeddings(editing.as_tensor(block, editing.output_size(pipe)))
        for k, images in enumerate(drawn):
            arrays = [np.asarray(image) for image in images]
            source = np.asarray(block[k])
            z_drawn = pipe.image_embeddings(torch.stack([pil_to_tensor(im) for im in images]))
            records.append({
                "prompt": str(prompts[first + k]),
                "keeps": [bool(reads_as(im, prompts[first + k])) for im in images],
                "cosine": [round(float(c), 5) for c in (z_drawn @ z[k]).tolist()],
                "psnr": [round(psnr(a, source), 2) for a in arrays],
                "between": [[round(psnr(a, b), 2) for b in arrays] for a in arrays],
            })  # fmt: skip
    seconds = time.perf_counter() - start
    if args.json:
        args.json.write_text(json.dumps(records))

    for d in range(args.keep, args.draws + 1):
        kept, to_source, between = [], [], []
        for r in records:
            order = sorted(range(d), key=lambda j: -r["cosine"][j])[: args.keep]
            kept += [r["keeps"][j] for j in order]
            to_source += [r["psnr"][j] for j in order]
            if args.keep >= 2:
                between.append(r["between"][order[0]][order[1]])
        print(json.dumps({
            "drawn": d, "kept": args.keep, "keeps_caption": round(float(np.mean(kept)), 3),
            "keeps_caption_count": int(np.sum(kept)), "variations": len(kept),
            "not_copies": round(float(np.mean(np.array(to_source) < PSNR_COPY_DB)), 3),
            "psnr_to_source_median": round(float(np.median(to_source)), 1),
            "psnr_between_kept_median": round(float(np.median(between)), 1) if between else None,
        }), flush=True)  # fmt: skip
    right = [sum(r["keeps"]) for r in records]
    print(json.dumps({
        "scenes_with_no_draw_right": sum(c == 0 for c in right),
        "perfect_ranking": round(sum(min(c, args.keep) for c in right) / (args.keep * len(right)), 3),
        "each_draw": round(float(np.mean([x for r in records for x in r["keeps"]])), 3),
        "seconds": round(seconds, 1),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
