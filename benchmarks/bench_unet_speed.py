"""Training-step time of the unCLIP U-Net presets by dtype, memory layout and batch size.

    python benchmarks/bench_unet_speed.py [--reps 4] [--presets shapes-decoder,shapes-upsampler]

Forward, v-prediction MSE, backward and AdamW on random inputs, 2 threads, median of --reps after
one warm-up step; fp32 and bf16 autocast (where the machine has bf16 units), contiguous and
channels-last. Prints a Markdown table (docs/unclip.md) with the CPU's name.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import median_time  # noqa: E402
from bench_generate import cpu_name  # noqa: E402

from dalle.models.unet import UNet, UNetConfig  # noqa: E402
from dalle.utils.device import bf16_is_fast  # noqa: E402


def step_time(preset: str, batch: int, bf16: bool, channels_last: bool, reps: int) -> float:
    torch.manual_seed(0)
    c = UNetConfig.from_preset(preset)
    model = UNet(c).train()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, c.image_size, c.image_size).contiguous(memory_format=layout)
    kw: dict = {}
    if c.embed_dim:
        kw["clip_embed"] = torch.randn(batch, c.embed_dim)
    if c.has_text:
        kw["text"] = torch.randint(0, c.num_text_tokens, (batch, c.text_seq_len))
        kw["text_mask"] = torch.ones(batch, c.text_seq_len, dtype=torch.bool)
    if c.low_res_channels:
        kw["low_res"] = torch.randn(batch, 3, c.low_res_size, c.low_res_size)
    t = torch.randint(0, c.num_timesteps, (batch,))

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(x, t, **kw)
        loss = F.mse_loss(out.float(), x.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_time(step, reps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--presets", default="shapes-decoder,shapes-upsampler")
    parser.add_argument("--batches", default="32")
    args = parser.parse_args()
    torch.set_num_threads(2)
    dtypes = [False, True] if bf16_is_fast(torch.device("cpu")) else [False]
    print(f"CPU: {cpu_name()}, 2 threads\n")
    print("| preset | batch | dtype | layout | ms / step | images / s |\n|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        for batch in map(int, args.batches.split(",")):
            for bf16 in dtypes:
                for last in (False, True):
                    s = step_time(preset, batch, bf16, last, args.reps)
                    print(f"| {preset} | {batch} | {'bf16' if bf16 else 'fp32'} | "
                          f"{'channels-last' if last else 'contiguous'} | {s * 1e3:.0f} | "
                          f"{batch / s:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
