"""Low-level ops of the StyleGAN family in plain PyTorch (no custom kernels).

Clean-room versions of what the NVlabs networks are built from: FIR
resampling (``upfirdn2d``), bias + activation with gain and clamp
(``bias_act``), the equalized-learning-rate fully connected layer and the
modulated convolution with weight demodulation. Everything follows the input's
dtype and device, so a module built on them can be moved with ``.to()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# name -> (function of (x, alpha), default gain, default alpha); the gains keep unit variance
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor, float], torch.Tensor], float, float]] = {
    "linear": (lambda x, a: x, 1.0, 0.0),
    "relu": (lambda x, a: F.relu(x), math.sqrt(2), 0.0),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), math.sqrt(2), 0.2),
    "tanh": (lambda x, a: torch.tanh(x), 1.0, 0.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 1.0, 0.0),
    "elu": (lambda x, a: F.elu(x), 1.0, 0.0),
    "selu": (lambda x, a: F.selu(x), 1.0, 0.0),
    "softplus": (lambda x, a: F.softplus(x), 1.0, 0.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, math.sqrt(2), 0.0),
}


def activation_gain(act: str) -> float:
    """The default gain of activation ``act`` (sqrt(2) for lrelu)."""
    return check_activation(act)[1]


def check_activation(act: str) -> tuple[Callable[[torch.Tensor, float], torch.Tensor], float, float]:
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[act]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", alpha: float | None = None,
             gain: float | None = None, clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """``clamp(act(x + b) * gain)``: bias along ``dim``, activation, gain, then symmetric clamp (None = off)."""
    func, def_gain, def_alpha = check_activation(act)
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, def_alpha if alpha is None else float(alpha))
    gain = def_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit mean square along ``dim`` (StyleGAN's pixel norm of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def setup_filter(f: Sequence[float] | torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """A 2-D FIR filter from 1-D taps (outer product), normalised to sum 1; 2-D input is kept as is."""
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    return f


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              padding: Sequence[int] | int = 0, flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with FIR ``f`` (1-D separable or 2-D), downsample.

    ``padding`` is ``(x0, x1, y0, y1)`` or one int. The filter is applied as a
    true convolution (flipped) unless ``flip_filter``; ``gain`` scales the
    result (``up**2`` keeps the mean when upsampling).
    """
    px0, px1, py0, py1 = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample ``x`` by ``up`` with FIR filter ``f``, output exactly ``up`` times larger."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up ** 2)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    padding: int = 0, groups: int = 1) -> torch.Tensor:
    """``conv2d`` (cross-correlation, same-size with ``padding``), optionally upsampling by ``up`` with FIR ``f``.

    Upsampling is a stride-``up`` transposed convolution followed by the FIR
    filter (a 1x1 kernel instead convolves first, then upsamples), the order
    the NVlabs networks use, so the result equals theirs to float error.
    """
    if up == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if f is None:
        raise ValueError("upsampling needs a resample filter")
    out_ch, in_per_group, kh, kw = w.shape
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2
    p1 = padding + (fw - up) // 2
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up ** 2)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    p0 -= kw - 1
    p1 -= kw - up
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
    return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up ** 2)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, fused: bool = True) -> torch.Tensor:
    """StyleGAN2's convolution whose input channels are scaled per sample by ``styles`` (N, in).

    With ``demodulate`` every output channel is renormalised to unit expected
    variance. ``fused`` builds one weight per sample and runs a grouped
    convolution; otherwise activations are scaled before and after one shared
    convolution (same result to ~1e-5, usually faster for large batches).
    ``noise`` (broadcastable to the output) is added after demodulation.
    """
    n = x.shape[0]
    _out_ch, in_ch, kh, kw = weight.shape
    weight = weight.to(x.dtype)
    styles = styles.to(x.dtype)
    dcoefs = None
    if demodulate or fused:
        wm = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
        if demodulate:
            dcoefs = (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if not fused:
        x = x * styles.reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding)
        if dcoefs is not None:
            x = x * dcoefs.reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x
    if dcoefs is not None:
        wm = wm * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(x, wm.reshape(-1, in_ch, kh, kw), resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x


class FullyConnectedLayer(nn.Module):
    """Equalized-learning-rate linear layer: weights stored as N(0,1)/lr, scaled by ``lr / sqrt(in)`` at run time.

    ``weight_init`` scales the initial weights and ``bias_init`` (one value or one per output) is the initial
    bias as applied (stored divided by ``lr_multiplier``), as in StyleGAN3; files overwrite both.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float | Sequence[float] = 0.0, weight_init: float = 1.0) -> None:
        super().__init__()
        check_activation(activation)
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        initial = torch.as_tensor(bias_init, dtype=torch.float32).broadcast_to([out_features]) / lr_multiplier
        self.bias = nn.Parameter(initial.clone()) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def applied_weight(self) -> torch.Tensor:
        """The (out, in) matrix as multiplied at run time."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.applied_weight().to(x.dtype)
        b: torch.Tensor | None = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z -> w of StyleGAN2 and StyleGAN3: 2nd-moment normalisation, ``num_layers`` equalized-lr layers,
    broadcast to ``num_ws``, truncation toward ``w_avg``."""

    w_avg: torch.Tensor

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float = 0.998) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta  # the training-time EMA rate of w_avg, kept for writing the network back
        features = [z_dim] + [layer_features or w_dim] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(self.w_avg.dtype))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
            ws[:, :cut] = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], truncation_psi)
        return ws
