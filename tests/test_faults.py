"""Fault injection (issue 11): damaged, wrong-typed and oversized inputs give one clear error, or a
correct result, and never destroy what was already written.

Every test works in a private ``$TLGAN_HOME`` (monkeypatched); the real weights cache is only read,
never written.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from cli_support import run
from tlgan.errors import TLGANError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TLGAN_HOME", str(h))
    return h


def run_cli(*args, ok: bool = False):
    """``tlgan ARGS`` in-process; by default expecting a refusal (check it with :func:`one_line`)."""
    return run(*args, ok=ok)


def one_line(result) -> str:
    """The message of a refused CLI command: exit code 1 or 2, no traceback, one line after 'Error:'."""
    assert result.exit_code not in (0,), result.output
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, (KeyError, TypeError, AttributeError, MemoryError)), result.exception
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, TLGANError), repr(result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("Error")]
    assert err, result.output
    return err[-1]


# ---------------------------------------------------------------- item 5: a malformed extractor folder


@pytest.mark.parametrize("config", [
    {"format": 1, "kind": "probe"},
    {"format": 1, "kind": "probe", "features": "age"},
    {"format": 1, "kind": "cnn", "features": [{"kind": "binary"}]},
    {"format": 1, "kind": "cnn", "features": [{"name": 3}]},
    {"format": 1, "kind": "cnn", "features": [{"name": "x"}], "architecture": [1]},
    [1, 2],
])
def test_malformed_extractor_folder_is_skipped_and_named(home, config):
    from tlgan.extractors import EXTRACTORS, load_extractor
    from tlgan.extractors.trained import _registered, register_trained

    name = "broken-probe"
    folder = home / "extractors" / name
    folder.mkdir(parents=True)
    (folder / "extractor.json").write_text(json.dumps(config))
    try:
        with pytest.warns(UserWarning, match=f"skipping trained extractor '{name}'.*extractor.json"):
            assert register_trained(name)
        assert "BROKEN" in EXTRACTORS.describe(name)
        # Other commands still work; asking for the broken one by name says what is wrong with it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert run("plugins").exit_code == 0
        with pytest.raises(TLGANError, match=str(folder)):
            load_extractor(name, "cpu")
        load_extractor("toy-linear", "cpu")
    finally:
        EXTRACTORS._factories.pop(name, None)
        EXTRACTORS._help.pop(name, None)
        _registered.discard(name)


# ---------------------------------------------------------------- item 3: `fit -o` never clobbers a file


def _small_axes():
    from tlgan.axes import Axes

    return Axes(["a", "b"], ["continuous", "binary"], np.eye(2, 4), np.ones(2), meta={"generator": "toy-linear"})


def test_axes_path_must_be_safetensors_and_nothing_is_written(tmp_path):
    from tlgan.axes import AxesError

    target = tmp_path / "ax.json"
    with pytest.raises(AxesError, match=r"must end in \.safetensors.*-o .*ax\.safetensors"):
        _small_axes().save(target)
    assert list(tmp_path.iterdir()) == []


def test_axes_save_keeps_a_users_json_beside_it(tmp_path):
    from tlgan.axes import Axes, AxesError

    mine = tmp_path / "mydata.json"
    mine.write_text('{"my": "data"}\n')
    with pytest.raises(AxesError, match="mydata.json exists and is not a tlgan axes sidecar"):
        _small_axes().save(tmp_path / "mydata.safetensors")
    assert mine.read_text() == '{"my": "data"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata.json"]
    # An earlier axes sidecar is replaced (refitting to the same name works), atomically, same mode for both.
    path = _small_axes().save(tmp_path / "axes.safetensors")
    again = _small_axes().save(path)
    assert Axes.load(again).names == ["a", "b"]
    side = tmp_path / "axes.json"
    assert json.loads(side.read_text())["features"] == ["a", "b"]
    assert os.stat(path).st_mode & 0o777 == os.stat(side).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_axes_save_failure_leaves_the_old_file(tmp_path, monkeypatch):
    from tlgan import axes as axes_mod
    from tlgan.axes import Axes

    path = _small_axes().save(tmp_path / "axes.safetensors")
    before = path.read_bytes(), (tmp_path / "axes.json").read_text()

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(axes_mod, "save_file", full_disk)
    with pytest.raises(OSError):
        Axes(["c"], ["binary"], np.eye(1, 4), np.ones(1)).save(path)
    assert (path.read_bytes(), (tmp_path / "axes.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["axes.json", "axes.safetensors"]


def test_cli_fit_refuses_a_clobbering_out_before_fitting(tmp_path):
    axes_file = tmp_path / "ax.json"
    axes_file.write_text("precious")
    msg = one_line(run("fit", tmp_path / "no-such-run", "-o", axes_file, ok=False))
    assert "must end in .safetensors" in msg
    assert axes_file.read_text() == "precious"
    (tmp_path / "mydata.json").write_text("mine")
    msg = one_line(run("fit", tmp_path / "no-such-run", "-o", tmp_path / "mydata.safetensors", ok=False))
    assert "not a tlgan axes sidecar" in msg
    assert (tmp_path / "mydata.json").read_text() == "mine"


# ---------------------------------------------------------------- item 1: every weight file is verified before use


@pytest.fixture
def tfjs_model(home, monkeypatch):
    """A catalogue TF.js model ('fake-tfjs': model.json + model.bin) placed in the private cache."""
    import shutil

    from test_tfjs import _conv_attrs, _write_graph
    from tlgan import weights
    from tlgan.weights import Model, WeightFile

    src = home.parent / "src"
    src.mkdir()
    k = np.arange(18, dtype=np.float32).reshape(3, 3, 1, 2)
    nodes = [{"name": "y", "op": "Conv2D", "input": ["x", "k"], "attr": _conv_attrs("SAME", 1)}]
    js = _write_graph(src, [-1, 4, 4, 1], nodes, {"k": k})
    made = [js, src / "model.bin"]
    files = tuple(WeightFile(weights.HUMAN, f"package/models/fake/{p.name}", weights.sha256_of(p)) for p in made)
    monkeypatch.setitem(weights.MODELS, "fake-tfjs", Model("fake-tfjs", files, "a test model"))
    monkeypatch.setattr(weights, "_verified", {})
    for f, p in zip(files, made):
        weights.local_path(f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, weights.local_path(f))
    return [weights.local_path(f) for f in files]


def _flip(path: Path, at: int, n: int = 4) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, min(at + n, len(data))):
        data[i] ^= 0xFF
    st = os.stat(path)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later write, as any copy or edit is


def test_flipped_tfjs_shard_is_refused(tfjs_model):
    from tlgan import weights
    from tlgan.extractors.tfjs import TFJSGraph

    js, binary = tfjs_model
    TFJSGraph.from_model("fake-tfjs", "model.json", "cpu")  # the intact copy loads
    good = binary.read_bytes()
    _flip(binary, 8)
    assert len(binary.read_bytes()) == len(good)  # same size: only the checksum can tell
    assert weights.status("fake-tfjs") == "corrupt"
    with pytest.raises(weights.WeightsError, match=r"model\.bin for model 'fake-tfjs' is corrupt.*models fetch"):
        TFJSGraph.from_model("fake-tfjs", "model.json", "cpu")
    assert str(weights.WeightsError("x")).count("\n") == 0


def test_weights_are_hashed_once_then_trusted_by_stamp(tfjs_model, monkeypatch):
    from tlgan import weights

    js, binary = tfjs_model
    hashed: list[Path] = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: hashed.append(Path(p)) or real(p))
    weights.path_of("fake-tfjs", "model.bin")
    weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary]  # once per process
    stamp = json.loads(binary.with_name("model.bin.verified").read_text())
    assert stamp["size"] == binary.stat().st_size and stamp["mtime_ns"] == binary.stat().st_mtime_ns
    monkeypatch.setattr(weights, "_verified", {})  # a new process: the stamp is trusted, no hash
    weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary]
    _flip(binary, 0)  # a changed mtime forces a full check, which fails
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary, binary]
    assert not binary.with_name("model.bin.verified").exists()
    # A forged stamp for another size is not trusted either.
    binary.with_name("model.bin.verified").write_text(json.dumps({"size": 1, "mtime_ns": 1, "sha256": "0" * 64}))
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")


def test_weight_file_replaced_by_a_folder(tfjs_model):
    from tlgan import weights

    js, binary = tfjs_model
    binary.unlink()
    binary.mkdir()
    assert weights.status("fake-tfjs") == "corrupt"
    with pytest.raises(weights.WeightsError, match="model.bin for model 'fake-tfjs' is not a file"):
        weights.path_of("fake-tfjs", "model.bin")


def test_read_only_cache_still_verifies(tfjs_model, monkeypatch):
    from tlgan import safeio, weights

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(weights, "atomic_write_text", refuse)
    assert weights.path_of("fake-tfjs", "model.bin") == tfjs_model[1]
    assert safeio.file_mode() & 0o600 == 0o600


# ---------------------------------------------------------------- item 6: a label file with a huge index


@pytest.mark.parametrize("index", [1_000_001, 5_000_000, 10**8, 10**12, 2**70])
def test_label_file_with_a_huge_index_is_refused(tmp_path, index):
    labels = tmp_path / "l.jsonl"
    good = json.dumps({"generator": "toy-linear", "seed": 1, "index": 3, "feature": "a", "label": 1}) + "\n"
    bad = json.dumps({"generator": "toy-linear", "seed": 1, "index": index, "feature": "a", "label": 0}) + "\n"
    labels.write_text(good + bad)
    msg = one_line(run("fit-labels", labels, "--device", "cpu", ok=False))
    assert "l.jsonl line 2" in msg and "too large" in msg and "1,000,000" in msg
    assert labels.read_text() == good + bad
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl"]


def test_labelled_latents_map_only_the_rows_they_need(tmp_path, toy, monkeypatch):
    from tlgan.labels.store import LabelStore

    gen, _ = toy
    store = LabelStore(tmp_path / "l.jsonl", gen.name)
    for i in (5, 99_999, 40):
        store.add(7, i, "a", i % 2)
    table = store.table()
    mapped: list[int] = []
    real = type(gen).codes_from_z
    monkeypatch.setattr(type(gen), "codes_from_z", lambda self, z: mapped.append(len(z)) or real(self, z))
    z = table.latents(gen)
    assert mapped == [3]
    assert np.array_equal(z[table.indices.tolist().index(40)], gen.sample(41, 7)[40])


def test_label_sheets_far_start_is_refused_before_making_the_folder(tmp_path):
    labels, sheets = tmp_path / "l.jsonl", tmp_path / "sheets"
    msg = one_line(run("label", labels, "-g", "toy-linear", "--feature", "a", "--sheets", sheets,
                       "--start", 10**12, "--device", "cpu", ok=False))
    assert "out of range 0..1,000,000" in msg
    assert not sheets.exists()


# ---------------------------------------------------------------- item 7: one-line messages, not tracebacks


@pytest.mark.parametrize("device, said", [("nonsense", "unknown device 'nonsense'"), ("mps", "no Apple GPU"),
                                          ("cuda:99", "CUDA GPU")])
def test_bad_device_is_one_line(tmp_path, device, said):
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    out = tmp_path / "r"
    msg = one_line(run("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", out, "--device", device,
                       ok=False))
    assert said in msg
    assert not out.exists()


@pytest.mark.parametrize("args, said", [(("-n", 10**8), "is too many"), (("-n", 10**12), "is too many"),
                                        (("--chunk", 10**9), "is too large")])
def test_oversized_runs_are_refused_before_creating_anything(tmp_path, args, said):
    out = tmp_path / "r"
    msg = one_line(run("sample", "-g", "toy-linear", "-e", "toy-linear", "-o", out, "--device", "cpu", *args,
                       ok=False))
    assert said in msg
    assert not out.exists()


@pytest.fixture
def toy_axes(tmp_path, toy):
    from tlgan.axes import Axes

    gen, _ = toy
    return Axes(["a"], ["continuous"], np.eye(1, gen.latent_dim), np.ones(1),
                meta={"generator": gen.name, "latent_dim": gen.latent_dim}).save(tmp_path / "axes.safetensors")


@pytest.mark.parametrize("command", ["edit", "grid"])
def test_output_folder_missing_is_one_line(tmp_path, toy_axes, command):
    target = tmp_path / "no" / "such" / "out.png"
    extra = ("--move", "a=+1") if command == "edit" else ("--features", "a")
    msg = one_line(run(command, toy_axes, *extra, "-o", target, "--device", "cpu", ok=False))
    assert f"folder {target.parent} does not exist" in msg


def test_os_errors_name_the_folder_or_file(tmp_path):
    import errno

    from tlgan.cli import os_error_message

    ro = tmp_path / "ro"
    ro.mkdir()
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", str(ro / "x.png"))) == \
        f"folder {ro} is not writable (needed for x.png); choose another path"
    assert "no space left to write" in os_error_message(OSError(errno.ENOSPC, "No space left", str(ro / "x")))
    assert os_error_message(OSError(errno.EBADF, "Bad file descriptor", "x")) is None  # a bug keeps its traceback


@pytest.fixture
def toy_run(tmp_path, toy):
    from tlgan.sample import sample

    gen, ext = toy
    return sample(tmp_path / "run", gen, ext, n=64, seed=1, chunk=32, progress=False).path


@pytest.mark.parametrize("name, doc, said", [
    ("run.json", [1, 2], "run.json"),
    ("run.json", "drop:n", "lacks the field 'n'"),
    ("run.json", "set:chunk=x", "field 'chunk' is 'x'"),
    ("run.json", "set:labels=[]", "field 'labels'"),
    ("run.json", "set:n=true", "field 'n' is True"),
    ("run.json", "set:seed=-4", "field 'seed' is -4"),
    ("run.json", "set:default_labels=nope", "field 'default_labels' names 'nope'"),
    ("run.json", 'set:labels={"toy-linear": {"features": [1], "kinds": ["binary"], "descriptions": [""]}}',
     "field 'labels.toy-linear.features.0' is 1"),
    ("progress.json", [64], "progress.json holds a JSON list, not an object"),
    ("progress.json", "set:z=true", "field 'z' is True"),
    ("progress.json", "set:z=99999", "not a count 0..64"),
    ("progress.json", "text:{", "progress.json is not valid JSON"),
])
def test_damaged_run_json_is_one_line(toy_run, name, doc, said):
    p = toy_run / name
    if isinstance(doc, str) and doc.startswith("text:"):
        p.write_text(doc[5:])
    elif isinstance(doc, str):
        cur = json.loads(p.read_text())
        op, _, rest = doc.partition(":")
        if op == "drop":
            del cur[rest]
        else:
            key, _, value = rest.partition("=")
            cur[key] = json.loads(value) if value[:1] in "[{-0123456789" or value == "true" else value
        p.write_text(json.dumps(cur))
    else:
        p.write_text(json.dumps(doc))
    before = sorted((q.relative_to(toy_run), q.stat().st_size) for q in toy_run.rglob("*") if q.is_file())
    msg = one_line(run("fit", toy_run, "-o", toy_run.parent / "ax.safetensors", ok=False))
    assert said in msg and str(p) in msg
    assert sorted((q.relative_to(toy_run), q.stat().st_size) for q in toy_run.rglob("*") if q.is_file()) == before


# ---------------------------------------------------------------- item 4: a damaged run folder is named, and repaired


def _toy_run(path, toy, n=96, chunk=32, **kw):
    from tlgan.sample import sample

    gen, ext = toy
    return sample(path, gen, ext, n=n, seed=3, chunk=chunk, save_images=True, progress=False, **kw)


def _arrays(run) -> dict[str, np.ndarray]:
    return {"z": run.noise, "labels": run.labels(), "images": np.asarray(run.images[:])}


def _files(folder: Path) -> list[tuple[str, bytes]]:
    return sorted((str(q.relative_to(folder)), q.read_bytes()) for q in folder.rglob("*") if q.is_file())


@pytest.mark.parametrize("array, chunk_file", [("z", "z/c/1/0"), ("labels/toy-linear", "labels/toy-linear/c/1/0"),
                                               ("images", "images/c/1/0/0/0")])
def test_lost_chunk_is_named_then_rendered_again(tmp_path, toy, array, chunk_file):
    whole = _arrays(_toy_run(tmp_path / "whole", toy))
    run = _toy_run(tmp_path / "run", toy)
    (run.path / "data.zarr" / chunk_file).unlink()
    broken = _files(run.path)
    # Every reader refuses it, naming the run, the array, the samples and what to do; nothing is changed.
    if array != "images":  # (a fit does not read the images)
        msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
        assert f"data.zarr/{array} has lost samples 32..63" in msg and "rerun `tlgan sample`" in msg
        assert not (tmp_path / "ax.safetensors").exists()
    with pytest.raises(TLGANError, match=f"data.zarr/{array} has lost samples 32..63"):
        _arrays(run)
    assert _files(run.path) == broken
    # The same `tlgan sample` command renders exactly the lost samples again.
    again = _toy_run(tmp_path / "run", toy)
    for name, value in _arrays(again).items():
        np.testing.assert_array_equal(value, whole[name], err_msg=name)


def test_lost_label_chunk_is_labelled_again_by_relabel(tmp_path, toy, monkeypatch):
    from tlgan.sample import relabel

    gen, ext = toy
    run = _toy_run(tmp_path / "run", toy)
    want = run.labels()
    (run.path / "data.zarr/labels/toy-linear/c/2/0").unlink()
    monkeypatch.setattr(type(gen), "render", lambda *a, **k: pytest.fail("relabel must not render"))
    np.testing.assert_array_equal(relabel(run.path, ext, progress=False).labels(), want)


def test_lost_image_chunk_stops_relabel(tmp_path, toy):
    from tlgan.sample import RunError, relabel

    run = _toy_run(tmp_path / "run", toy)
    (run.path / "data.zarr/images/c/0/0/0/0").unlink()
    with pytest.raises(RunError, match=r"data.zarr/images has lost samples 0..31.*tlgan sample"):
        relabel(run.path, toy[1], progress=False)


def test_flipped_byte_in_a_chunk_is_named(tmp_path, toy):
    whole = _arrays(_toy_run(tmp_path / "whole", toy))
    run = _toy_run(tmp_path / "run", toy)
    chunk = run.path / "data.zarr/z/c/2/0"
    _flip(chunk, 40, 1)
    msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
    assert f"{chunk} (samples 64..95 of data.zarr/z) is corrupt (its checksum does not match)" in msg
    assert "delete that file and rerun `tlgan sample`" in msg
    chunk.unlink()  # as the message says
    np.testing.assert_array_equal(_toy_run(tmp_path / "run", toy).noise, whole["z"])


def test_run_without_checksums_still_opens(tmp_path, toy, monkeypatch):
    """Runs written before the checksums (zstd only) open, fit and continue as before."""
    from tlgan import sample as S

    monkeypatch.setattr(S, "_codecs", lambda: {})
    run = _toy_run(tmp_path / "run", toy, n=64)
    assert "crc32c" not in (run.path / "data.zarr/z/zarr.json").read_text()
    monkeypatch.undo()
    run = _toy_run(tmp_path / "run", toy, n=64)
    assert run.labels().shape == (64, 4) and np.isfinite(run.labels()).all()
    run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors", ok=True)


def test_edited_n_is_refused(tmp_path, toy):
    run = _toy_run(tmp_path / "run", toy)
    info = json.loads((run.path / "run.json").read_text())
    info["n"] = 1000
    (run.path / "run.json").write_text(json.dumps(info))
    before = _files(run.path)
    msg = one_line(run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 1000, "--seed", 3, "--chunk", 32,
                           "-o", run.path, "--device", "cpu"))
    assert "run.json says n = 1,000 but data.zarr/z holds 96 samples" in msg
    assert _files(run.path) == before


# ---------------------------------------------------------------- item 8: one writer per run folder


def test_second_writer_is_refused_with_the_first_ones_pid(tmp_path, toy):
    from tlgan.sample import RunError, run_lock

    run = _toy_run(tmp_path / "run", toy, n=64)
    before = _files(run.path)
    with run_lock(run.path):
        with pytest.raises(RunError, match=f"being written by another tlgan process \\(pid {os.getpid()}\\)"):
            _toy_run(tmp_path / "run", toy, n=64)
    assert [f for f in _files(run.path) if f[0] != "run.lock"] == [f for f in before if f[0] != "run.lock"]
    assert _toy_run(tmp_path / "run", toy, n=64).done("labels/toy-linear") == 64  # released on exit


def test_lock_of_a_killed_process_is_released(tmp_path):
    import signal
    import subprocess
    import sys

    folder = tmp_path / "run"
    folder.mkdir()
    code = ("import sys, time; from tlgan.sample import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        msg = one_line(run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", folder,
                               "--device", "cpu"))
        assert f"pid {proc.pid}" in msg
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", folder, "--device", "cpu", ok=True)


# ---------------------------------------------------------------- item 8: reruns that must continue


def test_continuing_a_run_takes_its_own_chunk_whatever_the_device(tmp_path, toy, monkeypatch):
    gen, ext = toy
    _toy_run(tmp_path / "run", toy, n=64, chunk=32)
    monkeypatch.setattr(type(gen), "batch_size", 1024, raising=False)  # as on a GPU
    from tlgan.sample import sample

    assert sample(tmp_path / "run", gen, ext, n=64, seed=3, save_images=True, progress=False).chunk == 32


def test_sample_continues_after_relabel_default(tmp_path, toy):
    from tlgan.sample import relabel

    from test_sample import Doubled

    args = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 64, "--chunk", 32, "-o", tmp_path / "run",
            "--device", "cpu")
    run_cli(*args, ok=True)
    relabel(tmp_path / "run", Doubled("cpu"), progress=False, make_default=True)
    run_cli(*args, ok=True)


# ---------------------------------------------------------------- item 8: every size a user asks for is bounded


@pytest.mark.parametrize("args, said", [
    (("edit", "AXES", "--move", "a=1", "--size", 20000), "--size 20,000 is out of range"),
    (("edit", "AXES", "--move", "a=1", "--size", 0), "--size 0 is out of range"),
    (("grid", "AXES", "--steps", 0), "--steps 0 is out of range"),
    (("grid", "AXES", "--cell", 10**6), "--cell 1,000,000 is out of range"),
    (("evaluate", "AXES", "-n", 0), "-n 0 is out of range"),
    (("sample", "-g", "toy-linear", "-e", "toy-linear", "--chunk", 0), "chunk=0"),
    (("sample", "-g", "toy-linear", "-e", "toy-linear", "--seed", -1), "--seed -1 is out of range"),
])
def test_sizes_are_bounded_before_anything_is_written(tmp_path, toy_axes, args, said):
    out = tmp_path / "out.png" if args[0] in ("edit", "grid") else tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    msg = one_line(run_cli(*[toy_axes if a == "AXES" else a for a in args], "-o", out, "--device", "cpu"))
    assert said in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ---------------------------------------------------------------- item 7 / 8: axes files are checked


def _axes_file(path: Path, header, axes=None, slopes=None) -> Path:
    from safetensors.numpy import save_file

    axes = np.eye(2, 4, dtype=np.float32) if axes is None else axes
    tensors = {"axes": axes, "slopes": np.ones(len(axes), np.float32) if slopes is None else slopes}
    save_file(tensors, str(path), metadata={"tlgan": header if isinstance(header, str) else json.dumps(header)})
    return path


GOOD = {"format": 1, "tlgan_version": "0", "features": ["a", "b"], "kinds": ["continuous", "binary"]}


@pytest.mark.parametrize("header, axes, said", [
    ([1, 2], None, "tlgan header holds a JSON list, not an object"),
    ("{not json", None, "tlgan header is not valid JSON"),
    ({k: v for k, v in GOOD.items() if k != "features"}, None, "lacks the field 'features'"),
    ({k: v for k, v in GOOD.items() if k != "kinds"}, None, "lacks the field 'kinds'"),
    ({**GOOD, "features": [1, 2]}, None, "field 'features.0' is 1"),
    ({**GOOD, "kinds": ["continuous", 2]}, None, "field 'kinds.1' is 2"),
    ({**GOOD, "features": "ab"}, None, "field 'features' is 'ab'"),
    ({**GOOD, "features": ["a", "a"]}, None, "'a' appear more than once"),
    ({**GOOD, "features": ["a", "b", "c"], "kinds": ["binary"] * 3}, None, "names 3 features but it holds axes"),
    (GOOD, np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0]], np.float32), "axis of 'b' is not a finite non-zero vector"),
    (GOOD, np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32), "axis of 'b' is not a finite non-zero vector"),
    (GOOD, np.ones((2, 2, 2), np.float32), "holds axes of shape (2, 2, 2)"),
])
def test_damaged_axes_file_is_one_line_naming_it(tmp_path, header, axes, said):
    path = _axes_file(tmp_path / "ax.safetensors", header, axes)
    msg = one_line(run_cli("axes-info", path))
    assert said in msg and str(path) in msg


def test_axes_that_would_edit_wrongly_are_not_saved(tmp_path):
    from tlgan.axes import Axes, AxesError

    for names, vectors, said in ((["a", "a"], np.eye(2, 4), "more than once"),
                                 (["a", "b"], [[1, 0, 0, 0], [np.nan] * 4], "not a finite non-zero vector"),
                                 ([], np.zeros((0, 4)), "no feature has an axis")):
        with pytest.raises(AxesError, match=said):
            Axes(names, ["binary"] * len(names), np.asarray(vectors), np.ones(len(names))).save(tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_fit_with_every_feature_skipped_says_why(tmp_path, toy):
    run = _toy_run(tmp_path / "run", toy, n=8, chunk=8)
    for finder in ("glm", "interfacegan"):
        msg = one_line(run_cli("fit", run.path, "--finder", finder, "-o", tmp_path / "ax.safetensors"))
        assert "no feature has an axis (not fitted: a: " in msg
    assert not (tmp_path / "ax.safetensors").exists()


# ---------------------------------------------------------------- a full disk: one line, and nothing lost


def _enospc_on(monkeypatch, names: tuple[str, ...]):
    """Make writing any file whose name contains one of ``names`` fail as on a full disk (after a partial write)."""
    import errno
    import io

    real_open = io.open

    def full_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax") and any(n in os.fspath(file) for n in names):
            fh = real_open(file, mode, *a, **k)
            fh.write(b"\0" * 3 if "b" in mode else "\0" * 3)  # half a file, as a full disk leaves
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real_open(file, mode, *a, **k)

    import builtins
    import pathlib

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(pathlib.Path, "open", lambda self, mode="r", *a, **k: full_open(self, mode, *a, **k))


def test_disk_full_while_creating_a_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 64, "--chunk", 32, "-o", out, "--device", "cpu")
    with monkeypatch.context() as m:
        _enospc_on(m, ("run.json",))
        msg = one_line(run_cli(*args))
    assert "no space left to write" in msg and "run.json" in msg
    assert not (out / "run.json").exists() and not [p for p in out.iterdir() if ".part" in p.name]
    run_cli(*args, ok=True)  # once there is space, the same command makes the run
    from tlgan.sample import open_run

    assert open_run(out).done("labels/toy-linear") == 64


@pytest.mark.parametrize("command", ["fit", "edit"])
def test_disk_full_while_saving_keeps_the_earlier_output(tmp_path, toy, toy_axes, monkeypatch, command):
    run = _toy_run(tmp_path / "run", toy, n=64)
    if command == "fit":
        target = tmp_path / "fitted.safetensors"
        args: tuple = ("fit", run.path, "-o", target)
    else:
        target = tmp_path / "edit.png"
        args = ("edit", toy_axes, "--move", "a=1", "-o", target, "--device", "cpu")
    run_cli(*args, ok=True)
    before, run_before = _files(tmp_path), _files(run.path)
    with monkeypatch.context() as m:
        _enospc_on(m, (".part",))
        if command == "fit":  # safetensors writes from Rust, not through Python's open
            import errno

            from tlgan import axes as axes_mod

            def full(tensors, filename, metadata=None):
                Path(filename).write_bytes(b"\0" * 3)
                raise OSError(errno.ENOSPC, "No space left on device", filename)

            m.setattr(axes_mod, "save_file", full)
        msg = one_line(run_cli(*args))
    assert "no space left to write" in msg
    assert _files(tmp_path) == before and _files(run.path) == run_before


# ---------------------------------------------------------------- killed at any point: the rerun ends identical


@pytest.mark.parametrize("kill_at", ["render", "labels written", "progress written"])
@pytest.mark.parametrize("chunk_no", [0, 2])
def test_killed_at_any_point_resumes_to_the_same_run(tmp_path, toy, monkeypatch, kill_at, chunk_no):
    from tlgan import sample as S

    whole = _arrays(_toy_run(tmp_path / "whole", toy))

    class Killed(BaseException):
        pass

    calls = {"n": 0}

    def killer(real):
        def wrapped(*a, **k):
            if calls["n"] == chunk_no:
                raise Killed
            calls["n"] += 1
            return real(*a, **k)
        return wrapped

    with monkeypatch.context() as m:
        if kill_at == "render":
            m.setattr(type(toy[0]), "render", killer(type(toy[0]).render))
        elif kill_at == "labels written":
            m.setattr(S.Run, "_advance", killer(S.Run._advance))
        else:
            m.setattr(S, "atomic_write_text", killer(S.atomic_write_text))
        with pytest.raises(Killed):
            _toy_run(tmp_path / "run", toy)
    for name, value in _arrays(_toy_run(tmp_path / "run", toy)).items():
        np.testing.assert_array_equal(value, whole[name], err_msg=name)


@pytest.mark.parametrize("command", ["sample", "fit"])
def test_output_under_a_file_is_one_line(tmp_path, toy, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    if command == "sample":
        args: tuple = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", blocker / "run", "--device",
                       "cpu")
    else:
        args = ("fit", _toy_run(tmp_path / "run", toy, n=64).path, "-o", blocker / "ax.safetensors")
    msg = one_line(run_cli(*args))
    assert str(blocker) in msg
    assert blocker.read_text() == "mine"


def test_invert_never_writes_its_picture_over_the_photo(tmp_path):
    from tlgan.jobs import _png_beside

    photo = tmp_path / "me.png"
    photo.write_bytes(b"my photo")
    assert _png_beside(tmp_path / "me.latent.npz", photo) == tmp_path / "me.inversion.png"
    assert _png_beside(tmp_path / "me.latent.npz", tmp_path / "me.jpg") == tmp_path / "me.png"
