"""Attribute dependency and DCI on tiny synthetic problems whose answers are known."""

import numpy as np
import pytest

from tlgan.disentangle import attribute_dependency, dci, dci_scores, logits
from tlgan.errors import InputError

# ---------------------------------------------------------------- attribute dependency


def linear_world(n=400, seed=0):
    """Labels of a latent (N, 3): t = z0, coupled = 0.5 z0 + z1, free = z2; the edit moves z0."""
    z = np.random.default_rng(seed).normal(size=(n, 3))

    def label(z):
        return np.stack([z[:, 0], 0.5 * z[:, 0] + z[:, 1], z[:, 2]], 1)
    return z, label


def test_ad_is_zero_for_an_independent_attribute_and_the_slope_ratio_for_a_coupled_one():
    z, label = linear_world()
    before = label(z)
    std = before.std(0)
    moved = z.copy()
    moved[:, 0] += 1.5
    dep = attribute_dependency(before, label(moved), target=0)
    assert np.nanmax(dep.dependency[:, 2]) == 0  # "free" does not change at all
    assert np.isnan(dep.dependency[:, 0]).all()   # the target is not its own side effect
    np.testing.assert_allclose(dep.target_change, 1.5 / std[0])
    # coupled changes by 0.5 per unit of t: in std units 0.5 * std_t / std_c per std of target change
    ratio = dep.dependency[:, 1] / dep.target_change
    np.testing.assert_allclose(ratio, 0.5 * std[0] / std[1], rtol=1e-12)
    s = dep.summary()
    assert s["mean_ad"] == pytest.approx(0.5 * 1.5 * 0.5 / std[1])  # mean over the two other attributes
    assert s["max_ad"] == pytest.approx(0.5 * 1.5 / std[1])
    assert s["ad_per_target"] == pytest.approx(0.5 * (0.5 * std[0] / std[1]))


def test_direction_makes_lowering_edits_count_as_positive_target_change():
    z, label = linear_world()
    before = label(z)
    down = z.copy()
    down[:, 0] -= 1.0
    dep = attribute_dependency(before, label(down), target=0, direction=-1.0)
    assert (dep.target_change > 0).all()
    assert dep.curve()["wrong_way"] == 0
    wrong = attribute_dependency(before, label(down), target=0, direction=1.0)
    assert wrong.curve()["wrong_way"] == len(z)


def test_curve_bins_target_change_and_grows_linearly_for_a_linear_coupling():
    z, label = linear_world(600)
    before = label(z)
    std = before.std(0)
    parts, groups = [], []
    for d in (0.5, 1.0, 2.0):
        moved = z.copy()
        moved[:, 0] += d
        parts.append(label(moved))
        groups.append(np.full(len(z), d))
    dep = attribute_dependency(np.concatenate([before] * 3), np.concatenate(parts), 0, std=std,
                               group=np.concatenate(groups))
    c = dep.curve(bin_width=0.25)
    assert c["count"].sum() == 3 * len(z)
    full = c["count"] > 0
    # mean-AD over {coupled, free} is half of coupled's: 0.25 * std_t / std_c per unit of target change
    np.testing.assert_allclose(c["mean_ad"][full] / c["target_change"][full], 0.25 * std[0] / std[1], rtol=1e-9)
    assert np.all(np.diff(c["mean_ad"][full]) > 0)
    assert dep.summary(2.0)["target_change"] == pytest.approx(2.0 / std[0])
    assert dep.summary(0.5)["n"] == len(z)


def test_ad_skips_unknown_labels_and_excluded_columns():
    before = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 1.0, 2.0]])
    after = before + np.array([1.0, 1.0, 0.0, 1.0])
    after[1, 1] = np.nan
    dep = attribute_dependency(before, after, target=0, std=np.ones(4), exclude=[2])
    assert np.isnan(dep.dependency[:, 2]).all() and np.isnan(dep.dependency[1, 1])
    np.testing.assert_allclose(dep.mean_ad(), [1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="same"):
        attribute_dependency(before, after[:2], target=0)
    with pytest.raises(InputError, match="target column 7"):
        attribute_dependency(before, after, target=7)


def test_logits_invert_the_sigmoid_and_clip_certain_probabilities():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(logits(1 / (1 + np.exp(-x))), x, atol=1e-12)
    assert np.isfinite(logits(np.array([0.0, 1.0]))).all() and np.isnan(logits(np.array([np.nan])))[0]


# ---------------------------------------------------------------- DCI


def test_dci_scores_of_known_importance_matrices():
    d, c, _per_code, _, _per_factor = dci_scores(np.eye(3))
    assert d == pytest.approx(1) and c == pytest.approx(1)
    d, c, *_ = dci_scores(np.ones((3, 3)))  # every code matters equally for every factor
    assert d == pytest.approx(0, abs=1e-12) and c == pytest.approx(0, abs=1e-12)
    # two codes each for one factor: disentangled but not complete (each factor is split over 2 of 4 codes)
    d, c, *_ = dci_scores(np.array([[1, 0], [1, 0], [0, 1], [0, 1.0]]))
    assert d == pytest.approx(1) and c == pytest.approx(0.5)
    # an unused code does not count against disentanglement
    d, *_ = dci_scores(np.array([[1, 0], [0, 1], [0, 0.0]]))
    assert d == pytest.approx(1)


def test_dci_of_axis_aligned_codes_is_one_and_of_mixed_codes_is_low():
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(600, 4))
    aligned = dci(factors * [2.0, 0.5, 1.0, 3.0] + [1.0, 0.0, -3.0, 2.0], factors, seed=0)
    assert aligned.disentanglement > 0.95 and aligned.completeness > 0.95
    assert aligned.informativeness > 0.99
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    mixed = dci(factors @ hadamard, factors, seed=0)  # a rotation in which every code carries every factor equally
    assert mixed.disentanglement < 0.1 and mixed.completeness < 0.1
    assert mixed.informativeness > 0.99  # the factors are still in the codes: rotating loses nothing
    noise = dci(rng.normal(size=(600, 4)), factors, seed=0)
    assert noise.informativeness < 0.1


def test_dci_is_seeded_uses_finite_labels_only_and_refuses_bad_shapes():
    rng = np.random.default_rng(2)
    factors = rng.normal(size=(300, 2))
    labels = factors.copy()
    labels[::5, 1] = np.nan
    a, b = dci(factors, labels, max_samples=200, seed=3), dci(factors, labels, max_samples=200, seed=3)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.n_train + a.n_test == 200 and np.isfinite(a.r2).all()
    assert set(a.to_json(["x", "y"])["per_factor"]) == {"x", "y"}
    with pytest.raises(InputError, match="same N"):
        dci(factors[:10], labels)
