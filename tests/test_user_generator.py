"""A user's StyleGAN2 file through every verb, in w and in w+: the file is written in the NVlabs format.

The toy extractor reads row brightness, so it labels any picture in a blink;
what is checked is the plumbing a user relies on: the space and the file are
recorded, axes refuse the wrong space, w+ edits stay inside their layers.
"""

import json

import numpy as np
import pytest

from cli_support import run
from nvlabs_writer import random_stylegan2, write_stylegan2_snapshot
from tlgan.axes import Axes
from tlgan.generators import load_generator
from tlgan.jobs import open_editor
from tlgan.sample import open_run


@pytest.fixture(scope="module")
def ffhq(tmp_path_factory):
    """A 16-px random StyleGAN2 with 6 w+ layers, saved as an NVlabs snapshot."""
    path = tmp_path_factory.mktemp("user") / "ffhq-mini.pkl"
    return write_stylegan2_snapshot(path, random_stylegan2(16, 16, 16, seed=3, mapping_layers=2))


@pytest.fixture(scope="module", params=["w", "w+"])
def discovered(request, ffhq, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / request.param.replace("+", "plus")
    run("discover", "-g", ffhq, "--space", request.param, "--truncation", 0.8, "-e", "toy-linear", "-n", 300,
        "--out", out, "--grid-features", "a,b", "--grid-lock", "", "--device", "cpu")
    return request.param, out


def test_discover_records_the_file_and_the_space(discovered, ffhq):
    space, out = discovered
    r = open_run(out / "run")
    assert r.latent_space == space and r.info["truncation"] == 0.8 and r.info["num_ws"] == 6
    assert r.info["generator_source"] == str(ffhq.resolve())
    gen = load_generator(str(ffhq), space=space, truncation=0.8)
    # the stored codes are the mapped, truncated w of the stored z: (seed, i) names the same sample
    np.testing.assert_allclose(r.latents[:5], gen.codes_from_z(r.noise[:5]), atol=1e-5)
    np.testing.assert_array_equal(r.noise[:5], gen.sample_z(5, 0))
    axes = Axes.load(out / "axes.safetensors")
    assert axes.latent_space == space and axes.vectors.shape == (4, 16)
    assert axes.meta["generator_sha256"] == gen.sha256 and (out / "traversal.png").exists()


def test_fit_edit_grid_in_the_space_of_the_run(discovered, tmp_path):
    space, out = discovered
    for finder in ("ganspace", "sefa"):
        run("fit", out / "run", "--finder", finder)
        assert Axes.load(out / f"axes-{finder}.safetensors").latent_space == space
    run("edit", out / "axes.safetensors", "--move", "a=+2", "--lock", "b", "-o", tmp_path / "e.png",
        "--save-latent", tmp_path / "e.npy")
    edited = np.load(tmp_path / "e.npy")
    assert edited.shape == (16,)
    run("grid", out / "axes.safetensors", "--features", "a", "--seeds", "0", "--steps", 3, "-o", tmp_path / "g.png")
    assert (tmp_path / "g.png").exists()


def test_w_plus_edits_reach_only_the_chosen_layers(discovered, tmp_path):
    space, out = discovered
    if space != "w+":
        result = run("edit", out / "axes.safetensors", "--move", "a=1", "--layers", "0-1", ok=False)
        assert result.exit_code == 1 and "needs the w+ space" in result.output
        return
    run("edit", out / "axes.safetensors", "--move", "a=+2", "--layers", "coarse", "-o", tmp_path / "e.png",
        "--save-latent", tmp_path / "e.npy")
    edited = np.load(tmp_path / "e.npy")
    editor = open_editor(out / "axes.safetensors", "cpu")
    w = editor.latent(0)
    assert edited.shape == (6, 16)
    moved = np.abs(edited - w[None]).max(axis=1) > 1e-4
    assert moved.tolist() == [True] * 4 + [False] * 2  # coarse = layers 0-3 of 6
    np.testing.assert_allclose(np.linalg.norm(edited[0] - w), 2.0, rtol=1e-4)
    run("grid", out / "axes.safetensors", "--features", "a", "--seeds", "0", "--steps", 3, "--layers", "4-5",
        "-o", tmp_path / "g.png")
    bad = run("edit", out / "axes.safetensors", "--move", "a=1", "--layers", "7-9", ok=False)
    assert bad.exit_code == 1 and "not among the generator's 6 w+ layers" in bad.output


def test_axes_refuse_another_space_or_file(discovered, ffhq, tmp_path):
    space, out = discovered
    axes = Axes.load(out / "axes.safetensors")
    other = "w" if space == "w+" else "w+"
    with pytest.raises(Exception, match=f"live in the {space.replace('+', '[+]')} space"):
        axes.check_generator(load_generator(str(ffhq), space=other))
    another = write_stylegan2_snapshot(tmp_path / "other.pkl", random_stylegan2(16, 16, 16, seed=4))
    with pytest.raises(Exception, match="were fitted for generator"):
        axes.check_generator(load_generator(str(another), space=space))


def test_evaluate_and_compare_run_on_the_user_file(discovered):
    space, out = discovered
    if space != "w":  # the same plumbing for both spaces; once is enough for the time it takes
        return
    run("evaluate", out / "axes.safetensors", "-n", 24, "--distances", "1,2", "--identity-n", 0)  # no norm check in w
    bad = run("evaluate", out / "axes.safetensors", "-n", 8, "--keep-norm", ok=False)
    assert bad.exit_code == 1 and "where that norm means nothing" in bad.output
    assert (out / "report" / "axes" / "index.html").exists()
    run("compare", out / "run", "--finders", "glm,ganspace", "-n", 24, "--distances", "1", "--identity-n", 0,
        "--components", 3, "--no-norm-check")


def test_dci_compares_z_with_the_codes_of_the_run(discovered):
    space, out = discovered
    run("dci", out / "run", "--samples", 300)
    doc = json.loads((out / "report" / "dci" / "dci.json").read_text())
    assert set(doc["spaces"]) == {"z", space}
    assert len(doc["spaces"][space]["importance"]) == 16 and doc["settings"]["latent_space"] == space
    assert 0 <= doc["spaces"][space]["disentanglement"] <= 1


def test_models_add_then_use_by_name(ffhq, tmp_path, monkeypatch):
    monkeypatch.setenv("TLGAN_HOME", str(tmp_path / "home"))
    out = run("models", "add", ffhq, "--name", "mini").output
    assert "stylegan2 generator, 16 px, spaces z, w, w+" in out
    listed = run("models", "list").output
    assert "mini" in listed and "stylegan2" in listed and str(ffhq.resolve()) in listed
    run("sample", "-g", "mini", "--space", "w", "-e", "toy-linear", "-n", 32, "-o", tmp_path / "r", "--device", "cpu")
    assert open_run(tmp_path / "r").generator == "mini"
    bad = run("sample", "-g", "toy-linear", "--space", "w", "-n", 4, "-o", tmp_path / "x", ok=False)
    assert bad.exit_code == 1 and "has only the z space" in bad.output


def test_the_spaces_a_style_generator_declares(ffhq):
    gen = load_generator(str(ffhq), space="w+")
    assert gen.spaces == ("z", "w", "w+") and gen.framing == "ffhq"
    z, w, wp = (gen.describe_space(s) for s in ("z", "w", "w+"))
    assert (z.shape, w.shape, wp.shape) == ((16,), (16,), (6, 16))
    assert z.typical_norm == pytest.approx(4.0)
    codes = gen.codes_from_z(gen.sample_z(1000, 0))  # the mean distance of a sampled w from w_avg
    dist = np.linalg.norm(codes - gen.net.w_avg.numpy(), axis=1).mean()
    assert w.typical_norm == pytest.approx(dist, rel=1e-4) and wp.typical_norm == pytest.approx(dist * 6 ** 0.5)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_a_stylegan2_file_inverts_in_w_and_w_plus(ffhq, space):
    from tlgan.invert import invert

    gen = load_generator(str(ffhq), space=space)
    target = gen.render(gen.sample(1, 11)).numpy()[0]
    inv = invert(gen, target, steps=30, lr=0.1, identity_weight=0)
    assert inv.latent.shape == ((16,) if space == "w" else (6, 16)) and inv.space == space
    assert min(inv.losses) < 0.8 * inv.losses[0]
    gen.render(inv.latent)  # the generator takes the latent as it is
