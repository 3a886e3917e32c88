"""Alignment: framings and their transforms on synthetic faces with known geometry, warps, paste-back,
and the photo loader's errors. The DigiFace template is re-measured on the bundled generator."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlgan.align import (DIGIFACE_TEMPLATE, EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT,
                         FRAMINGS, PhotoError, align_face, align_photo, anchor_points, apply, crop_transform,
                         ffhq_quad, load_photo, paste_back, similarity, warp)

from model_support import need_models


def similarity_matrix(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty],
                     [0, 0, 1]])


def landmarks_with(anchors: np.ndarray) -> np.ndarray:
    """A (468, 3) mesh whose eye contours sit on the two eye centres and whose mouth corners are given."""
    lm = np.zeros((468, 3))
    lm[list(EYE_IMAGE_LEFT), :2] = anchors[0]
    lm[list(EYE_IMAGE_RIGHT), :2] = anchors[1]
    lm[MOUTH_IMAGE_LEFT, :2], lm[MOUTH_IMAGE_RIGHT, :2] = anchors[2], anchors[3]
    return lm


def smooth_picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour picture (low-frequency, so resampling barely changes it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 16, 2), max(w // 16, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.mark.parametrize("scale, degrees", [(3.1, 12.0), (0.5, -30.0), (8.0, 0.0)])
def test_template_framing_recovers_a_known_similarity(scale, degrees):
    size = 64
    known = similarity_matrix(scale, degrees, 410.0, 233.0)
    points = apply(known, np.array(DIGIFACE_TEMPLATE) * size)
    np.testing.assert_allclose(crop_transform(points, "digiface", size), known, atol=1e-9)
    flat = crop_transform(points, "digiface", size, rotate=False)  # same scale and anchor centroid, upright
    np.testing.assert_allclose(flat[:2, :2], np.eye(2) * scale, atol=1e-9)
    centroid = np.mean(DIGIFACE_TEMPLATE, 0) * size
    np.testing.assert_allclose(apply(flat, centroid), apply(known, centroid), atol=1e-9)


def test_similarity_is_least_squares_with_noise():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 2))
    known = similarity_matrix(2.0, 40.0, 3.0, -1.0)
    got = similarity(src, apply(known, src) + rng.normal(scale=1e-3, size=(20, 2)))
    np.testing.assert_allclose(got, known, atol=2e-3)


def test_ffhq_quad_on_a_frontal_face():
    # eyes at (-1, 0), (1, 0), mouth corners at (-0.8, 2), (0.8, 2): eye_to_eye (2, 0), eye_to_mouth (0, 2),
    # x = (2, 0) - (2, 0) * [-1, 1] = (4, 0) -> unit, * max(2 * 2, 2 * 1.8) = (4, 0); y = (0, 4); c = (0, 0.2)
    quad = ffhq_quad(np.array([[-1, 0], [1, 0], [-0.8, 2], [0.8, 2]]))
    np.testing.assert_allclose(quad, [[-4, -3.8], [-4, 4.2], [4, 4.2], [4, -3.8]])
    t = crop_transform(np.array([[-1, 0], [1, 0], [-0.8, 2], [0.8, 2]]), "ffhq", 1024)
    np.testing.assert_allclose(apply(t, [[0, 0], [0, 1024], [1024, 1024], [1024, 0]]), quad, atol=1e-12)


def test_ffhq_quad_follows_a_rotated_face():
    base = np.array([[-1, 0], [1, 0], [-0.8, 2], [0.8, 2]], float)
    known = similarity_matrix(30.0, 25.0, 500.0, 400.0)
    quad = ffhq_quad(apply(known, base))
    np.testing.assert_allclose(quad, apply(known, ffhq_quad(base)), atol=1e-9)
    assert FRAMINGS["celebahq"].rule == "ffhq"


def test_align_face_recovers_the_crop_and_transform_of_a_synthetic_face():
    size = 64
    face = smooth_picture(size, size)
    known = similarity_matrix(2.5, 15.0, 180.0, 120.0)
    photo = paste_back(np.full((480, 520, 3), 90, np.uint8), face, known, feather=0.0)
    lm = landmarks_with(apply(known, np.array(DIGIFACE_TEMPLATE) * size))
    aligned = align_face(photo, lm, "digiface", size)
    np.testing.assert_allclose(aligned.transform, known, atol=1e-9)
    inner = slice(4, size - 4)
    diff = np.abs(aligned.image[inner, inner].astype(int) - face[inner, inner])
    assert diff.mean() < 3 and np.percentile(diff, 99) < 16


def test_paste_back_round_trip_and_edit():
    photo = smooth_picture(300, 400, seed=2)
    t = similarity_matrix(1.7, -10.0, 120.0, 60.0)
    crop = warp(photo, t, (128, 128))
    back = paste_back(photo, crop, t, feather=0.1)
    corners = apply(t, [[0, 0], [128, 0], [0, 128], [128, 128]])
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert (back[outside] == photo[outside]).all()
    assert np.abs(back.astype(int) - photo).mean() < 1.0  # the unedited crop puts back what it took
    edited = paste_back(photo, np.zeros_like(crop), t, feather=0.1)
    cx, cy = apply(t, [64, 64]).round().astype(int)
    assert (edited[cy - 20:cy + 20, cx - 20:cx + 20] == 0).all()  # the middle is the edit
    assert (edited[outside] == photo[outside]).all()
    edge = apply(t, [1, 64]).astype(int)  # near the crop's edge the feather keeps most of the photo
    assert np.abs(edited[edge[1], edge[0]].astype(int) - photo[edge[1], edge[0]]).max() < 60


def test_warp_antialiases_big_shrinks_and_pads_outside():
    stripes = np.zeros((1000, 1000, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: point sampling would give pure black or white
    crop = warp(stripes, np.diag([10.0, 10.0, 1.0]), (100, 100))
    assert abs(crop.mean() - 127.5) < 10 and crop.std() < 10
    out = warp(np.full((50, 50, 3), 200, np.uint8), similarity_matrix(1.0, 0, -25, -25), (100, 100))
    assert (out == 200).all()  # reflect padding, never black


# --------------------------------------------------------------------------- photos


def save(tmp_path: Path, im: Image.Image, name: str, **kw) -> Path:
    p = tmp_path / name
    im.save(p, **kw)
    return p


def test_load_photo_converts_modes_and_orientation(tmp_path):
    rgb = Image.fromarray(smooth_picture(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    p = save(tmp_path, rgb, "rot.jpg", exif=exif)
    assert load_photo(p).shape == (60, 40, 3)
    for mode in ("L", "CMYK", "P", "I;16"):
        im = rgb.convert(mode) if mode != "I;16" else Image.fromarray((np.arange(2400).reshape(40, 60) * 27)
                                                                    .astype(np.uint16))
        got = load_photo(save(tmp_path, im, f"m{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"))
        assert got.shape == (40, 60, 3) and got.dtype == np.uint8
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :30, 3] = 255  # left half opaque red, right half transparent
    got = load_photo(save(tmp_path, Image.fromarray(rgba), "a.png"))
    assert (got[:, :30] == [255, 0, 0]).all() and (got[:, 30:] == 255).all()


def test_load_photo_errors_are_one_line_and_clear(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    jpeg = io.BytesIO()
    Image.fromarray(smooth_picture(200, 200)).save(jpeg, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    cases = [
        (text, "is not an image"),
        (truncated, "is truncated or corrupt"),
        (tmp_path / "missing.png", "does not exist"),
        (save(tmp_path, Image.new("RGB", (20, 100)), "tiny.png"), r"too small \(20x100\)"),
        (save(tmp_path, Image.new("L", (17000, 40)), "wide.png"), r"too large \(17000x40\)"),
    ]
    for path, message in cases:
        with pytest.raises(PhotoError, match=message) as e:
            load_photo(path)
        assert "\n" not in str(e.value)
    with pytest.raises(PhotoError, match="too large"):  # the pixel-count guard against decompression bombs
        load_photo(save(tmp_path, Image.new("L", (4000, 4000)), "bomb.png"), max_pixels=10_000_000)
    assert issubclass(PhotoError, ValueError)


@need_models("blazeface", "facemesh")
def test_no_face_found_is_a_clear_error(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    path = save(tmp_path, Image.fromarray(noise), "noise.png")
    with pytest.raises(PhotoError, match=r"no face found in .*noise\.png; try a photo where the face is larger"):
        align_photo(path)


@need_models("blazeface", "facemesh")
def test_align_photo_on_a_real_photo_frames_the_face_like_ffhq():
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo, aligned = align_photo(path, "ffhq", 256)
    assert aligned.image.shape == (256, 256, 3)
    # the eyes land where FFHQ puts them (its eye centres sit about 0.38 / 0.62 across, 0.45 down)
    from tlgan.extractors.detect import detect_faces, face_landmarks

    again = face_landmarks(aligned.image, detect_faces(aligned.image))
    eyes = anchor_points(again.points[0])[:2] / 256
    np.testing.assert_allclose(eyes, [[0.38, 0.47], [0.62, 0.47]], atol=0.04)


@need_models("digiface-dcgan", "facemesh")
def test_digiface_template_matches_a_fresh_measurement():
    import torch

    from tlgan.extractors.human import FaceMesh
    from tlgan.generators import load_generator

    gen = load_generator("digiface-dcgan", "cpu")
    images = gen.render(gen.sample(64, 7))
    mesh = FaceMesh("cpu")(torch.as_tensor(images))
    found = mesh.face_prob.numpy() > 0.5
    measured = anchor_points(mesh.landmarks.numpy().astype(np.float64))[found].mean(0) / images.shape[1]
    # the template's spread between faces is std 0.015-0.027 per coordinate: the mean of ~60 is within ~0.004
    np.testing.assert_allclose(measured, DIGIFACE_TEMPLATE, atol=0.012)
