"""Face models of ``@vladmandic/human`` run batched in PyTorch through ``tfjs.TFJSGraph``.

Each class takes uint8 NHWC images of any size (the generator gives 64x64
face crops), prepares them the way the model expects, runs the TF.js graph
on its ``device`` under ``torch.inference_mode`` and returns float32 CPU
tensors.

- ``FaceRes``: P(male), age and a 1024-d descriptor (``faceres``).
- ``FaceMesh``: 468 MediaPipe landmarks in image pixels, two passes (``facemesh``).
- ``HumanEmotion``: 7 expression probabilities (``emotion``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..devices import default_batch, resolve_device
from .images import check_images
from .tfjs import TFJSGraph

Tensor = torch.Tensor

# Output order of human's grayscale emotion graph (human 3.3.6, 1-channel input).
HUMAN_EMOTION_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# ITU-R 601 luma weights human applies to its 0..1 RGB face crop before the emotion graph.
_GRAY = (0.2989, 0.587, 0.114)
# MediaPipe mesh indices of the outer eye corners (image-left and image-right eye).
EYE_LEFT, EYE_RIGHT = 33, 263


def _check(images: Tensor) -> None:
    check_images(images)


def _resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of NCHW floats to size x size (half-pixel centres), antialiased when shrinking."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-2] > size or x.shape[-1] > size
    return F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _nchw(images: Tensor, device: torch.device) -> Tensor:
    """uint8 NHWC -> float NCHW on ``device`` (values unchanged, 0..255)."""
    return images.to(device).permute(0, 3, 1, 2).float()


@dataclass(frozen=True)
class FaceResResult:
    """``male``: P(male) (N,); ``age``: expected bin of the 100-bin age softmax (N,),
    in years; ``descriptor``: the 1024-d ``global_pooling/Mean`` features (N, 1024)."""

    male: Tensor
    age: Tensor
    descriptor: Tensor


class FaceRes:
    """HSE faceres (gender, age, descriptor): RGB 0..255 face resized to 224x224.

    The notes measured 224 to be needed (smaller inputs change P(male)), and
    small batches to be fastest on CPUs. The resize uses half-pixel centres;
    human itself calls TF.js's legacy ``resizeBilinear`` (no half-pixel
    centres, a shift of up to half a source pixel), which moved P(male) by up
    to 0.07 and age by up to 1.7 years on 64 generated faces (r = 0.993).
    """

    size = 224

    def __init__(self, device: str | None = None, batch_size: int | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch(self.device, cpu=8, gpu=256)
        self.graph = TFJSGraph.from_model("faceres", "faceres.json", self.device,
                                          outputs=["gender_pred/Sigmoid", "age_pred/Softmax", "global_pooling/Mean"])

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 NHWC -> the graph's input, NCHW float 0..255 at 224x224."""
        return _resize(_nchw(images, self.device), self.size)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> FaceResResult:
        _check(images)
        parts = []
        for i in range(0, len(images), self.batch_size):
            out = self.graph(self.preprocess(images[i:i + self.batch_size]), nchw=True)
            probs = out["age_pred/Softmax"]
            bins = torch.arange(probs.shape[1], dtype=probs.dtype, device=probs.device)
            parts.append((out["gender_pred/Sigmoid"][:, 0], probs @ bins, out["global_pooling/Mean"]))
        if not parts:
            return FaceResResult(torch.zeros(0), torch.zeros(0), torch.zeros(0, 1024))
        male, age, desc = (torch.cat(p).float().cpu() for p in zip(*parts, strict=True))
        return FaceResResult(male, age, desc)


class FaceResDescriptor:
    """faceres' 1024-d descriptor as a differentiable function of float images in [-1, 1] (N, 3, H, W).

    A copy of the faceres graph planned ``differentiable`` (no in-place ops)
    and run with ``TFJSGraph.run`` in the caller's grad mode, so gradients
    reach the image (an identity loss); its output equals ``FaceRes``'
    descriptor for the same input.
    """

    size = FaceRes.size

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.graph = TFJSGraph.from_model("faceres", "faceres.json", None if device is None else str(device),
                                          outputs=["global_pooling/Mean"], differentiable=True)

    def __call__(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 1024) descriptors; differentiable outside inference mode."""
        x = (x.to(self.graph.device) + 1) * 127.5
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, (self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return self.graph.run(x, nchw=True)["global_pooling/Mean"]


@dataclass(frozen=True)
class FaceMeshResult:
    """``landmarks``: (N, 468, 3) in original-image pixels (x right, y down, origin at the
    top-left corner of the image, z in the same pixel scale as x, smaller = nearer);
    ``face_prob``: the model's face-flag probability (N,) on the final crop."""

    landmarks: Tensor
    face_prob: Tensor


class FaceMesh:
    """MediaPipe face mesh (TF.js copy): 468 landmarks from a face crop.

    Pass 1 pads the image by ``pad`` of its size (replicated border, so a
    tight face crop keeps its chin and forehead in view), resizes to 192 and
    scales to 0..1. Pass 2 (``refine``) re-crops each face as MediaPipe
    tracks it: a square of ``crop_scale`` times the landmark box around its
    centre, rotated so the eye line is horizontal, sampled with one batched
    ``grid_sample``; its landmarks are mapped back to image pixels.
    """

    size = 192
    pad = 0.1
    crop_scale = 1.5

    def __init__(self, device: str | None = None, batch_size: int | None = None, refine: bool = True) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch(self.device, cpu=64, gpu=512)
        self.refine = refine
        self.graph = TFJSGraph.from_model("facemesh", "facemesh.json", self.device,
                                          outputs=["Identity_2", "Identity_1"])

    def net(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, 192, 192) in 0..1 -> landmarks (B, 468, 3) in input pixels, face probability (B,)."""
        out = self.graph(x, nchw=True)
        return out["Identity_2"].reshape(-1, 468, 3), out["Identity_1"][:, 0]

    def first_pass_input(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Padded, resized 0..1 input; and per-axis scale and offset mapping its pixels to the image's."""
        x = _nchw(images, self.device) / 255.0
        h, w = x.shape[-2:]
        ph, pw = round(self.pad * h), round(self.pad * w)
        x = _resize(F.pad(x, (pw, pw, ph, ph), mode="replicate"), self.size)
        scale = torch.tensor([(w + 2 * pw) / self.size, (h + 2 * ph) / self.size], device=self.device)
        return x, scale, torch.tensor([-pw, -ph], dtype=torch.float32, device=self.device)

    def crop_frames(self, landmarks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Centre (B, 2), side (B,) and rotation (B, 2, 2) of each face's upright square crop."""
        xy = landmarks[..., :2]
        lo, hi = xy.amin(1), xy.amax(1)
        centre = (lo + hi) / 2
        side = self.crop_scale * (hi - lo).amax(1)
        eye = xy[:, EYE_RIGHT] - xy[:, EYE_LEFT]
        angle = torch.atan2(eye[:, 1], eye[:, 0])
        c, s = torch.cos(angle), torch.sin(angle)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        return centre, side, rot

    def crop_input(self, images: Tensor, centre: Tensor, side: Tensor, rot: Tensor) -> Tensor:
        """Sample each rotated square crop at 192x192 (0..1), border replicated."""
        x = _nchw(images, self.device) / 255.0
        h, w = x.shape[-2:]
        # affine_grid maps crop coords in [-1, 1] to image coords in [-1, 1] (align_corners=False),
        # so the same matrix samples a pre-shrunk copy: shrink big images to avoid aliasing.
        if max(h, w) > 2 * self.size:
            x = F.interpolate(x, scale_factor=2 * self.size / max(h, w), mode="bilinear",
                              align_corners=False, antialias=True)
        norm = torch.tensor([w, h], dtype=torch.float32, device=self.device)
        theta = torch.cat([rot * (side[:, None, None] / norm[None, :, None]),
                           (2 * centre / norm - 1)[:, :, None]], 2)
        grid = F.affine_grid(theta, [len(x), 3, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _batch(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x, scale, offset = self.first_pass_input(images)
        lm, prob = self.net(x)
        pts = torch.cat([lm[..., :2] * scale + offset, lm[..., 2:] * scale[0]], -1)
        if not self.refine:
            return pts, prob
        centre, side, rot = self.crop_frames(pts)
        lm, prob = self.net(self.crop_input(images, centre, side, rot))
        k = (side / self.size)[:, None, None]
        local = (lm[..., :2] - self.size / 2) * k  # crop pixels -> image pixels, still rotated
        xy = centre[:, None] + local @ rot.transpose(1, 2)
        return torch.cat([xy, lm[..., 2:] * k], -1), prob

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> FaceMeshResult:
        _check(images)
        parts = [self._batch(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        if not parts:
            return FaceMeshResult(torch.zeros(0, 468, 3), torch.zeros(0))
        lm, prob = (torch.cat(p).float().cpu() for p in zip(*parts, strict=True))
        return FaceMeshResult(lm, prob)


class HumanEmotion:
    """Expression classifier (oarriaga's mini-Xception, human's copy): 64x64 grey face.

    Preprocessing as human 3.3.6 does for the 1-channel graph: RGB scaled to
    0..1, resized to 64x64, grey = 0.2989 R + 0.587 G + 0.114 B, then
    ``(grey - 0.5) * 2``. Returns (N, 7) probabilities in
    ``HUMAN_EMOTION_LABELS`` order.
    """

    size = 64

    def __init__(self, device: str | None = None, batch_size: int | None = None) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch(self.device, cpu=64, gpu=1024)
        self.graph = TFJSGraph.from_model("human-emotion", "emotion.json", self.device, outputs=["Identity"])
        self._gray = torch.tensor(_GRAY, device=self.device).view(1, 3, 1, 1) / 255.0

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 NHWC -> (N, 1, 64, 64) grey in -1..1."""
        x = _resize(_nchw(images, self.device), self.size)
        return ((x * self._gray).sum(1, keepdim=True) - 0.5) * 2

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        _check(images)
        parts = [self.graph(self.preprocess(images[i:i + self.batch_size]), nchw=True)["Identity"]
                 for i in range(0, len(images), self.batch_size)]
        return torch.cat(parts).float().cpu() if parts else torch.zeros(0, len(HUMAN_EMOTION_LABELS))

