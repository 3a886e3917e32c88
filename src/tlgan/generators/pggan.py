"""The PGGAN family (Karras et al. 2018, progressive growing): one PyTorch network, two on-disk layouts.

TL-GAN was built on this generator. Two formats hold it:

* the TF1 pickle of tkarras/progressive_growing_of_gans (``(G, D, Gs)`` of
  ``tfutil.Network`` states; ``karras2018iclr-celebahq-1024x1024.pkl``), read
  as data through :func:`tlgan.generators.safe_pickle.load_pickle`;
* the ``torch.save`` checkpoint of pytorch_GAN_zoo's PGAN (``config``,
  ``netG``, ``avgG``: the torch.hub celebAHQ files), read with
  ``torch.load(weights_only=True)`` and a stub for its pickled config class.

Both are the same architecture (pixel-normalised z -> dense 4x4 -> conv,
then per resolution nearest 2x upscale + two 3x3 convs, leaky ReLU and pixel
norm after each, a 1x1 ToRGB per resolution, equalized learning rate), so one
module serves both. They differ only in conventions that :class:`PGGANConfig`
names: the zoo multiplies the layer output *including the bias* by the He
constant and gives every layer gain sqrt(2); TF adds the bias after the
scaled weight, uses gain sqrt(2)/4 for the 4x4 dense and 1 for ToRGB, keeps
one dense bias per channel, and fuses upscale + conv into a transposed
convolution (``fused_scale``). There is no mapping network: the only latent
space is z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsError
from .safe_pickle import TFNetwork, load_pickle, record_class

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class PGGANConfig:
    """Architecture and conventions of one PGGAN generator.

    ``channels[i]`` is the number of feature maps at resolution ``4 * 2**i``;
    the output resolution is ``4 * 2**(len(channels) - 1)``. ``lod`` is the
    level of detail blended in at the top (0 = full resolution; a fraction
    cross-fades the last ToRGB with the upscaled previous one, as during a
    fade-in; TF's ``lod`` variable, the zoo's ``alpha``). The module copies it
    to its ``lod`` attribute, which may be changed after loading.
    """

    z_dim: int
    channels: tuple[int, ...]
    img_channels: int = 3
    normalize_latents: bool = True
    use_pixelnorm: bool = True
    pixelnorm_epsilon: float = 1e-8
    leaky_slope: float | None = 0.2  # None: plain ReLU
    use_wscale: bool = True
    dense_gain: float = SQRT2 / 4
    conv_gain: float = SQRT2
    torgb_gain: float = 1.0
    scale_bias: bool = False  # zoo: the He constant multiplies conv(x, w) + b
    dense_bias_per_channel: bool = True  # TF: one bias per 4x4 feature map, added after the reshape
    fused_scale: bool = True  # TF: upscale2d + 3x3 conv as one stride-2 transposed conv
    output_activation: str | None = None  # None or "tanh"
    lod: float = 0.0

    @property
    def resolution(self) -> int:
        return 4 * 2 ** (len(self.channels) - 1)


def pixel_norm(x: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    """Scale each feature vector (dim 1) to unit mean square."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + epsilon)


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upscaling by an integer factor (exact copies, like the originals' tile/expand)."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)


class EqualizedConv2d(nn.Module):
    """A conv with weights N(0,1) scaled at run time by ``gain / sqrt(fan_in)`` (equalized learning rate).

    ``up=True`` is TF's fused ``upscale2d_conv2d``: the 3x3 kernel, stored as
    ``(in, out, 3, 3)``, is padded and summed over its four 1-pixel shifts into a
    4x4 kernel applied as a stride-2 transposed convolution, which equals
    nearest upscaling followed by the 3x3 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, gain: float, use_wscale: bool,
                 scale_bias: bool, up: bool = False) -> None:
        super().__init__()
        shape = (in_channels, out_channels, kernel, kernel) if up else (out_channels, in_channels, kernel, kernel)
        self.weight = nn.Parameter(torch.randn(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.wscale = gain / math.sqrt(in_channels * kernel * kernel) if use_wscale else 1.0
        self.scale_bias = scale_bias
        self.up = up
        self.padding = kernel // 2

    def applied_weight(self) -> torch.Tensor:
        """The kernel as the convolution uses it (equalized-lr constant included)."""
        return self.weight * self.wscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            w = F.pad(self.applied_weight(), (1, 1, 1, 1))
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            return F.conv_transpose2d(x, w, self.bias, stride=2, padding=1)
        if self.scale_bias:
            return F.conv2d(x, self.weight, self.bias, padding=self.padding) * self.wscale
        return F.conv2d(x, self.applied_weight(), self.bias, padding=self.padding)


class EqualizedDense(nn.Module):
    """z -> (N, C, 4, 4): a fully connected layer with equalized lr, reshaped channel-major."""

    def __init__(self, z_dim: int, channels: int, gain: float, use_wscale: bool, scale_bias: bool,
                 bias_per_channel: bool) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.randn(channels * 16, z_dim))
        self.bias = nn.Parameter(torch.zeros(channels if bias_per_channel else channels * 16))
        self.wscale = gain / math.sqrt(z_dim) if use_wscale else 1.0
        self.scale_bias = scale_bias
        self.bias_per_channel = bias_per_channel

    def applied_weight(self) -> torch.Tensor:
        return self.weight * self.wscale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.bias_per_channel:
            x = F.linear(z, self.applied_weight()).view(-1, self.channels, 4, 4)
            return x + self.bias.view(1, -1, 1, 1)
        x = F.linear(z, self.weight, self.bias) * self.wscale if self.scale_bias else F.linear(z, self.applied_weight(), self.bias)
        return x.view(-1, self.channels, 4, 4)


def act_norm(x: torch.Tensor, cfg: PGGANConfig) -> torch.Tensor:
    """What follows every conv: leaky ReLU (or ReLU), then pixel norm if enabled."""
    x = F.leaky_relu(x, cfg.leaky_slope) if cfg.leaky_slope is not None else F.relu(x)
    return pixel_norm(x, cfg.pixelnorm_epsilon) if cfg.use_pixelnorm else x


class PGGANBlock(nn.Module):
    """One resolution doubling: upscale + conv0 (fused or not), conv1."""

    def __init__(self, in_channels: int, out_channels: int, cfg: PGGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fused = cfg.fused_scale
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3, cfg.conv_gain, cfg.use_wscale, cfg.scale_bias,
                                     up=cfg.fused_scale)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3, cfg.conv_gain, cfg.use_wscale, cfg.scale_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.fused else upscale2d(x)
        return act_norm(self.conv1(act_norm(self.conv0(x), self.cfg)), self.cfg)


class PGGANGenerator(nn.Module):
    """A PGGAN generator: ``forward(z) -> img`` raw float NCHW in the network's own range."""

    def __init__(self, cfg: PGGANConfig) -> None:
        super().__init__()
        if len(cfg.channels) < 1:
            raise ValueError("a PGGAN generator needs at least the 4x4 stage")
        if cfg.output_activation not in (None, "tanh"):
            raise ValueError(f"unknown output activation {cfg.output_activation!r}")
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.img_resolution = cfg.resolution
        self.img_channels = cfg.img_channels
        self.info: dict[str, Any] = {"family": "pggan", "resolution": cfg.resolution, "z_dim": cfg.z_dim,
                                     "w_dim": None, "num_ws": None, "mapping_layers": 0, "latent_spaces": ["z"]}
        c0 = cfg.channels[0]
        self.dense = EqualizedDense(cfg.z_dim, c0, cfg.dense_gain, cfg.use_wscale, cfg.scale_bias,
                                    cfg.dense_bias_per_channel)
        self.conv = EqualizedConv2d(c0, c0, 3, cfg.conv_gain, cfg.use_wscale, cfg.scale_bias)
        self.blocks = nn.ModuleList(PGGANBlock(a, b, cfg) for a, b in pairwise(cfg.channels))
        self.torgb = nn.ModuleList(EqualizedConv2d(c, cfg.img_channels, 1, cfg.torgb_gain, cfg.use_wscale,
                                                   cfg.scale_bias) for c in cfg.channels)
        self.lod = float(cfg.lod)

    def features(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each resolution stage (4x4 first)."""
        if self.cfg.normalize_latents:
            z = pixel_norm(z, self.cfg.pixelnorm_epsilon)
        x = act_norm(self.conv(act_norm(self.dense(z), self.cfg)), self.cfg)
        out = [x]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        feats = self.features(z)
        top = len(feats) - 1
        if self.lod <= 0.0:
            img = self.torgb[top](feats[top])
        else:
            # TF's linear structure: at each level lerp_clip(level image, upscaled coarser image, lod - level lod).
            img = self.torgb[0](feats[0])
            for i in range(1, top + 1):
                here = self.torgb[i](feats[i])
                t = min(max(self.lod - (top - i), 0.0), 1.0)
                img = here + (upscale2d(img) - here) * t
        return torch.tanh(img) if self.cfg.output_activation == "tanh" else img

    def first_layer_weight(self) -> np.ndarray:
        """(16 * channels[0], z_dim): the dense layer that reads z, as applied (for SeFa)."""
        return self.dense.applied_weight().detach().cpu().float().numpy()


# --------------------------------------------------------------------------- TF1 (tkarras) pickles

G_PAPER_DEFAULTS: dict[str, Any] = dict(
    num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512, latent_size=None,
    normalize_latents=True, use_wscale=True, use_pixelnorm=True, pixelnorm_epsilon=1e-8, use_leakyrelu=True,
    dtype="float32", fused_scale=True, structure=None)


def tf1_config(static_kwargs: dict[str, Any], lod: float = 0.0) -> PGGANConfig:
    """The :class:`PGGANConfig` that ``networks.G_paper(**static_kwargs)`` builds (its defaults filled in)."""
    kw = {**G_PAPER_DEFAULTS, **static_kwargs}
    resolution = int(kw["resolution"])
    log2 = round(math.log2(resolution)) if resolution > 0 else 0
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"G_paper resolution must be a power of two >= 4, got {resolution}")
    if int(kw["label_size"]) != 0:
        raise ValueError(f"conditional PGGAN (label_size={kw['label_size']}) is not supported: tlgan samples z only")

    def nf(stage: int) -> int:
        return min(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), int(kw["fmap_max"]))

    z_dim = int(kw["latent_size"]) if kw["latent_size"] is not None else nf(0)
    return PGGANConfig(
        z_dim=z_dim, channels=tuple(nf(res - 1) for res in range(2, log2 + 1)), img_channels=int(kw["num_channels"]),
        normalize_latents=bool(kw["normalize_latents"]), use_pixelnorm=bool(kw["use_pixelnorm"]),
        pixelnorm_epsilon=float(kw["pixelnorm_epsilon"]), leaky_slope=0.2 if kw["use_leakyrelu"] else None,
        use_wscale=bool(kw["use_wscale"]), dense_gain=SQRT2 / 4, conv_gain=SQRT2, torgb_gain=1.0, scale_bias=False,
        dense_bias_per_channel=True, fused_scale=bool(kw["fused_scale"]), output_activation=None, lod=float(lod))


def tf1_variable_shapes(cfg: PGGANConfig) -> dict[str, tuple[int, ...]]:
    """G_paper's variable names and TF shapes for ``cfg`` (``lod`` excluded), in creation order."""
    top = len(cfg.channels) - 1
    c0, rgb = cfg.channels[0], cfg.img_channels
    shapes: dict[str, tuple[int, ...]] = {
        "4x4/Dense/weight": (cfg.z_dim, c0 * 16), "4x4/Dense/bias": (c0,),
        "4x4/Conv/weight": (3, 3, c0, c0), "4x4/Conv/bias": (c0,),
        f"ToRGB_lod{top}/weight": (1, 1, c0, rgb), f"ToRGB_lod{top}/bias": (rgb,)}
    for i in range(1, top + 1):
        r, cin, cout = 4 * 2 ** i, cfg.channels[i - 1], cfg.channels[i]
        if cfg.fused_scale:
            shapes[f"{r}x{r}/Conv0_up/weight"] = (3, 3, cout, cin)
            shapes[f"{r}x{r}/Conv0_up/bias"] = (cout,)
        else:
            shapes[f"{r}x{r}/Conv0/weight"] = (3, 3, cin, cout)
            shapes[f"{r}x{r}/Conv0/bias"] = (cout,)
        shapes[f"{r}x{r}/Conv1/weight"] = (3, 3, cout, cout)
        shapes[f"{r}x{r}/Conv1/bias"] = (cout,)
        shapes[f"ToRGB_lod{top - i}/weight"] = (1, 1, cout, rgb)
        shapes[f"ToRGB_lod{top - i}/bias"] = (rgb,)
    return shapes


def _tf1_param_name(cfg: PGGANConfig, tf_name: str) -> str:
    """The :class:`PGGANGenerator` parameter a G_paper variable maps to."""
    scope, leaf = tf_name.rsplit("/", 1)
    if scope == "4x4/Dense":
        return f"dense.{leaf}"
    if scope == "4x4/Conv":
        return f"conv.{leaf}"
    if scope.startswith("ToRGB_lod"):
        return f"torgb.{len(cfg.channels) - 1 - int(scope[len('ToRGB_lod'):])}.{leaf}"
    res, layer = scope.split("/")
    index = int(math.log2(int(res.split("x")[0]))) - 3
    return f"blocks.{index}.{'conv1' if layer == 'Conv1' else 'conv0'}.{leaf}"


def _tf1_to_torch(tf_name: str, value: np.ndarray) -> torch.Tensor:
    """TF layouts -> this module's: dense [in,out] -> (out,in); conv [kh,kw,in,out] -> (out,in,kh,kw);
    fused Conv0_up [kh,kw,out,in] -> (in,out,kh,kw) (conv_transpose2d's layout)."""
    t = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if tf_name.endswith("/bias"):
        return t
    if t.ndim == 2:
        return t.t().contiguous()
    return t.permute(3, 2, 0, 1).contiguous()


def _pick_tf_network(obj: Any, path: Path, network: str) -> TFNetwork:
    nets = [obj] if isinstance(obj, TFNetwork) else list(obj) if isinstance(obj, (tuple, list)) else []
    if not nets or not all(isinstance(n, TFNetwork) for n in nets):
        raise WeightsError(f"{path} is not a TF1 PGGAN network pickle (expected a tuple (G, D, Gs) of "
                           f"tfutil.Network, found {type(obj).__name__})")
    for net in nets:
        if net.name == network:
            return net
    if len(nets) == 3 and network in ("G", "D", "Gs"):
        return nets[("G", "D", "Gs").index(network)]
    raise WeightsError(f"{path} holds networks {[n.name for n in nets]}, none named {network!r}")


def load_pggan_tf1(path: str | Path, network: str = "Gs", lod: float | None = None) -> PGGANGenerator:
    """A TF1 PGGAN pickle (``(G, D, Gs)``) as a :class:`PGGANGenerator` in eval mode.

    ``network`` picks ``Gs`` (the moving average, used to generate) or ``G``;
    ``lod`` overrides the file's ``lod`` variable (0 = full resolution).
    The result's ``info`` says what was loaded.
    """
    return build_tf1(load_pickle(path), network, lod, Path(path))


def build_tf1(payload: Any, network: str | None = None, lod: float | None = None,
              path: Path | str = "the file") -> PGGANGenerator:
    """The generator of an already-read TF1 PGGAN pickle (see ``load_pggan_tf1``)."""
    path = Path(path)
    net = _pick_tf_network(payload, path, network or "Gs")
    if net.build_func_name != "G_paper":
        raise WeightsError(f"{path}: network {net.name!r} is built by {net.build_func_name!r}, not G_paper; "
                           "it is not a PGGAN generator (StyleGAN TF pickles are a different family)")
    kwargs = net.static_kwargs
    try:
        variables = net.variables
        file_lod = float(np.asarray(variables.pop("lod", 0.0)))
        cfg = tf1_config(kwargs, lod=file_lod if lod is None else lod)
    except (ValueError, TypeError) as e:
        raise WeightsError(f"{path}: unsupported G_paper configuration {kwargs}: {e}") from e
    expected = tf1_variable_shapes(cfg)
    missing = [k for k in expected if k not in variables]
    extra = [k for k in variables if k not in expected]
    wrong = [f"{k} {tuple(variables[k].shape)} != {v}" for k, v in expected.items()
             if k in variables and tuple(variables[k].shape) != v]
    if missing or extra or wrong:
        raise WeightsError(f"{path}: the variables of {net.name!r} do not match G_paper{kwargs} "
                           f"(missing {missing[:4]}, unexpected {extra[:4]}, wrong shapes {wrong[:4]}); "
                           "the file is damaged or not a PGGAN generator")
    module = PGGANGenerator(cfg)
    state = {_tf1_param_name(cfg, k): _tf1_to_torch(k, variables[k]) for k in expected}
    module.load_state_dict(state, strict=True)
    module.info.update(format="pggan_tf1", network=net.name, lod=cfg.lod, channels=list(cfg.channels),
                       static_kwargs=kwargs, dtype=str(kwargs.get("dtype", "float32")))
    return module.eval().requires_grad_(False)


# --------------------------------------------------------------------------- pytorch_GAN_zoo checkpoints

ZOO_CONFIG_GLOBAL = "models.utils.config.BaseConfig"
#: ``models.utils.config.BaseConfig`` (a plain attribute bag) read as an inert record: no repo code needed
ZooConfig = record_class(ZOO_CONFIG_GLOBAL)
ZOO_ACTIVATIONS: dict[str, str | None] = {"WGANGP": None, "Logistic": None, "DCGAN": "tanh", "MSE": "tanh"}


def _zoo_state(raw: Any, path: Path, key: str) -> dict[str, torch.Tensor]:
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: {key!r} is not a state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in raw.items()}


def zoo_config(fields: dict[str, Any], state: dict[str, torch.Tensor]) -> PGGANConfig:
    """The :class:`PGGANConfig` of a zoo ``GNet`` from its config fields, scales inferred from the state dict."""
    n_scales = sum(1 for k in state if k.startswith("toRGBLayers.") and k.endswith(".weight"))
    channels = [int(state["groupScale0.0.module.weight"].shape[0])]
    channels += [int(state[f"scaleLayers.{s}.0.module.weight"].shape[0]) for s in range(n_scales - 1)]
    declared = [fields.get("depthScale0", channels[0]), *fields.get("depthOtherScales", channels[1:])]
    if [int(c) for c in declared] != channels:
        raise ValueError(f"config scales {declared} disagree with the weights' {channels}")
    z_dim = int(state["formatLayer.module.weight"].shape[1])
    if int(fields.get("latentVectorDim", z_dim)) != z_dim:
        raise ValueError(f"latentVectorDim {fields['latentVectorDim']} disagrees with formatLayer's input {z_dim}")
    if int(fields.get("categoryVectorDim", 0) or 0) != 0:
        raise ValueError(f"conditional PGAN (categoryVectorDim={fields['categoryVectorDim']}) is not supported")
    loss = str(fields.get("lossCriterion", "WGANGP"))
    if loss not in ZOO_ACTIVATIONS:
        raise ValueError(f"unknown lossCriterion {loss!r} (known: {sorted(ZOO_ACTIVATIONS)})")
    norm = bool(fields.get("perChannelNormalization", True))
    return PGGANConfig(
        z_dim=z_dim, channels=tuple(channels), img_channels=int(state["toRGBLayers.0.module.weight"].shape[0]),
        normalize_latents=norm, use_pixelnorm=norm, pixelnorm_epsilon=1e-8,
        leaky_slope=float(fields.get("leakyReluLeak", 0.2)), use_wscale=bool(fields.get("equalizedlR", True)),
        dense_gain=SQRT2, conv_gain=SQRT2, torgb_gain=SQRT2, scale_bias=True, dense_bias_per_channel=False,
        fused_scale=False, output_activation=ZOO_ACTIVATIONS[loss], lod=float(fields.get("alpha", 0.0) or 0.0))


def _zoo_param_name(key: str) -> str:
    """A zoo GNet state-dict key -> the :class:`PGGANGenerator` parameter."""
    parts = key.split(".")
    leaf = parts[-1]
    if parts[0] == "formatLayer":
        return f"dense.{leaf}"
    if parts[0] == "groupScale0":
        return f"conv.{leaf}"
    if parts[0] == "toRGBLayers":
        return f"torgb.{parts[1]}.{leaf}"
    if parts[0] == "scaleLayers":
        return f"blocks.{parts[1]}.conv{parts[2]}.{leaf}"
    raise KeyError(key)


def load_pgan(path: str | Path, network: str | None = None) -> PGGANGenerator:
    """A pytorch_GAN_zoo PGAN checkpoint as a :class:`PGGANGenerator` in eval mode.

    ``network`` is ``"avgG"`` (the default when present: the averaged
    generator, as torch.hub uses) or ``"netG"``. The file is read with
    ``torch.load(weights_only=True)``; its pickled config maps to a stub.
    """
    from .checkpoints import read_checkpoint

    return build_gan_zoo(read_checkpoint(path), network, Path(path))


def build_gan_zoo(ckpt: Any, network: str | None = None, path: Path | str = "the file") -> PGGANGenerator:
    """The generator of an already-read pytorch_GAN_zoo checkpoint (see ``load_pgan``)."""
    path = Path(path)
    if not isinstance(ckpt, dict) or not ({"netG", "avgG"} & set(ckpt)):
        raise WeightsError(f"{path} is not a pytorch_GAN_zoo PGAN checkpoint: expected a dict with 'netG'/'avgG', "
                           f"found {sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__}")
    name = network or ("avgG" if "avgG" in ckpt else "netG")
    if name not in ("avgG", "netG") or name not in ckpt:
        raise WeightsError(f"{path} has no generator {name!r} (it has {sorted(k for k in ckpt if k != 'config')})")
    config = ckpt.get("config")
    if config is not None and not isinstance(config, (ZooConfig, dict)):
        raise WeightsError(f"{path}: 'config' is a {type(config).__name__}, not a PGAN BaseConfig")
    fields = dict(vars(config)) if isinstance(config, ZooConfig) else dict(config) if isinstance(config, dict) else {}
    state = _zoo_state(ckpt[name], path, name)
    try:
        cfg = zoo_config(fields, state)
        module = PGGANGenerator(cfg)
        module.load_state_dict({_zoo_param_name(k): v.float() for k, v in state.items()}, strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise WeightsError(f"{path}: {name} is not a PGAN generator this loader understands ({e})") from e
    module.info.update(format="pgan", network=name, lod=cfg.lod, channels=list(cfg.channels),
                       loss=fields.get("lossCriterion", "WGANGP"))
    return module.eval().requires_grad_(False)


def random_pggan(cfg: PGGANConfig, seed: int = 0) -> PGGANGenerator:
    """A randomly initialised network (weights N(0,1), biases 0.1 N(0,1)): for tests and benchmarks."""
    module = PGGANGenerator(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if name.endswith("bias") else 1.0))
    return module.eval().requires_grad_(False)


__all__ = [
    "PGGANConfig",
    "PGGANGenerator",
    "build_gan_zoo",
    "build_tf1",
    "load_pgan",
    "load_pggan_tf1",
    "pixel_norm",
    "random_pggan",
    "tf1_config",
    "tf1_variable_shapes",
    "upscale2d",
    "zoo_config",
]
