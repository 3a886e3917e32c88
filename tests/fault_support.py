"""Helpers of the fault suite (tests/faults): run a command expecting a refusal, read its one line, damage
files as bit rot or a full disk would, and make small toy runs and axes files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from cli_support import run
from tlgan.errors import TLGANError


def run_cli(*args, ok: bool = False):
    """``tlgan ARGS`` in-process; by default expecting a refusal (check it with :func:`one_line`)."""
    return run(*args, ok=ok)


def one_line(result) -> str:
    """The message of a refused CLI command: exit code 1 or 2, no traceback, one line after 'Error:'."""
    assert result.exit_code not in (0,), result.output
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, (KeyError, TypeError, AttributeError, MemoryError)), result.exception
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, TLGANError), repr(result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("Error")]
    assert err, result.output
    return err[-1]



def flip(path: Path, at: int, n: int = 4) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, min(at + n, len(data))):
        data[i] ^= 0xFF
    st = os.stat(path)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later write, as any copy or edit is



def make_run(path, toy, n=96, chunk=32, **kw):
    from tlgan.sample import sample

    gen, ext = toy
    return sample(path, gen, ext, n=n, seed=3, chunk=chunk, save_images=True, progress=False, **kw)


def arrays(run) -> dict[str, np.ndarray]:
    return {"z": run.noise, "labels": run.labels(), "images": np.asarray(run.images[:])}


def files_of(folder: Path) -> list[tuple[str, bytes]]:
    return sorted((str(q.relative_to(folder)), q.read_bytes()) for q in folder.rglob("*") if q.is_file())




def enospc_on(monkeypatch, names: tuple[str, ...]):
    """Make writing any file whose name contains one of ``names`` fail as on a full disk (after a partial write)."""
    import errno
    import io

    real_open = io.open

    def full_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax") and any(n in os.fspath(file) for n in names):
            fh = real_open(file, mode, *a, **k)
            fh.write(b"\0" * 3 if "b" in mode else "\0" * 3)  # half a file, as a full disk leaves
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real_open(file, mode, *a, **k)

    import builtins
    import pathlib

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(pathlib.Path, "open", lambda self, mode="r", *a, **k: full_open(self, mode, *a, **k))


def axes_file(path: Path, header, axes=None, slopes=None) -> Path:
    from safetensors.numpy import save_file

    axes = np.eye(2, 4, dtype=np.float32) if axes is None else axes
    tensors = {"axes": axes, "slopes": np.ones(len(axes), np.float32) if slopes is None else slopes}
    save_file(tensors, str(path), metadata={"tlgan": header if isinstance(header, str) else json.dumps(header)})
    return path



def small_axes():
    from tlgan.axes import Axes

    return Axes(["a", "b"], ["continuous", "binary"], np.eye(2, 4), np.ones(2), meta={"generator": "toy-linear"})



GOOD = {"format": 1, "tlgan_version": "0", "features": ["a", "b"], "kinds": ["continuous", "binary"]}
