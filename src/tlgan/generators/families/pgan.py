"""The ``pgan`` family: pytorch_GAN_zoo PGAN ``.pt`` checkpoints (``avgG``; the torch.hub celebAHQ layout)."""

from __future__ import annotations

from typing import Any

from ..pggan import ZOO_CONFIG_GLOBAL, ZooConfig, build_gan_zoo
from . import Family, register_family


def recognise(payload: Any) -> bool:
    return isinstance(payload, dict) and ("avgG" in payload or "netG" in payload)


FAMILY = register_family(Family(
    "pgan", "pytorch_GAN_zoo PGAN .pt (torch.hub celebAHQ layout)", build_gan_zoo, style=False, framing="celebahq",
    recognise=recognise,
    zip_globals=((ZooConfig, ZOO_CONFIG_GLOBAL),)))  # the zoo's pickled BaseConfig, read as an inert record
