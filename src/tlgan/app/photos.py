"""The explorer's uploaded photos, edited so they keep the person (issue 18).

An upload is inverted (the encoder's first guess, then optimisation), the
generator is tuned to it (pivotal tuning) and a ``PhotoEdit`` session is made
at the photo's own resolution (longest side ``PHOTO_MAX_SIDE``): each slider
move then shows the whole photo with the edited face
(``PhotoEdit.render``), not the generator's 64-px look-alike. With fidelity
off, the page shows the generator's reconstruction as before.

``PhotoStore`` keeps one ``PhotoWork`` per browser session (a new upload
replaces it), the least recently used going first beyond ``MAX_PHOTO_SESSIONS``:
each holds a tuned copy of the generator, so memory stays bounded however many
sessions come and go. Everything here goes through ``tlgan.jobs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from cachetools import LRUCache

from ..jobs.core import photo_session, tune_photo
from .state import StateError

if TYPE_CHECKING:
    from ..invert import Inversion
    from ..photo.edit import PhotoEdit
    from ..photo.tuning import Tuning

PHOTO_MAX_SIDE = 512  # the photo is edited (and shown) with its longest side at most this
MAX_PHOTO_SESSIONS = 16  # photos kept ready to edit (one per browser session); the least recently used go
REGIONS = ("face", "head", "all")  # how much of the photo an edit may change (tlgan.photo.blend.region_mask)
SHOWN_QUALITY = 95  # the edited photo goes to the page as a JPEG: 1 ms to write, where a PNG of it takes 80
Progress = Callable[[int, int, float], Any]


def save_shown(image: np.ndarray, target: Any) -> None:
    """Write the edited photo as the page shows it after each move (a JPEG; the download is a PNG)."""
    from PIL import Image

    Image.fromarray(image).save(target, format="JPEG", quality=SHOWN_QUALITY)


def shrunk(image: np.ndarray, inversion: Inversion) -> tuple[np.ndarray, Inversion]:
    """The photo with its longest side at most ``PHOTO_MAX_SIDE`` and the inversion's crop transform to match: what
    the page edits and keeps (a phone's 24-MP upload would hold 72 MB per session)."""
    from dataclasses import replace

    from ..photo.edit import working_photo

    if inversion.transform is None:
        return image, inversion
    small, transform = working_photo(image, inversion.transform, PHOTO_MAX_SIDE)
    return np.ascontiguousarray(small), replace(inversion, transform=transform)


def check_region(region: Any) -> str:
    if region not in REGIONS:
        raise StateError(f"the region must be one of {', '.join(REGIONS)}, got {region!r}")
    return str(region)


@dataclass
class PhotoWork:
    """One uploaded photo ready to edit: the photo, its inversion, the generator's tuning to it (None until
    fidelity is first asked for) and the ``PhotoEdit`` of the chosen region (None with fidelity off)."""

    image: np.ndarray  # the photo as uploaded (RGB uint8), longest side at most PHOTO_MAX_SIDE (``shrunk``)
    inversion: Inversion
    tuning: Tuning | None = None
    region: str = "face"
    edit: PhotoEdit | None = None
    start: dict[str, float] | None = field(default=None, repr=False)  # readouts of the unedited photo's face
    serial: int = 0  # set by the page: which upload and settings a view's picture was drawn with

    @property
    def fidelity(self) -> bool:
        return self.edit is not None


class PhotoStore:
    """Browser session -> its ``PhotoWork`` (bounded, thread-safe)."""

    def __init__(self, maxsize: int = MAX_PHOTO_SESSIONS) -> None:
        self._works: LRUCache[str, PhotoWork] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def put(self, key: str, work: PhotoWork) -> None:
        with self._lock:
            self._works[key] = work

    def get(self, key: str | None) -> PhotoWork | None:
        if key is None:
            return None
        with self._lock:
            return self._works.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._works)


def prepare(generator: Any, work: PhotoWork, fidelity: bool, region: str, tune_steps: int,
            progress: Progress | None = None) -> PhotoWork:
    """``work`` set to ``fidelity`` and ``region``: the generator is tuned to the photo the first time fidelity is
    asked for (``jobs.tune_photo``, ``progress`` as there) and a ``PhotoEdit`` is made for the region
    (``jobs.photo_session``); with fidelity off the edit is dropped (the tuning is kept for later)."""
    region = check_region(region)
    if not fidelity:
        return PhotoWork(work.image, work.inversion, work.tuning, region, None, None)
    if work.edit is not None and work.region == region:
        return work
    tuning = work.tuning
    if tuning is None and tune_steps > 0:
        tuning = tune_photo(generator, work.inversion, tune_steps, progress=progress)
    edit = photo_session(generator, work.inversion, work.image, tuning, region=region,
                              max_side=PHOTO_MAX_SIDE)
    return PhotoWork(work.image, work.inversion, tuning, region, edit, None)
