"""Image-caption datasets in several on-disk formats behind one interface.

Every dataset yields ``(image, caption)`` (float32 (3, H, W) in [0, 1], str) or a
:class:`BadFile` for a file it could not read; see :mod:`dalle.data.base`.
"""

from dalle.data.base import (
    BadFile,
    DatasetFormatError,
    SkipReport,
    collate_image_text,
    iter_batches,
    iter_samples,
    make_loader,
)
from dalle.data.celeba import CelebADataset, celeba_caption
from dalle.data.folders import CaptionFolderDataset, MetadataFolderDataset
from dalle.data.images import DEFAULT_MAX_PIXELS, BadImageError, load_image
from dalle.data.registry import open_dataset
from dalle.data.shards import WebDatasetShards
from dalle.data.transforms import ImageTransform, TransformConfig, swap_left_right

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "BadFile",
    "BadImageError",
    "CaptionFolderDataset",
    "CelebADataset",
    "DatasetFormatError",
    "ImageTransform",
    "MetadataFolderDataset",
    "SkipReport",
    "TransformConfig",
    "WebDatasetShards",
    "celeba_caption",
    "collate_image_text",
    "iter_batches",
    "iter_samples",
    "load_image",
    "make_loader",
    "open_dataset",
    "swap_left_right",
]
