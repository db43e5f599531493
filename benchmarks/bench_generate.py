"""`dalle generate` as users run it: whole processes, bundled model, the same prompts, one run.

    python benchmarks/bench_generate.py [--prompts 32] [--num-images 4] [--rerank-prompts 8]
        [--configs defaults,bf16_16,fp32_64] [--reps 1] [--warmup 0] [--no-rerank]
        [--model NAME_OR_DIR]

Times each configuration of the CLI on the same ``--prompts`` x ``--num-images`` images (the
users mix of canonical prompts), start to finish (interpreter start, model loading, sampling,
decoding, PNG writing): the defaults, ``--bf16 --batch-size 16`` (the earlier defaults) and
``--no-bf16 --batch-size 64`` (``--configs defaults,unclip``: both bundled pipelines at their
defaults, side by side); then the rerank path (``--candidates 16``) at the defaults and at
the earlier defaults. Also measures the machine's fp32 and bf16 matrix-product peak (2048^3) and
the FLOPs of sampling one image, so that the sampling loop's share of the peak can be stated.
With ``--reps R`` the configurations run in R rounds, one after another within a round, and each
reports its median (``--warmup W`` untimed rounds first; defaults 1 and 0). ``--model`` times
another DALL·E pipeline than the bundled one (a candidate before bundling); the config
``bundled`` is then the bundled model at its defaults, side by side. Names the CPU.
Prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from _common import benchmark_parser  # noqa: E402

CONFIGS = {
    "defaults": [],
    "bf16_16": ["--bf16", "--batch-size", "16"],
    "fp32_64": ["--no-bf16", "--batch-size", "64"],
    "bf16_64": ["--bf16", "--batch-size", "64"],
    "fp32_128": ["--no-bf16", "--batch-size", "128"],
    "bf16_128": ["--bf16", "--batch-size", "128"],
    "bundled": ["--model", "shapes"],  # the bundled DALL·E model, when --model names another
    "unclip": ["--model", "shapes-unclip"],  # the unCLIP pipeline at its defaults
    # decoder samplers, evenly spaced: DDIM 25 (with the upsampler's DDIM 15: the defaults until
    # 2026-12-05's fifteenth session), DDIM 16 and DPM-Solver++(2M) 12 (docs/unclip.md, "The
    # decoder's fast setting"); then the decoder's default since, DPM-Solver++(2M) 12 at spacing
    # 0.5, named explicitly (docs/unclip.md, "Steps where the layout is decided"), and with the
    # upsampler's DDIM 15 evenly spaced (its default before; "The upsampler's steps")
    "unclip_ddim25": "--model shapes-unclip --decoder-sampler ddim --decoder-steps 25 "
    "--decoder-spacing 1 --upsampler-steps 15 --upsampler-spacing 1".split(),
    "unclip_ddim16": "--model shapes-unclip --decoder-sampler ddim --decoder-steps 16 "
    "--decoder-spacing 1".split(),
    "unclip_dpm12": "--model shapes-unclip --decoder-sampler dpm++2m --decoder-steps 12 "
    "--decoder-spacing 1".split(),
    "unclip_dpm12_p05": "--model shapes-unclip --decoder-sampler dpm++2m --decoder-steps 12 "
    "--decoder-spacing 0.5".split(),
    "unclip_up15": "--model shapes-unclip --upsampler-steps 15 --upsampler-spacing 1".split(),
    # the decoder (DDIM 25, evenly spaced: the steps these were measured at) guided only where
    # the noise level is at least 0.4 (the bundled interval since 2026-12-05), 0.2, or at every
    # step (the interval before; docs/unclip.md)
    "unclip_gi04": "--model shapes-unclip --decoder-guidance-interval 0.4,1 --decoder-sampler "
    "ddim --decoder-steps 25 --decoder-spacing 1".split(),
    "unclip_gi02": "--model shapes-unclip --decoder-guidance-interval 0.2,1 --decoder-sampler "
    "ddim --decoder-steps 25 --decoder-spacing 1".split(),
    "unclip_gi00": "--model shapes-unclip --decoder-guidance-interval 0,1 --decoder-sampler "
    "ddim --decoder-steps 25 --decoder-spacing 1".split(),
    "unclip_8": ["--model", "shapes-unclip", "--batch-size", "8"],
    "unclip_32": ["--model", "shapes-unclip", "--batch-size", "32"],
    "unclip_64": ["--model", "shapes-unclip", "--batch-size", "64"],
    "unclip_fp32": ["--model", "shapes-unclip", "--no-bf16"],
}


def cpu_name() -> str:
    """The CPU's model name, family/model numbers and whether it has bf16 matrix units."""
    from dalle.utils.device import BF16_CPU_FLAGS, cpu_flags

    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    units = sorted(cpu_flags() & BF16_CPU_FLAGS) or ["none"]
    return (f"{fields.get('vendor_id', '?')} {fields.get('model name', '?')} (family "
            f"{fields.get('cpu family', '?')}, model {fields.get('model', '?')}; bf16 units: "
            f"{', '.join(units)})")  # fmt: skip


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of an n x n x n matrix product in ``dtype``, over about ``seconds`` of products
    after one warm-up (where the dtype has no units, one 2048^3 bf16 product takes about a minute:
    a smaller product is timed then, which still shows the missing units)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    t0 = time.perf_counter()
    a @ b
    if time.perf_counter() - t0 > seconds and n > 256:
        return matmul_peak(dtype, n // 4, seconds)
    reps, t0 = 0, time.perf_counter()
    while reps == 0 or time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def flops_per_image(guided: bool, model: str = "shapes") -> float:
    """FLOPs of the transformer sampling one image of ``model`` (prefill + every decode step),
    counted by ``FlopCounterMode`` on a batch of 1."""
    from torch.utils.flop_counter import FlopCounterMode

    from dalle.pipelines.dalle_pipeline import DallePipeline

    pipe = DallePipeline.from_pretrained(model)
    settings = pipe.defaults if guided else pipe.settings(guidance=1.0)
    with FlopCounterMode(display=False) as counter:
        pipe.generate_tokens(["a red circle"], [0], settings, bf16=False)
    return float(counter.get_total_flops())


def run_cli(args: list[str], out: Path) -> float:
    cmd = [sys.executable, "-m", "dalle", "generate", *args, "--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--num-images", type=int, default=4)
    parser.add_argument("--rerank-prompts", type=int, default=8)
    parser.add_argument("--configs", default="defaults,bf16_16,fp32_64")
    parser.add_argument("--no-rerank", action="store_true")
    parser.add_argument("--model", default="shapes", help="the DALL·E pipeline to time")
    parser.set_defaults(reps=1, warmup=0)  # whole processes: one round is already many steps
    args = parser.parse_args()
    from dalle.shapes.prompts import evaluation_prompts

    root = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    prompts_file = root / "prompts.txt"
    prompts_file.write_text("".join(p + "\n" for p in evaluation_prompts(args.prompts, seed=3)))
    images = args.prompts * args.num_images
    base = ["--prompts-file", str(prompts_file), "--num-images", str(args.num_images),
            "--model", args.model]  # fmt: skip
    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {', '.join(CONFIGS)}")
    for _ in range(args.warmup):  # untimed, e.g. to fill the page cache after an install
        for name in names:
            run_cli(base + CONFIGS[name], root / f"warmup_{name}")
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):  # rounds over the configs, so that a drift hits them alike
        for name in names:
            seconds = run_cli(base + CONFIGS[name], root / f"{name}_{rep}")
            times[name].append(seconds)
            print(f"round {rep + 1}: {name}: {seconds:.1f} s, {images / seconds:.2f} images/s",
                  file=sys.stderr)  # fmt: skip
    results: dict[str, dict] = {}
    for name in names:
        seconds = statistics.median(times[name])
        results[name] = {"seconds": seconds, "images": images, "images_per_s": images / seconds,
                         "all_seconds": times[name]}  # fmt: skip
    if not args.no_rerank:
        rerank_prompts = root / "rerank.txt"
        rerank_prompts.write_text(
            "".join(p + "\n" for p in evaluation_prompts(args.rerank_prompts, seed=3))
        )
        drawn = args.rerank_prompts * 16
        rerank = [
            "--prompts-file",
            str(rerank_prompts),
            "--candidates",
            "16",
            "--model",
            args.model,
        ]
        for name in ("defaults", "bf16_16"):
            seconds = run_cli(rerank + CONFIGS[name], root / f"rerank_{name}")
            results[f"rerank_{name}"] = {
                "seconds": seconds, "images": drawn, "images_per_s": drawn / seconds,
            }  # fmt: skip
            print(f"rerank {name}: {seconds:.1f} s", file=sys.stderr)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    flops = flops_per_image(guided=True, model=args.model)
    report = {
        "cpu": cpu_name(), "threads": torch.get_num_threads(), "model": args.model,
        "results": results,
        "matmul_peak_gflops": peaks, "sampling_gflop_per_image": flops / 1e9,
    }  # fmt: skip
    default = results.get("defaults")
    print(f"CPU: {report['cpu']}, {report['threads']} threads; matmul peak fp32 "
          f"{peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s; sampling "
          f"{flops / 1e9:.2f} GFLOP per image (guided)\n")  # fmt: skip
    print("| run | images | seconds | images/s | its defaults vs it | GFLOP/s in sampling |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        if name.startswith("unclip"):
            reference = results.get("unclip", r)
        elif "rerank" in name:
            reference = results["rerank_defaults"]
        else:
            reference = default or r
        ratio = reference["images_per_s"] / r["images_per_s"]
        # the FLOPs counted are --model's: no figure for the unCLIP pipeline or another model
        other = name.startswith("unclip") or (name == "bundled" and args.model != "shapes")
        gflops = "-" if other else f"{r['images_per_s'] * flops / 1e9:.0f}"
        print(f"| {name} | {r['images']} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | "
              f"{ratio:.2f}x | {gflops} |")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
