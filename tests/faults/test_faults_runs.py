"""Fault suite: a damaged, edited or interrupted run folder is named, repaired or resumed to the same run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cli_support import run
from fault_support import arrays, files_of, flip, make_run, one_line, run_cli
from tlgan.errors import TLGANError


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


@pytest.mark.parametrize("array, chunk_file", [("z", "z/c/1/0"), ("labels/toy-linear", "labels/toy-linear/c/1/0"),
                                               ("images", "images/c/1/0/0/0")])
def test_lost_chunk_is_named_then_rendered_again(tmp_path, toy, array, chunk_file):
    whole = arrays(make_run(tmp_path / "whole", toy))
    run = make_run(tmp_path / "run", toy)
    (run.path / "data.zarr" / chunk_file).unlink()
    broken = files_of(run.path)
    # Every reader refuses it, naming the run, the array, the samples and what to do; nothing is changed.
    if array != "images":  # (a fit does not read the images)
        msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
        assert f"data.zarr/{array} has lost samples 32..63" in msg and "rerun `tlgan sample`" in msg
        assert not (tmp_path / "ax.safetensors").exists()
    with pytest.raises(TLGANError, match=f"data.zarr/{array} has lost samples 32..63"):
        arrays(run)
    assert files_of(run.path) == broken
    # The same `tlgan sample` command renders exactly the lost samples again.
    again = make_run(tmp_path / "run", toy)
    for name, value in arrays(again).items():
        np.testing.assert_array_equal(value, whole[name], err_msg=name)


def test_lost_label_chunk_is_labelled_again_by_relabel(tmp_path, toy, monkeypatch):
    from tlgan.sample import relabel

    gen, ext = toy
    run = make_run(tmp_path / "run", toy)
    want = run.labels()
    (run.path / "data.zarr/labels/toy-linear/c/2/0").unlink()
    monkeypatch.setattr(type(gen), "render", lambda *a, **k: pytest.fail("relabel must not render"))
    np.testing.assert_array_equal(relabel(run.path, ext, progress=False).labels(), want)


def test_lost_image_chunk_stops_relabel(tmp_path, toy):
    from tlgan.sample import RunError, relabel

    run = make_run(tmp_path / "run", toy)
    (run.path / "data.zarr/images/c/0/0/0/0").unlink()
    with pytest.raises(RunError, match=r"data.zarr/images has lost samples 0..31.*tlgan sample"):
        relabel(run.path, toy[1], progress=False)


def test_flipped_byte_in_a_chunk_is_named(tmp_path, toy):
    whole = arrays(make_run(tmp_path / "whole", toy))
    run = make_run(tmp_path / "run", toy)
    chunk = run.path / "data.zarr/z/c/2/0"
    flip(chunk, 40, 1)
    msg = one_line(run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors"))
    assert f"{chunk} (samples 64..95 of data.zarr/z) is corrupt (its checksum does not match)" in msg
    assert "delete that file and rerun `tlgan sample`" in msg
    chunk.unlink()  # as the message says
    np.testing.assert_array_equal(make_run(tmp_path / "run", toy).noise, whole["z"])


def test_run_without_checksums_still_opens(tmp_path, toy, monkeypatch):
    """Runs written before the checksums (zstd only) open, fit and continue as before."""
    from tlgan import sample as S

    monkeypatch.setattr(S, "_codecs", lambda: {})
    run = make_run(tmp_path / "run", toy, n=64)
    assert "crc32c" not in (run.path / "data.zarr/z/zarr.json").read_text()
    monkeypatch.undo()
    run = make_run(tmp_path / "run", toy, n=64)
    assert run.labels().shape == (64, 4) and np.isfinite(run.labels()).all()
    run_cli("fit", run.path, "-o", tmp_path / "ax.safetensors", ok=True)


def test_edited_n_is_refused(tmp_path, toy):
    run = make_run(tmp_path / "run", toy)
    info = json.loads((run.path / "run.json").read_text())
    info["n"] = 1000
    (run.path / "run.json").write_text(json.dumps(info))
    before = files_of(run.path)
    msg = one_line(run_cli("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 1000, "--seed", 3, "--chunk", 32,
                           "-o", run.path, "--device", "cpu"))
    assert "run.json says n = 1,000 but data.zarr/z holds 96 samples" in msg
    assert files_of(run.path) == before


# ---------------------------------------------------------------- item 8: one writer per run folder


def test_second_writer_is_refused_with_the_first_ones_pid(tmp_path, toy):
    from tlgan.sample import RunError, run_lock

    run = make_run(tmp_path / "run", toy, n=64)
    before = files_of(run.path)
    with run_lock(run.path), pytest.raises(RunError, match=f"being written by another tlgan process \\(pid {os.getpid()}\\)"):
        make_run(tmp_path / "run", toy, n=64)
    assert [f for f in files_of(run.path) if f[0] != "run.lock"] == [f for f in before if f[0] != "run.lock"]
    assert make_run(tmp_path / "run", toy, n=64).done("labels/toy-linear") == 64  # released on exit


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
    make_run(tmp_path / "run", toy, n=64, chunk=32)
    monkeypatch.setattr(type(gen), "batch_size", 1024, raising=False)  # as on a GPU
    from tlgan.sample import sample

    assert sample(tmp_path / "run", gen, ext, n=64, seed=3, save_images=True, progress=False).chunk == 32


def test_sample_continues_after_relabel_default(tmp_path, toy):
    from test_sample import Doubled
    from tlgan.sample import open_run, relabel

    args = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 64, "--chunk", 32, "-o", tmp_path / "run",
            "--device", "cpu")
    run_cli(*args, ok=True)
    relabel(tmp_path / "run", Doubled("cpu"), progress=False, make_default=True)
    before = files_of(tmp_path / "run")
    run_cli(*args, ok=True)
    # The rerun finds the run complete: it keeps both label sets and the new default, and changes no file.
    run = open_run(tmp_path / "run")
    assert run.label_sets == ["toy-linear", "toy-doubled"] and run.info["default_labels"] == "toy-doubled"
    assert run.done("labels/toy-linear") == run.done("labels/toy-doubled") == 64
    assert np.isfinite(run.labels("toy-linear")).all() and np.isfinite(run.labels("toy-doubled")).all()
    assert [f for f in files_of(tmp_path / "run") if f[0] != "run.lock"] == \
        [f for f in before if f[0] != "run.lock"]


# ---------------------------------------------------------------- killed at any point: the rerun ends identical


@pytest.mark.parametrize("kill_at", ["render", "labels written", "progress written"])
@pytest.mark.parametrize("chunk_no", [0, 2])
def test_killed_at_any_point_resumes_to_the_same_run(tmp_path, toy, monkeypatch, kill_at, chunk_no):
    from tlgan import sample as S

    whole = arrays(make_run(tmp_path / "whole", toy))

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
            make_run(tmp_path / "run", toy)
    for name, value in arrays(make_run(tmp_path / "run", toy)).items():
        np.testing.assert_array_equal(value, whole[name], err_msg=name)


