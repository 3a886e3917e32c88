"""The constant field: one fixed unit direction per feature (the linear axes of glm, InterFaceGAN, SeFa...).

Its directions are the axes file's ``axes`` vectors, so it stores no tensors
of its own; ``move`` integrates it in one exact step, which is the linear
edit sum_i amount_i * unit(P a_i) with the locked span projected out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import FIELDS, DirectionField, MoveSettings, check_names


class LinearField(DirectionField):
    """The same direction ``vectors[i]`` for feature ``names[i]`` at every latent."""

    kind = "linear"
    constant = True

    def __init__(self, names: Sequence[str], vectors: np.ndarray, settings: MoveSettings | None = None) -> None:
        self.names = list(names)
        vectors = np.asarray(vectors, np.float32)
        self.vectors = vectors.reshape(len(self.names), vectors.shape[-1])
        self.settings = settings or MoveSettings()

    @property
    def latent_dim(self) -> int:
        return int(self.vectors.shape[1])

    def directions(self, z: np.ndarray, names: Sequence[str]) -> np.ndarray:
        return self.vectors[check_names(self, names)].astype(np.float64)[None]

    def mean(self) -> LinearField:
        return self

    def subset(self, names: Sequence[str]) -> LinearField:
        return LinearField(names, self.vectors[check_names(self, names)], self.settings)

    @classmethod
    def from_file(cls, header: Mapping[str, Any], tensors: Mapping[str, np.ndarray], mean: LinearField) -> LinearField:
        return mean


FIELDS.register("linear", "one fixed direction per feature (linear axes); moves are one exact step")(LinearField.from_file)
