"""Feature axes: unit vectors in latent space with what they were fitted from, saved as safetensors.

An axes file is one ``.safetensors`` file: the tensors ``axes`` (F, D) and
``slopes`` (F,), and in its header a JSON document ``tlgan`` with the feature
names and kinds, the per-feature metrics, the generator, extractor, latent
space, sample count and the tlgan version. Every axes file holds a direction
field (:mod:`tlgan.fields`): the header's ``field`` names its kind, its settings
and whatever else it records, and its arrays are tensors named ``field.*``.
The ``axes`` vectors are the field's mean (constant) directions. Files without
``field`` load as the linear field; files of the first local axes (a
``local_model`` header, ``local.*`` tensors) load as the MLP field. Loading
never unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from . import __version__
from .errors import TLGANError
from .fields import FIELDS, DirectionField, FieldError, LinearField, MoveSettings
from .formats import Schema, check_schema, read_versioned_json
from .registry import UnknownNameError
from .safeio import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from .generators import Generator

AXES_FORMAT = 1
FIELD_PREFIX = "field."  # tensors of an axes file's direction field
LEGACY_LOCAL = ("local_model", "local.")  # header key and tensor prefix of the first local axes files (an MLP field)
#: the move settings the first local axes files kept in their header, by MoveSettings field
LEGACY_SETTINGS = {"shell": "local_shell", "correct": "local_correct", "keep": "local_keep",
                   "keep_level": "local_keep_level"}


class AxesError(TLGANError, ValueError):
    """An axes file that cannot be used as asked (unknown feature, other generator, bad file)."""


class AxesHeader(Schema):
    """The ``tlgan`` header of an axes file: the fields tlgan reads (the rest is kept as ``meta``)."""

    features: list[str]
    kinds: list[str]  # binary, continuous, component (unsupervised finders), or a plugin finder's own
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict)
    skipped: dict[str, str] = Field(default_factory=dict)


@dataclass
class Axes:
    """Named unit directions in a generator's latent space.

    ``vectors[i]`` is the axis of ``names[i]`` (the field's mean direction);
    ``slopes[i]`` is how much the feature's model changes per unit move along
    it; ``metrics[name]`` holds the fit quality; ``skipped`` maps features that
    got no axis to the reason; ``field`` is what edits follow (by default the
    constant field of ``vectors``).
    """

    names: list[str]
    kinds: list[str]
    vectors: np.ndarray
    slopes: np.ndarray
    metrics: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    skipped: dict[str, str] = dc_field(default_factory=dict)
    meta: dict[str, Any] = dc_field(default_factory=dict)
    field: DirectionField = None  # type: ignore[assignment]  # None: the constant field of ``vectors``

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors, dtype=np.float32)
        self.vectors = vectors.reshape(len(self.names), -1 if len(self.names) else vectors.shape[-1])
        self.slopes = np.asarray(self.slopes, dtype=np.float32).reshape(len(self.names))
        if self.field is None or isinstance(self.field, LinearField):  # a linear field is always these vectors
            settings = None if self.field is None else self.field.settings
            self.field = LinearField(self.names, self.vectors, settings)

    def check(self, where: object) -> None:
        """Refuse axes that would edit wrongly or not at all: no axis, duplicate names, names and kinds
        and vectors that do not match, an axis that is not a finite non-zero vector (``where``: the file)."""
        if not self.names:
            why = "; ".join(f"{k}: {v}" for k, v in self.skipped.items())
            raise AxesError(f"{where}: no feature has an axis" + (f" (not fitted: {why})" if why else ""))
        dup = sorted({n for n in self.names if self.names.count(n) > 1})
        if dup:
            raise AxesError(f"{where}: feature names {', '.join(map(repr, dup))} appear more than once; "
                            "each axis needs its own name")
        if len(self.kinds) != len(self.names):
            raise AxesError(f"{where}: {len(self.names)} features but {len(self.kinds)} kinds")
        norms = np.linalg.norm(self.vectors.astype(np.float64), axis=1)
        for name, norm, slope in zip(self.names, norms, self.slopes, strict=True):
            if not np.isfinite(norm) or norm == 0 or not np.isfinite(slope):
                raise AxesError(f"{where}: the axis of {name!r} is not a finite non-zero vector (norm {norm}, "
                                f"slope {slope}); refit the axes")
        missing = [n for n in self.names if n not in self.field.names]
        if missing:
            raise AxesError(f"{where}: its {self.field.kind} field has no direction for {', '.join(missing)}; "
                            "the axes file is damaged, refit the axes")

    @property
    def latent_dim(self) -> int:
        return int(self.meta["latent_dim"] if "latent_dim" in self.meta else self.vectors.shape[1])

    def index(self, name: str) -> int:
        """The row of a feature; unknown names raise a clear error listing the known ones."""
        if name in self.names:
            return self.names.index(name)
        why = f" (it was not fitted: {self.skipped[name]})" if name in self.skipped else ""
        raise AxesError(f"unknown feature {name!r}{why}; axes exist for: {', '.join(self.names)}")

    def vector(self, name: str) -> np.ndarray:
        return self.vectors[self.index(name)]

    def subset(self, names: list[str]) -> Axes:
        idx = [self.index(n) for n in names]
        return Axes([self.names[i] for i in idx], [self.kinds[i] for i in idx], self.vectors[idx],
                    self.slopes[idx], {n: self.metrics.get(n, {}) for n in names}, {}, dict(self.meta),
                    self.field.subset(names))

    def with_field(self, direction_field: DirectionField) -> Axes:
        """The same axes whose edits follow ``direction_field`` (e.g. ``axes.field.mean()``: linear moves)."""
        return Axes(list(self.names), list(self.kinds), self.vectors, self.slopes, self.metrics, self.skipped,
                    dict(self.meta), direction_field)

    @property
    def latent_space(self) -> str:
        """The space the axes live in: ``z``, ``w`` or ``w+``."""
        return str(self.meta.get("latent_space", "z"))

    def check_generator(self, generator: Generator) -> None:
        """Refuse axes fitted for another generator, or in another of its latent spaces."""
        mine, theirs = self.meta.get("generator"), generator.name
        sha = self.meta.get("generator_sha256")
        same = sha == generator.sha256 if sha and generator.sha256 else not mine or mine == theirs
        if not same:
            raise AxesError(f"these axes were fitted for generator {mine!r}, not {theirs!r}; "
                            f"fit axes on samples of {theirs!r} first")
        if self.latent_space != generator.space:
            raise AxesError(f"these axes live in the {self.latent_space} space of {mine or theirs!r}, but the "
                            f"generator is driven from {generator.space}; load it with --space {self.latent_space}")
        if self.vectors.shape[1] != generator.latent_dim:
            raise AxesError(f"these axes live in a {self.vectors.shape[1]}-d latent space, "
                            f"but the generator's latent has {generator.latent_dim} dimensions")

    def to_json(self) -> dict[str, Any]:
        return {"format": AXES_FORMAT, "tlgan_version": __version__, "features": self.names, "kinds": self.kinds,
                "metrics": self.metrics, "skipped": self.skipped, **self.meta}

    @staticmethod
    def sidecar(path: str | Path) -> Path:
        """The readable JSON copy of an axes file's header: ``NAME.json`` beside ``NAME.safetensors``."""
        return Path(path).with_suffix(".json")

    @classmethod
    def check_path(cls, path: str | Path) -> Path:
        """Refuse an axes path that would destroy a file the user did not name: the axes file must end in
        ``.safetensors`` (its readable copy is ``NAME.json``), and an existing ``NAME.json`` must be an
        earlier axes sidecar, not a file of the user's."""
        path = Path(path)
        if path.suffix != ".safetensors":
            raise AxesError(f"axes file {path} must end in .safetensors (a readable {path.stem}.json copy of its "
                            f"header is written beside it); try -o {path.with_suffix('.safetensors')}")
        side = cls.sidecar(path)
        if side.exists() and not cls._is_sidecar(side):
            raise AxesError(f"{side} exists and is not a tlgan axes sidecar; writing {path} would overwrite it "
                            "with the axes' readable header: choose another --out name")
        if path.exists() and not path.is_file():
            raise AxesError(f"axes file {path} exists and is not a file")
        blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise AxesError(f"cannot write {path}: {blocked} is a file, not a folder; choose another --out")
        return path

    @staticmethod
    def _is_sidecar(side: Path) -> bool:
        try:
            doc = json.loads(side.read_text())
        except (OSError, ValueError, RecursionError):
            return False
        return isinstance(doc, dict) and doc.get("format") == AXES_FORMAT and "tlgan_version" in doc \
            and isinstance(doc.get("features"), list) and isinstance(doc.get("kinds"), list)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.safetensors) and a readable ``.json`` copy of its header beside it, each
        atomically and with the same permission bits (see :meth:`check_path` for what is refused)."""
        path = self.check_path(path)
        self.check(f"cannot write {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = self.to_json()
        doc["field"] = {**self.field.header(), "kind": self.field.kind, "move": self.field.settings.to_json()}
        tensors = {"axes": self.vectors, "slopes": self.slopes}
        tensors.update({FIELD_PREFIX + k: np.ascontiguousarray(v) for k, v in self.field.named_tensors().items()})

        def write(tmp: Path) -> None:  # the sidecar is renamed into place only once the axes are written whole
            save_file(tensors, str(tmp), metadata={"tlgan": json.dumps(doc, allow_nan=True)})
            atomic_write_text(self.sidecar(path), json.dumps(doc, indent=2, allow_nan=True) + "\n")

        atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Axes:
        path = Path(path)
        if not path.exists():
            raise AxesError(f"axes file {path} does not exist; make one with `tlgan fit RUN` or `tlgan discover`")
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), "np") as fh:
                header = fh.metadata() or {}
        except (SafetensorError, OSError, ValueError) as e:
            raise AxesError(f"{path} is not a readable safetensors axes file: {e}") from e
        if "tlgan" not in header or "axes" not in tensors:
            raise AxesError(f"{path} is a safetensors file but not a tlgan axes file (no 'tlgan' header)")
        where = f"{path}'s tlgan header"
        doc = read_versioned_json(
            header["tlgan"], where, AXES_FORMAT, AxesError,
            lambda doc: (f"{path} has axes format {doc.get('format')}, this tlgan reads format {AXES_FORMAT}; "
                         "refit the axes with this version"), damaged="the axes file is damaged")
        head = check_schema(doc, AxesHeader, where, AxesError, "the axes file is damaged")
        meta = {k: v for k, v in doc.items()
                if k not in ("format", "tlgan_version", "features", "kinds", "metrics", "skipped", "field",
                             LEGACY_LOCAL[0])}
        meta["fitted_with"] = doc.get("tlgan_version")
        vectors, slopes = tensors["axes"], tensors.get("slopes", np.ones(len(head.features), np.float32))
        if vectors.ndim != 2 or len(vectors) != len(head.features) or slopes.shape != (len(head.features),):
            raise AxesError(f"{path}: its header names {len(head.features)} features but it holds axes of shape "
                            f"{vectors.shape} and slopes of shape {slopes.shape}; the axes file is damaged")
        direction_field = _load_field(doc, meta, tensors, LinearField(head.features, vectors), path)
        axes = cls(list(head.features), list(head.kinds), vectors, slopes, head.metrics, head.skipped, meta,
                   direction_field)
        axes.check(path)
        return axes


def _load_field(doc: dict[str, Any], meta: dict[str, Any], tensors: dict[str, np.ndarray], mean: LinearField,
                path: Path) -> DirectionField:
    """The direction field an axes file holds: its header's ``field`` (kind, settings, the kind's own
    record) and its ``field.*`` tensors; a first local axes file's ``local_model`` (its settings were
    ``local_*`` keys of the header, taken out of ``meta``); else the constant field of the vectors."""
    if "field" in doc:
        header, prefix = doc["field"], FIELD_PREFIX
        if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
            raise AxesError(f"{path}: its field header names no kind; the axes file is damaged")
        kind, settings = header["kind"], MoveSettings.from_json(header.get("move"))
    elif LEGACY_LOCAL[0] in doc:
        header, prefix, kind = doc[LEGACY_LOCAL[0]], LEGACY_LOCAL[1], "mlp"
        old = {key: meta.pop(legacy) for key, legacy in LEGACY_SETTINGS.items() if legacy in meta}
        settings = MoveSettings.from_json(old)
    else:
        return mean
    own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if kind not in FIELDS:  # a kind a plugin module registers
        from .plugins import load_plugins

        load_plugins()
    try:
        direction_field = FIELDS.create(kind, header=header, tensors=own, mean=mean)
    except UnknownNameError:
        raise AxesError(f"{path} holds a direction field of kind {kind!r}, which this tlgan does not know "
                        f"(known: {', '.join(FIELDS.names())}); load the plugin that defines it") from None
    except FieldError as e:
        raise AxesError(f"{path}: {e}") from None
    return direction_field.with_settings(settings)
