"""The default ``faces`` extractor: gender, age, expressions, head pose, mouth, eyes, skin and background.

It combines real pretrained networks that ship in registry packages:
``faceres`` (gender, age), an expression net (``fer`` by default, or human's
``emotion``), and the 468-point face mesh, whose landmarks give the geometry
and locate the skin and the background in the pixels. Where the mesh finds no
face, every feature but ``face_found`` is NaN: those samples are left out of
fitting rather than silently mislabelled.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from . import EXTRACTORS, Extractor, Feature
from .geometry import head_pose, mouth_eyes_smile, skin_and_background
from .human import HUMAN_EMOTION_LABELS, FaceMesh, FaceRes, HumanEmotion
from .keras_h5 import FER_LABELS, FerEmotion
from .learned import shipped_probe

EXPRESSIONS = ("happy", "surprise", "neutral", "sad", "angry")
FACE_THRESHOLD = 0.5
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

    def __init__(self, device: str | None = None, expressions: str = "fer") -> None:
        super().__init__(device)
        dev = str(self.device)
        self.res = FaceRes(dev)
        self.mesh = FaceMesh(dev)
        if expressions == "fer":
            self.emotion, labels = FerEmotion(dev), FER_LABELS
        elif expressions == "human":
            self.emotion, labels = HumanEmotion(dev), HUMAN_EMOTION_LABELS
        else:
            raise InputError(f"unknown expression model {expressions!r}; choose 'fer' or 'human'")
        self._expr_columns = [labels.index(e) for e in EXPRESSIONS]

    def extract(self, images: torch.Tensor) -> np.ndarray:
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
        """The faceres 1024-d face descriptor, for identity comparisons."""
        return self.res(images).descriptor.numpy()


@EXTRACTORS.register("faces", "gender, age, 5 expressions, head pose, mouth, eyes, smile, skin and background")
def _faces(device: str | None = None) -> FacesExtractor:
    return FacesExtractor(device)


@EXTRACTORS.register("faces-human-emotion", "as `faces`, with human's expression net instead of fer's")
def _faces_human(device: str | None = None) -> FacesExtractor:
    extractor = FacesExtractor(device, expressions="human")
    extractor.name = "faces-human-emotion"
    return extractor
