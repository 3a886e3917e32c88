"""Hand labels of generated faces: a plain JSON Lines file, appended to as labels are given.

One line per label given::

    {"generator": "digiface-dcgan", "seed": 2024, "index": 17, "feature": "eyeglasses", "label": 1,
     "time": "2025-01-31T12:00:00.123Z"}

- ``(generator, seed, index)`` names one latent: row ``index`` of
  ``Generator.sample(n, seed)`` for any ``n > index`` (the draw is prefix-stable),
  which is also row ``index`` of a run folder sampled with that seed;
- ``label`` is ``1`` (the face shows the feature), ``0`` (it does not) or
  ``null`` (skipped: no label, which also withdraws an earlier one);
- a later line for the same (generator, seed, index, feature) overrides earlier ones;
- one file holds the labels of one generator; ``time`` is when it was given (UTC);
  other keys are kept in the file and ignored.

Every label is appended and flushed to disk the moment it is given, so a crash
or a closed browser tab loses nothing; a half-written last line (a crash
mid-write) is ignored with a warning when the file is read again.

Pure logic, no GUI: :class:`LabelStore` (load, validate, append, resolve the
latest label), :class:`LabelTable` (the labels as arrays), face sources that
show a run's cached images or fresh samples by index, and contact sheets.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import TLGANError

FEATURE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
REQUIRED = ("generator", "seed", "index", "feature", "label")
Key = tuple[str, int, int, str]


class LabelError(TLGANError, ValueError):
    """A label or label file that cannot be used; the message says which line and why."""


def check_feature(name: str) -> str:
    """A feature name: lower-case letters, digits and ``_`` (e.g. ``eyeglasses``, ``5_o_clock_shadow``)."""
    if not isinstance(name, str) or not FEATURE_PATTERN.match(name):
        raise LabelError(f"feature name {name!r} is not valid: use lower-case letters, digits and _ "
                         "(e.g. eyeglasses, blond_hair)")
    return name


def check_value(value) -> int | None:
    """1, 0 or None (skip); also accepts True/False and the strings yes/no/skip. Anything else is refused."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("skip", "none", "null", "")):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "yes", "y", "true"):
            return 1
        if v in ("0", "no", "n", "false"):
            return 0
    elif isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return int(value)
    elif isinstance(value, (float, np.floating)) and float(value) in (0.0, 1.0):
        return int(value)
    raise LabelError(f"label {value!r} is not valid: use 1 (yes), 0 (no) or null (skip)")


def _utc_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class Label:
    """One line of a label file."""

    generator: str
    seed: int
    index: int
    feature: str
    label: int | None
    time: str = ""

    @property
    def key(self) -> Key:
        return (self.generator, self.seed, self.index, self.feature)

    def to_json(self) -> str:
        return json.dumps({"generator": self.generator, "seed": self.seed, "index": self.index,
                           "feature": self.feature, "label": self.label, "time": self.time})

    @classmethod
    def make(cls, generator: str, seed, index, feature: str, label, when: str | None = None) -> "Label":
        """A validated label; raises :class:`LabelError` on anything that does not fit the format."""
        if not isinstance(generator, str) or not generator.strip():
            raise LabelError(f"generator name {generator!r} is not valid")
        for name, v in (("seed", seed), ("index", index)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
                raise LabelError(f"{name} {v!r} is not valid: use a whole number >= 0")
        if int(seed) >= 2**63:
            raise LabelError(f"seed {seed} is too large")
        return cls(generator, int(seed), int(index), check_feature(feature), check_value(label),
                   when if when is not None else _utc_now())


@dataclass
class LabelTable:
    """Resolved labels as arrays: row r is the latent (``seeds[r]``, ``indices[r]``) of ``generator``;
    ``y[r, j]`` is its label for ``features[j]`` (1, 0, or NaN where it has none)."""

    generator: str
    features: list[str]
    seeds: np.ndarray
    indices: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)

    def column(self, feature: str) -> np.ndarray:
        if feature not in self.features:
            raise LabelError(f"no labels for feature {feature!r}; the labels have: {', '.join(self.features) or 'none'}")
        return self.y[:, self.features.index(feature)]

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per feature: (number of 1s, number of 0s)."""
        return {f: (int((self.y[:, j] == 1).sum()), int((self.y[:, j] == 0).sum()))
                for j, f in enumerate(self.features)}

    def latents(self, generator) -> np.ndarray:
        """(N, D) latents of the rows, drawn again from their seeds by ``generator``."""
        if generator.name != self.generator:
            raise LabelError(f"these labels are of generator {self.generator!r}, not {generator.name!r}")
        z = np.zeros((len(self), generator.latent_dim), np.float32)
        for s in np.unique(self.seeds):
            rows = np.flatnonzero(self.seeds == s)
            z[rows] = generator.sample(int(self.indices[rows].max()) + 1, int(s))[self.indices[rows]]
        return z

    def images(self, generator, batch_size: int | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) images of the rows, rendered again from their latents."""
        import torch

        with torch.inference_mode():
            return generator.render(self.latents(generator), batch_size).cpu().numpy()


class LabelStore:
    """A label file (JSON Lines), read once and appended to label by label.

    ``LabelStore(path)`` reads what is there (a missing file is an empty store,
    created on the first label); with ``generator`` given it refuses a file of
    another generator. ``add`` validates a label, appends its line and flushes
    it to disk before returning.
    """

    def __init__(self, path: str | Path, generator: str | None = None) -> None:
        self.path = Path(path)
        self.generator: str | None = None
        self.records: list[Label] = []
        self.latest: dict[Key, int | None] = {}
        self._lock = threading.Lock()
        self._truncate_to: int | None = None
        if self.path.exists():
            self._read()
        if generator and self.generator and self.generator != generator:
            raise LabelError(f"{self.path} holds labels of generator {self.generator!r}, "
                             f"not {generator!r}: use another label file for {generator!r}")
        self.generator = self.generator or generator

    def _read(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        complete = text.endswith("\n") or not text
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            last = no == len(lines) and not complete
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise LabelError("a line must be a JSON object")
                missing = [k for k in REQUIRED if k not in doc]
                if missing:
                    raise LabelError(f"missing {', '.join(missing)}")
                rec = Label.make(doc["generator"], doc["seed"], doc["index"], doc["feature"], doc["label"],
                                 str(doc.get("time", "")))
            except (json.JSONDecodeError, LabelError) as e:
                if last:  # a crash while the last line was being written: drop that line only
                    warnings.warn(f"{self.path}: ignoring the unfinished last line {no} ({e}); it is removed "
                                  "when the next label is saved", stacklevel=3)
                    self._truncate_to = len(text[:len(text) - len(line)].encode("utf-8"))
                    break
                raise LabelError(f"{self.path} line {no}: {e}") from None
            self._remember(rec, where=f"{self.path} line {no}")

    def _remember(self, rec: Label, where: str = "") -> None:
        if self.generator is None:
            self.generator = rec.generator
        if rec.generator != self.generator:
            raise LabelError(f"{where or self.path}: label for generator {rec.generator!r} in a file of "
                             f"generator {self.generator!r}; one label file holds one generator's labels")
        self.records.append(rec)
        self.latest[rec.key] = rec.label

    def add(self, seed: int, index: int, feature: str, label, generator: str | None = None) -> Label:
        """Validate one label, append it to the file and flush it to disk; returns the line written."""
        gen = generator or self.generator
        if gen is None:
            raise LabelError("say which generator the faces come from (the label file is new)")
        rec = Label.make(gen, seed, index, feature, label)
        if self.generator is not None and rec.generator != self.generator:
            raise LabelError(f"{self.path} holds labels of generator {self.generator!r}, not {rec.generator!r}")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._truncate_to is not None:  # drop the unfinished line a crash left behind
                with open(self.path, "r+b") as fh:
                    fh.truncate(self._truncate_to)
                self._truncate_to = None
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(rec.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._remember(rec)
        return rec

    def get(self, seed: int, index: int, feature: str) -> int | None:
        return self.latest.get((self.generator or "", int(seed), int(index), feature))

    def features(self) -> list[str]:
        """Features with at least one label (in the order they first appear)."""
        seen: dict[str, None] = {}
        for (_, _, _, f), v in self.latest.items():
            if v is not None:
                seen.setdefault(f, None)
        return list(seen)

    def labelled(self, feature: str, seed: int | None = None) -> dict[tuple[int, int], int]:
        """{(seed, index): 1 or 0} for one feature (skips left out), optionally of one seed."""
        return {(s, i): v for (_, s, i, f), v in self.latest.items()
                if f == feature and v is not None and (seed is None or s == seed)}

    def counts(self, feature: str) -> tuple[int, int]:
        """(number of 1s, number of 0s) for one feature."""
        values = list(self.labelled(feature).values())
        return values.count(1), values.count(0)

    def table(self, features: Sequence[str] | None = None) -> LabelTable:
        """The latest labels as a :class:`LabelTable` (rows sorted by seed, index)."""
        feats = list(features) if features else self.features()
        for f in feats:
            check_feature(f)
        rows = sorted({(s, i) for (_, s, i, f), v in self.latest.items() if f in feats and v is not None})
        y = np.full((len(rows), len(feats)), np.nan, np.float32)
        where = {r: k for k, r in enumerate(rows)}
        for (_, s, i, f), v in self.latest.items():
            if v is not None and f in feats:
                y[where[(s, i)], feats.index(f)] = v
        seeds = np.array([r[0] for r in rows], np.int64)
        indices = np.array([r[1] for r in rows], np.int64)
        return LabelTable(self.generator or "", feats, seeds, indices, y)


def load_labels(paths: str | Path | Sequence[str | Path], features: Sequence[str] | None = None) -> LabelTable:
    """Read one or more label files (of one generator) into one table; later files override earlier ones."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise LabelError("no label file given")
    merged: LabelStore | None = None
    for p in paths:
        if not Path(p).exists():
            raise LabelError(f"label file {p} does not exist; make one with `tlgan label`")
        store = LabelStore(p, merged.generator if merged else None)
        if merged is None:
            merged = store
        else:
            for rec in store.records:
                merged._remember(rec, str(p))
    have = merged.features()
    missing = [f for f in features or () if f not in have]
    if missing:
        raise LabelError(f"no labels for feature {', '.join(map(repr, missing))} in {', '.join(map(str, paths))}; "
                         f"it has labels for: {', '.join(have) or 'nothing'}")
    return merged.table(features)


# ---------------------------------------------------------------- where the faces come from


@dataclass
class FaceSource:
    """Faces to label, by index: fresh samples of a generator from a seed (``Generator.sample``)."""

    generator_name: str
    seed: int
    n: int | None = None  # how many indices exist (None: unlimited)
    generator: object = None
    _z: np.ndarray | None = field(default=None, repr=False)
    #: indices that cannot be labelled (left off pages and suggestions); none for fresh samples
    excluded: set[int] = field(default_factory=set)

    @property
    def resolution(self) -> int:
        return int(self.generator.resolution)

    def describe(self) -> str:
        return f"fresh samples of {self.generator_name}, seed {self.seed}"

    def check(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or (self.n is not None and idx.max() >= self.n)):
            raise LabelError(f"face index out of range 0..{(self.n or 0) - 1 if self.n is not None else 'inf'}")
        return idx

    def latents(self, indices: Sequence[int]) -> np.ndarray:
        idx = self.check(indices)
        need = int(idx.max()) + 1 if len(idx) else 0
        if self._z is None or len(self._z) < need:
            grow = max(need, 2 * len(self._z) if self._z is not None else 256)
            self._z = self.generator.sample(grow, self.seed).astype(np.float32)
        return self._z[idx]

    def images(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (k, H, W, 3) faces at ``indices``."""
        import torch

        idx = self.check(indices)
        if not len(idx):
            return np.zeros((0, self.resolution, self.resolution, 3), np.uint8)
        with torch.inference_mode():
            return self.generator.render(self.latents(idx)).cpu().numpy()


class RunSource(FaceSource):
    """Faces to label from a run folder's cached images (``tlgan sample --save-images``): nothing is rendered.

    The run's row i is latent (run seed, i) of the run's generator. A run sampled
    before draws were prefix-stable may hold a last row that differs from that
    latent; such rows are left out (``excluded``).
    """

    def __init__(self, run) -> None:
        from .sample import open_run

        run = open_run(run) if isinstance(run, (str, os.PathLike)) else run
        self.run = run
        self._images = run.images
        n = run.done("images")
        super().__init__(run.generator, int(run.info["seed"]), n)
        z = run.noise[:n]
        canon = canonical_latents(len(z), z.shape[1], self.seed) if len(z) else z
        self.excluded = set(np.flatnonzero(~(z == canon).all(1)).tolist()) if len(z) else set()
        self._z = z
        self._res = int(run.info["resolution"])

    @property
    def resolution(self) -> int:
        return self._res

    def describe(self) -> str:
        return f"cached images of run {self.run.path} ({self.generator_name}, seed {self.seed}, {self.n} faces)"

    def check(self, indices: Sequence[int]) -> np.ndarray:
        idx = super().check(indices)
        bad = [int(i) for i in idx if int(i) in self.excluded]
        if bad:
            raise LabelError(f"run rows {bad} do not hold latent (seed {self.seed}, index) of the generator "
                             "(the run predates prefix-stable draws); they cannot be labelled by index")
        return idx

    def latents(self, indices: Sequence[int]) -> np.ndarray:
        return self._z[self.check(indices)]

    def images(self, indices: Sequence[int]) -> np.ndarray:
        idx = self.check(indices)
        if not len(idx):
            return np.zeros((0, self._res, self._res, 3), np.uint8)
        order = np.argsort(idx)
        got = np.asarray(self._images.oindex[idx[order]])
        out = np.empty_like(got)
        out[order] = got
        return out


def canonical_latents(n: int, dim: int, seed: int) -> np.ndarray:
    """The noise z that ``Generator.sample_z(n, seed)`` draws for a ``dim``-d z (no model needed)."""
    from .generators import standard_normal

    return standard_normal(n, dim, seed)


# ---------------------------------------------------------------- contact sheets


def contact_sheet(images: np.ndarray, numbers: Sequence[int], cols: int = 8, cell: int = 96,
                  marks: Sequence[str] | None = None, title: str = ""):
    """A PIL image: the faces in a grid, upscaled to ``cell`` px, each with its number (and a mark) drawn
    on a white strip under it, for labelling by eye."""
    from PIL import Image, ImageDraw, ImageFont

    images = np.asarray(images)
    n = len(images)
    rows = max(1, -(-n // cols))
    strip, gap, head = 18, 4, (24 if title else 0)
    sheet = Image.new("RGB", (cols * (cell + gap) + gap, head + rows * (cell + strip + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    if title:
        draw.text((gap, 4), title, fill="black", font=font)
    for k in range(n):
        r, c = divmod(k, cols)
        x, y = gap + c * (cell + gap), head + gap + r * (cell + strip + gap)
        sheet.paste(Image.fromarray(images[k]).resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
        text = f"{numbers[k]}" + (f" {marks[k]}" if marks and marks[k] else "")
        draw.text((x + cell // 2, y + cell + strip // 2), text, fill="black", font=font, anchor="mm")
    return sheet


# ---------------------------------------------------------------- a labelling session (no GUI)


SUGGEST_MIN_PER_CLASS = 20
SUGGEST_POOL = 384


@dataclass
class Page:
    """The faces on screen: their indices and, for the current feature, their labels (1, 0 or None)."""

    indices: list[int]
    labels: list[int | None]
    title: str
    number: int | None = None  # page number, or None for a page of suggestions


class Labeller:
    """What the labelling page does, without the page: pages of faces, labels, resuming, suggestions.

    ``source``: a :class:`FaceSource` or :class:`RunSource`; ``store``: the
    label file; ``embedder``: what the uncertainty probe reads (``faceres`` or
    ``pixels``, see :class:`tlgan.extractors.trained.Embedder`).
    """

    def __init__(self, source: FaceSource, store: LabelStore, page_size: int = 24, embedder: str = "faceres",
                 device: str | None = None) -> None:
        if store.generator is not None and store.generator != source.generator_name:
            raise LabelError(f"{store.path} holds labels of generator {store.generator!r}, but the faces come "
                             f"from {source.generator_name!r}: use another label file")
        if page_size < 1:
            raise LabelError("a page holds at least one face")
        self.source, self.store, self.page_size = source, store, int(page_size)
        self.embedder_name, self.device = embedder, device
        self._embedder = None
        self._embedded: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def pages(self) -> int | None:
        return None if self.source.n is None else max(1, -(-self.source.n // self.page_size))

    def label_of(self, feature: str, index: int) -> int | None:
        return self.store.get(self.source.seed, index, feature)

    def page(self, number: int, feature: str) -> Page:
        """Page ``number`` (0-based) of consecutive faces."""
        number = int(number)
        if number < 0 or (self.pages is not None and number >= self.pages):
            last = f"0..{self.pages - 1}" if self.pages is not None else ">= 0"
            raise LabelError(f"page {number} does not exist (pages {last})")
        lo = number * self.page_size
        hi = lo + self.page_size if self.source.n is None else min(lo + self.page_size, self.source.n)
        idx = [i for i in range(lo, hi) if i not in self.source.excluded]
        return Page(idx, [self.label_of(feature, i) for i in idx] if feature else [None] * len(idx),
                    f"page {number + 1}" + (f" of {self.pages}" if self.pages else "")
                    + f": faces {lo}..{hi - 1}", number)

    def resume_page(self, feature: str) -> int:
        """The first page with a face not yet labelled for ``feature`` (where to pick up)."""
        done = {i for (s, i) in self.store.labelled(feature, self.source.seed)} if feature else set()
        i = 0
        limit = self.source.n if self.source.n is not None else len(done) + 1
        while i < limit and i in done:
            i += 1
        page = i // self.page_size
        return min(page, self.pages - 1) if self.pages is not None else page

    def set_label(self, feature: str, index: int, value) -> Label:
        """Save one label now (validated: feature name, value, index within the source)."""
        check_feature(feature)
        self.source.check([index])
        return self.store.add(self.source.seed, int(index), feature, value, self.source.generator_name)

    def counts(self, feature: str) -> tuple[int, int]:
        """(yes, no) for ``feature`` among this source's faces."""
        if not feature:
            return 0, 0
        values = list(self.store.labelled(feature, self.source.seed).values())
        return values.count(1), values.count(0)

    def embed(self, indices: Sequence[int]) -> np.ndarray:
        """Embeddings of faces (computed once per face and kept)."""
        from .extractors.learned import Embedder

        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.embedder_name, self.device)
            todo = [i for i in dict.fromkeys(int(i) for i in indices) if i not in self._embedded]
            for lo in range(0, len(todo), 64):
                part = todo[lo:lo + 64]
                for i, v in zip(part, self._embedder(self.source.images(part))):
                    self._embedded[i] = v
            return np.stack([self._embedded[int(i)] for i in indices]) if len(indices) else np.zeros((0, 0))

    def suggest(self, feature: str, k: int | None = None, pool: int = SUGGEST_POOL,
                min_per_class: int = SUGGEST_MIN_PER_CLASS, seed: int = 0) -> tuple[Page, str]:
        """The ``k`` unlabelled faces a probe on the labels so far is least sure about (uncertainty sampling).

        The candidates are ``pool`` unlabelled faces drawn at random from the
        first (labelled + 2 x pool) indices. Raises :class:`LabelError` until
        there are ``min_per_class`` labels of each class.
        """
        from .train import TrainError, suggest_uncertain

        check_feature(feature)
        k = k or self.page_size
        done = self.store.labelled(feature, self.source.seed)
        yes = sum(v == 1 for v in done.values())
        if min(yes, len(done) - yes) < min_per_class:
            raise LabelError(f"suggestions start at {min_per_class} labels of each class for {feature!r}; "
                             f"there are {yes} yes and {len(done) - yes} no so far")
        labelled = sorted(i for (_, i) in done)
        excluded = self.source.excluded
        span = max(labelled) + 1 + 2 * pool
        if self.source.n is not None:
            span = min(span, self.source.n)
        free = np.array([i for i in range(span) if (self.source.seed, i) not in done and i not in excluded], np.int64)
        if not len(free):
            raise LabelError(f"every face is labelled for {feature!r}")
        rng = np.random.default_rng(seed + len(done))
        cand = np.sort(rng.choice(free, min(pool, len(free)), replace=False))
        x_lab = self.embed(labelled)
        y_lab = np.array([done[(self.source.seed, i)] for i in labelled])
        try:
            order, p = suggest_uncertain(x_lab, y_lab, self.embed(cand.tolist()), k, min_per_class, seed)
        except TrainError as e:
            raise LabelError(str(e)) from None
        idx = [int(i) for i in cand[order]]
        msg = (f"{len(idx)} faces a probe on {yes} yes / {len(done) - yes} no labels is least sure about "
               f"(P({feature}) {p.min():.2f}..{p.max():.2f}, from {len(cand)} unlabelled candidates)")
        return Page(idx, [None] * len(idx), f"suggested for {feature}", None), msg

    def sheet(self, indices: Sequence[int], feature: str = "", cols: int = 8, cell: int = 96):
        """A contact sheet (PIL image) of faces with their numbers (and their labels for ``feature``)."""
        marks = None
        if feature:
            marks = [{1: "yes", 0: "no"}.get(self.label_of(feature, i), "") for i in indices]
        return contact_sheet(self.source.images(list(indices)), list(indices), cols, cell, marks)


# ---------------------------------------------------------------- an axis straight from the labelled latents


def fit_label_axes(table: LabelTable, generator, method: str = "logistic", seed: int = 0, source: str = "",
                   extractor: str | None = None):
    """Axes fitted on the labelled latents themselves: a logistic regression of each feature's 1/0 labels
    on z (no extractor in between). Returns :class:`tlgan.axes.Axes` (features with too few labels are
    listed in ``skipped``); ``extractor``: the extractor that measures these features on edited faces
    (for ``tlgan evaluate`` and the explorer's readouts), if any."""
    from .extractors import Feature
    from .fit import fit_axes

    if len(table) == 0:
        raise LabelError("no labels to fit")
    z = table.latents(generator)
    feats = [Feature(f, "binary", f"hand labels of {f} ({source or 'label file'})") for f in table.features]
    seeds = sorted({int(s) for s in table.seeds})
    meta = {"generator": generator.name, "latent_space": getattr(generator, "latent_space", "z"),
            "labels": source, "label_seeds": seeds, "seed": seeds[0],
            "label_counts": {f: list(c) for f, c in table.counts().items()}}
    if extractor:
        meta["extractor"] = extractor
    return fit_axes(z, table.y, feats, method=method, seed=seed, meta=meta)
