"""Step 3 — sample: draw latents, render them, label the images; a resumable run folder on disk.

A run folder holds::

    run.json       what was asked (generator, seed, n, chunk, label sets...), written once
    progress.json  how many samples of each array are complete, rewritten atomically per chunk
    data.zarr/     z (N, z_dim) float32: the noise, drawn from the seed;
                   codes (N, D) float32: the latents in the run's space, for a
                   run sampled in w or w+ (the mapping of z, with truncation);
                   images (N, H, W, 3) uint8 (optional);
                   labels/<extractor> (N, F) float32, NaN = unknown

All latents are drawn from the seed when the run is created, and every chunk
is rendered and labelled as one batch, so an interrupted run (Ctrl-C, a killed
process, a full disk) continues from its last complete chunk and ends
identical to an uninterrupted one. Zarr writes each chunk atomically and the
progress file is only advanced after a chunk is on disk.

Nothing in a run folder is trusted blindly: run.json and progress.json are
checked against their schemas, every array against run.json's ``n``, and every
chunk that progress.json counts as written must be on disk (a lost chunk is
named, and ``sample`` renders it again: z is a pure function of the seed); new
arrays carry a CRC-32C checksum per chunk, so a flipped byte is named too. One
process at a time writes a run folder (a lock file, ``run.lock``).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, overload

import numpy as np
import torch
import zarr
from pydantic import Field
from tqdm.auto import tqdm
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.array_spec import ArrayConfig

from . import __version__
from .bounds import MAX_CHUNK, MAX_N, MAX_Z_BYTES, check_seed
from .errors import TLGANError
from .extractors import Extractor, Feature
from .formats import Schema, check_schema, parse_json, pick_columns, read_versioned_json
from .generators import Generator
from .safeio import atomic_write_text, file_mode

RUN_FORMAT = 1


class RunError(TLGANError, RuntimeError):
    """A run folder that cannot be used as asked; the message says what to do."""


def _write_json(path: Path, doc: dict) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


#: The folder of a run's chunk digests: ``digests/<array>/<chunk index>`` holds the SHA-256 of (run id, array,
#: chunk index, the chunk's values) for z, codes and every label set. zarr's CRC only says a chunk file is intact;
#: this says it is this run's chunk at this place, so a chunk copied from another run (or another place) is refused.
DIGESTS = "digests"


def chunk_digest(run_id: str, name: str, index: int, values: np.ndarray) -> str:
    """The digest that ties one chunk's values to its run and position."""
    h = hashlib.sha256(f"{run_id}\0{name}\0{index}\0".encode())
    h.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return h.hexdigest()


#: How much of z (bytes) is drawn again from the seed to check a run's noise when it is opened to fit or resume.
NOISE_CHECK_BYTES = 64 << 20

#: The lock file of a run folder, held (``flock``) by the one process writing the folder; the kernel
#: releases it when that process exits or is killed, so a stale file never blocks anyone.
LOCK_NAME = "run.lock"


@contextmanager
def run_lock(path: str | Path) -> Iterator[None]:
    """Hold the write lock of the run folder ``path`` (which must exist) for the ``with`` block.

    A second writer is refused at once, with the first one's process id, instead of both doing all
    the work (or the loser failing later on a half-written folder). The lock is ``filelock``'s (flock on
    Unix, msvcrt on Windows): the system releases it when the holder exits or is killed.
    """
    from filelock import FileLock, Timeout

    lock_path = Path(path) / LOCK_NAME
    lock = FileLock(str(lock_path), timeout=0, mode=file_mode())
    try:
        lock.acquire()
    except Timeout:
        try:
            pid = lock_path.read_text(errors="replace").strip() or "?"
        except OSError:
            pid = "?"
        raise RunError(f"run folder {path} is being written by another tlgan process (pid {pid}); wait for it "
                       "to finish (or stop it) and rerun the same command to continue") from None
    try:
        with open(lock_path, "w") as fh:  # who holds it, for the message above (the lock is on the inode)
            fh.write(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


class LabelEntry(Schema):
    """run.json's record of one label set."""

    features: list[str]
    kinds: list[Literal["binary", "continuous"]]
    descriptions: list[str]


class RunInfo(Schema):
    """run.json: the fields tlgan reads (others, such as the generator's identity, are kept as written)."""

    generator: str
    n: Annotated[int, Field(gt=0)]
    seed: Annotated[int, Field(ge=0)]
    chunk: Annotated[int, Field(gt=0)]
    images: bool
    labels: dict[str, LabelEntry]
    default_labels: str


class Progress(Schema):
    """progress.json: how many samples of each array are written, by array name."""

    __pydantic_extra__: dict[str, Annotated[int, Field(ge=0)]] = Field(init=False)


@dataclass
class Run:
    """An opened run folder. ``latents``, ``labels()`` and ``images`` read its arrays."""

    path: Path
    info: dict

    @property
    def n(self) -> int:
        return int(self.info["n"])

    @property
    def chunk(self) -> int:
        return int(self.info["chunk"])

    @property
    def generator(self) -> str:
        return self.info["generator"]

    @property
    def label_sets(self) -> list[str]:
        return list(self.info["labels"])

    @property
    def has_images(self) -> bool:
        return bool(self.info["images"])

    def _group(self, mode: Literal["r", "r+"] = "r") -> zarr.Group:
        return zarr.open_group(str(self.path / "data.zarr"), mode=mode)

    def _array(self, name: str) -> zarr.Array:
        return _array(self._group(), name, self.path)

    def _done_rows(self, name: str) -> int:
        """How many rows of array ``name`` are written: all of z (drawn when the run was made), else progress."""
        return self.n if name == "z" else self.done(name)

    def missing_rows(self, name: str, stop: int | None = None) -> list[tuple[int, int]]:
        """The sample ranges ``[lo, hi)`` below ``stop`` (default: the rows written) whose chunks of array
        ``name`` are not on disk (a deleted or lost chunk file would read as the fill value: zeros or NaN)."""
        arr = self._array(name)
        stop = self._done_rows(name) if stop is None else stop
        root = self.path / "data.zarr" / name
        rows, grid = arr.chunks[0], [range(-(-s // c)) for s, c in zip(arr.shape[1:], arr.chunks[1:], strict=True)]
        out = []
        for i, lo in enumerate(range(0, stop, rows)):
            keys = (arr.metadata.encode_chunk_key((i, *rest)) for rest in itertools.product(*grid))
            if not all((root / k).is_file() for k in keys):
                out.append((lo, min(lo + rows, arr.shape[0])))
        return out

    def _complete(self, name: str, stop: int | None = None) -> zarr.Array:
        """Array ``name``, after checking that every chunk of its first ``stop`` rows is on disk."""
        missing = self.missing_rows(name, stop)
        if missing:
            lo, hi = missing[0]
            more = f" (and {len(missing) - 1} more chunks)" if len(missing) > 1 else ""
            raise RunError(f"run {self.path} is damaged: data.zarr/{name} has lost samples {lo}..{hi - 1}{more}, "
                           f"which progress.json counts as written; rerun {self._redo(name)} to redo them")
        return self._array(name)

    def _redo(self, name: str) -> str:
        """The command that writes array ``name`` again: relabel for a label set added by relabel, else sample."""
        labels = name.split("/", 1)[1] if name.startswith("labels/") else None
        if labels and self.has_images and labels != next(iter(self.info["labels"])):
            return f"`tlgan relabel {self.path} -e {labels}`"
        return "`tlgan sample` with the run's settings"

    @property
    def run_id(self) -> str | None:
        """The run's identity (runs made before chunk digests have none, and are read without them)."""
        rid = self.info.get("run_id")
        return rid if isinstance(rid, str) and rid else None

    def record_digests(self, name: str, lo: int, hi: int, values: np.ndarray) -> None:
        """Record the digests of the chunks of array ``name`` holding rows ``lo..hi`` (``lo`` on a chunk start)."""
        if self.run_id is None:
            return
        folder = self.path / DIGESTS / name
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(lo, hi, self.chunk):
            index = start // self.chunk
            atomic_write_text(folder / str(index), chunk_digest(self.run_id, name, index,
                                                                values[start - lo: start - lo + self.chunk]) + "\n")

    def check_digests(self, name: str, values: np.ndarray) -> np.ndarray:
        """``values`` (rows 0.. of array ``name``, as read) after checking each whole chunk's digest."""
        if self.run_id is None:
            return values
        arr = self._array(name)
        for start in range(0, len(values), self.chunk):
            stop = min(start + self.chunk, arr.shape[0])
            if stop > len(values):
                break
            index = start // self.chunk
            try:
                recorded = (self.path / DIGESTS / name / str(index)).read_text().strip()
            except OSError:
                recorded = None
            if recorded != chunk_digest(self.run_id, name, index, values[start:stop]):
                key = arr.metadata.encode_chunk_key((index,) + (0,) * (arr.ndim - 1))
                why = "has no digest" if recorded is None else "does not match its digest"
                raise RunError(f"run {self.path} is damaged: {self.path / 'data.zarr' / name / key} (samples "
                               f"{start}..{stop - 1} of data.zarr/{name}) {why}: it is not this run's chunk at this "
                               f"place (copied from another run?); delete that file and rerun {self._redo(name)} "
                               "to redo them")
        return values

    def check_noise(self, z: np.ndarray | None = None) -> None:
        """Check the stored z against the seed run.json names: z is a pure function of (seed, index), so an edited
        seed, or a z chunk or array copied from another run, shows here instead of labels silently no longer
        belonging to their latents. ``z``: the run's whole noise, already drawn (every present row is compared);
        else the first row of each chunk within the first :data:`NOISE_CHECK_BYTES` of z is drawn and compared."""
        from .generators import standard_normal

        arr = self._array("z")
        dim, rows = arr.shape[1], arr.chunks[0]
        limit = self.n if z is not None else min(self.n, max(rows, NOISE_CHECK_BYTES // (4 * dim)))
        lost = self.missing_rows("z", limit)
        want = z if z is not None else standard_normal(limit, dim, self.info["seed"])
        for lo in range(0, limit, rows):
            hi = min(lo + rows, limit)
            if any(a <= lo < b for a, b in lost):
                continue
            got = self._read("z", lo, hi if z is not None else lo + 1)
            if not np.allclose(got, want[lo: lo + len(got)], rtol=0, atol=1e-6):
                raise RunError(f"run {self.path} is inconsistent: data.zarr/z samples {lo}..{hi - 1} are not the "
                               f"latents of seed {self.info['seed']} that run.json names (run.json was edited, or "
                               "z comes from another run); its labels cannot be trusted: sample a new run")

    def noise_rows(self, lo: int, hi: int) -> np.ndarray:
        """The noise z of samples ``lo..hi`` (what a worker renders for that range)."""
        return self._read("z", lo, hi)

    def _read(self, name: str, lo: int, hi: int, step: int = 1) -> np.ndarray:
        """Rows ``lo:hi:step`` of array ``name`` (whose chunks were checked to be there); a chunk that fails its
        checksum (or cannot be decoded) is named with the file to delete so that `tlgan sample` redoes it."""
        arr = self._array(name)
        try:
            return np.asarray(arr[lo:hi:step])
        except (ValueError, RuntimeError):
            rows = arr.chunks[0]
            for i in range(lo // rows, -(-hi // rows)):
                try:
                    arr[i * rows: (i + 1) * rows]
                except (ValueError, RuntimeError) as bad:
                    key = arr.metadata.encode_chunk_key((i,) + (0,) * (arr.ndim - 1))
                    why = "its checksum does not match" if "checksum" in str(bad) else str(bad)
                    raise RunError(f"run {self.path} is damaged: {self.path / 'data.zarr' / name / key} (samples "
                                   f"{i * rows}..{min((i + 1) * rows, arr.shape[0]) - 1} of data.zarr/{name}) is "
                                   f"corrupt ({why}); delete that file and rerun {self._redo(name)} to redo them") from bad
            raise

    def progress(self) -> dict[str, int]:
        p = self.path / "progress.json"
        if not p.exists():
            return {}
        doc = parse_json(p.read_text(), p, RunError, "the run folder is damaged")
        check_schema(doc, Progress, p, RunError, DAMAGED)
        for key, v in doc.items():
            if v > self.n:
                raise RunError(f"{p}: field {key!r} is {v!r}, not a count 0..{self.n}; {DAMAGED}")
        return doc

    def done(self, key: str) -> int:
        return int(self.progress().get(key, 0))

    def _advance(self, **counts: int) -> None:
        _write_json(self.path / "progress.json", {**self.progress(), **counts})

    def features(self, label_set: str | None = None) -> list[Feature]:
        entry = self.info["labels"][self._label_set(label_set)]
        return [Feature(n, k, d) for n, k, d in zip(entry["features"], entry["kinds"], entry["descriptions"], strict=True)]

    def _label_set(self, name: str | None) -> str:
        name = name or self.info["default_labels"]
        if name not in self.info["labels"]:
            raise RunError(f"run {self.path} has no labels from extractor {name!r}; it has: "
                           f"{', '.join(self.info['labels'])}. Label it with `tlgan relabel {self.path} --extractor {name}`")
        return name

    @property
    def latent_space(self) -> str:
        return str(self.info.get("latent_space", "z"))

    @property
    def noise(self) -> np.ndarray:
        """The noise z (N, z_dim) each sample was drawn from."""
        self._complete("z")
        return self.check_digests("z", self._read("z", 0, self.n))

    @property
    def latents(self) -> np.ndarray:
        """The latents (N, D) in the run's space: z, or the mapped codes for a w / w+ run (complete rows only)."""
        if self.latent_space == "z":
            return self.noise
        self._complete("codes")
        return self.check_digests("codes", self._read("codes", 0, self.done("codes")))

    def latent_array(self, rows: int | None = None) -> Rows:
        """The latents (N, D) in the run's space as the on-disk array, read lazily in blocks (``fit_axes``
        streams it), limited to the first ``rows`` (default: the complete ones)."""
        name = "z" if self.latent_space == "z" else "codes"
        complete = self._done_rows(name)
        stop = complete if rows is None else min(int(rows), complete)
        return Rows(self._complete(name, stop), stop, lambda lo, hi, step: self._read(name, lo, hi, step))

    def labels(self, label_set: str | None = None, complete_only: bool = True) -> np.ndarray:
        """(N, F) labels of one label set; by default only the rows already labelled."""
        name = f"labels/{self._label_set(label_set)}"
        done = self.done(name)
        self._complete(name, done)
        values = self._read(name, 0, done if complete_only else self.n)
        self.check_digests(name, values[:done])
        return values

    def fit_inputs(self, label_set: str | None = None, features: list[str] | None = None, stream: bool = False
                   ) -> tuple[Any, np.ndarray, list[Feature], dict]:
        """(z, labels, features, meta) of the labelled samples, as direction finders take them.

        ``features`` picks a subset of the label set's columns; ``meta`` records
        where the axes will have come from (generator, extractor, run, seed, label spread).
        ``stream``: give the latents as ``Rows`` read from disk in blocks, not loaded whole.
        """
        name = self._label_set(label_set)
        feats = self.features(name)
        labels = self.labels(name)
        self.check_noise()
        if len(labels) == 0:
            raise RunError(f"run {self.path} has no labelled samples yet; finish it with `tlgan sample` first")
        if features:
            keep = pick_columns(features, [f.name for f in feats],
                                lambda missing, have: RunError(f"unknown feature(s) {missing}; the run's labels "
                                                               f"have: {have}"))
            feats, labels = [feats[i] for i in keep], labels[:, keep]
        meta = {"generator": self.generator, "extractor": name, "latent_space": self.latent_space,
                "run": str(self.path), "seed": self.info["seed"], **_space_meta(self.info),
                "label_std": {f.name: float(np.nanstd(labels[:, j])) for j, f in enumerate(feats)}}
        z = self.latent_array(len(labels)) if stream else self.latents[: len(labels)]
        return z, labels, feats, meta

    @property
    def images(self) -> zarr.Array:
        if not self.has_images:
            raise RunError(f"run {self.path} was sampled without --save-images, so it has no cached images to relabel")
        return self._complete("images")


class Rows:
    """The first ``stop`` rows of an on-disk array, read only when sliced (what a streaming fit takes)."""

    def __init__(self, array: zarr.Array, stop: int,
                 read: Callable[[int, int, int], np.ndarray] | None = None) -> None:
        self.array, self.stop = array, int(stop)
        self.shape = (self.stop, *array.shape[1:])
        self.chunks = array.chunks
        self.dtype = array.dtype
        self._reader = read or (lambda lo, hi, step: np.asarray(array[lo:hi:step]))

    def __len__(self) -> int:
        return self.stop

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi, step = rows.indices(self.stop)
        return self._reader(lo, hi, step)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._reader(0, self.stop, 1)
        return out if dtype is None else out.astype(dtype)


DAMAGED = "the run folder is damaged"


def _array(group: zarr.Group, name: str, where: Path | None = None) -> zarr.Array:
    """A run's array by name (a run folder holds arrays only, never sub-groups at these names), set to store
    every chunk it writes, even one that is all fill value (NaN labels), so a chunk absent on disk means lost."""
    try:
        arr = group[name]
    except KeyError:
        raise RunError(f"run {where or group.store} has no array data.zarr/{name}; {DAMAGED}") from None
    if not isinstance(arr, zarr.Array):
        raise RunError(f"run {where or group.store}: data.zarr/{name} is not an array; {DAMAGED}")
    return arr.with_config(ArrayConfig(order="C", write_empty_chunks=True))


def _codecs() -> dict:
    """How new arrays are stored: zstd, then a CRC-32C checksum per chunk (read back, a flipped byte is named)."""
    return {"compressors": (ZstdCodec(level=0), Crc32cCodec())}


def _check_run_info(meta: Path, info: dict) -> None:
    """run.json against its schema, then what a schema cannot say: the label sets are consistent, and every
    array holds run.json's ``n`` rows (an edited ``n`` would make a resume "complete" with samples missing)."""
    check_schema(info, RunInfo, meta, RunError, DAMAGED)
    for name, entry in info["labels"].items():
        if not len(entry["features"]) == len(entry["kinds"]) == len(entry["descriptions"]):
            raise RunError(f"{meta}: field 'labels.{name}' has lists 'features', 'kinds' and 'descriptions' of "
                           f"different lengths; {DAMAGED}")
    if info["default_labels"] not in info["labels"]:
        raise RunError(f"{meta}: field 'default_labels' names {info['default_labels']!r}, which is not one of its "
                       f"label sets ({', '.join(info['labels'])}); {DAMAGED}")
    store = meta.parent / "data.zarr"
    try:
        group = zarr.open_group(str(store), mode="r")
    except (FileNotFoundError, ValueError) as e:
        raise RunError(f"{store} is missing or not a zarr group ({e}); {DAMAGED}") from e
    names = ["z", *(f"labels/{k}" for k in info["labels"]), *(["images"] if info["images"] else []),
             *(["codes"] if info.get("latent_space", "z") != "z" else [])]
    for name in names:
        rows = _array(group, name, meta.parent).shape[0]
        if rows != info["n"]:
            raise RunError(f"{meta} says n = {info['n']:,} but data.zarr/{name} holds {rows:,} samples; {DAMAGED} "
                           f"(was run.json edited? its n must be {rows:,})")


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open an existing run folder, refusing folders of another format."""
    path = Path(path)
    meta = path / "run.json"
    if not meta.exists():
        raise RunError(f"{path} is not a tlgan run folder (no run.json); create one with `tlgan sample --out {path}`")
    info = read_versioned_json(
        meta.read_text(), meta, RUN_FORMAT, RunError,
        lambda info: (f"{path} was written by tlgan {info.get('tlgan_version', '?')} in run format "
                      f"{info.get('format')}; this tlgan {__version__} reads format {RUN_FORMAT}. "
                      "Sample a new run with this version (or use the version that wrote it)"),
        damaged="the run folder is damaged")
    _check_run_info(meta, info)
    return Run(path, info)


def generator_identity(generator: Generator) -> dict:
    """What a run or axes file records of the generator beyond its name: the space and its sampling."""
    ident: dict = {"latent_space": generator.space}
    if generator.space != "z":
        ident.update(truncation=float(generator.truncation), num_ws=int(generator.num_ws), z_dim=int(generator.z_dim))
    if generator.sha256:
        ident.update(generator_sha256=generator.sha256)
    return ident


def _space_meta(info: dict) -> dict:
    return {k: info[k] for k in ("truncation", "num_ws", "z_dim", "generator_source", "generator_sha256")
            if k in info}


def _label_entry(extractor: Extractor) -> dict:
    return {"features": [f.name for f in extractor.features], "kinds": [f.kind for f in extractor.features],
            "descriptions": [f.description for f in extractor.features]}


def create_run(path: str | Path, generator: Generator, extractor: Extractor, n: int, seed: int,
               chunk: int, save_images: bool) -> Run:
    """Open the run at ``path`` if it was made with these settings, else create it; refuse a mismatch."""
    path = Path(path)
    check_request(generator, n, seed, chunk)
    wanted = {"format": RUN_FORMAT, "generator": generator.name, "latent_dim": generator.latent_dim,
              "resolution": generator.resolution, "n": n, "seed": seed, "chunk": chunk, "images": save_images,
              "default_labels": extractor.name, **generator_identity(generator)}
    if (path / "run.json").exists():
        run = open_run(path)
        # default_labels is a preference (`relabel --default` changes it), not a setting of the samples
        diff = {k: (run.info.get(k), v) for k, v in wanted.items() if k != "default_labels" and run.info.get(k) != v}
        if diff:
            said = "; ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
            raise RunError(f"{path} holds a run made with other settings ({said}). "
                           "Rerun with the run's settings to continue it, or choose another --out folder")
        known = run.info["labels"].get(extractor.name)
        if known is None:
            raise RunError(f"{path} was sampled with extractor {run.info['labels'] and next(iter(run.info['labels']))!r}"
                           f", not {extractor.name!r}; label its images with `tlgan relabel {path} -e "
                           f"{extractor.name}`, or choose another --out folder")
        if known != _label_entry(extractor):
            raise RunError(f"{path} was labelled by a different version of extractor {extractor.name!r} "
                           "(its features differ); choose another --out folder")
        return run
    _refuse_foreign_folder(path)
    path.mkdir(parents=True, exist_ok=True)
    z = generator.sample_z(n, seed).astype(np.float32)
    group = zarr.open_group(str(path / "data.zarr"), mode="w")
    group.create_array("z", shape=z.shape, chunks=(chunk, z.shape[1]), dtype="float32", **_codecs())
    _array(group, "z")[:] = z
    shutil.rmtree(path / DIGESTS, ignore_errors=True)  # of an earlier attempt, killed before run.json
    wanted["run_id"] = uuid.uuid4().hex
    Run(path, wanted).record_digests("z", 0, n, z)
    if generator.space != "z":
        group.create_array("codes", shape=(n, generator.latent_dim), chunks=(chunk, generator.latent_dim),
                           dtype="float32", fill_value=np.nan, **_codecs())
    res = generator.resolution
    if save_images:
        group.create_array("images", shape=(n, res, res, 3), chunks=(chunk, res, res, 3), dtype="uint8",
                           **_codecs())
    info = {**wanted, "tlgan_version": __version__,
            **({"generator_source": generator.source} if generator.source else {}),
            "labels": {extractor.name: _label_entry(extractor)}}
    _add_label_array(group, extractor, n, chunk)
    _write_json(path / "run.json", info)
    return Run(path, info)


def _add_label_array(group: zarr.Group, extractor: Extractor, n: int, chunk: int) -> None:
    group.create_array(f"labels/{extractor.name}", shape=(n, len(extractor.features)), chunks=(chunk, len(extractor.features)),
                       dtype="float32", fill_value=np.nan, overwrite=True, **_codecs())


def check_request(generator: Generator, n: int, seed: int, chunk: int) -> None:
    """Refuse a run that cannot be made, before anything is created: the latents of a run are drawn in memory
    when it is created, and one chunk of images is held in memory at once."""
    if n <= 0 or chunk <= 0:
        raise RunError(f"need a positive number of samples and chunk size, got n={n}, chunk={chunk}")
    if n > MAX_N or n * generator.z_dim * 4 > MAX_Z_BYTES:
        raise RunError(f"-n {n:,} is too many: a run holds at most {MAX_N:,} samples and {MAX_Z_BYTES >> 30} GiB "
                       f"of latents ({generator.z_dim} numbers each); split it into several runs")
    if chunk > MAX_CHUNK:
        raise RunError(f"--chunk {chunk:,} is too large: at most {MAX_CHUNK:,} samples are processed at once")
    check_seed(seed)


def _refuse_foreign_folder(path: Path) -> None:
    """Refuse to make a run in a folder holding anything but a run's own files (never touch a user's files)."""
    if (path / "run.json").exists() or not path.exists():
        return
    if not path.is_dir() or any(p.name not in ("data.zarr", DIGESTS, LOCK_NAME) for p in path.iterdir()):
        raise RunError(f"{path} exists and is not a tlgan run folder; choose an empty or new --out folder")


def _guard_disk(action: Callable[[], None], run: Run, start: int, stop: int, done: int) -> None:
    try:
        action()
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunError(f"disk full while writing samples {start}..{stop} to {run.path}; the {done} samples "
                           "written before are intact. Free some space and rerun the same command to continue") from e
        raise


class ChunkWriter:
    """Stores a run's finished chunks and advances ``progress.json`` over the complete ones: the one writer of
    chunks, for the local loop (:func:`sample`, :func:`relabel`: in order) and for a driver whose workers return
    chunks in any order (``tlgan.distributed``); hold :func:`run_lock` while writing.

    ``key`` is the label array's progress key; ``images`` and ``codes`` say whether those arrays are
    written (and advanced) with it. The progress count only moves past a chunk once every chunk before
    it is on disk, so a run cut off at any moment holds at least what its progress says.
    """

    def __init__(self, run: Run, key: str, images: bool = False, codes: bool = False, stop: int | None = None) -> None:
        self.run, self.key, self.images, self.codes = run, key, images, codes
        self.group = run._group("r+")
        self.arrays = [key, *(["images"] if images else []), *(["codes"] if codes else [])]
        self.done = self.start = run.done(key)
        self.stop = run.n if stop is None else int(stop)
        self._beyond: dict[int, int] = {}  # lo -> hi of chunks stored past the complete prefix

    def pending(self) -> list[tuple[int, int]]:
        """The (lo, hi) ranges to do: chunks a damaged folder lost below the progress count, then the rest."""
        lost = sorted({r for name in self.arrays for r in self.run.missing_rows(name, min(self.run.done(name), self.done))})
        return lost + [(lo, min(lo + self.run.chunk, self.stop)) for lo in range(self.done, self.stop, self.run.chunk)]

    def write(self, lo: int, hi: int, labels: np.ndarray, images: np.ndarray | None = None,
              codes: np.ndarray | None = None) -> int:
        """Store samples ``lo..hi``; a full disk is a ``RunError`` that keeps what was written before.
        Returns how many of them are new for a progress bar (0 for a lost chunk put back below the start)."""
        def store() -> None:
            if self.images:
                assert images is not None, "this run stores images"
                _array(self.group, "images")[lo:hi] = images
            if self.codes:
                assert codes is not None, "this run stores codes"
                _array(self.group, "codes")[lo:hi] = codes
                self.run.record_digests("codes", lo, hi, np.asarray(codes, np.float32))
            _array(self.group, self.key)[lo:hi] = labels
            self.run.record_digests(self.key, lo, hi, np.asarray(labels, np.float32))
            if hi <= self.done:  # a lost chunk put back
                return
            self._beyond[lo] = hi
            done = self.done
            while done in self._beyond:
                done = self._beyond.pop(done)
            if done != self.done:
                self.run._advance(**{name: done for name in self.arrays})
                self.done = done

        _guard_disk(store, self.run, lo, hi, self.done)
        return hi - lo if lo >= self.start else 0


def default_chunk(path: str | Path, generator: Generator) -> int:
    """The chunk of a run made without ``--chunk``: the run's own when continuing one (whatever the device),
    else the generator's batch size on its device."""
    if (Path(path) / "run.json").exists():
        return open_run(path).chunk
    return generator.batch_size


@overload
def render_and_label(generator: Generator, extractor: Extractor, codes: np.ndarray,
                     keep_images: Literal[True] = ...) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def render_and_label(generator: Generator, extractor: Extractor, codes: np.ndarray,
                     keep_images: bool) -> tuple[np.ndarray, np.ndarray | None]: ...
def render_and_label(generator: Generator, extractor: Extractor, codes: np.ndarray,
                     keep_images: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Step 3 for one batch: the labels of the faces of ``codes`` (latents in the generator's own space) and the
    faces themselves (uint8 N x H x W x 3; None without ``keep_images``, so they never leave the device), as
    every sampling, steering and measuring loop reads them."""
    images = generator.render(codes)
    return extractor(images), images.cpu().numpy() if keep_images else None


def sample(path: str | Path, generator: Generator, extractor: Extractor, n: int, seed: int = 0,
           chunk: int | None = None, save_images: bool = False, progress: bool = True) -> Run:
    """Render and label ``n`` latents from ``seed`` into the run folder ``path``; resumes if interrupted,
    and first renders again any chunk a damaged folder has lost. One process at a time (:func:`run_lock`)."""
    path = Path(path)
    chunk = default_chunk(path, generator) if chunk is None else chunk
    check_request(generator, n, seed, chunk)
    _refuse_foreign_folder(path)
    path.mkdir(parents=True, exist_ok=True)
    with run_lock(path):
        run = create_run(path, generator, extractor, n, seed, chunk, save_images)
        writer = ChunkWriter(run, f"labels/{extractor.name}", images=save_images, codes=generator.space != "z")
        start = writer.done
        lost_z = run.missing_rows("z")
        if lost_z:  # z is a pure function of the seed: draw it again and put back the lost chunks
            z, z_arr = generator.sample_z(n, seed).astype(np.float32), _array(writer.group, "z")
            run.check_noise(z)  # the rows still there must be this seed's, or the labels kept would not fit
            for lo, hi in lost_z:
                _guard_disk(functools.partial(z_arr.__setitem__, slice(lo, hi), z[lo:hi]), run, lo, hi, start)
                run.record_digests("z", lo, hi, z[lo:hi])
        elif start:  # resuming: the z already written must still be this seed's
            run.check_noise()

        def render(lo: int, hi: int) -> None:
            codes = generator.codes_from_z(run._read("z", lo, hi))
            labels, images = render_and_label(generator, extractor, codes, keep_images=save_images)
            writer.write(lo, hi, labels, images, codes)

        tasks = writer.pending()
        lost = [t for t in tasks if t[0] < start]
        for lo, hi in tqdm(lost, unit="chunk", desc=f"redo {len(lost)} lost chunks of {path}",
                           disable=not (progress and lost)):
            render(lo, hi)
        if start >= n:
            return run
        bar = tqdm(total=n, initial=start, unit="img", desc=f"sample {generator.name} + {extractor.name}",
                   disable=not progress)
        for lo, hi in tasks[len(lost):]:
            render(lo, hi)
            bar.update(hi - lo)
        bar.close()
    return run


def relabel(path: str | Path, extractor: Extractor, progress: bool = True, make_default: bool = False) -> Run:
    """Label a run's cached images with another extractor, without rendering them again; resumable, and first
    labels again any chunk of these labels a damaged folder has lost. One process at a time (:func:`run_lock`)."""
    open_run(path)
    with run_lock(path):
        return _relabel(open_run(path), extractor, progress, make_default)


def prepare_relabel(run: Run, extractor: Extractor, make_default: bool = False) -> None:
    """Give a run with cached images a label array for ``extractor`` (kept when it has one); under :func:`run_lock`."""
    if run.images.shape[0] != run.n:  # run.images refuses a run without images, or with image chunks lost
        raise RunError(f"run {run.path}: its images do not match its samples; {DAMAGED}")
    group = run._group("r+")
    entry = _label_entry(extractor)
    known = run.info["labels"].get(extractor.name)
    if known is not None and known != entry:
        raise RunError(f"{run.path} already has labels from a different version of {extractor.name!r}; "
                       "give the new extractor another name")
    if known is None:
        _add_label_array(group, extractor, run.n, run.chunk)
        run.info["labels"][extractor.name] = entry
    if make_default:
        run.info["default_labels"] = extractor.name
    _write_json(run.path / "run.json", run.info)


def _relabel(run: Run, extractor: Extractor, progress: bool, make_default: bool) -> Run:
    prepare_relabel(run, extractor, make_default)
    writer = ChunkWriter(run, f"labels/{extractor.name}", stop=run.done("images"))
    bar = tqdm(total=writer.stop, initial=writer.start, unit="img", desc=f"relabel with {extractor.name}",
               disable=not progress)
    for lo, hi in writer.pending():
        bar.update(writer.write(lo, hi, extractor(torch.from_numpy(run._read("images", lo, hi)))))
    bar.close()
    return run
