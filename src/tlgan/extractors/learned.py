"""Learned feature models, their files and inputs: logistic probes on an embedding, and a small CNN.

A learned model is a folder with two files, no pickle:

- ``extractor.json``: ``{"format": 1, "name", "kind": "probe" | "cnn", "input", "features":
  [{"name", "kind": "binary", "description"}], "metrics", "training", "tlgan_version", ...}``;
- ``weights.safetensors``: for a ``probe``, ``weight`` (F, K) and ``bias`` (F,) of one
  logistic model per feature on the ``input`` embedding (``faceres``: faceres'
  1024-d descriptor; ``pixels``: the image at 16x16, 0..1); for a ``cnn``, the
  state dict of :class:`SmallCNN` (its sizes are in ``extractor.json``).

Trained extractors (``tlgan train-extractor``, registered by
:mod:`tlgan.extractors.trained`) and the probes that ship with ``faces``
(eyeglasses, hat, beard: package data ``tlgan/data/probes/``) use this format.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from torch import nn

from ..errors import TLGANError
from ..formats import read_versioned_json
from ..safeio import atomic_write, atomic_write_text, file_mode
from . import Feature

if TYPE_CHECKING:
    from .human import FaceRes

FORMAT = 1
CONFIG = "extractor.json"
WEIGHTS = "weights.safetensors"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PIXEL_SIZE = 16


class TrainedExtractorError(TLGANError, ValueError):
    """A trained extractor folder that is missing, damaged or of another format."""


def extractors_dir() -> Path:
    """``$TLGAN_HOME/extractors`` (default ``~/.cache/tlgan/extractors``), beside the weights cache."""
    from ..weights import cache_dir

    return cache_dir().parent / "extractors"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise TrainedExtractorError(f"extractor name {name!r} is not valid: use lower-case letters, digits, "
                                    "'-', '_' and '.' (no '+', which combines extractors)")
    return name


# ---------------------------------------------------------------- inputs of a probe


def pixel_embedding(images: torch.Tensor, size: int = PIXEL_SIZE) -> np.ndarray:
    """uint8 NHWC -> (N, 3 * size * size) floats in 0..1: the image resized (area / bilinear) to size x size."""
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (size, size):
        shrink = x.shape[-1] > size
        x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return x.reshape(len(x), -1).cpu().numpy().astype(np.float32)


class Embedder:
    """What a probe reads: images -> (N, K) float features. ``faceres`` or ``pixels``."""

    def __init__(self, name: str, device: str | torch.device | None = None) -> None:
        if name not in ("faceres", "pixels"):
            raise TrainedExtractorError(f"unknown probe input {name!r}; choose faceres or pixels")
        self.name = name
        self.device = device
        self._net: FaceRes | None = None

    @property
    def dim(self) -> int | None:
        return 1024 if self.name == "faceres" else None

    def __call__(self, images) -> np.ndarray:
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if self.name == "pixels":
            return pixel_embedding(images)
        if self._net is None:
            from .human import FaceRes

            self._net = FaceRes(None if self.device is None else str(self.device))
        if len(images) == 0:
            return np.zeros((0, 1024), np.float32)
        return self._net(images).descriptor.numpy().astype(np.float32)


# ---------------------------------------------------------------- the small CNN


class SmallCNN(nn.Module):
    """Four conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool but the last), global average pool,
    dropout, one linear layer: a logit per feature. About 0.3 M parameters at width 32."""

    def __init__(self, n_out: int, width: int = 32, size: int = 64) -> None:
        super().__init__()
        self.size = size
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i + 1]),
                       nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(chans[-1], n_out))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> NCHW floats in [-1, 1] at ``size`` x ``size``."""
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, (self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


# ---------------------------------------------------------------- reading and writing


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG
    if not path.exists():
        raise TrainedExtractorError(f"{folder} is not a trained extractor (no {CONFIG}); train one with "
                                    "`tlgan train-extractor`")
    cfg = read_versioned_json(
        path.read_text(), path, FORMAT, TrainedExtractorError,
        lambda cfg: (f"{path} has format {cfg.get('format')}; this tlgan reads format {FORMAT}. "
                     "Train it again with this version"))
    if cfg.get("kind") not in ("probe", "cnn"):
        raise TrainedExtractorError(f"{path}: unknown kind {cfg.get('kind')!r} (expected probe or cnn)")
    feats = cfg.get("features")
    if not isinstance(feats, list) or not feats:
        raise TrainedExtractorError(f"{path}: field 'features' must be a non-empty list of {{\"name\": ...}} objects")
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise TrainedExtractorError(f"{path}: features[{i}] must be an object with a string 'name'")
        for key in ("kind", "description"):
            if key in f and not isinstance(f[key], str):
                raise TrainedExtractorError(f"{path}: features[{i}].{key} must be a string")
    for key, typ in (("name", str), ("input", str), ("architecture", dict)):
        if key in cfg and not isinstance(cfg[key], typ):
            raise TrainedExtractorError(f"{path}: field {key!r} must be a {'string' if typ is str else 'JSON object'}")
    return cfg


def read_weights(folder: str | Path) -> dict[str, np.ndarray]:
    path = Path(folder) / WEIGHTS
    try:
        return load_numpy(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise TrainedExtractorError(f"cannot read {path}: {e}") from e


def write_extractor(folder: str | Path, config: dict[str, Any], tensors: dict[str, np.ndarray],
                    overwrite: bool = False) -> Path:
    """Write ``extractor.json`` + ``weights.safetensors`` into ``folder``.

    A new folder is filled beside it, then moved into place. Replacing an extractor (``overwrite``) replaces
    only those two files, each atomically: any other file the user keeps in the folder stays.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise TrainedExtractorError(f"{folder} exists already; pass --force to replace it")
        if not (folder / CONFIG).exists():
            raise TrainedExtractorError(f"{folder} exists and is not a trained extractor: refusing to replace it")
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    text = json.dumps({"format": FORMAT, **config}, indent=2, allow_nan=True) + "\n"
    if folder.is_dir():
        atomic_write(folder / WEIGHTS, lambda tmp: save_numpy(arrays, str(tmp)))
        atomic_write_text(folder / CONFIG, text)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        save_numpy(arrays, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; an extractor folder is an ordinary one
        for f in (WEIGHTS, CONFIG):
            os.chmod(tmp / f, file_mode())
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ---------------------------------------------------------------- probes


@dataclass
class Probe:
    """Logistic models on an embedding: P = sigmoid(x @ weight.T + bias), one column per feature."""

    features: tuple[Feature, ...]
    weight: np.ndarray  # (F, K)
    bias: np.ndarray  # (F,)
    input: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        logits = np.asarray(x, np.float64) @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))).astype(np.float32)


def _features(cfg: dict[str, Any]) -> tuple[Feature, ...]:
    return tuple(Feature(f["name"], f.get("kind", "binary"), f.get("description", "")) for f in cfg["features"])


def read_probe(folder: str | Path) -> Probe:
    cfg = read_config(folder)
    if cfg["kind"] != "probe":
        raise TrainedExtractorError(f"{folder} holds a {cfg['kind']}, not a probe")
    w = read_weights(folder)
    feats = _features(cfg)
    if w["weight"].shape[0] != len(feats) or w["bias"].shape != (len(feats),):
        raise TrainedExtractorError(f"{folder}: weights do not match its {len(feats)} features")
    return Probe(feats, w["weight"], w["bias"], cfg.get("input", "faceres"))


# ---------------------------------------------------------------- the probes shipped with tlgan


def shipped_folder() -> Path:
    """Package data folder of the probes ``faces`` reports (eyeglasses, hat, beard)."""
    return Path(str(files("tlgan") / "data" / "probes"))


_shipped: Probe | None = None


def shipped_probe() -> Probe:
    """The shipped probes on the faceres descriptor (read once)."""
    global _shipped
    if _shipped is None:
        folder = shipped_folder()
        cfg = read_config(folder) if (folder / CONFIG).exists() else None
        if cfg is None:
            raise TrainedExtractorError(f"the shipped probes are missing from {folder}; reinstall tlgan")
        _shipped = read_probe(folder)
    return _shipped
