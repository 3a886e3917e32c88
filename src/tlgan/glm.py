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

Logistic models are fitted by Newton steps: the gradient is exact (one pass over
the latents for every feature and every C together, a few thin matrix products),
the Hessian is the exact one on the first ``head`` samples scaled to the whole
set (one per feature, shared by its Cs), so each pass shrinks the error by a
large constant factor; a step that raises the loss is halved.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from .errors import InputError

TRAIN, VAL, TEST = 1, 2, 3
PROB_CLIP = 1e-7  # the reference's clip of predicted probabilities in the validation log loss
CACHE_BYTES = 1 << 30  # latents already in memory are kept converted when this small


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
    """Passes over the latents, shifted by a fixed centre and cast to the compute dtype."""

    def __init__(self, z: Any, shift: np.ndarray, dtype: torch.dtype, rows: int) -> None:
        self.z, self.dtype, self.rows = z, dtype, rows
        self.shift = torch.as_tensor(shift, dtype=dtype)
        self.passes = 0
        self.cached: torch.Tensor | None = None
        if isinstance(z, np.ndarray) and z.size * torch.finfo(dtype).bits // 8 <= CACHE_BYTES:
            if not np.isfinite(z).all():
                raise NonFiniteLatents("latents contain NaN or infinite values")
            self.cached = torch.as_tensor(z).to(dtype) - self.shift  # converted and shifted once, not per pass

    def run(self, callbacks: Sequence[Callable[[int, int, torch.Tensor], None]]) -> None:
        self.passes += 1
        if self.cached is not None:
            for lo in range(0, len(self.cached), self.rows):
                hi = min(lo + self.rows, len(self.cached))
                for cb in callbacks:
                    cb(lo, hi, self.cached[lo:hi])
            return
        for lo, hi, block in _blocks(self.z, self.rows):
            if not np.isfinite(block).all():
                raise NonFiniteLatents(f"latents contain NaN or infinite values (rows {lo}..{hi})")
            x = torch.as_tensor(np.asarray(block)).to(self.dtype) - self.shift
            for cb in callbacks:
                cb(lo, hi, x)


def _ridge_stats(stream: _Stream, roles: np.ndarray, targets: np.ndarray, cols: list[int]
                 ) -> Callable[[int, int, torch.Tensor], None] | None:
    """A pass callback accumulating [x, 1, t] Gram matrices per cell of rows; returns None if ``cols`` is empty.

    Rows are grouped into cells by their roles in every feature of ``cols`` (features
    with the same NaN rows share their roles), so each row enters one Gram matrix
    once however many groups there are; the callback's ``.cells`` maps a cell's
    role tuple to its Gram matrix.
    """
    if not cols:
        return None
    keys: dict[bytes, int] = {}
    group_of = [keys.setdefault(roles[:, c].tobytes(), len(keys)) for c in cols]
    reps = [cols[group_of.index(g)] for g in range(len(keys))]
    cell = np.zeros(len(roles), np.int64)
    for r in reps:
        cell = cell * 4 + roles[:, r]
    cells: dict[int, np.ndarray] = {}

    def cb(lo: int, hi: int, x: torch.Tensor) -> None:
        ids = cell[lo:hi]
        t = torch.as_tensor(targets[lo:hi][:, cols], dtype=x.dtype)
        a = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype), t], 1)
        for u in np.unique(ids):
            if u == 0:
                continue
            rows = torch.as_tensor(np.flatnonzero(ids == u))
            au = a[rows]
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


class _Logistic:
    """Newton iterations for many (feature, C) columns at once; see the module's docstring."""

    def __init__(self, stream: _Stream, roles: np.ndarray, targets: np.ndarray, feats: list[int],
                 cs: list[float], fit_roles: tuple[int, ...], head: torch.Tensor, tol: float, max_iter: int) -> None:
        self.stream, self.roles, self.targets = stream, roles, targets
        self.feats, self.cs, self.fit_roles = feats, np.asarray(cs, np.float64), fit_roles
        self.head, self.tol, self.max_iter = head, tol, max_iter
        d = stream.shift.shape[0]
        self.d, self.k = d, len(feats)
        self.w = np.zeros((d + 1, self.k))
        self.n_fit = np.array([np.isin(roles[:, f], fit_roles).sum() for f in feats], np.float64)
        self.iterations = 0

    # one pass: loss and gradient on the fit rows, log loss on the validation rows
    def _pass(self, extra: Sequence[Callable] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dt = self.stream.dtype
        w = torch.as_tensor(self.w[:-1], dtype=dt)
        b = torch.as_tensor(self.w[-1], dtype=dt)
        grad = torch.zeros(self.d + 1, self.k, dtype=torch.float64)
        loss = torch.zeros(self.k, dtype=torch.float64)
        vloss = torch.zeros(self.k, dtype=torch.float64)
        top = max(self.fit_roles)
        clip = float(np.log((1 - PROB_CLIP) / PROB_CLIP))

        def cb(lo: int, hi: int, x: torch.Tensor) -> None:
            r = torch.as_tensor(self.roles[lo:hi][:, self.feats])
            p = torch.as_tensor(self.targets[lo:hi][:, self.feats], dtype=dt)
            u = torch.addmm(b, x, w)
            m = ((r >= TRAIN) & (r <= top)).to(dt)
            res = (torch.sigmoid(u) - p) * m
            grad[:-1] += (x.T @ res).double()
            grad[-1] += res.sum(0).double()
            # the soft log loss; the reference clips probabilities to [1e-7, 1 - 1e-7] on the validation rows
            loss.add_(((torch.nn.functional.softplus(u) - p * u) * m).sum(0).double())
            if top < VAL:
                uc = u.clamp(-clip, clip)
                v = (r == VAL).to(dt)
                vloss.add_(((torch.nn.functional.softplus(uc) - p * uc) * v).sum(0).double())

        self.stream.run([cb, *extra])
        return loss.numpy(), grad.numpy(), vloss.numpy()

    def _hessians(self) -> np.ndarray:
        """(K, D+1, D+1): per column, the exact Hessian on the head rows scaled to all fit rows, plus the penalty."""
        dt = torch.float32  # a preconditioner: single precision is plenty
        x = self.head.to(dt)
        n_h = len(x)
        roles = torch.as_tensor(self.roles[:n_h])
        fits = torch.as_tensor(self.fit_roles)
        u = (x @ torch.as_tensor(self.w[:-1], dtype=dt) + torch.as_tensor(self.w[-1], dtype=dt)).double()
        s = torch.sigmoid(u) * torch.sigmoid(-u)
        xa = torch.cat([x, torch.ones(n_h, 1, dtype=dt)], 1)
        out = np.empty((self.k, self.d + 1, self.d + 1))
        done: dict[tuple[bytes, bytes], np.ndarray] = {}
        for j, f in enumerate(self.feats):
            m = torch.isin(roles[:, f], fits)
            n_head_fit = int(m.sum())
            # columns of one feature share the Hessian of its largest-C column (the penalty is added per column)
            rep = max((i for i in range(self.k) if self.feats[i] == f), key=lambda i: self.cs[i])
            key = (self.roles[:n_h, f].tobytes(), self.w[:, rep].tobytes())
            if key not in done:
                sw = (s[:, rep] * m.double()).to(dt)
                h = ((xa * sw[:, None]).T @ xa).double().numpy()
                done[key] = h * (self.n_fit[j] / max(n_head_fit, 1))
            # another C's weights differ: scale by its mean curvature over the mean curvature at rep
            ratio = float((s[:, j] * m).sum() / max(float((s[:, rep] * m).sum()), 1e-300)) if j != rep else 1.0
            h = done[key] * ratio
            h[np.arange(self.d), np.arange(self.d)] += 1.0 / self.cs[j]
            out[j] = h
        return out

    def fit(self, extra_first: Sequence[Callable] = ()) -> np.ndarray:
        """Iterate until every column's step is below ``tol`` relative to its weights; returns validation log losses."""
        chol = None
        prev_loss = np.full(self.k, np.inf)
        step = np.zeros_like(self.w)
        vloss = np.zeros(self.k)
        moved = 0.0
        for it in range(self.max_iter):
            loss, grad, vloss = self._pass(extra_first if it == 0 else ())
            loss = loss + 0.5 * (self.w[:-1] ** 2).sum(0) / self.cs
            grad[:-1] += self.w[:-1] / self.cs
            worse = loss > prev_loss + 1e-12 * np.abs(prev_loss)
            if worse.any():  # halve the step that raised the loss; the others go on
                step[:, worse] *= 0.5
                self.w[:, worse] -= step[:, worse]
            # the Hessian at the start, again while the steps are large, and after a halved step
            if chol is None or moved > 0.02 or worse.any():
                chol = torch.linalg.cholesky(torch.as_tensor(self._hessians()))
            new = -torch.cholesky_solve(torch.as_tensor(grad.T[:, :, None]), chol)[:, :, 0].numpy().T
            ok = ~worse
            step[:, ok] = new[:, ok]
            self.w[:, ok] += step[:, ok]
            prev_loss = np.where(ok, loss, prev_loss)
            self.iterations = it + 1
            rel = np.linalg.norm(step, axis=0) / np.maximum(np.linalg.norm(self.w, axis=0), 1e-12)
            moved = float(rel.max())
            if (rel < self.tol).all():
                break
        return vloss / np.maximum([((self.roles[:, f] == VAL).sum()) for f in self.feats], 1)


def solve(z: Any, roles: np.ndarray, targets: np.ndarray, methods: Sequence[str], alphas: Sequence[float],
          cs: Sequence[float], dtype: torch.dtype | None = None, rows: int | None = None,
          head_rows: int | None = None) -> tuple[list[Solution | None], dict]:
    """Fit every feature ``f`` whose method is ``linear``, ``arctanh`` or ``logistic`` (others: None).

    ``z``: (N, D) latents, in memory or on disk; ``roles``: (N, F) int8 roles;
    ``targets``: (N, F) float64 regression targets / probabilities (any value where the role is 0).
    Returns the solutions and a few facts about the run (passes, iterations, dtype).
    """
    n, d = z.shape
    if dtype is None:
        dtype = torch.float64 if n * d <= 2e8 or isinstance(z, np.ndarray) and z.dtype == np.float64 else torch.float32
    rows = rows or block_rows(z)
    head_rows = head_rows or max(10_000, 20 * (d + 1))
    head_np = np.asarray(z[:min(n, head_rows)], np.float64)
    if not np.isfinite(head_np).all():
        raise NonFiniteLatents("latents contain NaN or infinite values")
    shift = head_np.mean(0)
    stream = _Stream(z, shift, dtype, rows)
    head = torch.as_tensor(head_np - shift).to(dtype)
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    targets = np.where(roles > 0, targets, 0.0)
    lin = [f for f, m in enumerate(methods) if m in ("linear", "arctanh")]
    logi = [f for f, m in enumerate(methods) if m == "logistic"]
    out: list[Solution | None] = [None] * len(methods)
    coefs: dict[int, tuple[np.ndarray, float, float]] = {}

    stats = _ridge_stats(stream, roles, targets, lin)
    first = [stats] if stats is not None else []
    info: dict = {"dtype": str(dtype).replace("torch.", ""), "rows_per_block": rows, "head_rows": len(head_np)}
    if logi:
        cols = [f for f in logi for _ in cs]
        cvals = [c for _ in logi for c in cs]
        path = _Logistic(stream, roles, targets, cols, cvals, (TRAIN,), head, tol, 100)
        vloss = path.fit(first)
        best = []
        for i, f in enumerate(logi):
            losses = vloss[i * len(cs):(i + 1) * len(cs)]
            best.append(int(np.argmin(losses)))  # the first of equal losses, as min() in the reference
        refit = _Logistic(stream, roles, targets, logi, [cs[k] for k in best], (TRAIN, VAL), head, tol, 100)
        refit.w = path.w[:, [i * len(cs) + k for i, k in enumerate(best)]].copy()
        refit.fit()
        info.update(logistic_iterations=path.iterations, refit_iterations=refit.iterations)
        for j, f in enumerate(logi):
            coefs[f] = (refit.w[:-1, j], float(refit.w[-1, j]), float(cs[best[j]]))
    elif stats is not None:
        stream.run(first)
    for f in lin:
        c = d + 1 + lin.index(f)
        assert stats is not None
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

    # the test rows' scores with the final models, in one more pass
    fitted = sorted(coefs)
    wmat = torch.as_tensor(np.stack([coefs[f][0] for f in fitted], 1) if fitted else np.zeros((d, 0)), dtype=dtype)
    bvec = torch.as_tensor([coefs[f][1] for f in fitted], dtype=dtype)
    test_rows = {f: np.flatnonzero(roles[:, f] == TEST) for f in fitted}
    scores = {f: np.empty(len(test_rows[f])) for f in fitted}
    pos = {f: 0 for f in fitted}

    def score(lo: int, hi: int, x: torch.Tensor) -> None:
        u = (x @ wmat + bvec).double().numpy()
        for j, f in enumerate(fitted):
            sel = np.flatnonzero(roles[lo:hi, f] == TEST)
            scores[f][pos[f]:pos[f] + len(sel)] = u[sel, j]
            pos[f] += len(sel)

    if fitted:
        stream.run([score])
    for f in fitted:
        coef, b, reg = coefs[f]
        # the scores were taken on shifted latents with the shifted intercept, so they need no change
        out[f] = Solution(coef, b - float(shift @ coef), reg, scores[f], test_rows[f])
    info["passes"] = stream.passes
    return out, info
