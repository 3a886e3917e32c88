"""The command line as a user runs it, on the toy model (seconds), including its error messages."""

import json

import numpy as np
import pytest
from PIL import Image

from cli_support import run
from tlgan.axes import Axes
from tlgan.toy import toy_directions


@pytest.fixture
def discovered(tmp_path):
    out = tmp_path / "demo"
    run("discover", "-g", "toy-linear", "-e", "toy-linear", "-n", 1500, "--out", out,
        "--grid-features", "a,b", "--grid-lock", "b", "--device", "cpu")
    return out


def test_discover_writes_run_axes_and_figure(discovered):
    axes = Axes.load(discovered / "axes.safetensors")
    assert axes.names == ["a", "b", "p", "c"]
    for name, true in zip(axes.names, toy_directions(), strict=True):
        assert axes.vector(name) @ true > 0.99
    assert axes.meta["generator"] == "toy-linear" and axes.meta["n_samples"] == 1500
    fig = Image.open(discovered / "traversal.png")
    assert fig.width > 500 and fig.height > 300


def test_fit_again_with_another_method_and_subset(discovered):
    out = discovered / "arctanh.safetensors"
    r = run("fit", discovered / "run", "--method", "arctanh", "--features", "p,a", "--out", out)
    assert "p " in r.output and "auc" in r.output
    axes = Axes.load(out)
    assert axes.names == ["p", "a"] and axes.metrics["p"]["method"] == "arctanh"


def test_edit_moves_the_feature_and_respects_locks(discovered, tmp_path):
    latent = tmp_path / "z.npy"
    run("edit", discovered / "axes.safetensors", "--seed", 4, "--move", "a=+2", "--lock", "b",
        "--out", tmp_path / "e.png", "--save-latent", latent)
    from tlgan.generators import load_generator

    before = load_generator("toy-linear").sample(1, 4)[0]
    after = np.load(latent)
    a, b = toy_directions()[:2]
    assert (after - before) @ a > 0.5  # a went up
    assert abs((after - before) @ b) < 0.05  # b, locked, stayed (up to the fitted axis' error)
    assert Image.open(tmp_path / "e.png").size == (512, 256)


def test_grid_draws_the_asked_rows(discovered, tmp_path):
    run("grid", discovered / "axes.safetensors", "--features", "a,c", "--seeds", "1,2", "--steps", 5,
        "--lock", "b", "--out", tmp_path / "g.png", "--cell", 32)
    img = Image.open(tmp_path / "g.png")
    # 2 seeds x (2 features + 2 locked rows) rows of 32 px (+2 px gaps) and a header
    assert img.height == 28 + 8 * 34


@pytest.mark.parametrize("args, message", [
    (["edit", "{axes}", "--move", "smile=+1"], "unknown feature 'smile'"),
    (["edit", "{axes}", "--move", "a=+1", "--lock", "a"], "cannot move a locked feature: a"),
    (["edit", "{axes}", "--move", "a"], "write a move as NAME=AMOUNT"),
    (["edit", "{axes}", "--latent", "{bad_latent}"], "takes latents of size 16"),
    (["grid", "{axes}", "--seeds", "x"], "not a comma-separated list of integers"),
    (["sample", "-g", "nope"], "unknown generator 'nope': neither a registered name"),
    (["sample", "-g", "toy-linear", "-e", "nope"], "unknown extractor 'nope'"),
    (["fit", "{tmp}/missing"], "is not a tlgan run folder"),
    (["fit", "{run}", "--features", "zzz"], "unknown feature(s) zzz"),
    (["edit", "{tmp}/none.safetensors"], "does not exist"),
])
def test_bad_input_gets_a_clear_message(discovered, tmp_path, args, message):
    np.save(tmp_path / "bad.npy", np.zeros(7, np.float32))
    fill = {"axes": discovered / "axes.safetensors", "run": discovered / "run", "tmp": tmp_path,
            "bad_latent": tmp_path / "bad.npy"}
    r = run(*[a.format(**fill) for a in args], ok=False)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_axes_from_another_generator_are_refused(discovered, tmp_path):
    axes = Axes.load(discovered / "axes.safetensors")
    axes.meta["generator"] = "digiface-dcgan"
    from tlgan.generators import load_generator
    from tlgan.pipeline import Editor

    with pytest.raises(Exception, match="fitted for generator 'digiface-dcgan', not 'toy-linear'"):
        Editor(load_generator("toy-linear"), axes)


def test_axes_info_and_plugins(discovered):
    doc = json.loads(run("axes-info", discovered / "axes.safetensors").output)
    assert doc["features"] == ["a", "b", "p", "c"] and doc["generator"] == "toy-linear"
    out = run("plugins").output
    assert "digiface-dcgan" in out and "faces" in out and "toy-linear" in out


def test_ray_without_ray_installed_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if the extra were not installed
    r = run("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 10, "--out", tmp_path / "run", "--ray", ok=False)
    assert r.exit_code == 1 and "pip install 'tlgan[ray]'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()
