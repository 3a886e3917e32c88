"""Step 2 — feature extractors: images go in, one label per feature comes out.

``Extractor`` is the interface; ``EXTRACTORS`` the registry of named ones.
Names can be combined with ``+`` (``faces+glasses``) to concatenate features.
A label is NaN where the extractor cannot measure it on that image (e.g. head
yaw when no face was found), so later steps skip it honestly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..devices import default_batch, resolve_device
from ..errors import InputError
from ..plugins import load_plugins
from ..registry import Registry
from .images import check_images

FeatureKind = Literal["binary", "continuous"]


@dataclass(frozen=True)
class Feature:
    """One attribute an extractor reports.

    ``binary`` features are probabilities in [0, 1] (fitted with a logistic
    model); ``continuous`` ones are real numbers (fitted with a linear model).
    """

    name: str
    kind: FeatureKind
    description: str = ""
    unit: str = ""


class Extractor(ABC):
    """A feature extractor F: uint8 images (N, H, W, 3) -> labels (N, n_features).

    What generic code may rely on is declared here, never guessed from names:
    ``presence`` names the binary feature that says whether the subject was
    found at all (``face_found`` for faces; None when there is no such
    feature), ``has_descriptor`` says whether :meth:`descriptor` gives an
    identity embedding (used to measure how much an edit changes who it is),
    and ``has_showcase`` says whether :meth:`showcase` can pick, from their
    labels, the images that make clear examples for a figure. ``summary`` names
    the few features a figure or a printout shows first (a discovery's traversal
    figure, an inversion's labels), and ``summary_locks`` those such a figure
    holds still in its second rows; both may be empty.
    """

    name: str
    features: tuple[Feature, ...]
    presence: str | None = None
    has_descriptor: bool = False
    has_showcase: bool = False
    summary: tuple[str, ...] = ()
    summary_locks: tuple[str, ...] = ()

    def __init__(self, device: str | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = default_batch(self.device, cpu=64, gpu=512)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @abstractmethod
    def extract(self, images: torch.Tensor) -> np.ndarray:
        """Label one batch: uint8 NHWC tensor (any device) -> float32 (N, n_features), NaN = unknown."""

    def descriptor(self, images: torch.Tensor) -> np.ndarray:
        """An identity descriptor per image (N, K); only when ``has_descriptor`` is True."""
        raise NotImplementedError(f"extractor {self.name!r} has no descriptor")

    @classmethod
    def differentiable_descriptor(cls, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The model behind ``descriptor`` as a differentiable function of float images in [-1, 1]
        (N, 3, H, W) -> (N, K) on ``device``, for losses that keep who it is (photo inversion); only when
        ``has_descriptor`` is True. It needs no instance, so no other model of the extractor is loaded."""
        raise NotImplementedError(f"extractor {cls.__name__} has no differentiable descriptor")

    def showcase(self, labels: np.ndarray) -> np.ndarray:
        """Bool (N,): which images, by this extractor's labels (N, n_features), make clear examples for a
        figure (for faces: found, roughly frontal, well lit); only when ``has_showcase`` is True."""
        raise NotImplementedError(f"extractor {self.name!r} does not pick showcase images")

    def __call__(self, images: torch.Tensor | np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Label any number of images in batches of ``batch_size``."""
        images = torch.as_tensor(images)
        check_images(images, f"extractor {self.name!r}")
        bs = batch_size or self.batch_size
        parts = [self.extract(images[i:i + bs]) for i in range(0, len(images), bs)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.features)), np.float32)


class CombinedExtractor(Extractor):
    """Several extractors side by side; their features are concatenated in order."""

    def __init__(self, parts: list[Extractor]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.features = tuple(f for p in parts for f in p.features)
        names = [f.name for f in self.features]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise InputError(f"extractors {self.name!r} report the same feature twice: {sorted(dup)}")
        self.device = parts[0].device
        self.batch_size = min(p.batch_size for p in parts)
        self.presence = next((p.presence for p in parts if p.presence), None)
        self._describer = next((p for p in parts if p.has_descriptor), None)
        self.has_descriptor = self._describer is not None
        starts = np.cumsum([0] + [len(p.features) for p in parts])
        self._showcaser = next(((p, slice(int(starts[i]), int(starts[i + 1]))) for i, p in enumerate(parts)
                                if p.has_showcase), None)
        self.has_showcase = self._showcaser is not None
        self.summary = tuple(dict.fromkeys(f for p in parts for f in p.summary))
        self.summary_locks = tuple(dict.fromkeys(f for p in parts for f in p.summary_locks))

    def descriptor(self, images: torch.Tensor) -> np.ndarray:
        """The descriptor of the first part that has one."""
        if self._describer is None:
            return super().descriptor(images)
        return self._describer.descriptor(images)

    def showcase(self, labels: np.ndarray) -> np.ndarray:
        """The choice of the first part that makes one, from that part's columns."""
        if self._showcaser is None:
            return super().showcase(labels)
        part, columns = self._showcaser
        return part.showcase(labels[:, columns])

    def extract(self, images: torch.Tensor) -> np.ndarray:
        return np.concatenate([p.extract(images) for p in self.parts], axis=1)


EXTRACTORS: Registry[Extractor] = Registry("extractor")


def declared_features(name: str) -> list[str] | None:
    """The feature names a registered extractor (``a+b``: several) declares on its class, without loading its
    models; None when one of them is built by a function that declares none."""
    names: list[str] = []
    for part in (n.strip() for n in name.split("+") if n.strip()):
        feats = getattr(EXTRACTORS.factory(part), "features", None)
        if feats is None:
            return None
        names += [f.name for f in feats]
    return names


def load_extractor(name: str, device: str | None = None) -> Extractor:
    """Build a registered extractor by name; ``a+b`` combines several."""
    load_plugins()
    names = [n.strip() for n in name.split("+") if n.strip()]
    if not names:
        raise InputError("empty extractor name")
    parts = [EXTRACTORS.create(n, device=device) for n in names]
    return parts[0] if len(parts) == 1 else CombinedExtractor(parts)
