"""Step 5 — explore: move latents along feature axes, with some features locked.

Every axes file holds a direction field (:mod:`tlgan.fields`), and
:func:`move` is the one integrator of any field: the path is cut into steps
of ``settings.step`` latent units (midpoint rule), and at every step each
moved feature's direction is projected onto the orthogonal complement of the
locked features' directions *at that point*, then rescaled to unit length, so
a move of +1 is always one unit of latent distance and a locked feature stays
put to first order all along the path. Locking follows InterFaceGAN's
conditional manipulation rather than TL-GAN's Gram-Schmidt: an exact
projection, independent of the order of the locks.

A constant (linear) field is integrated in one exact step: the linear edit
sum_i amount_i * unit(P a_i). A field that models its features' levels (the
local MLP) also offers the field's :class:`~tlgan.fields.MoveSettings`: the
*corrector* ends every step with a Gauss–Newton step that brings the locked
features' modelled levels back to where the move started (projection holds
them only to first order where their level sets curve), the step then
rescaled to its planned length; a *kept* binary feature (the extractor's
presence feature) is a one-sided constraint in the same correction, held at
or above ``min(start, keep_level)``; with ``shell`` the radial direction is
locked too and the latent keeps its norm (z latents only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .axes import Axes, AxesError
from .fields import RANK_TOL, DirectionField, MoveSettings, locked_units, project_out, retained, span_basis

__all__ = ["RANK_TOL", "edit_delta", "move", "project_out", "retained", "span_basis", "traversal"]


def edit_delta(axes: Axes, moves: Mapping[str, float], locks: Iterable[str] = ()) -> np.ndarray:
    """The latent change (D,) of a linear move: ``moves`` ({feature: amount}) along the axes' mean
    (constant) directions with ``locks`` held fixed, sum_i amount_i * unit(P a_i)."""
    linear = axes.with_field(axes.field.mean())
    return move(np.zeros(axes.vectors.shape[1], np.float32), linear, moves, locks)


def move(z: np.ndarray, axes: Axes, moves: Mapping[str, Any], locks: Iterable[str] = (),
         layers: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
         settings: MoveSettings | None = None) -> np.ndarray:
    """``z`` (D,) or (N, D) moved by ``moves`` with ``locks`` held fixed: the one way latents move.

    Integrates ``axes.field`` as the module docstring says, with ``settings``
    (default: the field's own, as its axes file records them). An amount is a
    number or, for a batch (N, ...), one number per latent; per latent the
    moves are summed (amount_i * unit direction_i). In ``w+`` the latent is
    (num_ws, D) or (N, num_ws, D): the field is read at the mean code over the
    layers, and ``layers`` limits the edit to those synthesis layers (default:
    all of them); a mapping ``{feature: layers}`` gives each moved feature its
    own layers (a feature it leaves out moves all of them).
    """
    field = axes.field
    settings = field.settings if settings is None else settings
    locks = list(dict.fromkeys(locks))
    both = sorted(set(locks) & {n for n, a in moves.items() if np.any(np.asarray(a) != 0)})
    if both:
        raise AxesError(f"cannot move a locked feature: {', '.join(both)}; unlock it or drop the move")
    for name in list(moves) + locks:
        axes.index(name)
    z = np.asarray(z, np.float32)
    if z.shape[-1] != axes.vectors.shape[1]:
        raise AxesError(f"latent has size {z.shape[-1]} but the axes live in {axes.vectors.shape[1]} dimensions")
    wplus = layers is not None or z.ndim == 3
    if wplus and z.ndim < 2:
        raise AxesError("a layer range needs a w+ latent (num_ws, D); expand the code to its layers first")
    single = z.ndim == (2 if wplus else 1)
    x0 = z[None] if single else z
    n = x0.shape[0]
    amounts = []
    for name, amount in moves.items():
        a = np.asarray(amount, np.float64)
        if not np.isfinite(a).all():
            raise AxesError(f"move for {name!r} is not a finite number: {amount}")
        if a.ndim and a.shape != (n,):
            raise AxesError(f"move for {name!r} has {a.size} amounts for {n} latents")
        amounts.append(np.broadcast_to(a, (n,)))
    names = [m for m, a in zip(moves, amounts, strict=True) if np.any(a != 0)]
    if not names:
        return z.copy()
    amount = np.stack([a for m, a in zip(moves, amounts, strict=True) if m in names], 1)  # (N, m)
    masks = None
    if wplus:
        num_ws = x0.shape[1]
        per: Mapping[str, Sequence[int] | None] = layers if isinstance(layers, Mapping) else dict.fromkeys(names, layers)
        masks = np.stack([np.ones(num_ws, np.float32) if (picked := per.get(m)) is None else layer_mask(picked, num_ws)
                          for m in names]).astype(np.float64)
    if settings.shell and (wplus or axes.latent_space != "z"):
        raise AxesError("keeping the norm (shell) is for z latents only")
    delta = integrate(field, x0, names, amount, locks, masks, settings)
    out = z + (delta[0] if single else delta).astype(np.float32)
    return out


def integrate(field: DirectionField, x0: np.ndarray, names: Sequence[str], amount: np.ndarray,
              locks: Sequence[str], masks: np.ndarray | None, settings: MoveSettings) -> np.ndarray:
    """The displacement (float64, shaped like ``x0``) of latents ``x0`` (N, D) or w+ (N, num_ws, D) moved
    ``amount`` (N, m) along the ``names`` of ``field`` with ``locks`` projected out at every step (``masks``
    (m, num_ws): the layers each feature reaches in w+); see the module docstring."""
    wplus = masks is not None
    z0 = x0.astype(np.float64)
    exact = field.constant and not settings.shell
    n_steps = 1 if exact else max(1, math.ceil(float(np.abs(amount).max()) / settings.step))
    rate = amount / n_steps  # (N, m): latent distance per step, signed
    radius = np.linalg.norm(z0, axis=-1, keepdims=True) if settings.shell else None

    def velocity(delta: np.ndarray, check: bool = False) -> np.ndarray:
        """Sum of rate_i * unit direction_i at ``z0 + delta``, locks projected out (``check``: refuse a
        moved feature that has nothing left to move along at any latent)."""
        at = z0 + delta
        at = at.mean(1) if wplus else at
        if exact:
            at = at[:1]  # one answer for every latent
        asked = list(names) + list(locks)  # a constant field may answer once for all latents
        dirs = np.broadcast_to(field.directions(at, asked), (len(at), len(asked), at.shape[-1]))
        locked = dirs[:, len(names):]
        if settings.shell:
            radial = at / np.maximum(np.linalg.norm(at, axis=-1, keepdims=True), 1e-12)
            locked = np.concatenate([locked, np.broadcast_to(radial[:, None], (len(dirs), 1, at.shape[-1]))], 1)
        units, _ = locked_units(dirs[:, :len(names)], locked)
        if check:
            dead = [m for i, m in enumerate(names) if not units[:, i].any()]
            if dead:
                raise AxesError(f"the direction of {', '.join(dead)} lies inside the span of the locked axes: "
                                "locking leaves nothing to move")
        v = np.zeros_like(z0)
        for i in range(len(names)):
            if masks is None:
                v += rate[:, i, None] * units[:, i]
            else:
                v += rate[:, i, None, None] * masks[i][None, :, None] * units[:, i, None, :]
        return v

    held, target, lower = _held_levels(field, z0.mean(1) if wplus else z0, names, locks, settings)
    # a correction reaches the moved layers only, scaled so that their mean over all layers moves by it
    reach = None if masks is None else (masks.max(0) * masks.shape[1] / max(masks.max(0).sum(), 1))[:, None]
    delta = np.zeros_like(z0)
    for k in range(n_steps):
        if exact:
            v = velocity(delta, check=True)  # the same direction everywhere: the step is exact
        else:
            mid = delta + 0.5 * velocity(delta, check=k == 0)
            if radius is not None:
                mid = (z0 + mid) * (radius / np.linalg.norm(z0 + mid, axis=-1, keepdims=True)) - z0
            v = velocity(mid)
        new = delta + v
        if target is not None:
            x = z0 + new
            fix = _correction(field, x.mean(1) if wplus else x, held, target, lower, settings.step)
            new = new + (fix if reach is None else reach * fix[:, None])
            dims = tuple(range(1, z0.ndim))
            planned = np.linalg.norm(v, axis=dims, keepdims=True)
            taken = np.linalg.norm(new - delta, axis=dims, keepdims=True)
            new = delta + (new - delta) * (planned / np.maximum(taken, 1e-12))  # +1 is still one unit of movement
        delta = new
        if radius is not None:
            x = z0 + delta
            delta = x * (radius / np.linalg.norm(x, axis=-1, keepdims=True)) - z0
    return delta


def _held_levels(field: DirectionField, at: np.ndarray, names: Sequence[str], locks: Sequence[str],
                 settings: MoveSettings) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """What the corrector holds: (feature names, their target levels (N, k) or None, which are one-sided).

    The locked features at their start levels when ``settings.correct`` (a constant field holds them
    exactly already), and the kept feature at or above min(start, keep_level) unless it is moved or locked."""
    keep = settings.keep or ""
    if keep and (keep in names or keep in locks):
        keep = ""  # moving or locking the kept feature says what to do with it
    held = (list(locks) if settings.correct and not field.constant else []) + ([keep] if keep else [])
    if not held:
        return [], None, np.zeros(0, bool)
    if keep:
        if keep not in field.names or not field.binary(keep):
            raise AxesError(f"only a binary feature the field models can be kept (a probability held up), "
                            f"not {keep!r}")
        if not 0 < settings.keep_level < 1:
            raise AxesError(f"keep_level is a probability between 0 and 1, got {settings.keep_level}")
    levels = field.levels(at, held)
    if levels is None:
        raise AxesError(f"the {field.kind} field models no feature levels, so it cannot hold "
                        f"{', '.join(held)} by correction; turn correct and keep off")
    target = levels[0].copy()
    lower = np.array([False] * (len(held) - bool(keep)) + [True] * bool(keep))
    if keep:
        level = settings.keep_level
        target[:, -1] = np.minimum(target[:, -1], math.log(level / (1 - level)))
    return held, target, lower


def _correction(field: DirectionField, x: np.ndarray, names: Sequence[str], target: np.ndarray,
                lower: np.ndarray, limit: float) -> np.ndarray:
    """The Gauss–Newton step (N, D) that brings the modelled levels of ``names`` at latents ``x`` (N, D) to
    ``target`` (N, k).

    Solves G Gᵀ c = target − h for the levels' gradients G and returns Gᵀ c, the
    shortest step that does so to first order. A row with ``lower`` set is a
    one-sided constraint (level ≥ target) and takes part only where it is
    violated. Steps longer than ``limit`` are shortened to it, so a flat or
    badly fitted model cannot throw the latent far.
    """
    levels = field.levels(x, names)
    assert levels is not None  # checked by _held_levels
    h, g = levels
    r = target - h
    r = np.where(lower, np.maximum(r, 0), r)
    g = g * (r != 0)[..., None]
    a = g @ g.transpose(0, 2, 1)
    c = (np.linalg.pinv(a, rcond=RANK_TOL, hermitian=True) @ r[..., None])[..., 0]
    step = np.einsum("nk,nkd->nd", c, g)
    return step * (limit / np.maximum(np.linalg.norm(step, axis=-1, keepdims=True), limit))


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
    batch = np.repeat(z[None], len(steps), axis=0)
    return move(batch, axes, {feature: steps}, locks, layers)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the rows of ``vectors``."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ v.T
