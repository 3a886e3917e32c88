"""Writing files safely: atomically (a temporary file beside the target, then a rename) and with the
ordinary permission bits (``0666`` less the umask), so an interrupted write never leaves half a file
and every file tlgan writes is as readable as any other the user makes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable


def file_mode() -> int:
    """The permission bits of a new ordinary file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was. The temporary
    name is unique to the process and thread, so concurrent writers of one path never mix
    their bytes: a reader sees the old file or a whole new one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_image(image, path: str | Path) -> Path:
    """Save a PIL image atomically, in the format its suffix names (``.png``, ``.jpg``...)."""
    from PIL import Image

    from .errors import InputError

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell which image format {path} is from its suffix; end it in .png or .jpg")
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def save_npy(array, path: str | Path) -> Path:
    """``numpy.save`` atomically (``.npy`` is added to a name without it, as numpy does)."""
    import numpy as np

    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return atomic_write(path, write)
