"""Direction fields: what edits follow (see :mod:`tlgan.fields.base` for the contract).

Built-in kinds: ``linear`` (the constant field of linear axes) and ``mlp``
(the gradient field of ``tlgan fit --finder local``, loaded on first use so
that linear axes never import torch). A new kind is one module and its
``FIELDS.register("kind")(Field.from_file)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import (
    FIELDS,
    KEEP_LEVEL,
    RANK_TOL,
    STEP,
    DirectionField,
    FieldError,
    MoveSettings,
    cosines,
    locked_units,
    project_out,
    retained,
    retained_at,
    span_basis,
)
from .linear import LinearField

__all__ = ["FIELDS", "KEEP_LEVEL", "RANK_TOL", "STEP", "DirectionField", "FieldError", "LinearField", "MoveSettings",
           "cosines", "locked_units", "project_out", "retained", "retained_at", "span_basis"]


@FIELDS.register("mlp", "the gradient field of an MLP fitted to every feature (tlgan fit --finder local)")
def _mlp(header: Mapping[str, Any], tensors: Mapping[str, np.ndarray], mean: LinearField) -> DirectionField:
    from .mlp import MLPField

    return MLPField.from_file(header, tensors, mean)
