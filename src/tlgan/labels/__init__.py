"""Hand labels of generated faces: a plain JSON Lines file, appended to as labels are given.

One line per label given::

    {"generator": "digiface-dcgan", "seed": 2024, "index": 17, "feature": "eyeglasses", "label": 1,
     "time": "2025-01-31T12:00:00.123Z"}

- ``(generator, seed, index)`` (index 0..1,000,000, ``store.MAX_INDEX``) names one latent: row ``index`` of
  ``Generator.sample(n, seed)`` for any ``n > index`` (the draw is prefix-stable),
  which is also row ``index`` of a run folder sampled with that seed;
- ``label`` is ``1`` (the face shows the feature), ``0`` (it does not) or
  ``null`` (skipped: no label, which also withdraws an earlier one);
- a later line for the same (generator, seed, index, feature) overrides earlier ones;
- one file holds the labels of one generator; ``time`` is when it was given (UTC);
  other keys are kept in the file and ignored.

Every label is appended and flushed to disk the moment it is given, so a crash
or a closed browser tab loses nothing; a half-written last line (a crash
mid-write) is ignored with a warning when the file is read again.

Pure logic, no GUI: :class:`LabelStore` (load, validate, append, resolve the
latest label), :class:`LabelTable` (the labels as arrays), face sources that
show a run's cached images or fresh samples by index, and contact sheets.

Modules: :mod:`~tlgan.labels.store` (the file, :class:`LabelStore`,
:class:`LabelTable`), :mod:`~tlgan.labels.sources` (where the faces come from),
:mod:`~tlgan.labels.sheets`, :mod:`~tlgan.labels.session` (:class:`Labeller`),
:mod:`~tlgan.labels.suggest` (uncertainty sampling) and
:mod:`~tlgan.labels.axes` (``fit_label_axes``). Nothing here imports
:mod:`tlgan.train`; the trainer reads label files through :mod:`~tlgan.labels.store`.
"""

from __future__ import annotations

from .axes import fit_label_axes
from .session import SUGGEST_MIN_PER_CLASS, SUGGEST_POOL, Labeller, Page
from .sheets import contact_sheet
from .sources import FaceSource, RunSource, canonical_latents
from .store import FEATURE_PATTERN, REQUIRED, Label, LabelError, LabelStore, LabelTable, check_feature, check_value, load_labels
from .suggest import suggest_uncertain

__all__ = [
           "FEATURE_PATTERN",
           "REQUIRED",
           "SUGGEST_MIN_PER_CLASS",
           "SUGGEST_POOL",
           "FaceSource",
           "Label",
           "LabelError",
           "LabelStore",
           "LabelTable",
           "Labeller",
           "Page",
           "RunSource",
           "canonical_latents",
           "check_feature",
           "check_value",
           "contact_sheet",
           "fit_label_axes",
           "load_labels",
           "suggest_uncertain",
]
