"""``dalle embed``: CLIP embeddings of images or prompts, or the prior's for prompts, as .npy."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dalle.cli.validate import non_negative_int, refuse_overwriting
from dalle.utils.io import atomic_write_bytes

BATCH = 256


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="write CLIP (or prior) embeddings of images or prompts to a .npy file",
        description=(
            "Write an (N, D) float32 array of L2-normalised embeddings to FILE.npy: for --images, "
            "the CLIP image embeddings of the image files in DIR in sorted file-name order; for "
            "--prompts, the CLIP text embeddings of the file's lines in order; with --prompts "
            "--prior, the image embeddings the unCLIP prior draws for those lines (seeded by "
            "--seed). --model is a pipeline with a CLIP (and a prior for --prior) or a bundled "
            "name (default shapes-unclip)."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="DIR", help="a folder of images")
    source.add_argument("--prompts", metavar="FILE", help="a text file, one prompt per line")
    p.add_argument("--prior", action="store_true", help="the prior's image embeddings (--prompts)")
    p.add_argument("--model", default="shapes-unclip", help="pipeline folder or bundled name")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the prior's draws (default 0)"
    )
    p.add_argument("--out", required=True, metavar="FILE.npy", help="where to write the array")
    p.set_defaults(func=_embed)


def _output(path: str) -> Path:
    out = Path(path)
    if out.suffix != ".npy":
        raise ValueError(f"--out {path}: give a file name ending in .npy")
    if out.is_dir():
        raise ValueError(f"--out {path}: is a folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"--out {path}: the folder {parent} does not exist or is not writable")
    return out


def _image_files(folder: str) -> list[Path]:
    from dalle.data.images import IMAGE_EXTENSIONS

    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"--images {folder}: no such folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"--images {folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _embed(args: argparse.Namespace) -> int:
    from dalle.text.prompts import read_prompts

    out = _output(args.out)
    refuse_overwriting([out], [args.prompts] if args.prompts else [])
    if args.prior and args.prompts is None:
        raise ValueError("--prior draws image embeddings for prompts: give --prompts FILE")
    files = _image_files(args.images) if args.images else None
    prompts = read_prompts(args.prompts) if args.prompts else None
    if prompts is not None and not prompts:
        raise ValueError(f"--prompts {args.prompts}: the file holds no prompts")
    if files is not None:
        embeds = _embed_images(args.model, files)
    elif args.prior:
        embeds = _embed_prior(args.model, prompts, args.seed)
    else:
        embeds = _embed_texts(args.model, prompts)
    buffer = io.BytesIO()
    np.save(buffer, embeds.numpy().astype(np.float32))
    atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {embeds.shape[0]} x {embeds.shape[1]} embeddings to {out}")
    return 0


def _embed_images(model: str, files: list[Path]) -> torch.Tensor:
    from dalle.data.images import BadImageError, load_image
    from dalle.pipelines.clip_ranker import ClipRanker

    ranker = ClipRanker.from_pretrained(model)
    out = []
    for i in tqdm(range(0, len(files), BATCH), desc="embed", unit="batch"):
        images = []
        for path in files[i : i + BATCH]:
            try:
                images.append(load_image(path))
            except BadImageError as e:
                raise ValueError(f"{path}: {e}") from None
        with torch.no_grad():
            out.append(ranker.clip.encode_image(ranker.to_tensor(images).to(ranker.device)).cpu())
    return torch.cat(out)


def _embed_texts(model: str, prompts: list[str]) -> torch.Tensor:
    from dalle.pipelines.clip_ranker import ClipRanker

    ranker = ClipRanker.from_pretrained(model)
    out = []
    for i in tqdm(range(0, len(prompts), BATCH), desc="embed", unit="batch"):
        ids = ranker.tokenizer.encode(prompts[i : i + BATCH], ranker.clip.config.text_seq_len).ids
        with torch.no_grad():
            out.append(ranker.clip.encode_text(ids.to(ranker.device)).cpu())
    return torch.cat(out)


def _embed_prior(model: str, prompts: list[str], seed: int) -> torch.Tensor:
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    pipe = UnclipPipeline.from_pretrained(model)
    out = []
    for i in tqdm(range(0, len(prompts), BATCH), desc="embed", unit="batch"):
        out.append(pipe.prior_embeddings(prompts[i : i + BATCH], seed, first_index=i))
    return torch.cat(out)
