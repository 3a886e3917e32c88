"""Axes straight from the labelled latents: a regression of the hand labels on z, no extractor in between."""

from __future__ import annotations

from .store import LabelError, LabelTable


def fit_label_axes(table: LabelTable, generator, method: str = "logistic", seed: int = 0, source: str = "",
                   extractor: str | None = None):
    """Axes fitted on the labelled latents themselves: a logistic regression of each feature's 1/0 labels
    on z (no extractor in between). Returns :class:`tlgan.axes.Axes` (features with too few labels are
    listed in ``skipped``); ``extractor``: the extractor that measures these features on edited faces
    (for ``tlgan evaluate`` and the explorer's readouts), if any."""
    from ..extractors import Feature
    from ..fit import fit_axes
    from ..sample import generator_identity

    if len(table) == 0:
        raise LabelError("no labels to fit")
    z = table.latents(generator)
    feats = [Feature(f, "binary", f"hand labels of {f} ({source or 'label file'})") for f in table.features]
    seeds = sorted({int(s) for s in table.seeds})
    meta = {"generator": generator.name, **generator_identity(generator), "labels": source, "label_seeds": seeds,
            "seed": seeds[0], "label_counts": {f: list(c) for f, c in table.counts().items()}}
    if extractor:
        meta["extractor"] = extractor
    return fit_axes(z, table.y, feats, method=method, seed=seed, meta=meta)
