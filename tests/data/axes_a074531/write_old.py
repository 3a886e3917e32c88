"""Axes files as tlgan a074531 wrote them (a linear and a local one), with the edits it made of them.

Rerun against that version's sources: ``git archive a074531 src | tar -x -C OLD`` then
``PYTHONPATH=OLD/src python write_old.py tests/data/axes_a074531`` (tests/test_fields.py reads them).
"""
import sys

import numpy as np

from tlgan.axes import Axes
from tlgan.explore import move
from tlgan.extractors import Feature
from tlgan.finders import load_finder

out = sys.argv[1]
rng = np.random.default_rng(0)
D = 4
z = rng.standard_normal((400, D)).astype(np.float32)
labels = np.c_[z[:, 0] ** 2 + z[:, 1] ** 2, z[:, 0] + z[:, 1], 1 / (1 + np.exp(-4 * (2.5 - np.linalg.norm(z, axis=1))))]
feats = [Feature("s", "continuous"), Feature("a", "continuous"), Feature("face", "binary")]
local = load_finder("local", hidden="8", epochs=5, keep="face", shell=False).find(z, labels, feats, meta={"latent_space": "z"})
v = rng.standard_normal((3, D))
v /= np.linalg.norm(v, axis=1, keepdims=True)
linear = Axes(["s", "a", "face"], ["continuous", "continuous", "binary"], v, np.ones(3), meta={"latent_space": "z"})
local.save(f"{out}/local.safetensors")
linear.save(f"{out}/linear.safetensors")
probe = rng.standard_normal((5, D)).astype(np.float32)
edits = {}
for tag, axes in (("local", local), ("linear", linear)):
    edits[f"{tag}_a2_lock_s"] = move(probe, axes, {"a": 2.0}, ["s"])
    edits[f"{tag}_per_latent"] = move(probe, axes, {"a": np.linspace(-1, 1, 5), "s": 0.5})
edits["local_as_linear"] = move(probe, local.as_linear(), {"a": 2.0}, ["s"])
np.savez(f"{out}/edits.npz", probe=probe, **edits)
