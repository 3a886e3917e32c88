"""The small CNN learner: a masked binary cross-entropy on the 64x64 images, for large labelled sets."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..extractors.learned import SmallCNN
from .metrics import MIN_PER_CLASS, FeatureResult, TrainError, _log, check_classes, held_out_result


def _random_split(n: int, seed: int, val: float = 0.1, test: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    split = np.zeros(n, np.int64)
    order = rng.permutation(n)
    n_test, n_val = round(n * test), round(n * val)
    split[order[:n_test]] = 2
    split[order[n_test:n_test + n_val]] = 1
    return split


@dataclass
class CNNFit:
    features: list[str]
    model: SmallCNN
    results: list[FeatureResult]
    history: list[dict] = field(default_factory=list)


def fit_cnn(images: np.ndarray, y: np.ndarray, features: Sequence[str], split: np.ndarray | None = None,
            epochs: int = 15, batch_size: int = 128, lr: float = 2e-3, width: int = 32, size: int = 64,
            min_per_class: int = MIN_PER_CLASS, seed: int = 0, device: str | None = None,
            log: Callable[[str], None] | None = None) -> CNNFit:
    """A :class:`SmallCNN` trained with a masked binary cross-entropy (unlabelled entries count for nothing).

    Without a ``split``, 80% train / 10% validation / 10% test at random. The
    epoch with the lowest validation loss is kept; the test rows give the
    held-out numbers. Horizontal flips augment the training images.
    """
    from ..devices import resolve_device

    dev = resolve_device(device)
    y = np.asarray(y, np.float32).reshape(len(images), len(features))
    check_classes(y, features, min_per_class)
    split = _random_split(len(images), seed) if split is None else np.asarray(split)
    if not (split == 0).any():
        raise TrainError("no training rows in the split")
    if not (split == 1).any():  # no validation rows: take 10% of the training rows
        tr = np.flatnonzero(split == 0)
        split = split.copy()
        split[np.random.default_rng(seed).choice(tr, max(1, len(tr) // 10), replace=False)] = 1
    torch.manual_seed(seed)
    model = SmallCNN(len(features), width, size).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(1, epochs * math.ceil((split == 0).sum() / batch_size)))
    x_all = torch.from_numpy(np.ascontiguousarray(images))
    y_all = torch.from_numpy(y)

    def batches(rows: np.ndarray, shuffle: bool, gen: np.random.Generator | None = None):
        rows = gen.permutation(rows) if shuffle and gen is not None else rows
        for i in range(0, len(rows), batch_size):
            r = torch.from_numpy(rows[i:i + batch_size])
            yield model.prepare(x_all[r].to(dev)), y_all[r].to(dev)

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = torch.isfinite(target)
        t = torch.where(known, target, torch.zeros_like(target))
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="none")
        return (per * known).sum() / known.sum().clamp(min=1)

    @torch.no_grad()
    def predict(rows: np.ndarray) -> np.ndarray:
        model.eval()
        out = [torch.sigmoid(model(x)).cpu() for x, _ in batches(rows, False)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(features)), np.float32)

    rng = np.random.default_rng(seed)
    tr, va, te = (np.flatnonzero(split == s) for s in (0, 1, 2))
    best, best_state, history = float("inf"), None, []
    for epoch in range(epochs):
        model.train()
        t0, total, seen = time.perf_counter(), 0.0, 0
        for x, t in batches(tr, True, rng):
            flip = torch.rand(len(x), device=dev) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + float(loss.detach()) * len(x), seen + len(x)
        pv = torch.from_numpy(predict(va)).clamp(1e-6, 1 - 1e-6)
        val_loss = float(loss_fn(torch.log(pv / (1 - pv)), y_all[torch.from_numpy(va)]))
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        _log(log, f"epoch {epoch + 1}/{epochs}: train loss {total / max(seen, 1):.4f}, validation loss {val_loss:.4f}")
        if val_loss < best:
            best, best_state = val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    results = []
    eval_rows = te if len(te) else va
    how = "test rows" if len(te) else "validation rows (no test rows)"
    p = predict(eval_rows)
    for j, f in enumerate(features):
        known = np.isfinite(y[eval_rows, j])
        truth = y[eval_rows, j][known]
        r = held_out_result(f, y[:, j], truth, p[known, j], how, float("nan")) if len(truth) else \
            FeatureResult(f, int((y[:, j] == 1).sum()), int((y[:, j] == 0).sum()), float("nan"), float("nan"),
                          how, 0)
        results.append(r)
        _log(log, r.line())
    return CNNFit(list(features), model.cpu(), results, history)
