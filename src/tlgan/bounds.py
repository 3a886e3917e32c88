"""The one place that bounds every size a user can ask for (samples, chunks, seeds, pixels, steps), so a
typo such as ``--size 20000`` or ``-n 0`` gets a one-line message naming the option and its range
instead of gigabytes of memory, a traceback or an empty result."""

from __future__ import annotations

from typing import Any

from .errors import InputError

#: A run: its latents are drawn in memory when it is made, one chunk of images is held in memory at once.
MAX_N = 10_000_000
MAX_Z_BYTES = 4 << 30
MAX_CHUNK = 65_536
#: Seeds of latents, as label files take them: 0 .. 2**63 - 1.
MAX_SEED = 2**63 - 1
#: Pixels per face in a picture tlgan draws (edit --size, grid --cell, label --cell).
MAX_PIXELS = 4096
#: Columns of a traversal figure (grid --steps).
MAX_STEPS = 101
#: Held-out latents of a measurement (evaluate / compare -n).
MAX_HELDOUT = 1_000_000


def check_range(value: Any, option: str, lo: int, hi: int, unit: str = "") -> int:
    """``value`` as an int if it is a whole number in ``lo..hi``; else an :class:`InputError` naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise InputError(f"{option} must be a whole number, not {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise InputError(f"{option} {value:,} is out of range: give {lo:,}..{hi:,}{' ' + unit if unit else ''}")
    return value


def check_seed(seed: Any) -> int:
    return check_range(seed, "--seed", 0, MAX_SEED)


def check_pixels(size: Any, option: str = "--size") -> int:
    return check_range(size, option, 1, MAX_PIXELS, "pixels per face")


def check_steps(steps: Any) -> int:
    return check_range(steps, "--steps", 1, MAX_STEPS, "columns")


def check_heldout(n: Any) -> int:
    return check_range(n, "-n", 1, MAX_HELDOUT, "held-out latents")
