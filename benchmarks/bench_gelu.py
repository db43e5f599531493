"""The tanh GELU against the erf GELU under bf16 on the CPU: the kernels, and a training step.

    python benchmarks/bench_gelu.py [--layers 12] [--batch 32] [--reps 3] [--warmup 2]

The kernels on one MLP activation of the shapes transformer (batch x 279 x 1,024 values),
forward and forward + backward, in bf16 and fp32; then a bf16-autocast training step of the
shapes preset transformer at ``--layers`` (AdamW, random tokens), with ``TanhGELU`` (which
computes the erf GELU on bf16 input) and with PyTorch's own tanh-GELU kernel in its place,
alternated in one process: each reports the median over ``--reps`` rounds of 3 steps. Names the
CPU. Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import benchmark_parser, median_time  # noqa: E402
from bench_generate import cpu_name  # noqa: E402
from torch import nn  # noqa: E402

from dalle.models.layers import exact_tanh_gelu  # noqa: E402
from dalle.models.transformer import DalleConfig, DalleTransformer, dalle_loss  # noqa: E402


def kernel_ms(fn, x: torch.Tensor, backward: bool, reps: int, warmup: int) -> float:
    x = x.detach().requires_grad_(backward)
    grad = torch.randn_like(x)

    def run() -> None:
        y = fn(x)
        if backward:
            y.backward(grad)

    return 1000 * median_time(run, reps * 3, warmup)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = DalleConfig.from_preset("shapes").replace(num_layers=args.layers)
    seq = config.text_seq_len + config.image_seq_len - 1
    x = torch.randn(args.batch, seq, 4 * config.dim)
    kernels = {"tanh": lambda v: F.gelu(v, approximate="tanh"), "erf": F.gelu}
    rows = {}
    for dtype in (torch.bfloat16, torch.float32):
        for name, fn in kernels.items():
            key = f"{name}_{str(dtype).removeprefix('torch.')}"
            rows[key] = [
                kernel_ms(fn, x.to(dtype), b, args.reps, args.warmup) for b in (False, True)
            ]

    new = DalleTransformer(config).train()
    old = exact_tanh_gelu(copy.deepcopy(new))
    text = torch.randint(1, config.num_text_tokens, (args.batch, config.text_seq_len))
    image = torch.randint(0, config.num_image_tokens, (args.batch, config.image_seq_len))

    def stepper(model: nn.Module):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            with torch.autocast("cpu", torch.bfloat16):
                loss = dalle_loss(model, text, image)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    steps = {"tanh kernel": stepper(old), "TanhGELU (erf in bf16)": stepper(new)}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(3):
                step()
            times[name].append((time.perf_counter() - t0) / 3)
    step_s = {name: statistics.median(t) for name, t in times.items()}

    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads")
    print(
        f"| GELU on {args.batch} x {seq} x {4 * config.dim} | forward ms | forward + backward ms |"
    )
    print("|---|---|---|")
    for key, (fwd, both) in rows.items():
        print(f"| {key} | {fwd:.1f} | {both:.1f} |")
    print(
        f"\n| bf16-autocast training step, {args.layers} layers, batch {args.batch} | s | ratio |"
    )
    print("|---|---|---|")
    base = step_s["tanh kernel"]
    for name, s in step_s.items():
        print(f"| {name} | {s:.3f} | {base / s:.2f}x |")
    print(json.dumps({"cpu": cpu_name(), "kernels_ms": rows, "step_s": step_s}))


if __name__ == "__main__":
    main()
