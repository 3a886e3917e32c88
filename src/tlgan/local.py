"""Local (latent-dependent) axes: fitting one smooth MLP of every feature, whose gradient field edits follow.

A linear axis is one direction for every face. A *local* axis is the gradient
of a small MLP fitted to the run's (latent, label) pairs, so the direction of
"older" or "turn the head" may differ from face to face. This module fits the
model (:func:`fit_local_model`); the model and its field are
:mod:`tlgan.fields.mlp`, and :func:`tlgan.explore.move` integrates it like any
field (locks at every step, the corrector, the kept presence feature).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import TLGANError
from .fields.mlp import LocalModel, build_net, one_thread
from .logistic import auc, r2

__all__ = ["LocalFit", "LocalModel", "LocalModelError", "fit_local_model"]

VAL_FRACTION = 0.1  # of the samples: the early-stopping split (the test split is separate)


class LocalModelError(TLGANError, ValueError):
    """A local model that cannot be fitted (no feature with enough labels)."""


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
    n_te = max(1, round(n * test_fraction))
    n_va = max(1, round(n * VAL_FRACTION))
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
