"""Would a decoding step compiled as one fixed-shape graph (``torch.compile``) sample faster?

The library's decoding step (``DalleTransformer.forward`` with a ``KVCache``) reads, per sparse
layer, only the keys its mask allows, so the shapes of its attention change with the position
until the rings fill: a compiled graph would recompile at each. This script writes the same step
with fixed shapes instead: every layer writes the new key into its slot (``index_copy_``) and
attends over its whole cache buffer (row and conv layers: text + ring; column layers: the
column's region, gathered by index) under a mask looked up by position, the position passed as a
tensor. It times, on the bundled transformer with a filled cache, at image positions 100-139:

- ``library``: ``model(None, token, cache)``, the step ``dalle generate`` runs;
- ``fixed``: the fixed-shape step, eager;
- ``compiled``: the fixed-shape step under ``torch.compile(fullgraph=True, dynamic=False)``,
  after a first call whose time (tracing and compiling, or loading inductor's on-disk cache on a
  second run) is reported apart;

checks that the compiled step's logits match the library's, and names the CPU.

    python benchmarks/compiled_decode_step.py [--rows 512,128] [--dtypes bf16,fp32] [--reps 3]

(rows are sequences in the batch: guidance doubles the images, so ``dalle generate``'s default
batch of 256 images is 512 rows.) Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import cpu_name  # noqa: E402

from dalle.models.layers import matmul_attention  # noqa: E402
from dalle.models.transformer import DalleTransformer  # noqa: E402

FIRST, STEPS = 100, 40  # image positions timed: FIRST .. FIRST + STEPS - 1


def position_masks(model: DalleTransformer) -> dict[str, torch.Tensor]:
    """Per sparse kind, (N, slots) booleans: which slots of its whole buffer (or, for a column
    layer, of the column's region) the query at each image index may read."""
    c = model.config
    t, w, n = c.text_seq_len, c.image_grid, c.image_seq_len
    tables = {}
    for kind, pattern in model.patterns.items():
        if kind == "column":
            tables[kind] = torch.stack([torch.arange(t + w) < t + i // w + 1 for i in range(n)])
            continue
        size, rows = pattern.cache_size(c.total_seq_len), []
        for i in range(n):
            _, _, mask = pattern.cache_read(torch.empty(1, 1, size, 1), torch.empty(1, 1, size, 1), t + i)  # fmt: skip
            row = torch.zeros(size, dtype=torch.bool)
            filled = t + min(i + 1, size - t)
            row[:filled] = True if mask is None else mask[0]
            rows.append(row)
        tables[kind] = torch.stack(rows)
    return tables


def fixed_step(model: DalleTransformer, tables: dict[str, torch.Tensor]):
    """The decoding step with fixed shapes: (rows, 1) tokens at image index ``i`` (a 0-d
    tensor) -> (rows, num_image_tokens) float logits; the cache buffers written in place."""
    c = model.config
    t, w, heads, dh = c.text_seq_len, c.image_grid, c.num_heads, c.head_dim

    def step(token, i, keys, values):
        rows = token.shape[0]
        x = model.image_emb(token) + model.row_emb(i // w) + model.col_emb(i % w)
        for layer, (block, kind) in enumerate(zip(model.blocks, model.kinds, strict=True)):
            q, k, v = block.attn.qkv(block.ln_attn(x)).view(rows, 1, 3, heads, dh).unbind(2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            pattern = model.patterns[kind]
            if kind == "column":
                slot = (i % w) * (t + w) + t + i // w
            else:
                slot = t + i % (pattern.cache_size(c.total_seq_len) - t)
            keys[layer].index_copy_(2, slot.view(1), k)
            values[layer].index_copy_(2, slot.view(1), v)
            kk, vv = keys[layer], values[layer]
            if kind == "column":  # the column's region: its text copy and its rows
                col = (i % w).view(1)
                kk = kk.view(rows, heads, w, t + w, dh).index_select(2, col).squeeze(2)
                vv = vv.view(rows, heads, w, t + w, dh).index_select(2, col).squeeze(2)
            mask = tables[kind].index_select(0, i.view(1))
            y = matmul_attention(q, kk, vv, mask).transpose(1, 2).reshape(rows, 1, -1)
            x = x + block.attn.out(y)
            x = x + block.mlp(block.ln_mlp(x))
        return model.image_head(model.ln_out(x)[:, -1]).float()

    return step


def time_rows(model: DalleTransformer, step, compiled, rows: int, reps: int) -> dict[str, float]:
    """Median ms per step of the three ways at ``rows``, and the compiled step's first call."""
    c = model.config
    g = torch.Generator().manual_seed(0)
    cache = model.new_cache(rows)
    for buf in cache.keys + cache.values:
        buf.copy_(torch.randn(buf.shape, generator=g))
    saved = [b.clone() for b in cache.keys + cache.values]
    tokens = torch.randint(0, c.num_image_tokens, (rows, STEPS), generator=g)

    def restore() -> None:
        for buf, old in zip(cache.keys + cache.values, saved, strict=True):
            buf.copy_(old)
        cache.length = c.text_seq_len + FIRST

    def library(j: int) -> torch.Tensor:
        return model(None, tokens[:, j : j + 1], cache)[1][:, -1].float()

    def run_fixed(fn, j: int) -> torch.Tensor:
        return fn(tokens[:, j : j + 1], torch.tensor(FIRST + j), cache.keys, cache.values)

    ways = {
        "library": library,
        "fixed": lambda j: run_fixed(step, j),
        "compiled": lambda j: run_fixed(compiled, j),
    }
    with torch.inference_mode():
        restore()
        start = time.perf_counter()
        first = ways["compiled"](0)
        first_call = time.perf_counter() - start
        restore()
        reference = ways["library"](0)
        bf16 = model.image_emb.weight.dtype == torch.bfloat16
        # bf16 rounds the two graphs' sums differently: a few tenths on logits of size ~10
        tolerance = {"atol": 0.5, "rtol": 0.05} if bf16 else {"atol": 1e-3, "rtol": 1e-3}
        torch.testing.assert_close(first, reference, **tolerance)
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(reps):
            for key, fn in ways.items():
                restore()
                start = time.perf_counter()
                for j in range(STEPS):
                    fn(j)
                times[key].append((time.perf_counter() - start) / STEPS * 1e3)
    return {"first_call_s": first_call, **{k: statistics.median(v) for k, v in times.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="512,128", help="batch rows to time")
    parser.add_argument("--dtypes", default="bf16,fp32")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    results = []
    for name in args.dtypes.split(","):
        model = DalleTransformer.from_pretrained("shapes", "cpu").to(dtypes[name]).eval()
        step = fixed_step(model, position_masks(model))
        compiled = torch.compile(step, fullgraph=True, dynamic=False)
        for rows in (int(r) for r in args.rows.split(",")):
            row = time_rows(model, step, compiled, rows, args.reps)
            results.append({"dtype": name, "rows": rows, **row})
    print("\n| dtype | rows | library ms/step | fixed shapes, eager | compiled | library / "
          "compiled | compiled: first call |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in results:
        print(f"| {r['dtype']} | {r['rows']} | {r['library']:.1f} | {r['fixed']:.1f} | "
              f"{r['compiled']:.1f} | {r['library'] / r['compiled']:.2f}x | "
              f"{r['first_call_s']:.1f} s |")  # fmt: skip
    print(json.dumps({"cpu": cpu_name(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
