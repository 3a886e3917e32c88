"""tlgan.notebook: the explorer as ipywidgets, driven headlessly (no kernel, no browser) on the toy-linear model.

The toy's features are exact linear functions of z: ``a`` (e0), ``b`` (0.8 e0 +
0.6 e1), ``p`` (binary, e2) and ``c`` (e3), so what a slider or a lock does to
the readouts is known in closed form.
"""

import re

import pytest

pytest.importorskip("ipywidgets")

from tlgan.notebook import NotebookExplorer, explore


def change_of(nb: NotebookExplorer, name: str) -> float:
    """The change from the unedited face that the readout beside ``name``'s slider shows."""
    text = nb.readouts[name].value
    m = re.search(r"(±0|[+-]\d+(?:\.\d+)?)", text.split(" ", 1)[1] if " " in text else "")
    assert m, f"no change in the readout {text!r}"
    return 0.0 if m.group(1) == "±0" else float(m.group(1))


def test_a_slider_moves_the_face_and_its_readout(explorer):
    nb = NotebookExplorer(explorer, seed=3)
    before = bytes(nb.image.value)
    assert before.startswith(b"\x89PNG") and nb.state.sliders == {}
    nb.sliders["a"].value = 2.0
    assert nb.state.sliders == {"a": 2.0}  # the page's own state, changed by the page's own set_slider
    assert bytes(nb.image.value) != before
    assert change_of(nb, "a") == pytest.approx(2.0, abs=0.2)
    assert abs(change_of(nb, "c")) <= 0.1  # an orthogonal feature stays
    assert "a +2" in nb.status.value


def test_a_lock_holds_its_feature_and_warns(explorer):
    nb = NotebookExplorer(explorer, seed=3)
    nb.locks["b"].value = True
    assert nb.state.locks == ("b",) and nb.sliders["b"].disabled
    nb.sliders["a"].value = 2.0
    assert abs(change_of(nb, "b")) <= 0.1  # locked: b's readout does not move
    assert change_of(nb, "a") == pytest.approx(1.2, abs=0.2)  # only sqrt(1 - 0.8^2) of a's axis is left
    assert "nearly parallel" in nb.status.value


def test_a_refused_change_is_said_and_undone(explorer):
    nb = NotebookExplorer(explorer, seed=5)
    nb.sliders["a"].value = 2.0
    nb.locks["a"].value = True
    nb.sliders["a"].value = 1.0  # a locked slider is frozen: the page's set_slider refuses it
    assert "locked" in nb.status.value
    assert nb.sliders["a"].value == 2.0 and nb.state.sliders == {"a": 2.0}


def test_seed_and_reset(explorer):
    nb = NotebookExplorer(explorer, seed=1)
    nb.sliders["c"].value = -1.5
    nb.locks["b"].value = True
    first = bytes(nb.image.value)
    nb.seed.value = 7
    assert nb.state.seed == 7 and bytes(nb.image.value) != first
    nb.reset.click()
    assert nb.state.sliders == {} and nb.state.locks == ()
    assert nb.sliders["c"].value == 0.0 and not nb.locks["b"].value


def test_explore_loads_an_axes_file(explorer, tmp_path):
    path = explorer.axes.save(tmp_path / "axes.safetensors")
    nb = explore(path, device="cpu")
    assert list(nb.sliders) == ["a", "b", "p", "c"] and nb.face.shape[2] == 3
    assert nb.widget.children  # what a notebook cell displays
