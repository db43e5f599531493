"""The unCLIP decoder against dalle2-pytorch's at its benchmark configuration (anchors case D).

    python benchmarks/bench_decoder.py [--anchors-venv DIR] [--reps 5] [--warmup 2]
        [--sampler ddim] [--steps 25] [--no-anchors]

Case D: a U-Net of base width 64, widths (1, 2, 4) x 64, two residual blocks per level, over
32 x 32 images, conditioned on a 256-wide image embedding (added to the timestep embedding;
dalle2-pytorch's case has no text and attention only in the middle), 1,000 training timesteps;
a training step at batch 16 (forward, loss, backward, AdamW) and 4 images drawn. Ours at the
same sizes also projects the embedding into 4 context tokens and attends at 8 x 8 in the down
and up levels as well as the middle (more work than the anchor); fp32 like the anchor, and bf16
autocast where the machine has bf16 units. dalle2-pytorch samples with its DDIM loop at 50 steps;
ours with --sampler at --steps (the steps chosen in docs/unclip.md by the shapes accuracy).
Both in this run, 2 threads; prints a Markdown table and, last, one JSON line.

The work behind the training-step ratio: each side's FLOPs per step (``FlopCounterMode`` over a
forward and backward at batch 16; the anchor's counted in its venv on the same configuration),
the rate each side reaches, and the fp32 matrix-product rate (2048^3) measured in the same run:
what rate a 2x faster step at our work would need.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import benchmark_parser, median_time, run_anchor, run_in_anchors  # noqa: E402
from bench_generate import cpu_name, matmul_peak  # noqa: E402

from dalle.models.unet import UNet, UNetConfig  # noqa: E402
from dalle.pipelines.unclip_pipeline import (  # noqa: E402
    DecoderSettings,
    draw_unet,
    make_schedule,
    sampling_fn,
)
from dalle.utils.device import bf16_is_fast  # noqa: E402

CONFIG = UNetConfig(image_size=32, base_channels=64, channel_mults=(1, 2, 4), num_res_blocks=2,
                    attention_resolutions=(8,), embed_dim=256, clip_tokens=4, text_dim=128)  # fmt: skip


def train_inputs(batch: int) -> tuple[UNet, torch.Tensor, torch.Tensor, torch.Generator]:
    """Case D's model in training mode, x0 in [-1, 1], unit embeddings, and the generator."""
    torch.manual_seed(0)
    model = UNet(CONFIG).train()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1
    embed = F.normalize(torch.randn(batch, CONFIG.embed_dim, generator=g), dim=-1)
    return model, x0, embed, g


def train_step_time(bf16: bool, reps: int, warmup: int, batch: int = 16) -> float:
    model, x0, embed, g = train_inputs(batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1.2e-4)
    schedule = make_schedule(model)

    def step() -> None:
        t = torch.randint(0, 1000, (batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        keep = torch.rand(batch, generator=g) >= 0.1
        x_t = schedule.add_noise(x0, noise, t)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(x_t, t, embed, keep_clip=keep)
        loss = F.mse_loss(out.float(), schedule.target(x0, noise, t, CONFIG.prediction))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_time(step, reps, warmup)


def train_step_flops(batch: int = 16) -> float:
    """FLOPs of our training step's forward and backward at ``batch`` (``FlopCounterMode``;
    it counts no FLOPs for the CPU's fused attention kernel, about 1 GFLOP of the step here)."""
    from torch.utils.flop_counter import FlopCounterMode

    model, x0, embed, g = train_inputs(batch)
    t = torch.randint(0, 1000, (batch,), generator=g)
    with FlopCounterMode(display=False) as counter:
        model(x0, t, embed).square().mean().backward()
    return float(counter.get_total_flops())


# dalle2-pytorch's case-D decoder built by the anchors' own script, its FLOPs counted in the
# anchors venv the same way (forward with its loss, backward, batch 16)
ANCHOR_FLOPS = """
import torch
from torch.utils.flop_counter import FlopCounterMode
from bench_dalle2_pytorch import EMBED_DIM, build_decoder
torch.manual_seed(0)
decoder = build_decoder()
with FlopCounterMode(display=False) as counter:
    decoder(torch.rand(16, 3, 32, 32), image_embed=torch.randn(16, EMBED_DIM)).backward()
print(counter.get_total_flops())
"""


def sample_time(bf16: bool, sampler: str, steps: int, reps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = UNet(CONFIG).eval()
    g = torch.Generator().manual_seed(0)
    embed = F.normalize(torch.randn(4, CONFIG.embed_dim, generator=g), dim=-1)
    settings = DecoderSettings(sampler=sampler, steps=steps, guidance=1.0)

    def unguided(x, t):  # no caption: the anchor's case has none
        return model(x, t, embed)

    fn = sampling_fn(model, unguided, bf16)
    return median_time(lambda: draw_unet(model, fn, settings, [0, 1, 2, 3]), reps, warmup)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++2m", "ddpm"])
    parser.add_argument("--steps", type=int, default=25, help="our sampling steps")
    parser.add_argument("--no-anchors", action="store_true", help="time ours only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    fast = bf16_is_fast(torch.device("cpu"))
    ours = {
        "train_fp32_s": train_step_time(False, args.reps, args.warmup),
        "sample4_fp32_s": sample_time(False, args.sampler, args.steps, args.reps, args.warmup),
        "sample4_ddim50_fp32_s": sample_time(False, "ddim", 50, args.reps, args.warmup),
    }
    if fast:
        ours["train_bf16_s"] = train_step_time(True, args.reps, args.warmup)
        ours["sample4_bf16_s"] = sample_time(True, args.sampler, args.steps, args.reps, args.warmup)
    anchor = None
    if not args.no_anchors:
        found = run_anchor(args.anchors_venv, "bench_dalle2_pytorch.py", "--case",
                           "decoder_train,decoder_sample", "--reps", str(args.reps),
                           "--warmup", str(args.warmup), "--full-budget-s", "0")  # fmt: skip
        if found is not None:
            anchor = {"train_s": found["D_decoder_train_step"]["median_s"],
                      "sample4_ddim50_s": found["D_decoder_sample"]["ddim_50"]["median_s"]}  # fmt: skip
    print(f"CPU: {cpu_name()}, 2 threads\n")
    print("| case D decoder | dalle2-pytorch | ours | ratio |\n|---|---|---|---|")
    rows = [
        ("train step, batch 16, fp32", "train_s", "train_fp32_s"),
        ("train step, batch 16, ours bf16", "train_s", "train_bf16_s"),
        ("4 images, DDIM 50, fp32", "sample4_ddim50_s", "sample4_ddim50_fp32_s"),
        (f"4 images (theirs DDIM 50, ours {args.sampler} {args.steps}, fp32)",
         "sample4_ddim50_s", "sample4_fp32_s"),
        (f"4 images (theirs DDIM 50, ours {args.sampler} {args.steps}, bf16)",
         "sample4_ddim50_s", "sample4_bf16_s"),
    ]  # fmt: skip
    rows = [row for row in rows if row[2] in ours]  # bf16 rows only where the machine has its units
    for name, theirs_key, ours_key in rows:
        theirs = anchor[theirs_key] if anchor else None
        ratio = f"{theirs / ours[ours_key]:.1f}x" if theirs else "-"
        print(f"| {name} | {'-' if theirs is None else f'{theirs * 1e3:.0f} ms'} | "
              f"{ours[ours_key] * 1e3:.1f} ms | {ratio} |")  # fmt: skip
    work = {"ours_gflop": train_step_flops() / 1e9, "fp32_peak_gflops": matmul_peak(torch.float32)}
    found = run_in_anchors(args.anchors_venv, ANCHOR_FLOPS) if anchor is not None else None
    if found is not None:
        work["anchor_gflop"] = float(found) / 1e9
    print("\n| fp32 train step, batch 16 | dalle2-pytorch | ours |\n|---|---|---|")
    theirs = anchor["train_s"] if anchor else None
    for key, secs in (("anchor_gflop", theirs), ("ours_gflop", ours["train_fp32_s"])):
        if key in work and secs:
            work[f"{key}_per_s"] = work[key] / secs
    for row, key in (("GFLOP per step", "gflop"), ("GFLOP/s reached", "gflop_per_s")):
        cells = [f"{work[k]:.0f}" if k in work else "-" for k in (f"anchor_{key}", f"ours_{key}")]
        print(f"| {row} | {' | '.join(cells)} |")
    if theirs:  # the rate our step would need to take half the anchor's time
        work["needed_for_2x_gflops"] = work["ours_gflop"] / (theirs / 2)
        print(f"\nfp32 matrix-product rate (2048^3): {work['fp32_peak_gflops']:.0f} GFLOP/s; a "
              f"step 2x faster than the anchor's at our work needs "
              f"{work['needed_for_2x_gflops']:.0f} GFLOP/s "
              f"({work['needed_for_2x_gflops'] / work['fp32_peak_gflops']:.0%} of it)")  # fmt: skip
    print(json.dumps({"cpu": cpu_name(), "sampler": args.sampler, "steps": args.steps,
                      "ours": ours, "dalle2_pytorch": anchor, "train_work": work}))  # fmt: skip


if __name__ == "__main__":
    main()
