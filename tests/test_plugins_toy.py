"""A newcomer's plugins, one file each, run through the jobs a user runs (docs/architecture.md).

``tests/plugins_toy/`` holds a checkpoint family, a direction finder and a
direction field, each in its own file and registered only by being named in
``$TLGAN_PLUGINS``: nothing in tlgan lists them. Between the steps the test
forgets every plugin (as a new process would start), so each job must find
what it needs through the plugin mechanism alone: register a toy checkpoint
(``tlgan models add``), ``discover`` with it, ``fit`` with the toy finder,
``edit`` and ``evaluate`` the axes file, whose toy field is loaded back from it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from tlgan import jobs, plugins
from tlgan.axes import Axes
from tlgan.cli import main
from tlgan.explore import move
from tlgan.fields import FIELDS
from tlgan.finders import FINDERS
from tlgan.generators import library
from tlgan.generators.families import families, unregister_family
from tlgan.weights import CACHE_ENV

MODULES = ("plugins_toy.family", "plugins_toy.finder", "plugins_toy.field")
FAMILY, FINDER, FIELD = "toy-painter", "toy-meandiff", "toy-sphere"


def forget_toy_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo every registration of the toy plugins and let ``load_plugins`` run again, like a fresh process."""
    unregister_family(FAMILY)
    FINDERS.unregister(FINDER)
    FIELDS.unregister(FIELD)
    for name in MODULES:
        sys.modules.pop(name, None)
    monkeypatch.setattr(plugins, "_loaded", False)


@pytest.fixture
def toy_plugins(monkeypatch, tmp_path):
    monkeypatch.setenv(plugins.PLUGINS_ENV, ",".join(MODULES))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "home"))  # no registered generators but the test's
    forget_toy_plugins(monkeypatch)
    yield
    forget_toy_plugins(monkeypatch)


def painter_rows(dim: int = 12, seed: int = 0) -> np.ndarray:
    """The toy checkpoint's rows: a, then b = 0.8 a + 0.6 (another direction), p, c; unit rows."""
    q = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, 8)))[0].T  # (8, dim) orthonormal
    rows = q.copy()
    rows[1] = 0.8 * q[0] + 0.6 * q[1]
    return rows.astype(np.float32)


def test_a_toy_family_finder_and_field_each_from_one_file_run_through_every_job(toy_plugins, tmp_path, monkeypatch):
    rows = painter_rows()
    checkpoint = tmp_path / "painter.pt"
    torch.save({"toy_painter": {"rows": torch.from_numpy(rows)}}, checkpoint)

    # `tlgan models add`: the checkpoint is recognised by the plugin family from its content alone
    entry = library.add(checkpoint, "painter")
    assert entry["family"] == FAMILY and entry["z_dim"] == rows.shape[1] and FAMILY in families()

    # discover, on the generator by its registered name
    forget_toy_plugins(monkeypatch)
    gen, ext = jobs.load_models("painter", "toy-linear", "cpu")
    assert gen.family is not None and gen.family.name == FAMILY and gen.name == "painter"
    found = jobs.discover(tmp_path / "out", gen, ext, 600)
    assert found.axes.names == ["a", "b", "p", "c"] and found.figure is None  # no face feature to draw
    assert found.axes.vector("a") @ rows[0] > 0.95  # the glm axes of the painted rows

    # fit: a fresh session finds the toy finder by name; its axes follow the toy field
    forget_toy_plugins(monkeypatch)
    axes, path = jobs.fit_file(found.run.path, FINDER)
    assert path == found.run.path.parent / f"axes-{FINDER}.safetensors"
    assert axes.meta["finder"] == FINDER and axes.field.kind == FIELD
    for name, true in (("a", rows[0]), ("b", rows[1]), ("c", rows[3])):
        assert axes.vector(name) @ true > 0.9, name

    # edit: a fresh session loads the toy field back from the file and the generator from the checkpoint
    forget_toy_plugins(monkeypatch)
    assert FIELD not in FIELDS
    editor = jobs.open_editor(path, "cpu")
    sphere = sys.modules["plugins_toy.field"].SphereField
    assert isinstance(editor.axes.field, sphere) and editor.axes.field.kind == FIELD
    np.testing.assert_allclose(editor.axes.field.centre, axes.field.centre)
    np.testing.assert_allclose(editor.axes.vectors, axes.vectors)
    assert Axes.sidecar(path).exists() and f'"kind": "{FIELD}"' in Axes.sidecar(path).read_text()
    z = editor.latent(3)
    up = jobs.edit_file(editor, z, {"a": 2.0}, [], tmp_path / "up.png")
    down = jobs.edit_file(editor, z, {"a": -2.0}, ["b"], tmp_path / "down.png", save_latent=tmp_path / "down.npy")
    assert (tmp_path / "up.png").exists() and (tmp_path / "down.png").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "down.npy"), down)
    labels = ext(editor.generator.render(np.stack([z, up, down])))
    a, b = labels[:, 0], labels[:, 1]
    assert a[1] > a[0] + 1.0 and a[2] < a[0] - 0.5  # the asked way (locking b = 0.8 a + ... leaves 0.6 of a)
    assert abs(b[1] - b[0]) > 1.0 and abs(b[2] - b[0]) < 0.3  # b follows a unless it is locked
    radius = lambda x: float(np.linalg.norm(x - editor.axes.field.centre))  # noqa: E731
    straight = move(z, editor.axes.with_field(editor.axes.field.mean()), {"a": 2.0})
    assert abs(radius(up) - radius(z)) < 0.02 * radius(z) < abs(radius(straight) - radius(z))  # the sphere field

    # evaluate: measured through the same field; the report names the toy finder
    forget_toy_plugins(monkeypatch)
    ev, page = jobs.evaluate_file(path, n=40, distances=(1.0, 2.0), locks=1, device="cpu")
    assert ev.finder == FINDER and page.exists() and FINDER in page.read_text()
    control = {s["axis"]: s["control"] for s in ev.summary()}
    assert control["a"] > 1.0 and control["c"] > 1.0


def test_a_plugin_family_is_a_choice_of_the_command_line(toy_plugins):
    """`--family` offers the families known when the command runs, plugins' included (the command line was
    imported at collection, before the toy plugins were named)."""
    for command in (main.commands["models"].commands["add"], main.commands["sample"]):  # type: ignore[attr-defined]
        family = next(p for p in command.params if p.name == "family")
        assert FAMILY in family.type.choices
