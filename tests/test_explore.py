"""Step 5 math: moves with locks are exact projections (property tests on random axes)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlgan.axes import Axes, AxesError
from tlgan.explore import edit_delta, keep_norm, move, project_out, retained, traversal


def random_axes(seed: int, n: int, dim: int) -> Axes:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return Axes([f"f{i}" for i in range(n)], ["continuous"] * n, v, np.ones(n))


settings.register_profile("fast", max_examples=60, deadline=None)
settings.load_profile("fast")


@given(seed=st.integers(0, 10_000), n_locks=st.integers(0, 5), amount=st.floats(-5, 5))
def test_locked_move_is_orthogonal_to_every_locked_axis(seed, n_locks, amount):
    axes = random_axes(seed, 6, 12)
    locks = [f"f{i}" for i in range(1, 1 + n_locks)]
    z = np.random.default_rng(seed + 1).normal(size=12).astype(np.float32)
    moved = move(z, axes, {"f0": amount}, locks)
    for name in locks:
        assert abs(float((moved - z) @ axes.vector(name))) < 1e-4
    # The move keeps its length: amount units of latent distance.
    assert np.linalg.norm(moved - z) == pytest.approx(abs(amount), abs=1e-4)


@given(seed=st.integers(0, 10_000))
def test_order_of_locks_does_not_matter(seed):
    axes = random_axes(seed, 5, 8)
    rng = np.random.default_rng(seed)
    locks = ["f1", "f2", "f3", "f4"]
    a = edit_delta(axes, {"f0": 1.5}, locks)
    b = edit_delta(axes, {"f0": 1.5}, list(rng.permutation(locks)))
    np.testing.assert_allclose(a, b, atol=1e-5)


@given(seed=st.integers(0, 10_000), amount=st.floats(-4, 4))
def test_no_locks_is_the_plain_move(seed, amount):
    axes = random_axes(seed, 3, 10)
    z = np.zeros(10, np.float32)
    np.testing.assert_allclose(move(z, axes, {"f2": amount}), amount * axes.vector("f2"), atol=1e-6)


def test_locked_axes_themselves_are_unchanged():
    axes = random_axes(0, 4, 6)
    before = axes.vectors.copy()
    edit_delta(axes, {"f0": 1.0}, ["f1", "f2"])
    np.testing.assert_array_equal(axes.vectors, before)


def test_several_moves_add_up():
    axes = random_axes(3, 4, 9)
    both = edit_delta(axes, {"f0": 1.0, "f1": -2.0}, ["f3"])
    one = edit_delta(axes, {"f0": 1.0}, ["f3"]) + edit_delta(axes, {"f1": -2.0}, ["f3"])
    np.testing.assert_allclose(both, one, atol=1e-6)


def test_duplicate_and_parallel_locks_are_fine():
    axes = random_axes(1, 3, 5)
    # f1 locked twice and a lock set of rank 1: same as locking f1 once.
    np.testing.assert_allclose(edit_delta(axes, {"f0": 1}, ["f1", "f1"]), edit_delta(axes, {"f0": 1}, ["f1"]),
                               atol=1e-6)


def test_bad_moves_are_refused():
    axes = random_axes(0, 3, 5)
    with pytest.raises(AxesError, match="cannot move a locked feature: f1"):
        edit_delta(axes, {"f1": 1.0}, ["f1"])
    with pytest.raises(AxesError, match="unknown feature 'smile'"):
        edit_delta(axes, {"smile": 1.0})
    with pytest.raises(AxesError, match="latent has size 4"):
        move(np.zeros(4), axes, {"f0": 1})
    with pytest.raises(AxesError, match="not a finite number"):
        edit_delta(axes, {"f0": float("nan")})


def test_direction_inside_locked_span_is_refused():
    v = np.eye(3)[:2]
    axes = Axes(["a", "b", "c"], ["continuous"] * 3, np.vstack([v, (v[0] + v[1]) / np.sqrt(2)]), np.ones(3))
    with pytest.raises(AxesError, match="inside the span"):
        edit_delta(axes, {"c": 1.0}, ["a", "b"])


def test_retained_measures_cancellation():
    assert retained(np.array([1.0, 0, 0]), np.array([[0, 1.0, 0]])) == pytest.approx(1.0)
    assert retained(np.array([1.0, 1.0, 0]), np.array([[0, 1.0, 0]])) == pytest.approx(1 / np.sqrt(2))
    np.testing.assert_allclose(project_out(np.array([1.0, 1.0, 0]), np.array([[0, 2.0, 0]])), [1, 0, 0])


def test_traversal_and_keep_norm():
    axes = random_axes(2, 2, 16)
    z = np.random.default_rng(0).normal(size=16).astype(np.float32)
    t = traversal(z, axes, "f0", np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_allclose(t[1], z)
    np.testing.assert_allclose(t[2] - t[1], 2 * axes.vector("f0"), atol=1e-6)
    assert np.linalg.norm(keep_norm(t), axis=1) == pytest.approx([4.0] * 3, abs=1e-5)


def test_each_feature_moves_its_own_layers_and_the_moves_add_up():
    axes = random_axes(3, 3, 8)
    z = np.random.default_rng(0).normal(size=(2, 6, 8)).astype(np.float32)
    moved = move(z, axes, {"f0": 1.5, "f1": -2.0}, ["f2"], layers={"f0": [0, 1], "f1": range(4, 6)})
    d0 = edit_delta(axes, {"f0": 1.5}, ["f2"])
    d1 = edit_delta(axes, {"f1": -2.0}, ["f2"])
    np.testing.assert_allclose(moved[:, :2] - z[:, :2], np.broadcast_to(d0, (2, 2, 8)), atol=1e-6)
    np.testing.assert_allclose(moved[:, 2:4], z[:, 2:4])
    np.testing.assert_allclose(moved[:, 4:] - z[:, 4:], np.broadcast_to(d1, (2, 2, 8)), atol=1e-6)
    # a feature the mapping leaves out moves every layer; one range for all is the same as before
    everywhere = move(z, axes, {"f0": 1.5}, layers={"f1": [0]})
    np.testing.assert_allclose(everywhere, z + edit_delta(axes, {"f0": 1.5}), atol=1e-6)
    np.testing.assert_allclose(move(z, axes, {"f0": 1.0, "f1": 1.0}, layers={"f0": [1, 2], "f1": [1, 2]}),
                               move(z, axes, {"f0": 1.0, "f1": 1.0}, layers=[1, 2]), atol=1e-6)
    with pytest.raises(AxesError, match="locked"):
        move(z, axes, {"f0": 1.0}, ["f0"], layers={"f0": [0]})
    with pytest.raises(AxesError, match="w\\+ latent"):
        move(z[0, 0], axes, {"f0": 1.0}, layers={"f0": [0]})
