"""The user's own generator files, registered once by name (``tlgan models add``).

``$TLGAN_HOME/generators.json`` maps a name to the file's absolute path, its
SHA-256, size and modification time, and what was recognised in it (family,
resolution, spaces). Loading a registered name checks the file is still the
one registered, as for the bundled weights (``weights.verify``): its full checksum
once a day, and its size, mtime and both ends on every use, so a replaced or damaged
file is refused rather than used.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..safeio import sha256_of
from ..weights import CACHE_ENV, WeightsError, verify

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def library_path() -> Path:
    """``$TLGAN_HOME/generators.json`` (default home ``~/.cache/tlgan``)."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "tlgan") / "generators.json"


def registered() -> dict[str, dict[str, Any]]:
    """Name -> entry of every registered generator file."""
    path = library_path()
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, RecursionError) as e:
        raise WeightsError(f"{path} is not readable JSON ({e}); fix or delete it, then `tlgan models add` again") from e
    models = doc.get("generators") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise WeightsError(f"{path} has no 'generators' table; fix or delete it, then `tlgan models add` again")
    return models


def _save(models: dict[str, dict[str, Any]]) -> None:
    path = library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    tmp.write_text(json.dumps({"format": 1, "generators": models}, indent=2) + "\n")
    os.replace(tmp, path)


def add(path: str | Path, name: str, family: str | None = None, network: str | None = None) -> dict[str, Any]:
    """Register ``path`` as ``name`` after loading it once (so a file that cannot be used is refused now)."""
    from .checkpoints import open_checkpoint

    if not NAME_RE.match(name):
        raise WeightsError(f"generator name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    from .base import GENERATORS

    if name in GENERATORS:
        raise WeightsError(f"{name!r} is a built-in generator; choose another name")
    path = Path(path).resolve()
    digest = sha256_of(path) if path.is_file() else None
    gen = open_checkpoint(path, family=family, device="cpu", name=name, network=network, sha256=digest)
    st = path.stat()
    entry = {"path": str(path), "sha256": gen.sha256, "size": st.st_size, "mtime": st.st_mtime,
             "family": gen.info["family"], "network": network, "resolution": gen.resolution,
             "spaces": list(gen.spaces), "z_dim": gen.z_dim, "num_ws": gen.num_ws,
             "w_dim": int(gen.style_net.w_dim) if gen.style_net is not None else None, "added": time.strftime("%Y-%m-%d %H:%M:%S")}
    models = registered()
    models[name] = entry
    _save(models)
    return entry


def remove(name: str) -> None:
    """Forget a registered name (the file itself is left alone)."""
    models = registered()
    if name not in models:
        raise WeightsError(f"no registered generator {name!r}; registered: {', '.join(models) or 'none'}")
    del models[name]
    _save(models)


def _stamp_of(name: str) -> Path:
    """Where the last full check of a registered file is recorded (in $TLGAN_HOME, never beside the user's file)."""
    return library_path().with_name("generator-stamps") / f"{name}.verified"


def state(name: str, full: bool = False) -> str:
    """'present', 'missing' or 'changed' for a registered generator file (``full``: hashed in full now)."""
    entry = registered()[name]
    path = Path(entry["path"])
    if not path.is_file():
        return "missing"
    return "present" if verify(path, entry["sha256"], full, _stamp_of(name)) else "changed"


def verified(name: str) -> dict[str, Any]:
    """The entry of a registered name, after checking its file is still the one registered."""
    entry = registered()[name]
    path = Path(entry["path"])
    if not path.is_file():
        raise WeightsError(f"generator {name!r} was registered from {path}, which is gone; "
                           f"`tlgan models add NEWPATH --name {name}` to register it again")
    if not verify(path, entry["sha256"], stamp=_stamp_of(name)):
        raise WeightsError(f"{path} changed since it was registered as {name!r} (SHA-256 differs); if the new "
                           f"file is intended, `tlgan models add {path} --name {name}` again")
    return entry


# ---------------------------------------------------------------- generator paths the user named themselves


def _paths_file() -> Path:
    return library_path().with_name("generator-paths.json")


def remember_path(path: str | Path) -> None:
    """Record that the user named the checkpoint file ``path`` on the command line (``-g PATH``), so the runs,
    axes and label files made from it may name it later. Best effort: an unwritable home only means the
    user confirms the path again."""
    from ..safeio import atomic_write_text

    known = _remembered()
    where = str(Path(path).expanduser().resolve())
    if where in known:
        return
    try:
        _paths_file().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_paths_file(), json.dumps(sorted(known | {where}), indent=1) + "\n")
    except OSError:
        pass


def _remembered() -> set[str]:
    try:
        doc = json.loads(_paths_file().read_text())
    except (OSError, ValueError, RecursionError):
        return set()
    return {str(p) for p in doc if isinstance(p, str)} if isinstance(doc, list) else set()


def check_named_path(name: str, source: object) -> None:
    """Refuse a generator ``name`` read from a file (``source``: a run, axes or label file) when it is a path
    the user never registered nor named on the command line: a file made elsewhere must not make tlgan open
    any local file it likes (``generator: "../../etc/passwd"``)."""
    from .base import GENERATORS

    if name in GENERATORS or name in registered():
        return
    if str(Path(name).expanduser().resolve()) in _remembered():
        return
    raise WeightsError(f"{source} names the generator file {name!r}, which is neither a registered generator nor "
                       "a file you have used here; if you trust it, register it with `tlgan models add "
                       f"{name} --name NAME` (or sample with `-g {name}` yourself)")
