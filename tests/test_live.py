"""The explorer's drag path (tlgan.app.live): the ONNX export the page runs, and the server's frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from model_support import need_models
from tlgan.app.live import Live, LiveError, check_onnx, export_onnx, generator_key
from tlgan.app.state import Explorer, ExplorerState
from tlgan.axes import Axes
from tlgan.toy import toy_directions

ort = pytest.importorskip("onnxruntime")


def run_onnx(path, latent: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"latent": np.asarray(latent, np.float32)[None]})[0]


def toy_explorer() -> Explorer:
    from tlgan.generators import load_generator

    v = toy_directions()
    axes = Axes(["a", "b", "p", "c"], ["continuous"] * 4, v / np.linalg.norm(v, axis=1, keepdims=True), np.ones(4),
                meta={"generator": "toy-linear"})
    return Explorer(axes, load_generator("toy-linear", "cpu"))


def test_toy_export_matches_torch_and_is_reused(tmp_path, monkeypatch):
    gen = toy_explorer().generator
    path = export_onnx(gen, tmp_path)
    assert path.name == f"{generator_key(gen)}.onnx"
    z = np.random.default_rng(0).standard_normal(gen.latent_dim).astype(np.float32)
    want = gen.synthesize(torch.from_numpy(z)[None]).numpy()
    np.testing.assert_allclose(run_onnx(path, z), want, atol=1e-6)

    def no_export(*args, **kwargs):
        raise AssertionError("a cached export is exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    assert export_onnx(gen, tmp_path) == path  # the next start finds it by the generator's key
    assert len(list(tmp_path.iterdir())) == 1  # and no temporary file was left behind


@need_models("digiface-dcgan")
def test_default_generator_export_matches_torch(tmp_path):
    from tlgan.generators import load_generator

    gen = load_generator("digiface-dcgan", "cpu")
    path = export_onnx(gen, tmp_path)
    assert check_onnx(path, gen) < 1e-4
    z = gen.sample(1, 7)
    got = run_onnx(path, z[0])
    want = gen.synthesize(torch.from_numpy(z)).detach().numpy()
    assert got.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_a_changed_weight_is_another_model(tmp_path):
    gen = toy_explorer().generator
    key = generator_key(gen)
    gen.rows[0, 0] += 0.5
    assert generator_key(gen) != key


def test_generators_the_page_cannot_run_are_refused(tmp_path):
    gen = toy_explorer().generator
    gen.space = "w+"  # the page adds moves to one vector: no per-layer codes
    with pytest.raises(LiveError, match="w\\+"):
        export_onnx(gen, tmp_path)
    gen.space, gen.resolution = "z", 1024
    with pytest.raises(LiveError, match="1024 px"):
        export_onnx(gen, tmp_path)
    assert not list(tmp_path.iterdir())


def test_without_onnxruntime_web_the_page_gets_server_frames(tmp_path, monkeypatch):
    monkeypatch.setenv("TLGAN_HOME", str(tmp_path))  # an empty cache: onnxruntime-web was never fetched
    live = Live(toy_explorer())
    assert live.mode == "server" and "tlgan models fetch onnxruntime-web" in live.reason
    assert live.config()["mode"] == "server" and "axes" not in live.config()
    with pytest.raises(Exception, match="onnxruntime-web"):
        Live(toy_explorer(), "browser")


@pytest.fixture
def frames():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    live = Live(toy_explorer(), "server")
    with TestClient(Starlette(routes=live.routes())) as client:
        yield live, client


def decode_published(html: str) -> dict:
    import html as html_lib
    import json
    import re

    return json.loads(html_lib.unescape(re.search(r'data-live="([^"]*)"', html).group(1)))


def test_a_frame_is_the_published_state_with_the_pages_sliders(frames):
    live, client = frames
    explorer = live.explorer
    state = ExplorerState("toy-linear", 3, None, {"c": 1.0}, ("b",))
    published = decode_published(live.publish(state))
    assert published["locks"] == ["b"] and published["sliders"] == {"c": 1.0}
    r = client.post("/tlgan-live/frame", json={"digest": published["digest"], "sliders": {"a": 2.0, "c": 1.0}})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=float)
    want = explorer.render(ExplorerState("toy-linear", 3, None, {"a": 2.0, "c": 1.0}, ("b",)))
    other = explorer.render(ExplorerState("toy-linear", 3, None, {"a": -2.0, "c": 1.0}, ("b",)))
    assert np.abs(got - want).mean() < 3 < np.abs(got - other).mean()  # JPEG is close, another state is not


def test_bad_frame_requests_get_a_message(frames):
    live, client = frames
    digest = decode_published(live.publish(ExplorerState("toy-linear", 0, None, {}, ("b",))))["digest"]
    cases = [({"digest": digest, "sliders": {"a": 99}}, "outside the slider range"),
             ({"digest": digest, "sliders": {"zzz": 1}}, "unknown feature"),
             ({"digest": digest, "sliders": {"b": 1}}, "b is locked"),
             ({"digest": "nope", "sliders": {}}, "reload the page"),
             ({"digest": digest, "sliders": [1]}, "'sliders' must be an object")]
    for body, message in cases:
        r = client.post("/tlgan-live/frame", json=body)
        assert r.status_code == 400 and message in r.json()["error"], (body, r.text)
    assert client.post("/tlgan-live/frame", content=b"{broken").status_code == 400
    assert client.get("/tlgan-live/model.onnx").status_code == 404  # server mode has no model to offer
    assert client.get("/tlgan-live/ort/..%2Fsecret").status_code == 404
