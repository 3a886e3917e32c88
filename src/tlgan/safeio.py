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
