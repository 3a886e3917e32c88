"""Balanced data sets for augmentation: equal counts in every cell of the balanced features, each face
confirmed by the extractor, written as an ``imagefolder`` that a killed run continues exactly.

The cells: a binary feature splits at 0.5, a continuous one into BINS quantile bins of random faces' labels.
Faces are drawn in chunks from one seed; of each chunk of drawn latents only the ones the axes' models put
nearest the cells still short of faces are rendered (rare cells are filled from the faces nearest them,
without rendering the rest); a rendered face whose cell still needs faces is taken as it is, one whose
cell is full is steered (``plan.steer``) into the nearest cell that needs faces. After each chunk the images,
``metadata.jsonl`` and ``progress.json`` are written (in that order, each atomically), so a run cut off at any
moment continues from its last complete chunk and ends with the same set as an uninterrupted one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..extractors import Feature
from ..safeio import atomic_write_text
from .folder import face_record, read_metadata, save_faces, write_metadata
from .plan import Calibration, Face, Measure, shortfall, steer
from .spec import PRESENT, Condition, Spec, SpecError

DATASET_FORMAT = 1
SPLIT = "train"  # the imagefolder split the faces go in


class DatasetError(SpecError):
    """A balanced data set that cannot be made or continued as asked."""


@dataclass(frozen=True)
class Balance:
    """One balanced feature and how many bins it is cut into."""

    feature: str
    kind: str
    bins: int


def parse_balance(texts: Sequence[str], features: Sequence[Feature]) -> list[Balance]:
    """``FEATURE[:BINS]`` each: a binary feature has two bins (absent, present); a continuous one BINS (default 2)."""
    known = {f.name: f for f in features}
    out: list[Balance] = []
    for text in texts:
        name, sep, bins_s = text.strip().partition(":")
        if name not in known:
            raise DatasetError(f"unknown feature {name!r} in --balance {text!r}; the extractor reports: "
                               f"{', '.join(known)}")
        try:
            bins = int(bins_s) if sep else 2
        except ValueError:
            raise DatasetError(f"--balance {text!r}: BINS must be a whole number, e.g. age:4") from None
        kind = known[name].kind
        if kind == "binary" and bins != 2:
            raise DatasetError(f"--balance {text!r}: {name} is binary, so it splits in two (absent, present) at "
                               f"{PRESENT}; write just {name}")
        if not 2 <= bins <= 20:
            raise DatasetError(f"--balance {text!r}: give 2..20 bins")
        if name in [b.feature for b in out]:
            raise DatasetError(f"--balance names {name} twice")
        out.append(Balance(name, kind, bins))
    if not out:
        raise DatasetError("give at least one feature to balance, e.g. --balance male --balance age:4")
    return out


def bin_edges(balances: Sequence[Balance], labels: np.ndarray, names: Sequence[str]) -> list[list[float]]:
    """Inner bin edges per balanced feature: 0.5 for binary, the quantiles of ``labels`` for continuous."""
    edges = []
    for b in balances:
        if b.kind == "binary":
            edges.append([PRESENT])
            continue
        v = np.asarray(labels, np.float64)[:, list(names).index(b.feature)]
        v = v[np.isfinite(v)]
        if len(v) < 2 * b.bins:
            raise DatasetError(f"too few labelled faces ({len(v)}) to cut {b.feature} into {b.bins} bins")
        edges.append([float(q) for q in np.quantile(v, np.arange(1, b.bins) / b.bins)])
    return edges


def cell_of(labels: np.ndarray, names: Sequence[str], balances: Sequence[Balance],
            edges: Sequence[Sequence[float]]) -> np.ndarray:
    """The cell (0 .. prod(bins) - 1, row-major over the balanced features) of each label row; -1 when unknown."""
    labels = np.atleast_2d(np.asarray(labels, np.float64))
    cell = np.zeros(len(labels), np.int64)
    known = np.ones(len(labels), bool)
    for b, e in zip(balances, edges, strict=True):
        v = labels[:, list(names).index(b.feature)]
        known &= np.isfinite(v)
        cell = cell * b.bins + np.searchsorted(np.asarray(e), np.nan_to_num(v), side="right")
    return np.where(known, cell, -1)


def cell_bins(cell: int, balances: Sequence[Balance]) -> list[int]:
    """The bin of each balanced feature in ``cell``."""
    out = []
    for b in reversed(balances):
        out.append(cell % b.bins)
        cell //= b.bins
    return out[::-1]


def cell_spec(cell: int, balances: Sequence[Balance], edges: Sequence[Sequence[float]]) -> Spec:
    """The conditions that put a face in ``cell``."""
    conds = []
    for b, e, k in zip(balances, edges, cell_bins(cell, balances), strict=True):
        lo = e[k - 1] if k > 0 else -math.inf
        hi = e[k] if k < len(e) else math.inf
        if b.kind == "binary":
            lo, hi = (0.0, PRESENT) if k == 0 else (PRESENT, 1.0)
        conds.append(Condition(b.feature, "binary" if b.kind == "binary" else "continuous", lo, hi))
    return Spec(tuple(conds))


def cell_name(cell: int, balances: Sequence[Balance]) -> str:
    return ",".join(f"{b.feature}={k}" for b, k in zip(balances, cell_bins(cell, balances), strict=True))


def quotas(n: int, cells: int) -> np.ndarray:
    """``n`` faces split as evenly as whole numbers allow: the first ``n % cells`` cells get one more."""
    q = np.full(cells, n // cells, np.int64)
    q[: n % cells] += 1
    return q


def nearest_cell(cell: int, need: np.ndarray, balances: Sequence[Balance]) -> int | None:
    """The cell short of faces (``need`` > 0) that a face in ``cell`` is steered to: the fewest bins away
    (summed over the balanced features, so e.g. a male face goes to the female cell of its own age bin),
    the one that needs most among equals; None when no cell needs faces."""
    short = np.flatnonzero(need > 0)
    if not len(short):
        return None
    here = np.array(cell_bins(cell, balances))
    steps = [int(np.abs(np.array(cell_bins(int(t), balances)) - here).sum()) for t in short]
    return int(min(zip(steps, -need[short], short, strict=True))[2])


def pick_for_cells(z: np.ndarray, idx: np.ndarray, need: np.ndarray, balances: Sequence[Balance],
                   edges: Sequence[Sequence[float]], axes: Any, calibration: Calibration, k: int,
                   extra: tuple[Condition, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` of the drawn latents ``z`` (stream indices ``idx``) to render: cells short of faces get
    shares of ``k`` in proportion to their ``need``, and each share goes to the latents the axes' models put
    nearest that cell (:func:`plan.shortfall`, no rendering), so rare cells are filled from the faces
    nearest them rather than by drawing until they turn up. Returned in stream order."""
    if len(z) <= k:
        return idx, z
    short = np.flatnonzero(need > 0)
    share = np.floor(k * need[short] / need[short].sum()).astype(int)
    share[np.argsort(-need[short], kind="stable")[: k - share.sum()]] += 1
    chosen = np.zeros(len(z), bool)
    for cell, m in sorted(zip(short, share, strict=True), key=lambda cm: -need[cm[0]]):
        if m <= 0:
            continue
        dist = shortfall(Spec(cell_spec(int(cell), balances, edges).conditions + extra), axes, calibration, z)
        dist[chosen] = np.inf
        chosen[np.argsort(dist, kind="stable")[:m]] = True
    keep = np.flatnonzero(chosen)
    return idx[keep], z[keep]


@dataclass
class Built:
    """A finished (or continued) data set: its folder, the faces per cell and what this call rendered."""

    folder: Path
    counts: dict[str, int]
    rendered: int
    drawn: int
    steered: int
    resumed_from: int
    ray: Any = None  # tlgan.distributed.Report when the faces were rendered and labelled on Ray


def _target_spec(specs: dict[int, Spec], target_of: dict[int, int], index: int) -> Spec:
    """The spec of the cell that the face ``index`` is steered to."""
    return specs[target_of[index]]


def axes_fingerprint(axes: Any) -> str:
    """A hash of the axes a data set is steered with (names, vectors, slopes, their direction field): continuing
    a data set with other axes would mix two sets."""
    h = hashlib.sha256(json.dumps([axes.names, axes.kinds, axes.field.kind, axes.field.header()],
                                  sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(axes.vectors, np.float32).tobytes())
    h.update(np.ascontiguousarray(axes.slopes, np.float32).tobytes())
    for name, tensor in sorted(axes.field.named_tensors().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor, np.float32).tobytes())
    return h.hexdigest()[:16]


def build(folder: Path, settings: dict[str, Any], balances: Sequence[Balance], edges: Sequence[Sequence[float]],
          names: Sequence[str], axes: Any, calibration: Calibration, measure: Measure,
          stream: Callable[[int], Any], n: int, seed: int, chunk: int, presence: Condition | None,
          max_tries: int = 4, max_draw: int | None = None, progress: bool = True, candidates: int = 1) -> Built:
    """Fill every cell to its quota (see the module docstring). ``stream(start)`` gives a ``LatentStream``-like
    object whose ``draw`` continues the seed's faces from ``start``; ``settings`` must match a folder being
    continued. ``candidates`` > 1: each chunk renders only the ``chunk`` faces of ``chunk * candidates`` drawn
    that the axes' models put nearest the cells still short of faces (see :func:`pick_for_cells`)."""
    folder.mkdir(parents=True, exist_ok=True)
    split = folder / SPLIT
    state_path = folder / "progress.json"
    n_cells = int(np.prod([b.bins for b in balances]))
    quota = quotas(n, n_cells)
    if n_cells > n:
        raise DatasetError(f"{n_cells} cells but only -n {n} faces: ask for at least one face per cell")
    state: dict[str, Any] = {"format": DATASET_FORMAT, "settings": settings, "edges": [list(e) for e in edges], "drawn": 0,
             "accepted": 0}
    if state_path.exists():
        old = json.loads(state_path.read_text())
        if old.get("settings") != settings:
            diff = sorted(k for k in set(settings) | set(old.get("settings", {}))
                          if settings.get(k) != old.get("settings", {}).get(k))
            raise DatasetError(f"{folder} holds a data set made with other settings ({', '.join(diff)}); rerun "
                               "with its settings to continue it, or choose another -o folder")
        state = old
        edges = state["edges"]
    elif split.exists() and any(split.iterdir()):
        raise DatasetError(f"{split} already holds files but no progress.json; choose an empty or new -o folder")
    records = read_metadata(split)[: state["accepted"]]
    counts = np.bincount([r["cell"] for r in records], minlength=n_cells).astype(np.int64)
    resumed_from, rendered, steered = len(records), 0, 0
    source = stream(state["drawn"])
    max_draw = max_draw or (50 * n + 10 * chunk) * candidates
    bar = tqdm(total=n, initial=len(records), unit="face", desc=f"dataset {folder.name}", disable=not progress)
    extra: tuple[Condition, ...] = (presence,) if presence is not None else ()
    while (counts < quota).any():
        if state["drawn"] >= max_draw:
            short = ", ".join(f"{cell_name(int(c), balances)} ({counts[c]} of {quota[c]})"
                              for c in np.flatnonzero(counts < quota))
            raise DatasetError(f"after {state['drawn']:,} faces drawn these cells are still short: {short}; "
                               "balance fewer bins or features")
        idx, z = source.draw(chunk * candidates)
        drawn_now = len(z)
        idx, z = pick_for_cells(z, idx, quota - counts, balances, edges, axes, calibration, chunk, extra)
        labels, images = measure(z)
        assert images is not None, "a data set keeps the images it labels"
        rendered += len(z)
        ok = Spec(extra).holds(labels, names) if extra else np.ones(len(z), bool)
        cells = np.where(ok, cell_of(labels, names, balances, edges), -1)
        taken: list[tuple[Face, int]] = []
        planned = np.zeros(n_cells, np.int64)
        groups: dict[int, list[Face]] = {}
        for k in range(len(z)):
            face = Face(int(idx[k]), z[k].copy(), z[k].copy(), labels[k], images[k])
            c = int(cells[k])
            if c < 0:
                continue
            if counts[c] + planned[c] < quota[c]:
                planned[c] += 1
                taken.append((face, c))
                continue
            need = quota - counts - planned - np.array([len(groups.get(i, [])) for i in range(n_cells)])
            target = nearest_cell(c, need, balances)
            if target is not None:
                groups.setdefault(target, []).append(face)
        if groups:  # faces from full cells, each steered toward the nearest cell short of faces, in one batch
            target_of = {f.index: t for t, group in groups.items() for f in group}
            queue = [f for t in sorted(groups) for f in groups[t]]
            specs = {t: Spec(cell_spec(t, balances, edges).conditions + extra) for t in groups}

            def draw(k: int, queue: list = queue, z: np.ndarray = z) -> tuple[np.ndarray, np.ndarray]:
                got, queue[:] = queue[:k], queue[k:]
                return (np.array([f.index for f in got], int),
                        np.stack([f.latent for f in got]) if got else np.zeros((0, *z.shape[1:]), np.float32))
            measured: dict[int, tuple[Any, Any]] = {f.index: (f.labels, f.image) for f in queue}
            try:
                out = steer(next(iter(specs.values())), axes, names, measure, draw, len(queue), max_tries=max_tries,
                            max_started=len(queue), calibration=calibration,
                            spec_of=functools.partial(_target_spec, specs, target_of), measured=measured)
            except SpecError:
                out = None
            for face in out.delivered if out is not None else []:
                assert face.labels is not None
                c = int(cell_of(face.labels, names, balances, edges)[0])
                if c >= 0 and counts[c] + planned[c] < quota[c]:
                    planned[c] += 1
                    taken.append((face, c))
                    steered += 1
            rendered += out.rendered if out is not None else 0
        taken.sort(key=lambda fc: fc[0].index)
        files = [f"{len(records) + i:06d}.png" for i in range(len(taken))]
        save_faces(split, np.stack([np.asarray(f.image) for f, _ in taken]) if taken else np.zeros((0,)), files)
        for (face, c), file in zip(taken, files, strict=True):
            bins = cell_bins(c, balances)
            records.append(face_record(face, file, names, seed, cell=c, cell_name=cell_name(c, balances),
                                       **{f"{b.feature}_bin": k for b, k in zip(balances, bins, strict=True)}))
            counts[c] += 1
        write_metadata(split, records)
        state.update(drawn=state["drawn"] + drawn_now, accepted=len(records))
        atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")
        bar.update(len(taken))
    bar.close()
    return Built(folder, {cell_name(c, balances): int(counts[c]) for c in range(n_cells)}, rendered,
                 int(state["drawn"]), steered, resumed_from)
