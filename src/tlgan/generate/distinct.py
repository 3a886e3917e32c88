"""Delivered faces that are different people: no two closer, by the extractor's identity descriptor, than
random faces' closest pairs.

Steering different random faces into the same region along the same axes pulls them toward one look; a
face that arrives too like one already delivered is refused (``steer``'s ``accept``) and another is drawn.
"Too like" is the ``NEAR_QUANTILE`` of the identity distances between pairs of random faces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: A delivered pair closer than this quantile of random pairs' identity distances counts as a near-duplicate.
NEAR_QUANTILE = 0.01


def identity_distances(descriptors: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """1 - cosine similarity: of every pair of ``descriptors`` (upper triangle, flat) or, with ``others``,
    of each descriptor to each of ``others`` (N, M)."""
    d = np.asarray(descriptors, np.float64)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    if others is None:
        return 1 - (d @ d.T)[np.triu_indices(len(d), 1)]
    o = np.asarray(others, np.float64)
    o = o / np.maximum(np.linalg.norm(o, axis=1, keepdims=True), 1e-12)
    return 1 - d @ o.T


class Distinct:
    """``accept`` for ``steer``: refuses a face whose descriptor is nearer than ``threshold`` to a face
    it accepted before. ``describe`` maps one image (H, W, 3) to its descriptor."""

    def __init__(self, describe: Callable[[np.ndarray], np.ndarray], threshold: float) -> None:
        self.describe, self.threshold = describe, float(threshold)
        self.kept: list[np.ndarray] = []

    @classmethod
    def from_random(cls, describe: Callable[[np.ndarray], np.ndarray], random_descriptors: np.ndarray,
                    quantile: float = NEAR_QUANTILE) -> Distinct:
        """The threshold from random faces' descriptors: the ``quantile`` of their pairwise distances."""
        return cls(describe, float(np.quantile(identity_distances(random_descriptors), quantile)))

    def __call__(self, face: object) -> bool:
        image = getattr(face, "image", None)
        if image is None:
            return True
        d = np.asarray(self.describe(np.asarray(image)), np.float64).reshape(-1)
        if self.kept and identity_distances(d[None], np.stack(self.kept)).min() < self.threshold:
            return False
        self.kept.append(d)
        return True
