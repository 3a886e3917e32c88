"""Uncertainty sampling for the labelling page: the faces a probe on the labels so far is least sure about."""

from __future__ import annotations

import numpy as np

from ..logistic import PROBE_CS, choose_c, fit_logistic, sigmoid
from .store import LabelError


def suggest_uncertain(x_labelled: np.ndarray, y: np.ndarray, x_pool: np.ndarray, k: int,
                      min_per_class: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uncertainty sampling: the ``k`` pool rows where a probe fitted on the labelled rows is least sure.

    Returns (rows of ``x_pool`` ordered from least sure, their P(yes)). Raises
    :class:`LabelError` until there are ``min_per_class`` labels of each class.
    """
    y = np.asarray(y).astype(int)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if min(pos, neg) < min_per_class:
        raise LabelError(f"suggestions start at {min_per_class} labels of each class; there are {pos} yes and "
                         f"{neg} no")
    c = choose_c(x_labelled, y, folds=3, cs=PROBE_CS[::2], seed=seed)
    w, b = fit_logistic(np.asarray(x_labelled, np.float64), y, c)
    p = sigmoid(np.asarray(x_pool, np.float64) @ w + b)
    order = np.argsort(np.abs(p - 0.5), kind="stable")[:k]
    return order, p[order]
