"""Face geometry from the 468 MediaPipe mesh landmarks: head pose, mouth, eyes, smile, skin and background.

Pure functions over arrays. Landmarks come in image pixels (x right, y down,
z as the mesh gives it, growing away from the camera); they are turned into a
right-handed frame (x right, y up, z toward the camera) before measuring.
"""

from __future__ import annotations

import numpy as np
import torch

# MediaPipe mesh indices
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
RIGHT_EYE_INNER, LEFT_EYE_INNER = 133, 362
FOREHEAD, CHIN = 10, 152
UPPER_LIP, LOWER_LIP = 13, 14
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM = 159, 145
LEFT_EYE_TOP, LEFT_EYE_BOTTOM = 386, 374
# points on the cheeks and forehead, away from eyes, brows, mouth and hair
SKIN_POINTS = (50, 280, 101, 330, 151, 9, 118, 347, 205, 425)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def _norm(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1)


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """(N, 468, 3) image-pixel landmarks -> (N, 3) yaw, pitch, roll in degrees.

    yaw > 0: the face turns toward the image's right; pitch > 0: it tilts up;
    roll > 0: the eye line rises toward the image's right.
    """
    p = landmarks * np.array([1.0, -1.0, -1.0])  # to x right, y up, z toward camera
    ex = p[:, LEFT_EYE_OUTER] - p[:, RIGHT_EYE_OUTER]
    ex /= _norm(ex)[:, None]
    up = p[:, FOREHEAD] - p[:, CHIN]
    ey = up - (up * ex).sum(-1, keepdims=True) * ex
    ey /= _norm(ey)[:, None]
    ez = np.cross(ex, ey)
    yaw = np.degrees(np.arctan2(ez[:, 0], ez[:, 2]))
    pitch = np.degrees(np.arctan2(ez[:, 1], np.hypot(ez[:, 0], ez[:, 2])))
    roll = np.degrees(np.arctan2(ex[:, 1], ex[:, 0]))
    return np.stack([yaw, pitch, roll], axis=1)


def mouth_eyes_smile(landmarks: np.ndarray) -> np.ndarray:
    """(N, 468, 3) -> (N, 3): mouth opening, eye opening and smile width, scale-free.

    Mouth opening and smile width are divided by the distance between the
    outer eye corners; eye opening is each eye's height over its width, averaged.
    """
    p = landmarks
    iod = _norm(p[:, LEFT_EYE_OUTER] - p[:, RIGHT_EYE_OUTER])
    mouth = _norm(p[:, UPPER_LIP] - p[:, LOWER_LIP]) / iod
    eye_r = _norm(p[:, RIGHT_EYE_TOP] - p[:, RIGHT_EYE_BOTTOM]) / _norm(p[:, RIGHT_EYE_OUTER] - p[:, RIGHT_EYE_INNER])
    eye_l = _norm(p[:, LEFT_EYE_TOP] - p[:, LEFT_EYE_BOTTOM]) / _norm(p[:, LEFT_EYE_INNER] - p[:, LEFT_EYE_OUTER])
    smile = _norm(p[:, MOUTH_LEFT] - p[:, MOUTH_RIGHT]) / iod
    return np.stack([mouth, (eye_r + eye_l) / 2, smile], axis=1)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float (N, H, W) relative luminance in [0, 1] (Rec. 709 weights on sRGB values)."""
    w = torch.tensor([0.2126, 0.7152, 0.0722], device=images.device)
    return (images.float() / 255.0) @ w


def skin_and_background(images: torch.Tensor, landmarks: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 images + their landmarks -> (N, 2): skin luminance, background luminance.

    Skin: mean luminance in small patches around cheek and forehead points.
    Background: mean luminance of the pixels farther than 1.4 face radii from
    the face centre, in the upper two thirds of the image (below is mostly
    neck and clothes).
    """
    lum = luminance(images).cpu().numpy()
    n, h, w = lum.shape
    rows = np.arange(n)[:, None, None]
    dy, dx = (a.ravel() for a in np.mgrid[-1:2, -1:2])  # 3x3 patch offsets
    pts = landmarks[:, list(SKIN_POINTS), :2]
    ix = np.clip(np.rint(pts[..., 0]), 1, w - 2).astype(int)[..., None] + dx
    iy = np.clip(np.rint(pts[..., 1]), 1, h - 2).astype(int)[..., None] + dy
    skin = np.median(lum[rows, iy, ix].mean(-1), axis=1)

    oval = landmarks[:, list(FACE_OVAL), :2]
    centre = oval.mean(1)
    radius = np.linalg.norm(oval - centre[:, None], axis=-1).mean(1)
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx[None] - centre[:, 0, None, None], yy[None] - centre[:, 1, None, None])
    far = (dist > 1.4 * radius[:, None, None]) & (yy[None] < 2 * h / 3)
    count = far.sum((1, 2))
    background = np.where(count >= 10, (lum * far).sum((1, 2)) / np.maximum(count, 1), np.nan)
    return np.stack([skin, background], axis=1).astype(np.float32)
