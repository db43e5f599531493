"""Would int8 matrix products sample the DALL·E transformer faster, at the same accuracy?

A CPU without bf16 units samples in fp32 today (``dalle.utils.device``). Most CPUs have int8
dot products (AVX2's ``vpmaddubsw``, AVX512-VNNI, AVX-VNNI, AMX-int8), and ``torch._int_mm``
reaches them without the deprecated quantized tensors. This script makes an int8 copy of the
bundled transformer, every ``nn.Linear`` replaced by :class:`Int8Linear` (weights int8 with one
scale per output channel; activations quantized on the fly with one scale per row; int32
products, rescaled and biased in the model's dtype), and times ``sample_image_tokens`` on the
users-mix prompts, 4 images each, guided, side by side with the fp32 model (at ``--batch`` and
at 64 images, the issue's baseline) and, where the machine has bf16 units, the bf16 copy the
pipeline samples with there; the configurations alternate within each of ``--reps`` rounds and
each reports its median (only the fp32 path is warmed up first). ``--fp32-layers`` leaves
some linear layers in fp32. With ``--score SEEDS`` the fp32 and int8 models are also scored like
`dalle eval generation` on ``--prompts-seed`` (1: the validation set), once per image seed.

    python benchmarks/int8_sampling.py [--images 128] [--batch 128] [--reps 3] [--score 0]
        [--fp32-layers image_head,mlp.2] [--no-bf16]

Names the CPU; prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_shapes_rows, sampler_variant_parser  # noqa: E402
from bench_generate import cpu_name  # noqa: E402

from dalle.pipelines.dalle_pipeline import DallePipeline  # noqa: E402
from dalle.pipelines.sampling import sample_image_tokens  # noqa: E402
from dalle.shapes.prompts import evaluation_prompts  # noqa: E402
from dalle.utils.device import bf16_is_fast  # noqa: E402


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (per output channel) and int8 activations (per row):
    ``y = (q(x) @ q(W)^T) * s_x * s_W + b``, the product exact in int32."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(1).clamp_min(1e-12) / 127
        self.register_buffer("weight", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale.to(dtype))
        bias = linear.bias if linear.bias is not None else torch.zeros(w.shape[0])
        self.register_buffer("bias", bias.detach().to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.weight.shape[0]
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] == 0:
            return x.new_zeros(*x.shape[:-1], out)
        peak = rows.abs().amax(1, keepdim=True).float().clamp_min_(1e-12)
        q = rows.float().mul(127 / peak).round_().to(torch.int8)
        y = torch._int_mm(q, self.weight.t()).to(x.dtype)
        y.mul_(peak.mul_(1 / 127).to(x.dtype)).mul_(self.scale).add_(self.bias)
        return y.view(*x.shape[:-1], out)


def int8_copy(model: nn.Module, keep: tuple[str, ...] = ()) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` an :class:`Int8Linear`, except those whose
    qualified names end with one of ``keep`` (e.g. ``image_head``, ``mlp.2``)."""
    model = copy.deepcopy(model)
    dtype = next(model.parameters()).dtype
    for prefix, module in list(model.named_modules()):
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, nn.Linear) and not full.endswith(keep):
                setattr(module, name, Int8Linear(child, dtype))
    return model


def main() -> None:
    parser = sampler_variant_parser(__doc__, "--score", "")
    parser.add_argument("--images", type=int, default=128, help="images timed (4 a prompt)")
    parser.add_argument("--batch", type=int, default=128, help="images at once (int8, bf16)")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds (0: scores only)")
    parser.add_argument(
        "--fp32-layers", default="", metavar="NAMES",
        help="linear layers left in fp32, by the end of their names, comma-separated (e.g. "
        "image_head,mlp.2: the logits head and each block's second MLP layer)",
    )  # fmt: skip
    parser.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="time the bf16 copy too (default: where the machine has bf16 units; --no-bf16 under "
        "ONEDNN_MAX_CPU_ISA=AVX2, which stands in for an AVX2-only CPU)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    pipe = DallePipeline.from_pretrained(args.model)
    keep = tuple(n for n in args.fp32_layers.split(",") if n)
    models = {"fp32": pipe.transformer, "int8": int8_copy(pipe.transformer, keep)}
    configs = [("fp32", 64), ("fp32", args.batch), ("int8", args.batch)]
    if bf16_is_fast() if args.bf16 is None else args.bf16:
        models["bf16"] = pipe.bf16_transformer()
        configs.append(("bf16", args.batch))
    prompts = [p for p in evaluation_prompts(args.images // 4, seed=3) for _ in range(4)]

    def draw(name: str, batch: int) -> torch.Tensor:
        out = []
        for s in range(0, len(prompts), batch):
            texts = prompts[s : s + batch]
            gens = [torch.Generator().manual_seed(i) for i in range(s, s + len(texts))]
            out.append(sample_image_tokens(models[name], pipe.encode_prompts(texts), gens,
                                           pipe.defaults, null_text=pipe.null_text()))  # fmt: skip
        return torch.cat(out)

    reference = draw("fp32", args.batch) if args.reps else None  # warms up the fp32 path only
    times: dict[str, list[float]] = {}
    same: dict[str, float] = {}
    for _ in range(args.reps):
        for name, batch in configs:
            t0 = time.perf_counter()
            tokens = draw(name, batch)
            times.setdefault(f"{name}_{batch}", []).append(time.perf_counter() - t0)
            same[f"{name}_{batch}"] = (tokens == reference).float().mean().item()
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; {len(prompts)} images\n")
    if medians:
        base = medians["fp32_64"]
        print("| sampling (tokens only) | seconds | images/s | vs fp32 at 64 | tokens as fp32 |")
        print("|---|---|---|---|---|")
        for k, s in medians.items():
            print(f"| {k} | {s:.2f} | {len(prompts) / s:.2f} | {base / s:.2f}x | {same[k]:.1%} |")
    if args.score:
        args.seeds = args.score
        print_shapes_rows(pipe, args, {"model": "fp32"}, bf16=False)
        pipe.transformer = models["int8"]  # the pipeline samples with it when bf16 is off
        print_shapes_rows(pipe, args, {"model": "int8", "fp32_layers": list(keep)}, bf16=False)
    print(json.dumps({"cpu": cpu_name(), "seconds": medians, "same_tokens": same}))


if __name__ == "__main__":
    main()
