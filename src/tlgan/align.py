"""Face alignment: crop a face the way a generator family frames its faces, and paste an edit back.

A ``Framing`` says where a generator puts the eyes and mouth in its square
output. ``align_face`` turns four anchor points of a photo's face (the two
eye centres and the two mouth corners, from the 468-point mesh) into the
similarity transform crop pixel -> photo pixel, and samples the crop;
``paste_back`` warps an edited crop back into the photo under a feathered
mask. ``load_photo`` reads any picture PIL can open into RGB, with one-line
errors for the inputs that cannot work.

Geometry is pure numpy; the warps use PIL (bicubic, shrinking the source
first when the crop is much smaller than the face so the result does not
alias). Coordinates are continuous pixels, origin at the top-left corner of
the top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

MIN_SIDE = 32
MAX_SIDE = 16384
MAX_PIXELS = 200_000_000  # decompression-bomb guard: a picture this large would need > 600 MB as RGB

# MediaPipe mesh indices: eye contours (image-left eye = the subject's right), mouth corners.
EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT = 61, 291


class PhotoError(InputError):
    """A picture cannot be used: unreadable, too small or large, or no face in it."""


@dataclass(frozen=True)
class Framing:
    """How a generator family frames a face in its square output.

    ``rule`` "template": the crop is the similarity that best maps ``template``
    (eye centres then mouth corners, image-left first, in crop units 0..1) onto
    the face's anchor points. ``rule`` "ffhq": the FFHQ dataset's quad rule.
    """

    name: str
    rule: Literal["template", "ffhq"]
    description: str
    template: tuple[tuple[float, float], ...] = ()


# Measured on the bundled DCGAN: 512 faces of `load_generator("digiface-dcgan").render(sample(512, 0))`,
# the `faces` extractor's two-pass mesh on each 64-px face, the mean position (in units of the 64-px side)
# of each eye's contour centre and of the mouth corners over the 493 faces the mesh found (face flag > 0.5).
# Spread between faces: std 0.015-0.027 per coordinate. tests/test_align.py re-measures it on 64 faces.
DIGIFACE_TEMPLATE = ((0.3513, 0.4701), (0.6498, 0.4675), (0.3764, 0.8115), (0.6270, 0.8092))

FRAMINGS: dict[str, Framing] = {
    f.name: f for f in [
        Framing("digiface", "template", "the bundled DCGAN's 64-px DigiFace faces (template measured on them)",
                DIGIFACE_TEMPLATE),
        Framing("ffhq", "ffhq", "FFHQ / StyleGAN: the quad from eye centres and mouth corners"),
        # CelebA-HQ was made with its own (Karras et al. 2018) crop rule, not FFHQ's; the two frame faces
        # similarly (eyes a little above the middle, the whole head in view), and no measured CelebA-HQ
        # template is at hand, so PGGAN CelebA-HQ generators use the FFHQ rule.
        Framing("celebahq", "ffhq", "PGGAN CelebA-HQ: the FFHQ rule (an approximation)"),
    ]
}


@dataclass(frozen=True)
class Aligned:
    """``image``: the aligned uint8 (size, size, 3) crop; ``transform``: 3x3, crop pixel -> photo pixel."""

    image: np.ndarray
    transform: np.ndarray


def get_framing(framing: str | Framing) -> Framing:
    if isinstance(framing, Framing):
        return framing
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; known: {', '.join(FRAMINGS)}")
    return FRAMINGS[framing]


# --------------------------------------------------------------------------- geometry (pure)


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 468, 2+) mesh landmarks -> (..., 4, 2): eye centres then mouth corners, image-left first."""
    xy = np.asarray(landmarks)[..., :2]
    return np.stack([xy[..., list(EYE_IMAGE_LEFT), :].mean(-2), xy[..., list(EYE_IMAGE_RIGHT), :].mean(-2),
                     xy[..., MOUTH_IMAGE_LEFT, :], xy[..., MOUTH_IMAGE_RIGHT, :]], -2)


def similarity(src: np.ndarray, dst: np.ndarray, rotate: bool = True) -> np.ndarray:
    """The 3x3 similarity (scale, rotation, translation) mapping (K, 2) ``src`` onto ``dst`` in the
    least-squares sense (Umeyama, no reflection). ``rotate=False`` drops the rotation about the centroids,
    keeping the scale: an upright crop of a tilted face keeps the face's size and position."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    # complex form: dst ~ z * src with z = s * e^{i theta}
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    z = (np.conj(za) @ zb) / (np.conj(za) @ za).real
    z = z if rotate else abs(z)
    m = np.array([[z.real, -z.imag], [z.imag, z.real]])
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = m, md - m @ ms
    return out


def ffhq_quad(points: np.ndarray) -> np.ndarray:
    """FFHQ's crop quad (4, 2) from the anchor points: corners top-left, bottom-left, bottom-right, top-right.

    As in the FFHQ alignment: the eye-to-eye and eye-to-mouth vectors give the
    crop's x axis (x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1], normalised),
    its half-size max(|eye_to_eye| * 2, |eye_to_mouth| * 1.8), and its centre
    eye_avg + eye_to_mouth * 0.1.
    """
    eye_left, eye_right, mouth_left, mouth_right = np.asarray(points, np.float64)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def crop_transform(points: np.ndarray, framing: str | Framing, size: int, rotate: bool = True) -> np.ndarray:
    """3x3 transform crop pixel -> photo pixel of the ``size``-px crop that frames the face like ``framing``.

    ``rotate=False`` keeps the crop axis-aligned (same centre and scale): head roll stays in the picture.
    """
    f = get_framing(framing)
    points = np.asarray(points, np.float64)
    if f.rule == "template":
        return similarity(np.asarray(f.template) * size, points, rotate)
    tl, _, _, tr = ffhq_quad(points)
    x = (tr - tl) / size  # one crop pixel along x, in photo pixels
    if not rotate:
        x = np.array([np.hypot(*x), 0.0])
    centre = (tl + tr) / 2 + np.flipud(x) * [-1, 1] * size / 2
    out = np.eye(3)
    out[:2, 0], out[:2, 1] = x, np.flipud(x) * [-1, 1]
    out[:2, 2] = centre - out[:2, :2] @ [size / 2, size / 2]
    return out


def apply(transform: np.ndarray, points: ArrayLike) -> np.ndarray:
    """Map (..., 2) points through a 3x3 affine transform."""
    p = np.asarray(points, np.float64)
    return p @ transform[:2, :2].T + transform[:2, 2]


# --------------------------------------------------------------------------- warps


def _scale_of(transform: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(transform[:2, :2]))))


def warp(source: np.ndarray, transform: np.ndarray, size: tuple[int, int], mode: str = "reflect") -> np.ndarray:
    """Sample ``size`` (w, h) output pixels at ``transform`` (output pixel -> source pixel) of ``source``
    ((H, W, C) uint8 or (H, W) float32). Only the region the output sees is read; outside the source is
    filled by numpy padding ``mode``; sources much larger than the output are shrunk first (antialiasing)."""
    w, h = size
    corners = apply(transform, [[0, 0], [w, 0], [0, h], [w, h]])
    s = _scale_of(transform)
    margin = 2 + 2 * s
    x0, y0 = np.floor(corners.min(0) - margin).astype(int)
    x1, y1 = np.ceil(corners.max(0) + margin).astype(int)
    sh, sw = source.shape[:2]
    sy0, sx0 = min(max(y0, 0), sh - 1), min(max(x0, 0), sw - 1)
    sy1, sx1 = max(min(y1, sh), sy0 + 1), max(min(x1, sw), sx0 + 1)
    pads = [(int(sy0 - y0), int(y1 - sy1)), (int(sx0 - x0), int(x1 - sx1))] + [(0, 0)] * (source.ndim - 2)
    region = np.pad(source[sy0:sy1, sx0:sx1], pads, mode=mode)  # type: ignore[call-overload]
    move = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    img = Image.fromarray(region)
    if s > 1.5:  # shrink to about one source pixel per output pixel
        rw, rh = max(1, round(img.width / s)), max(1, round(img.height / s))
        move = np.diag([rw / img.width, rh / img.height, 1.0]) @ move
        img = img.resize((rw, rh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    m = move @ transform
    out = img.transform((w, h), Image.Transform.AFFINE, tuple(m[:2].ravel()), Image.Resampling.BICUBIC)
    return np.asarray(out)


def align_face(image: np.ndarray, landmarks: np.ndarray, framing: str | Framing = "ffhq", size: int = 256,
               rotate: bool = True) -> Aligned:
    """The face with these (468, 2+) mesh landmarks, cropped as ``framing`` frames faces, at ``size`` px."""
    t = crop_transform(anchor_points(landmarks), framing, size, rotate)
    return Aligned(warp(image, t, (size, size)), t)


def feather_mask(size: int, feather: float) -> np.ndarray:
    """(size, size) float32 mask: 1 inside, ramping smoothly to 0 over ``feather`` * size at the edges."""
    c = np.arange(size) + 0.5
    d = np.minimum(c, size - c)
    ramp = np.clip(d / max(feather * size, 1e-6), 0, 1) if feather > 0 else np.ones(size)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return np.minimum.outer(ramp, ramp).astype(np.float32)


def paste_back(photo: np.ndarray, crop: np.ndarray, transform: np.ndarray, feather: float = 0.1) -> np.ndarray:
    """``photo`` with an (edited) aligned ``crop`` warped back into place under a feathered mask.

    ``transform`` is the crop pixel -> photo pixel transform that ``align_face`` returned. Only the crop's
    footprint in the photo is touched.
    """
    size = crop.shape[0]
    corners = apply(transform, [[0, 0], [size, 0], [0, size], [size, size]])
    h, w = photo.shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int), 0, [w, h])
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    back = np.linalg.inv(transform) @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    pasted = warp(crop, back, (x1 - x0, y1 - y0), mode="edge").astype(np.float32)
    mask = warp(feather_mask(size, feather), back, (x1 - x0, y1 - y0), mode="constant")[..., None]
    mask = np.clip(mask, 0, 1)
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(region + mask * (pasted - region)), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- photos


def load_photo(path: str | Path, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A picture file as uint8 RGB (H, W, 3), upright by its EXIF orientation.

    Grey, palette, CMYK and 16-bit pictures are converted; transparency is laid on white.
    """
    name = str(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if max(w, h) > max_side or w * h > max_pixels:
                raise PhotoError(f"{name} is too large ({w}x{h}); the limit is {max_side} px a side and "
                                 f"{max_pixels // 1_000_000} megapixels: downscale it first")
            if min(w, h) < min_side:
                raise PhotoError(f"{name} is too small ({w}x{h}); a face needs at least {min_side} px a side")
            im.load()
            return _to_rgb(ImageOps.exif_transpose(im))
    except FileNotFoundError as e:
        raise PhotoError(f"{name} does not exist") from e
    except UnidentifiedImageError as e:
        raise PhotoError(f"{name} is not an image PIL can read") from e
    except Image.DecompressionBombError as e:
        raise PhotoError(f"{name} is too large to decode safely ({e}); downscale it first") from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, PhotoError):
            raise
        raise PhotoError(f"{name} is truncated or corrupt: {e}") from e


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im).astype(np.float64)
        a = a / 257.0 if a.max() > 255 else a
        return np.repeat(np.clip(np.rint(a), 0, 255).astype(np.uint8)[..., None], 3, 2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        canvas = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(canvas, im)
    return np.asarray(im.convert("RGB"))


def align_photo(photo: str | Path | np.ndarray, framing: str | Framing = "ffhq", size: int = 256,
                rotate: bool = True, device: str | None = None, face: int = 0) -> tuple[np.ndarray, Aligned]:
    """Load (if a path) a photo, find a face and align it: the RGB photo and the ``Aligned`` crop.

    ``face`` picks among the faces found, largest first (0 = the largest).
    Detection sees a 256-px copy of the photo; the mesh and the crop read the original pixels.
    """
    from .extractors.detect import MIN_SCORE, detect_faces, face_landmarks

    image = load_photo(photo) if not isinstance(photo, np.ndarray) else photo
    name = str(photo) if not isinstance(photo, np.ndarray) else "the picture"
    if min(image.shape[:2]) < MIN_SIDE:
        raise PhotoError(f"{name} is too small ({image.shape[1]}x{image.shape[0]}); "
                         f"a face needs at least {MIN_SIDE} px a side")
    faces = detect_faces(image, MIN_SCORE, device)
    if faces and not 0 <= face < len(faces):
        raise PhotoError(f"{name} has {len(faces)} face(s) (numbered 0.. largest first); there is no face {face}")
    marks = face_landmarks(image, faces[face:face + 1], device) if faces else None
    if marks is None or marks.face_prob[0] <= 0.5:
        raise PhotoError(f"no face found in {name}; try a photo where the face is larger / frontal")
    return image, align_face(image, marks.points[0], framing, size, rotate)
