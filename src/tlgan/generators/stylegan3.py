"""StyleGAN3 (configs T and R): a clean-room PyTorch generator that reads NVlabs stylegan3 pickles as data.

The network is rebuilt from the pickled constructor kwargs (the same defaults
as the original constructors) and filled from the pickled state dict; nothing
from the file is executed (``safe_pickle.load_pickle``). The layer geometry
(sizes, sampling rates, cutoffs, paddings) is computed from the kwargs like the
original; the filters, Fourier frequencies/phases and magnitude EMAs stored in
the file are loaded as they are.

``filtered_lrelu`` follows the semantics of the original's reference path
(bias, upsample with ``up_filter``, leaky ReLU with gain, clamp, downsample
with ``down_filter``) with separable 1-D filters run as strided
``conv_transpose2d``/``conv2d`` passes, so the zero-stuffed intermediate of the
reference is never built.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsError
from .ops import FullyConnectedLayer, MappingNetwork
from .safe_pickle import PersistentObject, load_pickle

LRELU_GAIN = float(np.sqrt(2))
LRELU_SLOPE = 0.2

# Options the original constructors take (networks_stylegan3.Generator passes the synthesis and layer ones flat).
SYNTHESIS_OPTIONS = frozenset({
    "channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
    "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res",  # SynthesisNetwork
    "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
    "magnitude_ema_beta"})  # SynthesisLayer
MAPPING_OPTIONS = frozenset({"num_layers", "lr_multiplier", "w_avg_beta"})


# ----------------------------------------------------------------------------------------------------------------
# Filter design (the original uses scipy.signal.firwin and scipy.special.j1; this is the same arithmetic in numpy).

def _kaiser_beta(numtaps: int, width: float, nyquist: float) -> float:
    """Kaiser window beta for ``numtaps`` taps and a transition ``width`` (scipy's kaiser_atten + kaiser_beta)."""
    atten = 2.285 * (numtaps - 1) * np.pi * (width / nyquist) + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed sinc lowpass (1-D, separable) or a jinc-based radial one (2-D); ``None`` for 1 tap."""
    if numtaps < 1:
        raise ValueError(f"a lowpass filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    beta = _kaiser_beta(numtaps, width, fs / 2)
    window = np.kaiser(numtaps, beta)
    m = np.arange(numtaps) - (numtaps - 1) / 2
    if not radial:
        c = cutoff / (fs / 2)
        f = c * np.sinc(c * m) * window
        return torch.as_tensor(f / f.sum(), dtype=torch.float32)
    r = np.hypot(*np.meshgrid(m / fs, m / fs))
    j1 = torch.special.bessel_j1(torch.as_tensor(2 * cutoff * np.pi * r, dtype=torch.float64)).numpy()
    f = j1 / (np.pi * r) * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------------------------
# Low-level ops.

DENSE_MAX = 96  # axes up to this length are resampled with one dense matrix
BLOCK = 32  # outputs per block of the banded resampling matmuls (small enough to waste little, big enough for BLAS)


def _separable_terms(f: torch.Tensor, gain: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``f`` (times ``gain`` overall) as a sum of (vertical, horizontal) 1-D filter pairs.

    A 1-D filter is separable (applied along both axes); a 2-D one (the radial
    filters of config R) is split exactly by an SVD into its few nonzero ranks.
    """
    if f.ndim == 1:
        g = f * float(np.sqrt(gain))
        return [(g, g)]
    u, s, vh = torch.linalg.svd(f.double())
    keep = s > s[0] * 1e-9
    scale = (s[keep] * gain).sqrt()
    return [((u[:, r] * scale[i]).to(f.dtype), (vh[r] * scale[i]).to(f.dtype))
            for i, r in enumerate(torch.nonzero(keep).flatten().tolist())]


def _band_matrix(h: torch.Tensor, up: int, down: int, offset: int, first_in: int, n_in: int,
                 n_out: int) -> torch.Tensor:
    """(n_in, n_out) matrix of ``h[n*down + offset - i*up]`` for inputs ``first_in + [0, n_in)``, zero off-band."""
    idx = np.arange(n_out)[None, :] * down + offset - (first_in + np.arange(n_in)[:, None]) * up
    valid = torch.as_tensor((idx >= 0) & (idx < h.shape[0]), device=h.device)
    return torch.where(valid, h[torch.as_tensor(np.clip(idx, 0, h.shape[0] - 1), device=h.device)],
                       h.new_zeros(()))


def _resample_axis(x: torch.Tensor, h: torch.Tensor, dim: int, up: int, down: int, offset: int,
                   n_out: int) -> torch.Tensor:
    """``out[n] = sum_i x[i] * h[n*down + offset - i*up]`` along ``dim`` (-1 or -2) of ``x``, zeros outside ``h``.

    This one formula covers the reference's zero-stuff/pad/filter upsampling
    (``down=1``) and filter/decimate downsampling (``up=1``). Short axes use one
    dense matrix (padding and cropping are in the matrix, no copies); long ones
    use the band's shift invariance: blocks of ``BLOCK`` outputs, each one small
    matmul over an input window taken with ``unfold``.
    """
    k, length = h.shape[0], x.shape[dim]
    if length <= DENSE_MAX:
        mat = _band_matrix(h, up, down, offset, 0, length, n_out)
        return x @ mat if dim == -1 else mat.t() @ x
    bo = up * -(-min(BLOCK, n_out) // up)  # outputs per block, a multiple of up so windows shift by whole samples
    step = bo * down // up
    i_min = -(-(offset - k + 1) // up)
    bi = ((bo - 1) * down + offset) // up - i_min + 1
    nb = -(-n_out // bo)
    mat = _band_matrix(h, up, down, offset, i_min, bi, bo)
    left, right = max(0, -i_min), max(0, i_min + (nb - 1) * step + bi - length)
    if left or right:
        x = F.pad(x, [left, right] if dim == -1 else [0, 0, left, right])
    x = x.narrow(dim, i_min + left, (nb - 1) * step + bi).unfold(dim, bi, step)  # [..., nb, (W,) bi]
    # along the last dim, a copy first: matmul on the overlapping window view takes a very slow path
    y = (x.reshape(-1, bi) @ mat).view(*x.shape[:-2], nb * bo) if dim == -1 else (mat.t() @ x.transpose(-1, -2)).flatten(-3, -2)
    return y.narrow(dim, 0, n_out)


def _upsample(x: torch.Tensor, f: torch.Tensor | None, up: int, padding: Sequence[int]) -> torch.Tensor:
    """``upfirdn2d(x, f, up=up, padding=padding, gain=up**2)`` of the reference for ``x`` shaped (B, H, W)."""
    px0, px1, py0, py1 = padding
    h, w = x.shape[-2:]
    if f is None and up == 1:
        return F.pad(x, [px0, px1, py0, py1])
    if f is None:
        f = torch.ones(1, dtype=x.dtype, device=x.device)
    kh, kw = (f.shape[0], f.shape[0]) if f.ndim == 1 else f.shape
    parts = [_resample_axis(_resample_axis(x, fx, -1, up, 1, kw - 1 - px0, w * up + px0 + px1 - kw + 1),
                            fy, -2, up, 1, kh - 1 - py0, h * up + py0 + py1 - kh + 1)
             for fy, fx in _separable_terms(f.to(x.dtype), up ** 2)]
    return functools.reduce(torch.add, parts)


def _downsample(x: torch.Tensor, f: torch.Tensor | None, down: int) -> torch.Tensor:
    """``upfirdn2d(x, f, down=down)`` of the reference (valid filtering, keep every ``down``-th sample)."""
    if f is None:
        return x[..., ::down, ::down]
    h, w = x.shape[-2:]
    kh, kw = (f.shape[0], f.shape[0]) if f.ndim == 1 else f.shape
    parts = [_resample_axis(_resample_axis(x, fx, -1, 1, down, kw - 1, (w - kw) // down + 1),
                            fy, -2, 1, down, kh - 1, (h - kh) // down + 1)
             for fy, fx in _separable_terms(f.to(x.dtype), 1.0)]
    return functools.reduce(torch.add, parts)


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor,
                   up: int, down: int, padding: Sequence[int], gain: float, slope: float,
                   clamp: float | None) -> torch.Tensor:
    """Add ``b``, upsample by ``up`` with ``fu``, leaky ReLU times ``gain``, clamp, downsample by ``down`` with ``fd``.

    The semantics of the original's reference implementation (``_filtered_lrelu_ref``);
    ``padding`` = [x0, x1, y0, y1] is applied on the upsampled grid.
    """
    n, c, h, w = x.shape
    x = (x + b.to(x.dtype).view(1, -1, 1, 1)).reshape(n * c, h, w)
    x = _upsample(x, fu, up, padding)
    if x.requires_grad:
        x = F.leaky_relu(x, slope) if slope != 1 else x
        x = x * gain if gain != 1 else x
        x = x.clamp(-clamp, clamp) if clamp is not None and clamp >= 0 else x
    else:  # in place on the large upsampled intermediate when no gradient is wanted: less memory traffic
        if slope != 1:
            F.leaky_relu_(x, slope)
        if gain != 1:
            x.mul_(gain)
        if clamp is not None and clamp >= 0:
            x.clamp_(-clamp, clamp)
    x = _downsample(x, fd, down)
    return x.reshape(n, c, x.shape[1], x.shape[2])


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, padding: int,
                     demodulate: bool, input_gain: torch.Tensor | None) -> torch.Tensor:
    """Per-sample modulated (and optionally demodulated) convolution as one grouped conv2d.

    As in StyleGAN3: with demodulation, weights and styles are first normalised
    by their RMS; ``input_gain`` scales the input channels (the magnitude EMA).
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    w = weight.to(x.dtype)
    s = styles
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.unsqueeze(1).unsqueeze(3).unsqueeze(4)  # [N, O, I, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4)
    if input_gain is not None:
        w = w * input_gain.expand(n, in_c).unsqueeze(1).unsqueeze(3).unsqueeze(4)
    x = F.conv2d(x.reshape(1, n * in_c, *x.shape[2:]), w.reshape(n * out_c, in_c, kh, kw),
                 padding=padding, groups=n)
    return x.reshape(n, out_c, *x.shape[2:])


# ----------------------------------------------------------------------------------------------------------------
# Modules (names, parameters and buffers as in the original, so state dicts load unchanged).

class SynthesisInput(nn.Module):
    """Fourier features: sinusoids of stored ``freqs``/``phases``, rotated and translated by an affine of w[0]."""

    transform: torch.Tensor
    freqs: torch.Tensor
    phases: torch.Tensor

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)  # uniform on a disc
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3))  # user inverse transform of the image; identity in files
        self.register_buffer("freqs", freqs * bandwidth)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n, dt, dev = w.shape[0], w.dtype, w.device
        t = self.affine(w)  # (cos, sin, tx, ty) up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, dtype=dt, device=dev).unsqueeze(0).repeat([n, 1, 1])
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, dtype=dt, device=dev).unsqueeze(0).repeat([n, 1, 1])
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ self.transform.to(dt).unsqueeze(0)
        freqs = self.freqs.to(dt).unsqueeze(0)
        phases = self.phases.to(dt).unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, dtype=dt, device=dev)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight.to(dt) / float(np.sqrt(self.channels))).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv, then filtered leaky ReLU between the input and output sampling rates (or a ToRGB)."""

    magnitude_ema: torch.Tensor
    up_filter: torch.Tensor | None
    down_filter: torch.Tensor | None

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, in_channels: int,
                 out_channels: int, in_size: int, out_size: int, in_sampling_rate: int, out_sampling_rate: int,
                 in_cutoff: float, out_cutoff: float, in_half_width: float, out_half_width: float,
                 conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999) -> None:
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled = w_dim, is_torgb, is_critically_sampled
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = bool(use_radial_filters and not is_critically_sampled)
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))
        if (in_sampling_rate * self.up_factor != self.tmp_sampling_rate
                or out_sampling_rate * self.down_factor != self.tmp_sampling_rate):
            raise ValueError("sampling rates are not integer multiples of each other")

        pad_total = (self.out_size - 1) * self.down_factor + 1  # size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # size after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # lost to the filters
        pad_lo = (pad_total + self.up_factor) // 2  # symmetric sample positions (paper, appendix C.3)
        self.padding = [pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo]

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / float(np.sqrt(self.in_channels * self.conv_kernel ** 2)))
        x = modulated_conv2d(x, self.weight, styles, padding=self.conv_kernel - 1, demodulate=not self.is_torgb,
                             input_gain=self.magnitude_ema.to(x.dtype).rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, self.up_factor, self.down_factor,
                              self.padding, gain=1.0 if self.is_torgb else LRELU_GAIN,
                              slope=1.0 if self.is_torgb else LRELU_SLOPE, clamp=self.conv_clamp)


def layer_specs(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                margin_size: int) -> dict[str, np.ndarray]:
    """Per-layer cutoffs, stopbands, sampling rates, half widths, sizes and channels (index 0 = the input).

    The geometric schedule of the StyleGAN3 paper: cutoffs rise from
    ``first_cutoff`` to Nyquist of the image over all but the last
    ``num_critical`` layers, which are critically sampled.
    """
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths,
                sizes=sizes, channels=channels)


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in ("const", "none", "random"):
        raise ValueError(f"noise_mode must be 'const', 'none' or 'random', got {noise_mode!r}")


class SynthesisNetwork(nn.Module):
    """ws (N, num_layers+2, w_dim) -> image: Fourier input, ``num_layers`` filtered layers, ToRGB, output scale."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, **layer_kwargs: Any) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.num_layers, self.output_scale = num_layers, output_scale
        self.num_fp16_res = num_fp16_res  # kept for the record: conformance is the float32 path
        spec = layer_specs(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           first_cutoff, first_stopband, last_stopband_rel, margin_size)
        cut, rate, hw, size, ch = (spec[k] for k in ("cutoffs", "sampling_rates", "half_widths", "sizes",
                                                      "channels"))
        self.input = SynthesisInput(w_dim, int(ch[0]), int(size[0]), rate[0], cut[0])
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=idx == num_layers, is_critically_sampled=idx >= num_layers - num_critical,
                in_channels=int(ch[prev]), out_channels=int(ch[idx]), in_size=int(size[prev]),
                out_size=int(size[idx]), in_sampling_rate=int(rate[prev]), out_sampling_rate=int(rate[idx]),
                in_cutoff=cut[prev], out_cutoff=cut[idx], in_half_width=hw[prev], out_half_width=hw[idx],
                **layer_kwargs)
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """``noise_mode`` is accepted for the common interface; StyleGAN3 has no noise inputs."""
        _check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        ws_list = ws.unbind(dim=1)
        x = self.input(ws_list[0])
        for layer, w in zip(self.layers(), ws_list[1:], strict=True):
            x = layer(x, w)
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(nn.Module):
    """The StyleGAN3 generator (config T, or R with ``conv_kernel=1, use_radial_filters=True``).

    Built from the original ``Generator`` constructor's kwargs (``init_kwargs``
    keeps them, so the network can be written back in the NVlabs layout).
    """

    info: dict[str, Any]

    def __init__(self, z_dim: int, w_dim: int, img_resolution: int, img_channels: int, c_dim: int = 0,
                 mapping_kwargs: dict[str, Any] | None = None, **synthesis_kwargs: Any) -> None:
        super().__init__()
        if c_dim:
            raise ValueError(f"conditional StyleGAN3 generators (c_dim={c_dim}) are not supported")
        self.init_kwargs: dict[str, Any] = dict(z_dim=z_dim, w_dim=w_dim, mapping_kwargs=dict(mapping_kwargs or {}),
                                                **synthesis_kwargs, c_dim=c_dim, img_resolution=img_resolution,
                                                img_channels=img_channels)
        self.z_dim, self.w_dim, self.c_dim = z_dim, w_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, **{"num_layers": 2, **(mapping_kwargs or {})})

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre (the mapping network's running mean of w)."""
        return self.mapping.w_avg

    @property
    def config(self) -> str:
        """``"R"`` for the rotation-equivariant config (radial filters), else ``"T"``."""
        return "R" if self.init_kwargs.get("use_radial_filters", False) else "T"

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    def style_weights(self) -> list[tuple[int, torch.Tensor]]:
        """(ws index, affine weight (in_channels, w_dim) as applied) for every modulated layer, for SeFa.

        Layer ``i`` reads ``ws[:, i + 1]``; the ToRGB layer's extra style scale is
        included. The Fourier input's 4-output affine (rotation/translation from
        ``ws[:, 0]``) modulates nothing and is left out.
        """
        out = []
        for idx, layer in enumerate(self.synthesis.layers()):
            weight = layer.affine.applied_weight()
            if layer.is_torgb:
                weight = weight / float(np.sqrt(layer.in_channels * layer.conv_kernel ** 2))
            out.append((idx + 1, weight.detach()))
        return out


# ----------------------------------------------------------------------------------------------------------------
# Loading NVlabs stylegan3 pickles (read as data by safe_pickle; nothing from the file runs).

_RECOMPUTABLE = ("up_filter", "down_filter", "transform")


def is_stylegan3_network(net: Any) -> bool:
    """Whether a captured network is a StyleGAN3 generator (its synthesis input holds Fourier ``freqs``)."""
    try:
        inp = net.child("synthesis").child("input")
        return isinstance(inp, PersistentObject) and "freqs" in (inp.state.get("_buffers") or {})
    except (AttributeError, KeyError, TypeError):
        return False


def build_stylegan3(net: PersistentObject, source: str = "the file") -> StyleGAN3Generator:
    """Rebuild a captured StyleGAN3 ``Generator`` from its init kwargs and fill it from its state (eval mode)."""
    kw = net.init_kwargs
    missing = [k for k in ("z_dim", "w_dim", "img_resolution", "img_channels") if k not in kw]
    if missing:
        raise WeightsError(f"{source}: the StyleGAN3 generator's init kwargs lack {missing}; the file is not a "
                           "complete NVlabs snapshot")
    if kw.get("c_dim", 0):
        raise WeightsError(f"{source} is a conditional StyleGAN3 generator (c_dim={kw['c_dim']}); tlgan supports "
                           "unconditional generators only: use a network trained without --cond")
    mapping_kwargs = dict(kw.get("mapping_kwargs") or {})
    synthesis_kwargs = {k: v for k, v in kw.items()
                        if k not in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels", "mapping_kwargs")}
    unknown = sorted(set(synthesis_kwargs) - SYNTHESIS_OPTIONS) + sorted(
        f"mapping_kwargs.{k}" for k in set(mapping_kwargs) - MAPPING_OPTIONS)
    if unknown:
        raise WeightsError(f"{source}: the StyleGAN3 generator has constructor options tlgan does not know: "
                           f"{unknown}; please report this file's format")
    try:
        model = StyleGAN3Generator(int(kw["z_dim"]), int(kw["w_dim"]), int(kw["img_resolution"]),
                                   int(kw["img_channels"]), mapping_kwargs=mapping_kwargs, **synthesis_kwargs)
    except (ValueError, TypeError, ZeroDivisionError) as e:
        raise WeightsError(f"{source}: cannot build a StyleGAN3 generator from its kwargs {kw}: {e}") from e
    file_layers = [k for k in (net.child("synthesis").state.get("_modules") or {}) if k != "input"]
    if file_layers != model.synthesis.layer_names:
        raise WeightsError(f"{source}: the synthesis layers computed from the kwargs {model.synthesis.layer_names} "
                           f"differ from the file's {file_layers}; the file does not match the StyleGAN3 "
                           "architecture tlgan implements")
    state = net.state_dict()
    own = model.state_dict()
    absent = [k for k in own if k not in state and not k.endswith(_RECOMPUTABLE)]
    extra = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})" for k, v in state.items()
             if k in own and v.shape != own[k].shape]
    if absent or extra or wrong:
        raise WeightsError(f"{source}: the StyleGAN3 state dict does not fit the network built from its kwargs "
                           f"(missing {absent[:5]}, unexpected {extra[:5]}, wrong shapes {wrong[:5]})")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return model.eval().requires_grad_(False)


def _info(model: StyleGAN3Generator, network: str) -> dict[str, Any]:
    return dict(family="stylegan3", config=model.config, network=network, resolution=model.img_resolution,
                img_channels=model.img_channels, z_dim=model.z_dim, w_dim=model.w_dim, num_ws=model.num_ws,
                mapping_layers=model.mapping.num_layers)


def load_stylegan3(path: str | Path, network: str = "G_ema") -> tuple[StyleGAN3Generator, dict[str, Any]]:
    """Load an NVlabs stylegan3 snapshot pickle as (generator in eval mode, info dict).

    ``network`` picks ``G_ema`` (default; ``G`` is used when a file has no
    ``G_ema``) or the training ``G``. The file is read with the allow-list
    unpickler: nothing stored in it is executed.
    """
    model = build_nvlabs(load_pickle(path), network, path)
    return model, model.info


def build_nvlabs(data: Any, network: str | None = None, path: str | Path = "the file") -> StyleGAN3Generator:
    """The StyleGAN3 generator of an already-read NVlabs snapshot, with an ``info`` dict (see ``load_stylegan3``)."""
    network = network or "G_ema"
    if not isinstance(data, dict):
        raise WeightsError(f"{path} is not an NVlabs network snapshot (its pickle holds a {type(data).__name__}, "
                           "not a dict with G_ema)")
    name = network if network in data or network != "G_ema" else "G"
    net = data.get(name)
    if not isinstance(net, PersistentObject):
        raise WeightsError(f"{path} holds no {network!r} network (keys: {sorted(map(str, data))}); "
                           "pass network='G_ema' or 'G'")
    if not is_stylegan3_network(net):
        raise WeightsError(f"{path}: {name} is not a StyleGAN3 generator (no synthesis.input.freqs); "
                           "load it with the StyleGAN2 loader")
    model = build_stylegan3(net, source=f"{path} ({name})")
    model.info = _info(model, name)
    return model
