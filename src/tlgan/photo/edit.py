"""Edit a photo at its own resolution: only what the edit changes comes from the generator.

A ``PhotoEdit`` is one photo ready to edit: its face's crop transform, the pivot
latent, the (pivot-tuned) generator's picture of the pivot and its landmarks,
and the region mask, all computed once. ``render(latent)`` then draws the
edited latent and returns the whole photo at its size::

    field  = backward_field(landmarks(G'(pivot)), landmarks(G'(latent)))      # how the face moved
    change = warp(photo, field) + up(G'(latent) - warp(G'(pivot), field)) - photo
    out    = blend(photo, change, mask)                                        # Laplacian bands

The photo's own detail moves with the face (the warp); the generator adds only
what it changes beyond that motion (its difference from the moved
reconstruction, upsampled), and only inside the mask. At the pivot itself the
photo comes back unchanged, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..align import apply, warp
from ..generators import Generator
from .blend import blend, mask_pyramid, pyramid_levels, region_mask
from .motion import backward_field, mesh_landmarks, sample_field, warp_crop

MESH_SIZE = 192  # the photo's face is meshed on a crop of this size (the mesh's own input size)
REPAINT = 0.25  # a change of the generator's picture this large (in -1..1 units) replaces the photo's detail


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int


def working_photo(photo: np.ndarray, transform: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The photo shrunk so its longer side is at most ``max_side`` (None: as it is), and the crop transform
    scaled with it."""
    h, w = photo.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return photo, transform
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    scale = np.diag([size[0] / w, size[1] / h, 1.0])
    return small, scale @ transform


class PhotoEdit:
    """One photo ready for edits of ``generator``'s latents around ``pivot`` (see the module docstring).

    ``generator``: the generator to draw with (tuned to the photo by ``tuning.tuned_generator``, or not);
    ``transform``: the 3x3 map from the generator's crop pixels to photo pixels (``Inversion.transform``);
    ``region``: ``face``, ``head`` or ``all`` (see ``blend.region_mask``); ``max_side``: work on a copy
    of the photo shrunk to this longer side (the explorer: 512), else at the photo's own size.
    """

    def __init__(self, generator: Generator, photo: np.ndarray, transform: np.ndarray, pivot: np.ndarray,
                 region: str = "face", max_side: int | None = None) -> None:
        self.generator = generator
        self.photo, self.transform = working_photo(np.ascontiguousarray(photo), np.asarray(transform, np.float64),
                                                   max_side)
        self.pivot = np.asarray(pivot, np.float32)
        self.region = region
        self.size = int(generator.resolution)
        h, w = self.photo.shape[:2]
        with torch.inference_mode():
            self.pivot_picture = generator.synthesize(generator.check_latents(self.pivot).to(generator.device))[0].cpu()
        self.pivot_landmarks = mesh_landmarks(Generator.postprocess(self.pivot_picture[None]).numpy())[0][0]
        self.photo_landmarks = self._photo_landmarks()
        mask = region_mask((h, w), self.photo_landmarks, self.transform, self.size, region)
        ys, xs = np.nonzero(mask > 0)
        if not len(xs):  # the face lies outside the crop footprint: nothing may change
            self.box = Box(0, 0, 0, 0)
            self.mask = mask
            return
        self.box = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        b = self.box
        self.mask = mask
        roi_mask = torch.from_numpy(mask[b.y0:b.y1, b.x0:b.x1].copy())[None, None]
        self.masks = mask_pyramid(roi_mask, pyramid_levels((b.y1 - b.y0, b.x1 - b.x0)))
        self.photo_roi = torch.from_numpy(self.photo[b.y0:b.y1, b.x0:b.x1].astype(np.float32)).permute(2, 0, 1)[None]
        ys_, xs_ = np.mgrid[b.y0:b.y1, b.x0:b.x1].astype(np.float64) + 0.5
        self.pixels = np.stack([xs_, ys_], -1)  # photo coordinates of the ROI's pixel centres
        crop_px = apply(np.linalg.inv(self.transform), self.pixels)
        self.crop_units = torch.from_numpy((crop_px / self.size).astype(np.float32))
        self.linear = torch.from_numpy((self.transform[:2, :2] * self.size).astype(np.float32))

    def _photo_landmarks(self) -> np.ndarray:
        """The photo's face mesh (468, 2) in photo pixels, meshed on a crop at the mesh's own size."""
        to_crop = self.transform @ np.diag([self.size / MESH_SIZE, self.size / MESH_SIZE, 1.0])
        crop = warp(self.photo, to_crop, (MESH_SIZE, MESH_SIZE), mode="edge")
        units = mesh_landmarks(crop[None])[0][0]
        return apply(to_crop, units * MESH_SIZE)

    def render(self, latent: np.ndarray) -> np.ndarray:
        """The photo (uint8, the working size) with the face of ``latent`` in place of the pivot's."""
        latent = np.asarray(latent, np.float32)
        if (latent.shape == self.pivot.shape and np.array_equal(latent, self.pivot)) or self.box.x1 == 0:
            return self.photo.copy()
        g = self.generator
        with torch.inference_mode():
            edited = g.synthesize(g.check_latents(latent).to(g.device))[0].float().cpu()
            landmarks = mesh_landmarks(Generator.postprocess(edited[None]).numpy())[0][0]
            field = backward_field(self.pivot_landmarks, landmarks)
            moved = warp_crop(self.pivot_picture, field)
            return self._compose(field, edited, moved)

    def _compose(self, field: np.ndarray, edited: torch.Tensor, moved: torch.Tensor) -> np.ndarray:
        """The working photo with ``photo moved along field + (edited - moved pivot picture)`` blended in; where
        the generator paints something new (|edited - moved| near ``REPAINT``), its picture replaces the photo's
        own detail there instead of lying under it (HFGI's residual, faded where the edit repaints)."""
        b = self.box
        h, w = b.y1 - b.y0, b.x1 - b.x0
        shift = sample_field(field, self.crop_units) @ self.linear.T  # photo pixels
        src = torch.from_numpy(self.pixels.astype(np.float32)) + shift
        grid = torch.stack([(src[..., 0] - b.x0) / w, (src[..., 1] - b.y0) / h], -1) * 2 - 1
        moved_photo = F.grid_sample(self.photo_roi, grid[None], mode="bilinear", padding_mode="border",
                                    align_corners=False)
        change = edited - moved
        keep = (1 - change.abs().mean(0, keepdim=True) / REPAINT).clamp(0, 1)
        keep = F.avg_pool2d(keep[None], 3, 1, 1, count_include_pad=False)[0]
        at = (self.crop_units * 2 - 1)[None]
        up = lambda x: F.grid_sample(x[None], at, mode="bicubic", padding_mode="zeros", align_corners=False)  # noqa: E731
        moved_up = (up(moved) + 1) * 127.5
        keep_up = F.grid_sample(keep[None], at, mode="bilinear", padding_mode="border", align_corners=False)
        residual = moved_photo - moved_up  # the photo's detail over the (moved) pivot picture
        result = moved_photo + up(change) * 127.5 - (1 - keep_up) * residual
        out_roi = blend(self.photo_roi, result - self.photo_roi, self.masks)
        out = self.photo.copy()
        out[b.y0:b.y1, b.x0:b.x1] = out_roi[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        return out

    def crop(self, image: np.ndarray, size: int = 256) -> np.ndarray:
        """The generator's crop of a working-size picture (e.g. a ``render``), at ``size`` px."""
        t = self.transform @ np.diag([self.size / size, self.size / size, 1.0])
        return warp(image, t, (size, size), mode="edge")
