"""Fault suite, issue 21 §3 and §4: hostile files are refused before they cost memory or open other files, and
unchecked options, deep JSON or a killed fetch give one line and leave nothing behind."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from fault_support import make_run, one_line, run_cli


class _Reconstruct:
    """Pickles as numpy's own array reconstruction, declaring ``shape`` with no data behind it."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        core = getattr(np, "_core", None) or np.core
        return core.multiarray._reconstruct, (np.ndarray, self.shape, b"b")


class _NewArray:
    def __reduce__(self):
        return np.ndarray, ((100_000, 100_000),)


@pytest.mark.parametrize("payload", [_Reconstruct((10**9,)), _Reconstruct((50_000, 50_000)), _NewArray()])
def test_tiny_pickle_declaring_a_huge_array_is_refused_before_allocating(tmp_path, payload):
    from tlgan.generators.safe_pickle import UnsafePickleError, load_pickle

    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=4))
    assert path.stat().st_size < 200
    with pytest.raises(UnsafePickleError, match=r"declares an array of shape .* but holds only \d+ bytes"):
        load_pickle(path)


def test_pickled_arrays_within_the_file_still_load(tmp_path):
    from tlgan.generators.safe_pickle import load_pickle

    a = np.arange(1000, dtype=np.float32)
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"a": a, "b": a.reshape(10, 100), "c": [a[:3]]}, protocol=4))
    got = load_pickle(path)
    assert np.array_equal(got["a"], a) and got["b"].shape == (10, 100) and type(got["a"]) is np.ndarray


def test_zip_bomb_checkpoint_is_refused_before_unpacking(tmp_path):
    from tlgan.generators.checkpoints import read_checkpoint
    from tlgan.weights import WeightsError

    path = tmp_path / "bomb.pt"
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("archive/data.pkl", "w") as fh:
        for _ in range(64):
            fh.write(block)
    assert path.stat().st_size < (1 << 20)
    with pytest.raises(WeightsError, match=r"bomb.pt is a zip whose members unpack to 67,108,864 bytes"):
        read_checkpoint(path)


@pytest.mark.parametrize("setting, said", [
    ({"z_dim": 20_000_000}, "z_dim=20000000 but mapping.fc0 takes 8 inputs"),
    ({"w_dim": 10**7}, "w_dim=10000000 but mapping.w_avg has 8"),
    ({"img_resolution": 16384}, "img_resolution=16384 but the synthesis network's last block is b16"),
])
def test_stylegan_settings_that_do_not_match_the_weights_are_refused(tmp_path, setting, said):
    from nvlabs_writer import random_stylegan2, write_stylegan2_snapshot
    from tlgan.generators import load_generator
    from tlgan.weights import WeightsError

    net = random_stylegan2(16, 8, 8, mapping_layers=1)
    net.nvlabs_init_kwargs = {**net.nvlabs_init_kwargs, **setting}
    path = write_stylegan2_snapshot(tmp_path / "g.pkl", net)
    with pytest.raises(WeightsError, match="settings do not match its weights") as e:
        load_generator(str(path), "cpu")
    assert said in str(e.value)
    msg = one_line(run_cli("sample", "-g", path, "-e", "toy-linear", "-n", 16, "-o", tmp_path / "r", "--device",
                           "cpu"))
    assert said in msg and not (tmp_path / "r").exists()


@pytest.mark.parametrize("where", ["axes", "run", "labels"])
def test_a_file_naming_any_local_path_as_its_generator_is_refused(tmp_path, toy, home, where, monkeypatch):
    from tlgan.generators import checkpoints

    opened: list = []
    monkeypatch.setattr(checkpoints, "read_checkpoint", lambda p: opened.append(p) or pytest.fail("opened"))
    victim = tmp_path / "secret.txt"
    victim.write_text("not a generator")
    name = str(victim)
    if where == "axes":
        from tlgan.axes import Axes

        path = Axes(["a"], ["continuous"], np.eye(1, 16), np.ones(1), meta={"generator": name}).save(
            tmp_path / "ax.safetensors")
        result = run_cli("edit", path, "--move", "a=1", "-o", tmp_path / "e.png", "--device", "cpu")
    elif where == "run":
        path = make_run(tmp_path / "run", toy, n=32).path / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "generator": name}))
        result = run_cli("train-encoder", path.parent, "-o", tmp_path / "enc.safetensors", "--device", "cpu")
    else:
        path = tmp_path / "l.jsonl"
        path.write_text("".join(json.dumps({"generator": name, "seed": 1, "index": i, "feature": "a",
                                            "label": i % 2}) + "\n" for i in range(30)))
        result = run_cli("fit-labels", path, "-o", tmp_path / "ax2.safetensors", "--device", "cpu")
    msg = one_line(result)
    assert f"{path} names the generator file {name!r}, which is neither a registered generator" in msg
    assert opened == []


def test_a_path_the_user_named_is_accepted_later(tmp_path, home):
    from tlgan.generators import library

    ckpt = tmp_path / "mine.pkl"
    ckpt.write_bytes(b"x")
    with pytest.raises(Exception, match="neither a registered generator"):
        library.check_named_path(str(ckpt), "run.json")
    library.remember_path(ckpt)
    library.check_named_path(str(ckpt), "run.json")


@pytest.mark.parametrize("args, said", [
    (("grid", "AXES", "--steps", 101, "--cell", 4096), "make a picture of"),
    (("label", "LABELS", "-g", "toy-linear", "--sheets", "SHEETS", "--cols", 240, "--cell", 4096), "make a picture of"),
    (("label", "LABELS", "-g", "toy-linear", "--sheets", "SHEETS", "--cols", 0), "--cols 0 is out of range"),
    (("evaluate", "AXES", "--lock-n", -5, "-o", "OUT"), "--lock-n -5 is out of range"),
    (("compare", "RUN", "--components", 0, "-o", "OUT"), "--components 0 is out of range"),
])
def test_options_that_together_or_alone_are_out_of_range(tmp_path, toy_axes, args, said):
    subs = {"AXES": toy_axes, "RUN": tmp_path / "no-run", "LABELS": tmp_path / "l.jsonl", "SHEETS": tmp_path / "s",
            "OUT": tmp_path / "out"}
    extra = ("-o", tmp_path / "g.png") if args[0] == "grid" else ()
    before = sorted(p.name for p in tmp_path.iterdir())
    msg = one_line(run_cli(*[subs.get(a, a) if isinstance(a, str) else a for a in args], *extra, "--device", "cpu"))
    assert said in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_latent_header_claiming_more_than_the_file_holds(tmp_path, toy_axes):
    z = tmp_path / "z.npy"
    with open(z, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
        fh.write(bytes(64))
    msg = one_line(run_cli("edit", toy_axes, "--latent", z, "-o", tmp_path / "e.png", "--device", "cpu"))
    assert f"latent file {z} declares an array of shape (100000000000,)" in msg


@pytest.mark.parametrize("name", ["run.json", "progress.json"])
def test_deeply_nested_json_in_a_run_is_one_line(toy_run, name):
    (toy_run / name).write_text("[" * 100_000 + "]" * 100_000)
    msg = one_line(run_cli("fit", toy_run, "-o", toy_run.parent / "ax.safetensors"))
    assert f"{toy_run / name} nests JSON too deeply" in msg


def test_killed_fetch_leaves_no_temporary_folder(home, monkeypatch):
    import subprocess
    import sys

    from tlgan import weights

    # A fetch killed mid-download leaves its folder inside the cache, and the next fetch removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = weights.cache_dir() / f"{weights.FETCH_PREFIX}{dead.stdout.strip()}-abc"
    (leftover / "pkg").mkdir(parents=True)
    (leftover / "pkg" / "model.bin.part").write_bytes(b"half")
    seen = []

    def offline(pkg, dest):
        seen.append(dest)
        raise weights.WeightsError("offline")

    monkeypatch.setattr(weights, "_download", offline)
    with pytest.raises(weights.WeightsError, match="offline"):
        weights.fetch(["faceres"], log=lambda s: None)
    assert not leftover.exists()
    assert seen and seen[0].parent == weights.cache_dir() and not seen[0].exists()
    assert list(weights.cache_dir().iterdir()) == []
