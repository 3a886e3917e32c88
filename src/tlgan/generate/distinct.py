"""Delivered faces that are different people: no two closer, by the extractor's identity descriptor, than
the closest pair of a random set of as many faces.

Steering different random faces into the same region along the same axes pulls them toward one look; a
face that arrives too like one already delivered is refused (``steer``'s ``accept``) and ``nudge``d: moved
along a random direction that the spec's features' axes do not see, so by the axes' models it keeps meeting
the spec while it changes, then rendered and checked again (given up only when out of tries).

"Too like" depends on how many faces are delivered: among n random faces there are n (n - 1) / 2 pairs, and
the closest of them is closer the more there are (with the demo's faces: 0.34 for 10 faces, 0.24 for 100,
while random pairs average 0.59). A bar at a fixed quantile of random pairs (their closest 1%, 0.40) is missed
by 997 of 1,000 random sets of 40 faces: it calls pairs near-duplicates that every random set has.
``near_duplicate_bar`` is set-size aware instead: the distance below which the closest pair of ``n`` random
faces falls in only ``SET_QUANTILE`` of draws, from the mean and spread of random pairs' distances (pairs
taken as independent and their distances as normal: within 0.01 of the bootstrap over 1,500 demo faces for
10 to 200 faces).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..axes import Axes
from ..explore import project_out

#: How far a near-duplicate is nudged, in random faces' standard deviations along one axis (an edit's length).
NUDGE = 2.0
#: Nudges a face gets before it is given up (beside the corrections of its steering, ``steer``'s ``max_tries``).
MAX_NUDGES = 4
#: A set of n faces has a near-duplicate pair when its closest pair is closer than random sets of n faces'
#: closest pairs are in all but this share of draws.
SET_QUANTILE = 0.05


def near_duplicate_bar(pair_distances: np.ndarray, set_size: int, quantile: float = SET_QUANTILE) -> float:
    """The identity distance below which the closest pair of ``set_size`` random faces falls with probability
    ``quantile``; ``pair_distances``: distances of pairs of random faces (e.g. ``identity_distances``)."""
    from scipy.stats import norm

    d = np.asarray(pair_distances, np.float64)
    pairs = max(set_size * (set_size - 1) / 2, 1.0)
    share = -np.expm1(np.log1p(-quantile) / pairs)  # 1 - (1 - quantile) ** (1 / pairs), for tiny shares too
    # few-dimensional descriptors spread so widely that the normal tail passes 0: then only identical faces are
    return max(float(d.mean() + norm.ppf(share) * d.std()), 0.0)


def nudge(latent: np.ndarray, axes: Axes, held: Sequence[str], length: float, seed: Sequence[int]) -> np.ndarray:
    """``latent`` moved ``length`` latent units along a random direction (from ``seed``) orthogonal to the axes of
    the ``held`` features, every w+ layer alike: by the axes' linear models those features keep their values."""
    d: np.ndarray = np.random.default_rng(list(seed)).normal(size=int(axes.vectors.shape[1]))
    if held:
        d = project_out(d, np.stack([axes.vector(f) for f in held]).astype(np.float64))
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    x = np.asarray(latent)
    return (x + length * d.reshape((1,) * (x.ndim - 1) + (-1,))).astype(x.dtype)


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
                    set_size: int, quantile: float = SET_QUANTILE) -> Distinct:
        """The threshold from random faces' descriptors: ``near_duplicate_bar`` of their pairwise distances for
        sets of ``set_size`` faces (the number to be delivered)."""
        return cls(describe, near_duplicate_bar(identity_distances(random_descriptors), set_size, quantile))

    def __call__(self, face: object) -> bool:
        image = getattr(face, "image", None)
        if image is None:
            return True
        d = np.asarray(self.describe(np.asarray(image)), np.float64).reshape(-1)
        if self.kept and identity_distances(d[None], np.stack(self.kept)).min() < self.threshold:
            return False
        self.kept.append(d)
        return True
