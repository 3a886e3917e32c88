"""The ``stylegan2`` family: NVlabs StyleGAN2-ADA / stylegan3-repo StyleGAN2 snapshot pickles (``G_ema``)."""

from __future__ import annotations

from typing import Any

from ..safe_pickle import EasyDict, PersistentObject, reconstruct_persistent
from ..stylegan2 import build_nvlabs
from . import Family, register_family

#: what an NVlabs training snapshot (stylegan2-ada-pytorch, stylegan3) names besides tensors and arrays
NVLABS_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent,
}


def snapshot_network(payload: Any) -> PersistentObject | None:
    """The generator an NVlabs snapshot samples from (``G_ema``, else ``G``); None when ``payload`` is none."""
    if not isinstance(payload, dict):
        return None
    nets = [payload.get(k) for k in ("G_ema", "G")]
    return next((n for n in nets if isinstance(n, PersistentObject)), None)


def is_stylegan3_snapshot(payload: Any) -> bool | None:
    """Whether an NVlabs snapshot's generator is a StyleGAN3 one (None when ``payload`` is no snapshot)."""
    net = snapshot_network(payload)
    return None if net is None else "synthesis.input.freqs" in net.state_dict()


FAMILY = register_family(Family(
    "stylegan2", "NVlabs StyleGAN2-ADA / stylegan3-repo StyleGAN2 pickle", build_nvlabs, style=True, framing="ffhq",
    recognise=lambda payload: is_stylegan3_snapshot(payload) is False,
    pickle_globals=NVLABS_PICKLE_GLOBALS))
