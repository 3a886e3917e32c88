"""Test-only writer of NVlabs stylegan3 snapshot pickles from tlgan's own ``StyleGAN3Generator``.

Each network is pickled the way ``torch_utils.persistence`` does it: a call of
the global ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose
``meta`` holds the class name and the module's state (``_parameters``,
``_buffers``, ``_modules`` of nested persistent objects, ``_init_kwargs``).
Tensors pickle themselves (``torch._utils`` rebuilders, storages through
``torch.storage._load_from_bytes``). A stand-in module is put in
``sys.modules`` only while pickling so that pickle can name that global.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from tlgan.generators.stylegan3 import MappingNetwork, StyleGAN3Generator, SynthesisNetwork


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> None:
    raise AssertionError("only named in the pickle, never called")


class _Persistent:
    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return _reconstruct_persistent_obj, (self.meta,)


@contextmanager
def _persistence_module() -> Iterator[None]:
    names = ("torch_utils", "torch_utils.persistence")
    saved = {n: sys.modules.get(n) for n in names}
    module = types.ModuleType("torch_utils.persistence")
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj  # type: ignore[attr-defined]
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = module
    try:
        yield
    finally:
        _reconstruct_persistent_obj.__module__ = __name__
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def _init_kwargs(module: nn.Module, top: dict[str, Any]) -> dict[str, Any]:
    if isinstance(module, StyleGAN3Generator):
        return dict(top)
    if isinstance(module, MappingNetwork):
        return dict(z_dim=top["z_dim"], c_dim=0, w_dim=top["w_dim"], num_ws=module.num_ws,
                    **top.get("mapping_kwargs", {}))
    if isinstance(module, SynthesisNetwork):
        skip = ("z_dim", "c_dim", "mapping_kwargs")
        return {k: v for k, v in top.items() if k not in skip}
    return {}


def _persistent(module: nn.Module, top: dict[str, Any]) -> _Persistent:
    state = {
        "training": False,
        "_parameters": OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": OrderedDict((k, v) for k, v in module._buffers.items()),
        "_modules": OrderedDict((k, _persistent(c, top)) for k, c in module._modules.items()),
        "_init_args": (),
        "_init_kwargs": _init_kwargs(module, top),
    }
    name = "Generator" if isinstance(module, StyleGAN3Generator) else type(module).__name__
    return _Persistent(dict(type="class", version=4, module_src="# not stored by the test writer\n",
                            class_name=name, state=state))


def write_snapshot(path: str | Path, g_ema: StyleGAN3Generator, g: StyleGAN3Generator | None = None,
                   init_kwargs: dict[str, Any] | None = None) -> Path:
    """Write ``{G, D, G_ema, augment_pipe, training_set_kwargs}`` like the NVlabs training loop (D left None).

    ``init_kwargs`` overrides the recorded constructor kwargs (to craft files the loader must refuse).
    """
    top = dict(init_kwargs if init_kwargs is not None else g_ema.init_kwargs)
    data = {"G": _persistent(g if g is not None else g_ema, top), "D": None, "G_ema": _persistent(g_ema, top),
            "augment_pipe": None, "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset"}}
    path = Path(path)
    with _persistence_module():
        path.write_bytes(pickle.dumps(data, protocol=4))
    return path
