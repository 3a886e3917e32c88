"""Local (latent-dependent) axes on synthetic problems whose true gradient field is known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tlgan.axes import Axes, AxesError
from tlgan.explore import move, traversal
from tlgan.extractors import Feature
from tlgan.fields import cosines, retained_at
from tlgan.finders import FinderError, load_finder

D = 4
FEATURES = [Feature("cos", "continuous"), Feature("a", "continuous"), Feature("q", "continuous"),
            Feature("p", "binary")]


def mean_axes(axes: Axes) -> Axes:
    """The "linear moves" of local axes: their field's mean (constant) directions."""
    return axes.with_field(axes.field.mean())


def moved(z: np.ndarray, axes: Axes, moves: dict, locks: tuple = (), **settings) -> np.ndarray:
    """``move`` with some of the field's move settings changed."""
    return move(z, axes, moves, locks, settings=replace(axes.field.settings, **settings))


def labels_of(z: np.ndarray) -> np.ndarray:
    """cos = cos of z's angle in the (e0, e1) plane (its gradient is tangent to the circle: a local axis
    must go round it); a = z0 + z1 (linear); q = z1^2 (mean gradient 0); p = P(z2 > 0), soft."""
    r = np.hypot(z[:, 0], z[:, 1])
    return np.c_[z[:, 0] / r, z[:, 0] + z[:, 1], z[:, 1] ** 2, 1 / (1 + np.exp(-3 * z[:, 2]))]


@pytest.fixture(scope="module")
def axes() -> Axes:
    z = np.random.default_rng(0).standard_normal((3000, D)).astype(np.float32)
    labels = labels_of(z)
    labels[::50, 1] = np.nan  # unknown labels are left out of that feature's loss
    return load_finder("local", hidden="64,64", epochs=60, shell=False).find(z, labels, FEATURES, meta={"latent_space": "z"})


def on_circle(n: int, radius: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Latents at ``radius`` in the (e0, e1) plane, at angles away from the extremes of cos (0 and pi)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.8, 2.3, n) * rng.choice([-1, 1], n)
    z = rng.standard_normal((n, D)).astype(np.float32)
    z[:, 0], z[:, 1] = radius * np.cos(theta), radius * np.sin(theta)
    return z, theta


def test_local_axis_follows_the_circle_where_the_linear_one_cannot(axes):
    z, theta = on_circle(100, 2.0)
    local, linear = move(z, axes, {"cos": 1.0}), move(z, mean_axes(axes), {"cos": 1.0})
    r_local, r_linear = np.hypot(local[:, 0], local[:, 1]), np.hypot(linear[:, 0], linear[:, 1])
    assert np.median(np.abs(r_local - 2.0)) < 0.12          # stays near the circle ...
    assert np.median(np.abs(r_linear - 2.0)) > 0.25         # ... which one fixed direction cannot do
    turned = np.abs(theta) - np.abs(np.arctan2(local[:, 1], local[:, 0]))
    assert np.median(turned) == pytest.approx(0.5, abs=0.05)  # arc length 1 at radius 2: toward angle 0
    assert np.median(np.abs(local[:, 2:] - z[:, 2:])) < 0.1  # the other coordinates barely move
    gain = labels_of(local)[:, 0] - labels_of(z)[:, 0]
    assert (gain > 0).mean() > 0.95


def test_a_move_of_one_is_one_unit_of_latent_distance(axes):
    z, _ = on_circle(50, 2.0)
    out = move(z, axes, {"a": 1.5})  # a straight field: the path is a segment of length 1.5
    assert np.allclose(np.linalg.norm(out - z, axis=1), 1.5, atol=0.02)
    lin = move(z, mean_axes(axes), {"a": 1.5})
    assert np.median(np.linalg.norm(out - lin, axis=1)) < 0.05  # a linear feature: local = linear


def test_locks_hold_the_locked_feature_at_every_step(axes):
    z, _ = on_circle(100, 1.0, seed=3)
    before = labels_of(z)[:, 2]
    local = move(z, axes, {"a": 2.0}, ["q"])
    linear = move(z, mean_axes(axes), {"a": 2.0}, ["q"])    # q's mean gradient is ~0: a linear lock holds nothing
    leak_local = np.abs(labels_of(local)[:, 2] - before).mean()
    leak_linear = np.abs(labels_of(linear)[:, 2] - before).mean()
    assert leak_local < 0.25 * leak_linear
    assert (labels_of(local)[:, 1] - labels_of(z)[:, 1]).mean() > 1.0  # a still moves (along z0 only: sqrt(2))
    kept = retained_at(axes.field, "a", ["q"], z)
    assert kept.shape == (100,) and 0.3 < kept.mean() < 0.95  # the local q gradient takes part of a's


def test_shell_keeps_the_norm_and_per_latent_amounts(axes):
    z, _ = on_circle(20, 2.0)
    out = move(z, axes, {"a": np.linspace(-2, 2, 20)})
    assert np.allclose(np.linalg.norm(out - z, axis=1), np.abs(np.linspace(-2, 2, 20)), atol=0.03)
    kept = moved(z, axes, {"a": 2.0}, shell=True)
    assert np.allclose(np.linalg.norm(kept, axis=1), np.linalg.norm(z, axis=1), rtol=1e-4)
    rows = traversal(z[0], axes, "cos", np.array([-1.0, 0.0, 1.0]))
    assert rows.shape == (3, D) and np.allclose(rows[1], z[0])


def test_binary_feature_and_fit_metrics(axes):
    m = axes.metrics
    assert m["cos"]["r2"] > m["cos"]["linear_r2"] + 0.1  # the MLP sees what a linear model cannot
    assert m["q"]["r2"] > 0.9 and abs(m["q"]["linear_r2"]) < 0.05
    assert m["p"]["auc"] > 0.95 and axes.kinds[axes.index("p")] == "binary"
    assert abs(axes.vector("p")[2]) > 0.95            # the mean direction of P(z2 > 0) is e2
    assert m["a"]["n_used"] == 3000 - 60


def test_cosines_at_a_latent(axes):
    c = cosines(axes.field, ["a", "q"], np.array([0.0, 1.5, 0, 0], np.float32))
    assert c[0, 1] == pytest.approx(np.sqrt(0.5), abs=0.1)  # grad a = (1, 1), grad q = (0, 3): cos 45 degrees


def test_axes_file_keeps_the_model_and_old_files_load(axes, tmp_path):
    path = axes.save(tmp_path / "local.safetensors")
    back = Axes.load(path)
    assert back.field.kind == "mlp" and back.field.names == axes.field.names
    z, _ = on_circle(5, 2.0)
    assert np.allclose(move(z, back, {"cos": 1.0}, ["p"]), move(z, axes, {"cos": 1.0}, ["p"]), atol=1e-5)
    assert back.subset(["cos"]).field.kind == "mlp"
    plain = mean_axes(axes)
    assert plain.field.constant
    old = Axes.load(plain.save(tmp_path / "linear.safetensors"))
    assert old.field.kind == "linear" and np.allclose(old.vectors, axes.vectors)
    with pytest.raises(AxesError, match="locked"):
        move(z, axes, {"cos": 1.0}, ["cos"])
    with pytest.raises(AxesError, match="finite"):
        move(z, axes, {"cos": float("nan")})


def test_a_damaged_local_model_is_named(axes, tmp_path):
    import json

    from safetensors.numpy import load_file, save_file

    path = axes.save(tmp_path / "x.safetensors")
    tensors = load_file(str(path))
    del tensors["field.in_mean"]
    doc = json.loads(Axes.sidecar(path).read_text())
    save_file(tensors, str(path), metadata={"tlgan": json.dumps(doc)})
    with pytest.raises(AxesError, match="local model is incomplete"):
        Axes.load(path)


def test_bad_finder_options():
    with pytest.raises(FinderError, match="hidden"):
        load_finder("local", hidden="a,b")


def test_lock_warning_is_about_the_face_shown(axes):
    from tlgan.app.state import ExplorerState, decode_state, encode_state, lock_warnings, set_linear

    state = ExplorerState("toy", sliders={"cos": 1.0}, locks=("a",))
    # grad cos at angle -45 degrees is parallel to grad a = (1, 1); at +45 degrees it is orthogonal
    (w,) = lock_warnings(state, axes, np.array([1.5, -1.5, 0, 0], np.float32))
    assert w.local and w.locked[0][0] == "a" and w.locked[0][1] > 0.9 and w.retained < 0.45
    assert "at this face" in w.message()
    assert lock_warnings(state, axes, np.array([1.5, 1.5, 0, 0], np.float32)) == []
    linear = set_linear(state, axes, True)
    assert all(not w.local for w in lock_warnings(linear, axes, np.array([1.5, 1.5, 0, 0], np.float32)))
    assert decode_state(encode_state(linear), axes).linear and not decode_state(encode_state(state), axes).linear
    assert '"linear"' not in encode_state(state)  # a state without the switch reads as before


@pytest.fixture(scope="module")
def toy_local():
    """Local axes fitted on the linear toy's samples (its field is nearly constant), with the toy models."""
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen, ext = load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")
    z = gen.sample(1500, 0)
    labels = ext(gen.render(z))
    local = load_finder("local", hidden="32,32", epochs=30, shell=False).find(z, labels, list(ext.features),
                                                                meta={"generator": gen.name, "latent_space": "z"})
    return gen, ext, local


def test_evaluate_moves_local_axes_along_their_locked_paths(toy_local):
    """On the linear toy a local model's field is (nearly) constant: re-scoring matches the closed form
    of the linear lock (a with b locked keeps 0.6 of its control, b stays), measured through move."""
    from tlgan.evaluate import Scorer, evaluate_axes, heldout_seed, make_heldout

    gen, ext, local = toy_local
    assert local.metrics["a"]["r2"] > 0.99 and local.vector("a")[0] > 0.99
    scorer = Scorer(gen, ext)
    held = make_heldout(gen, scorer, 60, heldout_seed(0))
    ev = evaluate_axes(local, scorer, held, distances=(2.0,), rows=["a"], locks=["b"], progress=False)
    (r,) = ev.lock_table()
    assert not r["reused"] and r["lock"] == "b"
    assert abs(r["leak_after"]) < 0.05 and r["control_kept"] == pytest.approx(0.6, abs=0.05)
    assert r["direction_retained"] == pytest.approx(0.6, abs=0.05)


def test_explorer_switch_picks_the_field_or_the_fixed_axes(toy_local):
    from tlgan.app.state import Explorer, set_linear, set_lock, set_slider
    from tlgan.app.web import build_app

    gen, _, local = toy_local
    ex = Explorer(local, gen)
    state = set_slider(set_lock(ex.initial(3), local, "b", True), local, "a", 2.0)
    z = ex.base_latent(state)
    np.testing.assert_array_equal(ex.latent(state), move(z, local, {"a": 2.0}, ["b"]))
    lin = set_linear(state, local, True)
    np.testing.assert_array_equal(ex.latent(lin), move(z, mean_axes(local), {"a": 2.0}, ["b"]))
    assert not np.allclose(ex.latent(lin), ex.latent(state), atol=1e-6)
    demo = build_app(ex)  # the page offers the switch for local axes (build_app skips it for linear ones)
    assert "tl-linear" in {getattr(b, "elem_id", None) for b in demo.blocks.values()}


def test_cli_fit_local_then_edit_grid_and_evaluate(tmp_path):
    from click.testing import CliRunner

    from tlgan.cli import main

    def cli(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result

    cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 600, "--out", tmp_path / "run", "--device", "cpu")
    r = cli("fit", tmp_path / "run", "--finder", "local")
    assert "mlp" in r.output
    path = tmp_path / "axes-local.safetensors"
    axes = Axes.load(path)
    assert axes.field.kind == "mlp" and axes.meta["finder"] == "local"
    cli("edit", path, "--move", "a=+1.5", "--lock", "b", "--save-latent", tmp_path / "z.npy", "-o", tmp_path / "e.png",
        "--device", "cpu")
    z0 = load_generator_sample(axes)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy").reshape(-1), move(z0, axes, {"a": 1.5}, ["b"]), atol=1e-5)
    cli("grid", path, "--features", "a,c", "--seeds", "1", "-o", tmp_path / "g.png", "--device", "cpu")
    r = cli("evaluate", path, "-n", 40, "--distances", "1", "--features", "a", "--locks", "b", "--identity-n", 0,
            "--no-norm-check", "--device", "cpu")
    assert "control" in r.output


def load_generator_sample(axes: Axes) -> np.ndarray:
    from tlgan.generators import generator_of

    return generator_of(axes.meta, "cpu").sample(1, 0)[0]


# ---------------------------------------------------------------- corrector and kept face (issue 13 goals)

CURVED = [Feature("s", "continuous"), Feature("a", "continuous"), Feature("face", "binary")]


def curved_labels(z: np.ndarray) -> np.ndarray:
    """s = z0^2 + z1^2 (circles: a curved level set to lock); a = z0 + z1; face = soft P(|z| < 2.5) (a ball)."""
    return np.c_[z[:, 0] ** 2 + z[:, 1] ** 2, z[:, 0] + z[:, 1],
                 1 / (1 + np.exp(-4 * (2.5 - np.linalg.norm(z, axis=1))))]


@pytest.fixture(scope="module")
def curved() -> Axes:
    z = np.random.default_rng(0).standard_normal((3000, D)).astype(np.float32)
    return load_finder("local", hidden="64,64", epochs=60, keep="face", shell=False).find(z, curved_labels(z), CURVED,
                                                                            meta={"latent_space": "z"})


def near_origin(n: int = 100, seed: int = 5) -> np.ndarray:
    """Latents at radius 0.6-1.2 in the (e0, e1) plane, where the circles of s curve sharply."""
    rng = np.random.default_rng(seed)
    theta, r = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.6, 1.2, n)
    z = np.zeros((n, D), np.float32)
    z[:, 0], z[:, 1], z[:, 2:] = r * np.cos(theta), r * np.sin(theta), 0.3 * rng.standard_normal((n, 2))
    return z


def test_the_corrector_keeps_a_curved_locked_feature_on_its_level_set(curved):
    z = near_origin()
    drift = {}
    for correct in (False, True):
        out = moved(z, curved, {"a": 3.0}, ("s",), correct=correct, keep=None)
        model = np.abs(curved.field.predict(out)[:, 0] - curved.field.predict(z)[:, 0])
        true = np.abs(curved_labels(out)[:, 0] - curved_labels(z)[:, 0])
        drift[correct] = (model.max(), true.mean())
        assert (curved_labels(out)[:, 1] - curved_labels(z)[:, 1]).mean() > 1.0  # a still moves
    assert drift[True][0] < 0.02 and drift[True][1] < 0.05   # the model's s stays put over 15 steps ...
    assert drift[False][1] > 4 * drift[True][1]              # ... and projection alone drifts off the circle


def test_a_corrected_step_is_still_one_unit_long(curved):
    z = near_origin(20)
    one = moved(z, curved, {"a": 0.2}, ("s",), correct=True, keep=None)  # one step: its length is the move
    assert np.allclose(np.linalg.norm(one - z, axis=1), 0.2, atol=1e-4)


def test_keeping_the_face_stops_a_move_leaving_the_ball(curved):
    z = 0.5 * np.random.default_rng(6).standard_normal((100, D)).astype(np.float32)
    free = moved(z, curved, {"a": 4.0}, keep=None)
    kept = move(z, curved, {"a": 4.0})  # the axes file asks for it: face is kept by default
    assert np.median(curved_labels(free)[:, 2]) < 0.05           # 4 units along a leave the ball ...
    assert curved_labels(kept)[:, 2].min() > 0.8                  # ... keeping the face stays in it
    assert (curved_labels(kept)[:, 1] - curved_labels(z)[:, 1]).mean() > 1.5  # and still moves a a long way
    assert np.allclose(move(z, curved, {"face": -1.0}), moved(z, curved, {"face": -1.0}, keep=None))


def test_the_axes_file_records_how_local_moves_go(curved, tmp_path):
    assert curved.field.settings.keep == "face" and curved.field.settings.correct is True
    back = Axes.load(curved.save(tmp_path / "curved.safetensors"))
    assert back.field.settings.keep == "face" and back.field.settings.keep_level == pytest.approx(0.99)
    z = near_origin(10)
    assert np.allclose(move(z, back, {"a": 2.0}, ["s"]), move(z, curved, {"a": 2.0}, ["s"]), atol=1e-5)
    with pytest.raises(AxesError, match="binary"):
        moved(z, curved, {"a": 1.0}, keep="s")
    z = np.random.default_rng(0).standard_normal((200, D))
    plain = load_finder("local", hidden="8", epochs=1).find(z, curved_labels(z), CURVED, meta={"latent_space": "z"})
    assert plain.field.settings.keep is None  # no extractor declares a presence feature: nothing kept
    assert plain.field.settings.shell is True   # z latents keep their norm by default


def test_the_kept_feature_is_the_one_the_extractor_declares_present():
    """Not a face name: whatever presence feature the run's extractor declares is kept by default."""
    import torch

    from tlgan.extractors import EXTRACTORS, Extractor

    class Seen(Extractor):
        name = "test-seen"
        features = (Feature("s", "continuous"), Feature("a", "continuous"), Feature("seen", "binary"))
        presence = "seen"

        def extract(self, images: torch.Tensor) -> np.ndarray:
            return np.zeros((len(images), 3), np.float32)

    if "test-seen" not in EXTRACTORS:
        EXTRACTORS.register("test-seen")(Seen)
    z = np.random.default_rng(0).standard_normal((300, D))
    local = load_finder("local", hidden="8", epochs=1).find(z, curved_labels(z), list(Seen.features),
                                                           meta={"latent_space": "z", "extractor": "test-seen"})
    assert local.field.settings.keep == "seen"
