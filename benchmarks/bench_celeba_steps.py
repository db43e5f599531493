"""Time per training step of every celeba128 stage on this machine, and its FLOPs (issue 18).

    python benchmarks/bench_celeba_steps.py --work /tmp/celeba-bench [--bf16 | --no-bf16]

Each stage runs through `dalle train STAGE --preset celeba128` at the preset's batch size on a
fake CelebA (random 178 x 218 JPEGs with the attribute and partition files; the step costs the
same as on the real one): 12 steps, the time per step from the metrics log between steps 10 and
12. The FLOPs of one step are counted by ``torch.utils.flop_counter`` (matrix products and
convolutions, forward and backward; the frozen CLIP's forward in the decoder's step included),
from which the time on one GPU is estimated at an assumed sustained rate (--gpu-tflops: 40 % of
an A100's 312 dense bf16 TFLOP/s by default).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from dalle.cli import main as dalle
from dalle.data.celeba import write_fake_celeba

STAGES = ("dvae", "clip", "dalle", "prior", "decoder", "upsampler")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))  # fmt: skip
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--gpu-tflops", type=float, default=0.4 * 312)
    parser.add_argument("--stages", default=",".join(STAGES))
    args = parser.parse_args()

    data = args.work / "celeba"
    if not (data / "list_eval_partition.txt").exists():
        write_fake_celeba(data, n=160, n_test=10)
    runs = args.work / "runs"
    dtype = [] if args.bf16 is None else ["--bf16" if args.bf16 else "--no-bf16"]
    # the parts later stages need, trained two steps
    parts = {"dvae": runs / "parts" / "dvae", "clip": runs / "parts" / "clip"}
    for stage, out in parts.items():
        if not out.exists():
            assert dalle(["train", stage, "--preset", "celeba128", "--data", str(data), "--out",
                          str(out), "--steps", "2", "--batch-size", "2", "--no-bf16"]) == 0  # fmt: skip
    extra = {"dalle": ["--vae", str(parts["dvae"] / "vae")],
             "prior": ["--clip", str(parts["clip"] / "clip")],
             "decoder": ["--clip", str(parts["clip"] / "clip")]}  # fmt: skip

    rows = []
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| stage | batch | s / step (CPU) | TFLOP / step | est. s / step, one GPU |")
    print("|---|---|---|---|---|")
    for stage in args.stages.split(","):
        common = ["train", stage, "--preset", "celeba128", "--data", str(data), "--steps", "1000",
                  "--checkpoint-every", "1000", *dtype, *extra.get(stage, [])]  # fmt: skip
        timed = runs / f"{stage}-timed"
        assert dalle([*common, "--out", str(timed), "--stop-at", "12"]) == 0, stage
        log = [json.loads(line) for line in open(timed / "metrics.jsonl")]
        times = {r["step"]: r["time"] for r in log}
        per_step = (times[12] - times[10]) / 2
        config = json.loads((timed / "train_config.json").read_text())
        with FlopCounterMode(display=False) as counter:
            assert dalle([*common, "--out", str(runs / f"{stage}-flops"), "--stop-at", "1"]) == 0
        tflop = counter.get_total_flops() / 1e12
        rows.append({"stage": stage, "batch_size": config["batch_size"], "cpu_s_per_step": per_step,
                     "tflop_per_step": tflop, "gpu_s_per_step": tflop / args.gpu_tflops})  # fmt: skip
        print(f"| {stage} | {config['batch_size']} | {per_step:.2f} | {tflop:.3f} | "
              f"{tflop / args.gpu_tflops:.4f} |", flush=True)  # fmt: skip
    (args.work / "celeba_steps.json").write_text(json.dumps({"cpu": cpu_name(), "rows": rows}))


if __name__ == "__main__":
    main()
