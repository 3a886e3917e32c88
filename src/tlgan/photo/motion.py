"""Dense motion between two faces from their face-mesh landmarks, and warps along it.

An edit moves parts of the face (a smile lifts the mouth corners, age drops the
cheeks). ``backward_field`` turns the 468 mesh landmarks of the reconstruction
(``before``) and of the edited face (``after``) into a dense field: for each
point of the edited picture, where it came from in the reconstruction. A
thin-plate spline (scipy's ``RBFInterpolator``) through the landmark
displacements, pinned to zero on a ring around the crop, gives it; the photo's
own pixels are then moved with ``warp`` so detail the generator cannot draw
(skin, hair, eyes at the photo's resolution) follows the edit (HFGI's idea,
Wang et al. 2022, done with geometry instead of a learned alignment).

Coordinates are crop units: 0..1 across the generator's square picture.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

#: landmarks used for the field: every third mesh point is dense enough and keeps the spline cheap per move
FIELD_POINTS = np.arange(0, 468, 3)
RING = 24  # zero-displacement pins around the crop, at 1.15 crop radii from its centre


@functools.lru_cache(maxsize=2)
def _mesh(device: str = "cpu"):
    from ..extractors.human import FaceMesh

    return FaceMesh(device, refine=False)  # one pass: the second moves points by ~0.3 px of a 64-px face, at 1.4x the cost


def mesh_landmarks(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face mesh of square face pictures uint8 (N, S, S, 3): landmarks (N, 468, 2) in crop units
    (0..1) and the face-flag probability (N,)."""
    images = np.asarray(images)
    res = _mesh("cpu")(torch.from_numpy(np.array(images)))  # a writable copy (renders may be read-only)
    return res.landmarks.numpy()[..., :2].astype(np.float64) / images.shape[1], res.face_prob.numpy()


def _ring() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, RING, endpoint=False)
    return 0.5 + 1.15 * 0.5 * np.stack([np.cos(t), np.sin(t)], 1) * np.sqrt(2)


def backward_field(before: np.ndarray, after: np.ndarray, grid: int = 32, smoothing: float = 1e-4) -> np.ndarray:
    """(grid, grid, 2) field d in crop units: the point x of the edited face came from x + d(x) in the
    reconstruction. ``before`` and ``after``: (468, 2) landmarks in crop units. Identical landmarks give
    exactly zero."""
    from scipy.interpolate import RBFInterpolator

    b, a = np.asarray(before, np.float64)[FIELD_POINTS], np.asarray(after, np.float64)[FIELD_POINTS]
    if np.array_equal(a, b):
        return np.zeros((grid, grid, 2), np.float32)
    ring = _ring()
    points = np.concatenate([a, ring])
    values = np.concatenate([b - a, np.zeros_like(ring)])
    spline = RBFInterpolator(points, values, kernel="thin_plate_spline", smoothing=smoothing)
    c = (np.arange(grid) + 0.5) / grid
    gy, gx = np.meshgrid(c, c, indexing="ij")
    return spline(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(grid, grid, 2).astype(np.float32)


def sample_field(field: np.ndarray | torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The field (G, G, 2) at crop-unit points ``coords`` (..., 2), bilinear; zero outside the crop."""
    f = torch.as_tensor(field, dtype=torch.float32).permute(2, 0, 1)[None]
    g = (coords * 2 - 1).reshape(1, -1, 1, 2).to(f.dtype)
    out = F.grid_sample(f, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, :, :, 0].T.reshape(*coords.shape[:-1], 2)


def warp_crop(image: torch.Tensor, field: np.ndarray) -> torch.Tensor:
    """A square picture (C, S, S) moved along ``field``: out(x) = image(x + d(x)), bilinear, edges repeated."""
    s = image.shape[-1]
    c = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    base = torch.stack([gx, gy], -1)
    src = base + sample_field(field, base)
    return F.grid_sample(image[None].float(), (src * 2 - 1)[None], mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


def significant_motion(shift: torch.Tensor, min_px: float) -> torch.Tensor:
    """``shift`` (..., 2) in pixels, faded to exactly zero where it is shorter than ``min_px`` / 2 (a smoothstep
    of the length between ``min_px`` / 2 and ``min_px``): pixels that would move by a fraction of a pixel
    stay where they are, bit for bit, instead of being resampled (blurred)."""
    if min_px <= 0:
        return shift
    t = ((shift.norm(dim=-1, keepdim=True) / min_px - 0.5) * 2).clamp(0, 1)
    return shift * (t * t * (3 - 2 * t))
