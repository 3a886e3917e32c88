"""Step 4 — fit: regress each feature on z with a generalized linear model; its unit slope is the axis.

Pure functions over arrays (no I/O). ``fit_axes`` returns an :class:`~tlgan.axes.Axes`.

Methods, per feature:
- ``linear``: ridge regression (continuous features);
- ``logistic``: logistic regression on the probability (binary features; soft
  labels are fitted exactly as a fractional-response GLM by weighting each
  sample once as a 1 with weight p and once as a 0 with weight 1-p);
- ``arctanh``: TL-GAN's recipe, arctanh(2p-1) clipped to [-3, 3], then least squares;
- ``auto``: linear for continuous, logistic for binary features.

The regularisation strength is chosen on a validation split; the reported
metric (R^2 for continuous, AUC for binary) is measured on a test split that
neither the fit nor the choice saw.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score

from . import glm
from .axes import Axes
from .errors import TLGANError
from .extractors import Feature
from .logistic import auc

METHODS = ("auto", "linear", "logistic", "arctanh")
ENGINES = ("fast", "sklearn")
RIDGE_ALPHAS = tuple(10.0 ** np.arange(-2, 5))
LOGISTIC_CS = tuple(10.0 ** np.arange(-3, 2))
MIN_SAMPLES = 50
MIN_PER_CLASS = 10
ARCTANH_CLIP = 3.0


class FitError(TLGANError, ValueError):
    """Inputs that no model can be fitted on (shapes, sizes)."""


@dataclass
class FeatureFit:
    """The outcome for one feature: an axis, or the reason there is none."""

    name: str
    kind: str
    method: str
    n_used: int
    direction: np.ndarray | None = None  # unit vector in latent space
    slope: float = float("nan")  # label change per unit move along the axis (logit units for logistic)
    metric_name: str = ""
    metric: float = float("nan")
    regularization: float = float("nan")
    skipped: str = ""  # why no axis was fitted
    extra: dict = field(default_factory=dict)


def axes_from_fits(fits: list[FeatureFit], latent_dim: int, n_samples: int, meta: dict) -> Axes:
    """The axes of the fitted features (the others listed in ``skipped`` with the reason), with their metrics."""
    ok = [f for f in fits if f.direction is not None]
    directions = [f.direction for f in ok if f.direction is not None]
    vectors = np.stack(directions) if directions else np.zeros((0, latent_dim), np.float32)
    metrics = {f.name: {"method": f.method, "n_used": f.n_used, f.metric_name: f.metric,
                        "regularization": f.regularization, "slope": f.slope} for f in ok}
    return Axes([f.name for f in ok], [f.kind for f in ok], vectors, np.asarray([f.slope for f in ok], np.float32),
                metrics, {f.name: f.skipped for f in fits if f.direction is None},
                dict(meta, latent_dim=latent_dim, n_samples=n_samples))


def _split(n: int, seed: int, test_fraction: float, val_fraction: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def _ridge_solutions(z: np.ndarray, t: np.ndarray, alphas: Sequence[float]) -> list[tuple[np.ndarray, float]]:
    """(coef, intercept) of ridge regression for each alpha, from one Gram matrix (D is small)."""
    zm, tm = z.mean(0), t.mean()
    zc = z - zm
    gram, rhs = zc.T @ zc, zc.T @ (t - tm)
    eye = np.eye(z.shape[1])
    out = []
    for a in alphas:
        coef = np.linalg.solve(gram + a * eye, rhs)
        out.append((coef, tm - zm @ coef))
    return out


def _ridge(z: np.ndarray, t: np.ndarray, tr, va, alphas: Sequence[float]) -> tuple[np.ndarray, float, float]:
    """Ridge with alpha chosen by R^2 on the validation rows, refitted on train + validation."""
    scores = [r2_score(t[va], z[va] @ c + b) for c, b in _ridge_solutions(z[tr], t[tr], alphas)]
    best = alphas[int(np.argmax(scores))]
    trva = np.concatenate([tr, va])
    coef, intercept = _ridge_solutions(z[trva], t[trva], [best])[0]
    return coef, intercept, best


def _soft_logistic(z: np.ndarray, p: np.ndarray, C: float) -> LogisticRegression:
    zz = np.concatenate([z, z])
    yy = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    ww = np.concatenate([p, 1 - p])
    keep = ww > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on separable toy data
        return LogisticRegression(C=C, solver="newton-cholesky", max_iter=100).fit(zz[keep], yy[keep], sample_weight=ww[keep])


def _soft_log_loss(model: LogisticRegression, z: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(model.predict_proba(z)[:, 1], 1e-7, 1 - 1e-7)
    return float(-np.mean(p * np.log(q) + (1 - p) * np.log(1 - q)))


def _prepare(y: np.ndarray, feature: Feature, method: str, seed: int, test_fraction: float, val_fraction: float
             ) -> tuple[FeatureFit, np.ndarray, tuple[np.ndarray, ...]]:
    """The feature's outcome so far (``skipped`` set if it cannot be fitted), its valid rows and their split."""
    if method not in METHODS:
        raise FitError(f"unknown fit method {method!r}; choose one of {', '.join(METHODS)}")
    valid = np.isfinite(y)
    yv = y[valid].astype(np.float64)
    binary = feature.kind == "binary"
    if method == "auto":
        method = "logistic" if binary else "linear"
    if method in ("logistic", "arctanh") and not binary:
        method = "linear"  # those two need probabilities; a continuous label is fitted linearly
    out = FeatureFit(feature.name, feature.kind, method, int(valid.sum()))
    rows = np.flatnonzero(valid)
    if out.n_used < MIN_SAMPLES:
        out.skipped = f"only {out.n_used} valid samples (need {MIN_SAMPLES})"
        return out, rows, ()
    if np.ptp(yv) < 1e-9:
        out.skipped = "the label is constant on every sample"
        return out, rows, ()
    if binary:
        if yv.min() < 0 or yv.max() > 1:
            raise FitError(f"binary feature {feature.name!r} has values outside [0, 1]")
        hard = yv > 0.5
        n_pos, n_neg = int(hard.sum()), int((~hard).sum())
        if min(n_pos, n_neg) < MIN_PER_CLASS:
            out.skipped = f"too few samples of one class ({n_pos} above 0.5, {n_neg} below; need {MIN_PER_CLASS} each)"
            return out, rows, ()
    return out, rows, _split(len(yv), seed, test_fraction, val_fraction)


def _arctanh_target(p: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(2 * p - 1, np.tanh(-ARCTANH_CLIP), np.tanh(ARCTANH_CLIP)))


def _finish(out: FeatureFit, coef: np.ndarray) -> FeatureFit:
    norm = float(np.linalg.norm(coef))
    if not np.isfinite(norm) or norm < 1e-12:
        out.skipped = "the fitted slope is zero: the label does not depend on z linearly"
        return out
    out.direction = (coef / norm).astype(np.float32)
    out.slope = norm
    return out


def fit_feature(z: np.ndarray, y: np.ndarray, feature: Feature, method: str = "auto",
                seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.2) -> FeatureFit:
    """Fit one feature's axis from latents ``z`` (N, D) and labels ``y`` (N,), NaN = unknown.

    The reference path: one scikit-learn model per regularisation value. :func:`fit_axes`
    fits the same models for every feature at once (and agrees with this to cosine 0.999).
    """
    out, rows, split = _prepare(np.asarray(y, np.float64), feature, method, seed, test_fraction, val_fraction)
    if out.skipped:
        return out
    zv, yv = z[rows].astype(np.float64), np.asarray(y, np.float64)[rows]
    tr, va, te = split
    method = out.method
    if method == "linear":
        coef, intercept, alpha = _ridge(zv, yv, tr, va, RIDGE_ALPHAS)
        out.metric_name, out.regularization = "r2", alpha
        out.metric = float(r2_score(yv[te], zv[te] @ coef + intercept))
    elif method == "arctanh":
        t = _arctanh_target(yv)
        trva = np.concatenate([tr, va])
        coef, intercept = _ridge_solutions(zv[trva], t[trva], [0.0])[0]  # plain least squares, as TL-GAN
        out.metric_name, out.regularization = "auc", 0.0
        out.metric = auc(yv[te] > 0.5, zv[te] @ coef + intercept)
    else:  # logistic
        best_c = min(LOGISTIC_CS, key=lambda c: _soft_log_loss(_soft_logistic(zv[tr], yv[tr], c), zv[va], yv[va]))
        trva = np.concatenate([tr, va])
        model = _soft_logistic(zv[trva], yv[trva], best_c)
        coef = model.coef_.ravel()
        out.metric_name, out.regularization = "auc", 1.0 / best_c
        out.metric = auc(yv[te] > 0.5, model.decision_function(zv[te]))
    return _finish(out, coef)


def fit_axes(z: Any, labels: np.ndarray, features: Sequence[Feature], method: str = "auto",
             seed: int = 0, meta: dict | None = None, engine: str = "fast") -> Axes:
    """Fit one axis per feature; features that cannot be fitted are listed in ``Axes.skipped``.

    ``z``: (N, D) latents — an array in memory, or one on disk read in blocks (a
    zarr array of a run folder: ``Run.latent_array()``), never loaded whole;
    ``labels``: (N, F) with NaN for unknown values; ``features``: the F feature
    descriptions in column order. ``engine``: ``fast`` fits every feature at once
    (:mod:`tlgan.glm`); ``sklearn`` is the reference, one scikit-learn model per feature
    and regularisation value (needs ``z`` in memory).
    """
    labels = np.asarray(labels, dtype=np.float64)
    if engine not in ENGINES:
        raise FitError(f"unknown fit engine {engine!r}; choose one of {', '.join(ENGINES)}")
    in_memory = isinstance(z, np.ndarray) or engine == "sklearn"
    if in_memory:
        z = np.asarray(z)
    shape = tuple(z.shape)
    if len(shape) != 2 or labels.ndim != 2 or shape[0] != len(labels):
        raise FitError(f"need latents (N, D) and labels (N, F) with the same N; got {shape} and {labels.shape}")
    if labels.shape[1] != len(features):
        raise FitError(f"labels have {labels.shape[1]} columns but {len(features)} features were named")
    if in_memory and not np.isfinite(z).all():
        raise FitError("latents contain NaN or infinite values")
    meta = dict(meta or {}, method=method)
    if engine == "sklearn":
        fits = [fit_feature(z, labels[:, j], f, method, seed) for j, f in enumerate(features)]
        return axes_from_fits(fits, latent_dim=shape[1], n_samples=shape[0], meta=meta)
    return axes_from_fits(_fit_fast(z, labels, features, method, seed), latent_dim=shape[1], n_samples=shape[0],
                          meta=meta)


def _fit_fast(z: Any, labels: np.ndarray, features: Sequence[Feature], method: str, seed: int,
              test_fraction: float = 0.2, val_fraction: float = 0.2) -> list[FeatureFit]:
    n, nf = labels.shape
    roles = np.zeros((n, nf), np.int8)
    targets = np.zeros((n, nf))
    fits, methods = [], []
    for j, f in enumerate(features):
        out, rows, split = _prepare(labels[:, j], f, method, seed, test_fraction, val_fraction)
        fits.append(out)
        methods.append("" if out.skipped else out.method)
        if out.skipped:
            continue
        for role, idx in zip((glm.TRAIN, glm.VAL, glm.TEST), split, strict=True):
            roles[rows[idx], j] = role
        y = labels[rows, j]
        targets[rows, j] = _arctanh_target(y) if out.method == "arctanh" else y
    try:
        sols, _ = glm.solve(z, roles, targets, methods, RIDGE_ALPHAS, LOGISTIC_CS)
    except glm.NonFiniteLatents as e:
        raise FitError(str(e)) from None
    for j, out in enumerate(fits):
        sol = sols[j]
        if sol is None:
            continue
        truth = labels[sol.test_rows, j]
        if out.method == "linear":
            out.metric_name, out.metric = "r2", float(r2_score(truth, sol.test_scores))
            out.regularization = sol.regularization
        else:
            out.metric_name, out.metric = "auc", auc(truth > 0.5, sol.test_scores)
            out.regularization = 1.0 / sol.regularization if out.method == "logistic" else 0.0
        _finish(out, sol.coef)
    return fits
