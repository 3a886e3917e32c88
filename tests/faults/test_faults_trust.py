"""Fault suite, issue 21 §2: nothing silently wrong. Tampered weights kept at the same size and mtime, runs whose
z no longer matches their seed, generators that draw NaN, and values out of any sensible range."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from fault_support import files_of, make_run, one_line, run_cli


def _tamper_keeping_stat(path: Path, at: int) -> None:
    """Change one byte at ``at`` and put size and mtime back, as bit rot, `cp -p` or `touch -r` would."""
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_weights_tampered_near_an_end_are_refused_on_the_next_start(tfjs_model, monkeypatch):
    from tlgan import weights

    _js, binary = tfjs_model
    weights.path_of("fake-tfjs", "model.bin")  # hashed in full, stamped
    _tamper_keeping_stat(binary, len(binary.read_bytes()) - 1)
    monkeypatch.setattr(weights, "_verified", {})  # a new process
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")


def test_weights_tampered_in_the_middle_are_caught_by_check_verify_and_daily(tfjs_model, monkeypatch):
    from tlgan import weights

    _js, binary = tfjs_model
    monkeypatch.setattr(weights, "END_BYTES", 4)  # so that the middle of this small file is outside both ends
    weights.path_of("fake-tfjs", "model.bin")
    _tamper_keeping_stat(binary, len(binary.read_bytes()) // 2)
    monkeypatch.setattr(weights, "_verified", {})
    # Each start trusts a fresh stamp (README: the middle of a file is hashed once a day)...
    assert weights.path_of("fake-tfjs", "model.bin") == binary
    assert _listed("models", "list") == "present"
    # ...but `models list --check` hashes in full, and so does `tlgan --verify` for any command.
    assert _listed("models", "list", "--check") == "corrupt"
    try:
        assert _listed("--verify", "models", "list") == "corrupt"
    finally:
        weights.full_checks(False)


def _listed(*args) -> str:
    out = run_cli(*args, ok=True).output
    return next(ln for ln in out.splitlines() if ln.startswith("fake-tfjs")).split()[1]


def test_a_day_old_stamp_forces_a_full_hash(tfjs_model, monkeypatch):
    from tlgan import weights

    _js, binary = tfjs_model
    monkeypatch.setattr(weights, "END_BYTES", 4)
    weights.path_of("fake-tfjs", "model.bin")
    stamp = binary.with_name("model.bin.verified")
    _tamper_keeping_stat(binary, len(binary.read_bytes()) // 2)
    doc = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**doc, "checked": time.time() - weights.FULL_CHECK_EVERY_S - 1}))
    monkeypatch.setattr(weights, "_verified", {})
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")


def test_fetch_hashes_in_full(tfjs_model, monkeypatch):
    from tlgan import weights

    _js, binary = tfjs_model
    monkeypatch.setattr(weights, "END_BYTES", 4)
    weights.path_of("fake-tfjs", "model.bin")
    _tamper_keeping_stat(binary, len(binary.read_bytes()) // 2)
    monkeypatch.setattr(weights, "_verified", {})

    def offline(pkg, dest):
        raise weights.WeightsError(f"could not fetch {pkg.spec}")

    monkeypatch.setattr(weights, "_download", offline)
    msg = one_line(run_cli("models", "fetch", "fake-tfjs"))  # hashed in full: not "2 files verified"
    assert "could not fetch" in msg


def test_registered_generator_tampered_keeping_size_and_mtime_is_refused(home, tmp_path, monkeypatch):
    from tlgan import weights
    from tlgan.generators import library
    from tlgan.weights import WeightsError, sha256_of

    ckpt = tmp_path / "g.pkl"
    ckpt.write_bytes(bytes(range(256)) * 64)
    st = ckpt.stat()
    library._save({"mine": {"path": str(ckpt), "sha256": sha256_of(ckpt), "size": st.st_size, "mtime": st.st_mtime,
                            "family": "stylegan2", "resolution": 32, "spaces": ["z"], "z_dim": 32}})
    assert library.verified("mine")["path"] == str(ckpt)
    _tamper_keeping_stat(ckpt, 0)
    monkeypatch.setattr(weights, "_verified", {})  # a new process
    with pytest.raises(WeightsError, match="changed since it was registered"):
        library.verified("mine")


# ---------------------------------------------------------------- a run's z belongs to its seed


def test_edited_seed_with_a_lost_z_chunk_is_refused(tmp_path, toy):
    run = make_run(tmp_path / "run", toy)
    info = json.loads((run.path / "run.json").read_text())
    (run.path / "run.json").write_text(json.dumps({**info, "seed": 77}))
    (run.path / "data.zarr/z/c/1/0").unlink()
    before = files_of(run.path)
    msg = one_line(run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 96, "--seed", 77, "--chunk", 32,
                           "--save-images", "-o", run.path, "--device", "cpu"))
    assert "are not the latents of seed 77 that run.json names" in msg
    assert [f for f in files_of(run.path) if f[0] != "run.lock"] == [f for f in before if f[0] != "run.lock"]


@pytest.mark.parametrize("what", ["one chunk", "the whole array"])
def test_z_from_another_run_is_refused_by_fit_and_sample(tmp_path, toy, what):
    from tlgan.sample import sample

    run = make_run(tmp_path / "run", toy)
    other = sample(tmp_path / "other", *toy, n=96, seed=5, chunk=32, save_images=True, progress=False)
    if what == "one chunk":
        shutil.copy(other.path / "data.zarr/z/c/2/0", run.path / "data.zarr/z/c/2/0")
    else:
        shutil.rmtree(run.path / "data.zarr/z")
        shutil.copytree(other.path / "data.zarr/z", run.path / "data.zarr/z")
    msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
    assert "are not the latents of seed 3 that run.json names" in msg
    assert not (tmp_path / "ax.safetensors").exists()


@pytest.mark.parametrize("source", ["another run", "another place in the run"])
def test_labels_chunk_from_another_run_or_place_is_refused(tmp_path, toy, source):
    from tlgan.sample import RunError, sample

    run = make_run(tmp_path / "run", toy)
    want = run.labels()
    other = sample(tmp_path / "other", *toy, n=96, seed=5, chunk=32, save_images=True, progress=False)
    labels = "data.zarr/labels/toy-linear"
    target = run.path / labels / "c/2/0"
    shutil.copy(other.path / labels / "c/2/0" if source.startswith("another run") else run.path / labels / "c/1/0",
                target)
    with pytest.raises(RunError, match=rf"{target} \(samples 64..95 of {labels}\) does not match its digest"):
        run.labels()
    msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
    assert "does not match its digest" in msg and "delete that file and rerun" in msg
    target.unlink()  # as the message says: the same command redoes it
    np.testing.assert_array_equal(make_run(tmp_path / "run", toy).labels(), want)


def test_z_chunk_moved_within_the_run_is_refused(tmp_path, toy):
    from tlgan.sample import RunError

    run = make_run(tmp_path / "run", toy)
    shutil.copy(run.path / "data.zarr/z/c/1/0", run.path / "data.zarr/z/c/2/0")
    with pytest.raises(RunError, match=r"samples 64..95 of data.zarr/z\) does not match its digest"):
        _ = run.noise


# ---------------------------------------------------------------- a generator that draws NaN


def test_generator_drawing_nan_is_an_error_not_black_pictures(tmp_path, toy, toy_axes, monkeypatch):
    import torch

    from tlgan.generators import NonFiniteOutputError

    gen, _ = toy
    monkeypatch.setattr(type(gen), "synthesize", lambda self, z: torch.full((len(z), 3, 8, 8), float("nan")))
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite pixels"):
        gen.render(gen.sample(2, 0))
    out = tmp_path / "e.png"
    msg = one_line(run_cli("edit", toy_axes, "--move", "a=1", "-o", out, "--device", "cpu"))
    assert "weights are damaged" in msg and not out.exists()


def test_checkpoint_with_nan_weights_is_refused_when_opened(tmp_path):
    import torch

    from nvlabs_writer import random_stylegan2, write_stylegan2_snapshot
    from tlgan.generators import load_generator
    from tlgan.weights import WeightsError

    net = random_stylegan2(16, 8, 8, mapping_layers=1)
    with torch.no_grad():
        net.synthesis.b4.conv1.weight.fill_(float("inf"))
    path = write_stylegan2_snapshot(tmp_path / "g.pkl", net)
    with pytest.raises(WeightsError, match=re.escape("g.pkl: its generator draws NaN or infinite pixels")):
        load_generator(str(path), "cpu")


# ---------------------------------------------------------------- values out of range


@pytest.mark.parametrize("args, said", [
    (("edit", "AXES", "--move", "a=1e30"), "--move a 1e+30 is out of range"),
    (("edit", "AXES", "--move", "a=nan"), "--move a nan is out of range"),
    (("edit", "AXES", "--seed", -1), "--seed -1 is out of range"),
    (("edit", "AXES", "--seed", 2**63), "--seed 9,223,372,036,854,775,808 is out of range"),
    (("grid", "AXES", "--seeds", f"0,{2**64 - 1}"), "--seed 18,446,744,073,709,551,615 is out of range"),
    (("grid", "AXES", "--seeds", "-1"), "--seed -1 is out of range"),
    (("train-encoder", "RUN", "-n", 0), "-n 0 is out of range"),
    (("train-encoder", "RUN", "--epochs", 0), "--epochs 0 is out of range"),
    (("evaluate", "AXES", "--identity-n", -1), "--identity-n -1 is out of range"),
    (("dci", "RUN", "--samples", -7), "--samples -7 is out of range"),
    (("invert", "PHOTO", "--identity-weight", "nan"), "--identity-weight nan is out of range"),
])
def test_out_of_range_values_are_refused(tmp_path, toy_axes, args, said):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    subs = {"AXES": toy_axes, "RUN": tmp_path / "no-run", "PHOTO": photo}
    out = tmp_path / ("out.png" if args[0] in ("edit", "grid") else "out")
    before = sorted(p.name for p in tmp_path.iterdir())
    device = () if args[0] == "dci" else ("--device", "cpu")
    msg = one_line(run_cli(*[subs.get(a, a) if isinstance(a, str) else a for a in args], "-o", out, *device))
    assert said in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_latent_files_complex_or_far_off_norm(tmp_path, toy_axes):
    z = tmp_path / "z.npy"
    np.save(z, np.ones(16, np.complex64))
    msg = one_line(run_cli("edit", toy_axes, "--latent", z, "-o", tmp_path / "e.png", "--device", "cpu"))
    assert "holds complex64 values" in msg
    np.save(z, np.full(16, 1e6, np.float32))
    with pytest.warns(UserWarning, match=r"z.npy: latent norm 4e\+06 is .*x the generator's typical"):
        run_cli("edit", toy_axes, "--latent", z, "-o", tmp_path / "e.png", "--device", "cpu", ok=True)
    np.save(z, np.full(16, 0.5, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_cli("edit", toy_axes, "--latent", z, "-o", tmp_path / "e.png", "--device", "cpu", ok=True)
