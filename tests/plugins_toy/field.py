"""A toy direction field: the one file a new kind of field needs.

The *sphere field* turns each axis along the sphere through the latent: at a
latent z its direction for feature i is the axis a_i with its radial part
(along z - centre) removed. ``move`` integrates it in small steps, so an edit
travels along a great circle and keeps the latent's distance from the centre
(a typical latent stays typical), while the feature still changes. It stores
one array, ``centre``, in the axes file (saved as the tensor ``field.centre``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tlgan.fields import FIELDS, DirectionField, FieldError, LinearField, MoveSettings

KIND = "toy-sphere"


class SphereField(DirectionField):
    """The axes of ``mean`` with their radial part at each latent removed: edits keep |z - centre|."""

    kind = KIND

    def __init__(self, mean: LinearField, centre: np.ndarray, settings: MoveSettings | None = None) -> None:
        self.mean_field = mean
        self.names = list(mean.names)
        self.centre = np.asarray(centre, np.float32).reshape(-1)
        if self.centre.shape != (mean.latent_dim,):
            raise FieldError(f"the sphere's centre has {self.centre.size} values for a {mean.latent_dim}-d space")
        self.settings = settings or MoveSettings()

    @property
    def latent_dim(self) -> int:
        return self.mean_field.latent_dim

    def directions(self, z: np.ndarray, names: Sequence[str]) -> np.ndarray:
        axes = self.mean_field.directions(z, names)[0]  # (k, D)
        radial = np.asarray(z, np.float64) - self.centre
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)  # (N, D)
        return axes[None] - (radial @ axes.T)[:, :, None] * radial[:, None, :]

    def mean(self) -> LinearField:
        return self.mean_field

    def subset(self, names: Sequence[str]) -> SphereField:
        return SphereField(self.mean_field.subset(names), self.centre, self.settings)

    def named_tensors(self) -> dict[str, np.ndarray]:
        return {"centre": self.centre}

    @classmethod
    def from_file(cls, header: Mapping[str, Any], tensors: Mapping[str, np.ndarray], mean: LinearField) -> SphereField:
        if "centre" not in tensors:
            raise FieldError("the toy-sphere field has no 'centre' tensor")
        return cls(mean, tensors["centre"])


FIELDS.register(KIND, "each axis with its radial part removed: edits keep the latent's norm (tests only)")(
    SphereField.from_file)
