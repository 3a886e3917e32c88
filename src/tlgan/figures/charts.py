"""The reports' charts, drawn with matplotlib into PNG files: heat maps, control and attribute-dependency curves,
DCI importance matrices.

Each function takes arrays and their labels, not a result object: the report
modules pick what to show, these only draw it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: bins of the attribute-dependency curve with fewer edits than this are left out of the figures (too noisy)
AD_MIN_BIN = 5

#: one attribute-dependency curve: its label and ``Dependency.curve()``
Curve = tuple[str, dict[str, Any]]


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, path: Path | None = None,
            vmax: float | None = None, cmap: str = "RdBu_r", center: bool = True, digits: int = 1,
            box_diagonal: Sequence[int | None] | None = None, ax=None):
    """An annotated heat map, written to ``path`` or drawn as a panel on ``ax``; ``box_diagonal[i]`` outlines
    cell (i, that column). Returns the image (for a shared colour bar)."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    m = np.asarray(matrix, np.float64)
    finite = m[np.isfinite(m)]
    vmax = vmax or (float(np.abs(finite).max()) if finite.size else 1.0) or 1.0
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(1.2 + 0.52 * len(cols), 1.1 + 0.4 * len(rows)), dpi=90)
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-vmax if center else 0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    if len(rows) * len(cols) <= 600:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.{digits}f}", ha="center", va="center", fontsize=6.5,
                            color="white" if abs(m[i, j]) > 0.6 * vmax else "black")
    for i, box_col in enumerate(box_diagonal or []):
        if box_col is not None:
            ax.add_patch(Rectangle((box_col - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.4))
    if own:
        if path is None:
            raise ValueError("heatmap needs a path to write to, or an ax to draw on")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return im


def locking_chart(cut: np.ndarray, kept: np.ndarray, rows: Sequence[str], locks: Sequence[str], path: Path) -> None:
    """Two heat maps side by side (rows = axes, columns = locked features): the leak cut and the control kept."""
    plt = _pyplot()
    fig, axs = plt.subplots(1, 2, figsize=(2.2 + 1.0 * len(locks), 1.2 + 0.4 * len(rows)), dpi=90)
    heatmap(cut, rows, locks, "leak into the locked feature cut by", vmax=1, cmap="RdYlGn", center=False, digits=2,
            ax=axs[0])
    heatmap(kept, rows, locks, "control kept", vmax=1, cmap="RdYlGn", center=False, digits=2, ax=axs[1])
    axs[1].set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def heatmap_grid(panels: Sequence[tuple[str, np.ndarray, Sequence[str]]], cols: Sequence[str],
                 box_diagonal: Sequence[int | None], title: str, path: Path) -> None:
    """Heat maps (title, matrix, row labels) with the same columns on one colour scale, two per row."""
    plt = _pyplot()
    n = len(panels)
    n_rows_each = max(len(labels) for _, _, labels in panels)
    ncol = min(n, 2)
    nrow = -(-n // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(ncol * (2.2 + 0.34 * len(cols)), nrow * (1.7 + 0.3 * n_rows_each)),
                            dpi=72, squeeze=False, layout="constrained")
    vmax = 0.0
    for _, m, _ in panels:
        if np.isfinite(m).any():
            vmax = max(vmax, float(np.nanmax(np.abs(m))))
    flat = axs.ravel()
    im = None
    for ax, (name, m, labels) in zip(flat, panels, strict=False):
        im = heatmap(m, labels, cols, name, vmax=vmax, digits=1, box_diagonal=box_diagonal, ax=ax)
    for ax in flat[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=flat.tolist(), fraction=0.02, pad=0.01)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def control_chart(distances: Sequence[float], lines: Sequence[tuple[str, Sequence[float]]], path: Path) -> None:
    """Control (|change of the target|, std) against the distance moved, one line (label, control per distance)
    per axis, each starting at (0, 0)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    d = [0.0, *distances]
    for label, controls in lines:
        ax.plot(d, [0.0, *controls], marker="o", label=label)
    ax.set_xlabel("distance moved along the axis (latent units)")
    ax.set_ylabel("|change of target| (std)")
    ax.set_title("control against distance", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dependency_panel(ax, curves: Sequence[Curve], title: str) -> None:
    """Mean-AD against target change (binned), one line per (label, ``Dependency.curve()``); bins of fewer
    than ``AD_MIN_BIN`` edits are left out."""
    for label, c in curves:
        ok = c["count"] >= AD_MIN_BIN
        ax.plot(np.concatenate([[0.0], c["target_change"][ok]]), np.concatenate([[0.0], c["mean_ad"][ok]]),
                marker="o", ms=3, label=label)
    ax.set_xlabel(f"change of the target (std; bins of ≥ {AD_MIN_BIN} edits)", fontsize=8)
    ax.set_ylabel("mean-AD: mean |change| of the others (std)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def dependency_chart(curves: Sequence[Curve], path: Path) -> None:
    """Attribute-dependency curves of several directions in one panel."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    dependency_panel(ax, curves, "attribute dependency (Wu et al. 2021): side effects per target change")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dependency_panels(panels: Sequence[tuple[str, Sequence[Curve]]], title: str, path: Path) -> None:
    """One panel per (title, curves), three per row."""
    plt = _pyplot()
    ncol = min(len(panels), 3)
    nrow = -(-len(panels) // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), dpi=72, squeeze=False, layout="constrained")
    for ax, (name, curves) in zip(axs.ravel(), panels, strict=False):
        dependency_panel(ax, curves, name)
    for ax in axs.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def importance_chart(spaces: Sequence[tuple[str, str, np.ndarray]], factors: Sequence[str], path: Path) -> None:
    """One DCI importance matrix per (space, title, importance (codes, factors)), a row per factor scaled to
    its largest weight."""
    plt = _pyplot()
    n = len(spaces)
    fig, axs = plt.subplots(n, 1, figsize=(10, 0.9 + 0.2 * len(factors) * n + 0.5 * n), dpi=80, squeeze=False)
    for ax, (space, title, importance) in zip(axs[:, 0], spaces, strict=True):
        r = np.asarray(importance).T
        top = r.max(1, keepdims=True)
        ax.imshow(np.where(top > 0, r / np.where(top > 0, top, 1), 0), aspect="auto", cmap="Greys", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_yticks(range(len(factors)), factors, fontsize=7)
        ax.set_xlabel(f"code dimension of {space}", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
