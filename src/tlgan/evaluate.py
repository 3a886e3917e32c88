"""Measure feature axes by re-scoring edited images: control, leakage, locking, identity, saturation.

How an axis set is measured (the literature's re-scoring protocol):

- **held-out latents**: ``n`` latents drawn from their own seed, ``run seed + 1_000_003``
  (``heldout_seed``), so none of them was used to find the axes;
- **re-scoring matrix**: every held-out latent is moved a distance ``d`` along axis
  ``i`` in both directions, the edited images are labelled again by the extractor,
  and ``M[i, j]`` is the mean over samples of ``(y_j(z + d u_i) - y_j(z - d u_i)) / 2``
  divided by the standard deviation of feature ``j`` over the unedited held-out
  labels. The diagonal is **control**, the rest **leakage**. The symmetric
  difference cancels each sample's starting value and the extractor's offsets.
  A sample counts for feature ``j`` only where both edits have a label (the
  ``faces`` extractor gives NaN where it finds no face);
- **locking**: the same with feature ``j`` locked (``tlgan.explore.move`` with
  ``locks=[j]``), so for each pair the change of ``M[i, j]`` and ``M[i, i]`` is known.
  Every edit goes through ``move``, so local axes (``tlgan.local``) are measured
  along their integrated, locked paths;
- **identity**: the cosine distance between the extractor's face descriptor
  (``extractor.descriptor``, e.g. faceres' 1024-d embedding) before and after an
  edit, per standard deviation of target change;
- **face found**: the share of edited images in which the extractor's presence feature
  (``Extractor.presence``, ``face_found`` for faces) is > 0.5;
- **saturation**: the control at each distance and the distance at which 90% of
  the largest measured change is reached (a suggested slider range);
- **attribute dependency** (Wu et al. 2021, ``tlgan.disentangle``): from the same
  edited labels, per edit the mean |change| of the other features (binary ones
  as logits, as in the paper) in their std, against the target's own change;
  unlike leakage it does not let changes of opposite sign on different faces cancel.

Everything but :class:`Scorer` (which renders and labels) is a pure function over arrays.
``evaluate_axes`` and ``compare_finders`` measure everything up front; their
results (:class:`Evaluation`, :class:`Comparison`) only hold and read the
numbers, and ``tlgan.report`` writes them without measuring anything.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .axes import Axes
from .disentangle import AD_BIN_WIDTH, Dependency, label_std, symmetric_edit_dependency
from .errors import InputError
from .explore import cosine_matrix, edit_delta, move
from .explore import keep_norm as rescale_norm
from .fields import retained_at

HELDOUT_OFFSET = 1_000_003
SATURATION_FRACTION = 0.9
#: a leak smaller than this (in std) is within the noise: its "cut by locking" is not reported
LEAK_FLOOR = 0.1


def heldout_seed(run_seed: int) -> int:
    """The seed of the held-out latents: the run's seed + 1,000,003 (never the run's own samples)."""
    return int(run_seed) + HELDOUT_OFFSET


# ---------------------------------------------------------------- pure functions


def half_difference(plus: np.ndarray, minus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over samples of (plus - minus) / 2 per feature, using the samples where both are finite.

    ``plus``, ``minus``: labels (N, F) of the same latents moved +d and -d.
    Returns (mean change (F,), number of samples used (F,)); NaN where none.
    """
    diff = (np.asarray(plus, np.float64) - np.asarray(minus, np.float64)) / 2
    ok = np.isfinite(diff)
    n = ok.sum(0)
    with np.errstate(all="ignore"):
        mean = np.where(ok, diff, 0).sum(0) / n
    return np.where(n > 0, mean, np.nan), n


def half_difference_se(plus: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """Standard error of ``half_difference``'s mean per feature (NaN with fewer than 2 samples)."""
    diff = (np.asarray(plus, np.float64) - np.asarray(minus, np.float64)) / 2
    ok = np.isfinite(diff)
    n = ok.sum(0)
    with np.errstate(all="ignore"):
        mean = np.where(ok, diff, 0).sum(0) / n
        var = np.where(ok, (diff - mean) ** 2, 0).sum(0) / (n - 1)
    return np.where(n > 1, np.sqrt(var / n), np.nan)


def nan_corr(labels: np.ndarray) -> np.ndarray:
    """Pearson correlation between columns of ``labels`` (N, F) on the rows where both are finite."""
    x = np.asarray(labels, np.float64)
    f = x.shape[1]
    out = np.full((f, f), np.nan)
    for a in range(f):
        for b in range(a, f):
            ok = np.isfinite(x[:, a]) & np.isfinite(x[:, b])
            if ok.sum() > 2 and np.ptp(x[ok, a]) > 0 and np.ptp(x[ok, b]) > 0:
                out[a, b] = out[b, a] = np.corrcoef(x[ok, a], x[ok, b])[0, 1]
    return out


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cos between matching rows of ``a`` and ``b`` (N, K) -> (N,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return 1 - (a * b).sum(1) / np.maximum(na * nb, 1e-12)


def mean_pairwise_cosine_distance(x: np.ndarray) -> float:
    """Mean cosine distance between different rows of ``x``: how far apart two unrelated faces are."""
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return float("nan")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cos = x @ x.T
    n = len(x)
    return float(1 - (cos.sum() - np.trace(cos)) / (n * (n - 1)))


def suggest_range(distances: Sequence[float], changes: Sequence[float] | np.ndarray,
                  fraction: float = SATURATION_FRACTION) -> dict[str, Any]:
    """Where a control curve reaches ``fraction`` of its largest measured change.

    ``changes[k]`` is the (absolute) control at ``distances[k]``; the curve
    starts at (0, 0) and is interpolated linearly. ``saturated`` is true when
    the last step gains less than half the slope of the first, i.e. moving
    further buys little; otherwise the range may extend past the largest distance tried.
    """
    d = np.concatenate([[0.0], np.asarray(distances, np.float64)])
    c = np.concatenate([[0.0], np.abs(np.asarray(changes, np.float64))])
    order = np.argsort(d)
    d, c = d[order], c[order]
    if len(d) < 2 or not np.isfinite(c).all() or c.max() <= 0:
        return {"range": None, "saturated": None, "max_change": None, "at_distance": None}
    top = float(c.max())
    target = fraction * top
    k = int(np.argmax(c >= target))
    reach = float(d[k - 1] + (target - c[k - 1]) * (d[k] - d[k - 1]) / (c[k] - c[k - 1])) if c[k] > c[k - 1] else float(d[k])
    first_slope = c[1] / d[1]
    last_slope = (c[-1] - c[-2]) / (d[-1] - d[-2]) if len(d) > 2 else first_slope
    return {"range": round(reach, 3), "saturated": bool(last_slope < 0.5 * first_slope), "max_change": top,
            "at_distance": float(d[int(np.argmax(c))])}


def row_summary(change: np.ndarray, target: int | None, features: Sequence[str],
                exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Control and leakage of one row of a re-scoring matrix (changes in std units, one per feature).

    ``target`` is the column of the feature the axis should move (None for an
    unsupervised component: then the column it moves most is used).
    Leakage is the mean |change| over the other features except ``exclude``.
    """
    change = np.asarray(change, np.float64)
    cols = [j for j, f in enumerate(features) if f not in exclude and np.isfinite(change[j])]
    if target is None:
        target = max(cols, key=lambda j: abs(change[j])) if cols else None
    if target is None:
        return {"target": None, "control": float("nan"), "leakage": float("nan"), "max_leakage": float("nan"),
                "max_leakage_feature": None, "control_to_leakage": float("nan")}
    others = [j for j in cols if j != target]
    leak = np.abs(change[others]) if others else np.array([np.nan])
    worst = others[int(np.argmax(leak))] if others else None
    control = float(change[target])
    mean_leak = float(np.mean(leak))
    return {"target": features[target], "control": control, "leakage": mean_leak, "max_leakage": float(np.max(leak)),
            "max_leakage_feature": features[worst] if worst is not None else None,
            "control_to_leakage": abs(control) / mean_leak if mean_leak > 0 else float("inf")}


def match_components(change: np.ndarray, rows: Sequence[str], features: Sequence[str],
                     exclude: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """For unsupervised directions: each feature's component that moves it most, sign-corrected.

    ``change`` (R, F) is a re-scoring matrix whose rows are components. For
    feature ``j`` the component ``k = argmax_k |change[k, j]|`` is chosen and
    flipped if it lowers ``j`` (``sign`` = -1); its control is ``|change[k, j]|``
    and its leakage the mean |change| of the other features along it.
    Several features may match the same component (then it is entangled).
    """
    change = np.asarray(change, np.float64)
    out = {}
    for j, f in enumerate(features):
        if f in exclude or not np.isfinite(change[:, j]).any():
            continue
        k = int(np.nanargmax(np.abs(change[:, j])))
        sign = 1.0 if change[k, j] >= 0 else -1.0
        s = row_summary(sign * change[k], j, features, exclude)
        out[f] = {"component": rows[k], "row": k, "sign": int(sign), **s}
    return out


# ---------------------------------------------------------------- scoring


class Scorer:
    """Renders latents with a generator and labels the images with an extractor; counts what it did."""

    def __init__(self, generator, extractor) -> None:
        self.generator, self.extractor = generator, extractor
        self.features = [f.name for f in extractor.features]
        self.kinds = [f.kind for f in extractor.features]
        self.presence: str | None = extractor.presence
        self.has_descriptor = bool(extractor.has_descriptor)
        self.images = 0
        self.seconds = 0.0

    def __call__(self, z: np.ndarray, describe: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels (N, F), descriptors of the images at the indices ``describe``, or None)."""
        t0 = time.perf_counter()
        images = self.generator.render(np.asarray(z, np.float32))
        labels = self.extractor(images)
        desc = None
        if describe is not None and len(describe) and self.has_descriptor:
            desc = np.asarray(self.extractor.descriptor(images[torch.as_tensor(np.asarray(describe))]))
        self.images += len(z)
        self.seconds += time.perf_counter() - t0
        return np.asarray(labels, np.float64), desc


@dataclass
class Heldout:
    """Held-out latents, their unedited labels and (if the extractor has one) face descriptors."""

    z: np.ndarray
    seed: int
    labels: np.ndarray
    descriptors: np.ndarray | None


def make_heldout(generator, scorer: Scorer, n: int, seed: int, identity_n: int = 100) -> Heldout:
    z = generator.sample(n, seed).astype(np.float32)
    labels, desc = scorer(z, describe=np.arange(min(identity_n, n)))
    return Heldout(z, int(seed), labels, desc)


# ---------------------------------------------------------------- the evaluation


@dataclass
class Evaluation:
    """Everything measured about one axes file on one set of held-out latents."""

    rows: list[str]                     # the axes evaluated (rows of the matrices)
    features: list[str]                 # the extractor's features (columns)
    distances: list[float]
    n: int
    seed: int
    keep_norm: bool
    std: np.ndarray                     # (F,) label std over the unedited held-out latents
    change: np.ndarray                  # (n_d, R, F) half-difference change in std units at each distance
    count: np.ndarray                   # (n_d, R, F) samples used
    se: np.ndarray | None = None        # (n_d, R, F) standard error of ``change`` (std units)
    supervised: bool = True
    finder: str = ""
    presence: str | None = None         # the extractor's presence feature: left out of leakage
    found_base: float | None = None
    found: np.ndarray | None = None     # (n_d, R, 2) face-found share at +d and -d
    locks: list[dict] = field(default_factory=list)
    identity: np.ndarray | None = None  # (R,) mean descriptor cosine distance at the largest distance
    identity_between_faces: float | None = None
    norm_check: list[dict] = field(default_factory=list)
    cosine: np.ndarray | None = None    # (R, R) cosine similarity of the evaluated axes
    label_corr: np.ndarray | None = None
    fit_metrics: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0
    kinds: list[str] = field(default_factory=list)  # the features' kinds (binary / continuous)
    base_labels: np.ndarray | None = None  # (n, F) labels of the unedited held-out latents
    edited: np.ndarray | None = None    # (R, n_d, 2, n, F) labels after moving +d and -d along each row
    dependencies: dict[str, Dependency] = field(default_factory=dict)  # row -> attribute dependency of its edits

    def target(self, i: int) -> int | None:
        name = self.rows[i]
        return self.features.index(name) if self.supervised and name in self.features else None

    def excluded(self) -> tuple[str, ...]:
        """Features left out of leakage and matching: the presence feature."""
        return (self.presence,) if self.presence else ()

    def noise(self, d_index: int = -1) -> float:
        """Median standard error of the matrix cells at one distance: changes below ~2x this are noise."""
        if self.se is None or not np.isfinite(self.se[d_index]).any():
            return float("nan")
        return float(np.nanmedian(self.se[d_index]))

    def dependency_table(self) -> list[dict[str, Any]]:
        """Per axis and distance: target change, mean-AD, max-AD and mean-AD per std of target change."""
        out = []
        for name in self.rows:
            dep = self.dependencies.get(name)
            if dep is None:
                continue
            for d in self.distances:
                out.append({"axis": name, "target": self.features[dep.target], "distance": d, **dep.summary(d)})
        return out

    def summary(self, d_index: int = -1) -> list[dict[str, Any]]:
        """Per axis at one distance: control, leakage, face found, identity, attribute dependency, slider range."""
        out = []
        for i, name in enumerate(self.rows):
            s = row_summary(self.change[d_index, i], self.target(i), self.features, self.excluded())
            s["axis"] = name
            dep = self.dependencies.get(name)
            if dep is not None:
                a = dep.summary(self.distances[d_index])
                s["mean_ad"], s["max_ad"], s["ad_per_target"] = a["mean_ad"], a["max_ad"], a["ad_per_target"]
            if self.found is not None:
                s["found_plus"], s["found_minus"] = (float(x) for x in self.found[d_index, i])
            if self.identity is not None and d_index in (-1, len(self.distances) - 1):
                s["identity"] = float(self.identity[i])
                s["identity_per_std"] = float(self.identity[i] / abs(s["control"])) if s["control"] else float("nan")
            s["range"] = self.ranges.get(name, {}).get("range")
            out.append(s)
        return out

    def lock_table(self) -> list[dict[str, Any]]:
        """Per (axis, locked feature): leakage and control before and after the lock."""
        out = []
        dl = self.distances.index(self.locks[0]["distance"]) if self.locks else -1
        for rec in self.locks:
            i, j = self.rows.index(rec["axis"]), self.features.index(rec["lock"])
            t = self.target(i)
            before_leak, after_leak = float(self.change[dl, i, j]), float(rec["change"][j])
            before_ctl, after_ctl = float(self.change[dl, i, t]), float(rec["change"][t])
            out.append({"axis": rec["axis"], "lock": rec["lock"], "distance": rec["distance"],
                        "leak_before": before_leak, "leak_after": after_leak,
                        "leak_reduction": (1 - abs(after_leak) / abs(before_leak) if abs(before_leak) >= LEAK_FLOOR
                                           else float("nan")),
                        "control_before": before_ctl, "control_after": after_ctl,
                        "control_kept": after_ctl / before_ctl if before_ctl else float("nan"),
                        "direction_retained": rec["retained"], "reused": rec["reused"]})
        return out

    def to_json(self) -> dict[str, Any]:
        return clean({
            "finder": self.finder, "supervised": self.supervised, "rows": self.rows, "features": self.features,
            "distances": self.distances, "n_heldout": self.n, "heldout_seed": self.seed, "keep_norm": self.keep_norm,
            "label_std": self.std, "change": self.change, "change_se": self.se, "count": self.count,
            "noise": self.noise(),
            "found_base": self.found_base, "found": self.found, "locks": self.lock_table(),
            "identity": self.identity, "identity_between_faces": self.identity_between_faces,
            "norm_check": self.norm_check, "cosine": self.cosine, "label_corr": self.label_corr,
            "fit_metrics": self.fit_metrics, "summary": self.summary(), "slider_ranges": self.ranges,
            "attribute_dependency": self.dependency_json(),
            "notes": self.notes, "seconds": self.seconds, "images_scored": self.images})

    def dependency_json(self, bin_width: float = AD_BIN_WIDTH) -> dict[str, Any]:
        """Per axis: its target, the summary at each distance and the curve binned by target change."""
        out = {}
        for name in self.rows:
            dep = self.dependencies.get(name)
            if dep is None:
                continue
            c = dep.curve(bin_width)
            out[name] = {"target": self.features[dep.target],
                         "by_distance": {f"{d:g}": dep.summary(d) for d in self.distances},
                         "curve": {**c, "per_feature": dict(zip(self.features, c["per_feature"].T, strict=True))}}
        return out


def edit_dependency(ev: Evaluation, i: int, target: int | None = None, sign: float | None = None) -> Dependency | None:
    """Attribute dependency of row ``i``'s edits at every distance (``group`` = the distance).

    ``target``: the feature column the edits should move (default: the axis's
    own feature, or for an unsupervised component the one its saturation
    curve follows); ``sign``: +1 if moving +d should raise it (default: +1
    for an axis of that feature, else the sign of its change). Binary
    features are compared as logits. None where no edited labels were kept.
    """
    if ev.edited is None or ev.base_labels is None:
        return None
    if target is None:
        target = ev.target(i)
        if target is None and ev.rows[i] in ev.ranges:
            target = ev.features.index(ev.ranges[ev.rows[i]]["feature"])
    if target is None:
        return None
    if sign is None:
        kmax = ev.distances.index(max(ev.distances))
        sign = 1.0 if ev.target(i) == target or not ev.change[kmax, i, target] < 0 else -1.0
    return symmetric_edit_dependency(ev.base_labels, ev.edited[i], ev.kinds, ev.distances, target, sign,
                                     [ev.features.index(f) for f in ev.excluded()])


def clean(x: Any) -> Any:
    """JSON-safe copy: arrays to lists, NaN and infinities to None."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _lock_choice(locks: str | int | Sequence[str] | None, candidates: list[int], row_change: np.ndarray,
                 features: Sequence[str] = ()) -> list[int]:
    """The columns to lock in turn: none, ``"all"`` candidates, the ``k`` that leak most, or the named features."""
    if locks is None or locks in (0, "none", ""):
        return []
    if locks == "all":
        return candidates
    if not isinstance(locks, (int, str)):
        named = set(locks)
        return [j for j in candidates if features[j] in named]
    k = int(locks)
    return sorted(candidates, key=lambda j: -abs(row_change[j]) if np.isfinite(row_change[j]) else 0)[:k]


# ---------------------------------------------------------------- what locks do to the axes' field


def _retained(axes: Axes, name: str, lock: str, z: np.ndarray) -> float:
    """How much of ``name``'s direction survives locking ``lock``: the mean over the latents ``z`` of the
    axes' field's directions there (the same at every latent for a linear field)."""
    return float(np.mean(retained_at(axes.field, name, [lock], z)))


def _lock_changes_nothing(axes: Axes, name: str, lock: str) -> bool:
    """True when locking ``lock`` leaves ``name``'s edit unchanged (a linear axis orthogonal to it), so the
    unlocked edits can be reused; never assumed for a field that varies with the latent."""
    return axes.field.constant and bool(np.allclose(edit_delta(axes, {name: 1.0}, [lock]),
                                                    edit_delta(axes, {name: 1.0}), atol=1e-6))


def evaluate_axes(axes: Axes, scorer: Scorer, held: Heldout, distances: Sequence[float] = (1.5, 3.0),
                  rows: Sequence[str] | None = None, locks: str | int | Sequence[str] | None = 3, lock_n: int | None = None,
                  identity_n: int = 100, keep_norm: bool = False, norm_check: bool = False,
                  norm_check_n: int = 100, corr_labels: np.ndarray | None = None,
                  progress: bool = True) -> Evaluation:
    """Re-score ``axes`` on the held-out latents; see the module docstring for what is measured.

    ``rows``: the axes to move (default: all). ``locks``: for each axis, lock in
    turn ``"all"`` other features that have an axis, the ``k`` that leak most
    (an int), the features named in a list, or none; measured at the largest distance on the first ``lock_n``
    held-out latents. ``keep_norm``: rescale every edited latent to norm
    sqrt(D). ``norm_check``: also measure the other choice at the largest
    distance on ``norm_check_n`` latents, to say whether rescaling helps.
    """
    from tqdm.auto import tqdm

    t0, images0 = time.perf_counter(), scorer.images
    features = scorer.features
    rows = list(rows) if rows else list(axes.names)
    for r in rows:
        axes.index(r)
    distances = [float(d) for d in distances]
    if not distances or min(distances) <= 0:
        raise InputError(f"distances must be positive numbers, got {distances}")
    if axes.latent_space != "z":  # the typical shell |z| = sqrt(D) is a fact of N(0, I) noise, not of w
        if keep_norm:
            raise InputError(f"--keep-norm rescales latents to the norm of N(0, I) noise; these axes live in "
                             f"{axes.latent_space}, where that norm means nothing")
        norm_check = False
    n = len(held.z)
    lock_n = min(lock_n or n, n)
    identity_n = min(identity_n, n) if scorer.has_descriptor and held.descriptors is not None else 0
    norm_check_n = min(norm_check_n, n)
    std = label_std(held.labels)
    supervised = any(r in features for r in rows)
    presence = scorer.presence if scorer.presence in features else None
    lockable = [j for j, f in enumerate(features) if f in axes.names and f != presence]
    fcol = features.index(presence) if presence is not None else None
    n_d, n_r, n_f = len(distances), len(rows), len(features)
    change = np.full((n_d, n_r, n_f), np.nan)
    count = np.zeros((n_d, n_r, n_f), int)
    se = np.full((n_d, n_r, n_f), np.nan)
    found = np.full((n_d, n_r, 2), np.nan) if fcol is not None else None
    identity = np.full(n_r, np.nan) if identity_n else None
    edited_labels = np.full((n_r, n_d, 2, n, n_f), np.nan)
    ev = Evaluation(rows, list(features), distances, n, held.seed, keep_norm, std, change, count, se,
                    supervised=supervised, presence=presence,
                    finder=str(axes.meta.get("finder") or ("glm" if axes.meta.get("method") else "")))
    dmax = max(distances)
    kmax = distances.index(dmax)

    def edited(name: str, ds: Sequence[float], m: int, norm: bool, lock: Sequence[str] = ()) -> np.ndarray:
        """The first ``m`` held-out latents moved +d then -d along ``name`` for each d, through ``move``."""
        z = held.z[:m]
        amounts = np.concatenate([np.full(m, s * d, np.float32) for d in ds for s in (1.0, -1.0)])
        out = move(np.tile(z, (2 * len(ds), 1)), axes, {name: amounts}, lock)
        return rescale_norm(out) if norm else out

    bar = tqdm(rows, desc=f"re-scoring {ev.finder or 'axes'}", unit="axis", disable=not progress)
    for i, name in enumerate(bar):
        # rows of the batch: for each distance, n latents moved +d then n moved -d
        describe = (np.concatenate([kmax * 2 * n + np.arange(identity_n), (kmax * 2 + 1) * n + np.arange(identity_n)])
                    if identity_n else None)
        labels, d_id = scorer(edited(name, distances, n, keep_norm), describe=describe)
        per = labels.reshape(n_d, 2, n, n_f)
        edited_labels[i] = per
        for k in range(n_d):
            mean, cnt = half_difference(per[k, 0], per[k, 1])
            change[k, i], count[k, i] = mean / std, cnt
            se[k, i] = half_difference_se(per[k, 0], per[k, 1]) / std
            if found is not None and fcol is not None:
                found[k, i] = (per[k, 0, :, fcol] > 0.5).mean(), (per[k, 1, :, fcol] > 0.5).mean()
        if identity is not None and held.descriptors is not None and d_id is not None:  # all set when identity_n > 0
            base = held.descriptors[:identity_n]
            identity[i] = np.mean([cosine_distance(base, d_id[:identity_n]), cosine_distance(base, d_id[identity_n:])])
        t = ev.target(i)
        if norm_check:
            alt_labels, _ = scorer(edited(name, [dmax], norm_check_n, not keep_norm))
            rec = {"axis": name, "distance": dmax}
            for tag, lab in ((keep_norm, per[kmax, :, :norm_check_n]), (not keep_norm, alt_labels.reshape(2, norm_check_n, n_f))):
                s = row_summary(half_difference(lab[0], lab[1])[0] / std, t, features, ev.excluded())
                key = "keep_norm" if tag else "plain"
                rec[key] = {"control": s["control"], "leakage": s["leakage"],
                            "found": float(np.mean(lab[:, :, fcol] > 0.5)) if fcol is not None else None}
            ev.norm_check.append(rec)
        if t is not None and locks not in (None, 0, "none", ""):
            for j in _lock_choice(locks, [c for c in lockable if c != t], change[kmax, i], features):
                lock = features[j]
                same = _lock_changes_nothing(axes, name, lock)
                if same:
                    lab_l = per[kmax, :, :lock_n]
                else:
                    lab_l = scorer(edited(name, [dmax], lock_n, keep_norm, [lock]))[0].reshape(2, lock_n, n_f)
                ev.locks.append({"axis": name, "lock": lock, "distance": dmax, "reused": same,
                                 "retained": _retained(axes, name, lock, held.z[:lock_n]),
                                 "change": half_difference(lab_l[0], lab_l[1])[0] / std})
    bar.close()
    if lock_n < n and ev.locks:
        ev.notes.append(f"locked edits were measured on the first {lock_n} of the {n} held-out latents, "
                        f"at distance {dmax:g}; 'before' values are from all {n}")
    if not supervised:
        ev.notes.append("these axes are unsupervised components: no feature has an axis to lock; they are "
                        "orthonormal, so locking one component would leave every other component's edit unchanged")
    if identity is None:
        ev.notes.append(f"identity not measured: extractor {getattr(scorer.extractor, 'name', '?')!r} has no "
                        "descriptor()" if not scorer.has_descriptor else "identity not measured (identity_n = 0)")
    else:
        assert held.descriptors is not None  # identity is measured only when there are descriptors
        ev.identity = identity
        ev.identity_between_faces = mean_pairwise_cosine_distance(held.descriptors[:identity_n])
    if found is not None and fcol is not None:
        ev.found, ev.found_base = found, float(np.mean(held.labels[:, fcol] > 0.5))
    else:
        ev.notes.append("the extractor declares no presence feature (like face_found): the share of edited "
                        "images with a face is not measured")
    ev.cosine = cosine_matrix(np.stack([axes.vector(r) for r in rows]))
    if corr_labels is not None and np.shape(corr_labels)[1] != n_f:
        ev.notes.append(f"label correlations are from the {n} held-out faces: the run's labels have "
                        f"{np.shape(corr_labels)[1]} features, the extractor now gives {n_f}")
        corr_labels = None
    ev.label_corr = nan_corr(held.labels if corr_labels is None else corr_labels)
    ev.fit_metrics = {r: axes.metrics.get(r, {}) for r in rows}
    ev.kinds, ev.base_labels, ev.edited = list(scorer.kinds), held.labels, edited_labels
    for i, name in enumerate(rows):
        t = ev.target(i)
        col = t if t is not None else row_summary(change[kmax, i], None, features, ev.excluded())["target"]
        col = features.index(col) if isinstance(col, str) else col
        if col is not None:
            ev.ranges[name] = {"feature": features[col], **suggest_range(distances, change[:, i, col])}
    for i, name in enumerate(rows):
        dep = edit_dependency(ev, i)
        if dep is not None:
            ev.dependencies[name] = dep
    ev.seconds = time.perf_counter() - t0
    ev.images = scorer.images - images0
    return ev


# ---------------------------------------------------------------- several finders side by side


@dataclass
class FinderResult:
    name: str
    axes: Axes
    evaluation: Evaluation
    find_seconds: float
    matches: dict = field(default_factory=dict)  # unsupervised: feature -> matched component
    #: unsupervised: feature -> attribute dependency of its matched component, sign-corrected
    match_dependencies: dict[str, Dependency] = field(default_factory=dict)

    def dependency(self, feature: str) -> Dependency | None:
        """The attribute dependency of this finder's direction for ``feature`` (None where it has none)."""
        if self.evaluation.supervised:
            return self.evaluation.dependencies.get(feature)
        return self.match_dependencies.get(feature)

    def per_feature(self, feature: str) -> dict[str, Any] | None:
        """Control, leakage, locking, identity and face found of this finder's direction for ``feature``."""
        ev = self.evaluation
        if ev.supervised:
            if feature not in ev.rows:
                return None
            i = ev.rows.index(feature)
            s = ev.summary()[i]
            locks = [r for r in ev.lock_table() if r["axis"] == feature and np.isfinite(r["leak_reduction"])]
            out = {"direction": feature, "sign": 1, **s}
            if locks:  # only the locks of features it really leaked into (|leak| >= LEAK_FLOOR)
                out["leak_reduction"] = float(np.mean([r["leak_reduction"] for r in locks]))
                out["control_kept"] = float(np.mean([r["control_kept"] for r in locks]))
                out["locked"] = [r["lock"] for r in locks]
            return out
        m = self.matches.get(feature)
        if m is None:
            return None
        i = m["row"]
        s = ev.summary()[i]
        out = {**m, "direction": f"{'-' if m['sign'] < 0 else '+'}{m['component']}", "control": abs(m["control"]),
               "locking": "no-op (orthonormal components)"}
        for key in ("found_plus", "found_minus", "range"):
            if key in s:
                out[key] = s[key]
        dep = self.match_dependencies.get(feature)
        if dep is not None:
            a = dep.summary(ev.distances[-1])
            out["mean_ad"], out["max_ad"], out["ad_per_target"] = a["mean_ad"], a["max_ad"], a["ad_per_target"]
        if m["sign"] < 0 and "found_plus" in s:
            out["found_plus"], out["found_minus"] = s["found_minus"], s["found_plus"]
        if ev.identity is not None:
            out["identity"] = float(ev.identity[i])
            out["identity_per_std"] = float(ev.identity[i] / abs(m["control"])) if m["control"] else float("nan")
        return out


def _finite_mean(rows: list[dict[str, Any]], key: str, fn: Callable[[Any], float] = float) -> float:
    """The mean of ``fn(row[key])`` over the rows where that value is a finite number; NaN when none is."""
    vals = [fn(x[key]) for x in rows if isinstance(x.get(key), (int, float)) and np.isfinite(x[key])]
    return float(np.mean(vals)) if vals else float("nan")


@dataclass
class Comparison:
    run: str
    heldout_seed: int
    n: int
    distances: list[float]
    features: list[str]                 # the features compared (rows of the tables)
    results: list[FinderResult]
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> list[dict[str, Any]]:
        """One row per (feature, finder)."""
        return [{"feature": f, "finder": r.name, **(r.per_feature(f) or {})} for f in self.features for r in self.results]

    def totals(self) -> list[dict[str, Any]]:
        """One row per finder: means over the compared features."""
        out = []
        for r in self.results:
            rows = [x for x in (r.per_feature(f) for f in self.features) if x]
            avg = functools.partial(_finite_mean, rows)
            found = [min(x["found_plus"], x["found_minus"]) for x in rows if "found_plus" in x]
            control, leakage = avg("control", abs), avg("leakage")
            out.append({"finder": r.name, "find_seconds": r.find_seconds, "evaluate_seconds": r.evaluation.seconds,
                        "features_matched": len(rows), "control": control, "leakage": leakage,
                        "control_to_leakage": control / leakage if leakage > 0 else float("nan"),
                        "leak_reduction": avg("leak_reduction"), "control_kept": avg("control_kept"),
                        "identity_per_std": avg("identity_per_std"), "mean_ad": avg("mean_ad"),
                        "ad_per_target": avg("ad_per_target"),
                        "found": float(np.mean(found)) if found else float("nan"),
                        "distinct_directions": len({x["direction"].lstrip("+-") for x in rows})})
        return out

    def to_json(self) -> dict[str, Any]:
        return clean({"run": self.run, "heldout_seed": self.heldout_seed, "n_heldout": self.n,
                      "distances": self.distances, "features": self.features, "settings": self.settings,
                      "seconds": self.seconds, "totals": self.totals(), "table": self.table(),
                      "finders": {r.name: {"find_seconds": r.find_seconds, "matches": r.matches,
                                           "evaluation": r.evaluation.to_json()} for r in self.results}})


def compare_finders(run, finders: Sequence[str], generator, extractor, n: int = 200,
                    distances: Sequence[float] = (1.5, 3.0), features: Sequence[str] | None = None,
                    components: int = 10, locks: str | int | Sequence[str] | None = 3, lock_n: int | None = None,
                    identity_n: int = 100, keep_norm: bool = False, norm_check: bool = True,
                    label_set: str | None = None, progress: bool = True, log=print) -> Comparison:
    """Find directions with each finder on the same run, evaluate all on the same held-out latents.

    Supervised finders are evaluated on ``features`` (default: every feature);
    unsupervised ones (ganspace, sefa) on their first ``components`` components,
    and each feature is matched to the component that moves it most. The
    keep-norm check runs for the first finder only.
    """
    from .finders import load_finder
    from .sample import open_run

    t0 = time.perf_counter()
    run = run if not isinstance(run, (str, Path)) else open_run(run)
    z, labels, feats, meta = run.fit_inputs(label_set)
    names = [f.name for f in feats]
    measured = [f.name for f in extractor.features]
    if not set(names) <= set(measured):
        raise InputError(f"extractor {extractor.name!r} does not measure the run's features "
                         f"{', '.join(sorted(set(names) - set(measured)))}; relabel the run or pick its extractor")
    chosen = list(features) if features else [f for f in names if f != extractor.presence]
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise InputError(f"unknown feature(s) {', '.join(unknown)}; the run's labels have: {', '.join(names)}")
    scorer = Scorer(generator, extractor)
    seed = heldout_seed(meta["seed"])
    log(f"held-out latents: {n} from seed {seed} (run seed {meta['seed']} + {HELDOUT_OFFSET})")
    held = make_heldout(generator, scorer, n, seed, identity_n)
    results = []
    for k, name in enumerate(finders):
        finder = load_finder(name)
        if finder.n_components is not None:  # an unsupervised finder: evaluate this many components
            finder.n_components = components
        t1 = time.perf_counter()
        axes = finder.find(z, labels, feats, generator, meta=dict(meta))
        found_s = time.perf_counter() - t1
        axes.meta["find_seconds"] = found_s
        log(f"{name}: {len(axes.names)} directions in {found_s:.2f} s")
        rows = [f for f in chosen if f in axes.names] if finder.supervised else list(axes.names)
        ev = evaluate_axes(axes, scorer, held, distances, rows, locks if finder.supervised else None, lock_n,
                           identity_n, keep_norm, norm_check and k == 0,
                           corr_labels=labels if names == measured else None, progress=progress)
        ev.finder = name
        res = FinderResult(name, axes, ev, found_s)
        if not finder.supervised:
            res.matches = {f: m for f, m in match_components(ev.change[-1], ev.rows, ev.features, ev.excluded()).items()
                           if f in chosen}
            for f, m in res.matches.items():
                dep = edit_dependency(ev, m["row"], ev.features.index(f), float(m["sign"]))
                if dep is not None:
                    res.match_dependencies[f] = dep
        results.append(res)
        log(f"{name}: evaluated in {ev.seconds:.0f} s ({ev.images} images)")
    return Comparison(str(meta["run"]), seed, n, [float(d) for d in distances], chosen, results,
                      {"components": components, "locks": locks, "lock_n": lock_n or n, "identity_n": identity_n,
                       "keep_norm": keep_norm, "norm_check": norm_check, "label_set": meta["extractor"],
                       "generator": meta["generator"], "n_fit_samples": len(z)}, time.perf_counter() - t0)
