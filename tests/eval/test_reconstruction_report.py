"""The dVAE's shapes report scores every object's size, not only the sizes a caption states."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import torch

from dalle.eval.reconstruction import shapes_reconstruction_report
from dalle.shapes.captions import scene_prompt
from dalle.shapes.dataset import shapes_example
from dalle.shapes.render import render_scene


class ShrinkingVAE:
    """Reconstructs each example of the report (read in order) with every object drawn small."""

    config = SimpleNamespace(num_tokens=4)

    def __init__(self) -> None:
        self.index = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.size = len(images)
        return torch.zeros(len(images), 16, 16, dtype=torch.long)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        out = []
        for k in range(self.size):
            scene = shapes_example("test", self.index + k).scene
            small = [dataclasses.replace(o, size="small", size_px=12) for o in scene.objects]
            out.append(render_scene(dataclasses.replace(scene, objects=tuple(small))))
        self.index += self.size
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def test_an_object_drawn_at_the_wrong_size_fails_whether_or_not_its_caption_says_it():
    n = 60
    report = shapes_reconstruction_report(ShrinkingVAE(), n=n, batch_size=16)
    scenes = [shapes_example("test", i).scene for i in range(n)]
    all_small = [all(o.size == "small" for o in s.objects) for s in scenes]
    seen = [i for i in range(n) if not scene_prompt(scenes[i]).held_out]
    assert 0 < sum(all_small[i] for i in seen) < len(seen)  # both kinds present
    # right exactly where no object was large (a canonical caption states a size half the time)
    assert report.seen_accuracy == sum(all_small[i] for i in seen) / len(seen)
