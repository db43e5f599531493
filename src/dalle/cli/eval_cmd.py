"""``dalle eval``: score generated images."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from dalle.eval.shapes_report import failure_grid, read_prompts, score_folder


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate generated images")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)
    shapes = ev_sub.add_parser(
        "shapes",
        help="score images of the shapes world against their prompts",
        description=(
            "Score every DIR/{prompt:04d}_{image:02d}.png against line `prompt` (from 0) of the "
            "prompts file with the exact shapes scorer. Reports accuracy on seen and held-out "
            "prompts and the errors per attribute, and writes a grid of the failures."
        ),
    )
    shapes.add_argument("dir", help="folder of generated images")
    shapes.add_argument(
        "--prompts", required=True, help="prompts file, one canonical prompt a line"
    )
    shapes.add_argument(
        "--failures",
        default=None,
        help="where to write the failure grid PNG (default DIR/failures.png)",
    )
    shapes.add_argument(
        "--max-failures",
        type=int,
        default=64,
        help="at most this many failures in the grid (default 64)",
    )
    shapes.add_argument("--json", action="store_true", help="print the report as one JSON line")
    shapes.set_defaults(func=_eval_shapes)

    rec = ev_sub.add_parser(
        "reconstruction",
        help="how well a dVAE reconstructs the shapes world",
        description=(
            "Encode and decode N images of a shapes split with a dVAE; report mean PSNR, the "
            "shapes-scorer accuracy of the reconstructions on their canonical captions (seen and "
            "held-out), and how many codebook entries are in use."
        ),
    )
    rec.add_argument(
        "--model", default="shapes", help="dVAE folder or bundled name (default shapes)"
    )
    rec.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    rec.add_argument("--split", default="test", choices=("train", "test"))
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--json", action="store_true", help="print the report as one JSON line")
    rec.set_defaults(func=_eval_reconstruction)


def _eval_reconstruction(args: argparse.Namespace) -> int:
    from dalle.eval.reconstruction import shapes_reconstruction_report
    from dalle.models.dvae import DiscreteVAE

    report = shapes_reconstruction_report(
        DiscreteVAE.from_pretrained(args.model), args.n, args.split, args.seed
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(report)))
        return 0
    print(f"images          {report.images} ({args.split} split, seed {args.seed})")
    print(f"mean PSNR       {report.mean_psnr:.2f} dB")
    print(f"scorer, seen    {_percent(report.seen_accuracy)}")
    print(f"scorer, held-out {_percent(report.held_out_accuracy)}")
    print(f"codes in use    {report.codes_used} of {report.num_tokens}")
    return 0


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _eval_shapes(args: argparse.Namespace) -> int:
    if args.max_failures < 0:
        raise ValueError("--max-failures must be at least 0")
    report = score_folder(args.dir, read_prompts(args.prompts))
    summary = report.to_dict()
    failures = report.failures
    if failures:
        out = Path(args.failures) if args.failures else Path(args.dir) / "failures.png"
        summary["failure_grid"] = str(failure_grid(failures[: args.max_failures], out))
    if args.json:
        print(json.dumps(summary))
        return 0
    seen, held = summary["seen"], summary["held_out"]
    print(f"images scored   {summary['images']}")
    print(f"seen accuracy   {_percent(seen['accuracy'])} of {seen['images']}")
    print(f"held-out        {_percent(held['accuracy'])} of {held['images']}")
    print("errors          " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    if failures:
        print(f"failure grid    {summary['failure_grid']}")
    return 0
