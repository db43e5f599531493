"""DALL·E transformer speed: ours versus dalle-pytorch at the anchors' cases B and C, same session.

    python benchmarks/bench_dalle.py [--anchors-venv .anchors-venv] [--reps 5] [--warmup 2]
        [--cases B_train,B_gen,C_gen,tokens]

Configurations (shared/anchors/README.md), random weights, 2 threads:
- B: dim 256, depth 4, 8 heads of 32, 32 text positions (1000 text tokens), a 32 x 32 dVAE with
  8 x 8 = 64 image tokens of 512; train step at batch 32 on precomputed image tokens; sampling of
  8 prompts with top-k 51 (dalle-pytorch's filter_thres 0.9), dVAE decode included.
- C: dim 512, depth 8, 8 heads of 64, 64 text positions, 16 x 16 = 256 image tokens of 512;
  sampling of 4 prompts.
Full causal attention in both, as dalle-pytorch is configured there. ``tokens`` measures our
sampling throughput at C with and without the KV cache, fp32 and bf16.
Prints Markdown tables and, last, one JSON line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from _common import benchmark_parser, median_time, run_anchor  # noqa: E402

from dalle.models.dvae import DiscreteVAE, DVAEConfig  # noqa: E402
from dalle.models.transformer import DalleConfig, DalleTransformer, dalle_loss  # noqa: E402
from dalle.pipelines.sampling import SamplingSettings, sample_image_tokens  # noqa: E402

CASE_B = DalleConfig(
    num_text_tokens=1000, text_seq_len=32, num_image_tokens=512, image_grid=8, dim=256,
    num_layers=4, num_heads=8, head_dim=32, attention="full",
)  # fmt: skip
CASE_C = CASE_B.replace(text_seq_len=64, image_grid=16, dim=512, num_layers=8, head_dim=64)
VAE_B = DVAEConfig(image_size=32, num_tokens=512, hidden_dim=64, num_groups=3, codebook_dim=256)
VAE_C = VAE_B.replace(image_size=64)
TOP_K = 51  # int((1 - 0.9) * 512)


def train_step_time(bf16: bool, reps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = DalleTransformer(CASE_B).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    text = torch.randint(1, 1000, (32, CASE_B.text_seq_len))
    image = torch.randint(0, 512, (32, CASE_B.image_seq_len))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = dalle_loss(model, text, image)["loss"]
        loss.backward()
        opt.step()

    return median_time(step, reps, warmup)


def generate_time(
    config: DalleConfig, vae_config: DVAEConfig, batch: int, use_cache: bool, bf16: bool,
    reps: int, warmup: int,
) -> float:  # fmt: skip
    torch.manual_seed(0)
    model = DalleTransformer(config).eval()
    if bf16:  # a bf16 copy of the weights, as DallePipeline(bf16=True) samples
        model = model.to(torch.bfloat16)
    vae = DiscreteVAE(vae_config).eval()
    text = torch.randint(1, 1000, (batch, config.text_seq_len))
    settings = SamplingSettings(top_k=TOP_K)

    def run() -> None:
        gens = [torch.Generator().manual_seed(i) for i in range(batch)]
        tokens = sample_image_tokens(model, text, gens, settings, use_cache=use_cache)
        vae.decode(tokens.view(batch, config.image_grid, config.image_grid))

    return median_time(run, reps, warmup)


def anchor(venv: Path, case: str, reps: int, warmup: int, variants: str = "") -> dict | None:
    extra = ["--only-variant", variants] if variants else []
    return run_anchor(
        venv, "bench_dalle_pytorch.py", "--case", case, "--reps", str(reps), "--warmup",
        str(warmup), *extra,
    )  # fmt: skip


def table(title: str, rows: dict[str, float], reference: str | None, unit: str = "s") -> None:
    print(f"\n### {title}\n\n| run | median | vs {reference or 'n/a'} |\n|---|---|---|")
    base = rows.get(reference) if reference else None
    for name, t in rows.items():
        ratio = f"{base / t:.2f}x" if base else "n/a"
        shown = f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.2f} s"
        print(f"| {name} | {shown} | {ratio} |")


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--cases", default="B_train,B_gen,C_gen,tokens")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cases, results = args.cases.split(","), {}
    r, w = args.reps, args.warmup

    if "B_train" in cases:
        theirs = anchor(args.anchors_venv, "B_train", r, w)
        rows = {}
        if theirs:
            rows["dalle-pytorch, fp32"] = theirs["B_dalle_train"][
                "train_step_precomputed_codes"]["median_s"]  # fmt: skip
        rows["ours fp32"] = train_step_time(False, r, w)
        rows["ours bf16 autocast"] = train_step_time(True, r, w)
        table("B: train step, batch 32, image tokens given", rows, "dalle-pytorch, fp32")
        results["B_train"] = rows

    for case, config, vae, batch in (("B_gen", CASE_B, VAE_B, 8), ("C_gen", CASE_C, VAE_C, 4)):
        if case not in cases:
            continue
        variants = "kv_cached_loop_cond_scale_1" + (
            ",generate_images_default_no_cache" if case == "B_gen" else ""
        )
        theirs = anchor(args.anchors_venv, case, r, w, variants)
        rows = {}
        if theirs:
            gen = theirs[f"{case[0]}_dalle_generate"]["generate"]
            for name, label in (
                ("generate_images_default_no_cache", "dalle-pytorch generate_images"),
                ("kv_cached_loop_cond_scale_1", "dalle-pytorch KV-cache loop"),
            ):
                if name in gen:
                    rows[label] = gen[name]["median_s"]
        rows["ours, KV cache, fp32"] = generate_time(config, vae, batch, True, False, r, w)
        rows["ours, KV cache, bf16 weights"] = generate_time(config, vae, batch, True, True, r, w)
        table(f"{case[0]}: sample {batch} prompts", rows, "dalle-pytorch KV-cache loop")
        results[case] = rows

    if "tokens" in cases:
        n = 4 * CASE_C.image_seq_len
        rows = {
            f"{'cache' if cache else 'no cache'}, {'bf16' if bf16 else 'fp32'}": generate_time(
                CASE_C, VAE_C, 4, cache, bf16, max(1, r // 2), 1
            )
            for cache in (True, False)
            for bf16 in (False, True)
        }
        print("\n### Our sampling throughput at C (4 prompts, 256 tokens each)\n")
        print("| run | median | image tokens/s |\n|---|---|---|")
        for name, t in rows.items():
            print(f"| {name} | {t:.2f} s | {n / t:.0f} |")
        results["tokens"] = rows
    print(json.dumps(results))


if __name__ == "__main__":
    main()
