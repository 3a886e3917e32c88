"""Test-only writer of NVlabs network-snapshot pickles, and small random StyleGAN2 networks to put in them.

The files have the on-disk structure of ``stylegan2-ada-pytorch`` /
``stylegan3`` snapshots: a dict of networks, each pickled as
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta``
holds the class name and a nested module ``state`` (``_parameters``,
``_buffers``, ``_modules``, ``_init_args``, ``_init_kwargs``; nested kwargs as
``dnnlib.util.EasyDict``); tensors pickle themselves through
``torch.storage._load_from_bytes``. Stand-in ``torch_utils.persistence`` and
``dnnlib.util`` modules exist in ``sys.modules`` only while the writer runs,
so pickle can name those globals. No code of the original projects is used.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from tlgan.generators.stylegan2 import StyleGAN2, generator_from_nvlabs_kwargs, mean_w

# state-dict leaf names that NVlabs networks register as buffers (everything else is a parameter)
BUFFER_NAMES = {"w_avg", "resample_filter", "noise_const", "magnitude_ema", "up_filter", "down_filter",
                "transform", "freqs", "phases"}
_CLASS_NAMES = [(r"mapping", "MappingNetwork"), (r"synthesis", "SynthesisNetwork"), (r"b\d+", "SynthesisBlock"),
                (r"conv\d+", "SynthesisLayer"), (r"torgb", "ToRGBLayer"), (r"skip|fromrgb|conv|out", "Conv2dLayer"),
                (r"affine|fc\d*|embed", "FullyConnectedLayer"), (r"input", "SynthesisInput"),
                (r"L\d+_\d+_\d+", "SynthesisLayer")]
MODULE_SRC = "# stand-in for the network source an NVlabs snapshot carries; written by tlgan's tests\n"


def _reconstruct_persistent_obj(meta: dict) -> Any:  # named by the pickle; never called by tlgan
    raise RuntimeError("stand-in for torch_utils.persistence._reconstruct_persistent_obj")


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (pickled by name only)."""


@contextlib.contextmanager
def _stand_in_modules() -> Iterator[None]:
    names = {"torch_utils": {}, "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
             "dnnlib": {}, "dnnlib.util": {"EasyDict": EasyDict}}
    saved = {name: sys.modules.get(name) for name in names}
    old = (_reconstruct_persistent_obj.__module__, EasyDict.__module__)
    try:
        for name, attrs in names.items():
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
        _reconstruct_persistent_obj.__module__, EasyDict.__module__ = "torch_utils.persistence", "dnnlib.util"
        yield
    finally:
        _reconstruct_persistent_obj.__module__, EasyDict.__module__ = old
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Persistent:
    """Pickles as ``_reconstruct_persistent_obj(meta)``, as a ``@persistent_class`` instance does."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple:
        return _reconstruct_persistent_obj, (self.meta,)


def _easy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return EasyDict((k, _easy(v)) for k, v in value.items())
    return value


def _class_name(name: str) -> str:
    return next((cls for pattern, cls in _CLASS_NAMES if re.fullmatch(pattern, name)), "Module")


def _module(class_name: str, tree: dict, init_args: tuple = (), init_kwargs: Mapping | None = None) -> _Persistent:
    params, buffers, children = OrderedDict(), OrderedDict(), OrderedDict()
    for name, value in tree.items():
        if isinstance(value, dict):
            children[name] = _module(_class_name(name), value)
        elif name in BUFFER_NAMES:
            buffers[name] = value.detach().clone()
        else:
            params[name] = torch.nn.Parameter(value.detach().clone())
    state = {"training": False, "_parameters": params, "_buffers": buffers, "_modules": children,
             "_init_args": tuple(init_args), "_init_kwargs": {k: _easy(v) for k, v in (init_kwargs or {}).items()}}
    return _Persistent(dict(type="class", version=4, module_src=MODULE_SRC, class_name=class_name, state=state))


def _nest(state_dict: Mapping[str, torch.Tensor]) -> dict:
    tree: dict = {}
    for key, value in state_dict.items():
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def write_nvlabs_pickle(path: str | Path, nets: Mapping[str, tuple[str, Mapping[str, Any], Mapping[str, torch.Tensor]]],
                        extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``{**nets, **extra}`` as an NVlabs snapshot; each net is ``(class_name, init_kwargs, state_dict)``."""
    path = Path(path)
    data: dict[str, Any] = {name: _module(cls, _nest(sd), (), kwargs) for name, (cls, kwargs, sd) in nets.items()}
    data.update(extra or {})
    with _stand_in_modules(), open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


def stylegan2_kwargs(resolution: int = 32, z_dim: int = 32, w_dim: int = 32, *, mapping_layers: int = 2,
                     channel_base: int = 512, channel_max: int = 64, architecture: str = "skip",
                     conv_clamp: float | None = 256, flavour: str = "stylegan2-ada", **synthesis: Any) -> dict:
    """The ``init_kwargs`` an NVlabs StyleGAN2 ``Generator`` of this configuration records."""
    synth = dict(channel_base=channel_base, channel_max=channel_max, architecture=architecture,
                 conv_clamp=conv_clamp, **synthesis)
    common = dict(z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=mapping_layers))
    return {**common, "synthesis_kwargs": synth} if flavour == "stylegan2-ada" else {**common, **synth}


def random_stylegan2(resolution: int = 32, z_dim: int = 32, w_dim: int = 32, *, seed: int = 0,
                     flavour: str = "stylegan2-ada", **options: Any) -> StyleGAN2:
    """A small random StyleGAN2 built by tlgan from NVlabs kwargs (:func:`stylegan2_kwargs` options).

    Parameters the constructors zero (biases, noise strengths) get
    ``0.1 * randn`` and ``w_avg`` the mean mapped w, so no part is trivially
    zero. ``net.nvlabs_init_kwargs`` keeps the kwargs for the writer. The
    global torch RNG is left untouched.
    """
    kwargs = stylegan2_kwargs(resolution, z_dim, w_dim, flavour=flavour, **options)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = generator_from_nvlabs_kwargs(kwargs, flavour=flavour)
        with torch.no_grad():
            for p in net.parameters():
                if not p.any():
                    p.copy_(0.1 * torch.randn_like(p))
            net.mapping.w_avg.copy_(mean_w(net, 256, seed))
    net.nvlabs_init_kwargs = kwargs
    return net.eval()


def stylegan2_entry(net: StyleGAN2) -> tuple[str, dict, dict[str, torch.Tensor]]:
    """``(class_name, init_kwargs, state_dict)`` of a :func:`random_stylegan2` net, for :func:`write_nvlabs_pickle`."""
    return "Generator", net.nvlabs_init_kwargs, net.state_dict()


def write_stylegan2_snapshot(path: str | Path, G_ema: StyleGAN2, G: StyleGAN2 | None = None,
                             extra: Mapping[str, Any] | None = None) -> Path:
    """A stylegan2-ada-pytorch style snapshot (``training_set_kwargs``, ``G``, ``D``, ``G_ema``, ``augment_pipe``)."""
    nets = {"G": stylegan2_entry(G if G is not None else G_ema),
            "D": ("Discriminator", {"c_dim": 0, "img_resolution": G_ema.img_resolution, "img_channels": 3}, {}),
            "G_ema": stylegan2_entry(G_ema)}
    return write_nvlabs_pickle(path, nets, {"training_set_kwargs": {"resolution": G_ema.img_resolution},
                                            "augment_pipe": None, **(extra or {})})
