"""The explorer's models: the generator that draws a state's face, the extractor that reads it back, and the
inversion of an uploaded photo. Shared by every page session; it holds no user state."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..axes import Axes
from ..jobs.core import TUNE_STEPS, invert_photo
from ..pipeline import Editor
from .codec import decode_state, state_from_token
from .locks import LockWarning, face_lock_warnings
from .photos import PhotoWork, Progress, prepare, shrunk
from .state import MAX_SEED, STRIP_STEPS, ExplorerState, StateError, layer_indices, parse_seed, strip_states

if TYPE_CHECKING:
    from ..invert import Inversion
    from ..photo.edit import PhotoEdit

INVERT_STEPS = 100  # optimisation steps for an uploaded photo (tlgan serve --invert-steps)
OPENING_CANDIDATES = 16  # the page opens on the first clear face among seeds 0..15 ...
RANDOM_CANDIDATES = 8  # ... and "New random face" draws this many seeds and shows the first clear one


@contextmanager
def every_core() -> Iterator[None]:
    """Within: torch's operations use every core (a server's other calls use one each, see
    ``tlgan.app.web.one_core_per_call``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Explorer:
    """A generator, its axes and (optionally) the extractor that reads the displayed face.

    Shared by every page session: it holds no user state. Model calls are
    serialized (one lock for rendering, one for readouts, one for inverting photos),
    so sessions in different threads are safe. ``invert_steps`` and ``encoder``
    (an ``Encoder`` from ``tlgan train-encoder``; ``tlgan.jobs.open_explorer`` loads the
    models and the encoder of an axes file) set how an uploaded
    photo is inverted, ``tune_steps`` how long the generator is tuned to it.
    """

    def __init__(self, axes: Axes, generator, extractor=None, invert_steps: int = INVERT_STEPS,
                 encoder: Any = None, tune_steps: int = TUNE_STEPS) -> None:
        self.editor = Editor(generator, axes)  # refuses axes fitted for another generator
        self.linear_editor = self.editor if axes.field.constant else Editor(generator, axes.with_field(axes.field.mean()))
        self.axes = axes
        self.generator = generator
        self.extractor = extractor
        self.presence = extractor.presence if extractor is not None else None
        self._render_lock = threading.Lock()  # rendering need not wait for a (slower) readout
        self._extract_lock = threading.Lock()
        self._invert_lock = threading.Lock()  # one inversion at a time: each one uses every CPU core
        self._photo_lock = threading.Lock()  # photo edits share the face-mesh model
        if isinstance(invert_steps, bool) or not isinstance(invert_steps, int) or invert_steps < 0:
            raise StateError(f"inversion steps must be a whole number >= 0, got {invert_steps!r}")
        self.invert_steps = invert_steps
        if isinstance(tune_steps, bool) or not isinstance(tune_steps, int) or tune_steps < 0:
            raise StateError(f"tuning steps must be a whole number >= 0, got {tune_steps!r}")
        self.tune_steps = tune_steps
        if encoder is not None and not hasattr(encoder, "predict"):
            raise StateError(f"encoder must be a loaded Encoder (tlgan.jobs.open_explorer loads a file), got "
                             f"{type(encoder).__name__}")
        self.encoder = encoder
        self.features = {f.name: f for f in extractor.features} if extractor is not None else {}

    @property
    def names(self) -> list[str]:
        return list(self.axes.names)

    def initial(self, seed: int = 0) -> ExplorerState:
        return ExplorerState(self.generator.name, parse_seed(seed))

    def clear_faces(self, seeds: Sequence[int]) -> np.ndarray:
        """Which of ``seeds`` draw a face that makes a clear example, as the extractor judges it
        (``Extractor.showcase``; for faces: found, roughly frontal, well lit), as a bool per seed;
        all True when there is no extractor or it makes no such choice."""
        if self.extractor is None or not getattr(self.extractor, "has_showcase", False):
            return np.ones(len(seeds), bool)
        z = np.stack([self.editor.latent(s) for s in seeds])
        with self._render_lock:
            images = self.generator.render(z).cpu().numpy()
        with self._extract_lock:
            labels = np.asarray(self.extractor(images))
        return np.asarray(self.extractor.showcase(labels), bool)

    def clear_seed(self, seeds: Sequence[int]) -> int:
        """The first of ``seeds`` whose face is clear (``clear_faces``); the first seed when none is."""
        good = np.flatnonzero(self.clear_faces(seeds))
        return int(seeds[good[0]] if len(good) else seeds[0])

    def opening_seed(self) -> int:
        """The face the page opens on: the first clear one from seed 0 (the traversal figure picks its faces
        the same way, ``tlgan.pipeline.showcase_latents``)."""
        return self.clear_seed(range(OPENING_CANDIDATES))

    def draw_seed(self, rng: np.random.Generator, any_face: bool = False) -> int:
        """A random seed: with ``any_face`` any one, else one whose face is clear (one of ``RANDOM_CANDIDATES``
        drawn; the first drawn when none of them is)."""
        seeds = [int(s) for s in rng.integers(0, MAX_SEED + 1, size=1 if any_face else RANDOM_CANDIDATES)]
        return self.clear_seed(seeds)

    @property
    def num_ws(self) -> int:
        """The generator's w+ layers a slider's move can be limited to (1: not in w+, no layer ranges)."""
        return int(self.generator.num_ws) if getattr(self.generator, "space", "z") == "w+" else 1

    def decode(self, text: Any) -> ExplorerState:
        return decode_state(text, self.axes, self.generator.latent_dim, self.num_ws)

    def from_token(self, token: str) -> ExplorerState:
        return state_from_token(token, self.axes, self.generator.latent_dim, self.num_ws)

    def base_latent(self, state: ExplorerState) -> np.ndarray:
        """The unedited latent of the state's face: (D,), or (num_ws, D) for a w+ photo's inversion."""
        if state.latent is not None:
            return np.asarray(state.latent, dtype=np.float32)
        if state.seed is None:
            raise StateError("a state needs a seed or a latent")
        return self.editor.latent(state.seed)

    def latent(self, state: ExplorerState) -> np.ndarray:
        """The edited latent: held (locked) amounts along their own axes, the other moves off the locked axes.

        In w+ every move reaches only its feature's layers, and the latent is a full (num_ws, D) code."""
        layers = layer_indices(state, self.num_ws) if self.num_ws > 1 else None
        editor = self.linear_editor if state.linear else self.editor
        z = editor.edit(self.base_latent(state), state.held_moves, (), layers)
        return editor.edit(z, state.free_moves, state.locks, layers)

    def lock_warnings(self, state: ExplorerState) -> list[LockWarning]:
        """``lock_warnings`` for the face shown: local axes are compared by their gradients at that face
        (with the locked sliders' held amounts applied: the face the free moves start from)."""
        layers = layer_indices(state, self.num_ws) if self.num_ws > 1 else None
        return face_lock_warnings(state, self.axes,
                                  lambda: self.editor.edit(self.base_latent(state), state.held_moves, (), layers))

    def invert_photo(self, photo: Any, progress: Callable[[int, int, float], Any] | None = None) -> Inversion:
        """Find the face in ``photo`` (a path or RGB array), align it to the generator's framing and invert it
        (``tlgan.jobs.invert_photo``): its ``latent`` is the face a state with ``set_latent`` shows, and its
        ``quality`` says how close the reconstruction is. ``progress(step, total, loss)`` returning False
        stops early with the best latent so far. Raises ``tlgan.align.PhotoError`` (no face, not an image)."""
        return self.open_photo(photo, progress).inversion

    def open_photo(self, photo: Any, progress: Progress | None = None) -> PhotoWork:
        """``invert_photo``, keeping the photo itself: a ``PhotoWork`` to ``prepare_photo`` for edits."""
        with self._invert_lock, every_core():
            image, inv = invert_photo(self.generator, photo, self.encoder, steps=self.invert_steps, progress=progress)
        return PhotoWork(*shrunk(image, inv))

    def prepare_photo(self, work: PhotoWork, fidelity: bool = True, region: str = "face",
                      progress: Progress | None = None) -> PhotoWork:
        """The photo ready to edit with ``fidelity`` (the generator tuned to it, the edit at the photo's own
        resolution) in ``region`` (face, head or all), or without (the generator's reconstruction, as before);
        see ``tlgan.app.photos.prepare``. ``progress(step, total, loss)`` follows the tuning."""
        with self._invert_lock, every_core():
            return prepare(self.generator, work, fidelity, region, self.tune_steps, progress)

    def render_photo(self, edit: PhotoEdit, state: ExplorerState) -> np.ndarray:
        """uint8 (H, W, 3): the photo of ``edit`` with its face edited as ``state`` says (``PhotoEdit.render``),
        at the photo's working size."""
        latent = self.latent(state)
        with self._photo_lock:
            return edit.render(latent)

    def render(self, state: ExplorerState) -> np.ndarray:
        """uint8 (H, W, 3): the state's face at the generator's resolution."""
        return self.render_many([state])[0]

    def render_many(self, states: Sequence[ExplorerState]) -> np.ndarray:
        z = np.stack([self.latent(s) for s in states])
        with self._render_lock:
            return self.generator.render(z).cpu().numpy()

    def render_unedited(self, state: ExplorerState) -> np.ndarray:
        return self.render(replace(state, sliders={}, locks=(), layers={}))

    def readouts(self, image: np.ndarray) -> dict[str, float]:
        """The extractor's reading of one displayed image, per feature (NaN = could not measure)."""
        return self.readouts_many(np.asarray(image)[None])[0]

    def readouts_many(self, images: np.ndarray) -> list[dict[str, float]]:
        """Readouts of images (N, H, W, 3) in one extractor call; empty dicts without an extractor."""
        if self.extractor is None:
            return [{} for _ in images]
        with self._extract_lock:
            values = self.extractor(np.asarray(images, dtype=np.uint8))
        return [{f.name: float(v) for f, v in zip(self.extractor.features, row, strict=True)} for row in values]

    def strip(self, state: ExplorerState, name: str,
              steps: Sequence[float] = STRIP_STEPS) -> tuple[list[ExplorerState], np.ndarray]:
        """The current face with ``name``'s slider at each step: the states and their images."""
        states = strip_states(state, self.axes, name, steps)
        return states, self.render_many(states)
