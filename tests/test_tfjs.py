"""The TF.js graph executor and human's face models.

Tiny hand-written graphs check TF padding, fused ops, folding, layout-sensitive
ops, weight dequantization and the error paths against direct numpy
references. The real models are checked against other runtimes' outputs
stored by ``tests/oracles/make_tfjs_oracles.py``: MediaPipe's TFLite face
mesh, and the official TF.js runtime for faceres and emotion.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tlgan import weights
from tlgan.extractors.tfjs import TFJSGraph, UnsupportedOpError, _Conv

DATA = Path(__file__).parent / "data"

# --------------------------------------------------------------------------- tiny graphs


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _conv_attrs(padding: str | list[int], stride: int, dilation: int = 1) -> dict:
    attrs = {"strides": _ints([1, stride, stride, 1]), "dilations": _ints([1, dilation, dilation, 1]),
             "data_format": _s("NHWC")}
    if isinstance(padding, str):
        attrs["padding"] = _s(padding)
    else:  # (top, bottom, left, right)
        attrs["padding"] = _s("EXPLICIT")
        attrs["explicit_paddings"] = _ints([0, 0, *padding, 0, 0])
    return attrs


def _write_graph(path: Path, shape: list[int], nodes: list[dict[str, Any]], consts: dict[str, np.ndarray],
                 quantize: dict[str, str] | None = None) -> Path:
    """A TF.js graph-model ``model.json`` + ``model.bin``: input ``x`` of NHWC ``shape``, then ``nodes``.

    ``quantize`` maps a constant to "float16" or "uint8" storage (affine, as the TF.js converter writes it).
    """
    quantize = quantize or {}
    specs, blobs = [], []
    for name, value in consts.items():
        spec: dict[str, Any] = {"name": name, "shape": list(value.shape),
                                "dtype": "int32" if value.dtype.kind == "i" else "float32"}
        q = quantize.get(name)
        if q == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype("<f2").tobytes())
        elif q == "uint8":
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255
            spec["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale, "original_dtype": "float32"}
            blobs.append(np.round((value - lo) / scale).astype(np.uint8).tobytes())
        else:
            blobs.append(value.astype("<i4" if spec["dtype"] == "int32" else "<f4").tobytes())
        specs.append(spec)
    graph: list[dict[str, Any]] = [{"name": "x", "op": "Placeholder",
                                    "attr": {"shape": {"shape": {"dim": [{"size": str(s)} for s in shape]}},
                                             "dtype": {"type": "DT_FLOAT"}}}]
    graph += [{"name": n, "op": "Const", "attr": {}} for n in consts]
    model = {"format": "graph-model", "modelTopology": {"node": graph + nodes},
             "weightsManifest": [{"paths": ["model.bin"], "weights": specs}]}
    (path / "model.bin").write_bytes(b"".join(blobs))
    (path / "model.json").write_text(json.dumps(model))
    return path / "model.json"


def _tf_pads(padding: str | list[int], size: tuple[int, int], k: tuple[int, int], stride: int,
             dilation: int = 1) -> list[int]:
    """TF's padding rule written out: SAME gives ceil(n/s) outputs, the odd pixel goes after."""
    if not isinstance(padding, str):
        return list(padding)
    if padding == "VALID":
        return [0, 0, 0, 0]
    pads = []
    for n, kk in zip(size, k, strict=True):
        total = max((math.ceil(n / stride) - 1) * stride + (kk - 1) * dilation + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _ref_conv(x: np.ndarray, k: np.ndarray, padding: str | list[int], stride: int, dilation: int = 1,
              depthwise: bool = False) -> np.ndarray:
    """Direct NHWC convolution (TF filter layout), independent of torch."""
    kh, kw, cin, cout = k.shape
    t, b, left, right = _tf_pads(padding, x.shape[1:3], (kh, kw), stride, dilation)
    xp = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (xp.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, cin * cout if depthwise else cout), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + (kh - 1) * dilation + 1:dilation,
                       j * stride:j * stride + (kw - 1) * dilation + 1:dilation, :]
            if depthwise:
                out[:, i, j] = np.einsum("nhwc,hwcm->ncm", patch, k).reshape(len(x), -1)
            else:
                out[:, i, j] = np.einsum("nhwc,hwco->no", patch, k)
    return out


@pytest.mark.parametrize("padding,stride,dilation", [
    ("SAME", 2, 1), ("SAME", 1, 1), ("VALID", 2, 1), ("SAME", 1, 2), ([1, 0, 2, 1], 2, 1)])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_padding_matches_tf(tmp_path: Path, padding: str | list[int], stride: int, dilation: int,
                                 depthwise: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)  # odd/even sizes: SAME pads asymmetrically
    k = rng.normal(size=(3, 3, 3, 2 if depthwise else 4)).astype(np.float32)
    op = "DepthwiseConv2dNative" if depthwise else "Conv2D"
    path = _write_graph(tmp_path, [-1, 7, 6, 3], [
        {"name": "y", "op": op, "input": ["x", "k"], "attr": _conv_attrs(padding, stride, dilation)}], {"k": k})
    got = TFJSGraph(path, "cpu")(torch.from_numpy(x))["y"].numpy()
    np.testing.assert_allclose(got, _ref_conv(x, k, padding, stride, dilation, depthwise), atol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_max_pool_padding_never_wins(tmp_path: Path, padding: str) -> None:
    x = -np.abs(np.random.default_rng(1).normal(size=(2, 6, 5, 3))).astype(np.float32) - 1  # all < 0
    attrs = {"ksize": _ints([1, 3, 3, 1]), "strides": _ints([1, 2, 2, 1]), "padding": _s(padding),
             "data_format": _s("NHWC")}
    path = _write_graph(tmp_path, [-1, 6, 5, 3], [{"name": "y", "op": "MaxPool", "input": ["x"], "attr": attrs}], {})
    got = TFJSGraph(path, "cpu")(torch.from_numpy(x))["y"].numpy()
    t, b, left, right = _tf_pads(padding, (6, 5), (3, 3), 2)
    xp = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)), constant_values=-np.inf)
    want = np.stack([np.stack([xp[:, i:i + 3, j:j + 3].max((1, 2)) for j in range(0, xp.shape[2] - 2, 2)], 1)
                     for i in range(0, xp.shape[1] - 2, 2)], 1)
    np.testing.assert_array_equal(got, want)


def test_fused_conv_prelu_and_folded_bn_relu6(tmp_path: Path) -> None:
    """_FusedConv2D(BiasAdd, Prelu); and Conv2D -> Mul -> Add -> Relu -> Minimum -> Maximum folded into one conv."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32) * 4
    k1, k2 = rng.normal(size=(3, 3, 2, 4)).astype(np.float32), rng.normal(size=(1, 1, 4, 4)).astype(np.float32)
    bias, alpha = rng.normal(size=4).astype(np.float32), rng.uniform(0.1, 0.5, size=(1, 1, 4)).astype(np.float32)
    scale, shift = rng.uniform(0.5, 2, size=4).astype(np.float32), rng.normal(size=4).astype(np.float32)
    fused = {**_conv_attrs("SAME", 1), "fused_ops": {"list": {"s": [_s("BiasAdd")["s"], _s("Prelu")["s"]]}},
             "num_args": {"i": "2"}}
    nodes: list[dict[str, Any]] = [
        {"name": "a", "op": "_FusedConv2D", "input": ["x", "k1", "bias", "alpha"], "attr": fused},
        {"name": "c", "op": "Conv2D", "input": ["a", "k2"], "attr": _conv_attrs("VALID", 1)},
        {"name": "m", "op": "Mul", "input": ["c", "scale"]},
        {"name": "s", "op": "AddV2", "input": ["m", "shift"]},
        {"name": "r", "op": "Relu", "input": ["s"]},
        {"name": "lo", "op": "Minimum", "input": ["r", "six"]},
        {"name": "y", "op": "Maximum", "input": ["lo", "zero"]},
    ]
    consts = {"k1": k1, "k2": k2, "bias": bias, "alpha": alpha, "scale": scale, "shift": shift,
              "six": np.array(6.0, np.float32), "zero": np.array(0.0, np.float32)}
    graph = TFJSGraph(_write_graph(tmp_path, [-1, 5, 5, 2], nodes, consts), "cpu")
    # what the fold must achieve: only convolutions run, and the 1x1 one carries the BN's scale and shift
    # (folded into its weight and bias) and the ReLU6 clamp
    steps = graph._plan.steps
    assert all(isinstance(s.fn, _Conv) for s in steps), [type(s.fn).__name__ for s in steps]
    first, second = (s.fn for s in steps if isinstance(s.fn, _Conv))
    assert first.alpha is not None and (second.lo, second.hi) == (0.0, 6.0)
    np.testing.assert_allclose(second.weight.numpy(), (k2 * scale).transpose(3, 2, 0, 1), rtol=1e-6)
    assert second.bias is not None
    np.testing.assert_allclose(second.bias.numpy(), shift, rtol=1e-6)
    a = _ref_conv(x, k1, "SAME", 1) + bias
    a = np.where(a < 0, a * alpha, a)
    want = np.clip(_ref_conv(a, k2, "VALID", 1) * scale + shift, 0, 6)
    np.testing.assert_allclose(graph(torch.from_numpy(x))["y"].numpy(), want, atol=1e-4)


def test_layout_sensitive_ops_and_inplace_safety(tmp_path: Path) -> None:
    """Pad (channels), residual AddV2, Mean over H, W, Reshape, Softmax; the caller's input stays untouched."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 3, 2)).astype(np.float32)
    pads = np.array([[0, 0], [1, 0], [0, 2], [0, 2]], np.int32)
    nodes: list[dict[str, Any]] = [
        {"name": "p", "op": "Pad", "input": ["x", "pads"]},
        {"name": "r", "op": "Relu", "input": ["p"]},
        {"name": "add", "op": "AddV2", "input": ["r", "p"]},
        {"name": "mean", "op": "Mean", "input": ["add", "axes"], "attr": {"keep_dims": {"b": False}}},
        {"name": "flat", "op": "Reshape", "input": ["add", "shape"]},
        {"name": "soft", "op": "Softmax", "input": ["flat"]},
        {"name": "id", "op": "Identity", "input": ["x"]},
        {"name": "view", "op": "Identity", "input": ["add"]},
        {"name": "relu2", "op": "Relu", "input": ["add"]},  # last reader of add, whose view is an output
    ]
    consts = {"pads": pads, "axes": np.array([1, 2], np.int32), "shape": np.array([-1, 5 * 5 * 4], np.int32)}
    graph = TFJSGraph(_write_graph(tmp_path, [-1, 4, 3, 2], nodes, consts), "cpu", outputs=["mean", "soft", "id", "view", "relu2"])
    xt = torch.from_numpy(x.copy())
    out = graph(xt)
    p = np.pad(x, pads)
    add = np.maximum(p, 0) + p
    flat = add.reshape(2, -1)
    soft = np.exp(flat - flat.max(1, keepdims=True))
    np.testing.assert_allclose(out["mean"].numpy(), add.mean((1, 2)), atol=1e-6)
    np.testing.assert_allclose(out["soft"].numpy(), soft / soft.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(out["id"].numpy(), x)
    np.testing.assert_allclose(out["view"].numpy(), add, atol=1e-6)
    np.testing.assert_allclose(out["relu2"].numpy(), np.maximum(add, 0), atol=1e-6)
    np.testing.assert_array_equal(xt.numpy(), x)


def test_free_batch_runs_a_batch_of_one_graph_on_any_batch(tmp_path: Path) -> None:
    """A graph exported for batch 1 (input [1, ...], Reshape to [1, ...]) runs each example alike."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    k = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    nodes: list[dict[str, Any]] = [
        {"name": "c", "op": "Conv2D", "input": ["x", "k"], "attr": _conv_attrs("SAME", 2)},
        {"name": "p", "op": "Pad", "input": ["c", "pads"]},  # channel padding, as BlazeFace does
        {"name": "y", "op": "Reshape", "input": ["p", "shape"]},
    ]
    consts = {"k": k, "pads": np.array([[0, 0], [0, 0], [0, 0], [0, 2]], np.int32),
              "shape": np.array([1, 4, 6], np.int32)}
    path = _write_graph(tmp_path, [1, 4, 4, 2], nodes, consts)
    with pytest.raises(ValueError, match="must have NHWC shape"):
        TFJSGraph(path, "cpu")(torch.from_numpy(x))
    graph = TFJSGraph(path, "cpu", free_batch=True)
    got = graph(torch.from_numpy(x))["y"].numpy()
    want = np.pad(_ref_conv(x, k, "SAME", 2), [[0, 0], [0, 0], [0, 0], [0, 2]]).reshape(3, 4, 6)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(graph(torch.from_numpy(x[1:2]))["y"].numpy(), want[1:2], atol=1e-5)


def test_fused_matmul_and_quantized_weights(tmp_path: Path) -> None:
    """float16 and uint8-affine weights dequantize as TF.js does (q * scale + min)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 1, 1, 6)).astype(np.float32)
    w, b = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    nodes: list[dict[str, Any]] = [
        {"name": "flat", "op": "Reshape", "input": ["x", "shape"]},
        {"name": "y", "op": "_FusedMatMul", "input": ["flat", "w", "b"],
         "attr": {"fused_ops": {"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}},
                  "transpose_a": {"b": False}, "transpose_b": {"b": False}}},
        {"name": "z", "op": "Sigmoid", "input": ["y"]},
    ]
    consts = {"shape": np.array([-1, 6], np.int32), "w": w, "b": b}
    graph = TFJSGraph(_write_graph(tmp_path, [-1, 1, 1, 6], nodes, consts, {"w": "uint8", "b": "float16"}), "cpu")
    scale = (w.max() - w.min()) / 255
    wq = np.round((w - w.min()) / scale) * scale + w.min()
    want = 1 / (1 + np.exp(-np.maximum(x.reshape(3, 6) @ wq + b.astype(np.float16).astype(np.float32), 0)))
    np.testing.assert_allclose(graph(torch.from_numpy(x))["z"].numpy(), want, atol=1e-5)


def test_unknown_op_is_named(tmp_path: Path) -> None:
    path = _write_graph(tmp_path, [-1, 2, 2, 1], [{"name": "weird", "op": "Erfinv", "input": ["x"]}], {})
    with pytest.raises(UnsupportedOpError, match=r"'Erfinv'.*'weird'"):
        TFJSGraph(path, "cpu")


def test_truncated_or_missing_weights_say_what_to_run(tmp_path: Path) -> None:
    k = np.ones((3, 3, 1, 2), np.float32)
    nodes = [{"name": "y", "op": "Conv2D", "input": ["x", "k"], "attr": _conv_attrs("SAME", 1)}]
    path = _write_graph(tmp_path, [-1, 4, 4, 1], nodes, {"k": k})
    data = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(data[:-7])
    with pytest.raises(weights.WeightsError, match=r"model\.bin.*truncated.*tlgan models fetch facemesh"):
        TFJSGraph(path, "cpu", model="facemesh")
    (tmp_path / "model.bin").write_bytes(data + b"\0" * 4)
    with pytest.raises(weights.WeightsError, match=r"model\.bin.*corrupt.*tlgan models fetch"):
        TFJSGraph(path, "cpu")
    (tmp_path / "model.bin").unlink()
    with pytest.raises(weights.WeightsError, match=r"model\.bin.*tlgan models fetch"):
        TFJSGraph(path, "cpu")


# --------------------------------------------------------------------------- the real models vs other runtimes


def _needs(*models: str):
    missing = [m for m in models if weights.status(m) != "present"]
    return pytest.mark.skipif(bool(missing), reason=f"weights not fetched: run `tlgan models fetch {' '.join(missing)}`")


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """The oracle fixtures' faces (stored, so the comparison is exact on any machine)."""
    return torch.from_numpy(np.load(DATA / "oracle_faces.npz")["images"])


@pytest.mark.models
@_needs("digiface-dcgan")
def test_oracle_faces_regenerate_from_their_seed(faces: torch.Tensor) -> None:
    from tlgan.generators import load_generator

    stored = np.load(DATA / "oracle_faces.npz")
    g = load_generator(str(stored["generator"]), device="cpu")
    regen = g.render(g.sample(len(faces), seed=int(stored["seed"]))).numpy().astype(int)
    assert np.abs(regen - faces.numpy()).max() <= 1  # float rounding may move a pixel by one level


@pytest.mark.models
@_needs("facemesh")
def test_facemesh_matches_mediapipe_tflite(faces: torch.Tensor) -> None:
    """Observed: max 1.1e-4 px (first pass), 1e-4 px (two passes), face flag 1e-7 apart."""
    from tlgan.extractors.human import FaceMesh

    oracle = np.load(DATA / "oracle_facemesh.npz")
    mesh = FaceMesh("cpu")
    images = torch.cat([faces, faces.rot90(2, (1, 2))])  # as make_tfjs_oracles.mesh_inputs
    lm, prob = mesh.net(mesh.first_pass_input(images)[0])
    np.testing.assert_allclose(lm.numpy(), oracle["first_landmarks"], atol=0.01)
    np.testing.assert_allclose(prob.numpy(), oracle["first_prob"], atol=1e-4)
    out = mesh(images)
    np.testing.assert_allclose(out.landmarks.numpy(), oracle["landmarks"], atol=0.01)
    np.testing.assert_allclose(out.face_prob.numpy(), oracle["face_prob"], atol=1e-4)


@pytest.mark.models
@_needs("faceres")
def test_faceres_matches_tfjs_runtime(faces: torch.Tensor) -> None:
    """Observed: P(male) 5e-7, age bins 8e-7, descriptor 3.4e-6 apart (descriptor values up to 2.1)."""
    from tlgan.extractors.human import FaceRes

    oracle = np.load(DATA / "oracle_faceres.npz")
    out = FaceRes("cpu")(faces)
    np.testing.assert_allclose(out.male.numpy(), oracle["male"], atol=1e-4)
    np.testing.assert_allclose(out.age.numpy(), oracle["age_probs"] @ np.arange(100), atol=1e-3)
    np.testing.assert_allclose(out.descriptor.numpy(), oracle["descriptor"], atol=1e-4)


@pytest.mark.models
@_needs("human-emotion")
def test_human_emotion_matches_tfjs_runtime(faces: torch.Tensor) -> None:
    """Observed: 1e-6 apart."""
    from tlgan.extractors.human import HumanEmotion

    np.testing.assert_allclose(HumanEmotion("cpu")(faces).numpy(), np.load(DATA / "oracle_emotion.npz")["probs"],
                               atol=1e-4)


# --------------------------------------------------------------------------- outputs of the classes


@pytest.mark.models
@_needs("faceres", "facemesh", "human-emotion")
@pytest.mark.parametrize("size", [64, 150])
def test_outputs_have_sane_shapes_and_ranges(faces: torch.Tensor, size: int) -> None:
    from tlgan.extractors.human import HUMAN_EMOTION_LABELS, FaceMesh, FaceRes, HumanEmotion

    images = faces[:4]
    if size != 64:  # any input size works; landmarks come back in that image's pixels
        images = F.interpolate(images.permute(0, 3, 1, 2).float(), (size, size), mode="bilinear", antialias=True)
        images = images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    res = FaceRes("cpu", batch_size=3)(images)
    assert res.male.shape == res.age.shape == (4,) and res.descriptor.shape == (4, 1024)
    assert ((res.male >= 0) & (res.male <= 1)).all() and ((res.age >= 0) & (res.age <= 99)).all()
    assert torch.isfinite(res.descriptor).all()
    mesh = FaceMesh("cpu")(images)
    assert mesh.landmarks.shape == (4, 468, 3) and mesh.face_prob.shape == (4,)
    assert (mesh.face_prob > 0.5).all()  # these four are clear faces
    xy = mesh.landmarks[..., :2]
    assert ((xy > -0.1 * size) & (xy < 1.1 * size)).all()
    assert (mesh.landmarks[:, 152, 1] > mesh.landmarks[:, 10, 1]).all()  # chin below forehead (y down)
    assert (mesh.landmarks[:, 263, 0] > mesh.landmarks[:, 33, 0]).all()  # index 263 is the image-right eye
    probs = HumanEmotion("cpu")(images)
    assert probs.shape == (4, len(HUMAN_EMOTION_LABELS))
    torch.testing.assert_close(probs.sum(1), torch.ones(4))


@pytest.mark.models
@_needs("facemesh")
def test_facemesh_follows_a_rotated_face(faces: torch.Tensor) -> None:
    """Rotate the image 15 degrees: the landmarks rotate with it (checks the pass-2 crop and its inverse)."""
    from tlgan.extractors.human import FaceMesh

    angle = math.radians(15)
    c, s = math.cos(angle), math.sin(angle)
    x = faces.permute(0, 3, 1, 2).float()
    theta = torch.tensor([[c, s, 0.0], [-s, c, 0.0]]).expand(len(x), 2, 3)  # output -> input, about the centre
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    rotated = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    rotated = rotated.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    mesh = FaceMesh("cpu")
    upright, turned = mesh(faces).landmarks[..., :2], mesh(rotated).landmarks[..., :2]
    rot = torch.tensor([[c, -s], [s, c]])
    expected = (upright - 32) @ rot.T + 32
    err = (turned - expected).norm(dim=-1).mean()
    assert err < 1.0, f"landmarks of the rotated face are {err:.2f} px off on average"  # observed ~0.4
