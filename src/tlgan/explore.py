"""Step 5 — explore: move latents along feature axes, with some features locked.

Pure functions over arrays. Locking follows InterFaceGAN's conditional
manipulation rather than TL-GAN's Gram-Schmidt: an edit direction is projected
onto the orthogonal complement of the span of the locked axes (an exact
projection, so the result does not depend on the order of the locks and the
locked axes themselves are never changed), then rescaled to unit length so a
move of +1 is always one unit of latent distance.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .axes import Axes, AxesError

RANK_TOL = 1e-6


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
    """How much of a unit direction survives the locks: 1 = untouched, near 0 = the edit cancels itself."""
    d = np.asarray(direction, dtype=np.float64)
    return float(np.linalg.norm(project_out(d, locked)) / max(np.linalg.norm(d), 1e-12))


def locked_direction(direction: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """The unit edit direction for ``direction`` when the ``locked`` axes must stay put.

    Raises when the direction lies (almost) inside the locked span, where no
    edit can move the feature while keeping the others.
    """
    p = project_out(direction, locked)
    norm = np.linalg.norm(p)
    if norm < 1e-6:
        raise AxesError("this direction lies inside the span of the locked axes: locking leaves nothing to move")
    return p / norm


def edit_delta(axes: Axes, moves: Mapping[str, float], locks: Iterable[str] = ()) -> np.ndarray:
    """The latent change for ``moves`` ({feature: amount}) with ``locks`` held fixed.

    Each moved axis is projected off the locked span separately, then the
    moves are summed: sum_i amount_i * unit(P a_i).
    """
    locks = list(dict.fromkeys(locks))
    both = sorted(set(locks) & set(moves))
    if both:
        raise AxesError(f"cannot move a locked feature: {', '.join(both)}; unlock it or drop the move")
    for name, amount in moves.items():
        if not np.isfinite(amount):
            raise AxesError(f"move for {name!r} is not a finite number: {amount}")
    locked = np.stack([axes.vector(n) for n in locks]) if locks else np.zeros((0, axes.vectors.shape[1]))
    delta = np.zeros(axes.vectors.shape[1])
    for name, amount in moves.items():
        if amount:
            delta += amount * locked_direction(axes.vector(name), locked)
    return delta.astype(np.float32)


def move(z: np.ndarray, axes: Axes, moves: Mapping[str, Any], locks: Iterable[str] = (),
         layers: Sequence[int] | Mapping[str, Sequence[int]] | None = None) -> np.ndarray:
    """``z`` (D,) or (N, D) moved by ``moves`` with ``locks`` held fixed: the one way latents move.

    Linear axes add ``edit_delta``; local axes (``axes.local`` set, from
    ``tlgan fit --finder local``) integrate their gradient field with the locks
    applied at every step (``tlgan.local.local_move``). An amount is a number or,
    for a batch (N, ...), one number per latent. In ``w+`` the latent is
    (num_ws, D) or (N, num_ws, D) and ``layers`` limits the edit to those
    synthesis layers (default: all of them); a mapping ``{feature: layers}``
    gives each moved feature its own layers (a feature it leaves out moves all
    of them), and the per-feature moves are summed.
    """
    if axes.local is not None:
        from .local import local_move

        return local_move(z, axes, moves, locks, layers)
    z = np.asarray(z, dtype=np.float32)
    if z.shape[-1] != axes.vectors.shape[1]:
        raise AxesError(f"latent has size {z.shape[-1]} but the axes live in {axes.vectors.shape[1]} dimensions")
    if any(np.ndim(a) for a in moves.values()):
        return _move_per_latent(z, axes, moves, locks, layers)
    moves = {n: float(a) for n, a in moves.items()}  # scalars from here on
    if layers is None:
        return z + edit_delta(axes, moves, locks)
    if z.ndim < 2:
        raise AxesError("a layer range needs a w+ latent (num_ws, D); expand the code to its layers first")
    if not isinstance(layers, Mapping):
        return z + layer_mask(layers, z.shape[-2])[:, None] * edit_delta(axes, moves, locks)
    edit_delta(axes, moves, locks)  # the whole edit's checks (a locked feature moved, a non-finite amount)
    out = z.copy()
    for name, amount in moves.items():
        if amount:
            picked = layers.get(name)
            mask = np.ones(z.shape[-2], np.float32) if picked is None else layer_mask(picked, z.shape[-2])
            out += mask[:, None] * edit_delta(axes, {name: amount}, locks)
    return out


def _move_per_latent(z: np.ndarray, axes: Axes, moves: Mapping[str, float | np.ndarray], locks: Iterable[str],
                     layers: Sequence[int] | Mapping[str, Sequence[int]] | None) -> np.ndarray:
    """Linear ``move`` of a batch ``z`` (N, ...) with one amount per latent: sum_i amount_i[n] * unit_i."""
    locks = list(locks)
    n = z.shape[0]
    out = z.copy()
    for name, amount in moves.items():
        a = np.asarray(amount, np.float32)
        if a.ndim and a.shape != (n,):
            raise AxesError(f"move for {name!r} has {a.size} amounts for {n} latents")
        if not np.isfinite(a).all():
            raise AxesError(f"move for {name!r} is not a finite number: {amount}")
        if not np.any(a):
            continue
        unit = edit_delta(axes, {name: 1.0}, locks)
        if layers is not None:
            picked = layers.get(name) if isinstance(layers, Mapping) else layers
            if picked is not None:
                unit = layer_mask(picked, z.shape[-2])[:, None] * unit
        out += np.broadcast_to(a, (n,)).reshape(n, *([1] * (z.ndim - 1))) * unit
    return out


def layer_mask(layers: Sequence[int], num_ws: int) -> np.ndarray:
    """1 on ``layers``, 0 on the other layers of a ``num_ws``-layer w+ code."""
    mask = np.zeros(num_ws, np.float32)
    mask[check_layers(layers, num_ws)] = 1
    return mask


LAYER_GROUPS = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}


def check_layers(layers: Sequence[int], num_ws: int) -> list[int]:
    """``layers`` as a sorted list of valid layer indices of a ``num_ws``-layer w+ code."""
    picked = sorted({int(i) for i in layers})
    bad = [i for i in picked if not 0 <= i < num_ws]
    if bad or not picked:
        raise AxesError(f"layer indices {bad or 'none'} are not among the generator's {num_ws} w+ layers "
                        f"(0..{num_ws - 1})")
    return picked


def parse_layers(spec: str, num_ws: int) -> list[int]:
    """A layer range as users write it: ``coarse``, ``middle``, ``fine``, ``all``, ``0-5``, ``2,4,6`` or mixes.

    As in StyleGAN's style mixing, each resolution has two layers, so for a
    1024-px generator (18 layers) ``coarse`` is 0-3 (4-8 px: pose, face
    shape), ``middle`` 4-7 (16-32 px: features, expression) and ``fine`` 8-17
    (colour, texture).
    """
    out: list[int] = []
    for part in filter(None, (p.strip().lower() for p in str(spec).split(","))):
        if part == "all":
            out += range(num_ws)
        elif part in LAYER_GROUPS:
            lo, hi = LAYER_GROUPS[part]
            out += range(lo, min(hi or num_ws, num_ws))
        else:
            try:
                lo_s, _, hi_s = part.partition("-")
                lo, hi = int(lo_s), int(hi_s or lo_s)
            except ValueError:
                raise AxesError(f"cannot read the layer range {spec!r}: use coarse, middle, fine, all, "
                                "a range like 0-5 or indices like 2,4,6") from None
            out += range(lo, hi + 1)
    return check_layers(out, num_ws)


def keep_norm(z: np.ndarray, norm: float | None = None) -> np.ndarray:
    """Rescale latents to a fixed norm (default sqrt(D), the typical norm of N(0, I)), as InterFaceGAN does."""
    z = np.asarray(z, dtype=np.float32)
    target = np.sqrt(z.shape[-1]) if norm is None else norm
    return z * (target / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12))


def traversal(z: np.ndarray, axes: Axes, feature: str, steps: np.ndarray,
              locks: Iterable[str] = (), layers: Sequence[int] | None = None) -> np.ndarray:
    """Latents (len(steps), *z.shape): ``z`` moved by each amount in ``steps`` along ``feature`` (via ``move``).

    With ``layers`` (w+), ``z`` is (num_ws, D) and only those layers move.
    """
    z = np.asarray(z, np.float32)
    if layers is not None and z.ndim != 2:
        raise AxesError("a layer range needs a w+ latent (num_ws, D); expand the code to its layers first")
    steps = np.asarray(steps, np.float32).reshape(-1)
    edit_delta(axes, {feature: 1.0}, locks)  # the checks, and the error for a direction inside the locked span
    batch = np.repeat(z[None], len(steps), axis=0)
    return move(batch, axes, {feature: steps}, locks, layers)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the rows of ``vectors``."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ v.T
