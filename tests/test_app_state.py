"""The explorer's state logic (tlgan.app.state, codec, undo, locks, readouts, explorer), without a browser, on the toy-linear model.

The toy's features are exact linear functions of z: ``a`` (axis e0), ``b``
(0.8 e0 + 0.6 e1, so cos(a, b) = 0.8), ``p`` (binary, e2) and ``c`` (e3), so
what a slider or a lock does to the readouts is known in closed form.
"""

import base64
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tlgan.app.codec import decode_state, encode_state, state_from_token, state_token
from tlgan.app.explorer import Explorer
from tlgan.app.locks import lock_warnings
from tlgan.app.readouts import describe_readouts, format_change, format_value, subject_missing
from tlgan.app.state import (
    MAX_SEED,
    SLIDER_LIMIT,
    STRIP_STEPS,
    ExplorerState,
    StateError,
    parse_seed,
    random_seed,
    reset_sliders,
    set_lock,
    set_seed,
    set_slider,
    strip_states,
)
from tlgan.app.undo import MAX_UNDO, Session
from tlgan.axes import Axes, AxesError
from tlgan.jobs import open_explorer


@pytest.fixture(scope="module")
def axes(explorer):
    return explorer.axes


def read(explorer, state):
    return explorer.readouts(explorer.render(state))


# ---------------------------------------------------------------- sliders, locks and readouts


def test_loads_generator_and_extractor_from_the_axes_metadata(explorer, tmp_path):
    path = explorer.axes.save(tmp_path / "axes.safetensors")
    ex = open_explorer(path, "cpu")
    assert ex.generator.name == "toy-linear" and ex.extractor.name == "toy-linear"
    assert ex.names == ["a", "b", "p", "c"]


def test_refuses_axes_of_another_generator(explorer):
    other = Axes(explorer.axes.names, explorer.axes.kinds, explorer.axes.vectors, explorer.axes.slopes,
                 meta={"generator": "digiface-dcgan"})
    with pytest.raises(AxesError, match="digiface-dcgan"):
        Explorer(other, explorer.generator, explorer.extractor)


def test_slider_moves_its_feature_readout(explorer, axes):
    s0 = explorer.initial(3)
    s1 = set_slider(s0, axes, "a", 2.0)
    r0, r1 = read(explorer, s0), read(explorer, s1)
    assert r1["a"] - r0["a"] == pytest.approx(2.0, abs=0.15)  # a is exactly e0 . z, read back from pixels
    assert r1["c"] == pytest.approx(r0["c"], abs=0.1)  # an orthogonal feature stays
    assert not np.array_equal(explorer.render(s0), explorer.render(s1))
    assert s1.sliders == {"a": 2.0} and s0.sliders == {}  # states are values: s0 is untouched


def test_lock_keeps_a_correlated_feature_and_warns(explorer, axes):
    s0 = set_lock(explorer.initial(3), axes, "b", True)
    s1 = set_slider(s0, axes, "a", 2.0)
    r0, r1 = read(explorer, explorer.initial(3)), read(explorer, s1)
    assert r1["b"] == pytest.approx(r0["b"], abs=0.1)  # locked: unchanged
    assert r1["a"] - r0["a"] == pytest.approx(2.0 * 0.6, abs=0.15)  # only sqrt(1 - 0.8^2) of a's axis is left
    (w,) = lock_warnings(s1, axes)
    assert w.feature == "a" and w.locked[0][0] == "b" and abs(w.locked[0][1]) == pytest.approx(0.8, abs=0.02)
    assert w.retained == pytest.approx(0.6, abs=0.02)
    assert "nearly parallel" in w.message() and "cancels itself" in w.message()
    # an orthogonal lock, or no move at all, gives no warning
    assert lock_warnings(set_slider(set_lock(explorer.initial(3), axes, "c", True), axes, "a", 2), axes) == []
    assert lock_warnings(s0, axes) == []


def test_locked_slider_is_frozen_but_keeps_its_amount(explorer, axes):
    start = read(explorer, explorer.initial(5))
    s = set_lock(set_slider(explorer.initial(5), axes, "a", 2.0), axes, "a", True)
    with pytest.raises(StateError, match="locked"):
        set_slider(s, axes, "a", 1.0)
    s = set_slider(s, axes, "b", 1.5)  # b's move is projected off a: a keeps its +2
    r = read(explorer, s)
    assert r["a"] - start["a"] == pytest.approx(2.0, abs=0.15)
    assert r["b"] - start["b"] > 0.5
    assert s.held_moves == {"a": 2.0} and s.free_moves == {"b": 1.5}


def test_locks_that_leave_nothing_to_move_are_refused(explorer, axes):
    # lock a and b: their span holds e0 and e1; moving a's twin would be impossible. Build such a twin.
    twin = Axes(["a", "a2"], ["continuous"] * 2, np.stack([axes.vector("a")] * 2), [1, 1],
                meta={"generator": "toy-linear"})
    s = set_slider(ExplorerState("toy-linear"), twin, "a2", 1.0)
    with pytest.raises(StateError, match="inside the locked axes' span"):
        set_lock(s, twin, "a", True)


@pytest.mark.parametrize("bad", [4.5, -4.01, math.nan, math.inf, "abc", None, "", True, [1]])
def test_out_of_range_or_non_numeric_slider_values_are_refused(axes, bad):
    with pytest.raises(StateError, match="a:"):
        set_slider(ExplorerState("toy-linear"), axes, "a", bad)


def test_slider_values_at_the_limits_and_as_strings_are_fine(axes):
    s = ExplorerState("toy-linear")
    assert set_slider(s, axes, "a", SLIDER_LIMIT).slider("a") == SLIDER_LIMIT
    assert set_slider(s, axes, "a", "-1.5").slider("a") == -1.5
    assert set_slider(set_slider(s, axes, "a", 1), axes, "a", -0.0).sliders == {}  # 0 is not stored
    assert set_slider(s, axes, "a", 0.1 + 0.2).slider("a") == 0.3  # no float noise in the shared JSON


def test_unknown_feature_lists_the_known_ones(axes):
    with pytest.raises(StateError, match=r"unknown feature 'age'.*a, b, p, c"):
        set_slider(ExplorerState("toy-linear"), axes, "age", 1)
    with pytest.raises(StateError, match="unknown feature"):
        set_lock(ExplorerState("toy-linear"), axes, "zzz", True)
    with pytest.raises(StateError, match="true or false"):
        set_lock(ExplorerState("toy-linear"), axes, "a", "yes")


@pytest.mark.parametrize("good,expected", [(0, 0), ("12", 12), (12.0, 12), (np.int64(7), 7), (MAX_SEED, MAX_SEED)])
def test_seeds(good, expected):
    assert parse_seed(good) == expected
    assert set_seed(ExplorerState("g", seed=1, latent=(0.0,)), good) == ExplorerState("g", seed=expected)


@pytest.mark.parametrize("bad", [-1, 1.5, MAX_SEED + 1, 2**70, "abc", "1e3", "", None, True, math.nan, [3]])
def test_bad_seeds_are_refused_with_the_range(bad):
    with pytest.raises(StateError, match="whole number from 0 to 4294967295"):
        parse_seed(bad)


def test_random_reset_and_strip(explorer, axes):
    s = set_lock(set_slider(explorer.initial(1), axes, "a", 1.0), axes, "p", True)
    r = random_seed(s, np.random.default_rng(0))
    assert r.seed != 1 and r.sliders == s.sliders and r.locks == s.locks  # the edit carries over
    assert reset_sliders(s).sliders == {} and reset_sliders(s).locks == ("p",)
    states = strip_states(s, axes, "c")
    assert [x.slider("c") for x in states] == list(STRIP_STEPS) and all(x.slider("a") == 1.0 for x in states)
    _, images = explorer.strip(s, "c")
    c_values = [v["c"] for v in explorer.readouts_many(images)]
    assert np.all(np.diff(c_values) > 0.5)  # the strip steps c up, one unit at a time
    with pytest.raises(StateError, match="locked"):
        strip_states(s, axes, "p")


# ---------------------------------------------------------------- undo


def test_undo_steps_back_and_coalesces_a_drag():
    s0 = ExplorerState("g")
    a = Session(s0)
    with pytest.raises(StateError, match="nothing to undo"):
        a.undo()
    b = a.push(ExplorerState("g", seed=1), now=0.0)
    # a drag: many values of one slider within a second are one undo step
    c = b.push(ExplorerState("g", seed=1, sliders={"a": 0.1}), key="slider:a", now=10.0)
    c = c.push(ExplorerState("g", seed=1, sliders={"a": 0.5}), key="slider:a", now=10.3)
    c = c.push(ExplorerState("g", seed=1, sliders={"a": 0.9}), key="slider:a", now=10.6)
    assert c.state.sliders == {"a": 0.9} and len(c.history) == 2
    assert c.undo().state == ExplorerState("g", seed=1)
    assert c.undo().undo().state == s0 and not c.undo().undo().can_undo
    # the same slider again after a pause is a new step; no change is no step
    d = c.push(ExplorerState("g", seed=1, sliders={"a": 2.0}), key="slider:a", now=20.0)
    assert d.undo().state.sliders == {"a": 0.9}
    assert d.push(d.state) is d


def test_undo_stack_is_bounded():
    s = Session(ExplorerState("g"))
    for i in range(MAX_UNDO + 50):
        s = s.push(ExplorerState("g", seed=i + 1))
    assert len(s.history) == MAX_UNDO


# ---------------------------------------------------------------- state JSON and links


def test_json_and_link_round_trip(explorer, axes):
    s = set_lock(set_slider(set_slider(explorer.initial(42), axes, "a", 1.5), axes, "c", -2.3), axes, "p", True)
    text = encode_state(s)
    assert json.loads(text) == {"tlgan_explorer": 1, "generator": "toy-linear", "seed": 42,
                                "sliders": {"a": 1.5, "c": -2.3}, "locks": ["p"]}
    assert explorer.decode(text) == s
    token = state_token(s)
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token
    assert explorer.from_token(token) == s
    assert explorer.decode(token) == s  # a bare token pasted in the box
    assert explorer.decode(f"http://127.0.0.1:7860/?state={token}") == s  # a whole share link
    assert np.array_equal(explorer.render(explorer.decode(text)), explorer.render(s))


def test_latent_states_restore_the_exact_latent(explorer):
    z = np.random.default_rng(1).standard_normal(explorer.generator.latent_dim).astype(np.float32) * 1.7
    s = ExplorerState("toy-linear", seed=None, latent=tuple(float(x) for x in z), sliders={"a": 1.0})
    back = explorer.decode(encode_state(s))
    assert np.array_equal(np.asarray(back.latent, np.float32), z)
    assert np.array_equal(explorer.latent(back), explorer.latent(s))
    assert len(encode_state(s)) < 2000


finite = st.floats(-SLIDER_LIMIT, SLIDER_LIMIT, allow_nan=False).filter(lambda v: v != 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, MAX_SEED), moves=st.dictionaries(st.sampled_from("abpc"), finite),
       locks=st.sets(st.sampled_from("pc")))
def test_any_valid_state_round_trips(axes, seed, moves, locks):
    s = ExplorerState("toy-linear", seed)
    for name, amount in moves.items():
        s = set_slider(s, axes, name, amount)
    for name in locks:
        s = set_lock(s, axes, name, True)
    assert decode_state(encode_state(s), axes) == s
    assert state_from_token(state_token(s), axes) == s


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"seed": 1, "slidres": {}}', "unknown key.*slidres"),
    ('{"tlgan_explorer": 2}', "format 2"),
    ('{"generator": "digiface-dcgan"}', "generator 'digiface-dcgan'"),
    ('{"seed": -3}', "whole number"),
    ('{"seed": "x"}', "whole number"),
    ('{"seed": 1, "latent": [0.1]}', "not both"),
    ('{"latent": [0.1, 0.2]}', "has 2 numbers"),
    ('{"latent": "abc"}', "list of numbers"),
    ('{"sliders": {"a": 9}}', "outside the slider range"),
    ('{"sliders": {"a": NaN}}', "not a finite number"),
    ('{"sliders": {"age": 1}}', "unknown feature 'age'"),
    ('{"sliders": [1]}', "'sliders' must be an object"),
    ('{"locks": "a"}', "'locks' must be a list"),
    ('{"locks": ["nope"]}', "unknown feature 'nope'"),
    ('{"locks": [3]}', "must be a string"),
    ("@@@@", "not valid JSON"),
    ("abcd", "damaged"),
    ("7", "must be a JSON object"),
    ("eyJzZWVkIjo", "damaged|not valid JSON"),  # a token cut off when copied
    ("{" + " " * 30_000 + "}", "too long"),
    ('{"sliders": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ("[" * 9000, "nested too deeply"),
    (base64.urlsafe_b64encode(b'{"locks": ' + b"[" * 4000 + b"]" * 4000 + b"}").decode().rstrip("="),
     "nested too deeply"),  # the same as a ?state= token
])
def test_malformed_states_get_a_clear_message(axes, text, match):
    with pytest.raises(StateError, match=match):
        decode_state(text, axes)


# ---------------------------------------------------------------- readout text


def test_readout_text():
    assert format_value("binary", "", 0.834) == "83%"
    assert format_value("continuous", "years", 32.66) == "32.7 years"
    assert format_value("continuous", "degrees", -7.12) == "-7.1°"
    assert format_value("continuous", "", 0.234) == "0.23"
    assert format_value("continuous", "", math.nan) == "n/a"
    assert format_change("binary", 0.84, 0.17) == "+67 pts"
    assert format_change("continuous", 44.0, 32.7) == "+11.3"
    assert format_change("continuous", 1.0, 1.01) == "±0"
    assert format_change("continuous", 1.0, None) == ""


def test_no_face_found_is_said_beside_every_slider():
    from tlgan.extractors.faces import FEATURES

    feats = {f.name: f for f in FEATURES}
    values = {"face_found": 0.0, "age": math.nan, "male": math.nan}
    assert subject_missing(values, "face_found") and not subject_missing({"face_found": 1.0}, "face_found")
    assert not subject_missing({"a": 1.0}, "face_found") and not subject_missing(values, None)  # none declared
    rows = describe_readouts(["face_found", "age", "male"], feats, values, {"face_found": 1.0, "age": 30.0}, True,
                             presence="face_found")
    assert [r.value for r in rows] == ["0%", "no face found", "no face found"]
    assert rows[0].change == "-100 pts" and rows[0].trend == "down" and rows[1].trend == "missing"
    ok = describe_readouts(["age"], feats, {"face_found": 1.0, "age": 40.0}, {"age": 30.0}, True, presence="face_found")
    assert ok[0].value == "40.0 years" and ok[0].change == "+10.0" and ok[0].trend == "up"
    assert describe_readouts(["age"], feats, {"age": 40.0}, {"age": 30.0}, edited=False)[0].change == ""
    # an extractor that declares no presence feature never hides its readouts
    assert describe_readouts(["age"], feats, values, None, False)[0].value != "no face found"


# ---------------------------------------------------------------- which face the page shows


class PositiveC:
    """The toy extractor, judging a face clear when its ``c`` reads above 0 (about half the seeds),
    as the faces extractor judges one clear when it is found, frontal and well lit."""

    has_showcase = True

    def __init__(self, toy) -> None:
        self.toy = toy
        self.features, self.presence, self.name = toy.features, toy.presence, toy.name

    def __call__(self, images):
        return self.toy(images)

    def showcase(self, labels):
        return labels[:, [f.name for f in self.features].index("c")] > 0


@pytest.fixture(scope="module")
def picky(explorer):
    return Explorer(explorer.axes, explorer.generator, PositiveC(explorer.extractor))


def clear(picky, seed: int) -> bool:
    return read(picky, picky.initial(seed))["c"] > 0


def test_the_page_opens_on_the_first_clear_face(picky, explorer):
    seed = picky.opening_seed()
    assert clear(picky, seed) and not any(clear(picky, s) for s in range(seed))
    assert explorer.opening_seed() == 0  # an extractor that judges no face clearer than another: seed 0


def test_new_random_faces_are_clear_ones_unless_any_face_is_asked_for(picky):
    rng = np.random.default_rng(1)
    assert all(clear(picky, picky.draw_seed(rng)) for _ in range(12))
    anyface = [clear(picky, picky.draw_seed(rng, any_face=True)) for _ in range(30)]
    assert 0 < sum(anyface) < 30  # any face: clear and unclear ones alike


# ---------------------------------------------------------------- the command


def test_serve_without_axes_says_to_run_the_demo(tmp_path, monkeypatch):
    from tlgan.cli import main

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["serve"])
    assert r.exit_code == 1 and "make demo" in r.output and "tlgan discover" in r.output
    r = CliRunner().invoke(main, ["serve", "nope.safetensors"])
    assert r.exit_code == 1 and "no axes file at nope.safetensors" in r.output


@pytest.fixture
def no_server(monkeypatch):
    """``tlgan serve`` with the server (the model loading and gradio) replaced by a stub that records its call."""
    import tlgan.app.web

    calls = []
    monkeypatch.setattr(tlgan.app.web, "serve", lambda *a, **k: calls.append((a, k)))
    return calls


def test_serve_refuses_a_bad_or_taken_port_before_loading_anything(tmp_path, no_server):
    import socket

    from tlgan.cli import main

    axes = tmp_path / "axes.safetensors"
    axes.write_bytes(b"")  # never read: the port is refused first
    r = CliRunner().invoke(main, ["serve", str(axes), "--port", "70000"])
    assert r.exit_code == 1 and "port 70000 is not a port" in r.output and "1 to 65535" in r.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(main, ["serve", str(axes), "--port", str(port)])
    assert r.exit_code == 1 and f"port {port} on 127.0.0.1 is already in use" in r.output
    assert "Traceback" not in r.output and no_server == []


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)])
def test_serve_warns_when_the_page_is_open_to_the_network(tmp_path, no_server, host, warned):
    import socket

    from tlgan.cli import main

    axes = tmp_path / "axes.safetensors"
    axes.write_bytes(b"")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = CliRunner().invoke(main, ["serve", str(axes), "--host", host, "--port", str(port)])
    assert r.exit_code == 0, r.output
    assert ("opens the page to the network" in r.output) == warned, r.output
    assert len(no_server) == 1


def test_a_frame_request_that_is_not_a_usable_json_object_gets_a_400(explorer):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from tlgan.app.codec import state_digest
    from tlgan.app.live import PREFIX, Live

    live = Live(explorer, "server")
    state = explorer.initial(0)
    live.publish(state)
    with TestClient(Starlette(routes=live.routes()), raise_server_exceptions=False) as client:
        ok = client.post(f"{PREFIX}/frame", json={"digest": state_digest(state), "sliders": {"a": 1}})
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg"
        for body in (b"[" * 100_000, b"{not json", b"\xff\xfe", b'{"digest": "nope"}',
                     b'{"digest": "%s", "sliders": {"a": [[[1]]]}}' % state_digest(state).encode()):
            bad = client.post(f"{PREFIX}/frame", content=body)
            assert bad.status_code == 400, (body[:20], bad.status_code, bad.text[:200])
            assert bad.json()["error"]
