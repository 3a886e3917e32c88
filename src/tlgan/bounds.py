"""The one place that bounds every size a user can ask for (samples, chunks, seeds, pixels, steps), so a
typo such as ``--size 20000`` or ``-n 0`` gets a one-line message naming the option and its range
instead of gigabytes of memory, a traceback or an empty result."""

from __future__ import annotations

from collections.abc import Mapping
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
    if isinstance(value, bool) or (not isinstance(value, int) and not (hasattr(value, "__index__"))):
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


#: Pixels of any one picture tlgan draws (a grid, a contact sheet, an edit): 8192 x 8192 faces' worth at most,
#: about 200 MB of RGB, so option limits that each pass cannot together ask for gigabytes.
MAX_PICTURE_PIXELS = 8192 * 8192
#: Largest move along an axis (edit --move), in latent units: a typical latent has norm about sqrt(D) (~22 for
#: D = 512), so 50 units is already far outside anything the generator was trained on.
MAX_MOVE = 50.0
#: Columns of a contact sheet (label --cols).
MAX_COLS = 256
#: Components of an unsupervised finder (compare --components).
MAX_COMPONENTS = 512
#: Training epochs (train-encoder --epochs).
MAX_EPOCHS = 1000


def check_picture(width: int, height: int, what: str) -> None:
    """Refuse a picture of ``width`` x ``height`` pixels larger than :data:`MAX_PICTURE_PIXELS`, naming ``what``
    (the options that made it) so the user knows which to lower."""
    if width * height > MAX_PICTURE_PIXELS:
        raise InputError(f"{what} make a picture of {width:,} x {height:,} pixels, more than the "
                         f"{MAX_PICTURE_PIXELS:,} allowed; lower them")


def check_number(value: Any, option: str, lo: float | None = None, hi: float | None = None) -> float:
    """``value`` as a float if it is a finite real number in ``lo..hi``; else an :class:`InputError` naming ``option``
    (NaN, infinities and complex numbers are refused, not quietly used)."""
    import math

    if isinstance(value, (bool, complex)) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise InputError(f"{option} must be a real number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or (lo is not None and number < lo) or (hi is not None and number > hi):
        span = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'}"
        raise InputError(f"{option} {number:g} is out of range: give a finite number in {span}")
    return number


def check_moves(moves: Mapping[str, Any]) -> dict[str, float]:
    """Each ``NAME=AMOUNT`` of ``--move`` finite and within ±:data:`MAX_MOVE` latent units."""
    return {name: check_number(v, f"--move {name}", -MAX_MOVE, MAX_MOVE) for name, v in moves.items()}


def check_array_size(shape: Any, itemsize: int, available: int, what: str) -> int:
    """The byte size of an array of ``shape`` whose data must come from ``available`` bytes of a file.

    A file's header (a ``.npy`` header, a pickle's reconstruct call) can declare any shape; checking it against
    the bytes actually there before allocating keeps a 52-byte file from asking for gigabytes.
    """
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} declares an array of shape {shape!r}, which is not a shape") from None
    if any(d < 0 for d in dims):
        raise InputError(f"{what} declares an array of shape {tuple(dims)}, with a negative size")
    count = 1
    for d in dims:
        count *= d
    size = count * max(int(itemsize), 1) if count else 0
    if size > available:
        raise InputError(f"{what} declares an array of shape {tuple(dims)} ({size:,} bytes) but holds only "
                         f"{available:,} bytes; the file is damaged or not what it claims")
    return size
