"""Pictures: traversal grids (rows of features, columns of steps) and image upscaling."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..axes import Axes
from ..explore import traversal
from ..generators import Generator


def upscale(image: np.ndarray, size: int) -> Image.Image:
    """uint8 (H, W, 3) -> a PIL image of ``size`` x ``size``, resampled with Lanczos."""
    return Image.fromarray(np.asarray(image)).resize((size, size), Image.Resampling.LANCZOS)


def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def traversal_grid(generator: Generator, axes: Axes, latents: np.ndarray, features: Sequence[str],
                   steps: Sequence[float] | np.ndarray, locks: Sequence[str] = (), cell: int = 96,
                   title: str = "", layers: Sequence[int] | None = None) -> Image.Image:
    """One block per latent; in each block a row per feature (and, with ``locks``, a second row with
    the locks applied), a column per step along the axis. ``layers`` (w+) limits the moves to those layers."""
    rows = traversal_rows(generator, axes, latents, features, steps, locks, layers)
    return _sheet(generator, rows, steps, len(np.atleast_2d(latents)), cell, title)


def traversal_rows(generator: Generator, axes: Axes, latents: np.ndarray, features: Sequence[str],
                   steps: Sequence[float] | np.ndarray, locks: Sequence[str] = (),
                   layers: Sequence[int] | None = None) -> list[tuple[str, np.ndarray]]:
    """The rows of :func:`traversal_grid` as (label, latents (steps, ...)): per latent, a row per feature and,
    with ``locks``, a second row with the locks applied."""
    steps_ = np.asarray(steps, dtype=np.float32)
    latents = np.atleast_2d(latents)
    if layers is not None and latents.ndim == 2:  # layer-shared w+ codes: one copy per layer
        latents = np.repeat(latents[:, None, :], generator.num_ws, axis=1)
    rows: list[tuple[str, np.ndarray]] = []
    for z in latents:
        for name in features:
            rows.append((name, traversal(z, axes, name, steps_, (), layers)))
            kept = [lk for lk in locks if lk != name]
            if kept:
                rows.append((f"{name} | lock {','.join(kept)}", traversal(z, axes, name, steps_, kept, layers)))
    return rows


def compare_traversals(generator: Generator, variants: Sequence[tuple[str, Axes]], latents: np.ndarray,
                       features: Sequence[str], steps: Sequence[float] | np.ndarray, locks: Sequence[str] = (),
                       cell: int = 96, title: str = "") -> Image.Image:
    """The same faces moved along the same features by several axes sets (e.g. linear and local): one block
    per latent, in it a row per (feature, variant) labelled ``feature · variant``; ``locks`` apply to every row."""
    steps_ = np.asarray(steps, dtype=np.float32)
    latents = np.atleast_2d(latents)
    rows: list[tuple[str, np.ndarray]] = []
    for z in latents:
        for name in features:
            kept = [lk for lk in locks if lk != name]
            for label, axes in variants:
                tag = f"{name} · {label}" + (f" | lock {','.join(kept)}" if kept else "")
                rows.append((tag, traversal(z, axes, name, steps_, kept)))
    return _sheet(generator, rows, steps, len(latents), cell, title)


def _sheet(generator: Generator, rows: list[tuple[str, np.ndarray]], steps: Sequence[float] | np.ndarray,
           n_blocks: int, cell: int, title: str) -> Image.Image:
    """Render every row's latents and lay them out: a label column, a column per step, a line between blocks."""
    images = generator.render(np.concatenate([r[1] for r in rows])).cpu().numpy()
    font = label_font(13)
    label_w = 12 + max(int(font.getlength(name)) for name, _ in rows)
    head_h, gap = 28 + (24 if title else 0), 2
    n_cols, n_rows = len(steps), len(rows)
    sheet = Image.new("RGB", (label_w + n_cols * (cell + gap), head_h + n_rows * (cell + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((8, 4), title, fill="black", font=label_font(16))
    for c, s in enumerate(steps):
        draw.text((label_w + c * (cell + gap) + cell // 2, head_h - 14), f"{s:+g}", fill="black",
                  font=label_font(14), anchor="mm")
    per_z = len(rows) // n_blocks
    for r, (name, _) in enumerate(rows):
        y = head_h + r * (cell + gap)
        if r % per_z == 0 and r:
            draw.line([(0, y - 1), (sheet.width, y - 1)], fill="grey")
        draw.text((6, y + cell // 2), name, fill="black", font=font, anchor="lm")
        for c in range(n_cols):
            sheet.paste(upscale(images[r * n_cols + c], cell), (label_w + c * (cell + gap), y))
    return sheet


def image_row(images: np.ndarray, cell: int = 128) -> Image.Image:
    """Images (N, H, W, 3) side by side, upscaled to ``cell`` pixels."""
    sheet = Image.new("RGB", (len(images) * cell, cell), "white")
    for i, im in enumerate(images):
        sheet.paste(upscale(im, cell), (i * cell, 0))
    return sheet
