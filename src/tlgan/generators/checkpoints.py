"""Generators read from users' checkpoint files: recognise the family from the content, rebuild, wrap.

A checkpoint is read as data and never executed: zip files with
``torch.load(weights_only=True)`` (the two pickled helper classes some files
hold, PGAN's ``BaseConfig`` and a training run's ``argparse.Namespace``, are
read into inert stubs), raw pickles with :mod:`.safe_pickle`. What was read
says which family it is (the registry in :mod:`.families` asks each family);
the family rebuilds the network with tlgan's implementation, and a
``Generator`` wraps it in the latent space the user asked for.

| family | file | spaces |
|---|---|---|
| ``stylegan2`` | NVlabs stylegan2-ada-pytorch / stylegan3 repo ``.pkl`` (``G_ema``) | z, w, w+ |
| ``stylegan3`` | NVlabs stylegan3 ``.pkl``, configs T and R (``G_ema``) | z, w, w+ |
| ``rosinality`` | rosinality stylegan2-pytorch ``.pt`` (``g_ema``, ``latent_avg``) | z, w, w+ |
| ``pgan`` | pytorch_GAN_zoo PGAN ``.pt`` (``avgG``) | z |
| ``pggan-tf1`` | the original TF1 PGGAN ``.pkl`` (``Gs``), as TL-GAN loads it | z |
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ..weights import WeightsError
from .base import Generator, LatentSpace
from .families import Family, get_family, recognise, zip_globals
from .network import ImageNetwork, StyleNetwork, missing_members
from .safe_pickle import load_pickle

__all__ = ["CheckpointGenerator", "Family", "open_checkpoint", "read_checkpoint", "recognise"]


#: how a pre-1.6 (non-zip) ``torch.save`` file begins: the pickled magic number 0x1950a86a20f9469cfc6c
TORCH_LEGACY_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


#: How much larger than the file its zip members may be in total once unpacked. ``torch.save`` stores its
#: members uncompressed (ratio 1); a zip bomb (a few MB of deflate unpacking to gigabytes) is far beyond this.
ZIP_MAX_RATIO = 4


def check_zip_members(path: Path) -> None:
    """Refuse a zip whose members declare more than ``ZIP_MAX_RATIO`` x the file's size, before unpacking any."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as z:
            declared = sum(max(info.file_size, 0) for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise WeightsError(f"{path} is a damaged zip file ({e})") from e
    if declared > ZIP_MAX_RATIO * size + (1 << 20):
        raise WeightsError(f"{path} is a zip whose members unpack to {declared:,} bytes, {declared / size:.0f}x its "
                           f"{size:,} bytes; a torch checkpoint stores its tensors uncompressed, so this is not one "
                           "(refused before unpacking)")


def read_checkpoint(path: str | Path) -> Any:
    """What a checkpoint file holds, read as data (torch zip or pickle); clear errors for anything else."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"generator checkpoint {path} does not exist")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; give the checkpoint file (.pkl or .pt) inside it")
    with open(path, "rb") as fh:
        head = fh.read(32)
    if zipfile.is_zipfile(path) or TORCH_LEGACY_MAGIC in head:
        if zipfile.is_zipfile(path):
            check_zip_members(path)
        try:
            with torch.serialization.safe_globals(zip_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises a mix of types for foreign or damaged zips
            raise WeightsError(f"{path} is a torch zip file that tlgan cannot read safely: {e}".split("\n")[0]
                               + ". Only plain tensors and the known config records are read") from e
    return load_pickle(path)


class CheckpointGenerator(Generator):
    """A generator rebuilt from a user's checkpoint file, bound to one of its latent spaces.

    Style-based families (a mapping network) offer ``z``, ``w`` and ``w+``;
    ``truncation`` < 1 pulls every code toward the file's own average ``w``
    (``w_avg`` / ``latent_avg``) in all three. PGGAN offers ``z`` only.
    """

    def __init__(self, net: nn.Module, family: Family, name: str, space: str = "z", truncation: float = 1.0,
                 device: str | None = None, source: str | None = None, sha256: str | None = None,
                 info: dict | None = None, precision: str = "auto") -> None:
        super().__init__(device)
        self.family = family
        self.name = name
        self.source, self.sha256 = source, sha256
        self.info = dict(info or {})
        self.framing = family.framing
        self.spaces = ("z", "w", "w+") if family.style else ("z",)
        if space not in self.spaces:
            raise WeightsError(f"generator {name!r} ({family.name}) has no {space!r} latent space; it has: "
                               f"{', '.join(self.spaces)}")
        if not family.style and truncation != 1.0:
            raise WeightsError(f"truncation needs a mapping network; {family.name} generators take truncation 1 only")
        if not 0.0 <= truncation <= 2.0:
            raise WeightsError(f"truncation must lie in [0, 2] (1 = none, 0.7 is usual); got {truncation}")
        self.space, self.truncation = space, float(truncation)
        module = net.eval().requires_grad_(False).to(self.device)
        protocol = StyleNetwork if family.style else ImageNetwork
        lacking = missing_members(module, protocol)
        if lacking:
            raise WeightsError(f"the {family.name} family built a network without {', '.join(lacking)}, which a "
                               f"{protocol.__name__} must offer (see tlgan.generators.network)")
        self.net = module
        #: the network as its family's protocol declares it (None for families without a mapping network)
        self.style_net: StyleNetwork | None = cast(StyleNetwork, module) if family.style else None
        self.resolution = int(cast(ImageNetwork, module).img_resolution)
        self.num_ws = int(self.style_net.num_ws) if self.style_net is not None else 1
        self._z_dim = int(cast(ImageNetwork, module).z_dim)
        self.latent_dim = self._z_dim if space == "z" or self.style_net is None else int(self.style_net.w_dim)
        pixels = self.resolution ** 2
        self.batch_size = max(1, min(self.batch_size, (self.batch_size * 64 * 64) // pixels))
        self.half = precision == "fp16" or (precision == "auto" and self.device.type == "cuda" and family.style)
        self._norms: dict[str, float] = {}

    @property
    def z_dim(self) -> int:
        return self._z_dim

    def _mapped(self) -> StyleNetwork:
        """The style network, for what only style families have (their spaces w / w+ exist only then)."""
        if self.style_net is None:
            raise WeightsError(f"generator {self.name!r} has no mapping network")
        return self.style_net

    @torch.inference_mode()
    def _map(self, z: torch.Tensor) -> torch.Tensor:
        return self._mapped().mapping(z, truncation_psi=self.truncation)

    def codes_from_z(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float32)
        if self.space == "z":
            return z
        out = [self._map(torch.from_numpy(z[i:i + 4096]).to(self.device))[:, 0].float().cpu().numpy()
               for i in range(0, len(z), 4096)]
        return np.concatenate(out) if out else np.zeros((0, self.latent_dim), np.float32)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        if self.style_net is None:
            return self.net(z)
        if self.space == "z":
            ws = self._map(z)
        elif z.ndim == 2:
            ws = z[:, None, :].expand(-1, self.num_ws, -1)
        else:
            ws = z
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.half):
            return self.style_net.synthesis(ws, noise_mode="const").float()

    def _style_space(self, space: str) -> LatentSpace:
        if space not in self._norms:  # the mean distance of a sampled w from w_avg, on 1,000 fixed draws
            z = torch.from_numpy(self.sample_z(1000, 0)).to(self.device)
            w = self._map(z)[:, 0].float()
            self._norms[space] = float((w - self._mapped().w_avg.float()).norm(dim=1).mean())
        shape = (self.latent_dim,) if space == "w" else (self.num_ws, self.latent_dim)
        norm = self._norms[space] * (np.sqrt(self.num_ws) if space == "w+" else 1.0)
        return LatentSpace(space, shape, norm)

    def first_layer_weight(self) -> np.ndarray | None:
        """For SeFa: in w / w+ the stacked affine weights of every modulated layer; in z the first layer's."""
        if self.space != "z" and self.style_net is not None:
            return torch.cat([w for _, w in self.style_net.style_weights()]).float().cpu().numpy()
        weight = getattr(self.net, "first_layer_weight", None)  # optional: a z-space SeFa needs a linear first layer
        return np.asarray(weight()) if callable(weight) else None

    def space_centre(self) -> torch.Tensor:
        """Zero in z; in w / w+ the file's average w (``w_avg`` / ``latent_avg``), where truncation pulls toward."""
        if self.space == "z":
            return super().space_centre()
        return self._mapped().w_avg.detach().float().cpu().reshape(self.latent_dim)

    def network(self) -> nn.Module:
        return self.net


def open_checkpoint(path: str | Path, family: str | None = None, space: str = "z", truncation: float = 1.0,
                    device: str | None = None, name: str | None = None, network: str | None = None,
                    sha256: str | None = None, precision: str = "auto") -> CheckpointGenerator:
    """Read ``path`` safely, rebuild its generator and bind it to ``space``.

    ``family`` forces a family instead of recognising it; ``network`` picks
    which network of a training snapshot (default: the averaged one,
    ``G_ema`` / ``g_ema`` / ``avgG`` / ``Gs``).
    """
    from ..safeio import sha256_of

    path = Path(path)
    payload = read_checkpoint(path)
    fam_name = family or recognise(payload, path)
    fam = get_family(fam_name)
    try:
        net = fam.build(payload, network)
    except WeightsError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise WeightsError(f"{path} does not hold a {fam_name} generator tlgan can rebuild "
                           f"({type(e).__name__}: {e})") from e
    digest = sha256 or sha256_of(path)
    gen = CheckpointGenerator(net, fam, name or f"{path.stem}-{digest[:8]}", space, truncation, device,
                              str(path.resolve()), digest, dict(getattr(net, "info", {}), family=fam_name),
                              precision)
    probe_render(gen, path)
    return gen


def probe_render(gen: Generator, path: Path) -> None:
    """Render one face of a freshly opened checkpoint: NaN or overflowing weights give no error of their own,
    only black pictures, so they are named here, once, before any work is done with them."""
    from .base import NonFiniteOutputError

    try:
        gen.render(gen.sample(1, 0))
    except NonFiniteOutputError:
        raise WeightsError(f"{path}: its generator draws NaN or infinite pixels (a probe face from seed 0); "
                           "its weights are damaged (NaN or overflowing values)") from None
