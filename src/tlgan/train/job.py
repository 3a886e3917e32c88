"""The whole training job: gather, check, learn, write a named extractor (``tlgan train-extractor``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..extractors.learned import Embedder, TrainedExtractorError, check_name, extractors_dir, write_extractor
from .cnn import fit_cnn
from .data import Dataset
from .metrics import MIN_PER_CLASS, FeatureResult, TrainError, _log, check_classes
from .probe import fit_probe


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
    from ..extractors import EXTRACTORS
    from ..plugins import load_plugins

    t0 = time.perf_counter()
    check_name(name)
    load_plugins()
    if out is None and name in EXTRACTORS:
        from ..extractors.trained import trained_names

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
    config: dict[str, Any] = {"name": name, "kind": learner, "tlgan_version": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "training": {"source": data.source, "n": len(data), "counts": counts, "seed": seed,
                           "min_per_class": min_per_class}}
    if learner == "probe":
        embedder = Embedder(probe_input, device)
        _log(log, f"embedding {len(data)} faces with {probe_input} ...")
        x = embed_images(data.images, embedder, log=log)
        probe = fit_probe(x, data.y, data.features, data.split, folds, min_per_class=min_per_class, seed=seed, log=log)
        tensors = {"weight": probe.weight, "bias": probe.bias}
        config["input"] = probe_input
        results = probe.results
        config["training"]["folds"] = folds
    else:
        cnn = fit_cnn(data.images, data.y, data.features, data.split, epochs, batch_size, seed=seed,
                      min_per_class=min_per_class, device=device, log=log)
        tensors = {k: v.detach().cpu().numpy() for k, v in cnn.model.state_dict().items()}
        config["input"] = "images"
        config["architecture"] = {"width": 32, "size": cnn.model.size}
        config["training"].update(epochs=epochs, batch_size=batch_size, history=cnn.history)
        results = cnn.results
    config["features"] = [{"name": f, "kind": "binary",
                           "description": _describe(f, learner, probe_input, counts[f], data.source)}
                          for f in data.features]
    config["metrics"] = {r.feature: {k: v for k, v in asdict(r).items() if k != "feature"} for r in results}
    try:
        path = write_extractor(folder, config, tensors, overwrite=overwrite)
    except TrainedExtractorError as e:
        raise TrainError(str(e)) from e
    if out is None:
        from ..extractors.trained import register_trained

        register_trained(name)
    return TrainResult(name, path, learner, list(data.features), results, len(data), time.perf_counter() - t0)
