"""The literature's disentanglement metrics, as pure functions over arrays (no I/O, no models).

- **Attribute dependency** (Wu, Lischinski & Shechtman 2021, "StyleSpace
  Analysis", section 5): edit images along a direction meant for attribute
  *t*, re-label them, and for every other attribute *i* take |Δ l_i| / σ_i,
  the change of its label in standard deviations of that label over the
  unedited samples. Plotted against the target's own change Δ l_t / σ_t
  (binned), its mean over the other attributes is **mean-AD** and its largest
  **max-AD**: how much else moves per unit of what you asked for. Unlike the
  re-scoring matrix's leakage (a mean *signed* change), it counts a change
  whichever way each face goes, so a side effect that differs between faces
  is not averaged away. The paper uses classifier logits; ``logits`` turns
  probabilities into them.
- **DCI** (Eastwood & Williams 2018): predict each attribute (factor) from the
  latent codes with a lasso regression; the absolute weights on standardised
  codes form the importance matrix R (codes × factors). **Disentanglement**:
  1 − entropy of each code's importance over the factors (base = number of
  factors), averaged with weights = each code's share of the total importance;
  **completeness**: 1 − entropy of each factor's importance over the codes
  (base = number of codes), averaged with weights = each factor's share (as
  disentanglement_lib does); **informativeness**: held-out R² of each factor's
  regression (the paper reports the error; 1 − R² is the normalised mean
  squared error). DCI is not rotation-invariant: it asks whether single
  latent *coordinates* carry single attributes, so for isotropic noise z it
  is low by construction; informativeness is the part that compares spaces
  whatever their basis.

The functions take arrays only (labels before and after an edit, codes and
labels), so they measure linear and local (non-linear) axes alike.
``label_std`` (each label's spread over unedited samples) is the unit of
every change here and in ``tlgan.evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import logistic
from .errors import InputError

#: default bin width of the attribute-dependency curve, in standard deviations of target change
AD_BIN_WIDTH = 0.5
#: the lasso penalties tried for each DCI factor (standardised codes and labels), chosen on a validation split
DCI_ALPHAS = tuple(float(a) for a in np.logspace(-4, -0.5, 8))


# ---------------------------------------------------------------- attribute dependency


def label_std(labels: np.ndarray) -> np.ndarray:
    """Per-feature standard deviation over the finite values (N, F) -> (F,); NaN where it is 0 or unknown."""
    labels = np.asarray(labels, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(labels)
        n = finite.sum(0)
        mean = np.where(finite, labels, 0).sum(0) / np.maximum(n, 1)
        var = np.where(finite, (labels - mean) ** 2, 0).sum(0) / np.maximum(n, 1)
    std = np.sqrt(var)
    return np.where((n > 1) & (std > 1e-12), std, np.nan)


def logits(p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """log(p / (1 − p)) with p clipped to [eps, 1 − eps]; NaN stays NaN."""
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


@dataclass
class Dependency:
    """Attribute dependency of one direction, per edited sample.

    ``target_change`` (N,): the target's change in its std, signed so that the
    intended direction is positive; ``dependency`` (N, F): |change| / std of
    every other attribute (NaN in the target's and excluded columns and where a
    label is unknown); ``group`` (N,): a tag per edit (e.g. the distance moved).
    """

    target: int
    target_change: np.ndarray
    dependency: np.ndarray
    group: np.ndarray

    def mean_ad(self) -> np.ndarray:
        """Per edit: the mean dependency over the other attributes (NaN where none is known)."""
        return _nan_reduce(self.dependency, np.nanmean)

    def max_ad(self) -> np.ndarray:
        """Per edit: the largest dependency over the other attributes."""
        return _nan_reduce(self.dependency, np.nanmax)

    def summary(self, group: Any = None) -> dict[str, float]:
        """Means over the edits (of one ``group``, or all): target change, mean-AD, max-AD and their ratio.

        ``ad_per_target`` = mean-AD / target change: the other attributes' change
        per standard deviation of the target's.
        """
        rows = np.ones(len(self.group), bool) if group is None else self.group == group
        mean_ad, max_ad = self.mean_ad()[rows], self.max_ad()[rows]
        ok = np.isfinite(self.target_change[rows]) & np.isfinite(mean_ad)
        if not ok.any():
            nan = float("nan")
            return {"target_change": nan, "mean_ad": nan, "max_ad": nan, "ad_per_target": nan, "n": 0}
        t = float(np.mean(self.target_change[rows][ok]))
        m = float(np.mean(mean_ad[ok]))
        return {"target_change": t, "mean_ad": m, "max_ad": float(np.mean(max_ad[ok])),
                "ad_per_target": m / t if t > 0 else float("nan"), "n": int(ok.sum())}

    def curve(self, bin_width: float = AD_BIN_WIDTH) -> dict[str, Any]:
        """Mean-AD, max-AD and each attribute's dependency, binned by target change.

        Bins of ``bin_width`` std start at 0; edits that moved the target the
        wrong way (change < 0) are counted in ``wrong_way`` and left out.
        Returns ``edges`` (B + 1,), ``count``, ``target_change`` (the bin's
        mean), ``mean_ad``, ``max_ad`` (B,) and ``per_feature`` (B, F).
        """
        if bin_width <= 0:
            raise InputError(f"bin width must be positive, got {bin_width}")
        x, mean_ad, max_ad = self.target_change, self.mean_ad(), self.max_ad()
        ok = np.isfinite(x) & np.isfinite(mean_ad)
        n_b = max(1, int(np.ceil(np.max(x[ok]) / bin_width))) if (ok & (x > 0)).any() else 1
        edges = bin_width * np.arange(n_b + 1)
        which = np.clip(np.floor(np.where(ok, x, -1) / bin_width), -1, n_b - 1).astype(int)
        count = np.zeros(n_b, int)
        change, m_ad, x_ad = (np.full(n_b, np.nan) for _ in range(3))
        per_feature = np.full((n_b, self.dependency.shape[1]), np.nan)
        for b in range(n_b):
            rows = ok & (which == b) & (x >= 0)
            if rows.any():
                count[b] = rows.sum()
                change[b], m_ad[b], x_ad[b] = x[rows].mean(), mean_ad[rows].mean(), max_ad[rows].mean()
                per_feature[b] = _nan_reduce(self.dependency[rows].T, np.nanmean)
        return {"edges": edges, "count": count, "target_change": change, "mean_ad": m_ad, "max_ad": x_ad,
                "per_feature": per_feature, "wrong_way": int((ok & (x < 0)).sum())}


def _nan_reduce(x: np.ndarray, fn) -> np.ndarray:
    """``fn`` (nanmean / nanmax) over the last axis, NaN (without a warning) where a row has no finite value."""
    x = np.asarray(x, np.float64)
    any_ok = np.isfinite(x).any(-1)
    out = np.full(x.shape[:-1], np.nan)
    if any_ok.any():
        out[any_ok] = fn(x[any_ok], axis=-1)
    return out


def attribute_dependency(before: np.ndarray, after: np.ndarray, target: int, std: np.ndarray | None = None,
                         direction: np.ndarray | float = 1.0, exclude: Sequence[int] = (),
                         group: np.ndarray | None = None) -> Dependency:
    """Attribute dependency (Wu et al. 2021) of edits whose labels are known before and after.

    ``before``, ``after``: labels (N, F) of the same N samples before and after
    their edit (repeat ``before`` for several edits of one sample); ``target``:
    the column the edit is meant to move; ``std`` (F,): each attribute's
    spread over unedited samples (default: ``label_std(before)``); ``direction``
    (N,) or scalar: +1 where the edit should raise the target, −1 where it
    should lower it; ``exclude``: columns left out besides the target (e.g. a
    presence flag).
    """
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if before.shape != after.shape or before.ndim != 2:
        raise InputError(f"labels before {before.shape} and after {after.shape} must be the same (N, F) shape")
    n, f = before.shape
    if not 0 <= target < f:
        raise InputError(f"target column {target} is not one of the {f} label columns")
    std = label_std(before) if std is None else np.asarray(std, np.float64)
    delta = (after - before) / std
    sign = np.broadcast_to(np.asarray(direction, np.float64), (n,))
    dep = np.abs(delta)
    dep[:, [target, *exclude]] = np.nan
    return Dependency(int(target), sign * delta[:, target], dep,
                      np.zeros(n) if group is None else np.asarray(group))


def symmetric_edit_dependency(before: np.ndarray, edited: np.ndarray, kinds: Sequence[str], distances: Sequence[float],
                              target: int, sign: float = 1.0, exclude: Sequence[int] = ()) -> Dependency:
    """Attribute dependency of the same samples moved +d and −d at each of several distances.

    ``before`` (n, F): labels of the unedited samples; ``edited`` (n_d, 2, n, F):
    their labels after moving +d (index 0) and −d (index 1) for each of
    ``distances``; ``sign``: +1 where moving +d should raise the ``target``
    column. Features whose kind is ``binary`` are compared as logits (as in
    the paper), every feature in its std over ``before``; ``group`` of each
    edit is its distance.
    """
    edited = np.asarray(edited, np.float64)
    n_d, _, n, n_f = edited.shape
    binary = [j for j, k in enumerate(kinds) if k == "binary"]

    def scale(x: np.ndarray) -> np.ndarray:
        x = np.array(x, np.float64)
        x[..., binary] = logits(x[..., binary])
        return x

    base = scale(before)
    repeated = np.broadcast_to(base, (n_d, 2, n, n_f)).reshape(-1, n_f)
    direction = np.broadcast_to(np.array([sign, -sign])[None, :, None], (n_d, 2, n)).ravel()
    group = np.broadcast_to(np.asarray(distances, np.float64)[:, None, None], (n_d, 2, n)).ravel()
    return attribute_dependency(repeated, scale(edited).reshape(-1, n_f), target, label_std(base), direction,
                                exclude, group)


# ---------------------------------------------------------------- DCI


@dataclass
class DCI:
    """Disentanglement, completeness and informativeness of codes (N, D) against factors (N, K)."""

    importance: np.ndarray          # (D, K) |lasso weight| of code d for factor k (standardised units)
    disentanglement: float
    completeness: float
    informativeness: float          # mean held-out R² over the factors
    per_code: np.ndarray            # (D,) disentanglement of each code
    code_weight: np.ndarray         # (D,) each code's share of the total importance
    per_factor: np.ndarray          # (K,) completeness of each factor
    r2: np.ndarray                  # (K,) held-out R² of each factor
    alpha: np.ndarray               # (K,) the chosen lasso penalty
    n_train: int
    n_test: int

    def to_json(self, factors: Sequence[str] | None = None) -> dict[str, Any]:
        names = list(factors) if factors is not None else [str(k) for k in range(len(self.r2))]
        return {"disentanglement": self.disentanglement, "completeness": self.completeness,
                "informativeness": self.informativeness, "error": 1 - self.informativeness,
                "per_factor": {n: {"completeness": float(c), "r2": float(r), "alpha": float(a)}
                               for n, c, r, a in zip(names, self.per_factor, self.r2, self.alpha, strict=True)},
                "per_code_disentanglement": self.per_code.tolist(), "code_weight": self.code_weight.tolist(),
                "importance": self.importance.tolist(), "n_train": self.n_train, "n_test": self.n_test}


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 − entropy (in ``base``) of each column of the non-negative ``p`` (normalised per column)."""
    if base < 2:
        return np.ones(p.shape[1])
    total = p.sum(0, keepdims=True)
    q = np.where(total > 0, p / np.where(total > 0, total, 1), 1.0 / p.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(q > 0, q * np.log(q), 0).sum(0) / np.log(base)
    return 1 - h


def dci_scores(importance: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """(D, C, per-code D, code weights, per-factor C) of an importance matrix (codes × factors)."""
    r = np.abs(np.asarray(importance, np.float64))
    n_codes, n_factors = r.shape
    per_code = _one_minus_entropy(r.T, n_factors)
    per_factor = _one_minus_entropy(r, n_codes)
    total = r.sum()
    code_w = r.sum(1) / total if total > 0 else np.full(n_codes, 1 / n_codes)
    factor_w = r.sum(0) / total if total > 0 else np.full(n_factors, 1 / n_factors)
    return float(code_w @ per_code), float(factor_w @ per_factor), per_code, code_w, per_factor


def dci(codes: np.ndarray, labels: np.ndarray, max_samples: int | None = 5000, test_fraction: float = 0.2,
        alphas: Sequence[float] = DCI_ALPHAS, seed: int = 0) -> DCI:
    """DCI (Eastwood & Williams 2018) of ``codes`` (N, D) against the factors ``labels`` (N, K).

    Up to ``max_samples`` rows are drawn (seeded) and split into train and a
    held-out ``test_fraction``. For each factor, on its rows with a finite
    label, codes and label are standardised on the train part, one
    scikit-learn ``Lasso`` per penalty in ``alphas`` is fitted on 3/4 of it and
    the penalty with the best validation R² is refitted on all of it; its
    |weights| are that factor's column of the importance matrix and its R² on
    the held-out rows the informativeness. Deterministic for a given ``seed``.
    """
    from sklearn.linear_model import Lasso

    codes = np.asarray(codes, np.float64)
    labels = np.asarray(labels, np.float64)
    if codes.ndim != 2 or labels.ndim != 2 or len(codes) != len(labels):
        raise InputError(f"codes {codes.shape} and labels {labels.shape} must be (N, D) and (N, K) with the same N")
    if not 0 < test_fraction < 1:
        raise InputError(f"test fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(codes))
    if max_samples is not None:
        rows = rows[:max_samples]
    n_test = round(test_fraction * len(rows))
    test, train = rows[:n_test], rows[n_test:]
    if len(train) < 8 or n_test < 2:
        raise InputError(f"DCI needs at least 10 samples with labels, got {len(rows)}")
    n_codes, n_factors = codes.shape[1], labels.shape[1]
    importance = np.zeros((n_codes, n_factors))
    r2 = np.full(n_factors, np.nan)
    chosen = np.full(n_factors, np.nan)
    for k in range(n_factors):
        tr = train[np.isfinite(labels[train, k])]
        te = test[np.isfinite(labels[test, k])]
        if len(tr) < 8 or len(te) < 2:
            continue
        mu, sd = codes[tr].mean(0), codes[tr].std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        y_mu, y_sd = labels[tr, k].mean(), labels[tr, k].std()
        if y_sd <= 1e-12:
            continue
        x_tr, y_tr = (codes[tr] - mu) / sd, (labels[tr, k] - y_mu) / y_sd
        x_te, y_te = (codes[te] - mu) / sd, (labels[te, k] - y_mu) / y_sd
        cut = (3 * len(tr)) // 4
        best = max(alphas, key=lambda a: logistic.r2(y_tr[cut:], Lasso(alpha=a).fit(x_tr[:cut], y_tr[:cut])
                                                      .predict(x_tr[cut:])))
        model = Lasso(alpha=best).fit(x_tr, y_tr)
        importance[:, k] = np.abs(model.coef_)
        r2[k], chosen[k] = logistic.r2(y_te, model.predict(x_te)), best
    d, c, per_code, code_w, per_factor = dci_scores(importance)
    return DCI(importance, d, c, float(np.nanmean(r2)) if np.isfinite(r2).any() else float("nan"),
               per_code, code_w, per_factor, r2, chosen, len(train), n_test)


@dataclass
class SpaceDCI:
    """DCI of each latent space a run stores (z; w or w+ codes), against the same labels (factors)."""

    run: str
    features: list[str]
    n_samples: int
    spaces: dict[str, DCI]
    settings: dict

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "n_samples": self.n_samples, "features": self.features, "settings": self.settings,
                "spaces": {s: d.to_json(self.features) for s, d in self.spaces.items()}}
