"""StyleGAN2: conformance with the original projects' fixture outputs, other configurations, safe loading."""

import argparse
import pickle

import numpy as np
import pytest
import torch

from generator_fixtures import expected, fixture_file
from nvlabs_writer import random_stylegan2, stylegan2_entry, write_nvlabs_pickle, write_stylegan2_snapshot
from tlgan.generators import ops
from tlgan.generators.checkpoints import read_checkpoint, recognise
from tlgan.generators.safe_pickle import UnsafePickleError
from tlgan.generators.stylegan2 import StyleGAN2, generator_from_nvlabs_kwargs, load_nvlabs_stylegan2, load_rosinality
from tlgan.weights import WeightsError

NVLABS = [("stylegan2_ada/sg2ada_public_32", "nvlabs-stylegan2-ada"),
          ("stylegan3/sg3repo_sg2_public_32", "nvlabs-stylegan3-repo")]


def _max_diff(got: torch.Tensor, want: np.ndarray) -> float:
    assert tuple(got.shape) == want.shape
    return float(np.abs(got.detach().numpy() - want).max())


@pytest.mark.parametrize("name,fmt", NVLABS)
@pytest.mark.parametrize("fused", [True, False])
def test_nvlabs_pickles_match_the_original_outputs(name, fmt, fused):
    e = expected(f"{name}_expected.npz")
    g = load_nvlabs_stylegan2(fixture_file(f"{name}.pkl"))
    g.fused_modconv = fused
    assert g.info["format"] == fmt and g.info["network"] == "G_ema"
    z = torch.from_numpy(e["z"])
    with torch.no_grad():
        assert _max_diff(g.mapping(z), e["ws_psi1"]) <= 1e-5
        assert _max_diff(g.mapping(z, truncation_psi=0.7), e["ws_psi07"]) <= 1e-5
        assert _max_diff(g.w_avg, e["w_avg"]) == 0
        assert _max_diff(g(z), e["img_psi1"]) <= 1e-4
        assert _max_diff(g(z, truncation_psi=0.7), e["img_psi07"]) <= 1e-4
        assert _max_diff(g(z, noise_mode="none"), e["img_psi1_noise_none"]) <= 1e-4
        assert _max_diff(g.synthesis(g.mapping(z)), e["img_psi1"]) <= 1e-4


@pytest.mark.parametrize("name,fmt", NVLABS)
def test_nvlabs_training_generator_loads_on_request(name, fmt):
    e = expected(f"{name}_expected.npz")
    g = load_nvlabs_stylegan2(fixture_file(f"{name}.pkl"), network="G")
    assert g.info["network"] == "G"
    with torch.no_grad():
        assert _max_diff(g(torch.from_numpy(e["z"])), e["img_psi1_trainG"]) <= 1e-4
    with pytest.raises(WeightsError, match=r"no network 'D_ema'.*G, D, G_ema"):
        load_nvlabs_stylegan2(fixture_file(f"{name}.pkl"), network="D_ema")


def test_rosinality_checkpoint_matches_the_original_outputs():
    e = expected("rosinality/rosinality_public_32_expected.npz")
    g = load_rosinality(fixture_file("rosinality/rosinality_public_32.pt"))
    assert g.info["channels"] == {4: 64, 8: 64, 16: 48, 32: 32} and g.num_ws == 8
    z = torch.from_numpy(e["z"])
    with torch.no_grad():
        assert _max_diff(g.mapping(z)[:, 0], e["w"]) <= 1e-5
        assert _max_diff(g.w_avg, e["latent_avg"]) == 0
        assert _max_diff(g.mapping(z, truncation_psi=0.7), e["latents_psi07"]) <= 1e-5
        assert _max_diff(g(z), e["img_psi1"]) <= 1e-4
        assert _max_diff(g(z, truncation_psi=0.7), e["img_psi07"]) <= 1e-4
        assert _max_diff(g(z, noise_mode="none"), e["img_psi1_noise_zero"]) <= 1e-4


def test_rosinality_training_checkpoint_with_args_loads_g_ema(tmp_path):
    src = torch.load(fixture_file("rosinality/rosinality_public_32.pt"), map_location="cpu", weights_only=True)
    g_train = {k: v + 0.02 * torch.randn_like(v) for k, v in src["g_ema"].items()}
    path = tmp_path / "100000.pt"
    torch.save({"g": g_train, "d": {"convs.0.0.weight": torch.randn(4, 3, 1, 1)}, "g_ema": src["g_ema"],
                "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99)}]},
                "d_optim": {"state": {}, "param_groups": []},
                "args": argparse.Namespace(size=32, n_mlp=2, channel_multiplier=1, path="/data/lmdb"),
                "ada_aug_p": 0.1}, path)
    assert recognise(read_checkpoint(path)) == "rosinality"
    e = expected("rosinality/rosinality_public_32_expected.npz")
    z = torch.from_numpy(e["z"])
    g = load_rosinality(path)
    assert g.info["network"] == "g_ema" and "mean of 4096" in g.info["truncation_centre"]
    with torch.no_grad():
        assert _max_diff(g(z), e["img_psi1"]) <= 1e-4  # no latent_avg: only psi=1 can match
        assert (g.w_avg - torch.from_numpy(e["latent_avg"])).abs().max() < 0.1  # both are 4096-sample means
        assert _max_diff(load_rosinality(path, network="g")(z), e["img_psi1"]) > 1e-3


def _to_rosinality(net: StyleGAN2) -> dict[str, torch.Tensor]:
    """The rosinality key layout of a tlgan StyleGAN2 (the inverse of the loader's renaming, for tests)."""
    sd, out = net.state_dict(), {}
    for i in range(net.mapping.num_layers):
        for kind in ("weight", "bias"):
            out[f"style.{i + 1}.{kind}"] = sd[f"mapping.fc{i}.{kind}"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    kernel = sd["synthesis.b4.resample_filter"] * 4
    layers = [("conv1", "synthesis.b4.conv1")]
    for k, res in enumerate(net.synthesis.block_resolutions[1:]):
        layers += [(f"convs.{2 * k}", f"synthesis.b{res}.conv0"), (f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")]
        out[f"convs.{2 * k}.conv.blur.kernel"] = kernel
        out[f"to_rgbs.{k}.upsample.kernel"] = kernel
    for n, (dst, src) in enumerate(layers):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        out[f"noises.noise_{n}"] = sd[f"{src}.noise_const"][None, None]
    for dst, res in [("to_rgb1", 4)] + [(f"to_rgbs.{k}", r) for k, r in enumerate(net.synthesis.block_resolutions[1:])]:
        out[f"{dst}.conv.weight"] = sd[f"synthesis.b{res}.torgb.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"synthesis.b{res}.torgb.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"synthesis.b{res}.torgb.affine.bias"]
        out[f"{dst}.bias"] = sd[f"synthesis.b{res}.torgb.bias"].reshape(1, -1, 1, 1)
    return out


def test_rosinality_layout_round_trips_at_another_size(tmp_path):
    net = random_stylegan2(64, 48, 48, mapping_layers=3, channel_base=1024, channel_max=40, conv_clamp=None, seed=3)
    path = tmp_path / "g.pt"
    torch.save({"g_ema": _to_rosinality(net), "latent_avg": net.w_avg.clone()}, path)
    g = load_rosinality(path)
    assert (g.img_resolution, g.w_dim, g.mapping.num_layers, g.num_ws) == (64, 48, 3, 10)
    assert g.info["channels"] == net.info["channels"]
    z = torch.randn(3, 48)
    with torch.no_grad():
        assert torch.equal(g(z, 0.6), net(z, 0.6))
    old = {k: v for k, v in _to_rosinality(net).items() if not k.startswith("noises.")}
    torch.save({"g_ema": old}, path)  # an early checkpoint: no stored noise, no latent_avg
    g = load_rosinality(path)
    assert "no noise" in g.info["noise_const"] and "mean of 4096" in g.info["truncation_centre"]
    with torch.no_grad():
        assert torch.equal(g(z, noise_mode="none"), net(z, noise_mode="none"))
        assert torch.equal(g(z), load_rosinality(path)(z))


CONFIGS = [
    dict(resolution=64, z_dim=32, w_dim=32, mapping_layers=4, architecture="orig", conv_clamp=None),
    dict(resolution=64, z_dim=24, w_dim=32, mapping_layers=4, architecture="resnet", conv_clamp=None),
    dict(resolution=16, z_dim=16, w_dim=8, mapping_layers=1, architecture="resnet", conv_clamp=0.5),
    dict(resolution=32, z_dim=32, w_dim=32, mapping_layers=3, architecture="skip", conv_clamp=256, num_fp16_res=2),
    dict(resolution=8, z_dim=8, w_dim=16, mapping_layers=2, flavour="stylegan3-repo", fused_modconv_default=True),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['resolution']}px-{c.get('architecture', 'skip')}")
def test_other_configurations_round_trip_through_an_nvlabs_pickle(tmp_path, cfg):
    net = random_stylegan2(seed=1, **cfg)
    train = random_stylegan2(seed=2, **cfg)
    path = write_stylegan2_snapshot(tmp_path / "snap.pkl", net, train)
    assert recognise(read_checkpoint(path)) == "stylegan2"
    g = load_nvlabs_stylegan2(path)
    res, arch = cfg["resolution"], cfg.get("architecture", "skip")
    assert (g.img_resolution, g.z_dim, g.w_dim, g.info["architecture"]) == (res, cfg["z_dim"], cfg["w_dim"], arch)
    assert g.num_ws == 2 * int(np.log2(res)) - 2 and g.mapping.num_layers == cfg["mapping_layers"]
    z = torch.randn(2, cfg["z_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = g(z, truncation_psi=0.7)
        assert img.shape == (2, 3, res, res) and torch.isfinite(img).all()
        assert torch.equal(img, net(z, truncation_psi=0.7))
        assert torch.equal(g(z, noise_mode="none"), net(z, noise_mode="none"))
        assert torch.equal(g(z), g(z)) and not torch.equal(g(z, noise_mode="random"), g(z, noise_mode="random"))
        assert torch.equal(load_nvlabs_stylegan2(path, network="G")(z), train(z))
        if arch == "resnet":  # one ToRGB, clamped to +-conv_clamp
            assert g(z).abs().max() <= (cfg["conv_clamp"] or np.inf)
    assert g.info["conv_clamp"] == cfg.get("conv_clamp", 256)


def test_nvlabs_snapshot_naming_one_forbidden_global_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return os.system, (f"touch {marker}",)

    net = random_stylegan2(16, 8, 8)
    path = write_stylegan2_snapshot(tmp_path / "evil.pkl", net, extra={"augment_pipe": Evil()})
    with pytest.raises(UnsafePickleError, match=r"names the global (posix|nt|os)\.system"):
        load_nvlabs_stylegan2(path)
    assert not marker.exists()
    path = write_nvlabs_pickle(tmp_path / "getattr.pkl", {"G_ema": stylegan2_entry(net)},
                               {"training_set_kwargs": {"fmt": getattr}})
    with pytest.raises(UnsafePickleError, match=r"builtins\.getattr"):
        load_nvlabs_stylegan2(path)


def test_unsupported_or_foreign_files_get_clear_errors(tmp_path):
    kwargs = random_stylegan2(16, 8, 8).nvlabs_init_kwargs
    with pytest.raises(WeightsError, match=r"conditional generator .c_dim=10."):
        generator_from_nvlabs_kwargs({**kwargs, "c_dim": 10})
    with pytest.raises(WeightsError, match="options tlgan does not implement: mystery"):
        generator_from_nvlabs_kwargs({**kwargs, "synthesis_kwargs": {**kwargs["synthesis_kwargs"], "mystery": 1}})
    with pytest.raises(WeightsError, match=r"unsupported StyleGAN2 configuration.*power-of-two"):
        generator_from_nvlabs_kwargs({**kwargs, "img_resolution": 48})
    sg3 = fixture_file("stylegan3/sg3t_public_32.pkl")
    assert recognise(read_checkpoint(sg3)) == "stylegan3"
    with pytest.raises(WeightsError, match="is a StyleGAN3 generator"):
        load_nvlabs_stylegan2(sg3)
    net = random_stylegan2(16, 8, 8)
    sd = net.state_dict()
    sd["synthesis.b8.conv0.weight"] = sd["synthesis.b8.conv0.weight"][:, :-1]
    bad = write_nvlabs_pickle(tmp_path / "bad.pkl", {"G_ema": ("Generator", net.nvlabs_init_kwargs, sd)})
    with pytest.raises(WeightsError, match="do not fit the StyleGAN2 network"):
        load_nvlabs_stylegan2(bad)
    pickled = tmp_path / "list.pkl"
    pickled.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(WeightsError, match="not an NVlabs network snapshot"):
        load_nvlabs_stylegan2(pickled)
    ros = fixture_file("rosinality/rosinality_public_32.pt")
    assert recognise(read_checkpoint(ros)) == "rosinality"
    assert recognise(read_checkpoint(fixture_file("stylegan2_ada/sg2ada_public_32.pkl"))) == "stylegan2"
    with pytest.raises(WeightsError, match="no 'g_ema' generator"):
        load_rosinality(fixture_file("pgan/pgan_public_32.pt"))
    torch.save({"netG": {}}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match=r"no 'g_ema' generator .keys: netG."):
        load_rosinality(tmp_path / "other.pt")


def test_interface_style_weights_truncation_and_dtypes():
    net = random_stylegan2(32, 16, 24, mapping_layers=2)
    z = torch.randn(3, 16)
    with torch.no_grad():
        ws = net.mapping(z, truncation_psi=0.0)
        assert ws.shape == (3, net.num_ws, 24) and torch.allclose(ws, net.w_avg.expand_as(ws))
        cut = net.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
        assert torch.equal(cut[:, 2:], net.mapping(z)[:, 2:]) and torch.equal(cut[:, :2], net.mapping(z, 0.5)[:, :2])
        weights = net.style_weights()
        assert [i for i, _ in weights] == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7]  # conv, torgb per block; torgb shares
        assert all(w.shape == (c, 24) for (_, w), c in zip(weights, [64, 64, 64, 64, 64, 64, 32, 32, 32, 16, 16], strict=True))
        torgb = net.synthesis.b32.torgb
        assert torch.allclose(weights[-1][1], torgb.affine.weight / np.sqrt(24) / np.sqrt(16))
        img = net(z)
        assert torch.allclose(net.double()(z.double()), img.double(), atol=1e-4)
        assert net(z.double(), noise_mode="random").dtype == torch.float64
    with pytest.raises(ValueError, match="noise_mode"):
        net(z.double(), noise_mode="off")


def _zero_insert_conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Zero-insertion 2x upsampling, then a full (padding 2) convolution: a transposed convolution spelled out."""
    up = torch.zeros(x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3])
    up[:, :, ::2, ::2] = x
    return torch.nn.functional.conv2d(up, w.flip([2, 3]), padding=2)[:, :, :-1, :-1]


def test_upfirdn2d_upsamples_a_constant_to_a_constant_and_conv2d_resample_agrees_with_the_slow_path():
    f = ops.setup_filter([1, 3, 3, 1])
    x = torch.ones(1, 2, 5, 5)
    y = ops.upsample2d(x, f)
    assert y.shape == (1, 2, 10, 10) and torch.allclose(y[:, :, 2:-2, 2:-2], torch.ones(1, 2, 6, 6))
    x, w = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3)
    slow = ops.upfirdn2d(_zero_insert_conv(x, w), f, padding=(1, 1, 1, 1), gain=4)  # zero-insert, full conv, blur
    assert torch.allclose(ops.conv2d_resample(x, w, f, up=2, padding=1), slow, atol=1e-5)
