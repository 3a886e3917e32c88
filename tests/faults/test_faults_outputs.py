"""Fault suite: outputs never replace a file the user did not ask to replace; a full disk or a missing
folder is one line and loses nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from cli_support import run
from fault_support import enospc_on, files_of, make_run, one_line, run_cli, small_axes

# ---------------------------------------------------------------- item 3: `fit -o` never clobbers a file



def test_axes_path_must_be_safetensors_and_nothing_is_written(tmp_path):
    from tlgan.axes import AxesError

    target = tmp_path / "ax.json"
    with pytest.raises(AxesError, match=r"must end in \.safetensors.*-o .*ax\.safetensors"):
        small_axes().save(target)
    assert list(tmp_path.iterdir()) == []


def test_axes_save_keeps_a_users_json_beside_it(tmp_path):
    from tlgan.axes import Axes, AxesError

    mine = tmp_path / "mydata.json"
    mine.write_text('{"my": "data"}\n')
    with pytest.raises(AxesError, match=re.escape("mydata.json exists and is not a tlgan axes sidecar")):
        small_axes().save(tmp_path / "mydata.safetensors")
    assert mine.read_text() == '{"my": "data"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata.json"]
    # An earlier axes sidecar is replaced (refitting to the same name works), atomically, same mode for both.
    path = small_axes().save(tmp_path / "axes.safetensors")
    again = small_axes().save(path)
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

    path = small_axes().save(tmp_path / "axes.safetensors")
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


# ---------------------------------------------------------------- a full disk: one line, and nothing lost




def test_disk_full_while_creating_a_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 64, "--chunk", 32, "-o", out, "--device", "cpu")
    with monkeypatch.context() as m:
        enospc_on(m, ("run.json",))
        msg = one_line(run_cli(*args))
    assert "no space left to write" in msg and "run.json" in msg
    assert not (out / "run.json").exists() and not [p for p in out.iterdir() if ".part" in p.name]
    run_cli(*args, ok=True)  # once there is space, the same command makes the run
    from tlgan.sample import open_run

    assert open_run(out).done("labels/toy-linear") == 64


@pytest.mark.parametrize("command", ["fit", "edit"])
def test_disk_full_while_saving_keeps_the_earlier_output(tmp_path, toy, toy_axes, monkeypatch, command):
    run = make_run(tmp_path / "run", toy, n=64)
    if command == "fit":
        target = tmp_path / "fitted.safetensors"
        args: tuple = ("fit", run.path, "-o", target)
    else:
        target = tmp_path / "edit.png"
        args = ("edit", toy_axes, "--move", "a=1", "-o", target, "--device", "cpu")
    run_cli(*args, ok=True)
    before, run_before = files_of(tmp_path), files_of(run.path)
    with monkeypatch.context() as m:
        enospc_on(m, (".part",))
        if command == "fit":  # safetensors writes from Rust, not through Python's open
            import errno

            from tlgan import axes as axes_mod

            def full(tensors, filename, metadata=None):
                Path(filename).write_bytes(b"\0" * 3)
                raise OSError(errno.ENOSPC, "No space left on device", filename)

            m.setattr(axes_mod, "save_file", full)
        msg = one_line(run_cli(*args))
    assert "no space left to write" in msg
    assert files_of(tmp_path) == before and files_of(run.path) == run_before


@pytest.mark.parametrize("command", ["sample", "fit"])
def test_output_under_a_file_is_one_line(tmp_path, toy, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    if command == "sample":
        args: tuple = ("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", blocker / "run", "--device",
                       "cpu")
    else:
        args = ("fit", make_run(tmp_path / "run", toy, n=64).path, "-o", blocker / "ax.safetensors")
    msg = one_line(run_cli(*args))
    assert str(blocker) in msg
    assert blocker.read_text() == "mine"


def test_invert_never_writes_its_picture_over_the_photo(tmp_path):
    from tlgan.jobs import _png_beside

    photo = tmp_path / "me.png"
    photo.write_bytes(b"my photo")
    assert _png_beside(tmp_path / "me.latent.npz", photo) == tmp_path / "me.inversion.png"
    assert _png_beside(tmp_path / "me.latent.npz", tmp_path / "me.jpg") == tmp_path / "me.png"
