"""Direction fields: the linear field is today's exact projection, old axes files keep loading and editing
the same, and a new field kind is one class plus its registration (the toy kind below, in this file only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tlgan.axes import Axes, AxesError
from tlgan.explore import move, traversal
from tlgan.fields import FIELDS, DirectionField, LinearField, MoveSettings, cosines, retained_at

OLD = Path(__file__).parent / "data" / "axes_a074531"


def old_edit_delta(axes: Axes, moves: Mapping[str, float], locks: Sequence[str] = ()) -> np.ndarray:
    """tlgan a074531's linear edit, verbatim: each moved axis projected off the locked span, then summed."""
    locks = list(dict.fromkeys(locks))
    locked = np.stack([axes.vector(n) for n in locks]) if locks else np.zeros((0, axes.vectors.shape[1]))
    delta = np.zeros(axes.vectors.shape[1])
    for name, amount in moves.items():
        if amount:
            d = np.asarray(axes.vector(name), dtype=np.float64)
            v = np.atleast_2d(np.asarray(locked, dtype=np.float64))
            if v.size == 0:
                basis = np.zeros((0, v.shape[-1]))
            else:
                _, s, vt = np.linalg.svd(v, full_matrices=False)
                basis = vt[s > 1e-6 * max(s.max(), 1e-12)]
            p = d - basis.T @ (basis @ d)
            delta += amount * (p / np.linalg.norm(p))
    return delta.astype(np.float32)


def random_axes(seed: int, n: int = 6, dim: int = 12) -> Axes:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    return Axes([f"f{i}" for i in range(n)], ["continuous"] * n, v / np.linalg.norm(v, axis=1, keepdims=True),
                np.ones(n))


@pytest.mark.parametrize("seed", range(8))
def test_the_linear_field_is_the_old_linear_edit_bit_for_bit(seed):
    axes = random_axes(seed)
    rng = np.random.default_rng(seed + 100)
    z = rng.normal(size=(7, 12)).astype(np.float32)
    moves = {"f0": float(rng.uniform(-3, 3)), "f2": float(rng.uniform(-3, 3))}
    locks = ["f1", "f3", "f4"][: seed % 4]
    assert isinstance(axes.field, LinearField) and axes.field.constant
    np.testing.assert_array_equal(move(z, axes, moves, locks), z + old_edit_delta(axes, moves, locks))
    np.testing.assert_array_equal(move(z[0], axes, moves, locks), z[0] + old_edit_delta(axes, moves, locks))
    w = rng.normal(size=(6, 12)).astype(np.float32)  # a w+ code: the layers picked move, the others stay
    moved = move(w, axes, moves, locks, layers=[1, 2])
    np.testing.assert_array_equal(moved[1:3], w[1:3] + old_edit_delta(axes, moves, locks))
    np.testing.assert_array_equal(moved[[0, 3, 4, 5]], w[[0, 3, 4, 5]])


def test_old_linear_and_local_axes_files_load_and_edit_as_before():
    edits = np.load(OLD / "edits.npz")
    probe = edits["probe"]
    linear = Axes.load(OLD / "linear.safetensors")
    assert isinstance(linear.field, LinearField)
    np.testing.assert_array_equal(move(probe, linear, {"a": 2.0}, ["s"]), edits["linear_a2_lock_s"])
    np.testing.assert_allclose(move(probe, linear, {"a": np.linspace(-1, 1, 5), "s": 0.5}),
                               edits["linear_per_latent"], atol=1e-6)
    local = Axes.load(OLD / "local.safetensors")
    assert local.field.kind == "mlp" and not local.field.constant
    # the move settings of the first local files were header keys; they are the field's now
    assert local.field.settings == MoveSettings(shell=False, correct=True, keep="face", keep_level=0.99)
    assert not any(k.startswith("local_") and k != "local_epochs" for k in local.meta)
    np.testing.assert_allclose(move(probe, local, {"a": 2.0}, ["s"]), edits["local_a2_lock_s"], atol=1e-5)
    np.testing.assert_allclose(move(probe, local, {"a": np.linspace(-1, 1, 5), "s": 0.5}), edits["local_per_latent"],
                               atol=1e-5)
    np.testing.assert_array_equal(move(probe, local.with_field(local.field.mean()), {"a": 2.0}, ["s"]),
                                  edits["local_as_linear"])


def test_a_resaved_old_local_file_keeps_its_field_and_settings(tmp_path):
    local = Axes.load(OLD / "local.safetensors")
    back = Axes.load(local.save(tmp_path / "again.safetensors"))
    assert back.field.kind == "mlp" and back.field.settings == local.field.settings
    probe = np.load(OLD / "edits.npz")["probe"]
    np.testing.assert_array_equal(move(probe, back, {"a": 1.0}, ["s"]), move(probe, local, {"a": 1.0}, ["s"]))


def test_an_unknown_field_kind_is_named(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file

    path = random_axes(0).save(tmp_path / "x.safetensors")
    doc = json.loads(Axes.sidecar(path).read_text())
    doc["field"]["kind"] = "vortex"
    save_file(load_file(str(path)), str(path), metadata={"tlgan": json.dumps(doc)})
    with pytest.raises(AxesError, match=r"kind 'vortex'.*known: .*linear"):
        Axes.load(path)


# ---------------------------------------------------------------- a new kind, defined here only


class SwirlField(DirectionField):
    """Feature ``turn`` points round the circle of the (e_i, e_j) plane (i, j stored as a tensor); the other
    features have fixed directions: a field no linear axis can follow."""

    kind = "test-swirl"

    def __init__(self, mean: LinearField, plane: np.ndarray, settings: MoveSettings | None = None) -> None:
        self.mean_field, self.plane = mean, np.asarray(plane, np.int64)
        self.names = list(mean.names)
        self.settings = settings or MoveSettings()

    @property
    def latent_dim(self) -> int:
        return self.mean_field.latent_dim

    def directions(self, z: np.ndarray, names: Sequence[str]) -> np.ndarray:
        z = np.asarray(z, np.float64)
        out = np.repeat(self.mean_field.directions(z, names), len(z), 0)
        i, j = self.plane
        for k, name in enumerate(names):
            if name == "turn":
                out[:, k] = 0
                out[:, k, i], out[:, k, j] = -z[:, j], z[:, i]
        return out

    def mean(self) -> LinearField:
        return self.mean_field

    def header(self) -> dict[str, Any]:
        return {"note": "a test field"}

    def named_tensors(self) -> dict[str, np.ndarray]:
        return {"plane": self.plane}

    @classmethod
    def from_file(cls, header: Mapping[str, Any], tensors: Mapping[str, np.ndarray], mean: LinearField) -> SwirlField:
        assert header["note"] == "a test field"
        return cls(mean, tensors["plane"])


FIELDS.register("test-swirl", "a rotation in one plane (tests only)")(SwirlField.from_file)


def test_a_new_field_kind_is_saved_loaded_and_moved_through_move(tmp_path):
    vectors = np.eye(4)[[1, 3]]
    axes = Axes(["turn", "other"], ["continuous"] * 2, vectors, np.ones(2), meta={"latent_space": "z"})
    axes = axes.with_field(SwirlField(axes.field, np.array([0, 1]), MoveSettings(step=0.05)))
    back = Axes.load(axes.save(tmp_path / "swirl.safetensors"))
    assert isinstance(back.field, SwirlField) and back.field.settings.step == 0.05
    z = np.array([[2.0, 0, 0.5, 0], [0, -1.0, 0, 1.0]], np.float32)
    out = move(z, back, {"turn": np.pi / 2})  # a quarter of the circle of radius 2: arc length pi/2 ... at r=1
    np.testing.assert_allclose(np.hypot(out[:, 0], out[:, 1]), np.hypot(z[:, 0], z[:, 1]), atol=0.01)
    np.testing.assert_allclose(out[:, 2:], z[:, 2:], atol=1e-6)  # the other coordinates stay
    assert np.arctan2(out[1, 1], out[1, 0]) == pytest.approx(0.0, abs=0.01)  # r = 1: a quarter turn, -90 -> 0 deg
    locked = move(z, back, {"turn": 1.0}, ["other"])  # a lock held at every step, generic code only
    np.testing.assert_allclose(locked[:, 3], z[:, 3], atol=1e-6)
    assert traversal(z[0], back, "turn", np.array([0.0, 1.0])).shape == (2, 4)
    assert cosines(back.field, ["turn", "other"], z[0])[0, 1] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(retained_at(back.field, "turn", ["other"], z), [1.0, 1.0])
    linear = back.with_field(back.field.mean())  # "linear moves": the mean field, the same straight line anywhere
    np.testing.assert_allclose(move(z, linear, {"turn": 1.0}) - z, np.broadcast_to(vectors[0], (2, 4)), atol=1e-6)


def test_a_field_without_levels_refuses_a_kept_feature():
    axes = random_axes(1)
    with pytest.raises(AxesError, match="binary feature the field models"):
        move(np.zeros(12, np.float32), axes, {"f0": 1.0}, settings=MoveSettings(keep="f1"))


def test_a_linear_field_with_shell_keeps_every_latents_norm():
    axes = random_axes(2)
    z = np.random.default_rng(3).normal(size=(5, 12)).astype(np.float32)
    out = move(z, axes, {"f0": 2.0}, ["f1"], settings=MoveSettings(shell=True))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(z, axis=1), rtol=1e-5)
    assert np.abs((out - z) @ axes.vector("f1")).max() < 1e-4  # the lock still holds at every step


def test_renamed_linear_axes_move_by_their_new_names():
    from dataclasses import replace

    axes = random_axes(4)
    renamed = replace(axes, names=["g" + n for n in axes.names])
    np.testing.assert_array_equal(move(np.zeros(12, np.float32), renamed, {"gf0": 1.0}), axes.vectors[0])
