"""Extractors you trained yourself (``tlgan train-extractor``), found by name in ``$TLGAN_HOME/extractors``.

A trained extractor is a folder ``$TLGAN_HOME/extractors/NAME/`` (default
``~/.cache/tlgan/extractors/NAME/``) holding ``extractor.json`` and
``weights.safetensors`` (format: :mod:`tlgan.extractors.learned`). Every
feature is binary: the extractor reports P(feature) in [0, 1].

``tlgan.plugins`` imports this module after the other built-in plugins; the
import registers every such folder as an extractor by its name, so
``tlgan sample -e NAME``, ``-e faces+NAME``, ``tlgan relabel RUN -e NAME`` and
the rest accept it like a built-in one. A folder named like an extractor that
is already registered is skipped with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from . import EXTRACTORS, Extractor
from .learned import (
    CONFIG,
    NAME_PATTERN,
    Embedder,
    SmallCNN,
    TrainedExtractorError,
    _features,
    extractors_dir,
    read_config,
    read_probe,
    read_weights,
)


class TrainedExtractor(Extractor):
    """A trained extractor loaded from its folder: a probe on an embedding, or a small CNN."""

    def __init__(self, folder: str | Path, device: str | None = None, name: str | None = None) -> None:
        super().__init__(device)
        self.folder = Path(folder)
        self.config = read_config(self.folder)
        self.name = name or self.config.get("name") or self.folder.name
        self.features = _features(self.config)
        self.kind = self.config["kind"]
        if self.kind == "probe":
            self.probe = read_probe(self.folder)
            self.embed = Embedder(self.probe.input, self.device)
            self.has_descriptor = self.probe.input == "faceres"  # see descriptor(): identity for tlgan evaluate
        else:
            arch = self.config.get("architecture", {})
            self.net = SmallCNN(len(self.features), int(arch.get("width", 32)), int(arch.get("size", 64)))
            state = {k: torch.from_numpy(v) for k, v in read_weights(self.folder).items()}
            try:
                self.net.load_state_dict(state)
            except RuntimeError as e:
                raise TrainedExtractorError(f"{self.folder}: weights do not fit the CNN it describes: {e}") from e
            self.net.to(self.device).eval()

    def descriptor(self, images: torch.Tensor) -> np.ndarray:
        """A probe on faceres gives the face descriptor, for identity measurements (tlgan evaluate)."""
        if self.kind == "probe" and self.probe.input == "faceres":
            return self.embed(images)
        return super().descriptor(images)

    def extract(self, images: torch.Tensor) -> np.ndarray:
        if self.kind == "probe":
            return self.probe(self.embed(images))
        with torch.inference_mode():
            logits = self.net(self.net.prepare(images.to(self.device)))
        return torch.sigmoid(logits).float().cpu().numpy()


def trained_names(folder: Path | None = None) -> list[str]:
    """Names of the trained extractors in ``folder`` (default: ``extractors_dir()``)."""
    root = folder or extractors_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG).exists() and NAME_PATTERN.match(p.name))


_registered: set[str] = set()


def register_trained(name: str) -> bool:
    """Make ``name`` available to ``load_extractor`` (its folder is read when it is created).

    Returns False (with a warning) when a built-in extractor already has that name.
    """
    if name in _registered:
        return True
    if name in EXTRACTORS:
        warnings.warn(f"trained extractor {name!r} in {extractors_dir()} has the name of a built-in extractor; "
                      "it is not registered (rename its folder)", stacklevel=2)
        return False

    def factory(device: str | None = None, _name: str = name) -> TrainedExtractor:
        folder = extractors_dir() / _name
        if not (folder / CONFIG).exists():
            raise TrainedExtractorError(f"trained extractor {_name!r} is gone from {extractors_dir()}")
        return TrainedExtractor(folder, device, name=_name)

    try:
        cfg = read_config(extractors_dir() / name)
        feats = ", ".join(f["name"] for f in cfg["features"])
        help_text = f"trained {cfg['kind']} ({cfg.get('input', 'images')}): {feats}"
    except TrainedExtractorError as e:
        # A damaged folder must not break other commands: warn once, and keep the name so that asking
        # for it by name says what is wrong with its folder instead of "unknown extractor".
        warnings.warn(f"skipping trained extractor {name!r}: {e}", stacklevel=2)
        help_text = f"BROKEN trained extractor, skipped: {e}"
    EXTRACTORS.register(name, help_text)(factory)
    _registered.add(name)
    return True


def register_all() -> list[str]:
    """Register every trained extractor folder under ``extractors_dir()``."""
    return [n for n in trained_names() if register_trained(n)]


register_all()
