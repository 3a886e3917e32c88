"""The explorer's web page (gradio): a thin edge over ``tlgan.app.state`` and its neighbours.

Every user action goes through one function of ``tlgan.app.state`` and lands
in that browser session's ``gr.State`` (a ``View``); nothing about a user
lives in module globals, so several people can use one server at once.

An action updates the page in three steps, so the face comes back first:
(1) the new face and the controls, (2) the strip of variations, the state JSON
and share link and the PNG download, (3) the extractor's readouts, which take
longest. Steps 2 and 3 skip work that is already on the page. An uploaded
photo is inverted before step 1 (with a progress bar on the face and a Cancel
button), and its aligned crop and reconstruction are shown beside step 1.
"""

from __future__ import annotations

import atexit
import html
import itertools
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

if int(gr.__version__.split(".")[0]) < 6:  # the page uses gradio 6's API (launch(css=...), buttons=[...])
    raise ImportError(f"the explorer needs gradio 6 or newer, this is gradio {gr.__version__}: "
                      "pip install -U 'gradio>=6'")

from ..axes import AxesError
from ..errors import TLGANError
from ..explore import parse_layers
from ..figures import upscale
from ..safeio import atomic_write
from .address import check_address
from .codec import encode_state, state_digest, state_token
from .explorer import Explorer
from .generate_panel import generate_panel, gif_panel
from .live import Live
from .photos import REGIONS, PhotoStore, PhotoWork, save_shown
from .readouts import Readout, describe_readouts, subject_missing
from .state import (
    LAYER_CHOICES,
    SLIDER_LIMIT,
    SLIDER_STEP,
    STRIP_STEPS,
    ExplorerState,
    Latent,
    StateError,
    as_latent,
    reset_sliders,
    set_latent,
    set_layers,
    set_linear,
    set_lock,
    set_seed,
    set_slider,
    strip_states,
)
from .text import md_text
from .undo import MAX_SESSIONS, Session

IMAGE_SIZE = 512  # the face is upscaled (Lanczos) to this for the page and the PNG
IMAGE_HEIGHT = 420
STRIP_CELL = 112
FACE_KEYS = 256
KEEP_PNGS = 200  # the face PNGs kept on disk (the least recently handed out go first) ...
PNG_GRACE_S = 300.0  # ... but none handed out in the last 5 minutes: gradio still has to copy it into its cache
PHOTO_SIZE = 256  # the aligned photo and its reconstruction are upscaled to this ...
PHOTO_HEIGHT = 180  # ... and shown this high

CSS = """
.gradio-container {max-width: 1400px !important; margin: auto; overflow: clip !important;}  /* clip: keeps sticky */
#tl-face img {image-rendering: auto;}
.tl-readout {font-size: 0.95em; line-height: 1.25; padding-top: 6px; min-width: 120px;}
.tl-readout .up {color: #15803d; font-weight: 600;}
.tl-readout .down {color: #b91c1c; font-weight: 600;}
.tl-readout .muted {color: #6b7280;}
.tl-readout .bad {color: #b45309; font-weight: 600;}
.tl-feature {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 2px; align-items: center;}
.tl-lock {min-width: 90px !important; flex-grow: 0 !important;}
.tl-layers {min-width: 140px !important; flex-grow: 0 !important;}
#tl-status {min-height: 3em;}
#tl-live {display: none !important;}
#tl-photo-quality p, #tl-photo-name p {margin: 2px 0;}
#tl-cancel {flex-grow: 0 !important; min-width: 90px !important;}
#tl-left {position: sticky; top: 8px; align-self: flex-start;}
#tl-facenote p {color: #b45309; font-weight: 600;}
#tl-strip .grid-container {grid-template-columns: repeat(7, minmax(0, 1fr)) !important; gap: 6px;}
#tl-strip .thumbnail-item {cursor: pointer; width: 100% !important; height: auto !important; aspect-ratio: 1 / 1;}
#tl-strip .caption-label {font-size: 0.8em; padding: 1px 4px;}
#tl-strip, #tl-strip .grid-wrap {height: auto !important; min-height: 0 !important; max-height: none !important;}
.tl-feature > .block {padding-top: 6px !important; padding-bottom: 6px !important;}
"""

# Resolves once the face image has loaded (at most FACE_WAIT_MS later: a refused change shows the same face).
FACE_WAIT_MS = 1500
FACE_SHOWN_JS = """async () => {
  const frame = () => new Promise((ok) => requestAnimationFrame(() => ok()));
  await frame(); await frame();
  const until = performance.now() + {wait_ms};
  for (;;) {
    const img = document.querySelector('#tl-face img');
    if (!img || (img.complete && img.naturalWidth) || performance.now() > until) return [];
    await new Promise((ok) => setTimeout(ok, 10));
  }
}""".replace("{wait_ms}", str(FACE_WAIT_MS))

SHARE_JS = """(rel) => {
  if (!rel || !rel.startsWith('?state=')) return rel;
  const u = new URL(window.location.href);
  u.search = rel;
  window.history.replaceState(null, '', u.toString());
  return u.toString();
}"""


@dataclass
class View:
    """One browser session's page: its state with undo stack, and what the page shows now."""

    session: Session
    image: np.ndarray | None = None  # the displayed face, at the generator's resolution
    image_for: ExplorerState | None = None
    image_look: int | None = None  # the photo edit (its serial) ``image`` was drawn with; None: the generator's face
    readouts_for: ExplorerState | None = None
    strip_for: tuple | None = None
    shared_for: ExplorerState | None = None  # the state the JSON box and the link show
    download_for: ExplorerState | None = None  # the state the download button offers
    values: dict[str, float] | None = None  # the extractor's reading of the face of ``readouts_for`` ...
    start: dict[str, float] | None = None  # ... and of the same face unedited
    message: str = ""
    photo: Photo | None = None  # the last photo uploaded in this session (its inversion)
    any_face: bool = False  # "New random face" draws any face, not only clear, frontal ones

    @property
    def state(self) -> ExplorerState:
        return self.session.state

    @property
    def on_photo(self) -> bool:
        """True when the face shown (before the sliders) is the uploaded photo's reconstruction."""
        return self.photo is not None and self.state.latent == self.photo.latent

    def fresh(self) -> View:
        """This view with everything shown to be redrawn (the photo's fidelity or region changed)."""
        return replace(self, image=None, image_for=None, image_look=None, readouts_for=None, strip_for=None,
                       download_for=None)


@dataclass(frozen=True)
class Photo:
    """An uploaded photo's inversion, as the page shows it."""

    name: str  # the file's name as uploaded
    latent: Latent
    target: np.ndarray  # the aligned crop (uint8)
    reconstruction: np.ndarray  # the generator's picture of ``latent``
    quality: dict  # pixel_mae, psnr, identity (tlgan.invert.reconstruction_quality)
    steps: int  # optimisation steps run ...
    total: int  # ... of this many
    seconds: float
    key: str = ""  # the browser session's entry in ``Page.photos`` (its ``PhotoWork``) ...
    serial: int = 0  # ... as made for this upload and these settings
    fidelity: bool = False  # the page shows the photo itself, edited (a ``PhotoEdit``) ...
    region: str = "face"  # ... in this region
    size: tuple[int, int] | None = None  # (width, height) of the photo as edited and shown, with fidelity
    tune_steps: int = 0

    def summary(self) -> str:
        q = self.quality
        ident = q.get("identity")
        lines = [(f"**Identity similarity {ident:.2f}**" if ident is not None else "**Identity similarity n/a**")
                 + " (faceres cosine of the aligned photo and its reconstruction; 1 = the same descriptor)",
                 f"Pixel error {q.get('pixel_mae', float('nan')):.1f} / 255 · PSNR {q.get('psnr', float('nan')):.1f} dB"
                 f" · {self.steps} optimisation steps in {self.seconds:.0f} s"
                 + (f" (**cancelled** at step {self.steps} of {self.total}: the best latent so far)"
                    if self.steps < self.total else "")]
        if self.fidelity and self.size is not None:
            lines.append(f"**Fidelity on:** the generator was tuned to the photo ({self.tune_steps} steps); the sliders "
                         f"edit the photo itself ({self.size[0]}×{self.size[1]} px), changing only the "
                         f"**{self.region}** region. The readouts read the edited photo's face, cropped as the "
                         "generator frames it.")
        else:
            lines.append("**Fidelity off:** the sliders edit the generator's reconstruction (its "
                         "look-alike), shown instead of the photo.")
        return "\n\n".join(lines)


class _HandedOut(LRUCache):
    """File name -> when it was last handed out, least recently handed out first; what falls out of the
    cache (beyond its ``maxsize``) is put in ``leaving``, to be deleted once its grace period is over."""

    def __init__(self, keep: int, leaving: dict[str, float]) -> None:
        super().__init__(maxsize=keep)
        self.leaving = leaving

    def popitem(self) -> tuple[str, float]:
        name, handed = super().popitem()
        self.leaving[name] = handed
        return name, handed


class FaceFiles:
    """The face PNGs the page hands to gradio, in a private temporary folder that only this object
    writes to or deletes from (removed at exit; ``launch`` makes SIGTERM an exit too).

    Which files may go is decided under a lock from what was handed out when, never from a directory
    listing, so no request can lose a file between a handler returning it and gradio copying it into
    its own cache: beyond ``keep`` files, the least recently handed out ones are deleted, but none
    handed out in the last ``grace`` seconds.
    """

    def __init__(self, keep: int = KEEP_PNGS, grace: float = PNG_GRACE_S) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tlgan-explorer-"))
        atexit.register(self.remove)
        self.grace = grace
        self._leaving: dict[str, float] = {}  # beyond ``keep``: deleted once handed out ``grace`` seconds ago
        self._handed = _HandedOut(keep, self._leaving)
        self._lock = threading.Lock()

    def get(self, name: str, write: Callable[[Path], object]) -> Path:
        """The file ``name``, written whole by ``write(tmp)`` unless it is already there; handing it out
        keeps it for ``grace`` seconds more."""
        path = self.folder / name
        with self._lock:
            if name in self._handed or self._leaving.pop(name, None) is not None:
                self._handed[name] = time.monotonic()
                return path
        # Not listed, so no other thread deletes it; two threads writing the same face both write it whole.
        atomic_write(path, write)
        with self._lock:
            now = self._handed[name] = time.monotonic()
            for old, handed in list(self._leaving.items()):
                if now - handed >= self.grace:
                    del self._leaving[old]
                    (self.folder / old).unlink(missing_ok=True)  # under the lock: nobody rewrites it meanwhile
        return path

    def remove(self) -> None:
        """Delete the folder and every file in it."""
        shutil.rmtree(self.folder, ignore_errors=True)


def unchanged(outputs: list) -> dict:
    """Leave every one of ``outputs`` as it is."""
    return {c: gr.skip() for c in outputs}


def _pretty(name: str) -> str:
    return name.replace("_", " ")


class StartReadouts:
    """Readouts of unedited faces, remembered per face (a shared memo, not user state)."""

    def __init__(self) -> None:
        self._memo: LRUCache[tuple, dict[str, float]] = LRUCache(maxsize=FACE_KEYS)
        self._lock = threading.Lock()

    @staticmethod
    def key(state: ExplorerState) -> tuple:
        return (state.generator, state.seed, state.latent)

    def get(self, state: ExplorerState) -> dict[str, float] | None:
        with self._lock:
            return self._memo.get(self.key(state))

    def put(self, state: ExplorerState, values: dict[str, float]) -> None:
        with self._lock:
            self._memo[self.key(state)] = values


@dataclass
class Step:
    """One of an action's three update steps: the components it changes, the extra inputs its parts read,
    and its parts (one per panel that shows something in this step)."""

    outputs: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    parts: list[Callable[..., dict]] = field(default_factory=list)
    guard: Callable[[View], bool] | None = None  # False: nothing new to show in this step


class Page:
    """What the panels of one explorer page share: the explorer, per-page memos, the session state
    component and the three update steps that every action runs.

    A panel is a function ``panel(page)`` that lays out its components (inside whatever row or column
    it is called in), adds a *part* to a step for what it shows (``page.shows``), and registers its
    event wiring with ``page.wiring``; the wiring runs once every panel is laid out, when the steps'
    outputs are complete.
    """

    def __init__(self, explorer: Explorer, seed: int | None = None) -> None:
        self.explorer = explorer
        self.axes, self.names = explorer.axes, explorer.names
        self.seed = explorer.opening_seed() if seed is None else seed  # the face a page opens on
        self.has_readouts = explorer.extractor is not None
        self.starts = StartReadouts()
        self.files = FaceFiles()
        # (1) the face and the controls, (2) strip, share box, download, (3) the readouts
        self.face, self.details, self.measures = Step(), Step(), Step(guard=self.measure)
        self.photo = Step()  # what an upload shows beside step 1: the aligned photo and its reconstruction
        self.view_state: Any = None
        self.face_image: Any = None  # the face panel's image (an inversion's progress bar is shown on it)
        self.share_link: Any = None  # the share panel's link box (the address bar follows it)
        self.live: Live | None = None  # the drag path (tlgan.app.live), when the page has one
        self.photo_settings: list = []  # the photo panel's fidelity and region choices (inputs of an upload)
        self.cancels: dict[str, threading.Event] = {}  # per browser session: its running inversion should stop
        self.photos = PhotoStore()  # per browser session: its uploaded photo, ready to edit (tlgan.app.photos)
        self.serials = itertools.count(1)  # numbers each photo work, so a view knows which one it drew with
        self._wiring: list[Callable[[], None]] = []

    # ------------------------------------------------------------ how panels join in

    def shows(self, step: Step, outputs: list, inputs: Sequence = ()) -> Callable:
        """Decorator: add a part to ``step`` that updates ``outputs`` (and reads ``inputs``)."""
        def add(part: Callable[..., dict]) -> Callable[..., dict]:
            step.outputs.extend(outputs)
            step.inputs.extend(inputs)
            step.parts.append(part)
            return part
        return add

    def wiring(self, wire: Callable[[], None]) -> Callable[[], None]:
        """Decorator: run ``wire`` (which connects a panel's events) once the whole page is laid out."""
        self._wiring.append(wire)
        return wire

    def wire(self) -> None:
        for wire in self._wiring:
            wire()

    # ------------------------------------------------------------ the three steps

    def new_view(self) -> View:
        return View(Session(self.explorer.initial(self.seed)))

    def photo_work(self, view: View) -> PhotoWork | None:
        """The uploaded photo's ``PhotoWork`` when the view shows that photo with fidelity (None: the page shows
        the generator's face, e.g. with fidelity off, or after the server let the photo go)."""
        p = view.photo
        if p is None or not p.fidelity or not view.on_photo:
            return None
        work = self.photos.get(p.key)
        return work if work is not None and work.edit is not None and work.serial == p.serial else None

    def render_photo_state(self, key: str, serial: int, state: ExplorerState) -> np.ndarray:
        """A live frame of a photo's session (``key``, ``serial``): its edit as ``state`` says, or the generator's
        face when the session has let that photo go."""
        work = self.photos.get(key)
        if work is None or work.edit is None or work.serial != serial:
            return self.explorer.render(state)
        return self.explorer.render_photo(work.edit, state)

    def rendered(self, view: View) -> View:
        work = self.photo_work(view)
        look = work.serial if work is not None else None
        if view.image is None or view.image_for != view.state or view.image_look != look:
            image = (self.explorer.render_photo(work.edit, view.state) if work is not None and work.edit is not None
                     else self.explorer.render(view.state))
            view.image, view.image_for, view.image_look = image, view.state, look
        return view

    def show(self, view: View, all_controls: bool = True, skip: str | None = None) -> dict:
        """Step 1: render the face (if it changed), then every panel's part of step 1."""
        self.rendered(view)
        out: dict = {self.view_state: view}
        for part in self.face.parts:
            out.update(part(view, all_controls, skip))
        return out

    def run_step(self, step: Step, data: dict) -> dict:
        """Steps 2 and 3: each part gets the view and the step's inputs ({component: value})."""
        view = data.get(self.view_state)
        if view is None or (step.guard is not None and not step.guard(view)):
            return unchanged(step.outputs)
        out: dict = {}
        for part in step.parts:
            out.update(part(view, data))
        return out or unchanged(step.outputs)  # (an empty dict would read as one value, not as "no updates")

    def measure(self, view: View) -> bool:
        """The extractor's reading of the displayed face and of it unedited (into ``view.values``/``start``);
        False when there is nothing new to measure."""
        s = view.state
        if not self.has_readouts or view.readouts_for == s:
            return False
        self.rendered(view)
        assert view.image is not None  # rendered() drew it
        explorer, start = self.explorer, self.starts.get(s)
        work = self.photo_work(view)
        if work is not None and work.edit is not None:  # the face of the photo shown, framed as the generator's
            res = explorer.generator.resolution
            if work.start is None:
                work.start = explorer.readouts(work.edit.crop(work.edit.photo, res))
            values, start = explorer.readouts(work.edit.crop(view.image, res)), work.start
        elif not s.sliders:
            values = explorer.readouts(view.image)
            start = values
            self.starts.put(s, values)
        elif start is None:
            unedited = explorer.render_unedited(s)
            values, start = explorer.readouts_many(np.stack([view.image, unedited]))
            self.starts.put(s, start)
        else:
            values = explorer.readouts(view.image)
        view.readouts_for, view.values, view.start = s, values, start
        return True

    def face_file(self, view: View, download: bool = False) -> str:
        """The displayed face as a PNG file (shown, and offered for download): upscaled with Lanczos,
        written with light compression, which is 4x faster than gradio's default and still lossless.
        An edited photo is shown as a JPEG (``photos.save_shown``: 80x faster to write) and downloaded as a PNG."""
        s = view.image_for
        assert s is not None and view.image is not None, "face_file is called after rendered()"
        face = f"seed{s.seed}" if s.latent is None else "photo" if view.on_photo else "latent"
        image = view.image
        if view.image_look is not None:  # the photo itself, at its working size (longest side <= 512)
            from PIL import Image

            name = f"tlgan-photo{view.image_look}-{state_digest(s)}"
            if not download:
                return str(self.files.get(f"{name}.jpg", lambda tmp: save_shown(image, tmp)))
            return str(self.files.get(f"{name}.png",
                                      lambda tmp: Image.fromarray(image).save(tmp, format="PNG", compress_level=1)))
        return str(self.files.get(f"tlgan-{face}-{state_digest(s)}.png",
                                  lambda tmp: upscale(image, IMAGE_SIZE).save(tmp, format="PNG", compress_level=1)))

    # ------------------------------------------------------------ actions

    def action(self, change: Callable[..., Session], all_controls: bool = True,
               key: Callable[..., str | None] | None = None):
        """Wrap ``change(session, *inputs) -> Session`` into a handler that never raises on bad input."""

        def handler(view: View | None, *inputs):
            if view is None:  # the page was not loaded through the browser (a bare API call)
                view = self.new_view()
            try:
                session = change(view.session, *inputs)
                message = ""
            except (StateError, AxesError, ValueError) as e:
                gr.Warning(html.escape(str(e)))
                session, message = view.session, str(e)
            before = {w.feature for w in self.explorer.lock_warnings(view.state)}
            for w in self.explorer.lock_warnings(session.state):
                if w.feature not in before:  # say it once, when it starts; the status box keeps saying it
                    gr.Warning(html.escape(w.message(bold=False)))
            view = replace(view, session=session, message=message)
            skip = key(*inputs) if key and not message else None
            return self.show(view, all_controls or bool(message), skip=skip)

        return handler

    def chain(self, event) -> None:
        """After step 1 of ``event``, once the browser shows its face: step 2 (then the share link into the
        address bar) and step 3. Waiting for the face keeps steps 2 and 3 (a strip of faces and the extractor,
        every core for a while) from slowing the face's own way to the screen."""
        shown = event.then(None, None, None, js=FACE_SHOWN_JS, queue=False, api_visibility="private")
        inputs = {self.view_state, *self.details.inputs}
        after = shown.then(lambda data: self.run_step(self.details, data), inputs, self.details.outputs,
                           show_progress="hidden", api_visibility="private")
        after.then(None, [self.share_link], [self.share_link], js=SHARE_JS, api_visibility="private")
        shown.then(lambda data: self.run_step(self.measures, data), {self.view_state, *self.measures.inputs},
                   self.measures.outputs, show_progress="hidden", api_visibility="private")

    def on(self, trigger: Callable, change: Callable[..., Session], inputs: Sequence = (), *,
           api_name: str | None = None, raw: bool = False, all_controls: bool = True,
           key: Callable[..., str | None] | None = None, **options) -> None:
        """Wire ``trigger`` (an event method such as ``button.click``) to ``change`` of the session.

        With ``raw`` the handler gets the values as sent (out of range, empty, a string from the API) and
        answers with a clear message, instead of gradio's generic preprocessing error.
        """
        visibility = {"api_name": api_name} if api_name else {"api_visibility": "private"}
        self.chain(trigger(self.action(change, all_controls, key), [self.view_state, *inputs], self.face.outputs,
                           show_progress="hidden", queue=True, preprocess=not raw, **visibility, **options))



# ---------------------------------------------------------------- the panels


def face_panel(page: Page) -> None:
    """The face itself, and the note when the extractor finds no face in it."""
    gen = page.explorer.generator
    face_label = f"Current face ({gen.resolution} px, shown at {IMAGE_SIZE} px)"
    image = gr.Image(label=face_label, type="filepath",
                     format="png", interactive=False, height=IMAGE_HEIGHT, buttons=["download", "fullscreen"],
                     elem_id="tl-face")
    face_note = gr.Markdown("", elem_id="tl-facenote")
    page.face_image = image
    if page.live is not None:
        live_panel(page, page.live)

    @page.shows(page.face, [image])
    def _face(view: View, all_controls: bool, skip: str | None) -> dict:
        file = page.face_file(view)
        if view.image_look is not None and view.image is not None:
            h, w = view.image.shape[:2]
            return {image: gr.update(value=file, label=f"Your photo, edited ({w}×{h} px)")}
        return {image: gr.update(value=file, label=face_label)}

    @page.shows(page.measures, [face_note])
    def _note(view: View, data: dict) -> dict:
        return {face_note: "**No face found** in this image: the extractor cannot measure it. "
                           "Undo, or move the sliders back toward 0."
                if subject_missing(view.values or {}, page.explorer.presence) else ""}


def live_panel(page: Page, live: Live) -> None:
    """A hidden element telling the page's drag script (static/live.js) which state is shown."""
    box = gr.HTML("", elem_id="tl-live", padding=False)

    @page.shows(page.face, [box])
    def _live(view: View, all_controls: bool, skip: str | None) -> dict:
        work, p = page.photo_work(view), view.photo
        if work is None or p is None:
            return {box: live.publish(view.state)}
        key, serial = p.key, p.serial  # (the frame looks the photo up when drawn: it does not keep it alive)
        return {box: live.publish(view.state, lambda state: page.render_photo_state(key, serial, state))}


def new_face_panel(page: Page) -> None:
    """A new random face (a clear, frontal one unless "any face" is ticked), or the reconstruction of an
    uploaded photo (a Cancel button while it is inverted)."""
    explorer = page.explorer
    random_btn = gr.Button("New random face", variant="primary", elem_id="tl-random", scale=2)
    any_face = gr.Checkbox(label="any face", value=False, elem_id="tl-any-face", scale=1, min_width=90,
                           visible=bool(getattr(explorer.extractor, "has_showcase", False)),
                           info="not only clear, frontal ones")
    upload_btn = gr.UploadButton("Upload a photo", file_types=["image"], file_count="single", type="filepath",
                                 variant="primary", elem_id="tl-upload", scale=2)
    cancel_btn = gr.Button("Cancel", variant="stop", visible=False, elem_id="tl-cancel", scale=1, min_width=90)

    def cancel(request: gr.Request) -> None:
        flag = page.cancels.get(request.session_hash or "")
        if flag is not None:
            flag.set()

    @page.wiring
    def _wire() -> None:
        def random_face(view: View | None) -> dict:
            wanted = view is not None and view.any_face
            draw = np.random.default_rng()
            return page.action(lambda session: session.push(
                set_seed(session.state, explorer.draw_seed(draw, any_face=wanted))))(view)

        page.chain(random_btn.click(random_face, [page.view_state], page.face.outputs, show_progress="hidden",
                                    queue=True, api_name="random_face"))
        any_face.input(lambda view, value: replace(view or page.new_view(), any_face=bool(value)),
                       [page.view_state, any_face], [page.view_state], queue=False, show_progress="hidden",
                       api_visibility="private")
        outputs = [*page.face.outputs, *page.photo.outputs]
        shown = upload_btn.upload(lambda: gr.update(visible=True), None, [cancel_btn], queue=False,
                                  show_progress="hidden", api_visibility="private")
        def run_upload(view: View | None, data: Any, fidelity: Any, region: Any, request: gr.Request,
                       progress=gr.Progress()) -> dict:
            return upload(page, view, data, request, progress, fidelity=fidelity, region=region)

        inverted = shown.then(run_upload, [page.view_state, upload_btn, *page.photo_settings], outputs,
                              preprocess=False, queue=True, show_progress="full", show_progress_on=[page.face_image],
                              api_visibility="private")
        page.chain(inverted)
        inverted.then(lambda: gr.update(visible=False), None, [cancel_btn], queue=False, show_progress="hidden",
                      api_visibility="private")
        cancel_btn.click(cancel, None, None, queue=False, show_progress="hidden", api_visibility="private")


def _upload_name(data: Any) -> tuple[str | None, str]:
    """The server-side path of an upload (its payload as sent) and the file's name as the user knows it."""
    if isinstance(data, list):  # one file, but a list on some gradio versions
        data = data[0] if data else None
    if isinstance(data, dict):
        path = data.get("path")
        return path, str(data.get("orig_name") or Path(path or "photo").name)
    if isinstance(data, str):
        return data, Path(data).name
    return None, "photo"


def _session_key(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or ""


def _fidelity_on(value: Any) -> bool:
    if value is None:
        return True  # the default (an API call that does not say)
    if not isinstance(value, (bool, np.bool_)):
        raise StateError(f"fidelity: expected true or false, got {value!r}")
    return bool(value)


def _ready(page: Page, view: View, work: PhotoWork, photo: Photo, request: gr.Request | None, progress: Any,
           flag: threading.Event, fidelity: Any, region: Any) -> View:
    """``view`` showing ``work`` (an inverted photo) with the fidelity and region asked for: the generator is tuned
    to the photo when fidelity is first asked for (with a progress bar), then kept in ``page.photos``."""
    on = _fidelity_on(fidelity)
    region = "face" if region is None else region

    def tune_step(i: int, n: int, loss: float) -> bool:
        progress((i, n), desc=f"Tuning the generator to the photo: step {i} of {n} (loss {loss:.3f})")
        return not flag.is_set()

    if on and work.tuning is None and page.explorer.tune_steps:
        progress(0, desc="Tuning the generator to the photo")
    work = page.explorer.prepare_photo(work, on, region, progress=tune_step)
    work.serial = next(page.serials)
    key = photo.key or _session_key(request) or uuid.uuid4().hex
    page.photos.put(key, work)
    size = (work.edit.photo.shape[1], work.edit.photo.shape[0]) if work.edit is not None else None
    tuned = int(work.tuning.meta.get("steps", page.explorer.tune_steps)) if work.tuning is not None else 0
    photo = replace(photo, key=key, serial=work.serial, fidelity=work.edit is not None, region=work.region,
                    size=size, tune_steps=tuned)
    return replace(view, photo=photo).fresh()


def upload(page: Page, view: View | None, data: Any, request: gr.Request | None, progress: Any,
           fidelity: Any = True, region: Any = "face") -> dict:
    """Invert an uploaded photo and make it the face every slider edits (the sliders, locks and layer ranges
    stay, as with a new seed): with ``fidelity`` the generator is tuned to it and the page shows the photo itself,
    edited in ``region``; without, the generator's reconstruction (tlgan.app.photos). A photo without a face, or
    a file that is not an image, is refused with a message in the status box."""
    view = view or page.new_view()
    path, name = _upload_name(data)
    key = _session_key(request)
    flag = page.cancels[key] = threading.Event()
    total = page.explorer.invert_steps

    def step(i: int, n: int, loss: float) -> bool:
        progress((i, n), desc=f"Inverting the photo: step {i} of {n} (loss {loss:.3f})")
        return not flag.is_set()

    try:
        if path is None:
            raise StateError("no file arrived; choose a photo again")
        _fidelity_on(fidelity)
        progress(0, desc="Finding and aligning the face")
        work = page.explorer.open_photo(path, progress=step)
        inv = work.inversion
        photo = Photo(name, as_latent(inv.latent), inv.target, inv.reconstruction, dict(inv.quality), inv.steps,
                      total, inv.seconds, key=key or uuid.uuid4().hex)
        view = replace(view, session=view.session.push(set_latent(view.state, inv.latent)), message="")
        view = _ready(page, view, work, photo, request, progress, flag, fidelity, region)
    except (TLGANError, ValueError, OSError) as e:
        text = str(e).replace(str(path), name) if path else str(e)
        gr.Warning(html.escape(f"could not use {name}: {text}"))
        view = replace(view, message=f"could not use the photo {name}: {text}")
    finally:
        if page.cancels.get(key) is flag:
            del page.cancels[key]
    return _shown_with_photo(page, view)


def _shown_with_photo(page: Page, view: View) -> dict:
    """The page's outputs for ``view``, the photo panel's parts included."""
    out = page.show(view)
    for part in page.photo.parts:
        out.update(part(view))
    return out


def photo_settings(page: Page, view: View | None, fidelity: Any, region: Any, request: gr.Request | None,
                   progress: Any) -> dict:
    """The photo panel's fidelity or region changed: the photo shown again that way (tuning the generator first
    when fidelity is turned on for a photo uploaded without it)."""
    view = view or page.new_view()
    p = view.photo
    work = page.photos.get(p.key) if p is not None else None
    if p is None or work is None:
        out = unchanged([*page.face.outputs, *page.photo.outputs])
        if p is not None:
            gr.Warning("the server let this photo go: upload it again")
        return out
    key = _session_key(request)
    flag = page.cancels[key] = threading.Event()
    try:
        view = replace(_ready(page, view, work, p, request, progress, flag, fidelity, region), message="")
    except (TLGANError, ValueError) as e:
        gr.Warning(html.escape(str(e)))
        view = replace(view, message=str(e))
    finally:
        if page.cancels.get(key) is flag:
            del page.cancels[key]
    return _shown_with_photo(page, view)


def photo_panel(page: Page) -> None:
    """How an uploaded photo is edited (fidelity, region); the last uploaded photo, aligned to the generator's
    framing, beside its reconstruction, and how close the two are (hidden until a photo is uploaded)."""
    res = page.explorer.generator.resolution
    with gr.Row(equal_height=True, elem_id="tl-photo-settings"):
        fidelity = gr.Checkbox(label="fidelity", value=True, elem_id="tl-fidelity", scale=2,
                               info="edit the photo itself: tune the generator to it (off: edit its look-alike)")
        region = gr.Radio(list(REGIONS), value="face", label="region the edit may change", elem_id="tl-region",
                          scale=3)
    page.photo_settings = [fidelity, region]
    with gr.Group(visible=False, elem_id="tl-photo") as box:
        name = gr.Markdown("", elem_id="tl-photo-name", padding=True)
        with gr.Row(equal_height=True):  # (no labels: gradio draws them over the picture)
            aligned = gr.Image(show_label=False, type="numpy", interactive=False, height=PHOTO_HEIGHT, buttons=[],
                               elem_id="tl-photo-aligned")
            recon = gr.Image(show_label=False, type="numpy", interactive=False, height=PHOTO_HEIGHT, buttons=[],
                             elem_id="tl-photo-recon")
        quality = gr.Markdown("", elem_id="tl-photo-quality", padding=True)

    @page.wiring
    def _wire() -> None:
        def run_settings(view: View | None, on: Any, where: Any, request: gr.Request, progress=gr.Progress()) -> dict:
            return photo_settings(page, view, on, where, request, progress)

        for control in (fidelity, region):
            page.chain(control.input(run_settings, [page.view_state, fidelity, region],
                                     [*page.face.outputs, *page.photo.outputs], queue=True, show_progress="full",
                                     show_progress_on=[page.face_image], api_visibility="private"))

    @page.shows(page.photo, [box, name, aligned, recon, quality, fidelity, region])
    def _photo(view: View) -> dict:
        p = view.photo
        if p is None:
            return {}
        return {fidelity: p.fidelity, region: p.region,
                box: gr.update(visible=True), aligned: upscale(p.target, PHOTO_SIZE),
                recon: upscale(p.reconstruction, PHOTO_SIZE), quality: p.summary(),
                name: f"**{md_text(p.name)}**, aligned to the generator's framing ({res} px), and **its reconstruction**"
                      + (" (the pivot the generator was tuned to): the sliders edit the photo above."
                         if p.fidelity else ": the face the sliders now edit.")}


def history_panel(page: Page) -> None:
    """Undo, and reset every slider."""
    undo_btn = gr.Button("↶ Undo", interactive=False, elem_id="tl-undo")
    reset_btn = gr.Button("⟲ Reset sliders", elem_id="tl-reset")

    @page.shows(page.face, [undo_btn])
    def _undo(view: View, all_controls: bool, skip: str | None) -> dict:
        return {undo_btn: gr.update(interactive=view.session.can_undo)}

    @page.wiring
    def _wire() -> None:
        page.on(reset_btn.click, lambda session: session.push(reset_sliders(session.state)), api_name="reset_sliders")
        page.on(undo_btn.click, lambda session: session.undo(), api_name="undo")


def seed_panel(page: Page) -> None:
    """The seed of the face shown; type another and show it."""
    seed_box = gr.Number(label="Seed", value=page.seed, precision=None, elem_id="tl-seed", scale=3, min_width=120)
    seed_btn = gr.Button("Show this seed", elem_id="tl-seed-go", scale=2, min_width=100)

    @page.shows(page.face, [seed_box])
    def _seed(view: View, all_controls: bool, skip: str | None) -> dict:
        s = view.state
        return {seed_box: s.seed if s.latent is None else None} if all_controls else {}

    def goto_seed(session: Session, value: Any) -> Session:
        return session.push(set_seed(session.state, value))

    @page.wiring
    def _wire() -> None:
        page.on(seed_btn.click, goto_seed, [seed_box], api_name="set_seed", raw=True)
        page.on(seed_box.submit, goto_seed, [seed_box], raw=True)


def download_panel(page: Page) -> None:
    """The face shown as a PNG file."""
    download = gr.DownloadButton("Download PNG", interactive=False, elem_id="tl-download", scale=2, min_width=100)

    @page.shows(page.details, [download])
    def _download(view: View, data: dict) -> dict:
        s = view.state
        if view.download_for == s or view.image is None or view.image_for != s:
            return {}
        view.download_for = s
        return {download: gr.update(value=page.face_file(view, download=True), interactive=True)}


def status_panel(page: Page) -> None:
    """What is shown, what was refused, and warnings about the locks."""
    status = gr.Markdown("", elem_id="tl-status")

    @page.shows(page.face, [status])
    def _status(view: View, all_controls: bool, skip: str | None) -> dict:
        p = view.photo
        face = None
        if p is not None and view.on_photo:
            face = (f"the photo {p.name} ({p.region} region edited)" if page.photo_work(view) is not None
                    else f"the reconstruction of {p.name}"
                    + ("" if not p.fidelity else " (the server let the photo go: upload it again to edit the photo)"))
        lines = [f"**Showing** {md_text(view.state.describe(face))}."]
        if view.message:
            lines.append(f"**Not applied:** {md_text(view.message)}")
        lines += [f"**Warning:** {w.message(md_text)}" for w in page.explorer.lock_warnings(view.state)]
        return {status: "\n\n".join(lines)}


def share_panel(page: Page) -> None:
    """The state as a link and as JSON; paste one to restore it."""
    with gr.Accordion("Share or restore this exact face (link, JSON)", open=False, elem_id="tl-share"):
        link = gr.Textbox(label="Share link (opens this exact face and edit)", buttons=["copy"], interactive=False,
                          elem_id="tl-link", max_lines=1)
        state_json = gr.Textbox(label="State JSON: copy it, or paste one (or a link) and press Load", lines=2,
                                max_lines=6, buttons=["copy"], elem_id="tl-json")
        load_btn = gr.Button("Load state", elem_id="tl-load", size="sm")
    page.share_link = link

    @page.shows(page.details, [state_json, link])
    def _share(view: View, data: dict) -> dict:
        s = view.state
        if view.shared_for == s:  # not after a refused change: a mistyped state stays in the box to be fixed
            return {}
        view.shared_for = s
        return {state_json: encode_state(s), link: "?state=" + state_token(s)}

    def load_state(session: Session, text: Any) -> Session:
        return session.push(page.explorer.decode(text))

    @page.wiring
    def _wire() -> None:
        page.on(load_btn.click, load_state, [state_json], api_name="load_state", raw=True)


def strip_panel(page: Page) -> None:
    """The face stepped along one axis; click a variation to jump there."""
    names, explorer = page.names, page.explorer
    default = next((n for n in ("age", "male", "happy") if n in names), names[0])
    with gr.Group():
        strip_axis = gr.Dropdown(names, value=default, label="Variations: step along", elem_id="tl-strip-axis")
        strip = gr.Gallery(label="Variations", show_label=False, columns=len(STRIP_STEPS), height="auto",
                           allow_preview=False, object_fit="contain", fit_columns=False, buttons=[],
                           elem_id="tl-strip")
    strip_note = gr.Markdown("", elem_id="tl-strip-note")

    @page.shows(page.details, [strip, strip_note], [strip_axis])
    def _strip(view: View, data: dict) -> dict:
        s, axis = view.state, data.get(strip_axis)
        if view.strip_for == (s, axis):
            return {}
        view.strip_for = (s, axis)
        if axis not in names:
            return {strip: gr.update(value=None, visible=False), strip_note: "Choose a feature to step along."}
        if axis in s.locks:
            return {strip: gr.update(value=None, visible=False),
                    strip_note: f"**{md_text(_pretty(axis))}** is locked: unlock it to see its variations."}
        work = page.photo_work(view)
        if work is not None and work.edit is not None:  # the photo's face, edited, cropped as the generator frames it
            edit = work.edit
            states = strip_states(s, page.axes, axis, STRIP_STEPS)
            images = np.stack([edit.crop(explorer.render_photo(edit, st), STRIP_CELL) for st in states])
        else:
            states, images = explorer.strip(s, axis)
        now, label = s.slider(axis), _pretty(axis)
        steps = [st.slider(axis) for st in states]
        items = [(upscale(im, STRIP_CELL), f"{'● ' if abs(x - now) < 1e-6 else ''}{label} {x:+g}")
                 for x, im in zip(steps, images, strict=True)]
        return {strip: gr.update(visible=True, value=items),
                strip_note: (f"The face with **{md_text(label)}** at {', '.join(f'{x:+g}' for x in STRIP_STEPS)} "
                             "(the other sliders as they are). Click one to jump there.")}

    def jump(session: Session, axis: Any, evt: gr.SelectData | None) -> Session:
        try:
            index = int(evt.index) if evt is not None else -1
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(STRIP_STEPS):
            raise StateError("that variation does not exist")
        return session.push(set_slider(session.state, page.axes, axis, STRIP_STEPS[index]))

    @page.wiring
    def _wire() -> None:
        def jump_handler(view, axis, evt: gr.SelectData):
            return page.action(lambda session, a: jump(session, a, evt))(view, axis)

        page.chain(strip.select(jump_handler, [page.view_state, strip_axis], page.face.outputs,
                                api_visibility="private", show_progress="hidden", queue=True))
        strip_axis.input(lambda data: page.run_step(page.details, data), {page.view_state, *page.details.inputs},
                         page.details.outputs, show_progress="hidden", api_visibility="private")


def readout_html(r: Readout, digest: str) -> str:
    """One readout; ``data-state`` says which state it was measured on (handy for tests and timing)."""
    cls = {"up": "up", "down": "down", "missing": "bad"}.get(r.trend, "muted")
    arrow = {"up": "▲ ", "down": "▼ "}.get(r.trend, "")
    head = f'<div class="tl-readout" data-state="{digest}">'
    value, change = html.escape(r.value), html.escape(r.change) or "&nbsp;"
    if r.trend == "missing":
        return f'{head}<span class="bad">{value}</span></div>'
    return f'{head}<b>{value}</b><br><span class="{cls}">{arrow}{change}</span></div>'


def layer_choices(num_ws: int) -> list[tuple[str, str]]:
    """The layer ranges a w+ axis offers, labelled with the layers each one reaches."""
    out = []
    for choice in LAYER_CHOICES:
        try:
            picked = parse_layers(choice, num_ws)
        except AxesError:  # a small generator has no layers in this group
            continue
        out.append((f"{choice} ({picked[0]}-{picked[-1]})", choice))
    return out


def axes_panel(page: Page) -> None:
    """A row per feature axis: its slider, its lock, its layer range (w+ generators only) and its readout."""
    explorer, axes, names = page.explorer, page.axes, page.names
    num_ws = explorer.num_ws
    gr.Markdown(
        "### Feature axes\n"
        f"Each slider moves the face along one fitted axis, in latent units "
        f"({-SLIDER_LIMIT:g} to {SLIDER_LIMIT:+g}; 0 = the face as drawn). "
        "**Lock** a feature to keep it fixed while you move the others. "
        + (f"**Layers** limits a move to some of the generator's {num_ws} synthesis layers: "
           f"{', '.join(label for label, _ in layer_choices(num_ws))} or a range such as 0-5. "
           if num_ws > 1 else "")
        + ("Right of each slider: what the extractor measures on the face shown, and its change "
           "from the unedited face." if page.has_readouts else ""))
    linear = None
    if not axes.field.constant:  # a varying field: follow it (default) or its fixed mean directions
        linear = gr.Checkbox(label="linear moves (one fixed direction per axis instead of the local gradient "
                             "field; locks then hold the features' linear models)", value=False, elem_id="tl-linear")
    sliders, locks, layers, boxes = {}, {}, {}, {}
    for name in names:
        feat = explorer.features.get(name)
        info = feat.description if feat and feat.description else None  # text: gradio escapes it to HTML
        with gr.Row(equal_height=True, elem_classes="tl-feature"):
            sliders[name] = gr.Slider(-SLIDER_LIMIT, SLIDER_LIMIT, value=0.0, step=SLIDER_STEP, label=_pretty(name),
                                      info=info, scale=6, buttons=[], elem_id=f"tl-slider-{name}")
            locks[name] = gr.Checkbox(label="lock", value=False, scale=1, min_width=90, elem_id=f"tl-lock-{name}",
                                      elem_classes="tl-lock")
            if num_ws > 1:
                layers[name] = gr.Dropdown(layer_choices(num_ws), value="all", label="layers", scale=1,
                                           min_width=140, allow_custom_value=True, filterable=True,
                                           elem_id=f"tl-layers-{name}", elem_classes="tl-layers")
            boxes[name] = gr.HTML('<div class="tl-readout muted">…</div>', scale=2, min_width=120,
                                  elem_id=f"tl-readout-{name}", js_on_load=None)

    @page.shows(page.face, [*sliders.values(), *locks.values(), *layers.values(), *([linear] if linear else [])])
    def _controls(view: View, all_controls: bool, skip: str | None) -> dict:
        if not all_controls:
            return {}
        s, out = view.state, {}
        if linear is not None:
            out[linear] = gr.update(value=s.linear)
        for name in names:
            locked = name in s.locks
            out[sliders[name]] = (gr.update(value=s.slider(name), interactive=not locked) if name != skip
                                  else gr.update(interactive=not locked))
            out[locks[name]] = gr.update(value=locked)
            if name in layers:
                out[layers[name]] = gr.update(value=s.layers.get(name, "all"))
        return out

    @page.shows(page.measures, list(boxes.values()))
    def _readouts(view: View, data: dict) -> dict:
        s = view.state
        shown = describe_readouts(names, explorer.features, view.values or {}, view.start, edited=bool(s.sliders),
                                  presence=explorer.presence)
        return {boxes[r.name]: readout_html(r, state_digest(s)) for r in shown}

    @page.wiring
    def _wire() -> None:
        if linear is not None:
            page.on(linear.input, lambda session, value: session.push(set_linear(session.state, axes, value)),
                    [linear], api_name="linear", raw=True)
        for name in names:
            def move(session, value, _name=name):
                return session.push(set_slider(session.state, axes, _name, value), key=f"slider:{_name}")

            def lock(session, value, _name=name):
                return session.push(set_lock(session.state, axes, _name, value))

            def reach(session, value, _name=name):
                return session.push(set_layers(session.state, axes, _name, value, num_ws))

            page.on(sliders[name].input, move, [sliders[name]], api_name=f"move_{name}", raw=True,
                    all_controls=False, key=lambda value, _name=name: _name, trigger_mode="always_last")
            page.on(locks[name].input, lock, [locks[name]], api_name=f"lock_{name}", raw=True)
            if name in layers:
                page.on(layers[name].input, reach, [layers[name]], api_name=f"layers_{name}", raw=True)


# ---------------------------------------------------------------- the page


def build_app(explorer: Explorer, title: str = "", seed: int | None = None, live: str = "auto") -> gr.Blocks:
    """The explorer page for ``explorer`` (launch it with ``launch``): the panels, laid out and wired.
    ``seed``: the face a page opens on (None: the first clear, frontal one, ``Explorer.opening_seed``).
    ``live``: how a dragged slider's face is drawn (``tlgan.app.live``: auto, browser, server or off)."""
    page = Page(explorer, seed)
    page.live = Live(explorer, live) if live != "off" else None
    gen, ext, n = explorer.generator, explorer.extractor, explorer.axes.meta.get("n_samples")
    subtitle = (f"Generator **{md_text(gen.name)}** ({gen.resolution} px faces, {gen.latent_dim}-d latent) · "
                f"{len(page.names)} feature axes fitted on {md_text(n)} samples"
                + (f" · readouts by **{md_text(ext.name)}**" if ext else ""))
    with gr.Blocks(title="tlgan explorer", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        page.view_state = gr.State(None)
        page.face.outputs.append(page.view_state)
        gr.Markdown(f"## {md_text(title or 'tlgan explorer')} — steer a face along feature axes\n{subtitle}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380, elem_id="tl-left"):
                face_panel(page)
                with gr.Row():
                    new_face_panel(page)
                with gr.Row():
                    history_panel(page)
                photo_panel(page)
                with gr.Row(equal_height=True):
                    seed_panel(page)
                    download_panel(page)
                    gif_panel(page)
                status_panel(page)
                share_panel(page)
            with gr.Column(scale=6, min_width=420):
                generate_panel(page)
                strip_panel(page)
                axes_panel(page)
        page.wire()

        def on_load(request: gr.Request):
            return page.show(restore(page, request))

        page.chain(demo.load(on_load, None, page.face.outputs, api_visibility="private", show_progress="hidden",
                             queue=True))
    demo.queue(default_concurrency_limit=4)
    demo.tlgan_live = page.live  # launch() serves its routes and script
    return demo


def restore(page: Page, request: gr.Request | None) -> View:
    """The view a page opens with: the initial face, or the state of a ``?state=`` link."""
    view = page.new_view()
    token = request.query_params.get("state") if request is not None else None
    if token:
        try:
            view = View(Session(page.explorer.from_token(token)))
        except StateError as e:
            gr.Warning(html.escape(f"could not restore the shared state: {e}"))
            view.message = f"could not restore the shared state: {e}"
    return view


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def stop_on_signals() -> None:
    """Let SIGTERM and SIGINT stop a blocking server as Ctrl+C does: gradio closes the server (deleting its
    cached copies of the faces) and the exit handlers delete the face folder. Python's default for SIGTERM
    ends the process at once and leaves both behind; SIGINT is set too because a shell starts background jobs
    (``make test &``, ``nohup``) with it ignored, and Ctrl+C should work however the server was launched."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def one_core_per_call() -> None:
    """Each model call of the server uses one core (torch's intra-op threads), before any thread has called
    torch. The page runs several calls at once (one action's face, then its strip and its readouts, and other
    users' actions), and torch's thread teams from several calls on a few cores wait on each other: on 2 busy
    cores a 64-px face took 150-740 ms with 2 threads and 24-34 ms with one. An uploaded photo's inversion,
    one at a time, still uses every core (``Explorer.invert_photo``)."""
    import torch

    torch.set_num_threads(1)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True, quiet: bool = False,
           css: str = CSS, max_sessions: int = MAX_SESSIONS):
    """Start a tlgan page's server (the explorer's, or with its ``css`` the labelling page's); with
    ``block=False`` return at once (the server runs in a thread).

    The server keeps the state of the ``max_sessions`` most recently used sessions (every browser tab and
    every API call without a session is one; each costs about 0.5 MB on the demo's page), so its memory
    stays bounded however many come and go.
    """
    if block:
        stop_on_signals()
    live: Live | None = getattr(demo, "tlgan_live", None)
    extra = {"app_kwargs": {"routes": live.routes()}, "head": live.head()} if live is not None else {}
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, theme=theme(), css=css,
                       ssr_mode=False, show_error=True, quiet=quiet, footer_links=["api"],
                       state_session_capacity=max_sessions, **extra)


def serve(open_explorer: Callable[[], Explorer], host: str = "127.0.0.1", port: int = 7860, block: bool = True,
          seed: int | None = None, live: str = "auto", max_sessions: int = MAX_SESSIONS) -> Any:
    """Serve the explorer page of the models ``open_explorer()`` loads (``tlgan.jobs.open_explorer``: the
    page loads no model itself); ``live``: how a dragged slider's face is drawn, see ``tlgan.app.live``;
    ``max_sessions``: see ``launch``."""
    check_address(host, port)  # before the models load: a taken port is said at once
    if block:
        stop_on_signals()  # before the models load, so a SIGTERM while they load ends cleanly too
        one_core_per_call()
    demo = build_app(open_explorer(), seed=seed, live=live)
    return launch(demo, host, port, block=block, max_sessions=max_sessions)
