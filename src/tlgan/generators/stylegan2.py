"""StyleGAN2 in plain PyTorch, and loaders for the files people train it into.

One architecture, three on-disk layouts:

* NVlabs ``stylegan2-ada-pytorch`` network pickles (``training.networks.Generator``),
* the ``stylegan3`` repository's StyleGAN2 (``training.networks_stylegan2.Generator``),
  the same network with other constructor defaults and flat synthesis kwargs,
* rosinality ``stylegan2-pytorch`` checkpoints (``g_ema`` + ``latent_avg``), whose
  state dict is renamed onto the same module (its up-convolutions are the same
  transposed convolution of the stored kernel, so no flip is needed).

NVlabs pickles are read only through :func:`safe_pickle.load_pickle` (data, never
code); the network is rebuilt from its recorded constructor kwargs with this
module and the weights loaded strictly. Rosinality files go through
``torch.load(weights_only=True)``. Conditional networks (``c_dim > 0``) are refused:
tlgan samples without labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..weights import WeightsError
from .ops import (
    FullyConnectedLayer,
    MappingNetwork,
    activation_gain,
    bias_act,
    check_activation,
    conv2d_resample,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)
from .safe_pickle import PersistentObject, load_pickle

NOISE_MODES = ("const", "none", "random")
Filter = Sequence[float] | torch.Tensor  # FIR taps (1-D, outer-producted) or a 2-D filter


def stylegan2_channels(img_resolution: int, channel_base: int = 32768, channel_max: int = 512) -> dict[int, int]:
    """Feature maps per resolution as the NVlabs constructors compute them: ``min(base // res, max)``."""
    return {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, _log2(img_resolution) + 1)}


def _log2(resolution: int) -> int:
    k = round(math.log2(resolution)) if resolution > 0 else 0
    if resolution < 4 or 2 ** k != resolution:
        raise ValueError(f"StyleGAN2 needs a power-of-two resolution >= 4, got {resolution}")
    return k


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up), per-pixel noise, bias, activation with gain and clamp."""

    resample_filter: torch.Tensor
    noise_const: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, activation: str = "lrelu", resample_filter: Filter = (1, 3, 3, 1),
                 conv_clamp: float | None = None, kernel_size: int = 3) -> None:
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp, self.padding = activation, conv_clamp, kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", fused: bool = True,
                gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                dtype=x.dtype) * self.noise_strength.to(x.dtype)
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional 2x upsampling (the resnet skip path: 1x1, no bias)."""

    resample_filter: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, up: int = 1,
                 resample_filter: Filter = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.up, self.padding = up, kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, padding=self.padding)
        return bias_act(x, self.bias, gain=gain)


class SynthesisBlock(nn.Module):
    """One resolution: const input (4x4) or up-conv, a second conv, and ToRGB per ``architecture``."""

    resample_filter: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Filter = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True, activation: str = "lrelu") -> None:
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown StyleGAN2 synthesis architecture {architecture!r}")
        self.in_channels, self.architecture, self.is_last = in_channels, architecture, is_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        layer: dict[str, Any] = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise, activation=activation,
                     resample_filter=resample_filter, conv_clamp=conv_clamp)
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                fused: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = iter(ws.unbind(dim=1))
        if x is None:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, next(w), noise_mode, fused)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w), noise_mode, fused)
            x = y + self.conv1(x, next(w), noise_mode, fused, gain=math.sqrt(0.5))
        else:
            x = self.conv0(x, next(w), noise_mode, fused)
            x = self.conv1(x, next(w), noise_mode, fused)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, next(w), fused)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image, one :class:`SynthesisBlock` ``b{res}`` per resolution from 4."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channels: Mapping[int, int],
                 **block_kwargs: Any) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, _log2(img_resolution) + 1)]
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                                   is_last=res == img_resolution, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)
        self.fused_modconv = True

    def ws_index(self) -> list[tuple[str, int]]:
        """(layer path, ws index it reads) for every modulated layer, in order."""
        out, i = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            names = (["conv0"] if block.in_channels else []) + ["conv1"] + (["torgb"] if block.num_torgb else [])
            out += [(f"b{res}.{name}", i + k) for k, name in enumerate(names)]
            i += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        i = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws.narrow(1, i, block.num_conv + block.num_torgb), noise_mode,
                           self.fused_modconv)
            i += block.num_conv
        assert img is not None  # the last block always has a ToRGB
        return img


class StyleGAN2(nn.Module):
    """The StyleGAN2 generator: ``mapping`` (z -> ws) and ``synthesis`` (ws -> image), NVlabs state-dict names.

    ``channels`` maps each resolution 4..img_resolution to its feature maps
    (see :func:`stylegan2_channels`). Images come out raw NCHW in the
    network's own range. ``info`` describes where the weights came from.
    """

    def __init__(self, z_dim: int, w_dim: int, img_resolution: int, channels: Mapping[int, int],
                 img_channels: int = 3, mapping_layers: int = 8, mapping_layer_features: int | None = None,
                 mapping_lr_multiplier: float = 0.01, mapping_activation: str = "lrelu", architecture: str = "skip",
                 conv_clamp: float | None = None, resample_filter: Filter = (1, 3, 3, 1),
                 use_noise: bool = True, activation: str = "lrelu") -> None:
        super().__init__()
        check_activation(activation)
        self.z_dim, self.w_dim, self.img_resolution, self.img_channels = z_dim, w_dim, img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channels, architecture=architecture,
                                          conv_clamp=conv_clamp, resample_filter=resample_filter,
                                          use_noise=use_noise, activation=activation)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers, mapping_layer_features,
                                      mapping_activation, mapping_lr_multiplier)
        self.info: dict[str, Any] = {
            "family": "stylegan2", "resolution": img_resolution, "z_dim": z_dim, "w_dim": w_dim,
            "num_ws": self.num_ws, "mapping_layers": mapping_layers, "architecture": architecture,
            "channels": {int(r): int(channels[r]) for r in self.synthesis.block_resolutions},
            "conv_clamp": conv_clamp}

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre (w_dim,): the file's ``w_avg`` / ``latent_avg``."""
        return self.mapping.w_avg

    @property
    def fused_modconv(self) -> bool:
        """Grouped per-sample convolution (True, the originals' inference path) or shared convolution (False)."""
        return self.synthesis.fused_modconv

    @fused_modconv.setter
    def fused_modconv(self, value: bool) -> None:
        self.synthesis.fused_modconv = bool(value)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const",
                truncation_cutoff: int | None = None) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode=noise_mode)

    def style_weights(self) -> list[tuple[int, torch.Tensor]]:
        """(ws index, (channels, w_dim) affine weight as applied) of every modulated layer, ToRGB included (SeFa)."""
        out = []
        for path, i in self.synthesis.ws_index():
            layer = cast("SynthesisLayer | ToRGBLayer", self.synthesis.get_submodule(path))
            weight = layer.affine.applied_weight()
            if isinstance(layer, ToRGBLayer):
                weight = weight * layer.weight_gain
            out.append((i, weight.detach()))
        return out


# ---------------------------------------------------------------- NVlabs pickles

_MAPPING_KEYS = {"num_layers", "layer_features", "activation", "lr_multiplier", "embed_features", "w_avg_beta"}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture", "resample_filter",
                   "use_noise", "activation", "channels_last", "fp16_channels_last", "fused_modconv_default"}
# constructor defaults that differ between the two NVlabs repositories
_FLAVOUR_DEFAULTS: dict[str, dict[str, Any]] = {
    "stylegan2-ada": dict(conv_clamp=None, num_fp16_res=0),
    "stylegan3-repo": dict(conv_clamp=256, num_fp16_res=4),
}
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def generator_from_nvlabs_kwargs(init_kwargs: Mapping[str, Any], init_args: Sequence[Any] = (),
                                 flavour: str | None = None, source: str = "this network") -> StyleGAN2:
    """Build (untrained) the network an NVlabs StyleGAN2 ``Generator(*init_args, **init_kwargs)`` describes.

    ``flavour`` is ``"stylegan2-ada"`` (``synthesis_kwargs`` nested, conv_clamp
    default None) or ``"stylegan3-repo"`` (synthesis kwargs flat, conv_clamp
    default 256); None guesses it from the kwargs' layout.
    """
    kwargs = dict(zip(_GENERATOR_ARGS, init_args, strict=False))
    kwargs.update(init_kwargs)
    if flavour is None:
        flavour = "stylegan2-ada" if "synthesis_kwargs" in kwargs or not (set(kwargs) & _SYNTHESIS_KEYS) \
            else "stylegan3-repo"
    synthesis = dict(_FLAVOUR_DEFAULTS[flavour])
    synthesis.update(kwargs.pop("synthesis_kwargs", None) or {})
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    for key in list(kwargs):
        if key in _SYNTHESIS_KEYS:
            synthesis[key] = kwargs.pop(key)
    z_dim, c_dim, w_dim = (int(kwargs.pop(k, 0)) for k in ("z_dim", "c_dim", "w_dim"))
    img_resolution, img_channels = int(kwargs.pop("img_resolution", 0)), int(kwargs.pop("img_channels", 3))
    unknown = sorted(set(kwargs) | (set(mapping) - _MAPPING_KEYS) | (set(synthesis) - _SYNTHESIS_KEYS))
    if unknown:
        raise WeightsError(f"{source}: StyleGAN2 constructor options tlgan does not implement: {', '.join(unknown)}; "
                           "please report this file's format")
    if c_dim:
        raise WeightsError(f"{source} is a conditional generator (c_dim={c_dim}); tlgan samples without class "
                           "labels, so conditional StyleGAN2 networks are not supported")
    if z_dim <= 0 or w_dim <= 0:
        raise WeightsError(f"{source}: z_dim={z_dim}, w_dim={w_dim}; tlgan needs a generator with a latent z")
    try:
        channels = stylegan2_channels(img_resolution, int(synthesis.get("channel_base", 32768)),
                                      int(synthesis.get("channel_max", 512)))
        net = StyleGAN2(
            z_dim, w_dim, img_resolution, channels, img_channels=img_channels,
            mapping_layers=int(mapping.get("num_layers", 8)), mapping_layer_features=mapping.get("layer_features"),
            mapping_lr_multiplier=float(mapping.get("lr_multiplier", 0.01)),
            mapping_activation=mapping.get("activation", "lrelu"),
            architecture=synthesis.get("architecture", "skip"), conv_clamp=synthesis["conv_clamp"],
            resample_filter=list(synthesis.get("resample_filter") or (1, 3, 3, 1)),
            use_noise=bool(synthesis.get("use_noise", True)), activation=synthesis.get("activation", "lrelu"))
    except ValueError as e:
        raise WeightsError(f"{source}: unsupported StyleGAN2 configuration: {e}") from e
    net.info.update(format=f"nvlabs-{flavour}", num_fp16_res=int(synthesis.get("num_fp16_res") or 0))
    return net


def _nvlabs_flavour(net: PersistentObject) -> str | None:
    """Which repository wrote ``net``, from attributes its blocks record (None when they record none)."""
    try:
        block = net.child("synthesis").child("b4")
    except (KeyError, TypeError, AttributeError):
        return None
    if "fused_modconv_default" in block.state:
        return "stylegan3-repo"
    return "stylegan2-ada" if "architecture" in block.state else None


def is_nvlabs_stylegan2(net: Any) -> bool:
    """Whether a captured network is a StyleGAN2 ``Generator`` (a ``synthesis.b4`` block, no StyleGAN3 input)."""
    if not isinstance(net, PersistentObject) or net.class_name != "Generator":
        return False
    modules = net.state.get("_modules") or {}
    synthesis = modules.get("synthesis")
    return isinstance(synthesis, PersistentObject) and "b4" in (synthesis.state.get("_modules") or {})


def _describe_nvlabs(net: Any) -> str:
    if not isinstance(net, PersistentObject):
        return f"a {type(net).__name__}, not a network"
    synthesis = (net.state.get("_modules") or {}).get("synthesis")
    if isinstance(synthesis, PersistentObject) and "input" in (synthesis.state.get("_modules") or {}):
        return "a StyleGAN3 generator"
    return f"a {net.class_name}, not a StyleGAN2 Generator"


def generator_from_nvlabs(net: PersistentObject, source: str = "this network") -> StyleGAN2:
    """Rebuild a captured NVlabs StyleGAN2 ``Generator`` with this module and load its weights strictly."""
    if not is_nvlabs_stylegan2(net):
        raise WeightsError(f"{source} is {_describe_nvlabs(net)}; it cannot be read as StyleGAN2")
    flavour = _nvlabs_flavour(net)
    kwargs = net.init_kwargs
    # the layers record the conv_clamp they really use; it wins over a guessed constructor default
    layer = net.child("synthesis").child("b4").child("conv1").state
    if "conv_clamp" in layer and "conv_clamp" not in kwargs and "conv_clamp" not in (
            kwargs.get("synthesis_kwargs") or {}):
        if "synthesis_kwargs" in kwargs:
            kwargs["synthesis_kwargs"] = {**kwargs["synthesis_kwargs"], "conv_clamp": layer["conv_clamp"]}
        else:
            kwargs["conv_clamp"] = layer["conv_clamp"]
    init_args = tuple(net.state.get("_init_args") or ())
    check_stylegan_settings({**dict(zip(_GENERATOR_ARGS, init_args, strict=False)), **kwargs}, net.state_dict(), source)
    model = generator_from_nvlabs_kwargs(kwargs, init_args, flavour, source)
    _load_strict(model, net.state_dict(), source)
    return model.eval()


def check_stylegan_settings(kwargs: Mapping[str, Any], tensors: Mapping[str, Any], source: str) -> None:
    """Check a pickle's constructor settings against the tensors it actually holds, before building anything.

    Settings are only numbers in the file: ``z_dim=2e7`` would build a network of gigabytes, and
    ``img_resolution=16384`` one whose layers have no channels. The tensors are bounded by the file's size,
    so settings that must match them cannot ask for more.
    """
    def number(key: str) -> Any:
        v = kwargs.get(key)
        return v if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) else repr(v)

    def shape(key: str) -> tuple[int, ...] | None:
        t = tensors.get(key)
        return tuple(t.shape) if t is not None and hasattr(t, "shape") else None

    z_dim, w_dim, res = number("z_dim"), number("w_dim"), number("img_resolution")
    blocks = sorted(int(k.split(".")[1][1:]) for k in tensors
                    if k.startswith("synthesis.b") and k.split(".")[1][1:].isdigit())
    w_avg = shape("mapping.w_avg")
    fc0 = shape("mapping.fc0.weight")
    wrong = []
    if w_avg is not None and w_dim != w_avg[0]:
        wrong.append(f"w_dim={w_dim} but mapping.w_avg has {w_avg[0]}")
    if fc0 is not None and z_dim != fc0[1]:
        wrong.append(f"z_dim={z_dim} but mapping.fc0 takes {fc0[1]} inputs")
    if blocks and res != blocks[-1]:
        wrong.append(f"img_resolution={res} but the synthesis network's last block is b{blocks[-1]}")
    if not blocks or w_avg is None or fc0 is None:
        wrong.append("it lacks the tensors synthesis.b*, mapping.w_avg or mapping.fc0.weight")
    if wrong:
        raise WeightsError(f"{source}: its settings do not match its weights ({'; '.join(wrong)}); the file is "
                           "damaged or not a StyleGAN2 generator")


def _load_strict(model: StyleGAN2, state: Mapping[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        detail = " ".join(line.strip() for line in str(e).splitlines()[1:])
        detail = detail[:400] + (" ..." if len(detail) > 400 else "")
        raise WeightsError(f"{source}: the weights do not fit the StyleGAN2 network its settings describe "
                           f"({detail}); the file may be damaged or of another variant") from e


def load_nvlabs_stylegan2(path: str | Path, network: str | None = None) -> StyleGAN2:
    """Load a StyleGAN2 network from an NVlabs pickle (stylegan2-ada-pytorch or stylegan3 repo) as data.

    ``network`` picks the snapshot entry; by default ``G_ema`` (the averaged
    generator the originals sample from), else ``G``.
    """
    return build_nvlabs(load_pickle(path), network, path)


def build_nvlabs(data: Any, network: str | None = None, path: str | Path = "the file") -> StyleGAN2:
    """The StyleGAN2 generator of an already-read NVlabs snapshot (see ``load_nvlabs_stylegan2``)."""
    if not isinstance(data, dict):
        raise WeightsError(f"{path} is a pickle but not an NVlabs network snapshot (a dict with G_ema/G)")
    names = [n for n, v in data.items() if isinstance(v, PersistentObject)]
    if network is None:
        network = next((n for n in ("G_ema", "G") if n in data), None)
        if network is None:
            raise WeightsError(f"{path} holds no G_ema or G network (it has: {', '.join(map(str, data)) or 'nothing'})")
    if network not in names:
        raise WeightsError(f"{path} has no network {network!r}; it holds {', '.join(names) or 'none'}")
    model = generator_from_nvlabs(data[network], f"{path} [{network}]")
    model.info.update(network=network, truncation_centre="w_avg (from the file)")
    return model


# ---------------------------------------------------------------- rosinality

def _rosinality_n_mlp(sd: Mapping[str, torch.Tensor]) -> int:
    n = 0
    while f"style.{n + 1}.weight" in sd:
        n += 1
    return n


def generator_from_rosinality(sd: Mapping[str, torch.Tensor], latent_avg: torch.Tensor | None = None,
                              lr_mlp: float = 0.01, source: str = "this state dict") -> StyleGAN2:
    """The StyleGAN2 module for a rosinality ``Generator`` state dict, renamed onto NVlabs keys and loaded strictly.

    Sizes come from tensor shapes: ``style_dim`` and ``n_mlp`` from ``style.*``,
    the resolution from the number of ``to_rgbs``, every width from its conv
    weight, the blur kernel from the stored buffer. ``lr_mlp`` (not stored)
    is the constructor default 0.01. Without ``latent_avg`` the truncation
    centre is the mean w of 4096 fixed samples, as the repo's ``mean_latent``.
    """
    n_mlp = _rosinality_n_mlp(sd)
    if n_mlp == 0 or "input.input" not in sd or "conv1.conv.weight" not in sd:
        raise WeightsError(f"{source} is not a rosinality stylegan2-pytorch generator state dict "
                           "(no style.1.weight / input.input / conv1.conv.weight)")
    n_up = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    resolution = 2 ** (n_up + 2)
    style_dim, z_dim = sd["style.1.weight"].shape
    channels = {4: int(sd["input.input"].shape[1])}
    for i in range(n_up):
        channels[2 ** (i + 3)] = int(sd[f"convs.{2 * i}.conv.weight"].shape[1])
    kernel = sd.get("convs.0.conv.blur.kernel")
    img_channels = int(sd["to_rgb1.conv.weight"].shape[1])
    model = StyleGAN2(int(z_dim), int(style_dim), resolution, channels, img_channels=img_channels,
                      mapping_layers=n_mlp, mapping_lr_multiplier=lr_mlp,
                      resample_filter=kernel.float() if kernel is not None else (1, 3, 3, 1))
    state: dict[str, torch.Tensor] = {}

    def styled(src: str, dst: str, noise: int) -> None:
        state[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        state[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        state[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        state[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
        state[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
        const = sd.get(f"noises.noise_{noise}")
        if const is None:  # files from before the repo stored its noise: a fixed draw keeps outputs reproducible
            res = cast(SynthesisLayer, model.get_submodule(dst)).resolution
            const = torch.randn(res, res, generator=torch.Generator().manual_seed(noise))
        state[f"{dst}.noise_const"] = const.reshape(const.shape[-2:])

    def to_rgb(src: str, dst: str) -> None:
        state[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        state[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        state[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        state[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)

    try:
        for i in range(n_mlp):
            state[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
            state[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
        state["synthesis.b4.const"] = sd["input.input"][0]
        styled("conv1", "synthesis.b4.conv1", 0)
        to_rgb("to_rgb1", "synthesis.b4.torgb")
        for i in range(n_up):
            b = f"synthesis.b{2 ** (i + 3)}"
            styled(f"convs.{2 * i}", f"{b}.conv0", 2 * i + 1)
            styled(f"convs.{2 * i + 1}", f"{b}.conv1", 2 * i + 2)
            to_rgb(f"to_rgbs.{i}", f"{b}.torgb")
    except KeyError as e:
        raise WeightsError(f"{source}: rosinality generator state dict lacks {e.args[0]}; the file is incomplete "
                           "or of another variant") from e
    state.update((name, buf) for name, buf in model.named_buffers() if name.endswith("resample_filter"))
    state["mapping.w_avg"] = latent_avg.reshape(-1) if latent_avg is not None else model.mapping.w_avg
    _load_strict(model, state, source)
    if latent_avg is None:
        model.mapping.w_avg.copy_(mean_w(model))
    model.info.update(format="rosinality", noise_const="from the file" if "noises.noise_0" in sd
                      else "fixed draw (the file stores no noise)",
                      truncation_centre="latent_avg (from the file)" if latent_avg is not None
                      else "mean of 4096 mapped z (the file has no latent_avg)")
    return model.eval()


@torch.no_grad()
def mean_w(model: StyleGAN2, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """Mean of ``mapping(z)`` over ``n`` z from a fixed seed: a truncation centre for files that store none."""
    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed))
    return model.mapping(z.to(model.w_avg.device))[:, 0].mean(0)


def load_rosinality(path: str | Path, network: str = "g_ema", lr_mlp: float = 0.01) -> StyleGAN2:
    """Load a rosinality stylegan2-pytorch checkpoint (``convert_weight.py`` output or a ``train.py`` checkpoint).

    ``network`` is ``g_ema`` (default, the averaged generator) or ``g``; a bare
    generator state dict is accepted too. ``latent_avg`` becomes ``w_avg``.
    """
    from .checkpoints import read_checkpoint

    return build_rosinality(read_checkpoint(path), network, path, lr_mlp)


def build_rosinality(ck: Any, network: str | None = None, path: str | Path = "the file",
                     lr_mlp: float = 0.01) -> StyleGAN2:
    """The generator of an already-read rosinality checkpoint (see ``load_rosinality``)."""
    network = network or "g_ema"
    if not isinstance(ck, dict):
        raise WeightsError(f"{path} holds a {type(ck).__name__}, not a rosinality checkpoint dict")
    if "style.1.weight" in ck:
        sd, network = ck, "state_dict"
    elif network in ck and isinstance(ck[network], dict):
        sd = ck[network]
    else:
        raise WeightsError(f"{path} has no {network!r} generator (keys: {', '.join(map(str, ck))}); "
                           "a rosinality checkpoint holds g_ema (and g, d, ... when saved by train.py)")
    latent_avg = ck.get("latent_avg") if network != "state_dict" else None
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        latent_avg = None
    model = generator_from_rosinality(sd, latent_avg, lr_mlp, f"{path} [{network}]")
    model.info.update(network=network)
    return model
