"""Would a min-p filter after top-k help the DALL·E pipeline on the shapes world?

Min-p keeps the tokens whose probability is at least ``alpha`` times the most likely one's, so it
cuts the unlikely alternatives where the model is sure (inside an object) and keeps several where
it is not. Each ``--alphas`` value is patched into the sampler's filter (after the pipeline's own
top-k and temperature; 0 is the pipeline as it is) and scored like `dalle eval generation` on the
users mix, ``--prompts-seed 1`` (the validation set) by default, once per ``--seeds`` image seed.

    python benchmarks/min_p_sampling.py [--model shapes] [--alphas 0,0.05,0.1] [--seeds 0,1]

Prints one JSON line per (alpha, seed): seen / held-out accuracy, one- and two-object accuracy
and the error counts.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import dalle.pipelines.sampling as sampling
from dalle.eval.generation import shapes_generation_report
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.shapes.prompts import evaluation_prompts

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--alphas", default="0,0.05,0.1")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--prompts-seed", type=int, default=1)
    parser.add_argument("--n-prompts", type=int, default=128)
    args = parser.parse_args()
    pipe = DallePipeline.from_pretrained(args.model)
    prompts = evaluation_prompts(args.n_prompts, args.prompts_seed)
    for alpha in (float(a) for a in args.alphas.split(",")):
        sampling.filter_logits = with_min_p(alpha)  # pick_tokens reads the module's name
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as out:
                report = shapes_generation_report(pipe, prompts, out, 4, seed)
            categories = report.category_accuracy()
            print(json.dumps({
                "min_p": alpha, "seed": seed, "seen": report.seen_accuracy,
                "held_out": report.held_out_accuracy,
                "one_object": categories["one_object"]["accuracy"],
                "two_objects": categories["two_objects"]["accuracy"],
                "errors": report.error_counts,
            }), flush=True)  # fmt: skip
    sampling.filter_logits = _filter


if __name__ == "__main__":
    main()
