"""The generator interface: ``Generator`` (what every model offers), its latent spaces, and ``GENERATORS``,
the registry of built-in generators by name."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..align import Framing
from ..devices import default_batch, resolve_device
from ..errors import InputError
from ..registry import Registry, UnknownNameError
from ..weights import WeightsError

if TYPE_CHECKING:
    from .families import Family


SPACES = ("z", "w", "w+")


def standard_normal(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` draws of N(0, I_dim) from ``seed``, prefix-stable (see ``Generator.sample_z``)."""
    g = torch.Generator().manual_seed(int(seed))
    rows = -(-int(n) // 16) * 16
    return torch.randn(rows, int(dim), generator=g)[:n].numpy()


@dataclass(frozen=True)
class LatentSpace:
    """One latent space a generator can be driven from.

    ``z`` is the input noise N(0, I); ``w`` the output of a StyleGAN mapping
    network (one code for every layer); ``w+`` one ``w`` per synthesis layer
    (``num_ws`` of them), so an edit can reach only some layers.
    ``shape`` is one code's shape; ``typical_norm`` the norm of a typical code
    (distance from the space's centre), the scale of a "unit" move.
    """

    name: str
    shape: tuple[int, ...]
    typical_norm: float


class Generator(ABC):
    """A pretrained image generator G, driven from one of its latent spaces.

    A generator object is bound to one space (``space``): ``sample`` returns
    codes in it, ``render`` draws images from them, and the feature axes
    fitted from its samples live in it. ``latent_dim`` is the size of a code
    as sampled and fitted (``z_dim`` for ``z``; ``w_dim`` for ``w`` and
    ``w+``, whose sampled codes are the same ``w`` for every layer; ``render``
    also takes full ``(num_ws, w_dim)`` codes in ``w+``, e.g. inverted photos).

    Subclasses set ``name``, ``latent_dim``, ``resolution`` and implement
    ``synthesize``; families with a mapping network also override
    ``codes_from_z`` and ``space_centre`` and declare ``spaces`` and ``num_ws``.
    What inversion and photo editing need is asked through methods, never
    fished for: ``space_centre`` (where optimisation starts), ``network`` (the
    module whose parameters make the picture), ``copy`` (an independent
    generator whose network may be fine-tuned) and ``family``.
    """

    name: str
    latent_dim: int
    resolution: int
    space: str = "z"
    spaces: tuple[str, ...] = ("z",)
    num_ws: int = 1
    truncation: float = 1.0
    #: the checkpoint file a user's generator was read from, and its SHA-256 (None for built-ins)
    source: str | None = None
    sha256: str | None = None
    #: how the family frames a face (see ``tlgan.align``); the bundled DCGAN draws DigiFace crops
    framing: str | Framing = "digiface"
    #: the checkpoint family a user's generator was rebuilt by (see ``tlgan.generators.families``); None for built-ins
    family: Family | None = None

    def __init__(self, device: str | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = default_batch(self.device, cpu=256, gpu=1024)

    @property
    def z_dim(self) -> int:
        """The size of the input noise z (``latent_dim`` for generators driven from z)."""
        return self.latent_dim

    def describe_space(self, space: str | None = None) -> LatentSpace:
        """The shape and typical norm of one of this generator's spaces (default: the bound one)."""
        space = space or self.space
        if space not in self.spaces:
            raise UnknownNameError(f"generator {self.name!r} has no latent space {space!r}; it has: "
                                   f"{', '.join(self.spaces)}")
        if space == "z":
            return LatentSpace("z", (self.z_dim,), float(np.sqrt(self.z_dim)))
        return self._style_space(space)

    def _style_space(self, space: str) -> LatentSpace:
        raise NotImplementedError

    def sample_z(self, n: int, seed: int) -> np.ndarray:
        """``n`` noise vectors z from N(0, I), reproducible from ``seed`` on any device.

        Prefix-stable: ``sample_z(n, seed)[i] == sample_z(m, seed)[i]`` for every
        ``i < min(n, m)``, so ``(seed, i)`` names one latent in every family
        (label files rely on it). torch's CPU normal sampler redraws the last 16
        values of a draw whose size is not a multiple of 16, so whole blocks of
        16 rows are drawn and the surplus dropped.
        """
        return standard_normal(n, self.z_dim, seed)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` codes in the bound space for the z of ``(seed, 0..n-1)`` (prefix-stable like ``sample_z``)."""
        return self.codes_from_z(self.sample_z(n, seed))

    def sample_at(self, indices: np.ndarray, seed: int) -> np.ndarray:
        """The codes of ``(seed, i)`` for each ``i`` in ``indices`` (rows of ``sample(n, seed)``): only the noise
        up to the largest index is drawn, and only the rows asked for are mapped into the bound space."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if not len(idx):
            return self.sample(0, seed)
        return self.codes_from_z(self.sample_z(int(idx.max()) + 1, seed)[idx])

    def codes_from_z(self, z: np.ndarray) -> np.ndarray:
        """Map noise z (N, z_dim) into the bound space, with this generator's truncation."""
        return np.asarray(z, np.float32)

    def check_latents(self, z: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Codes as a float tensor (N, latent_dim), or (N, num_ws, latent_dim) in ``w+``; clear errors otherwise."""
        z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z)
        if z.ndim == 1 or (z.ndim == 2 and self.space == "w+" and z.shape == (self.num_ws, self.latent_dim)):
            z = z[None]
        full_wplus = self.space == "w+" and z.ndim == 3 and z.shape[1:] == (self.num_ws, self.latent_dim)
        if not full_wplus and (z.ndim != 2 or z.shape[1] != self.latent_dim):
            also = f" or ({self.num_ws}, {self.latent_dim})" if self.space == "w+" else ""
            raise InputError(f"generator {self.name!r} in space {self.space} takes latents of size "
                             f"{self.latent_dim}{also}, got shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise InputError("latents contain NaN or infinite values")
        return z.float()

    @abstractmethod
    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw generator output for one batch of codes on ``self.device``: float NCHW, nominally in [-1, 1]."""

    @staticmethod
    def postprocess(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] NCHW floats -> uint8 NHWC (still on the same device)."""
        return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    @torch.inference_mode()
    def render(self, z: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Codes (N, latent_dim) -> uint8 images (N, H, W, 3) on ``self.device``, in batches."""
        z = self.check_latents(z)
        bs = batch_size or self.batch_size
        out = [self.postprocess(check_finite_output(self.synthesize(z[i:i + bs].to(self.device)), self.name))
               for i in range(0, len(z), bs)]
        return torch.cat(out) if out else torch.empty(0, self.resolution, self.resolution, 3, dtype=torch.uint8)

    def first_layer_weight(self) -> np.ndarray | None:
        """The weight of the layers that consume the code, as (out_features, latent_dim), for SeFa."""
        return None

    def space_centre(self) -> torch.Tensor:
        """The centre of the bound space as a (latent_dim,) CPU float tensor: zero in z (N(0, I) noise);
        style families override it with their average ``w`` in w / w+."""
        if self.space != "z":
            raise InputError(f"generator {self.name!r} in space {self.space} declares no centre of that space")
        return torch.zeros(self.latent_dim)

    def network(self) -> nn.Module | None:
        """The torch module whose parameters make the picture (None when there is none): inversion freezes
        it, pivotal tuning fine-tunes the parameters of a ``copy``'s."""
        return None

    def copy(self) -> Generator:
        """An independent generator like this one: changing its ``network``'s parameters leaves this one's alone."""
        return copy.deepcopy(self)



class NonFiniteOutputError(WeightsError):
    """A generator drew NaN or infinite values: its weights are damaged (a finite latent went in)."""


def check_finite_output(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` (a batch of raw generator output) if every value is finite; else :class:`NonFiniteOutputError`.

    Postprocessing clamps NaN to black, so without this check damaged weights give black pictures and
    exit code 0. One reduction per batch: cheap beside the synthesis that made it.
    """
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteOutputError(f"generator {name!r} drew NaN or infinite pixels from finite latents; its "
                                   "weights are damaged (NaN or overflowing values): fetch or export it again")
    return x

GENERATORS: Registry[Generator] = Registry("generator")
