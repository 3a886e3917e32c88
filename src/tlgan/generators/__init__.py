"""Step 1 — generators: a latent vector z goes in, an image comes out.

``Generator`` is the one interface every model family implements; the
registry ``GENERATORS`` maps names (``digiface-dcgan``) to factories.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from ..devices import default_batch, resolve_device
from ..errors import InputError
from ..registry import Registry


class Generator(ABC):
    """A pretrained image generator G: z (N, latent_dim) -> images.

    Subclasses set ``name``, ``latent_dim``, ``resolution`` and implement
    ``synthesize``. ``sample`` and ``postprocess`` are shared.
    """

    name: str
    latent_dim: int
    resolution: int
    latent_space: str = "z"

    def __init__(self, device: str | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = default_batch(self.device, cpu=256, gpu=1024)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` latents from N(0, I), reproducible from ``seed`` on any device.

        Prefix-stable: ``sample(n, seed)[i] == sample(m, seed)[i]`` for every
        ``i < min(n, m)``, so ``(seed, i)`` names one latent (label files rely
        on it). torch's CPU normal sampler redraws the last 16 values of a
        draw whose size is not a multiple of 16, so whole blocks of 16 rows
        are drawn and the surplus dropped.
        """
        g = torch.Generator().manual_seed(int(seed))
        rows = -(-int(n) // 16) * 16
        return torch.randn(rows, self.latent_dim, generator=g)[:n].numpy()

    def check_latents(self, z: np.ndarray | torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InputError(
                f"generator {self.name!r} takes latents of size {self.latent_dim}, got shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise InputError("latents contain NaN or infinite values")
        return z.float()

    @abstractmethod
    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw generator output for one batch of latents on ``self.device``: float NCHW in [-1, 1]."""

    @staticmethod
    def postprocess(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] NCHW floats -> uint8 NHWC (still on the same device)."""
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    @torch.inference_mode()
    def render(self, z: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Latents (N, latent_dim) -> uint8 images (N, H, W, 3) on ``self.device``, in batches."""
        z = self.check_latents(z)
        bs = batch_size or self.batch_size
        out = [self.postprocess(self.synthesize(z[i:i + bs].to(self.device))) for i in range(0, len(z), bs)]
        return torch.cat(out) if out else torch.empty(0, self.resolution, self.resolution, 3, dtype=torch.uint8)

    def first_layer_weight(self) -> np.ndarray | None:
        """The weight of the first layer that consumes z, as (out_features, latent_dim), for SeFa."""
        return None


GENERATORS: Registry[Generator] = Registry("generator")


def load_generator(name: str, device: str | None = None) -> Generator:
    """Build a registered generator by name, e.g. ``load_generator("digiface-dcgan")``."""
    from ..plugins import load_plugins

    load_plugins()
    return GENERATORS.create(name, device=device)
