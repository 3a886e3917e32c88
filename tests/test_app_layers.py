"""The explorer in w+: a layer range per axis, kept in the state (JSON, link, undo) and applied per axis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlgan.app.codec import decode_state, encode_state, state_from_token, state_token
from tlgan.app.state import ExplorerState, StateError, set_layers, set_lock, set_slider
from tlgan.app.undo import Session
from tlgan.explore import edit_delta
from tlgan.jobs import open_explorer
from wplus_support import wplus_axes


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    return open_explorer(wplus_axes(tmp_path_factory.mktemp("wplus")), "cpu", readouts=False)


def test_serve_reopens_the_users_checkpoint_in_the_axes_space(explorer):
    gen = explorer.generator
    assert gen.space == "w+" and gen.num_ws == 10 and explorer.num_ws == 10
    assert gen.sha256 == explorer.axes.meta["generator_sha256"]


def test_layer_ranges_round_trip_through_json_link_and_undo(explorer):
    axes = explorer.axes
    s0 = set_slider(explorer.initial(4), axes, "a", 2)
    s = set_layers(set_slider(s0, axes, "b", -1), axes, "a", " Coarse ", 10)
    s = set_layers(s, axes, "b", "4-7", 10)
    assert s.layers == {"a": "coarse", "b": "4-7"}
    assert json.loads(encode_state(s))["layers"] == {"a": "coarse", "b": "4-7"}
    assert explorer.decode(encode_state(s)) == s and explorer.from_token(state_token(s)) == s
    assert "a +2 (coarse layers)" in s.describe()
    # "all" (or every layer) is no range at all: the state reads as one without layers
    assert set_layers(s, axes, "a", "all", 10).layers == {"b": "4-7"}
    assert set_layers(s, axes, "b", "0-9", 10).layers == {"a": "coarse"}
    assert "layers" not in json.loads(encode_state(s0))
    session = Session(s0).push(s)
    assert session.undo().state == s0
    for bad in ("10-12", "sideways", 3):
        with pytest.raises(StateError, match="layers of a"):
            set_layers(s, axes, "a", bad, 10)
    with pytest.raises(StateError, match="w\\+"):
        set_layers(s, axes, "a", "coarse", 1)  # a z or w generator has no layer ranges


def test_old_links_still_decode_and_z_explorers_refuse_layers(explorer):
    old = ExplorerState(explorer.generator.name, 3, None, {"a": 1.0}, ("b",))
    token = state_token(old)
    assert "layers" not in json.loads(encode_state(old))
    assert explorer.from_token(token) == old
    with pytest.raises(StateError, match="w\\+"):
        decode_state(encode_state(set_layers(old, explorer.axes, "a", "fine", 10)), explorer.axes)
    with pytest.raises(StateError, match="'layers' must be an object"):
        explorer.decode(json.dumps({"seed": 1, "layers": ["a"]}))
    assert state_from_token(token, explorer.axes) == old


def test_each_axis_moves_only_its_own_layers(explorer):
    axes = explorer.axes
    s = set_layers(set_layers(set_slider(set_slider(explorer.initial(2), axes, "a", 2), axes, "b", -1.5),
                              axes, "a", "coarse", 10), axes, "b", "fine", 10)
    base = explorer.base_latent(s)
    w = explorer.latent(s)
    assert w.shape == (10, explorer.generator.latent_dim)
    np.testing.assert_allclose(w[:4] - base, np.broadcast_to(edit_delta(axes, {"a": 2}), (4, w.shape[1])), atol=1e-5)
    np.testing.assert_allclose(w[4:8], np.broadcast_to(base, (4, w.shape[1])), atol=1e-6)
    np.testing.assert_allclose(w[8:] - base, np.broadcast_to(edit_delta(axes, {"b": -1.5}), (2, w.shape[1])),
                               atol=1e-5)
    # a locked slider keeps its amount on its own layers
    locked = set_lock(s, axes, "b", True)
    np.testing.assert_allclose(explorer.latent(locked)[8:] - base, w[8:] - base, atol=1e-5)
    # the images differ from the all-layers edit, and the strip renders in w+
    assert not np.array_equal(explorer.render(s), explorer.render(set_layers(s, axes, "a", "all", 10)))
    states, images = explorer.strip(s, "a")
    assert images.shape == (7, 64, 64, 3) and all(st.layers == s.layers for st in states)


def test_a_full_wplus_latent_is_a_face_like_a_seed(explorer):
    """A photo's inversion in w+ is a (num_ws, D) code: the state keeps it whole through JSON, link and undo,
    and moves, locks and layer ranges apply to it as to a sampled face."""
    from tlgan.app.state import set_latent, set_seed

    axes, dim = explorer.axes, explorer.generator.latent_dim
    code = np.random.default_rng(1).standard_normal((10, dim)).astype(np.float32) * 0.5
    s0 = set_latent(set_slider(explorer.initial(4), axes, "a", 2), code)
    assert s0.seed is None and s0.sliders == {"a": 2.0}  # the edit stays, as with a new seed
    np.testing.assert_array_equal(explorer.base_latent(s0), code)
    s = set_layers(set_lock(s0, axes, "b", True), axes, "a", "coarse", 10)
    assert explorer.decode(encode_state(s)) == s and explorer.from_token(state_token(s)) == s
    assert len(json.loads(encode_state(s))["latent"]) == 10
    assert Session(s0).push(s).undo().state == s0
    w = explorer.latent(s)
    np.testing.assert_allclose(w[:4] - code[:4], np.broadcast_to(edit_delta(axes, {"a": 2}, ("b",)), (4, dim)),
                               atol=1e-5)
    np.testing.assert_allclose(w[4:], code[4:], atol=1e-6)
    assert explorer.render(s).shape == (64, 64, 3)
    assert set_seed(s, 3).latent is None  # a seed returns to sampled faces
    for bad in ([[0.0] * dim] * 9, [[0.0] * (dim - 1)] * 10, [[0.0] * dim, 1.0] * 5):
        with pytest.raises(StateError, match="latent"):
            explorer.decode(json.dumps({"latent": bad}))
    with pytest.raises(StateError, match="list of numbers"):  # a z (or w) generator takes one row only
        decode_state(json.dumps({"latent": code.tolist()}), axes, dim, 1)


def test_a_cancelled_inversion_is_still_a_face_the_state_shows(explorer):
    """What the page's Cancel does: the progress callback returns False after 2 steps; the best latent so far
    is a full w+ code, and a state holding it renders exactly the reconstruction (a face generated in the
    framing already, so no face detector is needed)."""
    from tlgan.invert import invert

    target = explorer.render(explorer.initial(7))
    seen = []
    inv = invert(explorer.generator, target, steps=20, identity_weight=0,
                 progress=lambda i, n, loss: seen.append(i) or i < 2)
    assert inv.cancelled and inv.steps == 2 and seen == [1, 2]
    assert inv.latent.shape == (10, explorer.generator.latent_dim)
    from tlgan.app.state import set_latent

    s = set_latent(explorer.initial(), inv.latent)
    np.testing.assert_array_equal(explorer.render(s), inv.reconstruction)
