"""Import the modules that register plugins: generators, checkpoint families, extractors, finders, fields.

Built-in plugins are always loaded. Users add their own without touching
tlgan: a module named in the environment variable ``TLGAN_PLUGINS``
(comma-separated), or an installed package that declares an entry point in
the group ``tlgan.plugins``. Each such module registers what it defines on
import (``GENERATORS``, ``EXTRACTORS``, ``FINDERS``, ``FIELDS`` ``.register(...)``
or ``register_family``); docs/architecture.md says what each kind's one file holds.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

BUILTIN = ("tlgan.generators.dcgan", "tlgan.extractors.faces", "tlgan.toy", "tlgan.finders",
           "tlgan.extractors.trained")
PLUGINS_ENV = "TLGAN_PLUGINS"

_loaded = False


def load_plugins() -> None:
    """Import every plugin module once (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN:
        importlib.import_module(name)
    for name in filter(None, (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"cannot import plugin module {name!r} named in ${PLUGINS_ENV}: {e}") from e
    for ep in entry_points(group="tlgan.plugins"):
        ep.load()
