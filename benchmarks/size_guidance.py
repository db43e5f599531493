"""Would guidance on the size words help the DALL·E pipeline draw the sizes a prompt states?

Size is the largest kind of error on two-object prompts that state sizes (docs/transformer.md).
This adds a second guidance term that pushes each token's logits away from what the model draws
for the same caption with its size words taken out ("a small red circle" -> "a red circle"):
``l = l_null + g (l_caption - l_null) + h (l_caption - l_without_sizes)``, g the pipeline's
guidance. Prompts that state no size are unchanged (their two captions are the same). Each
``--scales`` value h is patched into the pipeline (0 is the pipeline as it is) and scored like
`dalle eval generation` on the users mix, ``--prompts-seed 1`` (the validation set) by default,
once per ``--seeds`` image seed.

    python benchmarks/size_guidance.py [--model shapes] [--scales 0,1,2] [--seeds 0]

How: the sampler is given each caption twice, as itself and without its sizes, with two
generators seeded alike per image; the guidance step (``sampling.guide``) combines the three
rows and hands both halves the same logits, so both draw the same tokens and the second half
only serves as the size-free branch. Prints one JSON line per (scale, seed).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

import dalle.pipelines.sampling as sampling
from dalle.pipelines.dalle_pipeline import DallePipeline

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_shapes_rows, sampler_variant_parser  # noqa: E402

_guide = sampling.guide
_generate_tokens = DallePipeline.generate_tokens


def without_sizes(prompt: str) -> str:
    """The caption with its size words taken out, its articles mended."""
    text = re.sub(r"\b(small|large) ", "", prompt)
    return re.sub(r"\ba (?=[aeiou])", "an ", re.sub(r"\ban (?=[^aeiou])", "a ", text))


def size_guided(scale: float):
    def guide(logits: torch.Tensor, guidance: float) -> torch.Tensor:
        cond, plain, uncond, _ = logits.chunk(4)  # [captions; without sizes; null; null]
        out = uncond + guidance * (cond - uncond) + scale * (cond - plain)
        return torch.cat([out, out])

    def generate_tokens(self, prompts, seeds, settings=sampling.DEFAULT_SETTINGS, known=None,
                        keep=None, bf16=None, on_token=None):  # fmt: skip
        if not settings.guided or known is not None:
            raise ValueError("size guidance needs guided sampling from scratch")
        both = list(prompts) + [without_sizes(p) for p in prompts]
        tokens = _generate_tokens(self, both, list(seeds) * 2, settings, None, None, bf16)
        return tokens[: len(prompts)]

    return guide, generate_tokens


def main() -> None:
    args = sampler_variant_parser(__doc__, "--scales", "0,1,2").parse_args()
    pipe = DallePipeline.from_pretrained(args.model)
    for scale in (float(s) for s in args.scales.split(",")):
        if scale:
            sampling.guide, DallePipeline.generate_tokens = size_guided(scale)
        print_shapes_rows(pipe, args, {"size_guidance": scale})
        sampling.guide, DallePipeline.generate_tokens = _guide, _generate_tokens


if __name__ == "__main__":
    main()
