"""``dalle reconstruct``: encode and decode every image of a folder with a dVAE."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from dalle.cli.validate import positive_int
from dalle.data.images import IMAGE_EXTENSIONS, BadImageError, load_image
from dalle.data.transforms import ImageTransform, TransformConfig
from dalle.eval.reconstruction import psnr
from dalle.models.dvae import DiscreteVAE
from dalle.utils.images import to_uint8
from dalle.utils.io import atomic_path


def register(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser(
        "reconstruct",
        help="encode + decode a folder of images with a dVAE",
        description=(
            "Encode every image of IN_DIR to tokens and decode it again into OUT_DIR under the same "
            "file name and format. Prints tokens per image and the mean PSNR. Images are resized "
            "and centre-cropped to the model's size; unreadable files are skipped and counted."
        ),
    )
    rec.add_argument("in_dir", metavar="IN_DIR")
    rec.add_argument("--out", required=True, metavar="OUT_DIR", help="where the reconstructions go")
    rec.add_argument(
        "--model", default="shapes", help="dVAE folder or bundled name (default shapes)"
    )
    rec.add_argument("--batch-size", type=positive_int, default=64, help="images at once (64)")
    rec.set_defaults(func=_reconstruct)


def _reconstruct(args: argparse.Namespace) -> int:
    in_dir, out_dir = Path(args.in_dir), Path(args.out)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"no such folder: {in_dir}")
    if out_dir.exists() and os.path.samefile(out_dir, in_dir):
        raise ValueError(
            f"--out {out_dir} is the input folder: the reconstructions would overwrite the "
            "original images; give another folder"
        )
    vae = DiscreteVAE.from_pretrained(args.model)
    transform = ImageTransform(TransformConfig(image_size=vae.config.image_size))
    rng = np.random.default_rng(0)  # centre crop, no augmentation: unused but required
    paths = sorted(p for p in in_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    scores, skipped = [], []
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(0, len(paths), args.batch_size), desc="reconstruct", unit="batch"):
        batch, names = [], []
        for path in paths[i : i + args.batch_size]:
            try:
                batch.append(transform(load_image(path), "", rng)[0])
                names.append(path.name)
            except BadImageError as e:
                skipped.append(f"{path.name} ({e})")
        if not batch:
            continue
        images = torch.stack(batch)
        recon = vae.decode(vae.encode(images))
        scores += psnr(recon, images).tolist()
        pixels = to_uint8(recon)
        for name, array in zip(names, pixels, strict=True):
            fmt = Image.registered_extensions().get(Path(name).suffix.lower(), "PNG")
            with atomic_path(out_dir / name) as tmp:
                Image.fromarray(array).save(tmp, format=fmt)
    if not scores:
        raise ValueError(
            f"{in_dir}: no readable image to reconstruct ({len(skipped)} unreadable; images are "
            f"{', '.join(IMAGE_EXTENSIONS)})"
        )
    grid = vae.config.grid_size
    finite = [s for s in scores if math.isfinite(s)]
    print(f"reconstructed {len(scores)} images into {out_dir}")
    print(f"tokens per image {grid * grid} ({grid} x {grid}, vocabulary {vae.config.num_tokens})")
    if finite:
        print(
            f"mean PSNR {sum(finite) / len(finite):.2f} dB"
            + (f" ({len(scores) - len(finite)} exact)" if len(finite) < len(scores) else "")
        )
    if skipped:
        print(f"skipped {len(skipped)} unreadable files; first: {skipped[0]}")
    return 0
