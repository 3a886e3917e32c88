"""Fault suite, issue 21 §1: an output never replaces a file the user did not ask to replace. A file the same
command made before (recorded, unchanged since) is redone; anything else needs --force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fault_support import one_line, run_cli


def _photo(path):
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


def test_train_extractor_force_replaces_only_its_own_files(tmp_path):
    from tlgan.extractors.learned import CONFIG, WEIGHTS, write_extractor

    folder = tmp_path / "mine"
    config = {"kind": "probe", "features": [{"name": "a"}]}
    write_extractor(folder, config, {"w": np.ones((1, 4), np.float32)})
    (folder / "notes.txt").write_text("my notes")
    (folder / "data").mkdir()
    (folder / "data" / "faces.csv").write_text("1,2\n")
    write_extractor(folder, {**config, "features": [{"name": "b"}]}, {"w": np.zeros((1, 4), np.float32)},
                    overwrite=True)
    assert (folder / "notes.txt").read_text() == "my notes"
    assert (folder / "data" / "faces.csv").read_text() == "1,2\n"
    assert json.loads((folder / CONFIG).read_text())["features"] == [{"name": "b"}]
    assert (folder / WEIGHTS).is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG, WEIGHTS, "notes.txt", "data"])


def test_paste_back_never_writes_over_the_photo(tmp_path, toy_axes):
    photo = _photo(tmp_path / "me.png")
    before = photo.read_bytes()
    msg = one_line(run_cli("edit", toy_axes, "--image", photo, "--paste-back", "-o", photo, "--device", "cpu"))
    assert f"{photo} exists and was not made by `tlgan edit`" in msg and "--force" in msg
    assert photo.read_bytes() == before


def test_invert_never_writes_its_picture_over_a_users_png(tmp_path):
    photo = _photo(tmp_path / "photo.png")
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"my notes")
    msg = one_line(run_cli("invert", photo, "-o", tmp_path / "notes.latent.npz", "--device", "cpu"))
    assert f"{notes} exists and was not made by `tlgan invert`" in msg
    assert notes.read_bytes() == b"my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.png", "photo.png"]


def test_evaluate_never_writes_over_a_users_index_html(tmp_path, toy_axes):
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<p>my site</p>")
    msg = one_line(run_cli("evaluate", toy_axes, "-n", 10, "--identity-n", 0, "-o", out, "--device", "cpu"))
    assert f"{out / 'index.html'} exists and was not made by `tlgan evaluate`" in msg
    assert (out / "index.html").read_text() == "<p>my site</p>"
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]


def test_rerun_redoes_its_own_output_but_a_changed_one_needs_force(tmp_path, toy_axes):
    out = tmp_path / "e.png"
    args = ("edit", toy_axes, "--move", "a=1", "-o", out, "--device", "cpu")
    run_cli(*args, ok=True)
    first = out.read_bytes()
    run_cli(*args[:3], "a=2", *args[4:], ok=True)  # the same command redoes its own picture
    assert out.read_bytes() != first
    assert one_line(run_cli("grid", toy_axes, "-o", out, "--device", "cpu")).endswith(
        "was not made by `tlgan grid`; choose another output name, or pass --force to replace it")
    out.write_bytes(b"edited by hand")  # the user's since: no longer tlgan's to replace
    one_line(run_cli(*args))
    assert out.read_bytes() == b"edited by hand"
    run_cli(*args, "--force", ok=True)
    assert Image.open(out).size[0] > 0


def test_save_latent_is_guarded_with_its_npy_name(tmp_path, toy_axes):
    mine = tmp_path / "z.npy"
    np.save(mine, np.arange(3))
    msg = one_line(run_cli("edit", toy_axes, "--move", "a=1", "-o", tmp_path / "e.png", "--save-latent",
                           tmp_path / "z", "--device", "cpu"))
    assert f"{mine} exists" in msg
    assert np.array_equal(np.load(mine), np.arange(3)) and not (tmp_path / "e.png").exists()


def test_errors_name_the_users_file_not_a_temporary_one(tmp_path, toy_axes):
    target = tmp_path / "no" / "such" / "e.png"
    msg = one_line(run_cli("edit", toy_axes, "--move", "a=1", "-o", target, "--device", "cpu"))
    assert ".part" not in msg and "needed for e.png" in msg


def test_encoder_file_is_written_atomically(tmp_path, monkeypatch):
    import safetensors.torch

    from tlgan import invert

    calls: list[str] = []

    def tracking(path, write):
        calls.append(str(path))
        return real(path, write)

    real = invert.atomic_write
    monkeypatch.setattr(invert, "atomic_write", tracking)

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 3)
        raise OSError(28, "No space left on device", filename)

    enc = invert.Encoder.__new__(invert.Encoder)
    enc.net = invert.nn.Linear(2, 2)
    enc.centre, enc.scale, enc.meta = invert.torch.zeros(2), 1.0, {"latent_dim": 2}
    path = tmp_path / "enc.safetensors"
    path.write_bytes(b"old encoder")
    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError) as e:
        enc.save(path)
    assert e.value.filename == str(path)
    assert calls == [str(path)] and path.read_bytes() == b"old encoder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.safetensors"]
