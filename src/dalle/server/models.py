"""The pipelines a server serves, by name, and what each can do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dalle.folders import bundled_names, read_index

UNCLIP_ALIAS = "dall-e-2"  # the OpenAI model name that maps onto the unCLIP pipeline


@dataclass
class ServedModel:
    name: str  # as clients name it: a bundled name or the folder's name
    source: str  # what was given on the command line
    kind: str  # "DallePipeline" or "UnclipPipeline"
    pipeline: object
    size: int  # the native (and only) output size

    @property
    def size_text(self) -> str:
        return f"{self.size}x{self.size}"


@dataclass
class ModelRegistry:
    models: dict[str, ServedModel] = field(default_factory=dict)

    def add(self, model: ServedModel) -> None:
        if model.name in self.models:
            raise ValueError(f"two models are called {model.name!r}: rename a folder")
        self.models[model.name] = model

    @property
    def default(self) -> ServedModel:
        return next(iter(self.models.values()))

    def get(self, name: str | None) -> ServedModel:
        """The model a request names (None: the first served); ``dall-e-2`` is the unCLIP one."""
        if name is None or name == "":
            return self.default
        if name in self.models:
            return self.models[name]
        if name == UNCLIP_ALIAS:
            unclip = [m for m in self.models.values() if m.kind == "UnclipPipeline"]
            if unclip:
                return unclip[0]
        raise KeyError(name)

    def names(self) -> list[str]:
        names = list(self.models)
        if any(m.kind == "UnclipPipeline" for m in self.models.values()):
            names.append(UNCLIP_ALIAS)
        return names


def load_model(name_or_dir: str, device: str = "cpu") -> ServedModel:
    """A pipeline folder or bundled name, loaded, with the name clients use for it."""
    from dalle.pipelines.dalle_pipeline import DallePipeline
    from dalle.pipelines.unclip_pipeline import UnclipPipeline

    root, index = read_index(name_or_dir)
    name = name_or_dir if name_or_dir in bundled_names() else Path(root).name
    if index.class_name == "UnclipPipeline":
        pipe = UnclipPipeline.from_pretrained(name_or_dir, device)
        if pipe.prior is None or pipe.decoder is None:
            raise ValueError(
                f"{root}: an unCLIP pipeline without a prior and decoder draws nothing"
            )
        size = (pipe.upsampler or pipe.decoder).config.image_size
    elif index.class_name == "DallePipeline":
        pipe = DallePipeline.from_pretrained(name_or_dir, device)
        size = pipe.vae.config.image_size
    else:
        raise ValueError(f"{root}: a {index.class_name} is not a text-to-image pipeline")
    return ServedModel(name, str(name_or_dir), index.class_name, pipe, size)
