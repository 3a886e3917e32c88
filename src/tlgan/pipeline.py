"""Step 5's pieces: an ``Editor`` (a generator with its axes) and the showcase latents of a figure.

Sampling and fitting a run in one go is ``tlgan.jobs.discover``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .axes import Axes, AxesError
from .explore import move
from .extractors import Extractor
from .generators import Generator


def showcase_latents(generator: Generator, extractor: Extractor, n: int, seed: int, candidates: int = 64) -> np.ndarray:
    """``n`` latents from ``seed`` whose images make clear examples, as the extractor judges them
    (:meth:`Extractor.showcase`; for faces: found, roughly frontal, well lit), those first.

    When the extractor declares no such choice (``has_showcase``), the first ``n`` latents.
    """
    z = generator.sample(candidates, seed)
    if not extractor.has_showcase:
        return z[:n]
    good = np.asarray(extractor.showcase(extractor(generator.render(z))), bool)
    order = np.concatenate([np.flatnonzero(good), np.flatnonzero(~good)])
    return z[order[:n]]


class Editor:
    """A generator with its axes: render a latent after moves along axes with some features locked."""

    def __init__(self, generator: Generator, axes: Axes) -> None:
        axes.check_generator(generator)
        self.generator = generator
        self.axes = axes

    def latent(self, seed: int) -> np.ndarray:
        """The latent that ``seed`` draws (the same one ``tlgan sample`` draws first from that seed)."""
        return self.generator.sample(1, seed)[0]

    def edit(self, z: np.ndarray, moves: Mapping[str, float], locks: Iterable[str] = (),
             layers: Sequence[int] | Mapping[str, Sequence[int]] | None = None) -> np.ndarray:
        """``z`` after ``moves`` with ``locks``, in the same shape.

        ``layers`` (``w+`` only) limits the edit to those synthesis layers; a
        layer-shared code (D,) then becomes a full (num_ws, D) one. A mapping
        ``{feature: layers}`` gives each moved feature its own layers.
        """
        checked = self.generator.check_latents(z).numpy()
        if layers is None:
            return move(checked.reshape(np.shape(z)), self.axes, moves, locks)
        if self.generator.space != "w+":
            raise AxesError(f"a layer range needs the w+ space; these axes live in {self.generator.space}")
        single = np.ndim(z) < checked.ndim
        if checked.ndim == 2:
            checked = np.repeat(checked[:, None, :], self.generator.num_ws, axis=1)
        out = move(checked, self.axes, moves, locks, layers)
        return out[0] if single else out

    def render(self, z: np.ndarray, moves: Mapping[str, float] | None = None, locks: Iterable[str] = (),
               layers: Sequence[int] | Mapping[str, Sequence[int]] | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) images of ``z`` after ``moves`` with ``locks`` (and ``layers`` in w+)."""
        edited = self.edit(z, moves or {}, locks, layers)
        return self.generator.render(edited).cpu().numpy()
