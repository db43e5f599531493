"""dVAE training-step throughput: ours versus dalle-pytorch at the anchors' case A, same session.

    python benchmarks/bench_dvae.py [--anchors-venv .anchors-venv] [--reps 5] [--warmup 2]

Case A (shared/anchors/README.md): 32 x 32 images to an 8 x 8 grid, 512 tokens, codebook_dim 256,
hidden_dim 64, one residual block per group, AdamW, batch 32, 2 threads, random data. Ours is the
paper's architecture at those settings (bottleneck blocks, logit-Laplace loss, Gumbel-softmax).
Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from _common import benchmark_parser, median_time, run_anchor  # noqa: E402

from dalle.models.dvae import DiscreteVAE, DVAEConfig, elbo_loss  # noqa: E402

CASE_A = DVAEConfig(image_size=32, num_tokens=512, hidden_dim=64, num_groups=3, blocks_per_group=1,
                    codebook_dim=256)  # fmt: skip


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

    return median_time(step, reps, warmup)


def time_anchor(venv: Path, reps: int, warmup: int) -> float | None:
    result = run_anchor(
        venv, "bench_dalle_pytorch.py", "--case", "A", "--reps", str(reps), "--warmup", str(warmup)
    )
    return None if result is None else result["A_vae_train_step"]["median_s"]


def main() -> None:
    args = benchmark_parser(__doc__).parse_args()
    torch.set_num_threads(2)

    anchor = time_anchor(args.anchors_venv, args.reps, args.warmup)
    rows = {
        "ours bf16 autocast, channels-last (the default with bf16 units)": time_ours(
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
