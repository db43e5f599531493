"""dVAE training-step throughput: ours versus dalle-pytorch at the anchors' case A, same session.

    python benchmarks/bench_dvae.py [--anchors-venv .anchors-venv] [--reps 5] [--warmup 2]

Case A (shared/anchors/README.md): 32 x 32 images to an 8 x 8 grid, 512 tokens, codebook_dim 256,
hidden_dim 64, one residual block per group, AdamW, batch 32, 2 threads, random data. Ours is the
paper's architecture at those settings (bottleneck blocks, logit-Laplace loss, Gumbel-softmax).
Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

from dalle.models.dvae import DiscreteVAE, DVAEConfig, elbo_loss  # noqa: E402

CASE_A = DVAEConfig(image_size=32, num_tokens=512, hidden_dim=64, num_groups=3, blocks_per_group=1,
                    codebook_dim=256)  # fmt: skip
ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"


def time_ours(bf16: bool, channels_last: bool, reps: int, warmup: int) -> float:
    torch.manual_seed(0)
    vae = DiscreteVAE(CASE_A).train()
    images = torch.rand(32, 3, 32, 32)
    if channels_last:
        vae = vae.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(vae.parameters(), lr=3e-4, foreach=True)  # as the trainer

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = elbo_loss(vae, images, temperature=1.0, kl_weight=6.6)["loss"]
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_anchor(venv: Path, reps: int, warmup: int) -> float | None:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"no anchors venv at {venv}: run shared/anchors/install.sh {venv}", file=sys.stderr)
        return None
    out = subprocess.run(
        [str(python), str(ANCHORS / "bench_dalle_pytorch.py"), "--case", "A", "--reps", str(reps),
         "--warmup", str(warmup), "--threads", "2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["A_vae_train_step"]["median_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anchors-venv", type=Path, default=Path(".anchors-venv"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)

    anchor = time_anchor(args.anchors_venv, args.reps, args.warmup)
    rows = {
        "ours bf16 autocast, channels-last (the trainer's default)": time_ours(
            True, True, args.reps, args.warmup
        ),
        "ours fp32, channels-last": time_ours(False, True, args.reps, args.warmup),
        "ours fp32, contiguous": time_ours(False, False, args.reps, args.warmup),
    }
    print("| implementation | median step | images/s | vs dalle-pytorch |")
    print("|---|---|---|---|")
    if anchor is not None:
        print(
            f"| dalle-pytorch 1.6.6 DiscreteVAE, fp32 | {anchor * 1e3:.0f} ms | {32 / anchor:.0f} | 1.00x |"
        )
    for name, t in rows.items():
        ratio = f"{anchor / t:.2f}x" if anchor else "n/a"
        print(f"| {name} | {t * 1e3:.0f} ms | {32 / t:.0f} | {ratio} |")
    print(json.dumps({"anchor_s": anchor, **{k: v for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
