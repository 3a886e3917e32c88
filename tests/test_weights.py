"""Weights: pinned checksums, clear errors for missing or corrupt files, atomic fetch."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from tlgan import weights
from tlgan.weights import Model, Package, WeightFile, WeightsError

from model_support import need_models

PKG = Package("pypi", "fake-pkg", "1.0", "MIT")
GOOD = b"good weights"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A catalogue with one model whose package is a wheel built here; the registry is never asked."""
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "home"))
    wf = WeightFile(PKG, "fake_pkg/w.bin", hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setitem(weights.MODELS, "fake", Model("fake", (wf,), "a test model"))
    served = {"bytes": GOOD}

    def download(pkg, dest):
        wheel = dest / "fake_pkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr("fake_pkg/w.bin", served["bytes"])
        return wheel

    monkeypatch.setattr(weights, "_download", download)
    return wf, served


def test_fetch_verifies_and_places_the_file(fake):
    wf, _ = fake
    assert weights.status("fake") == "missing"
    with pytest.raises(WeightsError, match="is missing; run `tlgan models fetch fake`"):
        weights.path_of("fake", "w.bin")
    weights.fetch(["fake"], log=lambda s: None)
    assert weights.status("fake") == "present"
    assert weights.path_of("fake", "w.bin").read_bytes() == GOOD


def test_a_different_file_from_the_registry_is_refused(fake):
    wf, served = fake
    served["bytes"] = b"tampered"
    with pytest.raises(WeightsError, match="expected .*refusing it"):
        weights.fetch(["fake"], log=lambda s: None)
    assert not weights.local_path(wf).exists()
    assert not list(weights.local_path(wf).parent.glob("*.part"))


def test_corrupt_file_is_detected_and_refetched(fake):
    wf, _ = fake
    weights.fetch(["fake"], log=lambda s: None)
    weights.local_path(wf).write_bytes(b"truncat")
    assert weights.status("fake") == "corrupt"
    with pytest.raises(WeightsError, match="is corrupt .*delete it and run `tlgan models fetch fake`"):
        weights.path_of("fake", "w.bin")
    weights.fetch(["fake"], log=lambda s: None)
    assert weights.status("fake") == "present"


def test_unknown_model_and_unreachable_registry(fake, monkeypatch):
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        weights.fetch(["nope"])

    def offline(pkg, dest):
        raise WeightsError(f"could not fetch {pkg.spec}; Check that the package registry is reachable")

    monkeypatch.setattr(weights, "_download", offline)
    with pytest.raises(WeightsError, match="could not fetch fake-pkg==1.0"):
        weights.fetch(["fake"], log=lambda s: None)


def test_corrupt_generator_weights_give_a_clear_error(tmp_path):
    from tlgan.generators.dcgan import DCGANGenerator

    bad = tmp_path / "weights.tar"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="cannot read generator weights"):
        DCGANGenerator(str(bad), "x")


def test_catalogue_pins_every_default_file():
    for name in weights.DEFAULT_MODELS:
        for f in weights.MODELS[name].files:
            assert len(f.sha256) == 64 and f.package.license


def test_catalogue_is_consistent():
    """What a broken catalogue entry would get wrong: a name, a pin, a member in the wrong package's layout."""
    import re

    assert weights.DEFAULT_MODELS and not any(weights.MODELS[n].oracle for n in weights.DEFAULT_MODELS)
    for key, model in weights.MODELS.items():
        assert model.name == key and model.files and model.purpose
        names = [f.filename for f in model.files]
        assert len(set(names)) == len(names), f"{key}: path_of finds files by name, and two share one: {names}"
        assert len({f.sha256 for f in model.files}) == len(model.files), f"{key}: two files pinned to one SHA"
        for f in model.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f"{key}: {f.member} pin is not a lower-case SHA-256"
            assert f.package.registry in ("pypi", "npm") and f.package.license and f.package.version
            # an npm tarball unpacks under package/; a wheel holds the import package's folders at its top
            assert f.member.startswith("package/") == (f.package.registry == "npm"), f"{key}: {f.member}"
            assert not f.member.startswith("/") and ".." not in Path(f.member).parts


@need_models(*weights.DEFAULT_MODELS)
def test_every_default_file_is_cached_and_matches_its_pin():
    for name in weights.DEFAULT_MODELS:
        assert weights.status(name) == "present"
        for f in weights.MODELS[name].files:
            path = weights.path_of(name, f.filename)  # verifies the SHA-256
            assert path == weights.local_path(f) and weights.sha256_of(path) == f.sha256
