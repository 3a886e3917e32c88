"""PGGAN family: fixture conformance for both layouts, round trips on other configurations, blending, errors."""

import dataclasses
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch

from generator_fixtures import expected, fixture_file
from pggan_writers import he_constant, tf1_variables, write_pgan_zoo, write_pggan_tf1, zoo_fields, zoo_state_dict
from tlgan.generators.checkpoints import read_checkpoint, recognise
from tlgan.generators.pggan import (
    PGGANConfig,
    PGGANGenerator,
    load_pgan,
    load_pggan_tf1,
    random_pggan,
    tf1_config,
    tf1_variable_shapes,
    upscale2d,
)
from tlgan.weights import WeightsError

ZOO = "pgan/pgan_public_32.pt"
ZOO_NPZ = "pgan/pgan_public_32_expected.npz"
TF1 = "pggan_tf1/pggan_tf1_public_32.pkl"
TF1_NPZ = "pggan_tf1/pggan_tf1_public_32_expected.npz"


def run(net: PGGANGenerator, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(z, dtype=np.float32))).numpy()


def zoo_cfg(z_dim: int, channels: tuple[int, ...], **kw) -> PGGANConfig:
    """A config with pytorch_GAN_zoo's conventions."""
    return PGGANConfig(z_dim=z_dim, channels=channels, dense_gain=math.sqrt(2), torgb_gain=math.sqrt(2),
                       scale_bias=True, dense_bias_per_channel=False, fused_scale=False, **kw)


# ---------------------------------------------------------------- fixtures written by the original code

@pytest.mark.parametrize("network, key", [(None, "img_avgG"), ("avgG", "img_avgG"), ("netG", "img_netG")])
def test_zoo_fixture_matches(network, key):
    ref = expected(ZOO_NPZ)
    net = load_pgan(fixture_file(ZOO), network=network)
    assert np.abs(run(net, ref["z"]) - ref[key]).max() <= 1e-4
    assert net.info["network"] == (network or "avgG")
    assert (net.z_dim, net.img_resolution, net.img_channels) == (64, 32, 3)
    assert not net.training


def test_zoo_fixture_pixel_normalises_z():
    ref = expected(ZOO_NPZ)
    net = load_pgan(fixture_file(ZOO))
    assert np.abs(run(net, 3.0 * ref["z"]) - ref["img_avgG_zscaled"]).max() <= 1e-4


def test_zoo_he_constant_multiplies_the_bias_too():
    net = load_pgan(fixture_file(ZOO))
    assert net.dense.wscale == pytest.approx(he_constant(64))
    assert net.torgb[3].wscale == pytest.approx(he_constant(16))
    x = torch.randn(2, 48, 4, 4)
    layer = net.conv
    manual = (torch.nn.functional.conv2d(x, layer.weight, padding=1) + layer.bias.view(1, -1, 1, 1)) * layer.wscale
    assert torch.allclose(layer(x), manual, atol=1e-5)


@pytest.mark.parametrize("network, key", [("Gs", "img_Gs"), ("G", "img_G")])
def test_tf1_fixture_matches(network, key):
    ref = expected(TF1_NPZ)
    net = load_pggan_tf1(fixture_file(TF1), network=network)
    assert np.abs(run(net, ref["z"]) - ref[key]).max() <= 1e-4
    assert net.info["network"] == network and net.info["format"] == "pggan_tf1"
    assert (net.z_dim, net.img_resolution, net.img_channels) == (32, 32, 3)


def test_the_family_is_recognised_from_the_content(tmp_path):
    for path, family in ((fixture_file(ZOO), "pgan"), (fixture_file(TF1), "pggan-tf1")):
        renamed = tmp_path / f"model{path.suffix[::-1]}"  # the file name says nothing
        renamed.write_bytes(path.read_bytes())
        assert recognise(read_checkpoint(renamed)) == family
    other = tmp_path / "other.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2)}}, other)
    assert recognise(read_checkpoint(other)) == "rosinality"
    with pytest.raises(WeightsError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pt")


def test_first_layer_weight_is_the_applied_dense():
    net = load_pggan_tf1(fixture_file(TF1))
    w = net.first_layer_weight()
    assert w.shape == (32 * 16, 32)
    np.testing.assert_allclose(w, net.dense.weight.numpy() * math.sqrt(2) / 4 / math.sqrt(32), rtol=1e-6)


# ---------------------------------------------------------------- the TL-GAN network's configuration

def test_celebahq_1024_configuration():
    """karras2018iclr-celebahq-1024x1024.pkl: G_paper defaults, 512-d z, 23.1M parameters (the paper's count)."""
    cfg = tf1_config({"num_channels": 3, "resolution": 1024, "label_size": 0})
    assert cfg.z_dim == 512 and cfg.channels == (512, 512, 512, 512, 256, 128, 64, 32, 16) and cfg.fused_scale
    net = random_pggan(cfg)
    assert net.img_resolution == 1024
    assert sum(p.numel() for p in net.parameters()) == 23_079_115
    variables = tf1_variables(net)[1:]
    shapes = tf1_variable_shapes(cfg)
    assert [n for n, _ in variables] == list(shapes)
    assert all(tuple(v.shape) == shapes[n] for n, v in variables)
    assert shapes["1024x1024/Conv0_up/weight"] == (3, 3, 16, 32) and shapes["ToRGB_lod0/weight"] == (1, 1, 16, 3)
    assert shapes["4x4/Dense/weight"] == (512, 8192) and shapes["4x4/Dense/bias"] == (512,)
    with torch.no_grad():
        img = net(torch.randn(1, 512))
    assert img.shape == (1, 3, 1024, 1024) and torch.isfinite(img).all()


def test_g_paper_defaults_round_trip_at_8px(tmp_path):
    """The celebahq defaults (512 feature maps, 512-d z) at a smaller resolution, through a TF1 pickle."""
    kwargs = {"num_channels": 3, "resolution": 8, "label_size": 0}
    gs = random_pggan(tf1_config(kwargs), seed=3)
    net = load_pggan_tf1(write_pggan_tf1(tmp_path / "g.pkl", gs, kwargs))
    z = np.random.default_rng(0).standard_normal((1, 512))
    np.testing.assert_array_equal(run(net, z), run(gs, z))


# ---------------------------------------------------------------- round trips on other configurations

@pytest.mark.parametrize("kwargs", [
    {"num_channels": 3, "resolution": 64, "label_size": 0, "fmap_base": 256, "fmap_max": 48, "latent_size": 24},
    {"num_channels": 1, "resolution": 16, "fmap_base": 64, "fmap_max": 16, "fused_scale": False},
    {"num_channels": 3, "resolution": 8, "fmap_base": 32, "fmap_decay": 0.5, "use_leakyrelu": False,
     "normalize_latents": False, "use_pixelnorm": False},
    {"num_channels": 3, "resolution": 4, "fmap_base": 16, "fmap_max": 16},
])
def test_tf1_round_trip(tmp_path, kwargs):
    cfg = tf1_config(kwargs)
    gs, g = random_pggan(cfg, seed=1), random_pggan(cfg, seed=2)
    path = write_pggan_tf1(tmp_path / "net.pkl", gs, kwargs, g=g)
    assert recognise(read_checkpoint(path)) == "pggan-tf1"
    z = np.random.default_rng(1).standard_normal((3, cfg.z_dim))
    loaded = load_pggan_tf1(path)
    assert (loaded.z_dim, loaded.img_resolution, loaded.img_channels) == (cfg.z_dim, cfg.resolution,
                                                                          kwargs["num_channels"])
    np.testing.assert_array_equal(run(loaded, z), run(gs, z))
    np.testing.assert_array_equal(run(load_pggan_tf1(path, network="G"), z), run(g, z))


@pytest.mark.parametrize("channels, z_dim, loss, slope", [
    ((32, 24, 16, 8, 8), 40, "WGANGP", 0.2),
    ((16, 16), 20, "DCGAN", 0.1),
    ((8,), 12, "MSE", 0.2),
])
def test_zoo_round_trip(tmp_path, channels, z_dim, loss, slope):
    cfg = zoo_cfg(z_dim, channels, leaky_slope=slope, output_activation="tanh" if loss != "WGANGP" else None)
    avg, netg = random_pggan(cfg, seed=4), random_pggan(cfg, seed=5)
    path = write_pgan_zoo(tmp_path / "pgan.pt", avg, netg, zoo_fields(avg, loss=loss))
    assert recognise(read_checkpoint(path)) == "pgan"
    z = np.random.default_rng(2).standard_normal((3, z_dim))
    loaded = load_pgan(path)
    assert loaded.info["network"] == "avgG" and loaded.img_resolution == cfg.resolution
    np.testing.assert_array_equal(run(loaded, z), run(avg, z))
    np.testing.assert_array_equal(run(load_pgan(path, network="netG"), z), run(netg, z))
    if loss != "WGANGP":
        assert np.abs(run(loaded, z)).max() <= 1.0


def test_zoo_without_avg_and_legacy_format_uses_netg(tmp_path):
    cfg = zoo_cfg(16, (16, 8, 8))
    netg = random_pggan(cfg, seed=6)
    path = write_pgan_zoo(tmp_path / "old.pt", None, netg, zoo_fields(netg), legacy=True)
    assert recognise(read_checkpoint(path)) == "pgan"
    loaded = load_pgan(path)
    assert loaded.info["network"] == "netG"
    z = np.random.default_rng(3).standard_normal((2, 16))
    np.testing.assert_array_equal(run(loaded, z), run(netg, z))
    with pytest.raises(WeightsError, match="no generator 'avgG'"):
        load_pgan(path, network="avgG")


# ---------------------------------------------------------------- architecture facts

def test_fused_upscale_conv_equals_upscale_then_conv_with_flipped_kernel():
    """TF's fused Conv0_up (4x4 summed kernel, stride-2 transposed conv) is nearest 2x + 3x3 conv."""
    cfg = tf1_config({"num_channels": 3, "resolution": 16, "fmap_base": 64, "fmap_max": 16})
    fused = random_pggan(cfg, seed=7)
    plain = PGGANGenerator(dataclasses.replace(cfg, fused_scale=False)).eval()
    state = {k: (v.permute(1, 0, 2, 3).flip(2, 3) if ".conv0.weight" in k else v)
             for k, v in fused.state_dict().items()}
    plain.load_state_dict(state)
    z = torch.randn(3, cfg.z_dim)
    with torch.no_grad():
        assert torch.allclose(fused(z), plain(z), atol=1e-4)


def test_lod_blends_the_top_level_with_the_upscaled_previous_one(tmp_path):
    cfg = zoo_cfg(16, (16, 16, 8))
    base = random_pggan(cfg, seed=8)
    z = torch.randn(2, 16)
    with torch.no_grad():
        feats = base.features(z)
        last, prev = base.torgb[2](feats[2]), upscale2d(base.torgb[1](feats[1]))
        base.lod = 0.3
        np.testing.assert_allclose(base(z).numpy(), (0.3 * prev + 0.7 * last).numpy(), atol=1e-5)
        base.lod = 1.0
        np.testing.assert_allclose(base(z).numpy(), prev.numpy(), atol=1e-5)
        base.lod = 1.5
        coarse = upscale2d(base.torgb[0](feats[0]), 4)
        np.testing.assert_allclose(base(z).numpy(), (0.5 * coarse + 0.5 * prev).numpy(), atol=1e-5)
    # the zoo's alpha and TF's lod variable are read from the file
    base.lod = 0.0
    zoo_path = write_pgan_zoo(tmp_path / "a.pt", base, base, zoo_fields(base, alpha=0.3))
    assert load_pgan(zoo_path).lod == pytest.approx(0.3)
    kwargs = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 16}
    tf_path = write_pggan_tf1(tmp_path / "l.pkl", random_pggan(tf1_config(kwargs)), kwargs, lod=0.5)
    assert load_pggan_tf1(tf_path).lod == 0.5 and load_pggan_tf1(tf_path, lod=0.0).lod == 0.0


def test_deterministic_and_dtype_agnostic():
    cfg = tf1_config({"num_channels": 3, "resolution": 16, "fmap_base": 64, "fmap_max": 32})
    net = random_pggan(cfg, seed=9)
    z = torch.randn(4, cfg.z_dim)
    with torch.no_grad():
        a, b = net(z), net(z)
        c = net.double()(z.double())
    assert torch.equal(a, b) and c.dtype == torch.float64
    assert torch.allclose(a.double(), c, atol=1e-4)
    assert net.first_layer_weight().shape == (32 * 16, cfg.z_dim)


# ---------------------------------------------------------------- refusals

def test_conditional_and_foreign_tf1_networks_are_refused(tmp_path):
    kwargs = {"num_channels": 3, "resolution": 8, "fmap_base": 16, "fmap_max": 16, "label_size": 4}
    gs = random_pggan(tf1_config({**kwargs, "label_size": 0}))
    with pytest.raises(WeightsError, match="conditional"):
        load_pggan_tf1(write_pggan_tf1(tmp_path / "c.pkl", gs, kwargs))
    path = write_pggan_tf1(tmp_path / "d.pkl", gs, {**kwargs, "label_size": 0})
    with pytest.raises(WeightsError, match=r"D_paper, not G_paper|'D_paper'"):
        load_pggan_tf1(path, network="D")
    with pytest.raises(WeightsError, match="none named 'Gz'"):
        load_pggan_tf1(path, network="Gz")


def test_tf1_variables_that_do_not_match_the_kwargs_are_refused(tmp_path):
    kwargs = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 16}
    gs = random_pggan(tf1_config(kwargs))
    path = write_pggan_tf1(tmp_path / "w.pkl", gs, {**kwargs, "fused_scale": False})
    with pytest.raises(WeightsError, match=r"w\.pkl.*missing \['8x8/Conv0/weight'"):
        load_pggan_tf1(path)
    path = write_pggan_tf1(tmp_path / "m.pkl", gs, {**kwargs, "fmap_max": 8})
    with pytest.raises(WeightsError, match="wrong shapes"):
        load_pggan_tf1(path)


def test_not_a_network_pickle_is_refused(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(WeightsError, match="not a TF1 PGGAN network pickle"):
        load_pggan_tf1(path)
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(fixture_file(TF1).read_bytes()[:5000])
    with pytest.raises(WeightsError, match=re.escape("cut.pkl")):
        load_pggan_tf1(truncated)


def test_zoo_corrupt_foreign_and_mismatched_files_are_refused(tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(fixture_file(ZOO).read_bytes()[:10000])
    with pytest.raises(WeightsError, match=re.escape("cut.pt")):
        load_pgan(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"g_ema": {}}, foreign)
    with pytest.raises(WeightsError, match="not a pytorch_GAN_zoo PGAN checkpoint"):
        load_pgan(foreign)
    cfg = zoo_cfg(16, (16, 8))
    net = random_pggan(cfg)
    bad = write_pgan_zoo(tmp_path / "bad.pt", net, net, {**zoo_fields(net), "depthOtherScales": [16]})
    with pytest.raises(WeightsError, match="disagree"):
        load_pgan(bad)
    cond = write_pgan_zoo(tmp_path / "cond.pt", net, net, {**zoo_fields(net), "categoryVectorDim": 4})
    with pytest.raises(WeightsError, match="conditional"):
        load_pgan(cond)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_zoo_file_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    net = random_pggan(zoo_cfg(8, (8,)))
    path = tmp_path / "evil.pt"
    torch.save({"config": _Evil(str(marker)), "avgG": zoo_state_dict(net)}, path)
    with pytest.raises(WeightsError, match=re.escape("evil.pt")):
        load_pgan(path)
    assert not marker.exists()


def test_zoo_config_of_another_type_is_refused(tmp_path):
    net = random_pggan(zoo_cfg(8, (8,)))
    path = tmp_path / "odd.pt"
    torch.save({"config": [1, 2], "avgG": zoo_state_dict(net)}, path)
    with pytest.raises(WeightsError, match="not a PGAN BaseConfig"):
        load_pgan(path)
    torch.save({"config": zoo_fields(net), "avgG": zoo_state_dict(net)}, path)  # a plain dict is fine
    z = np.random.default_rng(4).standard_normal((2, 8))
    np.testing.assert_array_equal(run(load_pgan(path), z), run(net, z))
