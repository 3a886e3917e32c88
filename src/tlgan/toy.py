"""A linear toy GAN and extractor whose true feature axes are known in closed form.

The toy generator paints row k of an 8x8 image with the value 128 + 16 * (b_k . z);
the toy extractor reads the rows back. So feature k is exactly linear in z
with direction b_k, and every method's answer can be checked exactly. Used by
the tests and handy for trying the tool in a second.

Features: ``a`` (continuous, axis e0), ``b`` (continuous, 0.8 a + 0.6 e1: correlated
with ``a``), ``p`` (binary: sigmoid(2 * e2 . z)), ``c`` (continuous, axis e3).
"""

from __future__ import annotations

import numpy as np
import torch

from .extractors import EXTRACTORS, Extractor, Feature
from .generators import GENERATORS, Generator

TOY_DIM = 16
SCALE = 16.0


def toy_directions() -> np.ndarray:
    """The exact unit directions (4, TOY_DIM) of features a, b, p, c."""
    e = np.eye(TOY_DIM, dtype=np.float32)
    return np.stack([e[0], 0.8 * e[0] + 0.6 * e[1], e[2], e[3]])


class ToyLinearGenerator(Generator):
    """8x8 images whose rows encode linear functions of z."""

    name = "toy-linear"
    latent_dim = TOY_DIM
    resolution = 8

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        rows = np.zeros((8, TOY_DIM), np.float32)
        rows[:4] = toy_directions()
        self.rows = torch.from_numpy(rows).to(self.device)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        v = (z @ self.rows.T) * SCALE / 127.5  # (N, 8) in [-1, 1] units around 0
        return v[:, None, :, None].expand(-1, 3, -1, 8)

    def first_layer_weight(self) -> np.ndarray:
        return self.rows.cpu().numpy()


class ToyLinearExtractor(Extractor):
    """Reads the toy generator's rows back: features a, b, p, c."""

    name = "toy-linear"
    features = (Feature("a", "continuous"), Feature("b", "continuous"), Feature("p", "binary"),
                Feature("c", "continuous"))

    def extract(self, images: torch.Tensor) -> np.ndarray:
        rows = images.float().mean(dim=(2, 3)).cpu().numpy()[:, :4]
        v = (rows - 127.5) / SCALE
        v[:, 2] = 1 / (1 + np.exp(-2 * v[:, 2]))
        return v.astype(np.float32)


GENERATORS.register("toy-linear", "an 8x8 linear toy whose feature axes are known exactly")(ToyLinearGenerator)
EXTRACTORS.register("toy-linear", "reads the toy generator's features a, b, p, c")(ToyLinearExtractor)
