"""L2-regularised logistic regression on standardised inputs, ROC AUC and R²: the pieces the probe trainer
(:mod:`tlgan.train.probe`), the labelling page's suggestions (:mod:`tlgan.labels.suggest`) and the
axis fitter (:mod:`tlgan.fit`) share. No tlgan imports, so anything can use it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

PROBE_CS = tuple(10.0 ** np.arange(-4, 1))


def auc(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, score))


def r2(truth: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination of ``pred`` for ``truth``; NaN when ``truth`` is constant (as ``auc`` is
    for one class)."""
    ss = float(((truth - truth.mean()) ** 2).sum())
    return 1 - float(((truth - pred) ** 2).sum()) / ss if ss > 0 else float("nan")


def scaled_logistic(C: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))


def choose_c(x: np.ndarray, y: np.ndarray, folds: int = 5, cs: Sequence[float] = PROBE_CS, seed: int = 0) -> float:
    """The C (inverse L2 strength) with the lowest cross-validated log loss, on standardised inputs."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = max(2, min(folds, int(min((y == 1).sum(), (y == 0).sum()))))
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(cs), cv=StratifiedKFold(k, shuffle=True, random_state=seed), scoring="neg_log_loss",
        max_iter=3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    return float(model[-1].C_[0])


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights on the raw (unscaled) inputs: the standardisation is folded into w and b."""
    model = scaled_logistic(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    scaler, lr = model[0], model[-1]
    w = lr.coef_.ravel() / scaler.scale_
    b = float(lr.intercept_[0] - (lr.coef_.ravel() * scaler.mean_ / scaler.scale_).sum())
    return w, b


def sigmoid(t: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(t, -60, 60)))
