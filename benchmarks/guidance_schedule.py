"""Would a guidance scale that changes over the image help the DALL·E pipeline on the shapes world?

Stronger guidance removes size errors and adds count and shape errors (docs/transformer.md): a
scale that moves over the raster order might keep the gain and not the cost. Each
``--schedules`` entry ``G0:G1`` is a scale that goes linearly from G0 at the first image token to
G1 at the last (``G`` alone: constant, the pipeline as it is at the pipeline's 2), patched into the
sampler's guidance step, and scored like `dalle eval generation` on the users mix,
``--prompts-seed 1`` (the validation set) by default, once per ``--seeds`` image seed.

    python benchmarks/guidance_schedule.py [--model shapes] [--schedules 2,1.5:2.5,2.5:1.5]
        [--seeds 0]

Prints one JSON line per (schedule, seed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import dalle.pipelines.sampling as sampling
from dalle.pipelines.dalle_pipeline import DallePipeline

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_shapes_rows, sampler_variant_parser  # noqa: E402

_guide = sampling.guide


def scheduled(first: float, last: float, positions: int):
    """A guidance step whose scale runs from ``first`` to ``last`` over ``positions`` calls (one
    sampling pass from the first image token draws exactly that many), then starts again."""
    calls = 0

    def guide(logits: torch.Tensor, guidance: float) -> torch.Tensor:
        nonlocal calls
        k = calls % positions
        calls += 1
        return _guide(logits, first + (last - first) * k / (positions - 1))

    return guide


def main() -> None:
    parser = sampler_variant_parser(__doc__, "--schedules", "2,1.5:2.5,2.5:1.5")
    args = parser.parse_args()
    pipe = DallePipeline.from_pretrained(args.model)
    positions = pipe.transformer.config.image_seq_len
    try:
        for entry in args.schedules.split(","):
            first, _, last = entry.partition(":")
            g0, g1 = float(first), float(last or first)
            sampling.guide = scheduled(g0, g1, positions)  # next_token reads the module's name
            print_shapes_rows(pipe, args, {"guidance_from": g0, "guidance_to": g1})
    finally:
        sampling.guide = _guide


if __name__ == "__main__":
    main()
