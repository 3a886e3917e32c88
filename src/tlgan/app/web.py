"""The explorer's web page (gradio): a thin edge over ``tlgan.app.state``.

Every user action goes through one function of ``tlgan.app.state`` and lands
in that browser session's ``gr.State`` (a ``View``); nothing about a user
lives in module globals, so several people can use one server at once.

An action updates the page in three steps, so the face comes back first:
(1) the new face and the controls, (2) the strip of variations, the state JSON
and share link and the PNG download, (3) the extractor's readouts, which take
longest. Steps 2 and 3 skip work that is already on the page.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

if int(gr.__version__.split(".")[0]) < 6:  # the page uses gradio 6's API (launch(css=...), buttons=[...])
    raise ImportError(f"the explorer needs gradio 6 or newer, this is gradio {gr.__version__}: "
                      "pip install -U 'gradio>=6'")

from ..axes import AxesError  # noqa: E402
from ..figures import upscale  # noqa: E402
from .state import (SLIDER_LIMIT, SLIDER_STEP, STRIP_STEPS, Explorer, ExplorerState, Session,  # noqa: E402
                    Readout, StateError, describe_readouts, encode_state, face_missing, lock_warnings,
                    random_seed, reset_sliders, set_lock, set_seed, set_slider, state_digest, state_token)

IMAGE_SIZE = 512  # the face is upscaled (Lanczos) to this for the page and the PNG
IMAGE_HEIGHT = 420
STRIP_CELL = 112
FACE_KEYS = 256
KEEP_PNGS = 200

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
#tl-status {min-height: 3em;}
#tl-left {position: sticky; top: 8px; align-self: flex-start;}
#tl-facenote p {color: #b45309; font-weight: 600;}
#tl-strip .grid-container {grid-template-columns: repeat(7, minmax(0, 1fr)) !important; gap: 6px;}
#tl-strip .thumbnail-item {cursor: pointer; width: 100% !important; height: auto !important; aspect-ratio: 1 / 1;}
#tl-strip .caption-label {font-size: 0.8em; padding: 1px 4px;}
#tl-strip, #tl-strip .grid-wrap {height: auto !important; min-height: 0 !important; max-height: none !important;}
.tl-feature > .block {padding-top: 6px !important; padding-bottom: 6px !important;}
"""

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
    readouts_for: ExplorerState | None = None
    strip_for: tuple | None = None
    shared_for: ExplorerState | None = None  # the state the JSON box and the link show
    message: str = ""

    @property
    def state(self) -> ExplorerState:
        return self.session.state


def prune(folder: Path, keep: int = KEEP_PNGS) -> None:
    """Delete all but the newest ``keep`` files of ``folder`` (the PNGs offered for download)."""
    files = sorted(folder.glob("*.png"), key=lambda f: f.stat().st_mtime)
    for f in files[:-keep]:
        f.unlink(missing_ok=True)


def unchanged(outputs: list) -> dict:
    """Leave every one of ``outputs`` as it is."""
    return {c: gr.skip() for c in outputs}


def _pretty(name: str) -> str:
    return name.replace("_", " ")


class StartReadouts:
    """Readouts of unedited faces, remembered per face (a shared memo, not user state)."""

    def __init__(self) -> None:
        self._memo: OrderedDict[tuple, dict[str, float]] = OrderedDict()
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
            self._memo.move_to_end(self.key(state))
            while len(self._memo) > FACE_KEYS:
                self._memo.popitem(last=False)


def build_app(explorer: Explorer, title: str = "", seed: int = 0) -> gr.Blocks:
    """The explorer page for ``explorer`` (launch it with ``launch``)."""
    axes, names = explorer.axes, explorer.names
    has_readouts = explorer.extractor is not None
    starts = StartReadouts()
    png_dir = Path(tempfile.mkdtemp(prefix="tlgan-explorer-"))
    atexit.register(shutil.rmtree, png_dir, True)
    default_strip = next((n for n in ("age", "male", "happy") if n in names), names[0])

    # ------------------------------------------------------------ what the page shows

    def face_file(view: View) -> str:
        """The displayed face as a PNG file (shown, and offered for download): upscaled with Lanczos,
        written with light compression, which is 4x faster than gradio's default and still lossless."""
        s = view.image_for
        face = f"seed{s.seed}" if s.latent is None else "latent"
        path = png_dir / f"tlgan-{face}-{state_digest(s)}.png"
        if not path.exists():
            upscale(view.image, IMAGE_SIZE).save(path, compress_level=1)
            prune(png_dir)
        return str(path)

    def status_text(view: View) -> str:
        s = view.state
        lines = [f"**Showing** {s.describe()}."]
        if view.message:
            lines.append(f"**Not applied:** {view.message}")
        lines += [f"**Warning:** {w.message()}" for w in lock_warnings(s, axes)]
        return "\n\n".join(lines)

    def controls(view: View, skip: str | None = None) -> dict:
        s = view.state
        out: dict = {}
        for name, sl, lk in zip(names, sliders, locks):
            locked = name in s.locks
            if name != skip:
                out[sl] = gr.update(value=s.slider(name), interactive=not locked)
            else:
                out[sl] = gr.update(interactive=not locked)
            out[lk] = gr.update(value=locked)
        out[seed_box] = s.seed if s.latent is None else None
        return out

    def show(view: View, all_controls: bool = True, skip: str | None = None) -> dict:
        """Step 1: render the face (if it changed) and update the controls."""
        if view.image_for != view.state:
            view.image = explorer.render(view.state)
            view.image_for = view.state
        out = {view_state: view, image: face_file(view), status: status_text(view),
               undo_btn: gr.update(interactive=view.session.can_undo)}
        if all_controls:
            out.update(controls(view, skip))
        return out

    def details(view: View | None, strip_axis: str) -> dict:
        """Step 2: the strip of variations, the state JSON, the share link and the PNG download."""
        if view is None:
            return unchanged(step2)
        s = view.state
        out: dict = {}
        key = (s, strip_axis)
        if view.strip_for != key:
            view.strip_for = key
            if strip_axis not in names:
                out[strip] = gr.update(value=None, visible=False)
                out[strip_note] = "Choose a feature to step along."
            elif strip_axis in s.locks:
                out[strip] = gr.update(value=None, visible=False)
                out[strip_note] = f"**{_pretty(strip_axis)}** is locked: unlock it to see its variations."
            else:
                states, images = explorer.strip(s, strip_axis)
                now, label = s.slider(strip_axis), _pretty(strip_axis)
                steps = [st.slider(strip_axis) for st in states]
                items = [(upscale(im, STRIP_CELL), f"{'● ' if abs(x - now) < 1e-6 else ''}{label} {x:+g}")
                         for x, im in zip(steps, images)]
                out[strip] = gr.update(visible=True, value=items)
                out[strip_note] = (f"The face with **{label}** at {', '.join(f'{x:+g}' for x in STRIP_STEPS)} "
                                   "(the other sliders as they are). Click one to jump there.")
        if view.shared_for != s:  # not after a refused change: a mistyped state stays in the box to be fixed
            view.shared_for = s
            out[state_json] = encode_state(s)
            out[link] = "?state=" + state_token(s)
            if view.image is not None and view.image_for == s:
                out[download] = gr.update(value=face_file(view), interactive=True)
        return out or unchanged(step2)  # (an empty dict would read as one value, not as "no updates")

    def readout_html(r: Readout, digest: str) -> str:
        """One readout; ``data-state`` says which state it was measured on (handy for tests and timing)."""
        cls = {"up": "up", "down": "down", "missing": "bad"}.get(r.trend, "muted")
        arrow = {"up": "▲ ", "down": "▼ "}.get(r.trend, "")
        head = f'<div class="tl-readout" data-state="{digest}">'
        if r.trend == "missing":
            return f'{head}<span class="bad">{r.value}</span></div>'
        return f'{head}<b>{r.value}</b><br><span class="{cls}">{arrow}{r.change or "&nbsp;"}</span></div>'

    def readouts(view: View | None) -> dict:
        """Step 3: the extractor's reading of the displayed face, and its change from the unedited face."""
        if view is None or not has_readouts:
            return unchanged(step3)
        s = view.state
        if view.readouts_for == s:
            return unchanged(step3)
        if view.image is None or view.image_for != s:
            view.image, view.image_for = explorer.render(s), s
        start = starts.get(s)
        if not s.sliders:
            values = explorer.readouts(view.image)
            start = values
            starts.put(s, values)
        elif start is None:
            unedited = explorer.render_unedited(s)
            values, start = explorer.readouts_many(np.stack([view.image, unedited]))
            starts.put(s, start)
        else:
            values = explorer.readouts(view.image)
        view.readouts_for = s
        shown = describe_readouts(names, explorer.features, values, start, edited=bool(s.sliders))
        out = {box: readout_html(r, state_digest(s)) for box, r in zip(readout_boxes, shown)}
        out[face_note] = ("**No face found** in this image: the extractor cannot measure it. "
                          "Undo, or move the sliders back toward 0." if face_missing(values) else "")
        return out

    # ------------------------------------------------------------ actions

    def action(change: Callable[..., Session], all_controls: bool = True, key: Callable[..., str | None] | None = None):
        """Wrap ``change(session, *inputs) -> Session`` into a handler that never raises on bad input."""

        def handler(view: View | None, *inputs):
            if view is None:  # the page was not loaded through the browser (a bare API call)
                view = View(Session(explorer.initial(seed)))
            try:
                session = change(view.session, *inputs)
                message = ""
            except (StateError, AxesError, ValueError) as e:
                gr.Warning(str(e))
                session, message = view.session, str(e)
            before = {w.feature for w in lock_warnings(view.state, axes)}
            for w in lock_warnings(session.state, axes):
                if w.feature not in before:  # say it once, when it starts; the status box keeps saying it
                    gr.Warning(w.message().replace("**", ""))
            view = replace(view, session=session, message=message)
            skip = key(*inputs) if key and not message else None
            return show(view, all_controls or bool(message), skip=skip)

        return handler

    def on_load(request: gr.Request):
        view = View(Session(explorer.initial(seed)))
        token = request.query_params.get("state") if request is not None else None
        if token:
            try:
                view = View(Session(explorer.from_token(token)))
            except StateError as e:
                gr.Warning(f"could not restore the shared state: {e}")
                view.message = f"could not restore the shared state: {e}"
        return show(view)

    # ------------------------------------------------------------ layout

    gen, ext = explorer.generator, explorer.extractor
    n = axes.meta.get("n_samples")
    subtitle = (f"Generator **{gen.name}** ({gen.resolution} px faces, {gen.latent_dim}-d latent) · "
                f"{len(names)} feature axes fitted on {n} samples" + (f" · readouts by **{ext.name}**" if ext else ""))
    with gr.Blocks(title="tlgan explorer", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        view_state = gr.State(None)
        gr.Markdown(f"## {title or 'tlgan explorer'} — steer a face along feature axes\n{subtitle}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380, elem_id="tl-left"):
                image = gr.Image(label=f"Current face ({gen.resolution} px, shown at {IMAGE_SIZE} px)",
                                 type="filepath", format="png", interactive=False, height=IMAGE_HEIGHT,
                                 buttons=["download", "fullscreen"], elem_id="tl-face")
                face_note = gr.Markdown("", elem_id="tl-facenote")
                with gr.Row():
                    random_btn = gr.Button("New random face", variant="primary", elem_id="tl-random", scale=2)
                    undo_btn = gr.Button("↶ Undo", interactive=False, elem_id="tl-undo")
                    reset_btn = gr.Button("⟲ Reset sliders", elem_id="tl-reset")
                with gr.Row(equal_height=True):
                    seed_box = gr.Number(label="Seed", value=seed, precision=None, elem_id="tl-seed", scale=3,
                                         min_width=120)
                    seed_btn = gr.Button("Show this seed", elem_id="tl-seed-go", scale=2, min_width=100)
                    download = gr.DownloadButton("Download PNG", interactive=False, elem_id="tl-download",
                                                 scale=2, min_width=100)
                status = gr.Markdown("", elem_id="tl-status")
                with gr.Accordion("Share or restore this exact face (link, JSON)", open=False, elem_id="tl-share"):
                    link = gr.Textbox(label="Share link (opens this exact face and edit)", buttons=["copy"],
                                      interactive=False, elem_id="tl-link", max_lines=1)
                    state_json = gr.Textbox(label="State JSON: copy it, or paste one (or a link) and press Load",
                                            lines=2, max_lines=6, buttons=["copy"], elem_id="tl-json")
                    load_btn = gr.Button("Load state", elem_id="tl-load", size="sm")
            with gr.Column(scale=6, min_width=420):
                with gr.Group():
                    strip_axis = gr.Dropdown(names, value=default_strip, label="Variations: step along",
                                             elem_id="tl-strip-axis")
                    strip = gr.Gallery(label="Variations", show_label=False, columns=len(STRIP_STEPS),
                                       height="auto", allow_preview=False, object_fit="contain",
                                       fit_columns=False, buttons=[], elem_id="tl-strip")
                strip_note = gr.Markdown("", elem_id="tl-strip-note")
                gr.Markdown(
                    "### Feature axes\n"
                    f"Each slider moves the face along one fitted axis, in latent units "
                    f"({-SLIDER_LIMIT:g} to {SLIDER_LIMIT:+g}; 0 = the face as drawn). "
                    "**Lock** a feature to keep it fixed while you move the others. "
                    + ("Right of each slider: what the extractor measures on the face shown, and its change "
                       "from the unedited face." if has_readouts else ""))
                sliders, locks, readout_boxes = [], [], []
                for name in names:
                    feat = explorer.features.get(name)
                    info = feat.description if feat and feat.description else None
                    with gr.Row(equal_height=True, elem_classes="tl-feature"):
                        sliders.append(gr.Slider(-SLIDER_LIMIT, SLIDER_LIMIT, value=0.0, step=SLIDER_STEP,
                                                 label=_pretty(name), info=info, scale=6, buttons=[],
                                                 elem_id=f"tl-slider-{name}"))
                        locks.append(gr.Checkbox(label="lock", value=False, scale=1, min_width=90,
                                                 elem_id=f"tl-lock-{name}", elem_classes="tl-lock"))
                        readout_boxes.append(gr.HTML('<div class="tl-readout muted">…</div>', scale=2,
                                                     min_width=120, elem_id=f"tl-readout-{name}",
                                                     js_on_load=None))
        # -------------------------------------------------------- wiring

        step1 = [view_state, image, status, undo_btn, seed_box, *sliders, *locks]
        step2 = [strip, strip_note, state_json, link, download]
        step3 = [*readout_boxes, face_note]
        fast = dict(show_progress="hidden", queue=True)
        # raw: the handler gets the value as sent (out of range, empty, a string from the API) and answers
        # with a clear message, instead of gradio's generic preprocessing error
        raw = dict(fast, preprocess=False)

        def chain(event) -> None:
            after = event.then(details, [view_state, strip_axis], step2, show_progress="hidden",
                               api_visibility="private")
            after.then(None, [link], [link], js=SHARE_JS, api_visibility="private")
            event.then(readouts, [view_state], step3, show_progress="hidden", api_visibility="private")

        chain(demo.load(on_load, None, step1, api_visibility="private", **fast))

        for name, sl, lk in zip(names, sliders, locks):
            def move(session, value, _name=name):
                return session.push(set_slider(session.state, axes, _name, value), key=f"slider:{_name}")

            def lock(session, value, _name=name):
                return session.push(set_lock(session.state, axes, _name, value))

            chain(sl.input(action(move, all_controls=False, key=lambda value, _name=name: _name),
                           [view_state, sl], step1, trigger_mode="always_last", api_name=f"move_{name}", **raw))
            chain(lk.input(action(lock), [view_state, lk], step1, api_name=f"lock_{name}", **raw))

        def new_random(session):
            return session.push(random_seed(session.state))

        def goto_seed(session, value):
            return session.push(set_seed(session.state, value))

        def do_reset(session):
            return session.push(reset_sliders(session.state))

        def do_undo(session):
            return session.undo()

        def load_state(session, text):
            return session.push(explorer.decode(text))

        def jump(session, axis, evt: gr.SelectData):
            step = STRIP_STEPS[int(evt.index)] if evt is not None and 0 <= int(evt.index) < len(STRIP_STEPS) else None
            if step is None:
                raise StateError("that variation does not exist")
            return session.push(set_slider(session.state, axes, axis, step))

        chain(random_btn.click(action(new_random), [view_state], step1, api_name="random_face", **fast))
        chain(seed_btn.click(action(goto_seed), [view_state, seed_box], step1, api_name="set_seed", **raw))
        chain(seed_box.submit(action(goto_seed), [view_state, seed_box], step1, api_visibility="private", **raw))
        chain(reset_btn.click(action(do_reset), [view_state], step1, api_name="reset_sliders", **fast))
        chain(undo_btn.click(action(do_undo), [view_state], step1, api_name="undo", **fast))
        chain(load_btn.click(action(load_state), [view_state, state_json], step1, api_name="load_state", **raw))

        def jump_handler(view, axis, evt: gr.SelectData):
            return action(lambda session, a: jump(session, a, evt))(view, axis)

        chain(strip.select(jump_handler, [view_state, strip_axis], step1, api_visibility="private", **fast))
        strip_axis.input(details, [view_state, strip_axis], step2, show_progress="hidden", api_visibility="private")
    demo.queue(default_concurrency_limit=4)
    return demo


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True, quiet: bool = False):
    """Start the page's server; with ``block=False`` return at once (the server runs in a thread)."""
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, theme=theme(), css=CSS,
                       ssr_mode=False, show_error=True, quiet=quiet, footer_links=["api"])


def serve(axes_path, host: str = "127.0.0.1", port: int = 7860, device: str | None = None,
          block: bool = True, seed: int = 0) -> Any:
    """Load the axes' generator and extractor and serve the explorer page."""
    explorer = Explorer.load(axes_path, device)
    demo = build_app(explorer, seed=seed)
    return launch(demo, host, port, block=block)
