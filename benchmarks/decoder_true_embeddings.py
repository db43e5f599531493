"""Is the unCLIP decoder or the prior what limits text -> image accuracy? Draw each validation
prompt's scene, decode its *true* CLIP image embedding with the prompt as caption (then the
upsampler), and score the result with the shapes scorer, one- and two-object apart.

    python benchmarks/decoder_true_embeddings.py [--model shapes-unclip] [--n 64] [--guidance 3]
        [--reads both,caption,clip]

``--reads`` decodes the same scenes once per listed condition: ``both`` (the CLIP embedding and
the caption, as the pipeline does), ``caption`` (the learned null embedding instead of the CLIP
one: what the caption alone carries) and ``clip`` (the null caption).
"""

from __future__ import annotations

import json
import sys

from _common import rendered_prompt_scenes, right_by_count, scene_parser

from dalle.pipelines.unclip_pipeline import UnclipPipeline
from dalle.utils.device import use_bf16
from dalle.utils.images import to_pil


def main() -> None:
    parser = scene_parser(__doc__)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--reads", default="both", help="comma-separated: both, caption, clip")
    args = parser.parse_args()
    reads = args.reads.split(",")
    if set(reads) - {"both", "caption", "clip"}:
        parser.error("--reads takes a comma-separated subset of both, caption, clip")

    pipe = UnclipPipeline.from_pretrained(args.model)
    prompts, parsed, images = rendered_prompt_scenes(args.n, args.prompts_seed)
    bf16 = use_bf16(None, pipe.device)
    seeds = list(range(args.n))
    embeddings = pipe.image_embeddings(images)
    settings = pipe.decoder_settings(guidance=args.guidance)
    results = {}
    for read in reads:
        small = pipe.decode(embeddings, prompts, seeds, settings, bf16,
                            read_clip=read != "caption", read_caption=read != "clip")  # fmt: skip
        drawn = pipe.upsample(small, seeds, None, bf16) if pipe.upsampler is not None else small
        results[read] = right_by_count(to_pil(drawn), parsed)
        print(read, json.dumps(results[read]), file=sys.stderr, flush=True)
    print(json.dumps(results if len(reads) > 1 else results[reads[0]]))


if __name__ == "__main__":
    main()
