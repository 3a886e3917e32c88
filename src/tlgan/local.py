"""Local (latent-dependent) axes: a smooth model of every feature, and edits that follow its gradient field.

A linear axis is one direction for every face. A *local* axis is the gradient
of a small MLP fitted to the run's (latent, label) pairs, so the direction of
"older" or "turn the head" may differ from face to face. A move integrates
that field in small steps at unit speed in latent distance (a move of ``+1``
is still one unit of movement), and **locks are applied at every step**: each
step is projected onto the orthogonal complement of the locked features'
*local* gradients, so a locked feature's model stays put to first order all
along the path. With ``shell`` the radial direction is locked too and the
latent keeps its norm (the typical shell of N(0, I) noise).

Projection holds a locked feature only to first order; where its level set
curves the path drifts off it. The **corrector** (``correct``) ends every step
with a Gauss–Newton step along the locked gradients that brings their
predicted values back to where the move started (predictor–corrector), and
the step is then rescaled to its planned length, so ``+1`` is still one unit.
A **kept** binary feature (``keep``, by default the run's ``face_found``) is
a one-sided constraint in the same correction: whenever its predicted
probability falls below ``min(its start, keep_level)`` the step is pulled back
to that level, so a long move does not walk out of the region where the
extractor still finds a face.

Pure torch/numpy, no I/O: :class:`LocalModel` holds the network as named
arrays (saved in the axes file's safetensors, never pickled) and
:func:`local_move` is what :func:`tlgan.explore.move` calls for axes that
carry a model.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from .errors import TLGANError
from .logistic import auc, r2

if TYPE_CHECKING:
    from .axes import Axes

#: latent distance covered by one integration step (midpoint rule)
STEP = 0.2
#: a projected gradient shorter than this fraction of the gradient counts as "nothing left to move along"
RANK_TOL = 1e-6
#: the binary feature a local move keeps from falling (when the model has it): the extractor's detection
KEEP_FEATURE = "face_found"
#: a kept feature's predicted probability is held at or above min(its value at the start, KEEP_LEVEL)
KEEP_LEVEL = 0.99
MODEL_FORMAT = 1
VAL_FRACTION = 0.1  # of the samples: the early-stopping split (the test split is separate)


class LocalModelError(TLGANError, ValueError):
    """A local model that cannot be built or used (bad shapes, unknown output)."""


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside: the model is so small that more threads only contend
    (measured 20x slower with 2 threads than 1 on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _activation(name: str) -> torch.nn.Module:
    if name == "silu":
        return torch.nn.SiLU()
    if name == "tanh":
        return torch.nn.Tanh()
    raise LocalModelError(f"unknown activation {name!r} in a local model (known: silu, tanh)")


def build_net(latent_dim: int, hidden: Sequence[int], n_out: int, activation: str = "silu") -> torch.nn.Sequential:
    """The MLP latent (D) -> one head per feature: Linear, activation, ..., Linear (smooth, so its gradient is)."""
    layers: list[torch.nn.Module] = []
    width = latent_dim
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), _activation(activation)]
        width = int(h)
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


@dataclass
class LocalModel:
    """A smooth model of every feature over the latent: heads = net((x - in_mean) / in_scale).

    A head is the logit of P(feature) for a ``binary`` feature and the
    standardised value ``(y - out_mean) / out_scale`` for a ``continuous`` one;
    an axis direction is the (unit) gradient of its head. ``tensors`` holds the
    network's parameters under their ``state_dict`` names plus ``in_mean``,
    ``in_scale``, ``out_mean`` and ``out_scale``.
    """

    outputs: list[str]
    kinds: list[str]
    hidden: list[int]
    tensors: dict[str, np.ndarray]
    activation: str = "silu"
    _net: torch.nn.Sequential | None = field(default=None, repr=False, compare=False)

    @property
    def latent_dim(self) -> int:
        return int(self.tensors["in_mean"].shape[0])

    def net(self) -> torch.nn.Sequential:
        """The torch module (built once, float32, evaluation mode, parameters frozen)."""
        if self._net is None:
            net = build_net(self.latent_dim, self.hidden, len(self.outputs), self.activation)
            params = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in self.tensors.items()
                      if k not in ("in_mean", "in_scale", "out_mean", "out_scale")}
            try:
                net.load_state_dict(params)
            except RuntimeError as e:
                raise LocalModelError(f"the local model's weights do not fit its architecture: {e}") from None
            net.eval().requires_grad_(False)
            self._net = net
        return self._net

    def output_index(self, names: Iterable[str]) -> list[int]:
        out = []
        for n in names:
            if n not in self.outputs:
                raise LocalModelError(f"the local model has no output {n!r}; it models: {', '.join(self.outputs)}")
            out.append(self.outputs.index(n))
        return out

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """Head values (N, F) at latents ``x`` (N, D) (differentiable in ``x``)."""
        mean = torch.as_tensor(self.tensors["in_mean"], dtype=x.dtype)
        scale = torch.as_tensor(self.tensors["in_scale"], dtype=x.dtype)
        return self.net()((x - mean) / scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's labels (N, F) in feature units: probabilities for binary features, values otherwise."""
        with torch.no_grad():
            h = self.heads(torch.as_tensor(np.asarray(x, np.float32))).double().numpy()
        out = h * self.tensors["out_scale"] + self.tensors["out_mean"]
        binary = np.asarray([k == "binary" for k in self.kinds])
        out[:, binary] = 1 / (1 + np.exp(-h[:, binary]))
        return out

    def gradients(self, x: np.ndarray | torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """Gradients (N, k, D) of the heads of ``names`` at latents ``x`` (N, D), float64."""
        return self.heads_and_gradients(x, names)[1]

    def heads_and_gradients(self, x: np.ndarray | torch.Tensor,
                            names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Head values (N, k) and their gradients (N, k, D) for ``names`` at latents ``x`` (N, D), float64."""
        idx = self.output_index(names)
        xt = torch.as_tensor(np.asarray(x, np.float32) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
        if not idx:
            return (torch.zeros((len(xt), 0), dtype=torch.float64),
                    torch.zeros((len(xt), 0, xt.shape[-1]), dtype=torch.float64))
        xt = xt.detach().clone().requires_grad_(True)
        with torch.enable_grad(), one_thread():
            h = self.heads(xt)[:, idx]
            rows = [torch.autograd.grad(h[:, k].sum(), xt, retain_graph=k + 1 < len(idx))[0] for k in range(len(idx))]
        return h.detach().double(), torch.stack(rows, 1).double()

    def mean_gradients(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Mean gradient (k, D) of each head over latents ``x``: the model's best single (linear) direction."""
        return self.gradients(x, names).mean(0).numpy()

    def header(self) -> dict[str, Any]:
        """The architecture, as the axes file's header records it."""
        return {"format": MODEL_FORMAT, "kind": "mlp", "outputs": self.outputs, "kinds": self.kinds,
                "hidden": self.hidden, "activation": self.activation, "latent_dim": self.latent_dim}

    def named_tensors(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in self.tensors.items()}

    @classmethod
    def from_file(cls, header: Any, tensors: Mapping[str, np.ndarray], prefix: str) -> "LocalModel":
        """The model an axes file stores: ``header`` (its architecture) and the tensors named ``prefix*``."""
        if not isinstance(header, dict) or header.get("kind") != "mlp" or header.get("format") != MODEL_FORMAT:
            raise LocalModelError("the axes file's local model header is not a tlgan MLP of format "
                                  f"{MODEL_FORMAT}; refit the axes with `tlgan fit RUN --finder local`")
        own = {k[len(prefix):]: np.asarray(v, np.float64 if k[len(prefix):].startswith(("in_", "out_")) else np.float32)
               for k, v in tensors.items() if k.startswith(prefix)}
        missing = [k for k in ("in_mean", "in_scale", "out_mean", "out_scale") if k not in own]
        outputs, kinds, hidden = header.get("outputs"), header.get("kinds"), header.get("hidden")
        if missing or not isinstance(outputs, list) or not isinstance(kinds, list) or len(outputs) != len(kinds) \
                or not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise LocalModelError(f"the axes file's local model is incomplete (missing {missing or 'fields'}); "
                                  "refit the axes with `tlgan fit RUN --finder local`")
        model = cls([str(o) for o in outputs], [str(k) for k in kinds], list(hidden), own,
                    str(header.get("activation", "silu")))
        model.net()  # shapes checked now, not at the first edit
        return model


# ---------------------------------------------------------------- fitting


@dataclass
class LocalFit:
    """A fitted model and, per feature, its held-out quality beside a linear model's on the same split."""

    model: LocalModel
    metrics: dict[str, dict[str, Any]]
    epochs: int
    skipped: dict[str, str]


def fit_local_model(z: np.ndarray, labels: np.ndarray, names: Sequence[str], kinds: Sequence[str],
                    hidden: Sequence[int] = (256, 256), epochs: int = 80, patience: int = 8, batch: int = 128,
                    lr: float = 2e-3, weight_decay: float = 1e-3, test_fraction: float = 0.2, seed: int = 0,
                    min_samples: int = 50) -> LocalFit:
    """Fit one MLP with a head per feature on latents ``z`` (N, D) and ``labels`` (N, F) (NaN = unknown).

    Binary features are fitted on their soft labels with a logistic loss (head =
    logit), continuous ones by least squares on standardised values; each
    feature's loss is averaged over its own valid samples. ``VAL_FRACTION`` of
    the samples decide when to stop: AdamW stops when their loss has not
    improved for ``patience`` epochs and the best weights are kept. Another
    ``test_fraction``, never used for fitting or stopping, gives each feature's
    held-out R² / AUC, beside a least-squares linear model's on the
    same split (``linear_r2`` / ``linear_auc``), so the gain over a linear axis is measured.
    """
    z = np.asarray(z, np.float64)
    labels = np.asarray(labels, np.float64)
    n, dim = z.shape
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_te = max(1, int(round(n * test_fraction)))
    n_va = max(1, int(round(n * VAL_FRACTION)))
    te, va, tr = perm[:n_te], perm[n_te:n_te + n_va], perm[n_te + n_va:]
    valid = np.isfinite(labels)
    keep, skipped = [], {}
    for j, name in enumerate(names):
        nv = int(valid[tr, j].sum())
        y = labels[valid[:, j], j]
        if nv < min_samples:
            skipped[name] = f"only {nv} valid training samples (need {min_samples})"
        elif np.ptp(y) <= 0:
            skipped[name] = "the label never varies"
        else:
            keep.append(j)
    if not keep:
        raise LocalModelError("no feature has enough valid labels for a local model; sample more")
    names = [names[j] for j in keep]
    kinds = [kinds[j] for j in keep]
    labels, valid = labels[:, keep], valid[:, keep]
    binary = np.asarray([k == "binary" for k in kinds])
    in_mean, in_scale = z[tr].mean(0), np.maximum(z[tr].std(0), 1e-6)
    out_mean = np.array([0.0 if b else np.nanmean(labels[tr, j]) for j, b in enumerate(binary)])
    out_scale = np.array([1.0 if b else max(np.nanstd(labels[tr, j]), 1e-12) for j, b in enumerate(binary)])
    target = np.where(valid, (np.nan_to_num(labels) - out_mean) / out_scale, 0.0)
    target[:, binary] = np.clip(np.nan_to_num(labels[:, binary]), 0, 1)

    torch.manual_seed(seed)
    net = build_net(dim, hidden, len(names))
    x_all = torch.as_tensor((z - in_mean) / in_scale, dtype=torch.float32)
    t_all = torch.as_tensor(target, dtype=torch.float32)
    m_all = torch.as_tensor(valid, dtype=torch.float32)
    is_bin = torch.as_tensor(binary)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)

    def loss_of(idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        h, t, m = net(x_all[idx]), t_all[idx], m_all[idx]
        per = torch.where(is_bin, torch.nn.functional.binary_cross_entropy_with_logits(h, t, reduction="none"),
                          (h - t) ** 2)
        return ((per * m).sum(0) / m.sum(0).clamp_min(1)).sum()

    with one_thread():
        best_state, done = _train(net, loss_of, opt, torch.as_tensor(tr), torch.as_tensor(va), epochs, patience,
                                  batch, seed)
        net.load_state_dict(best_state)
        with torch.no_grad():
            heads = net(x_all[torch.as_tensor(te)]).double().numpy()
    tensors = {k: v.numpy().astype(np.float32) for k, v in best_state.items()}
    tensors.update(in_mean=in_mean, in_scale=in_scale, out_mean=out_mean, out_scale=out_scale)
    model = LocalModel(list(names), list(kinds), [int(h) for h in hidden], tensors)
    xa = np.c_[np.ones(len(tr)), z[tr]]
    xt = np.c_[np.ones(len(te)), z[te]]
    metrics: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        vt, vv = valid[tr, j], valid[te, j]
        coef = np.linalg.lstsq(xa[vt], labels[tr][vt, j], rcond=None)[0]
        y, lin = labels[te][vv, j], xt[vv] @ coef
        m: dict[str, Any] = {"method": "mlp", "n_used": int(valid[:, j].sum()), "hidden": list(hidden)}
        if binary[j]:
            m["auc"], m["linear_auc"] = auc(y > 0.5, heads[vv, j]), auc(y > 0.5, lin)
        else:
            m["r2"], m["linear_r2"] = r2(y, heads[vv, j] * out_scale[j] + out_mean[j]), r2(y, lin)
        metrics[name] = m
    return LocalFit(model, metrics, done, skipped)


def _train(net: torch.nn.Module, loss_of, opt: torch.optim.Optimizer, tr: torch.Tensor, te: torch.Tensor,
           epochs: int, patience: int, batch: int, seed: int) -> tuple[dict[str, torch.Tensor], int]:
    """Mini-batch epochs until the held-out loss stops improving; (best weights, epochs run).

    The learning rate drops (x0.3) whenever the held-out loss stalls: the last, small steps smooth the
    fitted function, and a smooth function is what gives a usable gradient field."""
    best, best_state, since, done = math.inf, None, 0, 0
    gen = torch.Generator().manual_seed(seed)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=max(1, patience // 3))
    for epoch in range(epochs):
        net.train()
        order = tr[torch.randperm(len(tr), generator=gen)]
        for b in range(0, len(order), batch):
            opt.zero_grad()
            loss_of(order[b:b + batch]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(loss_of(te))
        done = epoch + 1
        plateau.step(val)
        if val < best - 1e-5 or best_state is None:
            best, since = val, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    assert best_state is not None
    return best_state, done


# ---------------------------------------------------------------- moving along the gradient field


def _constraint_basis(rows: torch.Tensor) -> torch.Tensor:
    """Per sample, an orthonormal basis of the span of ``rows`` (N, k, D) -> (N, k, D) (dependent rows zeroed)."""
    if rows.shape[1] == 0:
        return rows
    _, s, vh = torch.linalg.svd(rows, full_matrices=False)
    keep = s > RANK_TOL * s.amax(1, keepdim=True).clamp_min(1e-12)
    return vh * keep[..., None]


def directions(model: LocalModel, x: torch.Tensor, moved: Sequence[str], locks: Sequence[str],
               shell: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit local edit directions (N, m, D) of the ``moved`` features at latents ``x`` (N, D) with ``locks``
    held (and, with ``shell``, the norm held), and how much of each gradient survives the locks (N, m).

    A direction is zero where nothing survives (the gradient lies in the locked span, or vanishes).
    """
    grads = model.gradients(x, list(moved) + list(locks))
    g, locked = grads[:, :len(moved)], grads[:, len(moved):]
    if shell:
        xd = x.double()
        locked = torch.cat([locked, (xd / xd.norm(dim=-1, keepdim=True).clamp_min(1e-12))[:, None]], 1)
    basis = _constraint_basis(locked)
    p = g - torch.einsum("nkd,nmk->nmd", basis, torch.einsum("nkd,nmd->nmk", basis, g))
    gn, pn = g.norm(dim=-1), p.norm(dim=-1)
    ok = pn > RANK_TOL * gn.clamp_min(1e-12)
    unit = torch.where(ok[..., None], p / pn.clamp_min(1e-30)[..., None], torch.zeros_like(p))
    return unit, torch.where(gn > 0, pn / gn.clamp_min(1e-30), torch.zeros_like(pn))


def local_move(z: np.ndarray, axes: "Axes", moves: Mapping[str, float | np.ndarray], locks: Iterable[str] = (),
               layers: Sequence[int] | Mapping[str, Sequence[int]] | None = None, step: float = STEP,
               shell: bool | None = None, correct: bool | None = None, keep: str | None = None,
               keep_level: float | None = None) -> np.ndarray:
    """``z`` moved by integrating the local gradient field of ``axes.local`` (see the module docstring).

    ``z`` is (D,) or (N, D); in w+ (num_ws, D) or (N, num_ws, D), where the
    model is read at the mean code over the layers and each feature's step
    reaches its ``layers`` (a list for all moves, or {feature: layers}). A
    move's amount is a number or one number per latent (N,). The path is cut
    into ``ceil(max |amount| / step)`` midpoint steps; per latent the moves are
    summed as the linear edit sums them (amount_i * unit direction_i).
    ``shell`` (default: the axes' ``local_shell`` setting, z only) keeps every
    latent's norm. ``correct`` (default: ``local_correct``) ends each step with
    the corrector that puts the locked features' predicted values back to their
    start; ``keep`` (default: ``local_keep``; ``""`` for none) names a binary
    output whose predicted probability is held at or above ``min(start,
    keep_level)`` (default ``local_keep_level``, else ``KEEP_LEVEL``) unless it
    is moved or locked itself. Axes files without these settings move as before
    (no corrector, nothing kept). The checks (a locked feature moved,
    non-finite amounts) are those of the linear edit.
    """
    from .axes import AxesError
    from .explore import layer_mask

    model = axes.local
    if model is None:
        raise AxesError("these axes have no local model; fit them with `tlgan fit RUN --finder local`")
    locks = list(dict.fromkeys(locks))
    both = sorted(set(locks) & {n for n, a in moves.items() if np.any(np.asarray(a) != 0)})
    if both:
        raise AxesError(f"cannot move a locked feature: {', '.join(both)}; unlock it or drop the move")
    for name in list(moves) + locks:
        axes.index(name)
    z = np.asarray(z, np.float32)
    if z.shape[-1] != model.latent_dim:
        raise AxesError(f"latent has size {z.shape[-1]} but the axes live in {model.latent_dim} dimensions")
    wplus = layers is not None or z.ndim == 3
    if wplus and z.ndim < 2:
        raise AxesError("a layer range needs a w+ latent (num_ws, D); expand the code to its layers first")
    single = z.ndim == (2 if wplus else 1)
    x = torch.as_tensor(z[None] if single else z, dtype=torch.float64).clone()
    n = x.shape[0]
    names = [m for m, a in moves.items() if np.any(np.asarray(a) != 0)]
    if not names:
        return z.copy()
    amounts = []
    for m in names:
        a = np.asarray(moves[m], np.float64)
        if not np.isfinite(a).all():
            raise AxesError(f"move for {m!r} is not a finite number: {moves[m]}")
        if a.ndim and a.shape != (n,):
            raise AxesError(f"move for {m!r} has {a.size} amounts for {n} latents")
        amounts.append(np.broadcast_to(a, (n,)))
    amount = torch.as_tensor(np.stack(amounts, 1))  # (N, m)
    if shell is None:
        shell = bool(axes.meta.get("local_shell", False))
    if shell and (wplus or axes.latent_space != "z"):
        raise AxesError("keeping the norm (shell) is for z latents only")
    masks = None
    if wplus:
        num_ws = x.shape[1]
        per: Mapping[str, Sequence[int] | None] = layers if isinstance(layers, Mapping) else dict.fromkeys(names, layers)
        rows = [np.ones(num_ws, np.float32) if (picked := per.get(m)) is None else layer_mask(picked, num_ws)
                for m in names]
        masks = torch.as_tensor(np.stack(rows), dtype=torch.float64)
    n_steps = max(1, math.ceil(float(amount.abs().max()) / step))
    rate = amount / n_steps  # (N, m): latent distance per step, signed
    radius = x.norm(dim=-1, keepdim=True) if shell else None

    if correct is None:
        correct = bool(axes.meta.get("local_correct", False))
    if keep is None:
        keep = axes.meta.get("local_keep") or ""
    if keep and (keep in names or keep in locks):
        keep = ""  # moving or locking the kept feature says what to do with it
    level = float(axes.meta.get("local_keep_level", KEEP_LEVEL) if keep_level is None else keep_level)
    if keep:
        if model.kinds[model.output_index([keep])[0]] != "binary":
            raise AxesError(f"only a binary feature can be kept (a probability held up), not {keep!r}")
        if not 0 < level < 1:
            raise AxesError(f"keep_level is a probability between 0 and 1, got {level}")
    held = (list(locks) if correct else []) + ([keep] if keep else [])
    at0 = x.mean(1) if wplus else x
    target = model.heads_and_gradients(at0.float(), held)[0] if held else None
    lower = torch.as_tensor([False] * (len(held) - bool(keep)) + [True] * bool(keep))
    if keep and target is not None:
        target[:, -1] = target[:, -1].clamp(max=math.log(level / (1 - level)))
    # a correction reaches the moved layers only, scaled so that their mean over all layers moves by it
    reach = None if masks is None else (masks.amax(0) * masks.shape[1] / masks.amax(0).sum().clamp_min(1))[:, None]

    def velocity(xc: torch.Tensor) -> torch.Tensor:
        at = xc.mean(1) if wplus else xc
        unit, _ = directions(model, at.float(), names, locks, shell)
        if masks is None:
            return torch.einsum("nm,nmd->nd", rate, unit)
        return torch.einsum("nm,ml,nmd->nld", rate, masks, unit)

    for _ in range(n_steps):
        mid = x + 0.5 * velocity(x)
        if radius is not None:
            mid = mid * (radius / mid.norm(dim=-1, keepdim=True))
        v = velocity(mid)
        new = x + v
        if target is not None:
            fix = correction(model, (new.mean(1) if wplus else new), held, target, lower, step)
            new = new + (fix if reach is None else reach * fix[:, None])
            dims = tuple(range(1, x.ndim))
            planned = v.norm(dim=dims, keepdim=True)
            taken = (new - x).norm(dim=dims, keepdim=True)
            new = x + (new - x) * (planned / taken.clamp_min(1e-12))  # +1 is still one unit of movement
        x = new
        if radius is not None:
            x = x * (radius / x.norm(dim=-1, keepdim=True))
    out = x.float().numpy()
    return out[0] if single else out


def correction(model: LocalModel, x: torch.Tensor, names: Sequence[str], target: torch.Tensor,
               lower: torch.Tensor, limit: float) -> torch.Tensor:
    """The Gauss–Newton step (N, D) that brings the heads ``names`` at latents ``x`` (N, D) to ``target`` (N, k).

    Solves G Gᵀ c = target − h for the heads' gradients G and returns Gᵀ c, the
    shortest step that does so to first order. A row with ``lower`` set is a
    one-sided constraint (head ≥ target) and takes part only where it is
    violated. Steps longer than ``limit`` are shortened to it, so a flat or
    badly fitted head cannot throw the latent far.
    """
    h, g = model.heads_and_gradients(x.float(), names)
    r = target - h
    r = torch.where(lower, r.clamp_min(0), r)
    g = g * (r != 0)[..., None]
    a = g @ g.transpose(1, 2)
    c = (torch.linalg.pinv(a, hermitian=True, rtol=RANK_TOL) @ r[..., None])[..., 0]
    step = torch.einsum("nk,nkd->nd", c, g)
    return step * (limit / step.norm(dim=-1, keepdim=True).clamp_min(limit))


def local_retained(axes: "Axes", name: str, locks: Sequence[str], z: np.ndarray) -> np.ndarray:
    """Per latent ``z`` (N, D), how much of ``name``'s local gradient survives the ``locks`` (1 = all)."""
    model = axes.local
    if model is None:
        raise LocalModelError("these axes have no local model")
    x = torch.as_tensor(np.atleast_2d(np.asarray(z, np.float32)))
    return directions(model, x, [name], list(locks))[1][:, 0].numpy()


def local_cosines(axes: "Axes", names: Sequence[str], z: np.ndarray) -> np.ndarray:
    """Cosine similarity (k, k) of the local gradients of ``names`` at one latent ``z`` (D,)."""
    model = axes.local
    if model is None:
        raise LocalModelError("these axes have no local model")
    g = model.gradients(np.atleast_2d(np.asarray(z, np.float32)), list(names))[0].numpy()
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return g @ g.T
