"""StyleGAN3 (T and R): conformance with the NVlabs fixture, the op semantics, and other configurations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generator_fixtures import expected, fixture_file
from sg3_writer import write_snapshot
from tlgan.generators import stylegan3
from tlgan.generators.checkpoints import read_checkpoint, recognise
from tlgan.generators.safe_pickle import load_pickle
from tlgan.generators.stylegan3 import StyleGAN3Generator, design_lowpass_filter, is_stylegan3_network, load_stylegan3
from tlgan.weights import WeightsError

FIXTURE = "stylegan3/sg3t_public_32"


@pytest.fixture(scope="module")
def fixture_net():
    return load_stylegan3(fixture_file(FIXTURE + ".pkl"))


def _maxdiff(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().numpy() - b).max())


def test_fixture_matches_every_expected_array(fixture_net):
    g, info = fixture_net
    e = expected(FIXTURE + "_expected.npz")
    z = torch.from_numpy(e["z"])
    assert info == dict(family="stylegan3", config="T", network="G_ema", resolution=32, img_channels=3, z_dim=64,
                        w_dim=64, num_ws=16, mapping_layers=2)
    assert (g.z_dim, g.w_dim, g.num_ws, g.img_resolution, g.img_channels) == (64, 64, 16, 32, 3)
    with torch.no_grad():
        ws1 = g.mapping(z, truncation_psi=1.0)
        assert _maxdiff(ws1, e["ws_psi1"]) <= 1e-5
        assert _maxdiff(g.mapping(z, truncation_psi=0.7), e["ws_psi07"]) <= 1e-5
        assert _maxdiff(g.w_avg, e["w_avg"]) <= 1e-5
        assert _maxdiff(g.synthesis.input(ws1[:, 0])[:1], e["synthesis_input_psi1_z0"]) <= 1e-5
        assert _maxdiff(g(z, truncation_psi=1.0, noise_mode="const"), e["img_psi1"]) <= 1e-4
        assert _maxdiff(g(z, truncation_psi=0.7), e["img_psi07"]) <= 1e-4
        assert _maxdiff(g.synthesis(ws1, noise_mode="none"), e["img_psi1"]) <= 1e-4  # no noise in StyleGAN3
    g_train, info_train = load_stylegan3(fixture_file(FIXTURE + ".pkl"), network="G")
    assert info_train["network"] == "G"
    with torch.no_grad():
        assert _maxdiff(g_train(z), e["img_psi1_trainG"]) <= 1e-4


def test_geometry_and_filters_computed_from_kwargs_match_the_file(fixture_net):
    g, _ = fixture_net
    synthesis = load_pickle(fixture_file(FIXTURE + ".pkl"))["G_ema"].child("synthesis")
    assert synthesis.state["layer_names"] == g.synthesis.layer_names
    ours = StyleGAN3Generator(**g.init_kwargs).synthesis  # filters designed here, not loaded
    for name in g.synthesis.layer_names:
        stored, mine = synthesis.child(name).state, getattr(ours, name)
        for attr in ("up_factor", "down_factor", "up_taps", "down_taps", "down_radial", "padding", "conv_kernel",
                     "tmp_sampling_rate", "in_sampling_rate", "out_sampling_rate", "in_channels", "out_channels"):
            assert stored[attr] == getattr(mine, attr), (name, attr)
        assert (int(stored["in_size"][0]), int(stored["out_size"][0])) == (mine.in_size, mine.out_size)
        for buf in ("up_filter", "down_filter"):
            want = stored["_buffers"].get(buf)
            got = getattr(mine, buf)
            assert (want is None) == (got is None), (name, buf)
            if want is not None:
                torch.testing.assert_close(got, want, atol=1e-7, rtol=0)


def test_filter_design_equals_scipy():
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")
    for numtaps, cutoff, width, fs in [(12, 2.0, 4.0, 32), (24, 4.0, 8.0, 64), (12, 11.3, 9.2, 64), (6, 1.0, 0.5, 8)]:
        ref = signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        np.testing.assert_allclose(design_lowpass_filter(numtaps, cutoff, width, fs).numpy(), ref, atol=1e-7)
        x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
        r = np.hypot(*np.meshgrid(x, x))
        f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
        beta = signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (fs / 2)))
        f *= np.outer(np.kaiser(numtaps, beta), np.kaiser(numtaps, beta))
        np.testing.assert_allclose(design_lowpass_filter(numtaps, cutoff, width, fs, radial=True).numpy(),
                                   f / f.sum(), atol=1e-7)
    assert design_lowpass_filter(1, 2.0, 1.0, 16) is None


def _upfirdn2d_literal(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
    """The reference semantics spelled out: zero-stuff, pad/crop, convolve (flipped correlation), decimate."""
    n, c, h, w = x.shape
    f = torch.ones(1, 1) if f is None else f
    x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    f = (f * gain ** (f.ndim / 2)).flip(list(range(f.ndim)))
    if f.ndim == 1:
        x = F.conv2d(x, f.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad,radial,clamp", [
    (2, 2, [11, 10, 11, 10], False, 256.0), (4, 2, [-6, -9, -6, -9], False, 0.5), (2, 2, [-9, -10, -9, -10], True, None),
    (2, 1, [3, 7, 5, 2], False, None), (1, 2, [0, 0, 0, 0], True, 1.0), (1, 1, [2, -1, 0, 3], False, None)])
@pytest.mark.parametrize("dense_max", [0, 10 ** 6])  # the blocked and the dense band-matrix paths
def test_filtered_lrelu_follows_the_reference_semantics(monkeypatch, up, down, pad, radial, clamp, dense_max):
    monkeypatch.setattr(stylegan3, "DENSE_MAX", dense_max)
    torch.manual_seed(0)
    x, b = torch.randn(2, 3, 37, 37) * 2, torch.randn(3)
    fu = design_lowpass_filter(6 * up if up > 1 else 1, 3.0, 4.0, 16 * up)
    fd = design_lowpass_filter(6 * down if down > 1 else 1, 3.0, 4.0, 16 * up, radial=radial)
    got = stylegan3.filtered_lrelu(x, fu, fd, b, up, down, pad, gain=np.sqrt(2), slope=0.2, clamp=clamp)
    y = _upfirdn2d_literal(x + b.view(1, -1, 1, 1), fu, up=up, pad=pad, gain=up ** 2)
    y = F.leaky_relu(y, 0.2) * np.sqrt(2)
    y = y.clamp(-clamp, clamp) if clamp is not None else y
    want = _upfirdn2d_literal(y, fd, down=down)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


CONFIGS = {
    "T64": dict(z_dim=32, w_dim=32, img_resolution=64, img_channels=3, mapping_kwargs={"num_layers": 4},
                channel_base=1024, channel_max=32),
    "R64": dict(z_dim=32, w_dim=32, img_resolution=64, img_channels=3, mapping_kwargs={"num_layers": 4},
                channel_base=1024, channel_max=32, conv_kernel=1, use_radial_filters=True),
    "T16_short": dict(z_dim=16, w_dim=24, img_resolution=16, img_channels=1, mapping_kwargs={"num_layers": 1},
                      channel_base=256, channel_max=16, num_layers=6, num_critical=1, margin_size=4,
                      output_scale=1.0, conv_clamp=None, magnitude_ema_beta=0.99),
}


def _random_net(kwargs, seed=0):
    torch.manual_seed(seed)
    g = StyleGAN3Generator(**kwargs).eval()
    with torch.no_grad():  # nonzero biases and magnitude EMAs, so a loader cannot pass by ignoring them
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
        g.mapping.w_avg.normal_()
        for layer in g.synthesis.layers():
            layer.magnitude_ema.fill_(0.5 + torch.rand(()).item())
    return g


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_other_configurations_round_trip_through_an_nvlabs_file(tmp_path, name):
    kwargs = CONFIGS[name]
    g = _random_net(kwargs)
    g_train = _random_net(kwargs, seed=1)
    path = write_snapshot(tmp_path / f"{name}.pkl", g, g_train)
    assert recognise(read_checkpoint(path)) == "stylegan3"
    loaded, info = load_stylegan3(path)
    assert info["config"] == ("R" if kwargs.get("use_radial_filters") else "T")
    assert (info["resolution"], info["z_dim"], info["w_dim"], info["mapping_layers"]) == (
        kwargs["img_resolution"], kwargs["z_dim"], kwargs["w_dim"], kwargs["mapping_kwargs"]["num_layers"])
    num_ws = kwargs.get("num_layers", 14) + 2
    assert loaded.num_ws == num_ws and loaded.w_avg.shape == (kwargs["w_dim"],)
    z = torch.randn(2, kwargs["z_dim"], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ws = loaded.mapping(z, truncation_psi=0.5)
        img = loaded.synthesis(ws)
        assert ws.shape == (2, num_ws, kwargs["w_dim"])
        assert img.shape == (2, kwargs["img_channels"], kwargs["img_resolution"], kwargs["img_resolution"])
        assert torch.isfinite(img).all() and img.std() > 0
        assert torch.equal(img, g.synthesis(g.mapping(z, truncation_psi=0.5)))  # the file holds everything
        assert torch.equal(img, loaded(z, truncation_psi=0.5))  # deterministic
        assert torch.equal(load_stylegan3(path, network="G")[0](z), g_train(z))
        assert torch.allclose(loaded.mapping(z, truncation_psi=0.0), loaded.w_avg.expand(2, num_ws, -1))


def test_config_r_uses_radial_filters_and_1x1_convs():
    g = StyleGAN3Generator(**CONFIGS["R64"])
    layers = g.synthesis.layers()
    critical = [layer.is_critically_sampled for layer in layers]
    assert critical.count(True) == 3 and all(critical[-3:])  # num_critical=2 and the ToRGB layer
    for layer in layers[:-1]:
        assert layer.weight.shape[-2:] == (1, 1)
        assert layer.down_filter.ndim == (1 if layer.is_critically_sampled else 2)
        assert layer.up_filter.ndim == 1
    assert layers[-1].down_filter is None and layers[-1].up_filter is None
    assert all(layer.weight.shape[-1] == 3 for layer in StyleGAN3Generator(**CONFIGS["T64"]).synthesis.layers()[:-1])


def test_style_weights_cover_every_modulated_layer(fixture_net):
    g, _ = fixture_net
    sw = g.style_weights()
    assert [i for i, _ in sw] == list(range(1, g.num_ws))
    for (_, weight), layer in zip(sw, g.synthesis.layers(), strict=True):
        assert weight.shape == (layer.in_channels, g.w_dim)
    w = torch.randn(2, g.w_dim)
    first, last = g.synthesis.layers()[0], g.synthesis.layers()[-1]
    with torch.no_grad():
        torch.testing.assert_close(w @ sw[0][1].t() + first.affine.bias, first.affine(w))
        scale = 1 / np.sqrt(last.in_channels)  # ToRGB styles are scaled at run time
        torch.testing.assert_close(w @ sw[-1][1].t() + last.affine.bias * scale, last.affine(w) * scale)


def test_double_precision_runs_and_agrees(fixture_net):
    g, _ = fixture_net
    z = torch.randn(2, g.z_dim)
    with torch.no_grad():
        a = g(z)
        g64 = load_stylegan3(fixture_file(FIXTURE + ".pkl"))[0].double()
        out = g64(z.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), a, atol=1e-4, rtol=1e-4)


def test_refusals_name_the_file_and_the_problem(tmp_path):
    g = _random_net(CONFIGS["T16_short"])
    conditional = write_snapshot(tmp_path / "cond.pkl", g, init_kwargs={**g.init_kwargs, "c_dim": 10})
    with pytest.raises(WeightsError, match=r"cond\.pkl.*conditional.*c_dim=10"):
        load_stylegan3(conditional)
    odd = write_snapshot(tmp_path / "odd.pkl", g, init_kwargs={**g.init_kwargs, "fancy_option": 3})
    with pytest.raises(WeightsError, match=r"odd\.pkl.*fancy_option"):
        load_stylegan3(odd)
    wrong = write_snapshot(tmp_path / "wrong.pkl", g, init_kwargs={**g.init_kwargs, "channel_max": 8})
    with pytest.raises(WeightsError, match=r"wrong\.pkl.*(layers|state dict)"):
        load_stylegan3(wrong)
    with pytest.raises(WeightsError, match="holds no 'D_ema'"):
        load_stylegan3(write_snapshot(tmp_path / "ok.pkl", g), network="D_ema")
    with pytest.raises(ValueError, match="noise_mode"):
        g.synthesis(torch.zeros(1, g.num_ws, g.w_dim), noise_mode="loud")


def test_stylegan2_files_are_not_taken_for_stylegan3(tmp_path):
    sg2 = fixture_file("stylegan3/sg3repo_sg2_public_32.pkl")
    assert recognise(read_checkpoint(sg2)) == "stylegan2"
    assert recognise(read_checkpoint(fixture_file("stylegan2_ada/sg2ada_public_32.pkl"))) == "stylegan2"
    assert not is_stylegan3_network(load_pickle(sg2)["G_ema"])
    with pytest.raises(WeightsError, match="not a StyleGAN3 generator"):
        load_stylegan3(sg2)
    assert recognise(read_checkpoint(fixture_file(FIXTURE + ".pkl"))) == "stylegan3"


def test_gradients_flow_to_ws_and_parameters():
    g = _random_net(CONFIGS["T16_short"]).requires_grad_(True)
    ws = g.mapping(torch.randn(2, g.z_dim)).detach().requires_grad_(True)
    g.synthesis(ws).square().mean().backward()
    assert torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
    assert all(layer.weight.grad is not None for layer in g.synthesis.layers())
