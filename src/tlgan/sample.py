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
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, cast

import numpy as np
import torch
import zarr
from tqdm.auto import tqdm

from . import __version__
from .extractors import Extractor, Feature
from .generators import Generator
from .errors import TLGANError
from .formats import pick_columns, read_versioned_json

RUN_FORMAT = 1


class RunError(TLGANError, RuntimeError):
    """A run folder that cannot be used as asked; the message says what to do."""


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


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
        return _array(self._group(), name)

    def progress(self) -> dict[str, int]:
        p = self.path / "progress.json"
        if not p.exists():
            return {}
        try:
            doc = json.loads(p.read_text())
        except ValueError as e:
            raise RunError(f"{p} is not valid JSON ({e}); the run folder is damaged") from e
        if not isinstance(doc, dict):
            raise RunError(f"{p} must be a JSON object of counts, not {type(doc).__name__}; the run folder is damaged")
        for key, v in doc.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= self.n:
                raise RunError(f"{p}: field {key!r} is {v!r}, not a count 0..{self.n}; the run folder is damaged")
        return doc

    def done(self, key: str) -> int:
        return int(self.progress().get(key, 0))

    def _advance(self, **counts: int) -> None:
        _write_json(self.path / "progress.json", {**self.progress(), **counts})

    def features(self, label_set: str | None = None) -> list[Feature]:
        entry = self.info["labels"][self._label_set(label_set)]
        return [Feature(n, k, d) for n, k, d in zip(entry["features"], entry["kinds"], entry["descriptions"])]

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
        return np.asarray(self._array("z")[:])

    @property
    def latents(self) -> np.ndarray:
        """The latents (N, D) in the run's space: z, or the mapped codes for a w / w+ run (complete rows only)."""
        if self.latent_space == "z":
            return self.noise
        return np.asarray(self._array("codes")[: self.done("codes")])

    def noise_rows(self, lo: int, hi: int) -> np.ndarray:
        """The noise z of samples ``lo..hi`` (what a worker renders for that range)."""
        return np.asarray(self._array("z")[lo:hi])

    def latent_array(self, rows: int | None = None) -> "Rows":
        """The latents (N, D) in the run's space as the on-disk array, read lazily in blocks (``fit_axes``
        streams it), limited to the first ``rows`` (default: the complete ones)."""
        arr = self._array("z" if self.latent_space == "z" else "codes")
        complete = self.n if self.latent_space == "z" else self.done("codes")
        return Rows(arr, complete if rows is None else min(int(rows), complete))

    def labels(self, label_set: str | None = None, complete_only: bool = True) -> np.ndarray:
        """(N, F) labels of one label set; by default only the rows already labelled."""
        name = self._label_set(label_set)
        arr = self._array(f"labels/{name}")
        stop = self.done(f"labels/{name}") if complete_only else self.n
        return np.asarray(arr[:stop])

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
        return self._array("images")


class Rows:
    """The first ``stop`` rows of an on-disk array, read only when sliced (what a streaming fit takes)."""

    def __init__(self, array: zarr.Array, stop: int) -> None:
        self.array, self.stop = array, int(stop)
        self.shape = (self.stop, *array.shape[1:])
        self.chunks = array.chunks
        self.dtype = array.dtype

    def __len__(self) -> int:
        return self.stop

    def __getitem__(self, rows: slice) -> np.ndarray:
        lo, hi, step = rows.indices(self.stop)
        return np.asarray(self.array[lo:hi:step])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.array[: self.stop])
        return out if dtype is None else out.astype(dtype)


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """A run's array by name (a run folder holds arrays only, never sub-groups at these names)."""
    return cast(zarr.Array, group[name])


#: Bounds on what one run may ask for, checked before anything is created: the latents of a run are drawn
#: in memory when it is created, and one chunk of images is held in memory at once.
MAX_N = 10_000_000
MAX_Z_BYTES = 4 << 30
MAX_CHUNK = 65_536

#: run.json's fields that tlgan reads, and their types.
RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "generator": str, "n": int, "seed": int, "chunk": int, "images": bool, "labels": dict, "default_labels": str}


def _check_run_info(meta: Path, info: dict) -> None:
    for key, typ in RUN_FIELDS.items():
        if key not in info:
            raise RunError(f"{meta} lacks the field {key!r}; the run folder is damaged")
        v = info[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise RunError(f"{meta}: field {key!r} is {v!r}, not a {getattr(typ, '__name__', typ)}; "
                           "the run folder is damaged")
    if info["n"] <= 0 or info["chunk"] <= 0:
        raise RunError(f"{meta}: fields 'n' and 'chunk' must be positive; the run folder is damaged")
    for name, entry in info["labels"].items():
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), list)
                                              for k in ("features", "kinds", "descriptions")):
            raise RunError(f"{meta}: field 'labels.{name}' needs lists 'features', 'kinds' and 'descriptions'; "
                           "the run folder is damaged")


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
    if n <= 0 or chunk <= 0:
        raise RunError(f"need a positive number of samples and chunk size, got n={n}, chunk={chunk}")
    if n > MAX_N or n * generator.z_dim * 4 > MAX_Z_BYTES:
        raise RunError(f"-n {n:,} is too many: a run holds at most {MAX_N:,} samples and {MAX_Z_BYTES >> 30} GiB "
                       f"of latents ({generator.z_dim} numbers each); split it into several runs")
    if chunk > MAX_CHUNK:
        raise RunError(f"--chunk {chunk:,} is too large: at most {MAX_CHUNK:,} samples are processed at once")
    wanted = {"format": RUN_FORMAT, "generator": generator.name, "latent_dim": generator.latent_dim,
              "resolution": generator.resolution, "n": n, "seed": seed, "chunk": chunk, "images": save_images,
              "default_labels": extractor.name, **generator_identity(generator)}
    if (path / "run.json").exists():
        run = open_run(path)
        diff = {k: (run.info.get(k), v) for k, v in wanted.items() if run.info.get(k) != v}
        if diff:
            said = "; ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
            raise RunError(f"{path} holds a run made with other settings ({said}). "
                           "Rerun with the run's settings to continue it, or choose another --out folder")
        if run.info["labels"].get(extractor.name) != _label_entry(extractor):
            raise RunError(f"{path} was labelled by a different version of extractor {extractor.name!r} "
                           "(its features differ); choose another --out folder")
        return run
    if path.exists() and any(p.name != "data.zarr" for p in path.iterdir()):
        raise RunError(f"{path} exists and is not a tlgan run folder; choose an empty or new --out folder")
    path.mkdir(parents=True, exist_ok=True)
    z = generator.sample_z(n, seed).astype(np.float32)
    group = zarr.open_group(str(path / "data.zarr"), mode="w")
    group.create_array("z", data=z, chunks=(chunk, z.shape[1]))
    if generator.space != "z":
        group.create_array("codes", shape=(n, generator.latent_dim), chunks=(chunk, generator.latent_dim),
                           dtype="float32", fill_value=np.nan)
    res = generator.resolution
    if save_images:
        group.create_array("images", shape=(n, res, res, 3), chunks=(chunk, res, res, 3), dtype="uint8")
    info = {**wanted, "tlgan_version": __version__,
            **({"generator_source": generator.source} if generator.source else {}),
            "labels": {extractor.name: _label_entry(extractor)}}
    _add_label_array(group, extractor, n, chunk)
    _write_json(path / "run.json", info)
    return Run(path, info)


def _add_label_array(group: zarr.Group, extractor: Extractor, n: int, chunk: int) -> None:
    group.create_array(f"labels/{extractor.name}", shape=(n, len(extractor.features)), chunks=(chunk, len(extractor.features)),
                       dtype="float32", fill_value=np.nan, overwrite=True)


def _guard_disk(action: Callable[[], None], run: Run, start: int, stop: int, done: int) -> None:
    try:
        action()
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunError(f"disk full while writing samples {start}..{stop} to {run.path}; the {done} samples "
                           "written before are intact. Free some space and rerun the same command to continue") from e
        raise


class ChunkWriter:
    """Stores a run's finished chunks and advances ``progress.json`` over the complete ones.

    ``key`` is the label array's progress key; ``images`` and ``codes`` say whether those arrays are
    written (and advanced) with it. Chunks may arrive in any order (a cluster returns them as they
    finish): the progress count only moves past a chunk once every chunk before it is on disk, so a
    run cut off at any moment holds at least what its progress says, and a rerun redoes the rest.
    """

    def __init__(self, run: Run, key: str, images: bool = False, codes: bool = False, stop: int | None = None) -> None:
        self.run, self.key, self.images, self.codes = run, key, images, codes
        self.group = run._group("r+")
        self.done = run.done(key)
        self.stop = run.n if stop is None else int(stop)
        self._beyond: dict[int, int] = {}  # lo -> hi of chunks stored past the complete prefix

    def pending(self) -> list[tuple[int, int]]:
        """The (lo, hi) index ranges still to do, one per chunk of the run, in order."""
        return [(lo, min(lo + self.run.chunk, self.stop)) for lo in range(self.done, self.stop, self.run.chunk)]

    def write(self, lo: int, hi: int, labels: np.ndarray, images: np.ndarray | None = None,
              codes: np.ndarray | None = None) -> None:
        """Store samples ``lo..hi``; a full disk is a ``RunError`` that keeps what was written before."""
        def store() -> None:
            if self.images:
                assert images is not None, "this run stores images"
                _array(self.group, "images")[lo:hi] = images
            if self.codes:
                assert codes is not None, "this run stores codes"
                _array(self.group, "codes")[lo:hi] = codes
            _array(self.group, self.key)[lo:hi] = labels
            self._beyond[lo] = hi
            done = self.done
            while done in self._beyond:
                done = self._beyond.pop(done)
            if done != self.done:
                self.run._advance(**{self.key: done, **({"images": done} if self.images else {}),
                                     **({"codes": done} if self.codes else {})})
                self.done = done

        _guard_disk(store, self.run, lo, hi, self.done)


def sample(path: str | Path, generator: Generator, extractor: Extractor, n: int, seed: int = 0,
           chunk: int | None = None, save_images: bool = False, progress: bool = True) -> Run:
    """Render and label ``n`` latents from ``seed`` into the run folder ``path``; resumes if interrupted."""
    chunk = chunk or generator.batch_size
    run = create_run(path, generator, extractor, n, seed, chunk, save_images)
    writer = ChunkWriter(run, f"labels/{extractor.name}", images=save_images, codes=generator.space != "z")
    if writer.done >= n:
        return run
    bar = tqdm(total=n, initial=writer.done, unit="img", desc=f"sample {generator.name} + {extractor.name}",
               disable=not progress)
    for lo, hi in writer.pending():
        codes = generator.codes_from_z(run.noise_rows(lo, hi))
        images = generator.render(codes)
        labels = extractor(images)
        writer.write(lo, hi, labels, images.cpu().numpy() if save_images else None, codes)
        bar.update(hi - lo)
    bar.close()
    return run


def prepare_relabel(path: str | Path, extractor: Extractor, make_default: bool = False) -> Run:
    """Open a run with cached images and give it a label array for ``extractor`` (kept when it has one)."""
    run = open_run(path)
    run.images  # refuses a run without cached images
    entry = _label_entry(extractor)
    known = run.info["labels"].get(extractor.name)
    if known is not None and known != entry:
        raise RunError(f"{run.path} already has labels from a different version of {extractor.name!r}; "
                       "give the new extractor another name")
    if known is None:
        _add_label_array(run._group("r+"), extractor, run.n, run.chunk)
        run.info["labels"][extractor.name] = entry
    if make_default:
        run.info["default_labels"] = extractor.name
    _write_json(run.path / "run.json", run.info)
    return run


def relabel(path: str | Path, extractor: Extractor, progress: bool = True, make_default: bool = False) -> Run:
    """Label a run's cached images with another extractor, without rendering them again; resumable."""
    run = prepare_relabel(path, extractor, make_default)
    writer = ChunkWriter(run, f"labels/{extractor.name}", stop=run.done("images"))
    bar = tqdm(total=writer.stop, initial=writer.done, unit="img", desc=f"relabel with {extractor.name}",
               disable=not progress)
    for lo, hi in writer.pending():
        writer.write(lo, hi, extractor(torch.from_numpy(np.asarray(run.images[lo:hi]))))
        bar.update(hi - lo)
    bar.close()
    return run
