"""The default `faces` extractor: geometry on synthetic meshes with known pose, and the real models on real faces."""

import numpy as np
import pytest
import torch

from tlgan.extractors.geometry import (CHIN, FACE_OVAL, FOREHEAD, LEFT_EYE_OUTER, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT,
                                       RIGHT_EYE_OUTER, UPPER_LIP, head_pose, mouth_eyes_smile,
                                       skin_and_background)

from model_support import need_models


def rotation(yaw, pitch, roll):
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])  # p > 0: face tilts up
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz  # roll in the face's own frame, then pitch, then yaw


def synthetic_mesh(yaw=0.0, pitch=0.0, roll=0.0):
    """A frontal 'face' in a right-handed frame (x right, y up, z to camera), rotated, then put in image pixels."""
    p = np.zeros((468, 3))
    p[RIGHT_EYE_OUTER], p[LEFT_EYE_OUTER] = [-1, 0, 0], [1, 0, 0]
    p[FOREHEAD], p[CHIN] = [0, 1.2, 0.1], [0, -1.8, 0.1]
    p[UPPER_LIP], p[LOWER_LIP] = [0, -1.0, 0.2], [0, -1.3, 0.2]
    p[MOUTH_RIGHT], p[MOUTH_LEFT] = [-0.6, -1.15, 0.1], [0.6, -1.15, 0.1]
    p = p @ rotation(yaw, pitch, roll).T
    return (p * np.array([10, -10, -10]) + np.array([32, 32, 0]))[None]  # image pixels: y down, z away


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (30, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -15, 0),
                                              (0, 0, 15), (0, 0, -8)])
def test_head_pose_recovers_a_known_rotation(yaw, pitch, roll):
    got = head_pose(synthetic_mesh(yaw, pitch, roll))[0]
    np.testing.assert_allclose(got, [yaw, pitch, roll], atol=1e-6)


def test_yaw_and_pitch_are_separated_when_combined():
    got = head_pose(synthetic_mesh(25, -10, 0))[0]
    np.testing.assert_allclose(got[:2], [25, -10], atol=1e-6)


def test_mouth_and_smile_are_scale_free():
    a = mouth_eyes_smile(synthetic_mesh())
    b = mouth_eyes_smile(synthetic_mesh() * 3)
    assert a[0, 0] == pytest.approx(0.15) and a[0, 2] == pytest.approx(0.6)
    np.testing.assert_allclose(a[:, [0, 2]], b[:, [0, 2]])


def test_skin_and_background_read_the_right_pixels():
    yy, xx = np.mgrid[0:64, 0:64]
    img = torch.full((1, 64, 64, 3), 200, dtype=torch.uint8)  # bright background
    img[0][torch.from_numpy(np.hypot(xx - 32, yy - 30) <= 16)] = 40  # a dark round face
    rng = np.random.default_rng(0)
    angle, radius = rng.uniform(0, 2 * np.pi, 468), rng.uniform(0, 10, 468)
    mesh = np.zeros((1, 468, 3))  # skin points well inside the face ...
    mesh[0, :, 0], mesh[0, :, 1] = 32 + radius * np.cos(angle), 30 + radius * np.sin(angle)
    oval = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)  # ... and the oval on its edge
    mesh[0, list(FACE_OVAL), 0], mesh[0, list(FACE_OVAL), 1] = 32 + 16 * np.cos(oval), 30 + 16 * np.sin(oval)
    skin, background = skin_and_background(img, mesh)[0]
    assert skin == pytest.approx(40 / 255, abs=0.01)
    assert background == pytest.approx(200 / 255, abs=0.01)


@need_models("digiface-dcgan", "faceres", "facemesh", "fer-emotion")
def test_faces_extractor_on_generated_faces():
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen, ext = load_generator("digiface-dcgan", "cpu"), load_extractor("faces", "cpu")
    y = ext(gen.render(gen.sample(48, 0)))
    names = ext.feature_names
    col = {n: y[:, names.index(n)] for n in names}
    found = col["face_found"] == 1
    assert set(np.unique(col["face_found"])) <= {0.0, 1.0}
    assert found.mean() > 0.85  # about 96% of these faces are found
    assert np.isnan(y[~found, 1:]).all() and np.isfinite(y[found]).all()
    assert ((col["male"][found] >= 0) & (col["male"][found] <= 1)).all()
    assert 15 < np.median(col["age"][found]) < 50
    expr = y[found][:, names.index("happy"):names.index("angry") + 1]
    assert (expr >= 0).all() and (expr.sum(1) <= 1 + 1e-5).all()
    assert np.abs(col["yaw"][found]).max() < 90 and col["yaw"][found].std() > 5  # heads do turn
    assert ((col["skin_tone"][found] > 0) & (col["skin_tone"][found] < 1)).all()


@need_models("digiface-dcgan", "faceres", "facemesh", "fer-emotion")
def test_faces_extractor_known_answers_mirror_and_column_order():
    """Answers a swapped or misordered column would get wrong: a mirrored face turns and rolls the other way
    and keeps its age, sex and smile; the columns are in the documented order, the probes' among them."""
    from tlgan.extractors import load_extractor
    from tlgan.extractors.faces import SHIPPED_PROBES
    from tlgan.generators import load_generator

    gen, ext = load_generator("digiface-dcgan", "cpu"), load_extractor("faces", "cpu")
    names = ext.feature_names
    assert names[:14] == ["face_found", "male", "age", "happy", "surprise", "neutral", "sad", "angry", "yaw",
                          "pitch", "roll", "mouth_open", "eye_open", "smile_width"]
    assert names[14:16] == ["skin_tone", "background"] and names[16:] == [f.name for f in SHIPPED_PROBES.features]
    images = gen.render(gen.sample(48, 0))
    y, m = ext(images), ext(images.flip(2))  # (N, H, W, 3): flip the width
    both = (y[:, 0] == 1) & (m[:, 0] == 1)
    assert both.mean() > 0.8
    col = {n: (y[both, names.index(n)], m[both, names.index(n)]) for n in names}
    for angle in ("yaw", "roll"):
        a, b = col[angle]
        assert np.corrcoef(a, b)[0, 1] < -0.8, angle  # the sign flips, face by face
        assert np.median(np.abs(a + b)) < 0.35 * np.abs(a).std() + 1, angle
    a, b = col["pitch"]
    assert np.corrcoef(a, b)[0, 1] > 0.8  # tilting up or down does not mirror
    assert np.median(np.abs(col["age"][0] - col["age"][1])) < 5
    for f in ("male", "happy"):
        assert np.median(np.abs(col[f][0] - col[f][1])) < 0.1, f
    # the probe columns are the shipped probes applied to the faceres descriptor, in the probes' order
    found = y[:, 0] == 1
    d = ext.descriptor(images[torch.from_numpy(found)])
    probes = y[found][:, [names.index(f) for f in (p.name for p in SHIPPED_PROBES.features)]]
    np.testing.assert_allclose(probes, SHIPPED_PROBES(d), atol=1e-4)


def test_faces_showcase_picks_found_frontal_well_lit_faces():
    import numpy as np

    from tlgan.extractors.faces import FEATURES, FacesExtractor

    ext = FacesExtractor.__new__(FacesExtractor)  # the choice reads labels only: no networks needed
    col = {f.name: j for j, f in enumerate(FEATURES)}
    labels = np.zeros((5, len(FEATURES)), np.float32)
    labels[:, col["face_found"]] = [1, 1, 1, 0, 1]
    labels[:, col["yaw"]] = [0, 30, -5, 0, np.nan]
    labels[:, col["skin_tone"]] = [0.5, 0.5, 0.2, 0.5, 0.5]
    assert ext.has_showcase and ext.showcase(labels).tolist() == [True, False, False, False, False]
