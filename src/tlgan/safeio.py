"""Writing files safely: atomically (a temporary file beside the target, then a rename) and with the
ordinary permission bits (``0666`` less the umask), so an interrupted write never leaves half a file
and every file tlgan writes is as readable as any other the user makes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError


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
    except OSError as e:
        if e.filename is not None and os.fsdecode(e.filename) == str(tmp):
            # name the user's file, not the temporary one they never asked for
            raise type(e)(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_image(image, path: str | Path) -> Path:
    """Save a PIL image atomically, in the format its suffix names (``.png``, ``.jpg``...)."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell which image format {path} is from its suffix; end it in .png or .jpg")
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def npy_path(path: str | Path) -> Path:
    """The file ``save_npy`` writes for ``path``: ``.npy`` added to a name without it, as numpy does."""
    path = Path(path)
    return path if path.suffix == ".npy" else path.with_name(path.name + ".npy")


def save_npy(array, path: str | Path) -> Path:
    """``numpy.save`` atomically (``.npy`` is added to a name without it, as numpy does)."""
    import numpy as np

    path = npy_path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return atomic_write(path, write)


# ---------------------------------------------------------------- outputs never replace a user's file

#: In each folder tlgan writes an output into, the record of the outputs it made there: file name -> the
#: command that made it and the file's SHA-256 then. A later run of the same command may replace such a file
#: (rerunning a command is the ordinary way to redo its output); any other existing file needs ``--force``.
OUTPUT_RECORD = ".tlgan-outputs.json"


class OutputExistsError(InputError):
    """An output would replace an existing file that the command did not make."""


def _record_of(folder: Path) -> dict:
    try:
        doc = json.loads((folder / OUTPUT_RECORD).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Outputs:
    """The output files of one command: ``claim`` them before any work, ``made`` each once written.

    ``claim`` refuses a path that exists unless ``force`` or the record says this same command made it and
    the file is unchanged since (so a user's photo, notes or ``index.html`` is never replaced silently,
    while rerunning a command still redoes its own output).
    """

    def __init__(self, command: str, force: bool = False) -> None:
        self.command, self.force = command, force

    def made_here(self, path: Path) -> bool:
        """Whether ``path`` is a file this command made (and nobody has changed since)."""
        entry = _record_of(path.parent).get(path.name)
        if not isinstance(entry, dict) or entry.get("command") != self.command:
            return False
        try:
            return entry.get("sha256") == sha256_of(path)
        except OSError:
            return False

    def claim(self, *paths: str | Path | None) -> None:
        for p in paths:
            if p is None:
                continue
            path = Path(p)
            if path.is_dir():
                raise OutputExistsError(f"{path} is a folder; give a file name to write")
            if path.exists() and not self.force and not self.made_here(path):
                raise OutputExistsError(f"{path} exists and was not made by `tlgan {self.command}`; "
                                        "choose another output name, or pass --force to replace it")

    def claim_all(self, paths: Iterable[str | Path]) -> None:
        self.claim(*paths)

    def made(self, path: str | Path) -> Path:
        """Record ``path`` (just written) as this command's output; a record that cannot be written is skipped
        (the file is still there, it only needs ``--force`` to be replaced next time)."""
        path = Path(path)
        try:
            record = _record_of(path.parent)
            record[path.name] = {"command": self.command, "sha256": sha256_of(path)}
            atomic_write_text(path.parent / OUTPUT_RECORD, json.dumps(record, indent=1) + "\n")
        except OSError:
            pass
        return path


def read_tagged_safetensors(path: str | Path, key: str, what: str, make_hint: str,
                            error: type[Exception] = InputError) -> tuple[dict, dict]:
    """The JSON header under ``key`` and the tensors of a tlgan safetensors file (an encoder, a tuning...).

    Each failure is one ``error`` naming the file: missing (``make_hint`` says how to make one), unreadable,
    or a safetensors file of something else (no ``key`` header).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise error(f"{what} file {path} does not exist; {make_hint}")
    try:
        with safe_open(str(path), "pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise error(f"{path} is not a readable safetensors {what} file: {e}") from e
    if key not in header:
        raise error(f"{path} is a safetensors file but not a tlgan {what} (no {key!r} header)")
    try:
        doc = json.loads(header[key])
    except ValueError as e:
        raise error(f"{path}: its {key!r} header is not JSON ({e}); make the {what} again") from e
    if not isinstance(doc, dict):
        raise error(f"{path}: its {key!r} header is not a JSON object; make the {what} again")
    return doc, tensors
