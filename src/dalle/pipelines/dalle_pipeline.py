"""Text in, images out: the DALL·E pipeline (tokenizer -> transformer -> dVAE decoder).

On disk a pipeline is a folder (or a bundled name) in the format of :mod:`dalle.folders`: a
``model_index.json`` recording the parts ``tokenizer`` (TextTokenizer), ``vae`` (DiscreteVAE),
``transformer`` (DalleTransformer) and optionally ``clip`` (CLIP, reading the ``tokenizer`` part:
reranking), and the default sampling settings.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dalle.config import replace_given
from dalle.folders import load_parts, read_pipeline, write_pipeline
from dalle.models.dvae import DiscreteVAE
from dalle.models.transformer import DalleTransformer
from dalle.pipelines.clip_ranker import ClipRanker
from dalle.pipelines.sampling import DEFAULT_SETTINGS, SamplingSettings, sample_image_tokens
from dalle.pipelines.seeds import image_seed
from dalle.pipelines.text_to_image import images_by_prompt
from dalle.text.tokenizer import TextTokenizer
from dalle.utils.device import use_bf16
from dalle.utils.images import to_pil

DEFAULT_BATCH_SIZE = 256  # images drawn at once: the fastest measured (docs/benchmarks.md)


class DallePipeline:
    def __init__(
        self,
        tokenizer: TextTokenizer,
        vae: DiscreteVAE,
        transformer: DalleTransformer,
        defaults: SamplingSettings = DEFAULT_SETTINGS,
        clip: ClipRanker | None = None,
    ) -> None:
        """``defaults``: the sampling settings used where a call gives none (stored in
        ``model_index.json``, so a trained pipeline carries the settings measured best for it).
        ``clip``: ranks candidates when more are drawn than kept."""
        c = transformer.config
        if c.num_image_tokens != vae.config.num_tokens or c.image_grid != vae.config.grid_size:
            raise ValueError(
                f"the transformer expects {c.image_grid} x {c.image_grid} tokens of "
                f"{c.num_image_tokens}; the dVAE gives {vae.config.grid_size} x "
                f"{vae.config.grid_size} of {vae.config.num_tokens}"
            )
        if tokenizer.vocab_size > c.num_text_tokens or tokenizer.pad_id != c.pad_id:
            raise ValueError("the tokenizer does not match the transformer's text vocabulary")
        self.tokenizer, self.vae, self.transformer = tokenizer, vae, transformer
        self.defaults, self.clip = defaults, clip
        self._bf16_transformer: DalleTransformer | None = None

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> DallePipeline:
        root, index = read_pipeline(name_or_dir, cls.__name__, ("tokenizer", "vae", "transformer"))
        parts = load_parts(root, index, device)
        clip = None
        if "clip" in parts:
            clip = ClipRanker(parts["clip"], parts[index.parts["clip"].tokenizer or "tokenizer"])
        return cls(
            parts["tokenizer"], parts["vae"], parts["transformer"],
            SamplingSettings(**index.defaults.get("sampling", {})), clip,
        )  # fmt: skip

    def save_pretrained(
        self, directory: str | os.PathLike, dtype: torch.dtype | None = None
    ) -> Path:
        """Write the folder ``from_pretrained`` reads (weights cast to ``dtype`` if given)."""
        parts = {"tokenizer": self.tokenizer, "vae": self.vae, "transformer": self.transformer}
        tokenizers = {}
        if self.clip is not None:
            parts["clip"], tokenizers["clip"] = self.clip.clip, "tokenizer"
            own = getattr(self.clip.tokenizer, "to_json", lambda: None)()
            if own != self.tokenizer.to_json():  # CLIP reads a tokenizer of its own
                parts["clip_tokenizer"], tokenizers["clip"] = self.clip.tokenizer, "clip_tokenizer"
        return write_pipeline(
            directory, type(self).__name__, parts,
            {"sampling": dataclasses.asdict(self.defaults)}, tokenizers, dtype,
        )  # fmt: skip

    def settings(
        self,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance: float | None = None,
    ) -> SamplingSettings:
        """The pipeline's default sampling settings with the given ones replacing them."""
        given = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "guidance": guidance}
        return replace_given(self.defaults, given)

    @property
    def device(self) -> torch.device:
        return self.transformer.image_emb.weight.device

    @property
    def text_seq_len(self) -> int:
        """Caption tokens the transformer reads (``<eot>`` included)."""
        return self.transformer.config.text_seq_len

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, T) caption ids; over-long prompts are truncated with a ``TruncationWarning``."""
        ids = self.tokenizer.encode(list(prompts), self.text_seq_len).ids
        return ids.to(self.device)

    def null_text(self) -> torch.Tensor:
        """The empty caption: the unconditional input of classifier-free guidance."""
        return self.encode_prompts([""])[0]

    @torch.no_grad()
    def generate_tokens(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        settings: SamplingSettings = DEFAULT_SETTINGS,
        known: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
        bf16: bool | None = None,
        on_token: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """(B, N) image tokens, one sample per (prompt, seed) pair, the ``known`` (B, N) ones
        kept where ``keep`` (N,) is True; ``bf16`` None: where the machine has bf16 matrix
        units."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        return sample_image_tokens(
            self.bf16_transformer() if use_bf16(bf16, self.device) else self.transformer,
            self.encode_prompts(prompts),
            generators, settings, null_text=self.null_text() if settings.guided else None,
            known=known, keep=keep, on_token=on_token,
        )  # fmt: skip

    def draw_pixels(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        settings: SamplingSettings | None = None,
        bf16: bool | None = None,
        on_token: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1], one image per (prompt, seed) pair, all drawn at once;
        ``on_token(k, tokens)`` as each token position k is drawn (previews)."""
        settings = self.defaults if settings is None else settings
        tokens = self.generate_tokens(prompts, seeds, settings, bf16=bf16, on_token=on_token)
        return self.decode_pixels(tokens, bf16)

    def bf16_transformer(self) -> DalleTransformer:
        """A bf16 copy of the transformer, made once: sampling reads half the bytes per token
        (its tanh GELU computes the erf one in bf16: ``dalle.models.layers.TanhGELU``)."""
        if self._bf16_transformer is None:
            self._bf16_transformer = copy.deepcopy(self.transformer).to(torch.bfloat16)
        return self._bf16_transformer

    @torch.inference_mode()
    def decode_pixels(self, tokens: torch.Tensor, bf16: bool | None = None) -> torch.Tensor:
        """(B, 3, H, W) float pixels of (B, N) image tokens. Under bf16 (None: where the machine
        has bf16 units) the dVAE decodes in bf16 autocast, 4x faster on such CPUs; pixels move
        by at most a few levels at edges (its likelihood head stays float32)."""
        device = self.device
        with torch.autocast(device.type, torch.bfloat16, enabled=use_bf16(bf16, device)):
            return self.vae.decode(tokens.view(-1, *self._grid)).float()

    def decode(self, tokens: torch.Tensor, bf16: bool | None = None) -> list[Image.Image]:
        return to_pil(self.decode_pixels(tokens, bf16))

    def __call__(
        self,
        prompts: str | Sequence[str],
        num_images_per_prompt: int = 1,
        seed: int = 0,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        guidance: float | None = None,
        candidates: int | None = None,
        batch_size: int | None = None,
        bf16: bool | None = None,
        on_image: Callable[[int], None] | None = None,
    ) -> list[Image.Image]:
        """Images for each prompt, prompt by prompt: ``num_images_per_prompt`` per prompt.

        Sampling settings left as None take the pipeline's defaults; see :meth:`iter_images`
        for the rest.
        """
        settings = self.settings(temperature, top_k, top_p, guidance)
        found = self.iter_images(
            prompts, num_images_per_prompt, seed, settings, candidates, batch_size, bf16,
            on_image,
        )  # fmt: skip
        return [image for _, images in found for image in images]

    def iter_images(
        self,
        prompts: str | Sequence[str],
        num_images_per_prompt: int = 1,
        seed: int = 0,
        settings: SamplingSettings | None = None,
        candidates: int | None = None,
        batch_size: int | None = None,
        bf16: bool | None = None,
        on_image: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, list[Image.Image]]]:
        """``(prompt index, its images)`` for each prompt in order, each as soon as it is final
        (so that a caller can save it before the rest are drawn).

        Image ``j`` of prompt ``i`` is drawn with the seed ``image_seed(seed, i, j)``, so it is
        the same whatever ``batch_size`` is (default ``DEFAULT_BATCH_SIZE``). ``settings`` None
        takes the pipeline's defaults. With ``candidates`` M > ``num_images_per_prompt``, M
        images are drawn per prompt (seeds ``j < M``) and the pipeline's CLIP keeps the best,
        sorted best first; each kept image's ``info`` holds its ``clip_score`` (cosine
        similarity) and ``candidate`` j. ``bf16`` None samples in bf16 where the machine has
        bf16 matrix units (``dalle.utils.device``). ``on_image(n)`` is called as each batch of
        ``n`` images is drawn.
        """
        settings = self.defaults if settings is None else settings
        bf16 = use_bf16(bf16, self.device)

        def draw_batch(texts: list[str], seeds: list[int]) -> torch.Tensor:
            return self.draw_pixels(texts, seeds, settings, bf16)

        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        return images_by_prompt(
            prompts, num_images_per_prompt, seed, draw_batch, batch_size, candidates, self.clip,
            on_image,
        )  # fmt: skip

    @property
    def _grid(self) -> tuple[int, int]:
        grid = self.transformer.config.image_grid
        return grid, grid

    def image_tokens(self, image: Image.Image) -> torch.Tensor:
        """(1, N) dVAE tokens of an image, resized and centre-cropped to the dVAE's size."""
        from dalle.data.transforms import ImageTransform, TransformConfig

        transform = ImageTransform(TransformConfig(image_size=self.vae.config.image_size))
        pixels = transform(image.convert("RGB"), "", np.random.default_rng(0))[0]
        return self.vae.encode(pixels[None].to(self.device)).flatten(1)

    @torch.no_grad()
    def complete_tokens(
        self,
        image: Image.Image,
        rows: int,
        prompt: str,
        num_images: int = 1,
        seed: int = 0,
        settings: SamplingSettings | None = None,
        bf16: bool | None = None,
    ) -> torch.Tensor:
        """(num_images, N) tokens: the first ``rows`` token rows of ``image``, then samples."""
        grid = self.transformer.config.image_grid
        if not 0 <= rows < grid:
            raise ValueError(f"rows must be in 0 .. {grid - 1} (the token grid is {grid} x {grid})")
        known = self.image_tokens(image).expand(num_images, -1)
        keep = torch.arange(grid * grid) < rows * grid
        seeds = [image_seed(seed, 0, j) for j in range(num_images)]
        settings = settings if settings is not None else self.defaults
        return self.generate_tokens(
            [prompt] * num_images, seeds, settings, known=known, keep=keep, bf16=bf16
        )

    def complete(
        self,
        image: Image.Image,
        rows: int,
        prompt: str,
        num_images: int = 1,
        seed: int = 0,
        settings: SamplingSettings | None = None,
        bf16: bool | None = None,
    ) -> list[Image.Image]:
        """Keep the first ``rows`` token rows of ``image`` and sample the rest for ``prompt``."""
        tokens = self.complete_tokens(image, rows, prompt, num_images, seed, settings, bf16)
        return self.decode(tokens, bf16)
