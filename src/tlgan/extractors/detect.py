"""Face detection and landmarks on pictures of any size: BlazeFace, then the 468-point mesh.

``FaceDetector`` runs MediaPipe's BlazeFace (the 256x256 "back camera"
model as ``@vladmandic/human`` ships it) through ``tfjs.TFJSGraph``: the
picture is letterboxed into the square input (long side scaled to 256, black
bars), the 896 anchors' boxes and 6 keypoints are decoded, and overlapping
boxes are merged by a small non-maximum suppression. ``face_landmarks`` then
crops a square around each box from the *original* picture and runs the
existing two-pass ``FaceMesh`` on it, mapping the landmarks back to the
picture's pixels.

Coordinates are continuous pixels with the origin at the top-left corner of
the picture (pixel (i, j) covers x in [j, j+1), y in [i, i+1)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..devices import default_batch, resolve_device
from .human import FaceMesh
from .tfjs import TFJSGraph

SIZE = 256  # BlazeFace input side
# Anchors of the 256-px model: a 16x16 grid (stride 16) with 2 anchors per cell, then 8x8 (stride 32) with 6.
_ANCHOR_LAYERS = ((16, 2), (32, 6))
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")  # the subject's right/left
MIN_SCORE = 0.5
IOU = 0.3
MESH_CROP = 1.4  # side of the square crop around a detection box that the mesh sees, in box sizes (as human)
MESH_INPUT = 256  # the mesh crop is resampled to this side before FaceMesh (which pads and resizes to 192)


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (6, 2) in picture pixels
    (order ``KEYPOINTS``; the subject's right eye is on the picture's left), ``score`` in 0..1."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def size(self) -> float:
        """The box's longer side, in pixels."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in input pixels, in the order of the model's outputs."""
    out = []
    for stride, per_cell in _ANCHOR_LAYERS:
        n = SIZE // stride
        ys, xs = np.mgrid[0:n, 0:n]
        centres = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) * stride
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def decode(raw: np.ndarray, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, 17) raw outputs (logit, dx, dy, w, h, 6 x (kx, ky)) -> boxes (A, 4), scores (A,), keypoints (A, 6, 2).

    Offsets and sizes are in input pixels relative to each anchor centre (MediaPipe's x/y/w/h scale = 256).
    """
    centre = raw[:, 1:3] + anchor
    half = raw[:, 3:5] / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    scores = 1 / (1 + np.exp(-np.clip(raw[:, 0], -50, 50)))
    keypoints = raw[:, 5:17].reshape(-1, 6, 2) + anchor[:, None]
    return boxes, scores, keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (K, 4) boxes."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), 1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), -1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = IOU) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            rest = np.array(order)
            order = list(rest[iou(boxes[i], boxes[rest]) <= iou_threshold])
    return keep


def letterbox(image: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Any (H, W, 3) uint8 picture -> the 256x256 input (long side scaled to 256, centred on black),
    and the ``scale`` and ``offset`` with picture = (input - offset) / scale.

    PIL's resize filters the whole picture when shrinking, so huge pictures alias no more than small ones.
    """
    h, w = image.shape[:2]
    scale = SIZE / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0))
    out = np.zeros((SIZE, SIZE, 3), np.uint8)
    ox, oy = (SIZE - nw) // 2, (SIZE - nh) // 2
    out[oy:oy + nh, ox:ox + nw] = small
    return out, scale, (float(ox), float(oy))


class FaceDetector:
    """BlazeFace on uint8 pictures of any size; batched over the letterboxed inputs."""

    def __init__(self, device: str | None = None, batch_size: int | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch(self.device, cpu=16, gpu=256)
        self.graph = TFJSGraph.from_model("blazeface", "blazeface.json", self.device, free_batch=True,
                                          outputs=["Identity", "Identity_2", "Identity_1", "Identity_3"])
        self.anchors = anchors()

    @torch.inference_mode()
    def raw(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 256, 256, 3) uint8 inputs -> (N, 896, 17) raw outputs (score logit first)."""
        parts = []
        for i in range(0, len(inputs), self.batch_size):
            x = torch.from_numpy(inputs[i:i + self.batch_size]).to(self.device).permute(0, 3, 1, 2).float()
            out = self.graph(x / 127.5 - 1, nchw=True)
            logits = torch.cat([out["Identity"], out["Identity_1"]], 1)
            regress = torch.cat([out["Identity_2"], out["Identity_3"]], 1)
            parts.append(torch.cat([logits, regress], 2).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.anchors), 17), np.float32)

    def __call__(self, images: list[np.ndarray] | np.ndarray, min_score: float = MIN_SCORE,
                 iou_threshold: float = IOU) -> list[list[Detection]]:
        """Faces in each picture, largest first."""
        boxed = [letterbox(_check(im)) for im in images]
        if not boxed:
            return []
        raw = self.raw(np.stack([b[0] for b in boxed]))
        result = []
        for r, (_, scale, (ox, oy)) in zip(raw, boxed, strict=True):
            boxes, scores, keypoints = decode(r, self.anchors)
            hit = np.flatnonzero(scores >= min_score)
            offset = np.array([ox, oy], np.float32)
            found = []
            for k in (hit[i] for i in nms(boxes[hit], scores[hit], iou_threshold)):
                x0, y0, x1, y1 = ((boxes[k].reshape(2, 2) - offset) / scale).ravel().tolist()
                found.append(Detection((x0, y0, x1, y1), float(scores[k]),
                                       ((keypoints[k] - offset) / scale).astype(np.float64)))
            result.append(sorted(found, key=lambda d: -d.size))
        return result


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected a uint8 picture (H, W, 3), got {shape} {getattr(image, 'dtype', type(image))}")
    return image


_DETECTORS: dict[str, FaceDetector] = {}
_MESHES: dict[str, FaceMesh] = {}


def _detector(device: str | None) -> FaceDetector:
    key = str(resolve_device(device))
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(key)
    return _DETECTORS[key]


def _mesh(device: str | None) -> FaceMesh:
    key = str(resolve_device(device))
    if key not in _MESHES:
        _MESHES[key] = FaceMesh(key)
    return _MESHES[key]


def detect_faces(image: np.ndarray, min_score: float = MIN_SCORE, device: str | None = None) -> list[Detection]:
    """The faces in one uint8 (H, W, 3) picture, largest first (the detector is loaded once per device)."""
    return _detector(device)([image], min_score)[0]


def square_around(box: tuple[float, float, float, float], scale: float) -> tuple[float, float, float]:
    """Centre x, centre y and side of the square ``scale`` times the box's longer side."""
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0)


def crop_square(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The axis-aligned square (centre, side) of ``image`` resampled to ``size`` px; outside is edge-replicated.

    Only the needed region of the picture is touched, so this is cheap on huge pictures.
    """
    h, w = image.shape[:2]
    x0, y0 = cx - side / 2, cy - side / 2
    ix0, iy0 = int(np.floor(x0)) - 1, int(np.floor(y0)) - 1
    ix1, iy1 = int(np.ceil(x0 + side)) + 1, int(np.ceil(y0 + side)) + 1
    sy0, sx0 = min(max(iy0, 0), h - 1), min(max(ix0, 0), w - 1)
    sy1, sx1 = max(min(iy1, h), sy0 + 1), max(min(ix1, w), sx0 + 1)
    region = np.pad(image[sy0:sy1, sx0:sx1], ((sy0 - iy0, iy1 - sy1), (sx0 - ix0, ix1 - sx1), (0, 0)), mode="edge")
    box = (x0 - ix0, y0 - iy0, x0 - ix0 + side, y0 - iy0 + side)
    return np.asarray(Image.fromarray(region).resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0))


@dataclass(frozen=True)
class Landmarks:
    """``points`` (K, 468, 3) mesh landmarks in picture pixels (z in the same scale);
    ``face_prob`` (K,) the mesh's face-flag probability on its refined crop."""

    points: np.ndarray
    face_prob: np.ndarray


def face_landmarks(image: np.ndarray, detections: list[Detection], device: str | None = None,
                   mesh: FaceMesh | None = None) -> Landmarks:
    """The 468-point mesh of each detected face in one picture (see ``landmarks_of``)."""
    return landmarks_of([image] * len(detections), detections, device, mesh)


def landmarks_of(images: list[np.ndarray], detections: list[Detection], device: str | None = None,
                 mesh: FaceMesh | None = None) -> Landmarks:
    """The 468-point mesh (both FaceMesh passes) of ``detections[k]`` in ``images[k]``, in that picture's pixels.

    Each face is cut from its original picture as a square of ``MESH_CROP`` times its box, resampled to
    ``MESH_INPUT`` px (so huge pictures cost no more than small ones), and the mesh's landmarks are mapped
    back by that crop's scale and offset. All crops go through the mesh as one batch.
    """
    if not detections:
        return Landmarks(np.zeros((0, 468, 3)), np.zeros(0))
    mesh = mesh or _mesh(device)
    frames = [square_around(d.box, MESH_CROP) for d in detections]
    crops = np.stack([crop_square(_check(im), cx, cy, side, MESH_INPUT) for im, (cx, cy, side) in zip(images, frames, strict=True)])
    res = mesh(torch.from_numpy(crops))
    pts = res.landmarks.numpy().astype(np.float64)
    k = np.array([side / MESH_INPUT for _, _, side in frames])[:, None, None]
    origin = np.array([[cx - side / 2, cy - side / 2, 0.0] for cx, cy, side in frames])[:, None]
    return Landmarks(pts * k + origin, res.face_prob.numpy().astype(np.float64))
