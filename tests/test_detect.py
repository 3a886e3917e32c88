"""Face detection: anchor decoding, NMS and letterboxing as pure functions; BlazeFace and the mesh on
real photos (matplotlib's grace_hopper.jpg, human's screenshot of five portraits) and on no-face pictures;
the `faces` extractor on bundled faces at other framings and sizes."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlgan.extractors.detect import SIZE, anchors, crop_square, decode, iou, letterbox, nms

from model_support import need_models


def grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


# Grace Hopper's face in grace_hopper.jpg (512x600), judged by eye: forehead to chin, ear to ear.
HOPPER_FACE = (170, 140, 365, 335)


def test_anchors_follow_the_model_grid():
    a = anchors()
    assert a.shape == (896, 2)
    np.testing.assert_array_equal(a[:2], [[8, 8], [8, 8]])  # stride 16, two anchors per cell
    np.testing.assert_array_equal(a[2], [24, 8])
    np.testing.assert_array_equal(a[512:518], [[16, 16]] * 6)  # stride 32, six per cell
    np.testing.assert_array_equal(a[-1], [240, 240])


def test_decode_puts_boxes_and_keypoints_around_their_anchor():
    raw = np.zeros((2, 17), np.float32)
    raw[0, :5] = [2.0, 3.0, -4.0, 40.0, 20.0]
    raw[0, 5:7] = [-5.0, 1.0]
    anchor = np.array([[100, 50], [8, 8]], np.float32)
    boxes, scores, keypoints = decode(raw, anchor)
    np.testing.assert_allclose(boxes[0], [83, 36, 123, 56])
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-2)), 0.5], rtol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [95, 51])


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9], [51, 50, 61, 60]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.7, 0.8])
    assert nms(boxes, scores, 0.3) == [1, 4]
    assert nms(boxes, scores, 1.0) == [1, 4, 3, 0, 2]  # nothing overlaps by more than everything
    assert iou(boxes[0], boxes[[0, 2]]).tolist() == [1.0, 0.0]
    assert nms(np.zeros((0, 4)), np.zeros(0)) == []


@pytest.mark.parametrize("h, w", [(600, 512), (40, 900), (256, 256), (3000, 100)])
def test_letterbox_maps_picture_pixels_to_input_pixels(h, w):
    image = np.zeros((h, w, 3), np.uint8)
    image[h // 2:, w // 2:] = 255  # bright bottom-right quarter
    boxed, scale, (ox, oy) = letterbox(image)
    assert boxed.shape == (SIZE, SIZE, 3)
    assert scale == pytest.approx(SIZE / max(h, w))
    # the bright corner's top-left lands where the mapping says, and the bars are black
    x, y = w / 2 * scale + ox, h / 2 * scale + oy
    assert boxed[min(int(y) + 2, SIZE - 1), min(int(x) + 2, SIZE - 1)].min() > 200
    if ox >= 1:
        assert boxed[:, 0].max() == 0
    if oy >= 1:
        assert boxed[0].max() == 0


def test_crop_square_reads_the_right_region_and_replicates_edges():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 200
    crop = crop_square(image, 100.0, 50.0, 40.0, 40)  # half dark, half bright
    assert crop[:, :19].max() < 10 and crop[:, 21:].min() > 190
    corner = crop_square(image, 195.0, 5.0, 40.0, 40)  # mostly outside: the edge is replicated
    assert corner.min() > 190


@need_models("blazeface", "facemesh")
def test_one_face_on_grace_hopper_with_box_keypoints_and_mesh():
    from tlgan.extractors.detect import detect_faces, face_landmarks

    image = grace_hopper()
    faces = detect_faces(image)
    assert len(faces) == 1
    f = faces[0]
    assert iou(np.array(f.box), np.array([HOPPER_FACE], float))[0] > 0.7
    assert f.score > 0.8
    right_eye, left_eye, nose, mouth = f.keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on the picture's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    marks = face_landmarks(image, faces)
    assert marks.points.shape == (1, 468, 3) and marks.face_prob[0] > 0.9
    x0, y0, x1, y1 = HOPPER_FACE
    eyes = marks.points[0, [33, 263], :2]  # outer eye corners near BlazeFace's eye keypoints
    assert ((eyes[:, 0] > x0) & (eyes[:, 0] < x1) & (eyes[:, 1] > y0) & (eyes[:, 1] < y1)).all()
    assert np.abs(eyes.mean(0) - (right_eye + left_eye) / 2).max() < 12


@need_models("blazeface", "facemesh")
def test_huge_and_tiny_copies_give_the_same_box():
    from tlgan.extractors.detect import detect_faces, face_landmarks

    image = grace_hopper()
    base = detect_faces(image)[0]
    big = np.asarray(Image.fromarray(image).resize((512 * 6, 600 * 6), Image.BILINEAR))
    found = detect_faces(big)
    assert len(found) == 1
    np.testing.assert_allclose(np.array(found[0].box) / 6, base.box, atol=4)
    marks_big = face_landmarks(big, found).points[0, :, :2] / 6
    marks = face_landmarks(image, [base]).points[0, :, :2]
    assert np.median(np.abs(marks_big - marks)) < 1.5
    small = np.asarray(Image.fromarray(image).resize((128, 150), Image.BILINEAR))
    assert len(detect_faces(small)) == 1


@need_models("blazeface", "human-test-photos")  # a test file: `tlgan models fetch human-test-photos`
def test_five_portraits_on_a_real_screenshot():
    from tlgan import weights
    from tlgan.extractors.detect import detect_faces

    # human's demo screenshot: a row of five portraits (each about 100 px) under thumbnails of group photos
    image = np.asarray(Image.open(weights.path_of("human-test-photos", "screenshot-facedetect.jpg")).convert("RGB"))
    faces = detect_faces(image)
    portraits = [f for f in faces if f.size > 60]
    assert len(portraits) == 5
    assert all(350 < (f.box[1] + f.box[3]) / 2 < 490 for f in portraits)  # all in the portrait row
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in portraits)
    assert np.diff(centres).min() > 100  # five different faces, not one found twice
    sizes = [f.size for f in faces]
    assert sizes == sorted(sizes, reverse=True)


@need_models("blazeface")
def test_several_faces_on_a_collage_largest_first():
    from tlgan.extractors.detect import detect_faces

    # grace hopper at three sizes on a grey canvas
    canvas = np.full((700, 1100, 3), 120, np.uint8)
    hopper = grace_hopper()
    for (x, y), s in zip([(20, 40), (560, 20), (620, 480)], [1.0, 0.7, 0.35]):
        im = np.asarray(Image.fromarray(hopper).resize((round(512 * s), round(600 * s))))
        canvas[y:y + im.shape[0], x:x + im.shape[1]] = im
    found = detect_faces(canvas)
    assert len(found) == 3
    np.testing.assert_allclose([f.size / found[0].size for f in found], [1, 0.7, 0.35], atol=0.03)


@need_models("blazeface")
def test_no_face_on_blank_or_noise():
    from tlgan.extractors.detect import FaceDetector

    rng = np.random.default_rng(0)
    pictures = [np.zeros((300, 400, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8),
                rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
                np.asarray(Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((400, 300)))]
    assert FaceDetector("cpu")(pictures) == [[], [], [], []]


@need_models("blazeface", "facemesh", "faceres", "fer-emotion", "digiface-dcgan")
def test_faces_extractor_agrees_across_framings_and_sizes():
    """The same bundled faces labelled as 64-px crops and as bigger / padded pictures through the detector.

    Measured on 48 faces (seed 1): the per-face differences between the paths are of the size a 1-px shift
    of the 64-px face makes on the bundled path itself (e.g. median |d male| 0.02, |d age| 0.6-1.1 years,
    |d yaw| 0.3-0.6 deg, |d happy| 0.01-0.03, correlations 0.90-0.998). The bounds below are about twice
    the medians measured, on 12 faces.
    """
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen = load_generator("digiface-dcgan", "cpu")
    faces = gen.render(gen.sample(12, 1)).numpy()
    base = load_extractor("faces", "cpu")
    names = base.feature_names
    ref = base(faces)
    detect = load_extractor("faces-detect", "cpu")
    resize = lambda s: np.stack([np.asarray(Image.fromarray(f).resize((s, s), Image.BICUBIC)) for f in faces])  # noqa
    variants = {
        "64 via detector": (detect, faces),
        "256": (base, resize(256)),  # `faces` takes any non-64 picture through the detector
        "1024": (base, resize(1024)),
        "padded to 128": (base, np.pad(faces, ((0, 0), (32, 32), (32, 32), (0, 0)), mode="edge")),
    }
    bounds = {"male": 0.06, "age": 2.5, "happy": 0.06, "neutral": 0.08, "yaw": 1.5, "pitch": 1.8, "roll": 1.0,
              "mouth_open": 0.01, "smile_width": 0.02, "skin_tone": 0.02}
    for label, (ext, pictures) in variants.items():
        y = ext(pictures, batch_size=12)
        both = (ref[:, 0] == 1) & (y[:, 0] == 1)
        assert both.sum() >= 10, label
        for name, bound in bounds.items():
            i = names.index(name)
            diff = np.median(np.abs(y[both, i] - ref[both, i]))
            assert diff < bound, f"{label}: median |d {name}| = {diff:.3g} >= {bound}"
        assert np.corrcoef(y[both, names.index("yaw")], ref[both, names.index("yaw")])[0, 1] > 0.98


@need_models("blazeface", "facemesh", "faceres", "fer-emotion")
def test_faces_extractor_reports_no_face_honestly():
    from tlgan.extractors import load_extractor

    ext = load_extractor("faces", "cpu")
    blank = np.stack([np.full((256, 256, 3), 128, np.uint8),
                      np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)])
    y = ext(blank)
    assert (y[:, 0] == 0).all() and np.isnan(y[:, 1:]).all()
