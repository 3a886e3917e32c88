"""Test-only writers: save a tlgan PGGANGenerator in the two original on-disk layouts.

They let the tests round-trip configurations the fixtures do not cover. Names
and layouts are spelled out here independently of the loaders (the TF1
G_paper variable names and TF weight layouts; the pytorch_GAN_zoo GNet keys),
so that a mapping mistake in a loader shows up as a mismatch.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlgan.generators.pggan import PGGANGenerator


@contextlib.contextmanager
def _fake_modules(names: list[str]) -> Iterator[list[types.ModuleType]]:
    """Temporarily register empty modules so pickle can name a stub class by its original path."""
    saved = {n: sys.modules.get(n) for n in names}
    mods = [types.ModuleType(n) for n in names]
    sys.modules.update(zip(names, mods, strict=True))
    try:
        yield mods
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy().copy()


def tf1_variables(net: PGGANGenerator, lod: float = 0.0) -> list[tuple[str, Any]]:
    """G_paper's ``variables`` list for ``net``, in creation order, with TF layouts."""
    top = len(net.blocks)
    out: list[tuple[str, Any]] = [("lod", np.float32(lod))]

    def conv(scope: str, layer: Any, fused: bool = False) -> None:
        w = layer.weight  # (out, in, kh, kw), or (in, out, kh, kw) for the fused transposed conv
        out.append((f"{scope}/weight", _np(w.permute(2, 3, 1, 0))))  # -> [kh, kw, in, out] / [kh, kw, out, in]
        out.append((f"{scope}/bias", _np(layer.bias)))

    out.append(("4x4/Dense/weight", _np(net.dense.weight.t())))
    out.append(("4x4/Dense/bias", _np(net.dense.bias)))
    conv("4x4/Conv", net.conv)
    conv(f"ToRGB_lod{top}", net.torgb[0])
    for i, block in enumerate(net.blocks, start=1):
        r = 4 * 2 ** i
        conv(f"{r}x{r}/Conv0_up" if block.fused else f"{r}x{r}/Conv0", block.conv0)
        conv(f"{r}x{r}/Conv1", block.conv1)
        conv(f"ToRGB_lod{top - i}", net.torgb[i])
    return out


def write_pggan_tf1(path: str | Path, gs: PGGANGenerator, static_kwargs: dict[str, Any],
                    g: PGGANGenerator | None = None, lod: float = 0.0) -> Path:
    """Pickle ``(G, D, Gs)`` as tkarras' ``misc.save_pkl`` does, with a stub ``tfutil.Network``."""
    path = Path(path)
    with _fake_modules(["tfutil"]) as (tfutil,):
        class Network:
            def __init__(self, state: dict[str, Any]) -> None:
                self._state = state

            def __getstate__(self) -> dict[str, Any]:
                return self._state

        Network.__module__ = "tfutil"
        Network.__qualname__ = "Network"
        tfutil.Network = Network  # type: ignore[attr-defined]

        def net(name: str, func: str, variables: list[tuple[str, Any]]) -> Network:
            return Network({"version": 2, "name": name, "static_kwargs": dict(static_kwargs),
                            "build_module_src": "# networks.py text (not needed by a clean-room loader)\n",
                            "build_func_name": func, "variables": variables})

        nets = (net("G", "G_paper", tf1_variables(g or gs, lod)), net("D", "D_paper", []),
                net("Gs", "G_paper", tf1_variables(gs, lod)))
        path.write_bytes(pickle.dumps(nets, protocol=4))
    return path


def zoo_state_dict(net: PGGANGenerator) -> dict[str, torch.Tensor]:
    """pytorch_GAN_zoo GNet keys for ``net`` (built with the zoo conventions)."""
    sd = {"formatLayer.module.weight": net.dense.weight, "formatLayer.module.bias": net.dense.bias,
          "groupScale0.0.module.weight": net.conv.weight, "groupScale0.0.module.bias": net.conv.bias}
    for s, block in enumerate(net.blocks):
        for j, layer in enumerate((block.conv0, block.conv1)):
            sd[f"scaleLayers.{s}.{j}.module.weight"] = layer.weight
            sd[f"scaleLayers.{s}.{j}.module.bias"] = layer.bias
    for s, layer in enumerate(net.torgb):
        sd[f"toRGBLayers.{s}.module.weight"] = layer.weight
        sd[f"toRGBLayers.{s}.module.bias"] = layer.bias
    return {k: v.detach().clone() for k, v in sd.items()}


def zoo_fields(net: PGGANGenerator, loss: str = "WGANGP", alpha: float = 0.0) -> dict[str, Any]:
    """The BaseConfig fields ``ProgressiveGAN`` stores for ``net``."""
    cfg = net.cfg
    return {"depthScale0": cfg.channels[0], "depthOtherScales": list(cfg.channels[1:]), "alpha": alpha,
            "latentVectorDim": cfg.z_dim, "noiseVectorDim": cfg.z_dim, "categoryVectorDim": 0,
            "dimOutput": cfg.img_channels, "perChannelNormalization": cfg.use_pixelnorm,
            "equalizedlR": cfg.use_wscale, "leakyReluLeak": cfg.leaky_slope, "lossCriterion": loss,
            "initBiasToZero": True, "miniBatchStdDev": True, "learningRate": 0.001, "GDPP": False}


def write_pgan_zoo(path: str | Path, avg: PGGANGenerator | None, net: PGGANGenerator, fields: dict[str, Any],
                   legacy: bool = False) -> Path:
    """``torch.save`` ``{'config', 'netG', 'netD', 'avgG'}`` with a stub ``models.utils.config.BaseConfig``."""
    path = Path(path)
    with _fake_modules(["models", "models.utils", "models.utils.config"]) as (_, _, config_mod):
        class BaseConfig:
            pass

        BaseConfig.__module__ = "models.utils.config"
        BaseConfig.__qualname__ = "BaseConfig"
        config_mod.BaseConfig = BaseConfig  # type: ignore[attr-defined]
        config = BaseConfig()
        config.__dict__.update(fields)
        ckpt: dict[str, Any] = {"config": config, "netG": zoo_state_dict(net), "netD": {}}
        if avg is not None:
            ckpt["avgG"] = zoo_state_dict(avg)
        torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return path


def he_constant(fan_in: int) -> float:
    """The zoo's ``getLayerNormalizationFactor``: sqrt(2 / fan_in)."""
    return math.sqrt(2.0 / fan_in)
