"""Is each trainer's default dtype the faster one on this machine?

Every trainer's autocast default comes from one rule (``dalle.utils.device.use_bf16``: bf16
where the machine has bf16 matrix units). This times a step of each ``--stages`` trainer at its
``--preset`` (default shapes), as users run it (`dalle train STAGE`, a whole process each), with
``--bf16`` and with ``--no-bf16``: the seconds between the step-10 and step-``--steps`` entries of
the run's metrics.jsonl (so start-up, data caching and the final sample grid are left out).

    python benchmarks/bench_train_dtypes.py [--stages dvae,dalle,clip,prior,decoder,upsampler]
        [--steps 30] [--preset shapes]

Names the CPU and what the rule picks on it; prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import cpu_name  # noqa: E402

from dalle.utils.device import use_bf16  # noqa: E402

TOKENIZER = str(Path(__file__).resolve().parents[1] / "src/dalle/assets/shapes/tokenizer.json")
EXTRA = {"dalle": ["--tokenizer", TOKENIZER], "clip": ["--tokenizer", TOKENIZER]}


def seconds_per_step(stage: str, preset: str, steps: int, bf16: bool, root: Path) -> float:
    out = root / f"{stage}-{'bf16' if bf16 else 'fp32'}"
    cmd = [sys.executable, "-m", "dalle", "train", stage, "--preset", preset, "--out", str(out),
           "--steps", str(steps), "--checkpoint-every", str(steps), "--sample-every", str(steps),
           "--bf16" if bf16 else "--no-bf16", *EXTRA.get(stage, [])]  # fmt: skip
    if stage in ("decoder", "upsampler"):
        cmd += ["--sample-steps", "1"]  # the final grid is not timed: draw it fast
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    at = {row["step"]: row["time"] for row in rows if "time" in row}  # not the eval rows
    return (at[steps] - at[10]) / (steps - 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="dvae,dalle,clip,prior,decoder,upsampler")
    parser.add_argument("--steps", type=int, default=30, help="at least 20; a multiple of 10")
    parser.add_argument("--preset", default="shapes")
    args = parser.parse_args()
    if args.steps < 20 or args.steps % 10:
        parser.error("--steps: a multiple of 10, at least 20")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in args.stages.split(","):
            results[stage] = {
                dtype: seconds_per_step(stage, args.preset, args.steps, dtype == "bf16", Path(tmp))
                for dtype in ("bf16", "fp32")
            }  # fmt: skip
            print(stage, results[stage], flush=True)
    picked = "bf16" if use_bf16(None) else "fp32"
    print(
        f"\nCPU: {cpu_name()}, {os.environ['OMP_NUM_THREADS']} threads; the rule picks {picked}\n"
    )
    print(f"| `dalle train STAGE --preset {args.preset}` | bf16 autocast | fp32 | fp32 / bf16 |")
    print("|---|---|---|---|")
    for stage, r in results.items():
        print(f"| {stage} | {r['bf16']:.3f} s | {r['fp32']:.3f} s | {r['fp32'] / r['bf16']:.2f}x |")
    print(json.dumps({"cpu": cpu_name(), "picked": picked, "seconds_per_step": results}))


if __name__ == "__main__":
    main()
