"""The ``stylegan3`` family: NVlabs StyleGAN3 snapshot pickles, configs T and R (``G_ema``)."""

from __future__ import annotations

from ..stylegan3 import build_nvlabs
from . import Family, register_family
from .stylegan2 import NVLABS_PICKLE_GLOBALS, is_stylegan3_snapshot

FAMILY = register_family(Family(
    "stylegan3", "NVlabs StyleGAN3 pickle (configs T and R)", build_nvlabs, style=True, framing="ffhq",
    recognise=lambda payload: is_stylegan3_snapshot(payload) is True,
    pickle_globals=NVLABS_PICKLE_GLOBALS))
