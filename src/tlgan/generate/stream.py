"""The faces of one seed, drawn in order: face ``i`` is ``generator.sample(n, seed)[i]`` for any ``n``."""

from __future__ import annotations

import numpy as np
import torch

from ..generators import Generator

BLOCK = 16  # torch's CPU sampler is prefix-stable in whole blocks of 16 rows (see Generator.sample_z)


class LatentStream:
    """Draws the seed's latents one batch after another without redrawing the ones before (``sample_at``
    redraws the whole prefix each call); ``start`` skips the first faces (to continue a stopped job)."""

    def __init__(self, generator: Generator, seed: int, start: int = 0) -> None:
        self.generator, self.seed = generator, int(seed)
        self._rng = torch.Generator().manual_seed(self.seed)
        self._buffer = np.zeros((0, generator.z_dim), np.float32)
        self.position = 0
        self._drawn = 0
        if start:
            self.draw(start)

    def draw(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``k`` faces: their indices in the stream and their codes (in the generator's space)."""
        while len(self._buffer) < k:
            rows = max(BLOCK, -(-(k - len(self._buffer)) // BLOCK) * BLOCK)
            more = torch.randn(rows, self.generator.z_dim, generator=self._rng).numpy()
            self._buffer = np.concatenate([self._buffer, more])
        z, self._buffer = self._buffer[:k], self._buffer[k:]
        idx = np.arange(self.position, self.position + k)
        self.position += k
        return idx, self.generator.codes_from_z(z)
