"""The logistic probe: one regression per feature on a frozen embedding, with held-out numbers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..logistic import PROBE_CS, choose_c, fit_logistic, sigmoid
from .metrics import MIN_PER_CLASS, FeatureResult, _log, check_classes, held_out_result

NESTED_MAX = 5000  # up to this many labels, metrics come from nested cross-validation


@dataclass
class ProbeFit:
    """Logistic probes: ``weight`` (F, K), ``bias`` (F,) on the raw embedding, and their held-out results."""

    features: list[str]
    weight: np.ndarray
    bias: np.ndarray
    results: list[FeatureResult]


def fit_probe(x: np.ndarray, y: np.ndarray, features: Sequence[str], split: np.ndarray | None = None,
              folds: int = 5, cs: Sequence[float] = PROBE_CS, min_per_class: int = MIN_PER_CLASS, seed: int = 0,
              log: Callable[[str], None] | None = None) -> ProbeFit:
    """One L2-regularised logistic regression per feature on embeddings ``x`` (N, K).

    ``y`` (N, F) holds 1, 0 or NaN (a face unlabelled for that feature is left
    out of it). C is chosen by ``folds``-fold cross-validated log loss. The
    held-out numbers: with a ``split`` that has test rows (2), fit on the rest
    and score the test rows; else with up to ``NESTED_MAX`` labels, nested
    cross-validation (C chosen inside each outer fold; every face scored by a
    model that never saw it); else a stratified 20% hold-out. The returned
    model is fitted on all labels.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).reshape(len(x), len(features))
    check_classes(y, features, min_per_class)
    weight = np.zeros((len(features), x.shape[1]))
    bias = np.zeros(len(features))
    results = []
    for j, f in enumerate(features):
        rows = np.flatnonzero(np.isfinite(y[:, j]))
        xf, yf = x[rows], y[rows, j].astype(int)
        sp = split[rows] if split is not None else None
        if sp is not None and (sp == 2).any() and len(np.unique(yf[sp == 2])) == 2 and \
                min((yf[sp != 2] == 1).sum(), (yf[sp != 2] == 0).sum()) >= 2:
            tr, te = sp != 2, sp == 2
            c = choose_c(xf[tr], yf[tr], folds, cs, seed)
            w, b = fit_logistic(xf[tr], yf[tr], c)
            res = held_out_result(f, yf, yf[te], sigmoid(xf[te] @ w + b), "test partition", c)
        elif len(yf) <= NESTED_MAX:
            k = max(2, min(folds, int(min((yf == 1).sum(), (yf == 0).sum()))))
            p = np.zeros(len(yf))
            for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(xf, yf):
                c_in = choose_c(xf[tr], yf[tr], folds, cs, seed)
                w, b = fit_logistic(xf[tr], yf[tr], c_in)
                p[te] = sigmoid(xf[te] @ w + b)
            c = choose_c(xf, yf, folds, cs, seed)
            res = held_out_result(f, yf, yf, p, f"{k}-fold nested cross-validation", c)
        else:
            tr, te = train_test_split(np.arange(len(yf)), test_size=0.2, stratify=yf, random_state=seed)
            c = choose_c(xf[tr], yf[tr], folds, cs, seed)
            w, b = fit_logistic(xf[tr], yf[tr], c)
            res = held_out_result(f, yf, yf[te], sigmoid(xf[te] @ w + b), "stratified 20% hold-out", c)
        weight[j], bias[j] = fit_logistic(xf, yf, res.regularization)
        results.append(res)
        _log(log, res.line())
    return ProbeFit(list(features), weight.astype(np.float32), bias.astype(np.float32), results)
