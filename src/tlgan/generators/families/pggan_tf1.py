"""The ``pggan-tf1`` family: the original TF1 PGGAN pickle (karras2018iclr, ``Gs``), as TL-GAN loads it."""

from __future__ import annotations

from typing import Any

from ..pggan import build_tf1
from ..safe_pickle import EasyDict, TFNetwork
from . import Family, register_family


def _tf_build_funcs(payload: Any) -> set[str] | None:
    """The build functions of a pickled tuple of TF1 networks (None when ``payload`` is not one)."""
    if isinstance(payload, (tuple, list)) and payload and all(isinstance(n, TFNetwork) for n in payload):
        return {n.build_func_name for n in payload}
    return None


def recognise(payload: Any) -> bool:
    return "G_paper" in (_tf_build_funcs(payload) or set())


def explain(payload: Any, path: str) -> str | None:
    funcs = _tf_build_funcs(payload)
    if funcs is None or "G_paper" in funcs:
        return None
    return (f"{path} is a TF1 network pickle built by {', '.join(sorted(funcs))}; tlgan reads the PGGAN one "
            "(G_paper). For TF1 StyleGAN files, convert them to the PyTorch format with the stylegan2-ada-pytorch "
            "tools first")


FAMILY = register_family(Family(
    "pggan-tf1", "TF1 PGGAN pickle (karras2018iclr), as TL-GAN loads it", build_tf1, style=False,
    framing="celebahq", recognise=recognise, explain=explain,
    pickle_globals={("tfutil", "Network"): TFNetwork, ("dnnlib.tflib.network", "Network"): TFNetwork,
                    ("dnnlib.util", "EasyDict"): EasyDict, ("dnnlib", "EasyDict"): EasyDict}))
