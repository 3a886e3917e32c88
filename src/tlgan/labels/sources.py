"""Where the faces to label come from: fresh samples of a generator, or a run folder's cached images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .store import MAX_INDEX, LabelError

if TYPE_CHECKING:
    from ..generators import Generator


@dataclass
class FaceSource:
    """Faces to label, by index: fresh samples of a generator from a seed (``Generator.sample``)."""

    generator_name: str
    seed: int
    n: int | None = None  # how many indices exist (None: unlimited)
    generator: Generator | None = None  # None only where a subclass reads cached images
    _z: np.ndarray | None = field(default=None, repr=False)
    #: indices that cannot be labelled (left off pages and suggestions); none for fresh samples
    excluded: set[int] = field(default_factory=set)

    @property
    def _generator(self) -> Generator:
        if self.generator is None:
            raise LabelError(f"no generator {self.generator_name!r} was given to render faces with")
        return self.generator

    @property
    def resolution(self) -> int:
        return int(self._generator.resolution)

    def describe(self) -> str:
        return f"fresh samples of {self.generator_name}, seed {self.seed}"

    def check(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, np.int64).reshape(-1)
        top = min(self.n - 1, MAX_INDEX) if self.n is not None else MAX_INDEX
        if len(idx) and (idx.min() < 0 or idx.max() > top):
            raise LabelError(f"face index {int(idx.max()) if idx.min() >= 0 else int(idx.min())} out of range "
                             f"0..{top:,}")
        return idx

    def latents(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = self.check(indices)
        need = int(idx.max()) + 1 if len(idx) else 0
        if self._z is None or len(self._z) < need:
            grow = max(need, 2 * len(self._z) if self._z is not None else 256)
            self._z = self._generator.sample(grow, self.seed).astype(np.float32)
        return self._z[idx]

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (k, H, W, 3) faces at ``indices``."""
        import torch

        idx = self.check(indices)
        if not len(idx):
            return np.zeros((0, self.resolution, self.resolution, 3), np.uint8)
        with torch.inference_mode():
            return self._generator.render(self.latents(idx)).cpu().numpy()


class RunSource(FaceSource):
    """Faces to label from a run folder's cached images (``tlgan sample --save-images``): nothing is rendered.

    The run's row i is latent (run seed, i) of the run's generator. A run sampled
    before draws were prefix-stable may hold a last row that differs from that
    latent; such rows are left out (``excluded``).
    """

    def __init__(self, run) -> None:
        from ..generators import standard_normal
        from ..sample import open_run

        run = open_run(run) if isinstance(run, (str, os.PathLike)) else run
        self.run = run
        self._images = run.images
        n = run.done("images")
        super().__init__(run.generator, int(run.info["seed"]), n)
        z = run.noise[:n]
        canon = standard_normal(len(z), z.shape[1], self.seed) if len(z) else z
        self.excluded = set(np.flatnonzero(~(z == canon).all(1)).tolist()) if len(z) else set()
        self._z = z
        self._res = int(run.info["resolution"])

    @property
    def resolution(self) -> int:
        return self._res

    def describe(self) -> str:
        return f"cached images of run {self.run.path} ({self.generator_name}, seed {self.seed}, {self.n} faces)"

    def check(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = super().check(indices)
        bad = [int(i) for i in idx if int(i) in self.excluded]
        if bad:
            raise LabelError(f"run rows {bad} do not hold latent (seed {self.seed}, index) of the generator "
                             "(the run predates prefix-stable draws); they cannot be labelled by index")
        return idx

    def latents(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        assert self._z is not None  # set from the run in __init__
        return self._z[self.check(indices)]

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = self.check(indices)
        if not len(idx):
            return np.zeros((0, self._res, self._res, 3), np.uint8)
        order = np.argsort(idx)
        got = np.asarray(self._images.oindex[idx[order]])
        out = np.empty_like(got)
        out[order] = got
        return out


def canonical_latents(n: int, dim: int, seed: int) -> np.ndarray:
    """The noise z that ``Generator.sample_z(n, seed)`` draws for a ``dim``-d z (no model needed).

    Kept for callers of the old name: it is :func:`tlgan.generators.standard_normal`."""
    from ..generators import standard_normal

    return standard_normal(n, dim, seed)
