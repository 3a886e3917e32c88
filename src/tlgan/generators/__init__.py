"""Step 1 — generators: a latent vector z goes in, an image comes out.

``Generator`` is the one interface every model family implements; the
registry ``GENERATORS`` maps names (``digiface-dcgan``) to factories.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..devices import default_batch, resolve_device
from ..errors import InputError
from ..weights import WeightsError
from ..registry import Registry, UnknownNameError


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
    ``codes_from_z`` and declare ``spaces``, ``num_ws`` and ``w_avg``.
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
    framing: str = "digiface"

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
        out = [self.postprocess(self.synthesize(z[i:i + bs].to(self.device))) for i in range(0, len(z), bs)]
        return torch.cat(out) if out else torch.empty(0, self.resolution, self.resolution, 3, dtype=torch.uint8)

    def first_layer_weight(self) -> np.ndarray | None:
        """The weight of the layers that consume the code, as (out_features, latent_dim), for SeFa."""
        return None

    def network(self) -> torch.nn.Module:
        """The torch module that draws the pictures (DCGAN: its module; checkpoints: their ``net``), e.g. to
        fine-tune a copy of it for one photo (``tlgan.photo.tuning``)."""
        net = getattr(self, "net", None)
        if not isinstance(net, torch.nn.Module):
            raise NotImplementedError(f"generator {self.name!r} exposes no torch module")
        return net


GENERATORS: Registry[Generator] = Registry("generator")


def load_generator(name: str, device: str | None = None, space: str = "z", truncation: float = 1.0,
                   family: str | None = None, network: str | None = None, precision: str = "auto") -> Generator:
    """A generator by registered name (``digiface-dcgan``, a name from ``tlgan models add``) or checkpoint path.

    ``space`` (z, w, w+) and ``truncation`` bind it to a latent space;
    ``family`` forces a checkpoint family instead of recognising it from the
    file; ``network`` picks a network of a training snapshot (default: the
    averaged one).
    """
    from ..plugins import load_plugins
    from . import library
    from .checkpoints import open_checkpoint

    load_plugins()
    if space not in SPACES:
        raise UnknownNameError(f"unknown latent space {space!r}; spaces: {', '.join(SPACES)}")
    if name in GENERATORS:
        gen = GENERATORS.create(name, device=device)
        if space not in gen.spaces or truncation != 1.0:
            raise UnknownNameError(f"generator {name!r} has only the {', '.join(gen.spaces)} space and no "
                                   "truncation; --space and --truncation are for generators with a mapping "
                                   "network (StyleGAN files)")
        return gen
    if name in library.registered():
        entry = library.verified(name)
        return open_checkpoint(entry["path"], family=family or entry["family"], space=space, truncation=truncation,
                               device=device, name=name, network=network or entry.get("network"),
                               sha256=entry["sha256"], precision=precision)
    if Path(name).expanduser().exists():
        return open_checkpoint(Path(name).expanduser(), family=family, space=space, truncation=truncation,
                               device=device, network=network, precision=precision)
    known = ", ".join(GENERATORS.names() + sorted(library.registered())) or "none"
    raise UnknownNameError(f"unknown generator {name!r}: neither a registered name ({known}) nor an existing "
                           "checkpoint file; give a path to a .pkl/.pt file or register one with `tlgan models add`")


def generator_of(meta: Mapping[str, Any], device: str | None = "auto") -> Generator:
    """The generator a run or axes file was made with, in the same latent space and truncation.

    A user's checkpoint that was never registered is reopened from the path
    recorded when it was sampled (its checksum is checked against the one
    recorded, so a replaced file is refused).
    """
    from ..plugins import load_plugins
    from . import library

    load_plugins()
    name = str(meta.get("generator", "digiface-dcgan"))
    where = name
    if name not in GENERATORS and name not in library.registered() and meta.get("generator_source"):
        where = str(meta["generator_source"])
    gen = load_generator(where, device, space=str(meta.get("latent_space", "z")),
                         truncation=float(meta.get("truncation", 1.0)))
    want = meta.get("generator_sha256")
    if want and gen.sha256 and want != gen.sha256:
        raise WeightsError(f"{where} is not the file {name!r} was made with (SHA-256 differs); "
                           "register the original file with `tlgan models add`")
    return gen
