"""Checkpoint families: how to recognise a file's content, rebuild its network and read it safely.

Each module of this package declares one family and registers it with
:func:`register_family`; :func:`families` imports them all on first use, so
adding a family is adding one file here (or, from outside tlgan, one module
that calls ``register_family``, e.g. a ``tlgan.plugins`` entry point). The
rest of tlgan asks this registry: which family a payload is
(:func:`recognise`), and which globals the safe readers may let through
(:func:`pickle_globals`, :func:`zip_globals`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ...align import FRAMINGS, Framing
from ...weights import WeightsError


def _recognises_nothing(payload: Any) -> bool:
    return False


def _explains_nothing(payload: Any, path: str) -> str | None:
    return None


@dataclass(frozen=True)
class Family:
    """A checkpoint family: how to rebuild its network from what was read, and what it offers.

    ``build(payload, network)`` returns the network (an ``ImageNetwork``, or a
    ``StyleNetwork`` when ``style``; see :mod:`tlgan.generators.network`) with
    an ``info`` dict; ``network`` picks one network of a training snapshot.
    ``recognise(payload)`` says whether what ``read_checkpoint`` returned is
    this family's (a family that recognises nothing is used only when forced
    with ``--family``). ``explain(payload, path)`` may return the error for a
    payload that looks like this family's but that it cannot read (None
    otherwise). ``pickle_globals`` are the globals this family's raw pickles
    name besides tensors and arrays ((module, name) -> what the safe unpickler
    returns for it); ``zip_globals`` the objects its torch zip files hold
    besides tensors (as ``torch.serialization.safe_globals`` takes them).
    ``framing`` is how its training faces were cropped (a name in
    ``tlgan.align.FRAMINGS``, or its own ``Framing``).
    """

    name: str
    description: str
    build: Callable[[Any, str | None], nn.Module]
    style: bool  # has a mapping network: spaces z, w, w+
    framing: str | Framing
    recognise: Callable[[Any], bool] = _recognises_nothing
    explain: Callable[[Any, str], str | None] = _explains_nothing
    pickle_globals: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    zip_globals: Sequence[Any] = ()


_REGISTERED: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make ``family`` known to ``open_checkpoint``, ``recognise`` and the safe readers; returns it."""
    if family.name in _REGISTERED and _REGISTERED[family.name] is not family:
        raise WeightsError(f"generator family {family.name!r} is registered twice")
    if isinstance(family.framing, str) and family.framing not in FRAMINGS:
        raise WeightsError(f"generator family {family.name!r} names the unknown framing {family.framing!r}; "
                           f"known: {', '.join(FRAMINGS)} (or give a tlgan.align.Framing)")
    _REGISTERED[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Forget a registered family (for plugins and tests that add one for a while)."""
    _REGISTERED.pop(name, None)


@functools.cache
def _discover() -> None:
    """Import every module of this package once; each registers its family."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def families() -> dict[str, Family]:
    """Family name -> ``Family``, built-in ones first (their modules are imported on first use), then those of
    plugin modules (``$TLGAN_PLUGINS``, entry points), so every reader of a file knows the same families."""
    from ...plugins import load_plugins

    _discover()
    load_plugins()
    return dict(_REGISTERED)


def family_names() -> list[str]:
    return list(families())


def get_family(name: str) -> Family:
    """The family called ``name``; a clear error naming the known ones otherwise."""
    known = families()
    if name not in known:
        raise WeightsError(f"unknown generator family {name!r}; known: {', '.join(known)}")
    return known[name]


def recognise(payload: Any, path: str | Path = "the file") -> str:
    """The family name of what ``read_checkpoint`` returned, from its content alone."""
    known = families()
    matches = [f.name for f in known.values() if f.recognise(payload)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise WeightsError(f"{path} looks like a checkpoint of several families ({', '.join(matches)}); "
                           "force one with --family")
    for fam in known.values():
        reason = fam.explain(payload, str(path))
        if reason:
            raise WeightsError(reason)
    if isinstance(payload, dict):
        keys = ", ".join(map(str, list(payload)[:8]))
        raise WeightsError(f"{path} holds a dict with keys {keys}, which is no generator checkpoint tlgan knows "
                           f"(families: {', '.join(known)}); force one with --family if it is one of them")
    raise WeightsError(f"{path} holds a {type(payload).__name__}, not a generator checkpoint tlgan knows "
                       f"(families: {', '.join(known)})")


def pickle_globals() -> dict[tuple[str, str], Any]:
    """What the registered families' raw pickles may name besides tensors and arrays (see ``safe_pickle``)."""
    return {k: v for fam in families().values() for k, v in fam.pickle_globals.items()}


def zip_globals() -> list[Any]:
    """What the registered families' torch zip files may hold besides tensors, read as inert data."""
    return [g for fam in families().values() for g in fam.zip_globals]
