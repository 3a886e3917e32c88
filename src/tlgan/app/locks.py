"""When locks cancel a move: a moved feature whose axis lies nearly along the locked ones keeps little of
its edit. ``lock_warnings`` measures it (on the fixed axes, or for local axes on their gradients at the face
shown) and ``LockWarning.message`` says it in words."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..axes import Axes
from ..explore import cosine_matrix
from ..fields import cosines, retained
from .state import ExplorerState

WARN_COS = 0.7  # warn when a moved axis and a locked one have |cos| above this ...
WARN_RETAINED = math.sqrt(1 - WARN_COS**2)  # ... or when less than ~71 % of the moved axis survives the locks


@dataclass(frozen=True)
class LockWarning:
    """A moved feature whose axis is nearly parallel to the locked ones: its edit mostly cancels itself."""

    feature: str
    locked: tuple[tuple[str, float], ...]  # (locked feature, cosine) for the near-parallel ones
    retained: float  # the fraction of the axis that survives the locks (1 = all, 0 = none)
    local: bool = False  # measured on the local gradients at the face shown

    def message(self, quote: Callable[[str], str] = str, bold: bool = True) -> str:
        """The warning in words (markdown bold unless ``bold`` is False); ``quote`` escapes each feature
        name for where the message is shown (e.g. markdown)."""
        star = "**" if bold else ""
        pairs = (", ".join(f"{quote(n)} (cos {c:+.2f})" for n, c in self.locked)
                 or "the locked features together")
        where = " at this face" if self.local else ""
        return (f"{star}{quote(self.feature)}{star} is nearly parallel to locked {pairs}{where}: with them held, only "
                f"{self.retained:.0%} of its axis is left to move along, so much of this edit cancels itself. "
                f"The {quote(self.feature)} readout may still move while the face barely changes, or changes in "
                f"other ways.")


def lock_warnings(state: ExplorerState, axes: Axes, latent: np.ndarray | None = None) -> list[LockWarning]:
    """Warnings for every moved, unlocked feature whose axis the locks mostly remove.

    For local axes (unless the state asks for linear moves) and a ``latent`` (the face shown; a w+ code
    is read at its mean over layers) the axes compared are the local gradients at that face, so the
    warning says what the locks do *here*; otherwise the fixed axes."""
    if not state.locks:
        return []
    moved = list(state.free_moves)
    if not axes.field.constant and not state.linear and latent is not None and moved:
        at = np.asarray(latent, np.float32)
        at = at.mean(0) if at.ndim == 2 else at
        names = moved + list(state.locks)
        cos = cosines(axes.field, names, at)
        out = []
        locked = list(range(len(moved), len(names)))
        for a, name in enumerate(moved):
            g = cos[np.ix_([a, *locked], [a, *locked])]
            kept = _retained_from_gram(g)
            near = tuple((names[b], float(cos[a, b])) for b in locked if abs(cos[a, b]) > WARN_COS)
            if near or kept < WARN_RETAINED:
                out.append(LockWarning(name, near, kept, local=True))
        return out
    cos = cosine_matrix(axes.vectors)
    locked_idx = [axes.index(n) for n in state.locks]
    locked_vecs = axes.vectors[locked_idx]
    out = []
    for name in moved:
        i = axes.index(name)
        kept = retained(axes.vectors[i], locked_vecs)
        near = tuple((axes.names[j], float(cos[i, j])) for j in locked_idx if abs(cos[i, j]) > WARN_COS)
        if near or kept < WARN_RETAINED:
            out.append(LockWarning(name, near, kept))
    return out


def face_lock_warnings(state: ExplorerState, axes: Axes, start: Callable[[], np.ndarray]) -> list[LockWarning]:
    """``lock_warnings`` for the face shown: local axes are compared by their gradients at ``start()``, the
    face the free moves start from (the locked sliders' held amounts applied), computed only when needed."""
    if axes.field.constant or state.linear or not state.locks or not state.free_moves:
        return lock_warnings(state, axes)
    return lock_warnings(state, axes, start())


def _retained_from_gram(gram: np.ndarray) -> float:
    """The share of unit vector 0 left after projecting off vectors 1.. , from their cosine (Gram) matrix."""
    if len(gram) < 2:
        return 1.0
    c = gram[1:, 1:]
    b = gram[1:, 0]
    resid = 1.0 - float(b @ np.linalg.pinv(c, rcond=1e-6) @ b)
    return float(np.sqrt(max(resid, 0.0)))
