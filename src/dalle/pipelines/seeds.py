"""Seeds as hashes of what they are for, so that a result never depends on batching.

Image ``j`` of prompt ``i`` draws from ``image_seed(seed, i, j)`` in every pipeline; a pipeline
with several random stages derives one seed per stage from it with :func:`seed_of`.
"""

from __future__ import annotations

import numpy as np


def seed_of(*keys: int) -> int:
    """A 32-bit seed hashed from a tuple of non-negative integers (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def image_seed(seed: int, prompt_index: int, image_index: int) -> int:
    """The seed of one image: a hash of (seed, prompt, image), independent of batching."""
    return seed_of(seed, prompt_index, image_index)
