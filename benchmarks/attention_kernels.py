"""Which kernel computes a single query's attention faster on this machine: PyTorch's fused
``scaled_dot_product_attention`` or two matrix products (``decode_attention``'s other path)?

Times both, side by side, on the shapes a decoding step of the bundled transformer reads from its
cache (4 heads of 64): a row layer's 41 keys (24 text + a ring of 17, one contiguous block), the
conv layer's 121 under a mask, and a column layer's 32-key region (a strided slice of its
buffer), at 128 and 512 rows, in bf16 and fp32; and says which one
``dalle.models.layers.fused_decode_kernel`` picks here. Names the CPU.

    python benchmarks/attention_kernels.py [--rows 128,512] [--reps 30]

Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import cpu_name  # noqa: E402

from dalle.models.layers import fused_decode_kernel, matmul_attention  # noqa: E402

HEADS, DIM, TEXT, GRID = 4, 64, 24, 16


def timed(fn, reps: int) -> float:
    """Mean milliseconds per call after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def cases(rows: int, dtype: torch.dtype, g: torch.Generator) -> dict:
    """name -> (q, keys, values, mask), as a decoding step reads them from its cache."""
    q = torch.randn(rows, HEADS, 1, DIM, generator=g).to(dtype)
    row = torch.randn(rows, HEADS, TEXT + GRID + 1, DIM, generator=g).to(dtype)
    conv = torch.randn(rows, HEADS, 121, DIM, generator=g).to(dtype)
    conv_mask = torch.rand(1, 121, generator=g) > 0.2
    column = torch.randn(rows, HEADS, GRID * (TEXT + GRID), DIM, generator=g).to(dtype)
    region = column[:, :, 5 * (TEXT + GRID) : 5 * (TEXT + GRID) + TEXT + 8]  # a strided slice
    return {
        "row, 41 keys": (q, row, row, None),
        "conv, 121 keys, masked": (q, conv, conv, conv_mask),
        "column, 32 strided keys": (q, region, region, None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="128,512")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    g = torch.Generator().manual_seed(0)
    results = []
    for dtype in (torch.bfloat16, torch.float32):
        for rows in (int(r) for r in args.rows.split(",")):
            for name, (q, k, v, mask) in cases(rows, dtype, g).items():
                fused = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),  # noqa: B023
                              args.reps)  # fmt: skip
                products = timed(lambda: matmul_attention(q, k, v, mask), args.reps)  # noqa: B023
                picked = "fused" if fused_decode_kernel(q, k, v) else "matrix products"
                results.append({"dtype": str(dtype).removeprefix("torch."), "rows": rows,
                                 "case": name, "fused_ms": fused, "matmul_ms": products,
                                 "picked": picked})  # fmt: skip
    print("\n| dtype | rows | keys | fused kernel ms | matrix products ms | picked here |\n"
          "|---|---|---|---|---|---|")  # fmt: skip
    for r in results:
        print(f"| {r['dtype']} | {r['rows']} | {r['case']} | {r['fused_ms']:.2f} | "
              f"{r['matmul_ms']:.2f} | {r['picked']} |")  # fmt: skip
    print(json.dumps({"cpu": cpu_name(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
