"""Step 4 on synthetic problems whose true axes are known."""

import numpy as np
import pytest

from tlgan.axes import Axes, AxesError
from tlgan.extractors import Feature
from tlgan.fit import FitError, fit_axes, fit_feature
from tlgan.toy import ToyLinearGenerator


def problem(n=3000, dim=20, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, dim))
    a = rng.normal(size=dim)
    a /= np.linalg.norm(a)
    b = rng.normal(size=dim)
    b /= np.linalg.norm(b)
    return z, a, b, rng


def cos(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_linear_feature_recovers_the_true_axis():
    z, a, _, rng = problem()
    y = 3 * z @ a + 1 + 0.5 * rng.normal(size=len(z))
    fit = fit_feature(z, y, Feature("age", "continuous"))
    assert cos(fit.direction, a) > 0.99
    assert fit.metric_name == "r2" and fit.metric > 0.9
    assert fit.slope == pytest.approx(3, rel=0.05)


@pytest.mark.parametrize("method", ["logistic", "arctanh"])
def test_probability_feature_recovers_the_true_axis(method):
    z, _, b, _rng = problem()
    p = 1 / (1 + np.exp(-(2 * z @ b - 0.5)))
    fit = fit_feature(z, p, Feature("male", "binary"), method=method)
    assert fit.method == method
    assert cos(fit.direction, b) > 0.98
    assert fit.metric_name == "auc" and fit.metric > 0.9


def test_hard_binary_labels_with_noise():
    z, a, _, rng = problem(n=4000)
    y = ((z @ a + 0.3 * rng.normal(size=len(z))) > 0.5).astype(float)
    fit = fit_feature(z, y, Feature("glasses", "binary"))
    assert cos(fit.direction, a) > 0.95


def test_nan_labels_are_skipped_not_used():
    z, a, _, _rng = problem()
    y = z @ a
    y[::3] = np.nan
    fit = fit_feature(z, y, Feature("yaw", "continuous"))
    assert fit.n_used == len(z) - len(range(0, len(z), 3))
    assert cos(fit.direction, a) > 0.99


def test_unfittable_features_are_reported_with_a_reason():
    z, a, _, _ = problem(n=500)
    feats = [Feature("const", "continuous"), Feature("rare", "binary"), Feature("few", "continuous"),
             Feature("good", "continuous")]
    y = np.column_stack([np.ones(500), (np.arange(500) < 3).astype(float), np.full(500, np.nan), z @ a])
    y[:10, 2] = 1.0
    axes = fit_axes(z, y, feats, meta={"generator": "toy"})
    assert axes.names == ["good"]
    assert "constant" in axes.skipped["const"]
    assert "too few samples of one class" in axes.skipped["rare"]
    assert "only 10 valid samples" in axes.skipped["few"]
    with pytest.raises(AxesError, match="not fitted: the label is constant"):
        axes.index("const")


def test_bad_shapes_are_refused():
    z, a, _, _ = problem(n=100)
    with pytest.raises(FitError, match="same N"):
        fit_axes(z, np.zeros((99, 1)), [Feature("x", "continuous")])
    with pytest.raises(FitError, match="2 features were named"):
        fit_axes(z, np.zeros((100, 1)), [Feature("x", "continuous"), Feature("y", "continuous")])
    with pytest.raises(FitError, match="outside \\[0, 1\\]"):
        fit_feature(z, z @ a, Feature("p", "binary"))
    with pytest.raises(FitError, match="unknown fit method"):
        fit_feature(z, z @ a, Feature("p", "continuous"), method="svm")


def test_axes_file_round_trip(tmp_path):
    z, a, b, _ = problem(n=800)
    y = np.column_stack([z @ a, 1 / (1 + np.exp(-3 * z @ b))])
    axes = fit_axes(z, y, [Feature("a", "continuous"), Feature("b", "binary")],
                    meta={"generator": "toy", "extractor": "toy", "latent_space": "z"})
    path = axes.save(tmp_path / "axes.safetensors")
    back = Axes.load(path)
    assert back.names == ["a", "b"] and back.kinds == ["continuous", "binary"]
    np.testing.assert_array_equal(back.vectors, axes.vectors)
    assert back.meta["generator"] == "toy" and back.meta["n_samples"] == 800
    assert back.metrics["a"]["r2"] > 0.9
    assert (tmp_path / "axes.json").exists()
    with pytest.raises(AxesError, match="for generator 'toy', not 'toy-linear'"):
        back.check_generator(ToyLinearGenerator("cpu"))


def test_unreadable_axes_files_are_refused(tmp_path):
    with pytest.raises(AxesError, match="does not exist"):
        Axes.load(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(AxesError, match="not a readable safetensors"):
        Axes.load(bad)


# ---------------------------------------------------------------- the fast path against the scikit-learn reference


def mixed_problem(n=2000, dim=12, seed=3):
    """Soft binary, hard binary, continuous and arctanh-style features, with per-feature NaN rows."""
    z, a, b, rng = problem(n, dim, seed)
    p = 1 / (1 + np.exp(-(1.5 * z @ b - 0.3 + 0.5 * rng.normal(size=n))))
    hard = ((z @ a + 0.8 * rng.normal(size=n)) > 0.2).astype(float)
    cont = 2 * z @ a - z @ b + rng.normal(size=n)
    y = np.column_stack([p, hard, cont, p.copy(), cont.copy()])
    y[::7, 1] = np.nan
    y[rng.random(n) < 0.1, 2:] = np.nan
    feats = [Feature("soft", "binary"), Feature("hard", "binary"), Feature("cont", "continuous"),
             Feature("soft2", "binary"), Feature("cont2", "continuous")]
    return z, y, feats


def agree(fast, ref):
    assert fast.names == ref.names and fast.skipped == ref.skipped
    for name in ref.names:
        i, j = fast.index(name), ref.index(name)
        assert float(fast.vectors[i] @ ref.vectors[j]) >= 0.999, name
        mf, mr = fast.metrics[name], ref.metrics[name]
        assert mf["regularization"] == mr["regularization"], name
        assert mf["method"] == mr["method"] and mf["n_used"] == mr["n_used"]
        key = "r2" if "r2" in mr else "auc"
        assert abs(mf[key] - mr[key]) < 1e-3, name
        assert mf["slope"] == pytest.approx(mr["slope"], rel=1e-3)


@pytest.mark.parametrize("method", ["auto", "arctanh", "linear"])
def test_fast_fit_agrees_with_the_sklearn_reference(method):
    z, y, feats = mixed_problem()
    agree(fit_axes(z, y, feats, method=method), fit_axes(z, y, feats, method=method, engine="sklearn"))


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_fit_agrees_on_small_strongly_regularised_problems(seed):
    # few samples in many dimensions: the chosen C and alpha are not the weakest ones
    z, y, feats = mixed_problem(n=300, dim=40, seed=seed)
    fast, ref = fit_axes(z, y, feats), fit_axes(z, y, feats, engine="sklearn")
    agree(fast, ref)


def test_fast_fit_skips_what_the_reference_skips():
    z, a, _, _rng = problem(n=500)
    feats = [Feature("one_class", "binary"), Feature("const", "continuous"), Feature("few", "binary"),
             Feature("soft", "binary")]
    y = np.column_stack([np.full(500, 0.9), np.ones(500), np.full(500, np.nan),
                         1 / (1 + np.exp(-2 * z @ a))])
    y[:5, 0] = 0.1  # 5 below 0.5: too few of one class
    y[:20, 2] = 0.7
    fast, ref = fit_axes(z, y, feats), fit_axes(z, y, feats, engine="sklearn")
    assert fast.names == ["soft"] and fast.skipped == ref.skipped
    assert "too few samples of one class (495 above 0.5, 5 below" in fast.skipped["one_class"]
    agree(fast, ref)


def test_soft_labels_enter_the_loss_without_duplicated_rows():
    # probabilities exactly 0 or 1 and in between: the same model as the row-duplicating reference
    z, _, b, _rng = problem(n=1500, dim=8)
    p = 1 / (1 + np.exp(-(3 * z @ b)))
    p[p > 0.97] = 1.0
    p[p < 0.03] = 0.0
    feats = [Feature("p", "binary")]
    agree(fit_axes(z, p[:, None], feats), fit_axes(z, p[:, None], feats, engine="sklearn"))


def test_fast_fit_streams_latents_from_a_zarr_array(tmp_path):
    import zarr

    z, y, feats = mixed_problem(n=1500, dim=10)
    arr = zarr.open_array(str(tmp_path / "z.zarr"), mode="w", shape=z.shape, chunks=(64, z.shape[1]), dtype="float32")
    arr[:] = z.astype(np.float32)
    ref = fit_axes(z.astype(np.float32), y, feats, engine="sklearn")
    agree(fit_axes(arr, y, feats), ref)
    bad = z.astype(np.float32)
    bad[700, 3] = np.nan
    arr[:] = bad
    with pytest.raises(FitError, match="NaN or infinite"):
        fit_axes(arr, y, feats)


def test_unknown_engine_is_refused():
    z, a, _, _ = problem(n=100)
    with pytest.raises(FitError, match="unknown fit engine"):
        fit_axes(z, (z @ a)[:, None], [Feature("x", "continuous")], engine="gpu")


def test_fit_streams_a_run_folders_latents(tmp_path):
    from tlgan.sample import sample
    from tlgan.toy import ToyLinearExtractor

    gen = ToyLinearGenerator("cpu")
    ext = ToyLinearExtractor("cpu")
    run = sample(tmp_path / "run", gen, ext, n=600, seed=0, chunk=128, progress=False)
    z, labels, feats, _ = run.fit_inputs()
    arr = run.latent_array()
    assert not isinstance(arr, np.ndarray) and arr.shape == z.shape
    agree(fit_axes(arr, labels, feats), fit_axes(z, labels, feats))
    streamed, *_ = run.fit_inputs(stream=True)  # what `tlgan fit` gives the glm finder (it declares `streams`)
    assert not isinstance(streamed, np.ndarray) and streamed.shape == z.shape
    np.testing.assert_array_equal(streamed[100:300], z[100:300])
    np.testing.assert_array_equal(run.latent_array(50)[0:1000], z[:50])  # a limit clips every read
    from tlgan.finders import find_run

    agree(find_run(run, "glm"), fit_axes(z, labels, feats))


def test_streamed_fit_reads_its_scratch_copy_like_the_zarr_array(tmp_path, monkeypatch):
    # later passes read the decoded latents back from a scratch file; without room for it every pass decodes
    import zarr

    from tlgan import glm

    z, y, feats = mixed_problem(n=1200, dim=10)
    arr = zarr.open_array(str(tmp_path / "z.zarr"), mode="w", shape=z.shape, chunks=(100, z.shape[1]), dtype="float32")
    arr[:] = z.astype(np.float32)
    facts = []
    solve = glm.solve

    def spy(*a, **k):
        out = solve(*a, **k)
        facts.append(out[1])
        return out

    monkeypatch.setattr(glm, "solve", spy)
    spilled = fit_axes(arr, y, feats)
    monkeypatch.setattr(glm, "SCRATCH_RESERVE", 1 << 62)
    decoded = fit_axes(arr, y, feats)
    assert facts[0]["scratch"] and not facts[1]["scratch"] and facts[0]["passes"] > 2
    np.testing.assert_array_equal(spilled.vectors, decoded.vectors)
    agree(spilled, fit_axes(z.astype(np.float32), y, feats, engine="sklearn"))
