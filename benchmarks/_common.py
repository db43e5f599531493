"""What the benchmark scripts share: timing, the command line, running the anchors."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"


def median_time(fn: Callable[[], object], reps: int, warmup: int) -> float:
    """Median wall time of ``reps`` calls of ``fn`` after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """``--anchors-venv``, ``--reps`` and ``--warmup``; scripts add their own options."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anchors-venv", type=Path, default=Path(".anchors-venv"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    return parser


def _anchors_last_line(venv: Path, *args: str) -> str | None:
    """The last line the anchors venv's python prints when run with ``args`` in the anchors
    folder (so that its scripts import), 2 threads; None, with a note, if the venv is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"no anchors venv at {venv}: run shared/anchors/install.sh {venv}", file=sys.stderr)
        return None
    out = subprocess.run([str(python), *args], capture_output=True, text=True, check=True,
                         cwd=ANCHORS, env={**os.environ, "OMP_NUM_THREADS": "2"})  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def run_anchor(venv: Path, script: str, *args: str) -> dict | None:
    """The JSON line an anchors benchmark script prints last, run in the anchors venv (2 threads);
    None, with a note, if the venv is missing."""
    line = _anchors_last_line(venv, str(ANCHORS / script), *args, "--threads", "2")
    return None if line is None else json.loads(line)


def run_in_anchors(venv: Path, code: str) -> str | None:
    """The last line ``code`` prints, run by the anchors venv's python beside the anchors'
    scripts (``import bench_dalle2_pytorch`` works), 2 threads; None if the venv is missing."""
    return _anchors_last_line(venv, "-c", code)


def rendered_prompt_scenes(n: int, prompts_seed: int):
    """``n`` evaluation prompts of the users mix (seed 1: the validation set), their parsed
    captions and a scene rendered for each, as (n, 3, H, W) floats in [0, 1]."""
    import numpy as np
    import torch

    from dalle.shapes.captions import parse_caption
    from dalle.shapes.prompts import evaluation_prompts
    from dalle.shapes.render import render_scene
    from dalle.shapes.sampling import scene_for_prompt

    prompts = evaluation_prompts(n, prompts_seed, "users")
    parsed = [parse_caption(p) for p in prompts]
    scenes = [render_scene(scene_for_prompt(p, "diag", i)) for i, p in enumerate(parsed)]
    images = torch.from_numpy(np.stack(scenes)).permute(0, 3, 1, 2).float() / 255
    return prompts, parsed, images


def scene_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options of a script that runs an unCLIP pipeline on rendered scenes of evaluation
    prompts (:func:`rendered_prompt_scenes`): ``--model``, ``--n`` and ``--prompts-seed``."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shapes-unclip")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--prompts-seed", type=int, default=1, help="1: the validation prompts")
    return parser


def right_by_count(images, parsed) -> dict:
    """How many of ``images`` (PIL) the shapes scorer reads as their ``parsed`` prompts, one- and
    two-object prompts apart: ``{"one_object": {"right": r, "of": n}, "two_objects": ...}``."""
    import numpy as np

    from dalle.eval.shapes_scorer import score_image

    right: dict[str, list[bool]] = {"one_object": [], "two_objects": []}
    for p, image in zip(parsed, images, strict=True):
        key = "one_object" if p.relation is None else "two_objects"
        right[key].append(score_image(np.asarray(image), p).correct)
    return {k: {"right": sum(v), "of": len(v)} for k, v in right.items()}


def sampler_variant_parser(doc: str | None, values: str, default: str) -> argparse.ArgumentParser:
    """The options of a script that scores variants of the DALL·E sampler on the shapes world:
    ``--model``, ``values`` (the variants, comma-separated), ``--seeds``, ``--prompts-seed`` (1:
    the validation set) and ``--n-prompts``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument(values, default=default)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--prompts-seed", type=int, default=1)
    parser.add_argument("--n-prompts", type=int, default=128)
    return parser


def print_shapes_rows(pipe, args, label: dict, **sampling) -> None:
    """Score ``pipe`` like `dalle eval generation` (users mix, 4 images a prompt) once per image
    seed of ``args.seeds`` (``sampling``: keyword arguments of its ``iter_images``, e.g.
    ``bf16``); print one JSON line each, ``label`` first."""
    import tempfile

    from dalle.eval.generation import shapes_generation_report
    from dalle.shapes.prompts import evaluation_prompts

    prompts = evaluation_prompts(args.n_prompts, args.prompts_seed)
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as out:
            report = shapes_generation_report(pipe, prompts, out, 4, seed, **sampling)
        categories = report.category_accuracy()
        print(json.dumps({
            **label, "seed": seed, "seen": report.seen_accuracy,
            "held_out": report.held_out_accuracy,
            **{name: c["accuracy"] for name, c in categories.items()},
            "errors": report.error_counts,
        }), flush=True)  # fmt: skip
