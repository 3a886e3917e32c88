"""Where an edit may change a photo (face / head / all masks) and seam-free multi-band blending.

``region_mask`` draws a soft mask from the photo's face-mesh landmarks:
``face`` the face oval (brows to chin), ``head`` the oval grown by half (hair
line, ears, jaw), ``all`` everything the generator's crop covers. Every mask is
limited to the crop's footprint (the generator draws nothing outside it) and
falls to zero smoothly at its outline (a smoothstep of the distance inside it).

``blend`` adds a change to the photo band by band (Burt & Adelson's Laplacian
pyramid): coarse bands of the change fade over a wide border, fine bands over a
narrow one, so no seam shows, and pixels where the mask is zero stay exactly
as they were. ``seam_score`` measures a seam: the gradient energy along the
mask's border in the result against the photo's own there (1 = no new edge).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..extractors.geometry import FACE_OVAL

Region = Literal["face", "head", "all"]
REGIONS: tuple[str, ...] = ("face", "head", "all")
HEAD_GROWTH = 1.5  # the head mask: the face oval scaled about its centre by this much


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    img = Image.new("F", (shape[1], shape[0]), 0.0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in np.asarray(polygon, np.float64)], fill=1.0)
    return np.asarray(img, np.float32)


def _soften(hard: np.ndarray, width: float) -> np.ndarray:
    """A smoothstep of the distance inside ``hard`` over ``width`` px: 0 on and outside its outline, 1 deeper in."""
    from scipy.ndimage import distance_transform_edt

    ramp = np.clip(distance_transform_edt(hard > 0.5) / max(width, 1.0), 0, 1)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def crop_footprint(shape: tuple[int, int], transform: np.ndarray, size: int, inset: float = 0.04) -> np.ndarray:
    """(H, W) 0/1 mask of the photo pixels that the ``size``-px crop at ``transform`` (crop -> photo) covers,
    ``inset`` of the side inside its edges."""
    a, b = inset * size, (1 - inset) * size
    corners = np.array([[a, a], [b, a], [b, b], [a, b]], np.float64)
    quad = corners @ transform[:2, :2].T + transform[:2, 2]
    return _polygon_mask(shape, quad)


def region_mask(shape: tuple[int, int], landmarks: np.ndarray, transform: np.ndarray, size: int,
                region: str = "face") -> np.ndarray:
    """Soft (H, W) float32 mask in [0, 1] of where an edit may change the photo.

    ``landmarks``: the face's (468, 2+) mesh in photo pixels; ``transform``: crop pixel -> photo pixel of the
    generator's ``size``-px crop. The border softness scales with the face's size.
    """
    if region not in REGIONS:
        from ..errors import InputError

        raise InputError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    oval = np.asarray(landmarks, np.float64)[list(FACE_OVAL), :2]
    face_side = float(np.ptp(oval[:, 0]) + np.ptp(oval[:, 1])) / 2
    footprint = crop_footprint(shape, transform, size)
    if region == "all":
        return _soften(footprint, 0.12 * face_side)
    centre = oval.mean(0)
    grow = 1.0 if region == "face" else HEAD_GROWTH
    hard = _polygon_mask(shape, centre + grow * (oval - centre)) * footprint
    return _soften(hard, (0.12 if region == "face" else 0.2) * face_side)


# --------------------------------------------------------------------------- multi-band blending


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), mode="replicate"), 2)


def _up(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)


def pyramid_levels(shape: tuple[int, int], min_side: int = 8, most: int = 6) -> int:
    """How many bands for a picture of ``shape``: halve until ``min_side``, at most ``most``."""
    levels, side = 1, min(shape)
    while side // 2 >= min_side and levels < most:
        side //= 2
        levels += 1
    return levels


def mask_pyramid(mask: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Gaussian-like pyramid of a (1, 1, H, W) mask: one mask per band, each at its band's size."""
    out = [mask]
    for _ in range(levels - 1):
        out.append(_down(out[-1]))
    return out


def blend(photo: torch.Tensor, change: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """``photo + sum_l up(mask_l * laplacian_l(change))`` for float (1, C, H, W) tensors, where ``masks`` is
    ``mask_pyramid(mask)``. Equal to Laplacian-pyramid blending of ``photo + change`` into ``photo``; pixels
    where the finest mask is 0 are returned unchanged (the coarse bands' spread is cut there)."""
    gauss = [change]
    for _ in range(len(masks) - 1):
        gauss.append(_down(gauss[-1]))
    acc = gauss[-1] * masks[-1]
    for level in range(len(masks) - 2, -1, -1):
        g = gauss[level]
        band = g - _up(gauss[level + 1], tuple(g.shape[-2:]))
        acc = _up(acc, tuple(g.shape[-2:])) + band * masks[level]
    return torch.where(masks[0] > 0, photo + acc, photo)


def seam_score(photo: np.ndarray, result: np.ndarray, mask: np.ndarray, band: tuple[float, float] = (0.02, 0.3)) -> float:
    """Gradient energy of ``result`` along the mask's outer border over the photo's own there (1.0: no seam).

    The border is where the mask is between ``band``; gradients are of the luminance, both axes.
    """
    sel = (mask > band[0]) & (mask < band[1])
    if not sel.any():
        return 1.0

    def energy(img: np.ndarray) -> float:
        y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        gy, gx = np.gradient(y)
        return float((gx * gx + gy * gy)[sel].mean())

    return (energy(result) + 1.0) / (energy(photo) + 1.0)  # + 1 grey level squared: a flat photo scores 1
