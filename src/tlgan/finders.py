"""Direction finders: tlgan's GLM and the reference methods, behind one interface.

Every finder turns sampled latents (and, if it is supervised, their labels)
into an :class:`~tlgan.axes.Axes`, so its result is saved in the same file
format and `tlgan edit / grid / serve / evaluate` take any of them.

- ``glm``: tlgan's own (``tlgan.fit.fit_axes``): one generalized linear model per feature.
- ``interfacegan``: per feature, the top and bottom 2% of samples by score,
  split 70/30, a linear SVM (default C); the unit normal of its boundary is the axis.
- ``ganspace``: PCA of the sampled latents, components ``pc0, pc1, ...`` by
  explained variance. GANSpace takes the PCA of an intermediate latent (StyleGAN's
  w); a generator that only has z (like the default DCGAN) gives PCA of isotropic
  Gaussian samples, whose components are essentially random directions.
- ``local``: latent-dependent axes (``tlgan.local``): one small MLP with a head
  per feature; its field (:mod:`tlgan.fields.mlp`) is the gradient of the
  feature's head, which edits follow with locks applied at every step. The
  stored vector is the mean gradient direction.
- ``sefa``: closed form from the generator's weights: eigenvectors of A^T A where
  A is the weight of the first layer that consumes the latent, each output unit's
  weight vector normalised to unit length, components ``sefa0, sefa1, ...`` by eigenvalue.

Register your own with ``@FINDERS.register("name")`` in a plugin module.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.svm import SVC

from .axes import Axes
from .errors import TLGANError
from .extractors import Feature, load_extractor
from .fields import KEEP_LEVEL, LinearField, MoveSettings
from .fields.mlp import MLPField
from .fit import MIN_SAMPLES, FitError, fit_axes
from .generators import Generator, generator_of
from .local import LocalModelError, fit_local_model
from .plugins import load_plugins
from .registry import Registry
from .sample import open_run

#: features whose labels correlate most with a component are listed in its metrics
N_MOVES = 3


class FinderError(TLGANError, ValueError):
    """A finder that cannot work on what it was given (no generator weight, too few samples)."""


class DirectionFinder(ABC):
    """Finds one unit direction per feature (supervised) or per component (unsupervised).

    A finder declares what it needs and what its result means, so no caller
    checks its name: ``supervised`` (it needs labels: one axis per labelled
    feature), ``needs_generator`` (it reads the generator, e.g. its weights),
    ``n_components`` (unsupervised: how many components ``find`` returns;
    None for supervised finders; settable), ``options`` (the keyword options
    it takes), ``slope_unit`` (what ``Axes.slopes`` holds for its axes,
    recorded in ``axes.meta['slope_unit']``) and ``streams`` (``find`` takes
    latents that are read from disk in blocks, so a run of any size fits
    without loading them whole).
    """

    name: str
    supervised: bool = True
    needs_generator: bool = False
    streams: bool = False
    n_components: int | None = None
    options: tuple[str, ...] = ()
    slope_unit: str = ""

    @abstractmethod
    def find(self, z: np.ndarray, labels: np.ndarray | None, features: Sequence[Feature],
             generator: Generator | None = None, meta: dict | None = None) -> Axes:
        """Directions from latents ``z`` (N, D), ``labels`` (N, F) with NaN = unknown and their ``features``."""


FINDERS: Registry[DirectionFinder] = Registry("direction finder")


def make_axes(finder: DirectionFinder, names: Sequence[str], kinds: Sequence[str],
              vectors: np.ndarray | Sequence[np.ndarray], slopes: Sequence[float] | np.ndarray, metrics: dict,
              skipped: dict, latent_dim: int, n_samples: int, meta: dict | None = None, **extra) -> Axes:
    """The finder's result as :class:`Axes`, with what every axes file records about its finder."""
    vec = np.stack(list(vectors)) if len(vectors) else np.zeros((0, latent_dim), np.float32)
    return Axes(list(names), list(kinds), vec, np.asarray(slopes), metrics, skipped,
                dict(meta or {}, finder=finder.name, slope_unit=finder.slope_unit, latent_dim=latent_dim,
                     n_samples=n_samples, **extra))


QUALITY_KEYS = (("r2", "R²"), ("auc", "AUC"), ("val_accuracy", "val acc"),
                ("explained_variance_ratio", "var share"), ("eigenvalue", "eigenvalue"))


def fit_quality(metrics: dict) -> tuple[str, str, float] | None:
    """(key, short label, value) of the first quality measure an axis' metrics hold, or None."""
    for key, label in QUALITY_KEYS:
        if metrics.get(key) is not None:
            return key, label, metrics[key]
    return None


def _check(z: np.ndarray, labels: np.ndarray | None, features: Sequence[Feature]) -> tuple[np.ndarray, np.ndarray | None]:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise FitError(f"need latents (N, D), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise FitError("latents contain NaN or infinite values")
    if labels is None:
        return z, None
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or len(labels) != len(z) or labels.shape[1] != len(features):
        raise FitError(f"need labels (N, F) matching latents {z.shape} and {len(features)} features; got {labels.shape}")
    return z, labels


def _label_moves(z: np.ndarray, labels: np.ndarray | None, features: Sequence[Feature],
                 vectors: np.ndarray) -> list[dict[str, float]]:
    """Per direction, the features whose labels correlate most with the projection z . v (sample correlation)."""
    if labels is None or not len(features):
        return [{} for _ in vectors]
    proj = z @ vectors.T
    out = []
    for k in range(len(vectors)):
        corr = {}
        for j, f in enumerate(features):
            ok = np.isfinite(labels[:, j])
            if ok.sum() > 2 and np.ptp(labels[ok, j]) > 0:
                corr[f.name] = float(np.corrcoef(proj[ok, k], labels[ok, j])[0, 1])
        best = sorted(corr, key=lambda n: -abs(corr[n]))[:N_MOVES]
        out.append({n: round(corr[n], 4) for n in best})
    return out


# ---------------------------------------------------------------- glm


class GLMFinder(DirectionFinder):
    """tlgan's own: a GLM per feature (ridge or fractional logistic), its unit slope is the axis."""

    name = "glm"
    options = ("method", "seed")
    streams = True
    slope_unit = "change of the feature's model per unit move (label units; logit units for logistic)"

    def __init__(self, method: str = "auto", seed: int = 0) -> None:
        self.method, self.seed = method, seed

    def find(self, z, labels, features, generator=None, meta=None) -> Axes:
        if labels is None:
            raise FitError("the glm finder needs labels")
        axes = fit_axes(z, labels, features, method=self.method, seed=self.seed, meta=meta)
        axes.meta.update(finder=self.name, slope_unit=self.slope_unit)
        return axes


# ---------------------------------------------------------------- local


class LocalFinder(DirectionFinder):
    """Local axes: a smooth MLP of every feature; its gradient field is the (latent-dependent) axis.

    ``axes.field`` is the model's gradient field (:class:`tlgan.fields.mlp.MLPField`);
    ``vectors`` hold each feature's mean gradient direction over the run's
    latents and ``slopes`` the mean gradient norm, so cosine tables, compare
    and anything that needs one vector still work. ``shell`` makes edits keep
    the latent's norm by default (default: on for z latents, the only space it
    applies to; on the demo it keeps more faces found at ±3). ``correct`` (on by default) ends
    every step with the corrector that keeps locked features on their level
    set, and ``keep`` (default: the presence feature the run's extractor
    declares, e.g. ``face_found``, used when the model has it as a binary
    output; ``""`` for none) holds its predicted probability at or above
    ``keep_level``; they are the field's move settings, recorded in the axes
    file, so every edit of it moves the same way.
    """

    name = "local"
    options = ("hidden", "epochs", "seed", "shell", "weight_decay", "correct", "keep", "keep_level")
    slope_unit = ("mean norm of the gradient of the feature's model (logit units for binary features, "
                  "standard deviations of the label for continuous ones) per unit move")

    def __init__(self, hidden: Sequence[int] | str = (256, 256), epochs: int = 80, seed: int = 0,
                 shell: bool | None = None, weight_decay: float = 1e-3, correct: bool = True, keep: str | None = None,
                 keep_level: float | None = None) -> None:
        if isinstance(hidden, str):
            try:
                hidden = [int(h) for h in hidden.split(",") if h.strip()]
            except ValueError:
                raise FinderError(f"local hidden sizes must be whole numbers like 256,256, got {hidden!r}") from None
        if not hidden or any(int(h) < 1 for h in hidden):
            raise FinderError(f"local hidden sizes must be positive, got {hidden!r}")
        self.hidden, self.epochs, self.seed = [int(h) for h in hidden], int(epochs), int(seed)
        self.shell, self.weight_decay = shell, float(weight_decay)
        if keep_level is not None and not 0 < float(keep_level) < 1:
            raise FinderError(f"local keep_level is a probability between 0 and 1, got {keep_level!r}")
        self.correct, self.keep, self.keep_level = bool(correct), keep, keep_level

    def find(self, z, labels, features, generator=None, meta=None) -> Axes:

        z, labels = _check(z, labels, features)
        if labels is None:
            raise FitError("the local finder needs labels")
        try:
            fit = fit_local_model(z, labels, [f.name for f in features], [f.kind for f in features],
                                  hidden=self.hidden, epochs=self.epochs, seed=self.seed,
                                  weight_decay=self.weight_decay, min_samples=MIN_SAMPLES)
        except LocalModelError as e:
            raise FinderError(str(e)) from None
        model = fit.model
        probe = z[np.random.default_rng(self.seed).permutation(len(z))[:2000]]
        grads = model.gradients(probe, model.outputs).numpy()  # (n, F, D)
        mean = grads.mean(0)
        norms = np.linalg.norm(mean, axis=1)
        names, kinds, vectors, slopes, metrics = [], [], [], [], {}
        skipped = dict(fit.skipped)
        by_name = {f.name: f for f in features}
        for k, name in enumerate(model.outputs):
            if norms[k] < 1e-12:
                skipped[name] = "the model's gradient averages to zero: no mean direction"
                continue
            unit = mean[k] / norms[k]
            cos = (grads[:, k] @ unit) / np.maximum(np.linalg.norm(grads[:, k], axis=1), 1e-12)
            names.append(name)
            kinds.append(by_name[name].kind)
            vectors.append(unit.astype(np.float32))
            slopes.append(float(np.linalg.norm(grads[:, k], axis=1).mean()))
            metrics[name] = {**fit.metrics[name], "slope": slopes[-1],
                             "mean_cos_to_mean_direction": float(cos.mean()),
                             "min_cos_to_mean_direction": float(cos.min())}
        keep = presence_of(meta) if self.keep is None else self.keep
        if keep not in model.outputs or model.kinds[model.outputs.index(keep)] != "binary":
            keep = None  # nothing to keep (an explicit name the model lacks is as good as none)
        settings = MoveSettings(
            shell=(meta or {}).get("latent_space", "z") == "z" if self.shell is None else bool(self.shell),
            correct=self.correct, keep=keep, keep_level=KEEP_LEVEL if self.keep_level is None else self.keep_level)
        axes = make_axes(self, names, kinds, vectors, slopes, metrics, skipped, z.shape[1], len(z), meta,
                         local_epochs=fit.epochs)
        return axes.with_field(MLPField(model, LinearField(axes.names, axes.vectors), settings))


def presence_of(meta: dict | None) -> str | None:
    """The presence feature (e.g. ``face_found``) declared by the extractor that labelled a run (``meta``'s
    ``extractor``), or None when it declares none or cannot be built here."""
    name = (meta or {}).get("extractor")
    if not name:
        return None

    try:
        return load_extractor(str(name), device="cpu").presence
    except (TLGANError, OSError):  # not registered here, or its weights are missing
        return None


# ---------------------------------------------------------------- interfacegan


class InterFaceGANFinder(DirectionFinder):
    """InterFaceGAN's boundaries: a linear SVM between the top and bottom ``ratio`` of samples by score.

    Per feature: sort the valid samples by label, keep the top and bottom
    ``ratio`` (2% by default) as positives and negatives, shuffle, train on 70%
    and report the accuracy on the other 30% (``val_accuracy``) and on the unused
    middle samples (``middle_accuracy``, labelled positive above the midpoint of
    the highest and lowest score, as the reference does). The axis is the
    boundary's unit normal, pointing toward higher scores. ``slope`` is the
    least-squares change of the label per unit move along it, on all valid samples.
    """

    name = "interfacegan"
    options = ("ratio", "split", "C", "seed", "min_per_side")
    slope_unit = "label change per unit move (least squares over all valid samples)"

    def __init__(self, ratio: float = 0.02, split: float = 0.7, C: float = 1.0, seed: int = 0,
                 min_per_side: int = 10) -> None:
        if not 0 < ratio <= 0.5:
            raise FinderError(f"interfacegan ratio must be in (0, 0.5], got {ratio}")
        self.ratio, self.split, self.C, self.seed, self.min_per_side = ratio, split, C, seed, min_per_side

    def boundary(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, dict, str]:
        """(unit normal or None, metrics, reason for None) for one feature's labels ``y`` (N,)."""

        valid = np.isfinite(y)
        zv, yv = z[valid], y[valid]
        n = len(yv)
        k = int(n * self.ratio)
        if n < MIN_SAMPLES or k < self.min_per_side:
            return None, {}, (f"{n} valid samples give {k} per side at ratio {self.ratio} "
                              f"(need {self.min_per_side}); sample more")
        order = np.argsort(yv, kind="stable")[::-1]  # highest score first
        top, bottom, middle = order[:k], order[n - k:], order[k:n - k]
        if yv[top].min() <= yv[bottom].max():
            return None, {}, "the top and bottom samples have the same scores; the label barely varies"
        x = np.concatenate([zv[top], zv[bottom]])
        t = np.concatenate([np.ones(k, int), np.zeros(k, int)])
        perm = np.random.default_rng(self.seed).permutation(2 * k)
        n_train = round(2 * k * self.split)
        tr, va = perm[:n_train], perm[n_train:]
        svm = SVC(kernel="linear", C=self.C).fit(x[tr], t[tr])
        metrics: dict[str, Any] = {"val_accuracy": float(svm.score(x[va], t[va])) if len(va) else float("nan")}
        if len(middle):
            decision = (yv[order[0]] + yv[order[-1]]) / 2
            metrics["middle_accuracy"] = float(svm.score(zv[middle], (yv[middle] >= decision).astype(int)))
        coef = svm.coef_.ravel()
        norm = float(np.linalg.norm(coef))
        if norm < 1e-12:
            return None, {}, "the SVM found no boundary (zero normal)"
        normal = coef / norm
        if (zv[top].mean(0) - zv[bottom].mean(0)) @ normal < 0:  # point toward higher scores
            normal = -normal
        proj = zv @ normal
        metrics["slope"] = float(np.polyfit(proj, yv, 1)[0])
        metrics.update(n_used=n, n_per_side=k, C=self.C, ratio=self.ratio, method="interfacegan-svm")
        return normal.astype(np.float32), metrics, ""

    def find(self, z, labels, features, generator=None, meta=None) -> Axes:
        z, labels = _check(z, labels, features)
        if labels is None:
            raise FitError("the interfacegan finder needs labels")
        names, kinds, vectors, slopes, metrics, skipped = [], [], [], [], {}, {}
        for j, f in enumerate(features):
            normal, m, why = self.boundary(z, labels[:, j])
            if normal is None:
                skipped[f.name] = why
                continue
            names.append(f.name)
            kinds.append(f.kind)
            vectors.append(normal)
            slopes.append(m["slope"])
            metrics[f.name] = m
        return make_axes(self, names, kinds, vectors, slopes, metrics, skipped, z.shape[1], len(z), meta)


# ---------------------------------------------------------------- ganspace


class GANSpaceFinder(DirectionFinder):
    """GANSpace: principal components of the sampled latents, ordered by explained variance.

    The reference takes the PCA of StyleGAN's intermediate latent w, which is
    strongly anisotropic. For a generator whose only latent is z ~ N(0, I) the
    sample covariance is the identity plus sampling noise, so the components
    are close to random directions: a measured fact, kept in ``meta['note']``.
    ``slope`` holds each component's standard deviation (GANSpace's slider unit).
    """

    name = "ganspace"
    supervised = False
    options = ("n_components",)
    slope_unit = "standard deviation of the samples along the component (GANSpace's slider unit)"

    def __init__(self, n_components: int = 20) -> None:
        self.n_components = n_components

    def find(self, z, labels=None, features=(), generator=None, meta=None) -> Axes:
        z, labels = _check(z, labels, features)
        k = min(int(self.n_components or 0), *z.shape)
        zc = z - z.mean(0)
        _, s, vt = np.linalg.svd(zc, full_matrices=False)  # rows of vt: components by singular value
        var = s ** 2 / max(len(z) - 1, 1)
        ratio = var / var.sum()
        vectors = vt[:k]
        moves = _label_moves(z, labels, features, vectors)
        names = [f"pc{i}" for i in range(k)]
        metrics = {n: {"method": "pca", "explained_variance": float(var[i]), "explained_variance_ratio": float(ratio[i]),
                       "std": float(np.sqrt(var[i])), "correlated_features": moves[i]} for i, n in enumerate(names)}
        space = generator.space if generator is not None else (meta or {}).get("latent_space", "z")
        dim = z.shape[1]
        note = (f"PCA of {len(z)} sampled latents in the generator's {space} space. "
                + (f"z ~ N(0, I) is isotropic: every direction has variance 1, so the components only follow "
                   f"sampling noise (explained variance {var[0]:.3f} .. {var[k - 1]:.3f}, vs 1 for every "
                   f"direction; a component's share is {ratio[0]:.4f} vs 1/{dim} = {1 / dim:.4f} for a "
                   "random one). They are close to random directions; GANSpace needs an anisotropic "
                   "intermediate latent (StyleGAN's w) to find meaning."
                   if space == "z" else "Components of an intermediate latent, as GANSpace does."))
        return make_axes(self, names, ["component"] * k, vectors, np.sqrt(var[:k]), metrics, {}, dim, len(z), meta,
                         note=note, explained_variance_ratio=[float(r) for r in ratio[:k]])


# ---------------------------------------------------------------- sefa


def sefa_directions(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues descending, eigenvectors as rows) of A^T A for the layer weight ``weight`` (out, latent_dim).

    As SeFa's code (which stores the weight as (latent_dim, out) and normalises its
    columns), each output unit's weight vector over the latent is scaled to unit
    length first; units with an all-zero weight stay zero.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2:
        raise FinderError(f"need a layer weight (out, latent_dim), got shape {w.shape}")
    a = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    values, vectors = np.linalg.eigh(a.T @ a)  # symmetric: real eigenvalues, orthonormal eigenvectors
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order].T


class SeFaFinder(DirectionFinder):
    """SeFa: closed-form directions from the first layer that consumes the latent (no sampling needed)."""

    name = "sefa"
    supervised = False
    needs_generator = True
    options = ("n_components",)
    slope_unit = "none: every slope is 1"

    def __init__(self, n_components: int = 20) -> None:
        self.n_components = n_components

    def find(self, z=None, labels=None, features=(), generator=None, meta=None) -> Axes:
        if generator is None:
            raise FinderError("the sefa finder needs the generator (it reads its first layer's weight)")
        weight = generator.first_layer_weight()
        if weight is None:
            raise FinderError(f"generator {generator.name!r} does not expose first_layer_weight(); "
                              "SeFa cannot be applied to it")
        values, vectors = sefa_directions(weight)
        k = min(int(self.n_components or 0), len(values))
        vectors = vectors[:k]
        names = [f"sefa{i}" for i in range(k)]
        moves: list[dict[str, float]] = [{} for _ in names]
        if z is not None:
            zz, ll = _check(z, labels, features)
            moves = _label_moves(zz, ll, features, vectors)
        metrics = {n: {"method": "sefa", "eigenvalue": float(values[i]), "correlated_features": moves[i]}
                   for i, n in enumerate(names)}
        return make_axes(self, names, ["component"] * k, vectors, np.ones(k), metrics, {}, vectors.shape[1],
                         0 if z is None else len(z), meta, generator=generator.name,
                         eigenvalues=[float(v) for v in values[:k]],
                         note=f"eigenvectors of A^T A, A = the {weight.shape[0]} x {weight.shape[1]} weight of "
                              "the generator's first layer with each output unit's row normalised")


FINDERS.register("glm", "tlgan's own: a GLM per feature (ridge / fractional logistic); options: method, seed")(GLMFinder)
FINDERS.register("interfacegan", "InterFaceGAN: linear SVM on the top/bottom 2% per feature; options: ratio, C")(
    InterFaceGANFinder)
FINDERS.register("ganspace", "GANSpace: PCA of the sampled latents (unsupervised); option: n_components")(GANSpaceFinder)
FINDERS.register("local", "latent-dependent axes: an MLP per run, edits follow its gradient field with locks at "
                 "every step; options: hidden, epochs, seed, shell, correct, keep, keep_level")(LocalFinder)
FINDERS.register("sefa", "SeFa: eigenvectors of the first layer's weight (unsupervised); option: n_components")(SeFaFinder)


def load_finder(name: str, **options) -> DirectionFinder:
    """Build a registered finder by name, e.g. ``load_finder("interfacegan", ratio=0.05)``."""
    load_plugins()
    return FINDERS.create(name, **options)


# ---------------------------------------------------------------- on a run folder


def find_run(run, finder: str | DirectionFinder = "glm", label_set: str | None = None,
             features: Sequence[str] | None = None, generator: Generator | None = None,
             device: str | None = "cpu", **options) -> Axes:
    """Directions of ``finder`` from a run folder; loads the run's generator if the finder needs it.

    ``meta['find_seconds']`` records the finder's own time (not the loading).
    """
    finder = finder if isinstance(finder, DirectionFinder) else load_finder(finder, **options)
    run = run if not isinstance(run, (str, Path)) else open_run(run)
    z, labels, feats, meta = run.fit_inputs(label_set, features, stream=finder.streams)
    if generator is None and finder.needs_generator:
        generator = generator_of(meta, device)
    t0 = time.perf_counter()
    axes = finder.find(z, labels, feats, generator, meta=meta)
    axes.meta["find_seconds"] = time.perf_counter() - t0
    return axes
