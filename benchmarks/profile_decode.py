"""Where a decoding step of the DALL·E sampler goes, at the defaults' batch and at a small one.

    python benchmarks/profile_decode.py [--images 128,16] [--model shapes] [--no-bf16]

For each batch size (images; with guidance each image is two rows), samples that many images of
the users mix (4 per prompt, the model's default settings) once untimed and once under
``torch.profiler``, and splits the self CPU time per decoding step into the linear layers, the
attention over the key/value cache and the rest, with the linear layers' GFLOP/s and the bytes
the attention reads. Then the bound: what one image costs per step at the machine's matrix-product
rate for these shapes (the fastest linear layer of a warm micro-benchmark) and its read rate (a
``sum`` over 256 MB), against what the sampler takes. Names the CPU. Prints a Markdown table and,
last, one JSON line.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from _common import benchmark_parser, median_time  # noqa: E402
from bench_generate import cpu_name  # noqa: E402
from torch import nn  # noqa: E402

LINEAR_OPS = {"aten::addmm", "aten::mm"}
ATTENTION_OPS = {"aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_softmax",
                 "aten::masked_fill", "aten::masked_fill_"}  # fmt: skip


def decode_linears(model: nn.Module) -> list[nn.Linear]:
    """The linear layers a decoding step runs (the text head reads no position then)."""
    return [m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not name.startswith("text_head")]  # fmt: skip


def cache_bytes_per_step(model, rows: int) -> float:
    """Mean bytes of keys and values a decoding step reads over the image positions, for
    ``rows`` rows in the model's dtype."""
    c = model.config
    cache = model.new_cache(1)
    total = 0
    positions = range(c.text_seq_len, c.total_seq_len - 1)
    for layer in range(c.num_layers):
        for p in positions:
            total += cache.read(layer, p)[0].shape[2]
    element = model.image_emb.weight.element_size()
    return total / len(positions) * rows * c.num_heads * c.head_dim * 2 * element


def read_rate() -> float:
    """GB/s of a ``sum`` over 256 MB of bf16."""
    x = torch.ones(128 * 1024 * 1024, dtype=torch.bfloat16)
    return x.numel() * 2 / median_time(lambda: x.sum(), 5, 1) / 1e9


def linear_rate(model, rows: int) -> float:
    """GFLOP/s of the model's widest linear layer at ``rows`` rows, weights warm."""
    layer = max(decode_linears(model), key=lambda m: m.weight.numel())
    x = torch.randn(rows, layer.in_features, dtype=layer.weight.dtype)
    with torch.inference_mode():
        seconds = median_time(lambda: layer(x), 50, 5)
    return 2 * rows * layer.weight.numel() / seconds / 1e9


def profile_batch(pipe, model, images: int, settings) -> dict:
    from torch.profiler import profile

    from dalle.pipelines.sampling import sample_image_tokens
    from dalle.shapes.prompts import evaluation_prompts

    prompts = evaluation_prompts(-(-images // 4), seed=3)
    texts = [p for p in prompts for _ in range(4)][:images]
    text = pipe.encode_prompts(texts)

    def run() -> None:
        generators = [torch.Generator().manual_seed(i) for i in range(images)]
        sample_image_tokens(model, text, generators, settings, null_text=pipe.null_text())

    run()
    t0 = time.perf_counter()
    with profile() as prof:
        run()
    wall = time.perf_counter() - t0
    split = {"linear": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        kind = ("linear" if event.key in LINEAR_OPS
                else "attention" if event.key in ATTENTION_OPS else "other")  # fmt: skip
        split[kind] += event.self_cpu_time_total / 1e6
    steps = model.config.image_seq_len
    rows = images * (2 if settings.guided else 1)
    weights = sum(m.weight.numel() for m in decode_linears(model))
    seconds = sum(split.values())
    return {
        "images": images,
        "rows": rows,
        "wall_s_profiled": wall,
        "step_ms": 1e3 * seconds / steps,
        **{f"{k}_ms": 1e3 * v / steps for k, v in split.items()},
        "linear_gflops": 2 * rows * weights * steps / split["linear"] / 1e9,
        "attention_mb": cache_bytes_per_step(model, rows) / 1e6,
        "per_image_ms": 1e3 * seconds / steps / images,
    }


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--images", default="128,16", help="batch sizes in images, comma-separated")
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--no-bf16", action="store_true", help="sample in float32")
    args = parser.parse_args()
    from dalle.pipelines.dalle_pipeline import DallePipeline

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    pipe = DallePipeline.from_pretrained(args.model)
    model = pipe.transformer if args.no_bf16 else pipe.bf16_transformer()
    settings = pipe.defaults
    results = [profile_batch(pipe, model, int(n), settings) for n in args.images.split(",")]
    gb_s = read_rate()
    rows_per_image = 2 if settings.guided else 1
    fast = linear_rate(model, max(r["rows"] for r in results))
    weights = sum(m.weight.numel() for m in decode_linears(model))
    bound_ms = 1e3 * (2 * rows_per_image * weights / (fast * 1e9)
                      + cache_bytes_per_step(model, rows_per_image) / (gb_s * 1e9))  # fmt: skip
    print(f"CPU: {cpu_name()}; {torch.get_num_threads()} threads; dtype "
          f"{model.image_emb.weight.dtype}; read rate {gb_s:.1f} GB/s; widest linear at "
          f"{max(r['rows'] for r in results)} rows {fast:.0f} GFLOP/s\n")  # fmt: skip
    print("| per decoding step | " + " | ".join(f"{r['rows']} rows ({r['images']} images)"
                                                 for r in results) + " |")  # fmt: skip
    print("|---" * (len(results) + 1) + "|")
    rows = [
        ("all (self CPU time / steps)", lambda r: f"{r['step_ms']:.1f} ms"),
        ("linear layers", lambda r: f"{r['linear_ms']:.1f} ms: {r['linear_gflops']:.0f} GFLOP/s"),
        (
            "attention over the cache",
            lambda r: (
                f"{r['attention_ms']:.1f} ms: "
                f"{r['attention_mb']:.0f} MB, {r['attention_mb'] / r['attention_ms']:.0f} GB/s"
            ),
        ),
        ("everything else", lambda r: f"{r['other_ms']:.1f} ms"),
        ("per image", lambda r: f"{r['per_image_ms']:.3f} ms"),
        ("bound per image / per image", lambda r: f"{bound_ms / r['per_image_ms']:.0%}"),
    ]
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")
    print(f"\nbound per image and step: {bound_ms:.3f} ms")
    print(json.dumps({"cpu": cpu_name(), "read_gb_s": gb_s, "linear_gflops_warm": fast,
                      "bound_per_image_ms": bound_ms, "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
