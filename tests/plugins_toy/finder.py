"""A toy direction finder: the one file a new way of finding directions needs.

Per feature: split the labelled samples at the label's median (0.5 for a
binary feature); the axis is the unit difference of the two halves' mean
latents, pointing toward higher labels. For a label linear in Gaussian z
that is the label's own direction. Its axes follow the toy sphere field
(``field.py``): a finder chooses what its edits follow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plugins_toy.field import SphereField
from tlgan.axes import Axes
from tlgan.extractors import Feature
from tlgan.fields import LinearField
from tlgan.finders import FINDERS, DirectionFinder, FinderError, make_axes
from tlgan.generators import Generator

NAME = "toy-meandiff"
MIN_PER_HALF = 10


class MeanDifferenceFinder(DirectionFinder):
    """The unit difference of the mean latents above and below each feature's median;
    its field turns the axes along the sphere around the samples' mean latent."""

    name = NAME
    supervised = True
    slope_unit = "label change per unit move (least squares over the valid samples)"

    def find(self, z: np.ndarray, labels: np.ndarray | None, features: Sequence[Feature],
             generator: Generator | None = None, meta: dict | None = None) -> Axes:
        if labels is None:
            raise FinderError(f"the {NAME} finder needs labels")
        z, labels = np.asarray(z, np.float64), np.asarray(labels, np.float64)
        names, kinds, vectors, slopes, metrics, skipped = [], [], [], [], {}, {}
        for j, f in enumerate(features):
            ok = np.isfinite(labels[:, j])
            y, zz = labels[ok, j], z[ok]
            cut = 0.5 if f.kind == "binary" else float(np.median(y)) if len(y) else 0.0
            high, low = y > cut, y <= cut
            if min(high.sum(), low.sum()) < MIN_PER_HALF:
                skipped[f.name] = f"fewer than {MIN_PER_HALF} samples on one side of {cut:g}"
                continue
            diff = zz[high].mean(0) - zz[low].mean(0)
            axis = diff / np.linalg.norm(diff)
            slope, _ = np.polyfit(zz @ axis, y, 1)
            names.append(f.name)
            kinds.append(f.kind)
            vectors.append(axis.astype(np.float32))
            slopes.append(slope)
            metrics[f.name] = {"method": "mean-difference", "n_used": int(ok.sum()), "slope": float(slope)}
        axes = make_axes(self, names, kinds, vectors, slopes, metrics, skipped, z.shape[1], len(z), meta)
        return axes.with_field(SphereField(LinearField(axes.names, axes.vectors), z.mean(0)))  # the samples' centre, in any latent space


FINDERS.register(NAME, "mean latent above minus below each feature's median (tests only)")(MeanDifferenceFinder)
