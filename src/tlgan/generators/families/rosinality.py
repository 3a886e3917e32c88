"""The ``rosinality`` family: rosinality stylegan2-pytorch ``.pt`` checkpoints (``g_ema``, ``latent_avg``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..stylegan2 import build_rosinality
from . import Family, register_family


def recognise(payload: Any) -> bool:
    return isinstance(payload, dict) and ("g_ema" in payload or "g" in payload)


FAMILY = register_family(Family(
    "rosinality", "rosinality stylegan2-pytorch .pt", build_rosinality, style=True, framing="ffhq",
    recognise=recognise,
    zip_globals=(argparse.Namespace,)))  # the training run's arguments (``args``), read as inert data
