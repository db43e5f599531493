"""``dalle data``: data set utilities (export the shapes world, its evaluation prompts)."""

from __future__ import annotations

import argparse

from dalle.cli.validate import non_negative_int, output_file, output_folder, positive_int
from dalle.shapes.dataset import export_shapes
from dalle.shapes.spec import SPLITS


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="data set utilities")
    data_sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    shapes = data_sub.add_parser(
        "shapes",
        help="export the built-in shapes world as PNGs + metadata.jsonl",
        description=(
            "Render N examples of the shapes world into OUT as NNNNN.png files plus "
            "metadata.jsonl (one JSON object per line: file_name, text = the training caption, "
            "canonical = its canonical form), the Hugging Face imagefolder layout. The same "
            "split, index and seed always give the same image and caption."
        ),
    )
    shapes.add_argument(
        "--split",
        choices=SPLITS,
        default="train",
        help="train never shows the four held-out colour/shape pairs; test does",
    )
    shapes.add_argument("--n", type=positive_int, required=True, help="number of images")
    shapes.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the split (default 0)"
    )
    shapes.add_argument("--out", required=True, help="output folder (created if missing)")
    shapes.set_defaults(func=_export)

    prompts = data_sub.add_parser(
        "shapes-prompts",
        help="write the canonical evaluation prompts of the shapes world",
        description=(
            "Write N distinct canonical prompts, one per line. The default mix, users, is what "
            "people write once they combine objects: three quarters two-object, most stating "
            "sizes, a quarter of each kind naming a held-out colour/shape pair. --mix balanced "
            "is the earlier set (half one-object, two-object prompts without sizes). The file "
            "feeds `dalle generate --prompts-file` and `dalle eval shapes --prompts`."
        ),
    )
    prompts.add_argument(
        "--n", type=positive_int, default=128, help="number of prompts (default 128)"
    )
    prompts.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the set (default 0)"
    )
    prompts.add_argument(
        "--mix", default="users", choices=("users", "balanced"), help="the mix (default users)"
    )
    prompts.add_argument("--out", required=True, help="the prompts file to write")
    prompts.set_defaults(func=_prompts)


def _export(args: argparse.Namespace) -> int:
    output_folder(args.out, names=lambda name: False)
    meta = export_shapes(args.out, args.split, args.n, args.seed, progress=True)
    print(f"wrote {args.n} images and {meta}")
    return 0


def _prompts(args: argparse.Namespace) -> int:
    from dalle.shapes.captions import parse_caption
    from dalle.shapes.prompts import evaluation_prompts
    from dalle.utils.io import atomic_write_text

    output_file(args.out)
    prompts = evaluation_prompts(args.n, args.seed, args.mix)
    atomic_write_text(args.out, "".join(p + "\n" for p in prompts))
    parsed = [parse_caption(p) for p in prompts]
    two = sum(len(p.objects) == 2 for p in parsed)
    held = sum(p.held_out for p in parsed)
    print(f"wrote {len(prompts)} prompts ({two} two-object, {held} held-out) to {args.out}")
    return 0
