"""All features' GLMs at once, in passes over the latents: the fast path behind :func:`tlgan.fit.fit_axes`.

The objectives are scikit-learn's, so the chosen regularisation and the axes match
:mod:`tlgan.fit`'s reference path:

- ridge: ``sum (t - x.w - b)^2 + alpha ||w||^2`` (intercept not penalised), every
  alpha and every continuous feature from one set of Gram matrices;
- logistic on a probability ``p``: ``sum [softplus(u) - p u] + ||w||^2 / (2C)``,
  ``u = x.w + b`` — the soft label in the loss itself (no duplicated rows).

Every feature has its own rows (its NaN labels are left out) and its own
train / validation / test split, given as a role per sample (0 unused,
1 train, 2 validation, 3 test). The latents are read in blocks, so ``z`` may be
an array on disk (a zarr array of a run folder) that never sits in memory at once.

Logistic models are fitted in three stages, every feature and every C together:

1. Newton steps on the *head* (the first ``max(10,000, 60 (D+1))`` rows, in memory) with its
   loss scaled to all fit rows and the exact Hessian there (one per feature, shared by its Cs),
   until the steps are below 1%: no pass over all rows yet.
2. Passes over all rows, each giving the exact gradient (two thin matrix products per block);
   the step is L-BFGS's, starting from the head's Hessian and corrected by the secant pairs of
   the passes: about five passes take a column from 1e-1 to 1e-4 relative error. A step that
   overshot (the slope along it rose past the opposite of where it started) is halved.
3. The refit on train + validation rows with the chosen C, from the path's weights and Hessian;
   its last pass also scores the test rows.

The passes run in single precision (sums in float64); ridge Gram matrices in float64 where
that is cheap. The validation loss is taken only once the steps are small.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import InputError

TRAIN, VAL, TEST = 1, 2, 3
PROB_CLIP = 1e-7  # the reference's clip of predicted probabilities in the validation log loss
CACHE_BYTES = 1 << 30  # latents already in memory are kept converted when this small
GRAM_FLOAT64_MAX = 2e10  # N * (D + 1 + targets)^2 up to which Gram matrices are taken in float64
LBFGS_PAIRS = 5  # secant pairs kept per column
HEAD_PER_DIM = 60  # rows of the head per latent dimension (at least 10,000): its Hessian preconditions the passes
SCRATCH_RESERVE = 1 << 30  # disk space the scratch copy of the latents leaves free
SUB_ROWS = 8192  # single-precision products are summed in float64 every this many rows


class NonFiniteLatents(InputError):
    """A block of latents held NaN or infinite values."""


@dataclass
class Solution:
    """One feature's fitted model: ``t ~ z . coef + intercept``, and its test rows' scores."""

    coef: np.ndarray
    intercept: float
    regularization: float  # alpha for ridge, C for logistic, 0 for arctanh
    test_scores: np.ndarray
    test_rows: np.ndarray  # the samples (rows of z) the scores belong to
    extra: dict = field(default_factory=dict)


def _blocks(z: Any, rows: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(lo, hi, z[lo:hi])`` in order; the next block is read while the caller works on this one."""
    n = z.shape[0]
    starts = list(range(0, n, rows))
    if isinstance(z, np.ndarray):
        for lo in starts:
            yield lo, min(lo + rows, n), z[lo:lo + rows]
        return

    def read(lo: int) -> np.ndarray:
        return np.asarray(z[lo:lo + rows])

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        nxt = pool.submit(read, starts[0])
        for i, lo in enumerate(starts):
            block = nxt.result()
            if i + 1 < len(starts):
                nxt = pool.submit(read, starts[i + 1])
            yield lo, min(lo + rows, n), block


def block_rows(z: Any) -> int:
    """Rows per block: about 16 M values, a whole number of the array's chunks."""
    d = z.shape[1]
    rows = max(4096, (1 << 24) // max(d, 1))
    chunk = getattr(z, "chunks", None)
    if chunk and chunk[0] and not isinstance(z, np.ndarray):
        rows = max(chunk[0], rows // chunk[0] * chunk[0])
    return rows


class _Stream:
    """Passes over the latents, shifted by a fixed centre and cast to the compute dtype.

    Latents in memory (up to ``CACHE_BYTES``) are converted once. Latents on disk are decoded
    (zarr decompression is the slow part of a read) on the first pass only: that pass also writes
    the converted blocks to an unnamed scratch file, which later passes read back block by block
    (from the page cache while it holds them), so memory stays at a few blocks either way. Without room
    for the scratch file every pass decodes again.
    """

    def __init__(self, z: Any, shift: np.ndarray, dtype: torch.dtype, rows: int) -> None:
        self.z, self.dtype, self.rows = z, dtype, rows
        self.shift = torch.as_tensor(shift, dtype=dtype)
        self.passes = 0
        self.cached: torch.Tensor | None = None
        self.scratch: Any = None  # the unnamed scratch file (a binary file object)
        self.spilled = False
        if isinstance(z, np.ndarray) and z.size * torch.finfo(dtype).bits // 8 <= CACHE_BYTES:
            if not np.isfinite(z).all():
                raise NonFiniteLatents("latents contain NaN or infinite values")
            self.cached = torch.as_tensor(z).to(dtype) - self.shift  # converted and shifted once, not per pass
        elif not isinstance(z, np.ndarray):
            need = z.shape[0] * z.shape[1] * torch.finfo(dtype).bits // 8
            folder = tempfile.gettempdir()
            if shutil.disk_usage(folder).free > need + SCRATCH_RESERVE:
                self.scratch = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - open across passes; close() closes it

    def close(self) -> None:
        if self.scratch is not None:
            self.scratch.close()
            self.scratch = None

    def _reread(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        """The blocks of the first pass, back from the scratch file."""
        assert self.scratch is not None
        n, d = self.z.shape
        itemsize = torch.finfo(self.dtype).bits // 8
        self.scratch.seek(0)
        for lo in range(0, n, self.rows):
            hi = min(lo + self.rows, n)
            x = torch.empty((hi - lo, d), dtype=self.dtype)
            if self.scratch.readinto(x.numpy().reshape(-1).view(np.uint8)) != (hi - lo) * d * itemsize:
                raise OSError("the fit's scratch file came back short")
            yield lo, hi, x

    def _decode(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        """The blocks read from ``z``, checked, converted and shifted; written to the scratch file on the way."""
        spill = self.scratch is not None and not self.spilled
        if spill:
            self.scratch.seek(0)
        for lo, hi, block in _blocks(self.z, self.rows):
            if not np.isfinite(block).all():
                raise NonFiniteLatents(f"latents contain NaN or infinite values (rows {lo}..{hi})")
            x = torch.as_tensor(np.asarray(block)).to(self.dtype) - self.shift
            if spill:
                try:
                    self.scratch.write(x.numpy().tobytes())
                except OSError:  # the disk filled up meanwhile: decode every pass instead
                    self.close()
                    spill = False
            yield lo, hi, x
        self.spilled = spill

    def run(self, callbacks: Sequence[Callable[[int, int, torch.Tensor], None]]) -> None:
        self.passes += 1
        if self.cached is not None:
            for lo in range(0, len(self.cached), self.rows):
                hi = min(lo + self.rows, len(self.cached))
                for cb in callbacks:
                    cb(lo, hi, self.cached[lo:hi])
            return
        blocks = self._reread() if self.spilled and self.scratch is not None else self._decode()
        for lo, hi, x in blocks:
            for cb in callbacks:
                cb(lo, hi, x)


def _ridge_stats(roles: np.ndarray, targets: np.ndarray, cols: list[int], dtype: torch.dtype
                 ) -> Callable[[int, int, torch.Tensor], None] | None:
    """A pass callback accumulating [x, 1, t] Gram matrices per cell of rows; returns None if ``cols`` is empty.

    Rows are grouped into cells by their roles in every feature of ``cols`` (features
    with the same NaN rows share their roles), so each row enters one Gram matrix
    once however many groups there are; rows no feature fits on (test, unused) enter none.
    The products are taken in ``dtype`` and summed in float64 every ``SUB_ROWS`` rows.
    The callback's ``.role_stats(feature, roles)`` sums the cells of those roles.
    """
    if not cols:
        return None
    keys: dict[bytes, int] = {}
    group_of = [keys.setdefault(roles[:, c].tobytes(), len(keys)) for c in cols]
    reps = [cols[group_of.index(g)] for g in range(len(keys))]
    cell = np.zeros(len(roles), np.int64)
    for r in reps:
        cell = cell * 4 + roles[:, r]
    cell[~np.isin(roles[:, reps], (TRAIN, VAL)).any(1)] = 0
    cells: dict[int, np.ndarray] = {}

    def cb(lo: int, hi: int, x: torch.Tensor) -> None:
        for sub in range(lo, hi, SUB_ROWS):
            top = min(sub + SUB_ROWS, hi)
            ids = cell[sub:top]
            xs = x[sub - lo:top - lo].to(dtype)
            t = torch.as_tensor(targets[sub:top][:, cols], dtype=dtype)
            a = torch.cat([xs, torch.ones(len(xs), 1, dtype=dtype), t], 1)
            for u in np.unique(ids):
                if u == 0:
                    continue
                au = a if (ids == u).all() else a[torch.as_tensor(np.flatnonzero(ids == u))]
                g = (au.T @ au).double().numpy()
                cells[int(u)] = cells[int(u)] + g if int(u) in cells else g

    def role_stats(feature: int, which: Sequence[int]) -> np.ndarray:
        g = group_of[cols.index(feature)]
        shift = 2 * (len(reps) - 1 - g)
        out = None
        for u, m in cells.items():
            if (u >> shift) & 3 in which:
                out = m.copy() if out is None else out + m
        if out is None:
            raise ValueError("no rows in the requested roles")
        return out

    cb.role_stats = role_stats  # type: ignore[attr-defined]
    return cb


def _ridge_solve(s: np.ndarray, d: int, c: int, alphas: Sequence[float]) -> list[tuple[np.ndarray, float]]:
    """(coef, intercept) for each alpha from the Gram matrix ``s`` of [x, 1, targets]; target column ``c``."""
    n = s[d, d]
    m = s[:d, d] / n
    tm = s[d, c] / n
    gram = torch.as_tensor(s[:d, :d] - n * np.outer(m, m))
    rhs = torch.as_tensor(s[:d, c] - m * s[d, c])
    eye = torch.eye(d, dtype=torch.float64)
    sol = torch.linalg.solve(torch.stack([gram + a * eye for a in alphas]), rhs.expand(len(alphas), d)).numpy()
    return [(coef, float(tm - m @ coef)) for coef in sol]


def _r2_from_stats(s: np.ndarray, d: int, c: int, coef: np.ndarray, b: float) -> float:
    """R^2 of ``x . coef + b`` for target column ``c`` on the rows whose Gram matrix is ``s``."""
    n, st, stt = s[d, d], s[d, c], s[c, c]
    sz, szz, szt = s[:d, d], s[:d, :d], s[:d, c]
    sse = stt - 2 * coef @ szt - 2 * b * st + coef @ szz @ coef + 2 * b * (coef @ sz) + n * b * b
    sst = stt - st * st / n
    return float(1 - sse / sst) if sst > 0 else float("nan")


def _sum_rows(t: torch.Tensor, run: int = 1024) -> torch.Tensor:
    """``t.sum(0)`` in float64 accuracy: single-precision sums over runs of ``run`` rows, added in float64."""
    n = len(t) // run * run
    out = t[n:].sum(0, dtype=torch.float64)
    if n:
        out += t[:n].reshape(-1, run, *t.shape[1:]).sum(1).sum(0, dtype=torch.float64)
    return out


class _Logistic:
    """Newton iterations for F logistic features x M values of C at once; see the module's docstring.

    Weights are (D+1, F, M), feature-major, so a feature's targets and roles broadcast over its Cs.
    """

    def __init__(self, stream: _Stream, roles: torch.Tensor, probs: torch.Tensor, cs: np.ndarray,
                 fit_roles: tuple[int, ...], head: torch.Tensor, tol: float, max_iter: int,
                 use_head: bool, keep_scores: bool = False) -> None:
        self.stream, self.roles = stream, roles
        self.cs = np.asarray(cs, np.float64)
        self.f, self.m = self.cs.shape
        self.top = max(fit_roles)  # the fit rows are those with roles TRAIN..top
        self.head, self.tol, self.max_iter = head, tol, max_iter
        self.d = head.shape[1]
        self.w = np.zeros((self.d + 1, self.f, self.m))
        self.w_eval = self.w  # the weights of the last pass (its validation losses and scores belong to them)
        fit = (roles >= TRAIN) & (roles <= self.top)
        dt = stream.dtype
        # per row and feature, once: the fit rows' weight, -p on them, and the validation rows' weight and p
        self.fit_w = fit.to(dt)
        self.neg_p_fit = -(probs.to(dt) * self.fit_w)
        self.val_w = (roles == VAL).to(dt) if self.top < VAL else None
        self.probs = probs.to(dt)
        self.n_fit = fit.sum(0).double().numpy()
        self.n_val = np.maximum((roles == VAL).sum(0).double().numpy(), 1)
        n_fit_head = fit[:len(head)].sum(0).double().numpy()
        self.use_head = use_head and len(head) < len(roles) and bool((n_fit_head >= 2 * (self.d + 1)).all())
        self.head_scale = self.n_fit / np.maximum(n_fit_head, 1)  # the head's loss, scaled to all fit rows
        self.scores = torch.empty(roles.shape, dtype=torch.float32) if keep_scores else None
        self.iterations = self.head_iterations = self.hessians = 0
        self.hessian: np.ndarray | None = None  # the last Hessian (F, M, D+1, D+1) the steps were taken with

    def _terms(self, x: torch.Tensor, lo: int, hi: int, w: torch.Tensor, b: torch.Tensor,
               acc: dict[str, torch.Tensor], val: bool) -> torch.Tensor:
        """Add rows lo..hi's gradient (and validation loss) to ``acc``; returns their linear scores (rows, F, M)."""
        n = len(x)
        u = torch.addmm(b, x, w).view(n, self.f, self.m)
        # (sigmoid(u) - p) on the fit rows, 0 elsewhere
        res = torch.sigmoid(u).mul_(self.fit_w[lo:hi, :, None]).add_(self.neg_p_fit[lo:hi, :, None])
        acc["grad"][:-1] += (x.T @ res.view(n, -1)).double()
        acc["grad"][-1] += _sum_rows(res).view(-1)
        if val and self.val_w is not None:
            # the soft log loss with probabilities clipped to [1e-7, 1 - 1e-7], as the reference's validation loss
            clip = float(np.log((1 - PROB_CLIP) / PROB_CLIP))
            uc = u.clamp(-clip, clip)
            lt = torch.nn.functional.softplus(uc).sub_(self.probs[lo:hi, :, None] * uc)
            acc["vloss"] += _sum_rows(lt.mul_(self.val_w[lo:hi, :, None])).view(-1)
        return u

    def _pass(self, on_head: bool, val: bool, extra: Sequence[Callable] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Gradient of the fit rows' loss (of the head's, scaled, or of all rows') and, if ``val``, the validation
        rows' loss; (D+1, F, M) and (F, M)."""
        dt = self.stream.dtype
        k = self.f * self.m
        w = torch.as_tensor(self.w[:-1].reshape(self.d, k), dtype=dt)
        b = torch.as_tensor(self.w[-1].reshape(k), dtype=dt)
        acc = {"grad": torch.zeros(self.d + 1, k, dtype=torch.float64), "vloss": torch.zeros(k, dtype=torch.float64)}
        if on_head:
            self._terms(self.head.to(dt), 0, len(self.head), w, b, acc, val=False)
            acc["grad"] *= torch.as_tensor(np.repeat(self.head_scale, self.m))
        else:
            def cb(lo: int, hi: int, x: torch.Tensor) -> None:
                u = self._terms(x, lo, hi, w, b, acc, val)
                if self.scores is not None:
                    self.scores[lo:hi] = u[:, :, 0]

            self.stream.run([cb, *extra])
        shape = (self.f, self.m)
        return acc["grad"].numpy().reshape(self.d + 1, *shape), acc["vloss"].numpy().reshape(shape)

    def _hessians(self) -> np.ndarray:
        """(F, M, D+1, D+1): the exact Hessian on the head's fit rows scaled to all fit rows, plus the penalty.

        A feature's Cs share the Hessian of its largest-C column, scaled by their mean curvature over its
        (a preconditioner: single precision, and approximate, is plenty).
        """
        self.hessians += 1
        dt = torch.float32
        x = self.head.to(dt)
        n_h = len(x)
        xa = torch.cat([x, torch.ones(n_h, 1, dtype=dt)], 1)
        u = (xa @ torch.as_tensor(self.w.reshape(self.d + 1, -1), dtype=dt)).view(n_h, self.f, self.m)
        s = (torch.sigmoid(u) * torch.sigmoid(-u)).double()
        fit = ((self.roles[:n_h] >= TRAIN) & (self.roles[:n_h] <= self.top)).double()
        curv = (s * fit[:, :, None]).sum(0).numpy()  # (F, M)
        out = np.empty((self.f, self.m, self.d + 1, self.d + 1))
        diag = np.arange(self.d)
        done: dict[tuple[bytes, bytes], np.ndarray] = {}  # features with the same rows and weights (all, at the start)
        for f in range(self.f):
            rep = int(np.argmax(self.cs[f]))
            key = (fit[:, f].numpy().tobytes(), self.w[:, f, rep].tobytes())
            if key not in done:
                sw = (s[:, f, rep] * fit[:, f]).to(dt)
                done[key] = ((xa * sw[:, None]).T @ xa).double().numpy()
            h = done[key] * (self.n_fit[f] / max(float(fit[:, f].sum()), 1.0))
            for j in range(self.m):
                out[f, j] = h * (curv[f, j] / max(curv[f, rep], 1e-300))
                out[f, j, diag, diag] += 1.0 / self.cs[f, j]
        return out

    def _solve(self, grad: np.ndarray, chol: torch.Tensor, pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
               ) -> np.ndarray:
        """The quasi-Newton step ``-H^-1 grad`` per column: L-BFGS's two loops over the secant ``pairs``
        (s, y, 1 / s.y) around the head's Hessian (its Cholesky factor ``chol``) as the starting matrix."""
        q = grad.copy()
        coeffs = []
        for s, y, rho in reversed(pairs):
            a = rho * (s * q).sum(0)
            q -= a * y
            coeffs.append(a)
        g = torch.as_tensor(np.ascontiguousarray(np.moveaxis(q, 0, -1)))[..., None]  # (F, M, D+1, 1)
        r = np.moveaxis(torch.cholesky_solve(g, chol)[..., 0].numpy(), -1, 0)
        for (s, y, rho), a in zip(pairs, reversed(coeffs), strict=True):
            r += s * (a - rho * (y * r).sum(0))
        return -r

    def fit(self, extra_first: Sequence[Callable] = (), hessian: np.ndarray | None = None) -> np.ndarray:
        """Iterate until every column's step is below ``tol`` relative to its weights; returns validation log losses.

        With ``use_head``, the first iterations minimise the head's (scaled) loss, in memory, by Newton steps
        with the head's Hessian, until the steps are below 1%; the passes over all rows then start close to the
        answer, and take L-BFGS steps from the head's Hessian, which the secant pairs of the passes correct.
        A step overshot when the slope along it at its end is steeper upwards than it was downwards at its
        start (the loss rose, if it is quadratic along the step); it is halved. The validation loss is taken
        once the steps are small. ``extra_first`` ride along the first pass over all rows; ``hessian``
        (F, M, D+1, D+1) replaces the first Hessian on the head (the refit starts from the path's).
        """
        self.hessian = hessian
        chol = None if hessian is None else torch.linalg.cholesky(torch.as_tensor(hessian))
        shape = (self.f, self.m)
        step = np.zeros_like(self.w)
        slope = np.full(shape, -np.inf)  # the loss's slope along ``step`` where it started
        rel = np.full(shape, np.inf)
        vloss, have_vloss = np.zeros(shape), False
        on_head, first_full = self.use_head, True
        pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        last: tuple[np.ndarray, np.ndarray] | None = None  # the previous full pass's weights and gradient
        for _ in range(self.max_iter):
            want_val = not on_head and float(rel.max()) < 30 * self.tol
            grad, vloss = self._pass(on_head, want_val, () if on_head or not first_full else extra_first)
            have_vloss = want_val
            first_full = first_full and on_head
            self.w_eval = self.w.copy()
            grad[:-1] += self.w[:-1] / self.cs
            if not on_head:
                if last is not None:
                    s, y = self.w - last[0], grad - last[1]
                    sy = (s * y).sum(0)
                    ok_pair = sy > 1e-10 * np.linalg.norm(s, axis=0) * np.linalg.norm(y, axis=0)
                    pairs = [*pairs[-(LBFGS_PAIRS - 1):], (s, y, np.where(ok_pair, 1 / np.where(ok_pair, sy, 1), 0))]
                last = (self.w_eval, grad.copy())
            worse = ((grad * step).sum(0) > -slope) & (rel > self.tol)
            if worse.any():  # halve the step that overshot; the others go on
                step[:, worse] *= 0.5
                slope[worse] *= 0.5
                self.w[:, worse] -= step[:, worse]
            # the head's Hessian at the start, again while the steps on the head are large, and after a halved step
            if chol is None or (on_head and float(rel.max()) > 0.1) or worse.any():
                self.hessian = self._hessians()
                chol = torch.linalg.cholesky(torch.as_tensor(self.hessian))
            new = self._solve(grad, chol, pairs)
            ok = ~worse
            step[:, ok] = new[:, ok]
            slope[ok] = (grad * new).sum(0)[ok]
            self.w[:, ok] += step[:, ok]
            rel = np.linalg.norm(step, axis=0) / np.maximum(np.linalg.norm(self.w, axis=0), 1e-12)
            if on_head:
                self.head_iterations += 1
                if float(rel.max()) < 1e-2:  # close enough: the rest is the difference between the head and all rows
                    on_head, slope = False, np.full(shape, -np.inf)
                continue
            self.iterations += 1
            if float(rel.max()) < self.tol:
                break
        if self.val_w is not None and not have_vloss:  # converged in a stride: the validation loss where it ended
            self.w = self.w_eval.copy()
            _, vloss = self._pass(False, True)
        return vloss / self.n_val[:, None]

    def refit_hessian(self, best: Sequence[int], refit_fit: torch.Tensor) -> np.ndarray:
        """The last Hessian of the chosen columns, its data part rescaled to the refit's rows ``refit_fit`` (N, F)."""
        assert self.hessian is not None
        out = np.empty((self.f, 1, self.d + 1, self.d + 1))
        diag = np.arange(self.d)
        scale = refit_fit.sum(0).double().numpy() / np.maximum(self.n_fit, 1)
        for f, k in enumerate(best):
            h = self.hessian[f, k].copy()
            h[diag, diag] -= 1.0 / self.cs[f, k]
            out[f, 0] = h * scale[f]
            out[f, 0, diag, diag] += 1.0 / self.cs[f, k]
        return out


def solve(z: Any, roles: np.ndarray, targets: np.ndarray, methods: Sequence[str], alphas: Sequence[float],
          cs: Sequence[float], dtype: torch.dtype = torch.float32, rows: int | None = None,
          head_rows: int | None = None) -> tuple[list[Solution | None], dict]:
    """Fit every feature ``f`` whose method is ``linear``, ``arctanh`` or ``logistic`` (others: None).

    ``z``: (N, D) latents, in memory or on disk; ``roles``: (N, F) int8 roles;
    ``targets``: (N, F) float64 regression targets / probabilities (any value where the role is 0).
    ``dtype``: the precision of the passes over the latents (sums are kept in float64 whatever it is).
    Returns the solutions and a few facts about the run (passes, iterations, dtype).
    """
    n, d = z.shape
    rows = rows or block_rows(z)
    head_rows = head_rows or max(10_000, HEAD_PER_DIM * (d + 1))
    head_np = np.asarray(z[:min(n, head_rows)], np.float64)
    if not np.isfinite(head_np).all():
        raise NonFiniteLatents("latents contain NaN or infinite values")
    shift = head_np.mean(0)
    stream = _Stream(z, shift, dtype, rows)
    try:
        return _solve(stream, torch.as_tensor(head_np - shift).to(dtype), shift, roles, targets, methods, alphas, cs)
    finally:
        stream.close()


def _solve(stream: _Stream, head: torch.Tensor, shift: np.ndarray, roles: np.ndarray, targets: np.ndarray,
           methods: Sequence[str], alphas: Sequence[float], cs: Sequence[float]) -> tuple[list[Solution | None], dict]:
    """:func:`solve` on an open stream of the shifted latents, whose first rows are ``head``."""
    n, d = stream.z.shape
    dtype, rows = stream.dtype, stream.rows
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    targets = np.where(roles > 0, targets, 0.0)
    lin = [f for f, m in enumerate(methods) if m in ("linear", "arctanh")]
    logi = [f for f, m in enumerate(methods) if m == "logistic"]
    out: list[Solution | None] = [None] * len(methods)
    coefs: dict[int, tuple[np.ndarray, float, float]] = {}
    # Gram matrices in float64 where that is cheap, else in single precision summed in float64 every few rows
    gram_dtype = torch.float64 if n * (d + 1 + len(lin)) ** 2 <= GRAM_FLOAT64_MAX else dtype
    stats = _ridge_stats(roles, targets, lin, gram_dtype)
    info: dict = {"dtype": str(dtype).replace("torch.", ""), "gram_dtype": str(gram_dtype).replace("torch.", ""),
                  "rows_per_block": rows, "head_rows": len(head)}

    def solve_ridge() -> None:
        assert stats is not None
        for f in lin:
            c = d + 1 + lin.index(f)
            trva = stats.role_stats(f, (TRAIN, VAL))  # type: ignore[attr-defined]
            if methods[f] == "arctanh":
                coef, b = _ridge_solve(trva, d, c, [0.0])[0]
                coefs[f] = (coef, b, 0.0)
                continue
            tr, va = stats.role_stats(f, (TRAIN,)), stats.role_stats(f, (VAL,))  # type: ignore[attr-defined]
            r2s = [_r2_from_stats(va, d, c, cf, b) for cf, b in _ridge_solve(tr, d, c, alphas)]
            best_alpha = alphas[int(np.argmax(r2s))]
            coef, b = _ridge_solve(trva, d, c, [best_alpha])[0]
            coefs[f] = (coef, b, float(best_alpha))

    # the test rows' linear scores of every final model, (N, F) in single precision
    scores = torch.empty((n, len(methods)), dtype=torch.float32)

    def score_ridge(lo: int, hi: int, x: torch.Tensor) -> None:
        w = torch.as_tensor(np.stack([coefs[f][0] for f in lin], 1), dtype=x.dtype)
        b = torch.as_tensor([coefs[f][1] for f in lin], dtype=x.dtype)
        scores[lo:hi, lin] = torch.addmm(b, x, w).float()

    first = [stats] if stats is not None else []
    if logi:
        roles_t = torch.as_tensor(roles[:, logi])
        probs_t = torch.as_tensor(targets[:, logi], dtype=torch.float32)
        grid = np.tile(np.asarray(cs, np.float64), (len(logi), 1))
        path = _Logistic(stream, roles_t, probs_t, grid, (TRAIN,), head, tol, 100, use_head=True)
        vloss = path.fit(first)
        best = [int(np.argmin(v)) for v in vloss]  # the first of equal losses, as min() in the reference
        if stats is not None:
            solve_ridge()
        refit = _Logistic(stream, roles_t, probs_t, np.asarray([[cs[k]] for k in best]), (TRAIN, VAL), head, tol,
                          100, use_head=False, keep_scores=True)
        refit.w = path.w[:, np.arange(len(logi)), best][:, :, None].copy()
        refit.fit([score_ridge] if lin else [], path.refit_hessian(best, (roles_t >= TRAIN) & (roles_t <= VAL)))
        assert refit.scores is not None
        scores[:, logi] = refit.scores
        info.update(head_iterations=path.head_iterations, logistic_iterations=path.iterations,
                    refit_iterations=refit.iterations, hessians=path.hessians + refit.hessians)
        for j, f in enumerate(logi):
            coefs[f] = (refit.w_eval[:-1, j, 0], float(refit.w_eval[-1, j, 0]), float(cs[best[j]]))
    elif stats is not None:
        stream.run(first)
        solve_ridge()
        stream.run([score_ridge])

    for f in sorted(coefs):
        coef, b, reg = coefs[f]
        test_rows = np.flatnonzero(roles[:, f] == TEST)
        # the scores were taken on shifted latents with the shifted intercept, so they need no change
        out[f] = Solution(coef, b - float(shift @ coef), reg, scores[test_rows, f].double().numpy(), test_rows)
    info.update(passes=stream.passes, scratch=stream.spilled)
    return out, info
