"""Fixtures of the fault suite: a private $TLGAN_HOME, a fake catalogue model, a toy run and a toy axes file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TLGAN_HOME", str(h))
    return h


@pytest.fixture
def tfjs_model(home, monkeypatch):
    """A catalogue TF.js model ('fake-tfjs': model.json + model.bin) placed in the private cache."""
    import shutil

    from test_tfjs import _conv_attrs, _write_graph
    from tlgan import weights
    from tlgan.weights import Model, WeightFile

    src = home.parent / "src"
    src.mkdir()
    k = np.arange(18, dtype=np.float32).reshape(3, 3, 1, 2)
    nodes = [{"name": "y", "op": "Conv2D", "input": ["x", "k"], "attr": _conv_attrs("SAME", 1)}]
    js = _write_graph(src, [-1, 4, 4, 1], nodes, {"k": k})
    made = [js, src / "model.bin"]
    files = tuple(WeightFile(weights.HUMAN, f"package/models/fake/{p.name}", weights.sha256_of(p)) for p in made)
    monkeypatch.setitem(weights.MODELS, "fake-tfjs", Model("fake-tfjs", files, "a test model"))
    monkeypatch.setattr(weights, "_verified", {})
    for f, p in zip(files, made, strict=True):
        weights.local_path(f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, weights.local_path(f))
    return [weights.local_path(f) for f in files]



@pytest.fixture
def toy_axes(tmp_path, toy):
    from tlgan.axes import Axes

    gen, _ = toy
    return Axes(["a"], ["continuous"], np.eye(1, gen.latent_dim), np.ones(1),
                meta={"generator": gen.name, "latent_dim": gen.latent_dim}).save(tmp_path / "axes.safetensors")



@pytest.fixture
def toy_run(tmp_path, toy):
    from tlgan.sample import sample

    gen, ext = toy
    return sample(tmp_path / "run", gen, ext, n=64, seed=1, chunk=32, progress=False).path
