"""Figures compared by content: each tile is the generator's render of the latent it claims to show."""

from __future__ import annotations

import numpy as np

from tlgan.axes import Axes
from tlgan.figures import image_row, traversal_grid, upscale


def _axes(dim: int) -> Axes:
    v = np.random.default_rng(3).normal(size=(2, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return Axes(["f0", "f1"], ["continuous"] * 2, v, np.ones(2))


def test_traversal_grid_tiles_are_renders_of_the_moved_latents(toy):
    gen, _ = toy
    axes = _axes(gen.latent_dim)
    z = gen.sample(2, 5)
    steps, cell, gap = [-2.0, 0.0, 1.5], 24, 2
    sheet = np.asarray(traversal_grid(gen, axes, z, ["f1", "f0"], steps, cell=cell))
    rows = [(k, f) for k in range(len(z)) for f in ("f1", "f0")]  # one block per latent, a row per feature
    label_w = sheet.shape[1] - len(steps) * (cell + gap)
    head_h = sheet.shape[0] - len(rows) * (cell + gap)
    assert label_w > 0 and head_h > 0
    for r, (k, f) in enumerate(rows):
        moved = np.stack([z[k] + s * axes.vector(f) for s in steps]).astype(np.float32)
        renders = gen.render(moved).cpu().numpy()
        for c in range(len(steps)):
            y, x = head_h + r * (cell + gap), label_w + c * (cell + gap)
            tile = sheet[y:y + cell, x:x + cell]
            np.testing.assert_array_equal(tile, np.asarray(upscale(renders[c], cell)), err_msg=f"row {r} col {c}")
    # and the two features of one block move the face differently (a grid of one repeated row would fail)
    assert not np.array_equal(sheet[head_h:head_h + cell, label_w:label_w + cell],
                              sheet[head_h + cell + gap:head_h + 2 * cell + gap, label_w:label_w + cell])


def test_image_row_places_each_image_in_order(toy):
    gen, _ = toy
    images = gen.render(gen.sample(3, 1)).cpu().numpy()
    row = np.asarray(image_row(images, cell=16))
    assert row.shape == (16, 48, 3)
    for i, im in enumerate(images):
        np.testing.assert_array_equal(row[:, 16 * i:16 * (i + 1)], np.asarray(upscale(im, 16)))


def test_compare_traversals_rows_are_each_variant_in_turn(toy):
    from tlgan.explore import traversal
    from tlgan.figures import compare_traversals

    gen, _ = toy
    axes = _axes(gen.latent_dim)
    other = Axes(["f0", "f1"], ["continuous"] * 2, -axes.vectors, np.ones(2))
    z = gen.sample(1, 5)
    steps, cell, gap = [-1.0, 2.0], 24, 2
    sheet = np.asarray(compare_traversals(gen, [("a", axes), ("b", other)], z, ["f0"], steps, cell=cell))
    label_w = sheet.shape[1] - len(steps) * (cell + gap)
    head_h = sheet.shape[0] - 2 * (cell + gap)
    for r, variant in enumerate((axes, other)):
        renders = gen.render(traversal(z[0], variant, "f0", np.asarray(steps))).cpu().numpy()
        for c in range(len(steps)):
            y, x = head_h + r * (cell + gap), label_w + c * (cell + gap)
            np.testing.assert_array_equal(sheet[y:y + cell, x:x + cell], np.asarray(upscale(renders[c], cell)))
