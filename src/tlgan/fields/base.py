"""Direction fields: what an axes file's edits follow, as one contract that every kind meets.

A *direction field* gives, at any latent, one direction per feature: the way
"older" or "smile" points from there. A linear axis is the *constant* field
(the same direction everywhere); a local model's gradient is a field that
varies from face to face. :func:`tlgan.explore.move` integrates any field with
the locks projected out at every step, so the explorer, ``evaluate``, ``grid``
and ``edit`` never ask which kind of field an axes file holds.

A new kind is one module: a :class:`DirectionField` subclass and its
registration in :data:`FIELDS` (``FIELDS.register("kind")(MyField.from_file)``);
the axes file names the kind in its header and stores the field's tensors.

The projection maths (an orthonormal basis of the locked span, a direction
with the locks projected out, how much of it survives) lives here too, as
pure functions over arrays, so every field and caller uses the same formula.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import TLGANError
from ..registry import Registry

#: a projected direction shorter than this fraction of the direction counts as "nothing left to move along"
RANK_TOL = 1e-6
#: latent distance covered by one integration step of a field that varies (midpoint rule)
STEP = 0.2
#: a kept feature's predicted probability is held at or above min(its value at the start, KEEP_LEVEL)
KEEP_LEVEL = 0.99


class FieldError(TLGANError, ValueError):
    """A direction field that cannot be built or used (bad shapes, unknown feature, damaged file)."""


@dataclass(frozen=True)
class MoveSettings:
    """How :func:`tlgan.explore.move` integrates a field, recorded with the field in the axes file.

    ``shell``: every step keeps the latent's norm (z latents only). ``correct``: each step ends with a
    Gauss–Newton step that brings the locked features' modelled levels back to where the move started
    (needs a field with :meth:`DirectionField.levels`). ``keep``: a binary feature (typically the
    extractor's presence feature) whose modelled probability is held at or above ``min(start,
    keep_level)``; None for none. ``step``: latent distance per integration step.
    """

    shell: bool = False
    correct: bool = False
    keep: str | None = None
    keep_level: float = KEEP_LEVEL
    step: float = STEP

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> MoveSettings:
        if not isinstance(doc, dict):
            return cls()
        keep = doc.get("keep") or None
        return cls(bool(doc.get("shell", False)), bool(doc.get("correct", False)),
                   None if keep is None else str(keep), float(doc.get("keep_level", KEEP_LEVEL)),
                   float(doc.get("step", STEP)))


class DirectionField(ABC):
    """One direction per feature at every latent; what edits follow.

    ``names`` are the features the field has directions for; ``constant`` says
    the directions do not depend on the latent (a linear field: ``move``
    integrates it in one exact step); ``settings`` say how ``move`` integrates
    it. ``kind`` names the field in the axes file and in :data:`FIELDS`.
    """

    kind: ClassVar[str]
    constant: ClassVar[bool] = False
    names: list[str]
    settings: MoveSettings

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """The size D of the latents the field is defined on."""

    @abstractmethod
    def directions(self, z: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Directions (N, k, D) float64 of ``names`` at latents ``z`` (N, D); not necessarily unit length.
        A constant field may answer (1, k, D) for any ``z``."""

    def levels(self, z: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The field's model of ``names`` at ``z`` (N, D) -- values (N, k) in head units (logits for binary
        features) and their gradients (N, k, D), float64 -- or None for a field that models no values.
        The corrector and the kept feature of :class:`MoveSettings` need it."""
        return None

    def binary(self, name: str) -> bool:
        """Whether the field models ``name`` as a binary feature (its level is a logit)."""
        return False

    def predict(self, z: np.ndarray) -> np.ndarray | None:
        """The modelled feature values (N, len(names)) in feature units, or None for a field without a model."""
        return None

    @abstractmethod
    def mean(self) -> DirectionField:
        """The constant field closest to this one (its mean directions): what "linear moves" follow."""

    def subset(self, names: Sequence[str]) -> DirectionField:
        """The field for the axes of ``names`` only (a field may keep answering for more names)."""
        return self

    def with_settings(self, settings: MoveSettings) -> DirectionField:
        """This field integrated with other ``settings`` (a shallow copy)."""
        import copy

        out = copy.copy(self)
        out.settings = settings
        return out

    def header(self) -> dict[str, Any]:
        """What the axes file's header records about the field (its ``kind`` and settings are added)."""
        return {}

    def named_tensors(self) -> dict[str, np.ndarray]:
        """The field's arrays, saved in the axes file under ``field.NAME`` (the mean vectors are saved anyway)."""
        return {}


#: field kinds by name; each entry builds a field from a file: ``(header, tensors, mean) -> DirectionField``
#: where ``header`` is the field's header, ``tensors`` its arrays (prefix removed) and ``mean`` the file's
#: constant field (its ``axes`` vectors)
FIELDS: Registry[DirectionField] = Registry("direction field")


# ---------------------------------------------------------------- the projection maths


def span_basis(vectors: np.ndarray) -> np.ndarray:
    """An orthonormal basis (k, D) of the span of the rows of ``vectors`` (rank-deficient input is fine)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if vectors.size == 0:
        return np.zeros((0, vectors.shape[-1]))
    _, s, vt = np.linalg.svd(vectors, full_matrices=False)
    return vt[s > RANK_TOL * max(s.max(), 1e-12)]


def project_out(direction: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """``direction`` minus its projection onto the span of the rows of ``locked`` (I - C^+ C) n."""
    direction = np.asarray(direction, dtype=np.float64)
    basis = span_basis(locked)
    return direction - basis.T @ (basis @ direction)


def retained(direction: np.ndarray, locked: np.ndarray) -> float:
    """How much of a direction survives the locks: 1 = untouched, near 0 = the edit cancels itself."""
    d = np.asarray(direction, dtype=np.float64)
    return float(np.linalg.norm(project_out(d, locked)) / max(np.linalg.norm(d), 1e-12))


def locked_units(dirs: np.ndarray, locked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per latent, the unit directions ``dirs`` (N, m, D) with the span of ``locked`` (N, k, D) projected
    out, and how much of each survives (N, m); a direction with nothing left is zero."""
    dirs, locked = np.asarray(dirs, np.float64), np.asarray(locked, np.float64)
    units, kept = np.zeros_like(dirs), np.zeros(dirs.shape[:2])
    for n in range(len(dirs)):
        basis = span_basis(locked[n]) if locked.shape[1] else np.zeros((0, dirs.shape[-1]))
        for i in range(dirs.shape[1]):
            d = dirs[n, i]
            p = d - basis.T @ (basis @ d)
            pn, dn = float(np.linalg.norm(p)), float(np.linalg.norm(d))
            if pn > RANK_TOL * max(dn, 1e-12):
                units[n, i] = p / pn
            kept[n, i] = pn / dn if dn > 0 else 0.0
    return units, kept


def _at(field: DirectionField, z: np.ndarray) -> np.ndarray:
    """Latents (N, D) float64 to read ``field`` at: w+ codes (N, num_ws, D) are read at their mean over layers."""
    z = np.asarray(z, np.float64)
    if z.ndim == 1:
        z = z[None]
    elif z.ndim == 3:
        z = z.mean(1)
    if z.shape[-1] != field.latent_dim:
        raise FieldError(f"latent has size {z.shape[-1]} but the field lives in {field.latent_dim} dimensions")
    return z


def cosines(field: DirectionField, names: Sequence[str], z: np.ndarray) -> np.ndarray:
    """Cosine similarity (k, k) of the directions of ``names`` at one latent ``z`` (D,)."""
    g = field.directions(_at(field, z)[:1], list(names))[0]
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return g @ g.T


def retained_at(field: DirectionField, name: str, locks: Sequence[str], z: np.ndarray) -> np.ndarray:
    """Per latent ``z`` (N, D), how much of ``name``'s direction survives the ``locks`` (1 = all)."""
    at = _at(field, z)
    if field.constant:
        at = at[:1]
    g = field.directions(at, [name, *locks])
    kept = locked_units(g[:, :1], g[:, 1:])[1][:, 0]
    return np.broadcast_to(kept, (len(_at(field, z)),)).copy()


def check_names(field: DirectionField, names: Sequence[str]) -> list[int]:
    """The rows of ``names`` in the field; an unknown name raises naming the known ones."""
    out = []
    for n in names:
        if n not in field.names:
            raise FieldError(f"the {field.kind} field has no direction for {n!r}; it has: {', '.join(field.names)}")
        out.append(field.names.index(n))
    return out


def field_tensors(tensors: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays of ``tensors`` named ``prefix*``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
