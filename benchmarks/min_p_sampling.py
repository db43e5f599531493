"""Would a min-p filter after top-k help the DALL·E pipeline on the shapes world?

Min-p keeps the tokens whose probability is at least ``alpha`` times the most likely one's, so it
cuts the unlikely alternatives where the model is sure (inside an object) and keeps several where
it is not. Each ``--alphas`` value is patched into the sampler's filter (after the pipeline's own
top-k and temperature; 0 is the pipeline as it is) and scored like `dalle eval generation` on the
users mix, ``--prompts-seed 1`` (the validation set) by default, once per ``--seeds`` image seed.

    python benchmarks/min_p_sampling.py [--model shapes] [--alphas 0,0.05,0.1] [--seeds 0,1]

Prints one JSON line per (alpha, seed): seen / held-out accuracy, each category's accuracy
and the error counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dalle.pipelines.sampling as sampling
from dalle.pipelines.dalle_pipeline import DallePipeline

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_shapes_rows, sampler_variant_parser  # noqa: E402

_filter = sampling.filter_logits


def with_min_p(alpha: float):
    def filter_logits(logits, top_k, top_p):
        logits = _filter(logits, top_k, top_p)
        if alpha > 0:
            p = logits.softmax(-1)
            logits = logits.masked_fill(p < alpha * p.max(-1, keepdim=True).values, float("-inf"))
        return logits

    return filter_logits


def main() -> None:
    parser = sampler_variant_parser(__doc__, "--alphas", "0,0.05,0.1")
    parser.set_defaults(seeds="0,1")
    args = parser.parse_args()
    pipe = DallePipeline.from_pretrained(args.model)
    for alpha in (float(a) for a in args.alphas.split(",")):
        sampling.filter_logits = with_min_p(alpha)  # pick_tokens reads the module's name
        print_shapes_rows(pipe, args, {"min_p": alpha})
    sampling.filter_logits = _filter


if __name__ == "__main__":
    main()
