"""Users' checkpoint files through the public API: recognised by content, bound to a space, registered by name."""

import os
import pickle
import re

import numpy as np
import pytest
import torch

from generator_fixtures import expected, fixture_file
from tlgan.generators import library, load_generator, standard_normal
from tlgan.generators.checkpoints import CheckpointGenerator
from tlgan.registry import UnknownNameError
from tlgan.weights import WeightsError

ZOO = "pgan/pgan_public_32.pt"
TF1 = "pggan_tf1/pggan_tf1_public_32.pkl"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("rel, npz, key", [(ZOO, "pgan/pgan_public_32_expected.npz", "img_avgG"),
                                           (TF1, "pggan_tf1/pggan_tf1_public_32_expected.npz", "img_Gs")])
def test_a_checkpoint_path_is_a_generator(rel, npz, key):
    gen = load_generator(str(fixture_file(rel)), device="cpu")
    assert isinstance(gen, CheckpointGenerator) and gen.spaces == ("z",) and gen.framing == "celebahq"
    exp = expected(npz)
    images = gen.render(exp["z"]).numpy()
    want = np.round((np.clip(exp[key], -1, 1) + 1) * 127.5).transpose(0, 2, 3, 1)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert np.abs(images.astype(int) - want).max() <= 1
    # (seed, index) names the same z as for every other family
    np.testing.assert_array_equal(gen.sample(3, 7), standard_normal(3, gen.z_dim, 7))
    assert gen.name == f"{fixture_file(rel).stem}-{gen.sha256[:8]}" and len(gen.sha256) == 64


def test_pggan_has_only_z_and_no_truncation():
    path = str(fixture_file(ZOO))
    with pytest.raises(WeightsError, match="no 'w' latent space; it has: z"):
        load_generator(path, space="w")
    with pytest.raises(WeightsError, match="truncation needs a mapping network"):
        load_generator(path, truncation=0.7)
    with pytest.raises(UnknownNameError, match="unknown latent space 'q'"):
        load_generator(path, space="q")


def test_forcing_the_wrong_family_says_so():
    with pytest.raises(WeightsError, match=r"does not hold a pggan-tf1 generator|not a TF1 PGGAN"):
        load_generator(str(fixture_file(ZOO)), family="pggan-tf1")
    with pytest.raises(WeightsError, match="unknown generator family 'biggan'"):
        load_generator(str(fixture_file(ZOO)), family="biggan")


def test_foreign_and_dangerous_files_are_refused(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "ffhq.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(WeightsError, match="names the global"):
        load_generator(str(evil))
    assert not marker.exists()
    other = tmp_path / "weights.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, other)
    with pytest.raises(WeightsError, match="keys model, which is no generator checkpoint"):
        load_generator(str(other))
    with pytest.raises(WeightsError, match="is a folder"):
        load_generator(str(tmp_path))


def test_register_list_load_and_notice_a_changed_file(home, tmp_path):
    src = tmp_path / "celebahq.pt"
    src.write_bytes(fixture_file(ZOO).read_bytes())
    entry = library.add(src, "celeb")
    assert entry["family"] == "pgan" and entry["resolution"] == 32 and entry["spaces"] == ["z"]
    assert list(library.registered()) == ["celeb"]
    gen = load_generator("celeb", device="cpu")
    assert gen.name == "celeb" and gen.sha256 == entry["sha256"]
    # the same file given by path is the same generator for axes (same checksum)
    assert load_generator(str(src)).sha256 == gen.sha256
    with pytest.raises(WeightsError, match="built-in generator"):
        library.add(src, "digiface-dcgan")
    with pytest.raises(WeightsError, match="must be 1-64 letters"):
        library.add(src, "../evil")
    data = bytearray(src.read_bytes())
    data[-100] ^= 0xFF
    src.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="changed since it was registered as 'celeb'"):
        load_generator("celeb")
    src.unlink()
    with pytest.raises(WeightsError, match="which is gone"):
        load_generator("celeb")
    library.remove("celeb")
    assert library.registered() == {}


def test_a_damaged_library_file_is_named(home):
    home.mkdir(parents=True)
    (home / "generators.json").write_text("[1, 2")
    with pytest.raises(WeightsError, match=re.escape("generators.json is not readable JSON")):
        library.registered()


def test_discover_and_edit_on_a_pggan_file_in_z(tmp_path):
    from click.testing import CliRunner

    from tlgan.axes import Axes
    from tlgan.cli import main

    for rel, family in ((ZOO, "pgan"), (TF1, "pggan-tf1")):
        out = tmp_path / family
        res = CliRunner().invoke(main, ["discover", "-g", str(fixture_file(rel)), "-e", "toy-linear", "-n", "200",
                                        "--out", str(out), "--grid-features", "a", "--grid-lock", "",
                                        "--device", "cpu"])
        assert res.exit_code == 0, res.output
        axes = Axes.load(out / "axes.safetensors")
        assert axes.latent_space == "z" and axes.meta["generator_sha256"] and axes.vectors.shape[1] in (32, 64)
        res = CliRunner().invoke(main, ["edit", str(out / "axes.safetensors"), "--move", "a=+1",
                                        "-o", str(tmp_path / f"{family}.png")])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, ["discover", "-g", str(fixture_file(rel)), "--space", "w", "-n", "8",
                                        "--out", str(tmp_path / "no")])
        assert res.exit_code == 1 and "has no 'w' latent space" in res.output
