"""Editing a real photo from the command line: invert, edit the inverted latent, paste back; bad photos."""

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from cli_support import run
from model_support import need_models
from tlgan.invert import load_inversion

pytestmark = need_models("digiface-dcgan", "faceres", "facemesh", "blazeface", "human-emotion", "fer-emotion")
PHOTO = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def axes_file(tmp_path_factory):
    """Axes of the default generator from a small run (enough to edit with)."""
    out = tmp_path_factory.mktemp("demo")
    run("discover", "-n", 256, "--out", out, "--grid-features", "", "--device", "cpu")
    return out / "axes.safetensors"


def test_invert_writes_a_latent_file_and_a_picture(tmp_path):
    out = tmp_path / "gh.latent.npz"
    said = run("invert", PHOTO, "-o", out, "--steps", 8, "--device", "cpu").output
    assert "identity" in said and "age" in said
    inv = load_inversion(out)
    assert inv.latent.shape == (100,) and inv.space == "z" and inv.steps == 8
    assert inv.target.shape == (64, 64, 3) and inv.transform.shape == (3, 3)
    assert set(inv.quality) >= {"pixel_mae", "psnr", "identity", "labels"}
    assert Image.open(tmp_path / "gh.png").size == (512, 256)


def test_edit_an_inverted_photo_and_paste_it_back(axes_file, tmp_path):
    lat = tmp_path / "gh.latent.npz"
    run("invert", PHOTO, "-o", lat, "--steps", 4, "--device", "cpu")
    run("edit", axes_file, "--latent", lat, "--move", "age=+2", "--lock", "male", "-o", tmp_path / "e.png",
        "--save-latent", tmp_path / "e.npy")
    assert Image.open(tmp_path / "e.png").size == (768, 256)  # crop | reconstruction | edit
    moved = np.load(tmp_path / "e.npy") - load_inversion(lat).latent
    np.testing.assert_allclose(np.linalg.norm(moved), 2.0, rtol=1e-4)
    run("edit", axes_file, "--image", PHOTO, "--steps", 2, "--move", "happy=+1", "--paste-back", "--fidelity", "off",
        "-o", tmp_path / "p.png")
    pasted, photo = np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(PHOTO).convert("RGB"))
    assert pasted.shape == photo.shape
    changed = np.abs(pasted.astype(int) - photo).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    assert changed.mean() < 0.5 and 100 < xs.mean() < 420 and 50 < ys.mean() < 450  # only the face region


def test_fidelity_edit_returns_the_photo_at_its_size_changed_only_in_the_face(axes_file, tmp_path):
    lat = tmp_path / "gh.latent.npz"
    run("invert", PHOTO, "-o", lat, "--steps", 4, "--tune-steps", 5, "--device", "cpu")
    assert (tmp_path / "gh.tuning.safetensors").exists()  # the pivotal tuning beside the latent
    run("edit", axes_file, "--image", PHOTO, "--steps", 2, "--tune-steps", 5, "--move", "happy=+2", "--paste-back",
        "-o", tmp_path / "p.png")
    out, photo = np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(PHOTO).convert("RGB"))
    assert out.shape == photo.shape
    changed = np.abs(out.astype(int) - photo).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert 0 < changed.mean() < 0.25 and 150 < xs.mean() < 370 and 100 < ys.mean() < 350  # the face, not the rest
    assert not changed[:60].any() and not changed[-100:].any()


def test_photos_without_a_usable_face_get_one_line(tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 200, np.uint8)).save(blank)
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(Path(PHOTO).read_bytes()[:4000])
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tiny)
    for path, says in ((blank, "no face found"), (text, "not an image|cannot read|not a picture"),
                       (cut, "truncated|damaged|cannot read"), (tiny, "too small")):
        result = run("invert", path, "--steps", 1, "--device", "cpu", ok=False)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
        import re
        assert re.search(says, result.output, re.I), result.output
