"""The default ``faces`` extractor: gender, age, expressions, head pose, mouth, eyes, skin and background.

It combines real pretrained networks that ship in registry packages:
``faceres`` (gender, age), an expression net (``fer`` by default, or human's
``emotion``), and the 468-point face mesh, whose landmarks give the geometry
and locate the skin and the background in the pixels. Where the mesh finds no
face, every feature but ``face_found`` is NaN: those samples are left out of
fitting rather than silently mislabelled.

Framing: the models see faces the way the bundled DCGAN frames them (a
tight 64-px DigiFace crop). ``framing="auto"`` (the default) takes 64x64
pictures as such crops and labels them as they are; any other size is
searched with the BlazeFace detector, the largest face is meshed and cut out
at ``crop_size`` px with the DigiFace template (``align.FRAMINGS["digiface"]``,
axis-aligned so head roll stays measurable), and that crop is labelled.
``framing="detect"`` does this for every picture (a 64-px picture whose face
is padded or zoomed), ``framing="digiface"`` never. Where no face is detected,
``face_found`` is 0 and the rest NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..align import anchor_points, crop_transform, warp
from ..errors import InputError
from . import EXTRACTORS, Extractor, Feature
from .geometry import head_pose, mouth_eyes_smile, skin_and_background
from .human import HUMAN_EMOTION_LABELS, FaceMesh, FaceRes, FaceResDescriptor, HumanEmotion
from .keras_h5 import FER_LABELS, FerEmotion
from .learned import shipped_probe

if TYPE_CHECKING:
    from .detect import FaceDetector

EXPRESSIONS = ("happy", "surprise", "neutral", "sad", "angry")
FACE_THRESHOLD = 0.5
DETECT_THRESHOLD = 0.3  # BlazeFace score; low because the mesh's face flag on the crop confirms the face
FRAMINGS = ("auto", "digiface", "detect")
DIGIFACE_SIZE = 64
# eyeglasses, hat, beard: logistic probes on the faceres descriptor, from hand labels (docs/own-features.md)
SHIPPED_PROBES = shipped_probe()

FEATURES = (
    Feature("face_found", "binary", "the face mesh found a face (face-flag probability > 0.5)"),
    Feature("male", "binary", "P(male) from faceres"),
    Feature("age", "continuous", "age in years from faceres (expected value of its 100 bins)", "years"),
    *(Feature(e, "binary", f"P({e}) from the expression net") for e in EXPRESSIONS),
    Feature("yaw", "continuous", "head turn; > 0 when the face turns toward the image's right", "degrees"),
    Feature("pitch", "continuous", "head tilt; > 0 when the face tilts up", "degrees"),
    Feature("roll", "continuous", "head roll; > 0 when the eye line rises toward the image's right", "degrees"),
    Feature("mouth_open", "continuous", "lip gap / distance between the outer eye corners"),
    Feature("eye_open", "continuous", "eye height / eye width, both eyes averaged"),
    Feature("smile_width", "continuous", "mouth-corner distance / distance between the outer eye corners"),
    Feature("skin_tone", "continuous", "luminance of cheek and forehead skin, 0 dark .. 1 light"),
    Feature("background", "continuous", "luminance of the background around the head, 0 dark .. 1 light"),
    *SHIPPED_PROBES.features,
)


class FacesExtractor(Extractor):
    """Gender, age, expressions and face geometry from pretrained face-analysis models."""

    name = "faces"
    features = FEATURES
    presence = "face_found"
    has_descriptor = True
    has_showcase = True
    summary = ("male", "age", "happy", "mouth_open", "yaw")
    summary_locks = ("skin_tone",)  # moves with many of them in the generators' latents
    #: showcase faces turn less than this many degrees (yaw) and have skin_tone above the second bound
    SHOWCASE_MAX_ABS_YAW = 15.0
    SHOWCASE_MIN_SKIN_TONE = 0.3

    def __init__(self, device: str | None = None, expressions: str = "fer", framing: str = "auto",
                 crop_size: int = 224) -> None:
        super().__init__(device)
        if framing not in FRAMINGS:
            raise InputError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
        self.framing, self.crop_size = framing, crop_size
        self._detector: FaceDetector | None = None  # loaded on first use: the DigiFace path needs no detector weights
        dev = str(self.device)
        self.res = FaceRes(dev)
        self.mesh = FaceMesh(dev)
        self.emotion: FerEmotion | HumanEmotion
        labels: tuple[str, ...]
        if expressions == "fer":
            self.emotion, labels = FerEmotion(dev), FER_LABELS
        elif expressions == "human":
            self.emotion, labels = HumanEmotion(dev), HUMAN_EMOTION_LABELS
        else:
            raise InputError(f"unknown expression model {expressions!r}; choose 'fer' or 'human'")
        self._expr_columns = [labels.index(e) for e in EXPRESSIONS]

    def needs_detection(self, images: torch.Tensor) -> bool:
        """Whether these pictures go through the detector (see the module docstring)."""
        if self.framing != "auto":
            return self.framing == "detect"
        return tuple(images.shape[1:3]) != (DIGIFACE_SIZE, DIGIFACE_SIZE)

    def extract(self, images: torch.Tensor) -> np.ndarray:
        if not self.needs_detection(images):
            return self._label(images)
        crops, detected = self.align(images)
        out = self._label(crops)
        out[~detected, 0] = 0.0
        out[~detected, 1:] = np.nan
        return out

    def align(self, images: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """The largest face of each picture cut out in the DigiFace framing at ``crop_size`` px
        (black where none was detected), and whether one was detected."""
        from .detect import FaceDetector, landmarks_of

        if self._detector is None:
            self._detector = FaceDetector(str(self.device))
        pics = list(images.cpu().numpy())
        found = self._detector(pics, DETECT_THRESHOLD)
        hit = [i for i, d in enumerate(found) if d]
        crops = np.zeros((len(pics), self.crop_size, self.crop_size, 3), np.uint8)
        if hit:  # the largest face of each picture
            marks = landmarks_of([pics[i] for i in hit], [found[i][0] for i in hit], mesh=self.mesh)
            for i, pts in zip(hit, anchor_points(marks.points), strict=True):
                t = crop_transform(pts, "digiface", self.crop_size, rotate=False)
                crops[i] = warp(pics[i], t, (self.crop_size, self.crop_size), mode="edge")
        detected = np.zeros(len(pics), bool)
        detected[hit] = True
        return torch.from_numpy(crops).to(images.device), detected

    def _label(self, images: torch.Tensor) -> np.ndarray:
        mesh = self.mesh(images)
        landmarks = mesh.landmarks.numpy().astype(np.float64)
        found = mesh.face_prob.numpy() > FACE_THRESHOLD
        res = self.res(images)
        expr = self.emotion(images).numpy()[:, self._expr_columns]
        out = np.column_stack([
            found.astype(np.float32),
            res.male.numpy(),
            res.age.numpy(),
            expr,
            head_pose(landmarks),
            mouth_eyes_smile(landmarks),
            skin_and_background(images, landmarks),
            SHIPPED_PROBES(res.descriptor.numpy()),
        ]).astype(np.float32)
        out[~found, 1:] = np.nan
        return out

    def descriptor(self, images: torch.Tensor) -> np.ndarray:
        """The faceres 1024-d face descriptor, for identity comparisons (same framing rule as ``extract``)."""
        if self.needs_detection(images):
            images = self.align(images)[0]
        return self.res(images).descriptor.numpy()

    @classmethod
    def differentiable_descriptor(cls, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """faceres' descriptor, differentiable (``FaceResDescriptor``); it takes the face as framed, no detection."""
        return FaceResDescriptor(device)

    def showcase(self, labels: np.ndarray) -> np.ndarray:
        """Faces that were found, are roughly frontal and well lit."""
        col = {f.name: j for j, f in enumerate(self.features)}
        with np.errstate(invalid="ignore"):
            return ((labels[:, col["face_found"]] == 1) & (np.abs(labels[:, col["yaw"]]) < self.SHOWCASE_MAX_ABS_YAW)
                    & (labels[:, col["skin_tone"]] > self.SHOWCASE_MIN_SKIN_TONE))


EXTRACTORS.register("faces", "gender, age, 5 expressions, head pose, mouth, eyes, smile, skin and background")(
    FacesExtractor)


@EXTRACTORS.register("faces-detect", "as `faces`, but every picture's face is detected and aligned first "
                                     "(faces of any framing and size)")
def _faces_detect(device: str | None = None) -> FacesExtractor:
    extractor = FacesExtractor(device, framing="detect")
    extractor.name = "faces-detect"
    return extractor


@EXTRACTORS.register("faces-human-emotion", "as `faces`, with human's expression net instead of fer's")
def _faces_human(device: str | None = None) -> FacesExtractor:
    extractor = FacesExtractor(device, expressions="human")
    extractor.name = "faces-human-emotion"
    return extractor
