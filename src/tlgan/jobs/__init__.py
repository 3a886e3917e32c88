"""Whole jobs, one per ``tlgan`` command, callable from Python and the benchmarks: the one API that the command
line, the explorer and the benchmarks call (``core``: every job; ``pages``: the jobs that serve a web page).

The command line only parses options, calls one of these and prints what it returns; everything a job does
(loading models, setting up held-out latents, drawing figures, writing files) lives here so a Python user gets
the same result as ``tlgan CMD``. Progress goes to ``log`` (``None``: silent).
"""

from typing import Any

from .core import *  # noqa: F403 (the jobs, and what the command line offers as choices)
from .core import _png_beside  # noqa: F401 (the PNG an inversion writes beside its latent file)

#: the page jobs (``tlgan.jobs.pages``), looked up on first use: the explorer that they open itself calls
#: ``tlgan.jobs.core``, so importing them here would start the explorer's import before core's has finished
PAGE_JOBS = ("MAX_SESSIONS", "label", "open_explorer", "serve")


def __getattr__(name: str) -> Any:
    if name in PAGE_JOBS:
        from . import pages  # not at the top: see PAGE_JOBS

        return getattr(pages, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
