"""Train your own feature extractor from labelled faces: a logistic probe or a small CNN.

Data in (each gives uint8 images at the generator's resolution and a label
matrix with NaN where a face has no label for a feature):

- ``from_label_files``: labels given with ``tlgan label`` (JSON Lines, see
  :mod:`tlgan.labels`); the faces are rendered again from their latents;
- ``from_celeba``: a CelebA-format folder (``list_attr_celeba.txt``, optional
  ``list_eval_partition.txt``, the aligned images), cropped to the generator's
  face framing (:data:`CELEBA_CROP`);
- ``from_csv_folder``: ``labels.csv`` with columns ``image,feature1,...`` (1, 0
  or blank) and the images beside it, centre-cropped to a square.

Learners:

- ``fit_probe``: one logistic regression per feature on a frozen embedding
  (faceres' 1024-d descriptor by default), its strength chosen by
  cross-validation; seconds to train, good from a few hundred labels;
- ``fit_cnn``: a small CNN on the 64x64 images, for large labelled sets.

Both report per feature the accuracy (threshold 0.5) and ROC AUC on data the
model did not see: nested cross-validation for small sets, the data set's own
test partition when it has one, else a stratified 20% hold-out. Labels that
are all one class, or have fewer than ``min_per_class`` of one class, are
refused with a message.

``train_extractor`` runs it all and writes a named extractor (see
:mod:`tlgan.extractors.trained`) that every command accepts by name.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import __version__
from .extractors.learned import (Embedder, SmallCNN, TrainedExtractorError, check_name, extractors_dir,
                                 write_extractor)
from .labels import LabelError, check_feature, load_labels
from .errors import TLGANError

PROBE_CS = tuple(10.0 ** np.arange(-4, 1))
MIN_PER_CLASS = 10
NESTED_MAX = 5000  # up to this many labels, metrics come from nested cross-validation
#: CelebA's aligned 178x218 images cropped like the DigiFace DCGAN's faces: a square of side
#: 118/178 of the width whose top-left corner is at (30/178 of the width, 58/218 of the height);
#: it puts the eyes at 45% of the height and 33% of the width apart, as in the generated faces.
CELEBA_CROP = (30 / 178, 58 / 218, 118 / 178)


class TrainError(TLGANError, ValueError):
    """Training data or options that cannot give a sound extractor; the message says what to change."""


def _log(log: Callable[[str], None] | None, text: str) -> None:
    if log:
        log(text)


# ---------------------------------------------------------------- data sets


@dataclass
class Dataset:
    """Images (N, S, S, 3) uint8, labels ``y`` (N, F) in {1, 0, NaN}, optional ``split`` (N,) with
    0 = train, 1 = validation, 2 = test, and where the data came from."""

    images: np.ndarray
    features: list[str]
    y: np.ndarray
    split: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, np.float32).reshape(len(self.images), len(self.features))
        for f in self.features:
            check_feature(f)
        if len(set(self.features)) != len(self.features):
            raise TrainError(f"a feature is named twice in {self.source}: {self.features}")

    def __len__(self) -> int:
        return len(self.images)

    def select(self, features: Sequence[str] | None) -> "Dataset":
        """Only these features (in this order), and only the faces with a label for one of them."""
        if not features:
            return self
        missing = [f for f in features if f not in self.features]
        if missing:
            raise TrainError(f"no labels for {', '.join(missing)} in {self.source}; "
                             f"it has: {', '.join(self.features)}")
        cols = [self.features.index(f) for f in features]
        y = self.y[:, cols]
        keep = np.isfinite(y).any(1)
        return Dataset(self.images[keep], list(features), y[keep],
                       None if self.split is None else self.split[keep], self.source)

    def counts(self) -> dict[str, tuple[int, int]]:
        return {f: (int((self.y[:, j] == 1).sum()), int((self.y[:, j] == 0).sum()))
                for j, f in enumerate(self.features)}


def combine(datasets: Sequence[Dataset]) -> Dataset:
    """Several data sets as one: the union of their features (NaN where a set has no such label).
    The split is kept only if every set has one."""
    if len(datasets) == 1:
        return datasets[0]
    sizes = {d.images.shape[1:] for d in datasets}
    if len(sizes) > 1:
        raise TrainError(f"the data sets have images of different sizes {sorted(sizes)}; resize them to one size")
    features = list(dict.fromkeys(f for d in datasets for f in d.features))
    ys = []
    for d in datasets:
        y = np.full((len(d), len(features)), np.nan, np.float32)
        for j, f in enumerate(d.features):
            y[:, features.index(f)] = d.y[:, j]
        ys.append(y)
    split = (np.concatenate([d.split for d in datasets]) if all(d.split is not None for d in datasets) else None)
    return Dataset(np.concatenate([d.images for d in datasets]), features, np.concatenate(ys), split,
                   " + ".join(d.source for d in datasets))


def from_label_files(paths: str | Path | Sequence[str | Path], features: Sequence[str] | None = None,
                     device: str | None = None, generator=None) -> Dataset:
    """Faces labelled with ``tlgan label``: rendered again from (generator, seed, index)."""
    from .generators import load_generator

    table = load_labels(paths, features)
    if len(table) == 0:
        raise TrainError(f"{paths}: no labels" + (f" for {', '.join(features)}" if features else ""))
    gen = generator if generator is not None else load_generator(table.generator, device)
    images = table.images(gen)
    return Dataset(images, table.features, table.y, None, f"labels {', '.join(map(str, np.atleast_1d(paths)))}")


def _square(im, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    """PIL image -> uint8 (size, size, 3): crop ``box`` (pixels; None = the centred square), resize (Lanczos)."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    if box is None:
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS, box=box), np.uint8)


def celeba_box(width: int, height: int, crop=CELEBA_CROP) -> tuple[float, float, float, float]:
    """The crop of :data:`CELEBA_CROP` in pixels of a ``width`` x ``height`` aligned image (clipped to it)."""
    x0, y0, side = crop[0] * width, crop[1] * height, crop[2] * width
    x0, y0 = max(0.0, min(x0, width - side)), max(0.0, min(y0, height - side))
    return (x0, y0, x0 + min(side, width), y0 + min(side, height))


def _find(folder: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        if (folder / n).exists():
            return folder / n
    return None


def celeba_name(attribute: str) -> str:
    """A CelebA attribute as a tlgan feature name: lower case (``Wearing_Hat`` -> ``wearing_hat``)."""
    return attribute.strip().lower()


def from_celeba(folder: str | Path, features: Sequence[str] | None = None, limit: int | None = None,
                size: int = 64, crop: tuple[float, float, float] | None = CELEBA_CROP, seed: int = 0,
                rename: dict[str, str] | None = None, log: Callable[[str], None] | None = None) -> Dataset:
    """A CelebA-format data set: ``list_attr_celeba.txt`` (line 1 the count, line 2 the attribute names,
    then ``IMAGE v1 v2 ...`` with 1 / -1), optional ``list_eval_partition.txt`` (``IMAGE 0|1|2``), images
    in ``img_align_celeba/`` (or beside the lists). ``features``: attributes to keep (any case; default
    all 40); ``limit``: a random subset of that many images; ``crop``: see :data:`CELEBA_CROP` (None:
    the centred square); ``rename``: {attribute: feature name}, e.g. {"wearing_hat": "hat"}."""
    from PIL import Image

    folder = Path(folder)
    attr = _find(folder, ["list_attr_celeba.txt", "Anno/list_attr_celeba.txt"])
    if attr is None:
        raise TrainError(f"{folder} is not a CelebA-format folder: no list_attr_celeba.txt")
    lines = [ln for ln in attr.read_text().splitlines() if ln.strip()]
    if len(lines) < 3:
        raise TrainError(f"{attr} has no images listed")
    names = [celeba_name(a) for a in lines[1].split()]
    rename = {celeba_name(k): v for k, v in (rename or {}).items()}
    unknown = [k for k in rename if k not in names]
    if unknown:
        raise TrainError(f"cannot rename {', '.join(unknown)}: not an attribute of {attr.name}")
    wanted = [celeba_name(f) for f in features] if features else names
    missing = [f for f in wanted if f not in names]
    if missing:
        raise TrainError(f"{attr.name} has no attribute {', '.join(missing)}; it has: {', '.join(names)}")
    cols = [names.index(f) for f in wanted]
    files, rows = [], []
    for no, ln in enumerate(lines[2:], 3):
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise TrainError(f"{attr} line {no}: expected an image name and {len(names)} values, got {len(parts)} fields")
        try:
            vals = [int(parts[1 + c]) for c in cols]
        except ValueError:
            raise TrainError(f"{attr} line {no}: values must be 1 or -1") from None
        if any(v not in (1, -1, 0) for v in vals):
            raise TrainError(f"{attr} line {no}: values must be 1 or -1 (0 = unknown)")
        files.append(parts[0])
        rows.append([1.0 if v == 1 else 0.0 if v == -1 else np.nan for v in vals])
    y = np.asarray(rows, np.float32)
    split = None
    part = _find(folder, ["list_eval_partition.txt", "Eval/list_eval_partition.txt"])
    if part is not None:
        table = dict(ln.split()[:2] for ln in part.read_text().splitlines() if len(ln.split()) >= 2)
        try:
            split = np.array([int(table[f]) for f in files], np.int64)
        except KeyError as e:
            raise TrainError(f"{part.name} does not list image {e.args[0]}") from None
    order = np.arange(len(files))
    if limit is not None and limit < len(files):
        order = np.sort(np.random.default_rng(seed).choice(len(files), limit, replace=False))
    image_dir = _find(folder, ["img_align_celeba", "Img/img_align_celeba"]) or folder
    images = np.zeros((len(order), size, size, 3), np.uint8)
    t0 = time.perf_counter()
    for k, i in enumerate(order):
        path = image_dir / files[i]
        if not path.exists():
            raise TrainError(f"image {files[i]} listed in {attr.name} is not in {image_dir}")
        with Image.open(path) as im:
            box = celeba_box(*im.size, crop) if crop is not None else None
            images[k] = _square(im, box, size)
        if log and (k + 1) % 5000 == 0:
            _log(log, f"read {k + 1}/{len(order)} images ({(k + 1) / (time.perf_counter() - t0):.0f}/s)")
    feats = [rename.get(f, f) for f in wanted]
    return Dataset(images, feats, y[order], None if split is None else split[order], f"CelebA {folder}")


def from_csv_folder(folder: str | Path, features: Sequence[str] | None = None, size: int = 64,
                    csv_name: str = "labels.csv") -> Dataset:
    """``folder/labels.csv``: header ``image,feature1,feature2,...``, values 1, 0 or blank (unknown);
    image paths relative to ``folder``. Images are centre-cropped to a square and resized to ``size``."""
    from PIL import Image

    folder = Path(folder)
    path = folder / csv_name
    if not path.exists():
        raise TrainError(f"{folder} has no {csv_name} (columns image,feature1,...; values 1, 0 or blank)")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or not rows[0] or rows[0][0].strip().lower() != "image":
        raise TrainError(f"{path}: the first column must be named 'image'")
    header = [h.strip() for h in rows[0][1:]]
    for h in header:
        try:
            check_feature(h)
        except LabelError as e:
            raise TrainError(f"{path}: column {h!r}: {e}") from None
    if not header:
        raise TrainError(f"{path}: no feature columns after 'image'")
    wanted = list(features) if features else header
    missing = [f for f in wanted if f not in header]
    if missing:
        raise TrainError(f"{path} has no column {', '.join(missing)}; it has: {', '.join(header)}")
    cols = [header.index(f) for f in wanted]
    files, ys = [], []
    for no, r in enumerate(rows[1:], 2):
        if not r or not any(c.strip() for c in r):
            continue
        if len(r) != len(header) + 1:
            raise TrainError(f"{path} line {no}: expected {len(header) + 1} fields, got {len(r)}")
        vals = []
        for c in cols:
            v = r[1 + c].strip()
            if v not in ("1", "0", ""):
                raise TrainError(f"{path} line {no}: {header[c]} = {v!r}; use 1, 0 or leave it blank")
            vals.append(float(v) if v else np.nan)
        files.append(r[0].strip())
        ys.append(vals)
    if not files:
        raise TrainError(f"{path} lists no images")
    images = np.zeros((len(files), size, size, 3), np.uint8)
    for k, name in enumerate(files):
        p = folder / name
        if not p.exists():
            raise TrainError(f"image {name} listed in {path.name} is not in {folder}")
        with Image.open(p) as im:
            images[k] = _square(im, None, size)
    return Dataset(images, wanted, np.asarray(ys, np.float32), None, f"CSV {path}")


# ---------------------------------------------------------------- checks and metrics


def class_problems(y: np.ndarray, features: Sequence[str], min_per_class: int = MIN_PER_CLASS) -> list[str]:
    """Why a feature cannot be trained: all one class, or fewer than ``min_per_class`` of a class."""
    out = []
    for j, f in enumerate(features):
        col = y[:, j]
        pos, neg = int((col == 1).sum()), int((col == 0).sum())
        if pos == 0 or neg == 0:
            out.append(f"{f}: all {pos + neg} labels are {'1 (yes)' if pos else '0 (no)'}; a classifier needs "
                       "faces with and without the feature")
        elif min(pos, neg) < min_per_class:
            out.append(f"{f}: only {pos} yes and {neg} no; need at least {min_per_class} of each")
    return out


def check_classes(y: np.ndarray, features: Sequence[str], min_per_class: int = MIN_PER_CLASS) -> None:
    problems = class_problems(y, features, min_per_class)
    if problems:
        raise TrainError("cannot train on these labels:\n  " + "\n  ".join(problems)
                         + "\nLabel more faces (tlgan label), or leave the feature out with --features")


def auc(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, score))


@dataclass
class FeatureResult:
    """Held-out quality of one feature's model."""

    feature: str
    n_pos: int
    n_neg: int
    auc: float
    accuracy: float
    evaluation: str  # how the held-out numbers were measured
    n_eval: int
    regularization: float = float("nan")  # C of the logistic probe (inverse strength)
    base_rate: float = float("nan")  # accuracy of always answering the majority class on the same faces

    def line(self) -> str:
        return (f"{self.feature:16s} {self.n_pos:6d} {self.n_neg:6d}   AUC {self.auc:.3f}   accuracy {self.accuracy:.3f}"
                f" (majority {self.base_rate:.3f})   {self.evaluation}")


# ---------------------------------------------------------------- the logistic probe


def _scaled_logistic(C: float):
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


def _fit_one(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights on the raw (unscaled) inputs: the standardisation is folded into w and b."""
    model = _scaled_logistic(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    scaler, lr = model[0], model[-1]
    w = lr.coef_.ravel() / scaler.scale_
    b = float(lr.intercept_[0] - (lr.coef_.ravel() * scaler.mean_ / scaler.scale_).sum())
    return w, b


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(t, -60, 60)))


def _result(feature: str, y_all: np.ndarray, truth: np.ndarray, p: np.ndarray, how: str, c: float) -> FeatureResult:
    pos = float(truth.mean())
    return FeatureResult(feature, int((y_all == 1).sum()), int((y_all == 0).sum()), auc(truth, p),
                         float(((p > 0.5) == truth.astype(bool)).mean()), how, int(len(truth)), c, max(pos, 1 - pos))


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
            w, b = _fit_one(xf[tr], yf[tr], c)
            res = _result(f, yf, yf[te], _sigmoid(xf[te] @ w + b), "test partition", c)
        elif len(yf) <= NESTED_MAX:
            k = max(2, min(folds, int(min((yf == 1).sum(), (yf == 0).sum()))))
            p = np.zeros(len(yf))
            for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(xf, yf):
                c_in = choose_c(xf[tr], yf[tr], folds, cs, seed)
                w, b = _fit_one(xf[tr], yf[tr], c_in)
                p[te] = _sigmoid(xf[te] @ w + b)
            c = choose_c(xf, yf, folds, cs, seed)
            res = _result(f, yf, yf, p, f"{k}-fold nested cross-validation", c)
        else:
            tr, te = train_test_split(np.arange(len(yf)), test_size=0.2, stratify=yf, random_state=seed)
            c = choose_c(xf[tr], yf[tr], folds, cs, seed)
            w, b = _fit_one(xf[tr], yf[tr], c)
            res = _result(f, yf, yf[te], _sigmoid(xf[te] @ w + b), "stratified 20% hold-out", c)
        weight[j], bias[j] = _fit_one(xf, yf, res.regularization)
        results.append(res)
        _log(log, res.line())
    return ProbeFit(list(features), weight.astype(np.float32), bias.astype(np.float32), results)


def suggest_uncertain(x_labelled: np.ndarray, y: np.ndarray, x_pool: np.ndarray, k: int,
                      min_per_class: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uncertainty sampling: the ``k`` pool rows where a probe fitted on the labelled rows is least sure.

    Returns (rows of ``x_pool`` ordered from least sure, their P(yes)). Raises
    :class:`TrainError` until there are ``min_per_class`` labels of each class.
    """
    y = np.asarray(y).astype(int)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if min(pos, neg) < min_per_class:
        raise TrainError(f"suggestions start at {min_per_class} labels of each class; there are {pos} yes and "
                         f"{neg} no")
    c = choose_c(x_labelled, y, folds=3, cs=PROBE_CS[::2], seed=seed)
    w, b = _fit_one(np.asarray(x_labelled, np.float64), y, c)
    p = _sigmoid(np.asarray(x_pool, np.float64) @ w + b)
    order = np.argsort(np.abs(p - 0.5), kind="stable")[:k]
    return order, p[order]


# ---------------------------------------------------------------- the small CNN


def _random_split(n: int, seed: int, val: float = 0.1, test: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    split = np.zeros(n, np.int64)
    order = rng.permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * val))
    split[order[:n_test]] = 2
    split[order[n_test:n_test + n_val]] = 1
    return split


@dataclass
class CNNFit:
    features: list[str]
    model: SmallCNN
    results: list[FeatureResult]
    history: list[dict] = field(default_factory=list)


def fit_cnn(images: np.ndarray, y: np.ndarray, features: Sequence[str], split: np.ndarray | None = None,
            epochs: int = 15, batch_size: int = 128, lr: float = 2e-3, width: int = 32, size: int = 64,
            min_per_class: int = MIN_PER_CLASS, seed: int = 0, device: str | None = None,
            log: Callable[[str], None] | None = None) -> CNNFit:
    """A :class:`SmallCNN` trained with a masked binary cross-entropy (unlabelled entries count for nothing).

    Without a ``split``, 80% train / 10% validation / 10% test at random. The
    epoch with the lowest validation loss is kept; the test rows give the
    held-out numbers. Horizontal flips augment the training images.
    """
    from .devices import resolve_device

    dev = resolve_device(device)
    y = np.asarray(y, np.float32).reshape(len(images), len(features))
    check_classes(y, features, min_per_class)
    split = _random_split(len(images), seed) if split is None else np.asarray(split)
    if not (split == 0).any():
        raise TrainError("no training rows in the split")
    if not (split == 1).any():  # no validation rows: take 10% of the training rows
        tr = np.flatnonzero(split == 0)
        split = split.copy()
        split[np.random.default_rng(seed).choice(tr, max(1, len(tr) // 10), replace=False)] = 1
    torch.manual_seed(seed)
    model = SmallCNN(len(features), width, size).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(1, epochs * math.ceil((split == 0).sum() / batch_size)))
    x_all = torch.from_numpy(np.ascontiguousarray(images))
    y_all = torch.from_numpy(y)

    def batches(rows: np.ndarray, shuffle: bool, gen: np.random.Generator | None = None):
        rows = gen.permutation(rows) if shuffle else rows
        for i in range(0, len(rows), batch_size):
            r = torch.from_numpy(rows[i:i + batch_size])
            yield model.prepare(x_all[r].to(dev)), y_all[r].to(dev)

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = torch.isfinite(target)
        t = torch.where(known, target, torch.zeros_like(target))
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="none")
        return (per * known).sum() / known.sum().clamp(min=1)

    @torch.no_grad()
    def predict(rows: np.ndarray) -> np.ndarray:
        model.eval()
        out = [torch.sigmoid(model(x)).cpu() for x, _ in batches(rows, False)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(features)), np.float32)

    rng = np.random.default_rng(seed)
    tr, va, te = (np.flatnonzero(split == s) for s in (0, 1, 2))
    best, best_state, history = float("inf"), None, []
    for epoch in range(epochs):
        model.train()
        t0, total, seen = time.perf_counter(), 0.0, 0
        for x, t in batches(tr, True, rng):
            flip = torch.rand(len(x), device=dev) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + float(loss.detach()) * len(x), seen + len(x)
        pv = torch.from_numpy(predict(va)).clamp(1e-6, 1 - 1e-6)
        val_loss = float(loss_fn(torch.log(pv / (1 - pv)), y_all[torch.from_numpy(va)]))
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        _log(log, f"epoch {epoch + 1}/{epochs}: train loss {total / max(seen, 1):.4f}, validation loss {val_loss:.4f}")
        if val_loss < best:
            best, best_state = val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    results = []
    eval_rows = te if len(te) else va
    how = "test rows" if len(te) else "validation rows (no test rows)"
    p = predict(eval_rows)
    for j, f in enumerate(features):
        known = np.isfinite(y[eval_rows, j])
        truth = y[eval_rows, j][known]
        r = _result(f, y[:, j], truth, p[known, j], how, float("nan")) if len(truth) else \
            FeatureResult(f, int((y[:, j] == 1).sum()), int((y[:, j] == 0).sum()), float("nan"), float("nan"),
                          how, 0)
        results.append(r)
        _log(log, r.line())
    return CNNFit(list(features), model.cpu(), results, history)


# ---------------------------------------------------------------- the whole job


def embed_images(images: np.ndarray, embedder: Embedder, batch: int = 256,
                 log: Callable[[str], None] | None = None) -> np.ndarray:
    out, t0 = [], time.perf_counter()
    for i in range(0, len(images), batch):
        out.append(embedder(torch.from_numpy(np.ascontiguousarray(images[i:i + batch]))))
        if log and len(images) > batch and (i // batch) % 8 == 7:
            done = i + len(out[-1])
            _log(log, f"{embedder.name}: {done}/{len(images)} faces ({done / (time.perf_counter() - t0):.0f}/s)")
    return np.concatenate(out) if out else np.zeros((0, embedder.dim or 0), np.float32)


@dataclass
class TrainResult:
    name: str
    path: Path
    kind: str
    features: list[str]
    results: list[FeatureResult]
    n: int
    seconds: float


def _describe(feature: str, kind: str, probe_input: str, counts: tuple[int, int], source: str) -> str:
    what = (f"a logistic probe on the {'faceres 1024-d descriptor' if probe_input == 'faceres' else '16x16 pixels'}"
            if kind == "probe" else "a small CNN on the 64x64 image")
    return f"P({feature}) from {what}, trained on {counts[0]} yes / {counts[1]} no labels ({source})"


def train_extractor(name: str, data: Dataset, learner: str = "probe", probe_input: str = "faceres",
                    out: str | Path | None = None, overwrite: bool = False, folds: int = 5,
                    min_per_class: int = MIN_PER_CLASS, epochs: int = 15, batch_size: int = 128, seed: int = 0,
                    device: str | None = None, log: Callable[[str], None] | None = print) -> TrainResult:
    """Train ``learner`` ("probe" or "cnn") on ``data`` and write the extractor ``name``.

    ``out``: the folder to write (default ``$TLGAN_HOME/extractors/NAME``, which
    makes it available by name at once). Refuses labels that are all one class
    or have fewer than ``min_per_class`` of a class, before any slow work.
    """
    from .extractors import EXTRACTORS
    from .plugins import load_plugins

    t0 = time.perf_counter()
    check_name(name)
    load_plugins()
    if out is None and name in EXTRACTORS:
        from .extractors.trained import trained_names

        if name not in trained_names():
            raise TrainError(f"{name!r} is the name of a built-in extractor; choose another name")
    if learner not in ("probe", "cnn"):
        raise TrainError(f"unknown learner {learner!r}; choose probe or cnn")
    folder = Path(out) if out is not None else extractors_dir() / name
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise TrainError(f"extractor {name!r} exists already at {folder}; pass --force to replace it")
    check_classes(data.y, data.features, min_per_class)
    _log(log, f"{len(data)} faces from {data.source}; features: "
         + ", ".join(f"{f} ({p} yes / {n} no)" for f, (p, n) in data.counts().items()))
    counts = data.counts()
    config = {"name": name, "kind": learner, "tlgan_version": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "training": {"source": data.source, "n": len(data), "counts": counts, "seed": seed,
                           "min_per_class": min_per_class}}
    if learner == "probe":
        embedder = Embedder(probe_input, device)
        _log(log, f"embedding {len(data)} faces with {probe_input} ...")
        x = embed_images(data.images, embedder, log=log)
        fit = fit_probe(x, data.y, data.features, data.split, folds, min_per_class=min_per_class, seed=seed, log=log)
        tensors = {"weight": fit.weight, "bias": fit.bias}
        config["input"] = probe_input
        results = fit.results
        config["training"]["folds"] = folds
    else:
        fit = fit_cnn(data.images, data.y, data.features, data.split, epochs, batch_size, seed=seed,
                      min_per_class=min_per_class, device=device, log=log)
        tensors = {k: v.detach().cpu().numpy() for k, v in fit.model.state_dict().items()}
        config["input"] = "images"
        config["architecture"] = {"width": 32, "size": fit.model.size}
        config["training"].update(epochs=epochs, batch_size=batch_size, history=fit.history)
        results = fit.results
    config["features"] = [{"name": f, "kind": "binary",
                           "description": _describe(f, learner, probe_input, counts[f], data.source)}
                          for f in data.features]
    config["metrics"] = {r.feature: {k: v for k, v in asdict(r).items() if k != "feature"} for r in results}
    try:
        path = write_extractor(folder, config, tensors, overwrite=overwrite)
    except TrainedExtractorError as e:
        raise TrainError(str(e)) from e
    if out is None:
        from .extractors.trained import register_trained

        register_trained(name)
    return TrainResult(name, path, learner, list(data.features), results, len(data), time.perf_counter() - t0)
