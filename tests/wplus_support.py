"""A small random StyleGAN2 in w+ with hand-made axes, for the explorer's layer-range tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvlabs_writer import random_stylegan2, write_stylegan2_snapshot


def wplus_axes(folder: Path) -> Path:
    """``folder/axes.safetensors``: two random unit axes in the w+ space of a 64-px random StyleGAN2 (10 layers)
    written as a snapshot at ``folder/g.pkl``; the axes' metadata names the file, as a fit of its samples would."""
    from tlgan.axes import Axes
    from tlgan.generators import load_generator

    net = random_stylegan2(64, 32, 32, mapping_layers=2, channel_base=1024, channel_max=32, conv_clamp=None, seed=5)
    path = write_stylegan2_snapshot(folder / "g.pkl", net)
    gen = load_generator(str(path), "cpu", space="w+")
    v = np.random.default_rng(0).normal(size=(2, gen.latent_dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    meta = {"generator": gen.name, "generator_sha256": gen.sha256, "generator_source": str(path),
            "latent_space": "w+", "num_ws": gen.num_ws, "truncation": 1.0, "n_samples": 0}
    return Axes(["a", "b"], ["continuous"] * 2, v * 3, np.ones(2), meta=meta).save(folder / "axes.safetensors")
