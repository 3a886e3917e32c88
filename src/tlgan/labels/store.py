"""The label file: validate, append and flush each label, read back the latest label per face and feature."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bounds import MAX_SEED
from ..errors import TLGANError

FEATURE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
REQUIRED = ("generator", "seed", "index", "feature", "label")
#: The largest face index a label names: labelled latents are drawn again from their seeds, which draws every
#: row up to the index (about z_dim x 4 bytes each, 2 GB at 512 dimensions), so larger ones are refused.
MAX_INDEX = 1_000_000
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
    elif ((isinstance(value, (int, np.integer)) and int(value) in (0, 1))
          or (isinstance(value, (float, np.floating)) and float(value) in (0.0, 1.0))):
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
    def make(cls, generator: str, seed, index, feature: str, label, when: str | None = None) -> Label:
        """A validated label; raises :class:`LabelError` on anything that does not fit the format."""
        if not isinstance(generator, str) or not generator.strip():
            raise LabelError(f"generator name {generator!r} is not valid")
        for name, v in (("seed", seed), ("index", index)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
                raise LabelError(f"{name} {v!r} is not valid: use a whole number >= 0")
        if int(seed) > MAX_SEED:
            raise LabelError(f"seed {seed} is too large")
        if int(index) > MAX_INDEX:
            raise LabelError(f"index {index} is too large: labelled faces have indices 0..{MAX_INDEX:,}")
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
            z[rows] = generator.sample_at(self.indices[rows], int(s))
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
            except (json.JSONDecodeError, RecursionError, LabelError) as e:
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
    assert merged is not None  # paths is not empty
    have = merged.features()
    missing = [f for f in features or () if f not in have]
    if missing:
        raise LabelError(f"no labels for feature {', '.join(map(repr, missing))} in {', '.join(map(str, paths))}; "
                         f"it has labels for: {', '.join(have) or 'nothing'}")
    return merged.table(features)
