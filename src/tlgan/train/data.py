"""Labelled faces to train on, from label files, a CelebA folder or a CSV folder (see :mod:`tlgan.train`)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..formats import pick_columns
from ..labels.store import LabelError, check_feature, load_labels
from .metrics import TrainError, _log

#: CelebA's aligned 178x218 images cropped like the DigiFace DCGAN's faces: a square of side
#: 118/178 of the width whose top-left corner is at (30/178 of the width, 58/218 of the height);
#: it puts the eyes at 45% of the height and 33% of the width apart, as in the generated faces.
CELEBA_CROP = (30 / 178, 58 / 218, 118 / 178)


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

    def select(self, features: Sequence[str] | None) -> Dataset:
        """Only these features (in this order), and only the faces with a label for one of them."""
        if not features:
            return self
        cols = pick_columns(features, self.features, lambda missing, have: TrainError(
            f"no labels for {missing} in {self.source}; it has: {have}"))
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
    from ..generators import load_generator

    table = load_labels(paths, features)
    if len(table) == 0:
        raise TrainError(f"{paths}: no labels" + (f" for {', '.join(features)}" if features else ""))
    gen = generator if generator is not None else load_generator(table.generator, device)
    images = table.images(gen)
    names = [paths] if isinstance(paths, (str, Path)) else paths
    return Dataset(images, table.features, table.y, None, f"labels {', '.join(map(str, names))}")


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
    cols = pick_columns(wanted, names, lambda missing, have: TrainError(
        f"{attr.name} has no attribute {missing}; it has: {have}"))
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
    cols = pick_columns(wanted, header, lambda missing, have: TrainError(f"{path} has no column {missing}; "
                                                                          f"it has: {have}"))
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
