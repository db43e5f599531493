"""The unCLIP prior against dalle2-pytorch's at its benchmark configuration (anchors case D).

    python benchmarks/bench_prior.py [--anchors-venv DIR] [--reps 5] [--warmup 2] [--no-anchors]

Case D: a prior of width 256, depth 4, 8 heads of 32, over 256-wide embeddings, 1,000 training
timesteps; a training step at batch 64 (forward, loss, backward, AdamW) and 16 embeddings drawn.
Ours at the same sizes reads the caption's token encodings too (24 positions of width 128, which
dalle2-pytorch's case does not: it is given the text embedding only), fp32 like the anchor, and
bf16 autocast where the machine has bf16 units. Ours draws with DPM-Solver++(2M) at 20 steps (the
pipeline's default; docs/unclip.md says how it retrieves against DDIM at 50), dalle2-pytorch with
its DDIM loop at 50 steps, both without guidance and without best-of. Both in this run, 2 threads;
prints a Markdown table and, last, one JSON line.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import benchmark_parser, median_time, run_anchor  # noqa: E402
from bench_generate import cpu_name  # noqa: E402

from dalle.diffusion import DPMSolverPP2MSampler, NoiseSchedule, sample  # noqa: E402
from dalle.models.prior import DiffusionPrior, PriorConfig  # noqa: E402
from dalle.utils.device import bf16_is_fast  # noqa: E402

CONFIG = PriorConfig(embed_dim=256, text_dim=128, text_seq_len=24, dim=256, num_layers=4,
                     num_heads=8, head_dim=32)  # fmt: skip


def inputs(batch: int, generator: torch.Generator):
    c = CONFIG
    return (
        torch.randn(batch, c.text_seq_len, c.text_dim, generator=generator),
        F.normalize(torch.randn(batch, c.embed_dim, generator=generator), dim=-1),
        torch.arange(c.text_seq_len)[None].expand(batch, -1) < 12,  # 12-token captions
        torch.randn(batch, c.embed_dim, generator=generator),
    )


def train_step_time(bf16: bool, reps: int, warmup: int) -> float:
    torch.manual_seed(0)
    prior = DiffusionPrior(CONFIG).train()
    opt = torch.optim.AdamW(prior.parameters(), lr=1.1e-4)
    schedule = NoiseSchedule.cosine(CONFIG.num_timesteps)
    g = torch.Generator().manual_seed(0)
    tokens, text, mask, x0 = inputs(64, g)

    def step() -> None:
        t = torch.randint(0, 1000, (64,), generator=g)
        x_t = schedule.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        keep = torch.rand(64, generator=g) >= 0.1
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            pred = prior(x_t, t, tokens, text, mask, keep)
        loss = F.mse_loss(pred.float(), x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_time(step, reps, warmup)


def sample_time(reps: int, warmup: int, steps: int = 20) -> float:
    torch.manual_seed(0)
    prior = DiffusionPrior(CONFIG).eval()
    g = torch.Generator().manual_seed(0)
    tokens, text, mask, _ = inputs(16, g)
    sampler = DPMSolverPP2MSampler(NoiseSchedule.cosine(CONFIG.num_timesteps), prediction="x0")

    def draw() -> None:
        x = sampler.init_noise((16, CONFIG.embed_dim), g)
        sample(lambda x, t: prior(x, t, tokens, text, mask), sampler, x, steps)

    return median_time(draw, reps, warmup)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--no-anchors", action="store_true", help="time ours only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    ours = {"train_fp32_s": train_step_time(False, args.reps, args.warmup),
            "sample16_dpm20_s": sample_time(args.reps, args.warmup)}  # fmt: skip
    if bf16_is_fast(torch.device("cpu")):
        ours["train_bf16_s"] = train_step_time(True, args.reps, args.warmup)
    anchor = None
    if not args.no_anchors:
        found = run_anchor(args.anchors_venv, "bench_dalle2_pytorch.py", "--case",
                           "prior_train,prior_sample", "--reps", str(args.reps),
                           "--warmup", str(args.warmup), "--full-budget-s", "0")  # fmt: skip
        if found is not None:
            anchor = {"train_s": found["D_prior_train_step"]["median_s"],
                      "sample16_ddim50_s": found["D_prior_sample"]["ddim_50"]["median_s"]}  # fmt: skip
    print(f"CPU: {cpu_name()}, 2 threads\n")
    print("| case D | dalle2-pytorch | ours | ratio |\n|---|---|---|---|")
    rows = [("train step, batch 64, fp32", "train_s", "train_fp32_s"),
            ("16 embeddings (DDIM 50 / ours DPM-Solver++ 20)", "sample16_ddim50_s",
             "sample16_dpm20_s")]  # fmt: skip
    for name, theirs_key, ours_key in rows:
        theirs = anchor[theirs_key] if anchor else None
        ratio = f"{theirs / ours[ours_key]:.1f}x" if theirs else "-"
        print(f"| {name} | {'-' if theirs is None else f'{theirs * 1e3:.0f} ms'} | "
              f"{ours[ours_key] * 1e3:.1f} ms | {ratio} |")  # fmt: skip
    if "train_bf16_s" in ours:
        print(
            f"| train step, batch 64, bf16 autocast | - | {ours['train_bf16_s'] * 1e3:.1f} ms | - |"
        )
    print(json.dumps({"cpu": cpu_name(), "ours": ours, "dalle2_pytorch": anchor}))


if __name__ == "__main__":
    main()
