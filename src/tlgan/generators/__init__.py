"""Step 1 — generators: a latent vector z goes in, an image comes out.

``Generator`` (in :mod:`.base`) is the one interface every model implements; the
registry ``GENERATORS`` maps names (``digiface-dcgan``) to factories; users'
checkpoint files are read by the families in :mod:`.families`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..registry import UnknownNameError
from ..weights import WeightsError
from .base import GENERATORS, SPACES, Generator, LatentSpace, NonFiniteOutputError, check_finite_output, standard_normal

__all__ = [
    "GENERATORS",
    "SPACES",
    "Generator",
    "LatentSpace",
    "NonFiniteOutputError",
    "check_finite_output",
    "generator_of",
    "load_generator",
    "standard_normal",
]


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
        gen = open_checkpoint(Path(name).expanduser(), family=family, space=space, truncation=truncation,
                              device=device, network=network, precision=precision)
        library.remember_path(name)  # the user named this file: what is made from it may name it later
        return gen
    known = ", ".join(GENERATORS.names() + sorted(library.registered())) or "none"
    raise UnknownNameError(f"unknown generator {name!r}: neither a registered name ({known}) nor an existing "
                           "checkpoint file; give a path to a .pkl/.pt file or register one with `tlgan models add`")


def generator_location(meta: Mapping[str, Any]) -> str:
    """What ``load_generator`` takes to reopen the generator a run or axes file names: its registered name, or
    for a user's checkpoint never registered, the path recorded when it was sampled."""
    from . import library

    name = str(meta.get("generator", "digiface-dcgan"))
    if name not in GENERATORS and name not in library.registered() and meta.get("generator_source"):
        return str(meta["generator_source"])
    return name


def generator_of(meta: Mapping[str, Any], device: str | None = "auto", source: object = "this file") -> Generator:
    """The generator a run or axes file was made with, in the same latent space and truncation.

    A user's checkpoint that was never registered is reopened from the path
    recorded when it was sampled (its checksum is checked against the one
    recorded, so a replaced file is refused), but only a path the user named
    on the command line before: ``source`` (the file ``meta`` came from) may
    not send tlgan to any file it likes.
    """
    from ..plugins import load_plugins
    from . import library

    load_plugins()
    name = str(meta.get("generator", "digiface-dcgan"))
    where = generator_location(meta)
    library.check_named_path(where, source)
    gen = load_generator(where, device, space=str(meta.get("latent_space", "z")),
                         truncation=float(meta.get("truncation", 1.0)))
    want = meta.get("generator_sha256")
    if want and gen.sha256 and want != gen.sha256:
        raise WeightsError(f"{where} is not the file {name!r} was made with (SHA-256 differs); "
                           "register the original file with `tlgan models add`")
    return gen
