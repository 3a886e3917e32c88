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

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ..axes import AxesError  # noqa: E402
from ..figures import upscale  # noqa: E402
from .state import (SLIDER_LIMIT, SLIDER_STEP, STRIP_STEPS, Explorer, ExplorerState, Session,  # noqa: E402
                    StateError, encode_state, face_missing, format_change, format_value, lock_warnings,
                    random_seed, reset_sliders, set_lock, set_seed, set_slider, state_token)

log = logging.getLogger(__name__)

IMAGE_SIZE = 512
STRIP_CELL = 112
FACE_KEYS = 256

CSS = """
.gradio-container {max-width: 1400px !important; margin: auto;}
#tl-face img {image-rendering: auto;}
.tl-readout {font-size: 0.95em; line-height: 1.25; padding-top: 6px; min-width: 120px;}
.tl-readout .up {color: #15803d; font-weight: 600;}
.tl-readout .down {color: #b91c1c; font-weight: 600;}
.tl-readout .muted {color: #6b7280;}
.tl-readout .bad {color: #b45309; font-weight: 600;}
.tl-feature {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 2px; align-items: center;}
.tl-lock {min-width: 90px !important; flex-grow: 0 !important;}
#tl-status {min-height: 3em;}
#tl-facenote p {color: #b45309; font-weight: 600;}
#tl-strip .thumbnail-item {cursor: pointer;}
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
    message: str = ""

    @property
    def state(self) -> ExplorerState:
        return self.session.state


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
    default_strip = next((n for n in ("age", "male", "happy") if n in names), names[0])

    # ------------------------------------------------------------ what the page shows

    def face_image(view: View):
        return upscale(view.image, IMAGE_SIZE)

    def status_text(view: View) -> str:
        s = view.state
        lines = [f"**Showing** {s.describe()}."]
        if view.message:
            lines.append(f"⚠️ {view.message}")
        lines += [f"⚠️ {w.message()}" for w in lock_warnings(s, axes)]
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
        out = {view_state: view, image: face_image(view), status: status_text(view),
               undo_btn: gr.update(interactive=view.session.can_undo)}
        if all_controls:
            out.update(controls(view, skip))
        return out

    def details(view: View | None, strip_axis: str) -> dict:
        """Step 2: the strip of variations, the state JSON, the share link and the PNG download."""
        if view is None:
            return {}
        s = view.state
        out: dict = {}
        key = (s, strip_axis)
        if view.strip_for != key:
            view.strip_for = key
            if strip_axis not in names:
                out[strip] = gr.update(value=None)
                out[strip_note] = "Choose a feature to step along."
            elif strip_axis in s.locks:
                out[strip] = gr.update(value=None)
                out[strip_note] = f"**{_pretty(strip_axis)}** is locked: unlock it to see its variations."
            else:
                states, images = explorer.strip(s, strip_axis)
                now = s.slider(strip_axis)
                out[strip] = [(upscale(im, STRIP_CELL), f"{'● ' if abs(st.slider(strip_axis) - now) < 1e-6 else ''}"
                               f"{_pretty(strip_axis)} {st.slider(strip_axis):+g}")
                              for st, im in zip(states, images)]
                out[strip_note] = (f"The face with **{_pretty(strip_axis)}** at {', '.join(f'{x:+g}' for x in STRIP_STEPS)}"
                                   " (other sliders as they are). Click one to jump there.")
        out[state_json] = encode_state(s)
        out[link] = "?state=" + state_token(s)
        if view.image is not None and view.image_for == s:
            digest = hashlib.sha1(encode_state(s).encode()).hexdigest()[:10]
            face = f"seed{s.seed}" if s.latent is None else "latent"
            path = png_dir / f"tlgan-{face}-{digest}.png"
            if not path.exists():
                upscale(view.image, IMAGE_SIZE).save(path)
            out[download] = gr.update(value=str(path), interactive=True)
        return out

    def readout_texts(values: dict[str, float], start: dict[str, float] | None) -> list[str]:
        missing = face_missing(values)
        texts = []
        for name in names:
            feat = explorer.features.get(name)
            kind, unit = (feat.kind, feat.unit) if feat else ("continuous", "")
            v = values.get(name, float("nan"))
            if missing and name != "face_found":
                texts.append('<div class="tl-readout"><span class="bad">no face found</span></div>')
                continue
            change = format_change(kind, v, start.get(name) if start else None)
            cls = "muted" if change.startswith("±") or not change else ("up" if change.startswith("+") else "down")
            arrow = {"up": "▲ ", "down": "▼ "}.get(cls, "")
            texts.append(f'<div class="tl-readout"><b>{format_value(kind, unit, v)}</b><br>'
                         f'<span class="{cls}">{arrow}{change}</span></div>')
        return texts

    def readouts(view: View | None) -> dict:
        """Step 3: the extractor's reading of the displayed face, and its change from the unedited face."""
        if view is None or not has_readouts:
            return {}
        s = view.state
        if view.readouts_for == s:
            return {}
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
        out = dict(zip(readout_boxes, readout_texts(values, start)))
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
    with gr.Blocks(title="tlgan explorer", analytics_enabled=False) as demo:
        view_state = gr.State(None)
        gr.Markdown(f"## {title or 'tlgan explorer'} — steer a face along feature axes\n{subtitle}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380):
                image = gr.Image(label=f"Current face ({gen.resolution} px, shown at {IMAGE_SIZE} px)",
                                 type="pil", format="png", interactive=False, height=IMAGE_SIZE,
                                 buttons=["download", "fullscreen"], elem_id="tl-face")
                face_note = gr.Markdown("", elem_id="tl-facenote")
                with gr.Row():
                    random_btn = gr.Button("🎲 New random face", variant="primary", elem_id="tl-random")
                    undo_btn = gr.Button("↶ Undo", interactive=False, elem_id="tl-undo")
                    reset_btn = gr.Button("⟲ Reset sliders", elem_id="tl-reset")
                with gr.Row(equal_height=True):
                    seed_box = gr.Number(label="Seed (a whole number, 0 to 4294967295)", value=seed, precision=None,
                                         elem_id="tl-seed", scale=3)
                    seed_btn = gr.Button("Show this seed", elem_id="tl-seed-go", scale=2)
                    download = gr.DownloadButton("⬇ Download PNG", interactive=False, elem_id="tl-download",
                                                 scale=2)
                status = gr.Markdown("", elem_id="tl-status")
                with gr.Group():
                    strip_axis = gr.Dropdown(names, value=default_strip, label="Variations: step along",
                                             elem_id="tl-strip-axis")
                    strip = gr.Gallery(label="Variations", show_label=False, columns=len(STRIP_STEPS),
                                       height="auto", allow_preview=False, object_fit="contain",
                                       elem_id="tl-strip")
                strip_note = gr.Markdown("")
            with gr.Column(scale=6, min_width=420):
                gr.Markdown(
                    "### Feature axes\n"
                    f"Each slider moves the face along one fitted axis, in latent units "
                    f"({-SLIDER_LIMIT:g} to {SLIDER_LIMIT:+g}; 0 = the face as drawn). "
                    "**Lock** a feature to keep it fixed while you move the others. "
                    + ("Right: what the extractor measures on the face shown, and the change from the unedited face."
                       if has_readouts else ""))
                sliders, locks, readout_boxes = [], [], []
                for name in names:
                    feat = explorer.features.get(name)
                    info = feat.description if feat and feat.description else None
                    with gr.Row(equal_height=True, elem_classes="tl-feature"):
                        sliders.append(gr.Slider(-SLIDER_LIMIT, SLIDER_LIMIT, value=0.0, step=SLIDER_STEP,
                                                 label=_pretty(name), info=info, scale=6,
                                                 elem_id=f"tl-slider-{name}"))
                        locks.append(gr.Checkbox(label="🔒 lock", value=False, scale=1, min_width=90,
                                                 elem_id=f"tl-lock-{name}", elem_classes="tl-lock"))
                        readout_boxes.append(gr.HTML('<div class="tl-readout muted">…</div>', scale=2,
                                                     min_width=120, elem_id=f"tl-readout-{name}",
                                                     js_on_load=None))
        with gr.Accordion("Share or restore this exact face", open=True):
            with gr.Row():
                link = gr.Textbox(label="Share link (opens this exact face and edit)", buttons=["copy"],
                                  interactive=False, elem_id="tl-link", scale=3)
            with gr.Row(equal_height=True):
                state_json = gr.Textbox(label="State JSON: copy it, or paste one (or a share link) here and press Load",
                                        lines=2, max_lines=6, buttons=["copy"], elem_id="tl-json", scale=4)
                load_btn = gr.Button("Load state", elem_id="tl-load", scale=1)

        # -------------------------------------------------------- wiring

        step1 = [view_state, image, status, undo_btn, seed_box, *sliders, *locks]
        step2 = [strip, strip_note, state_json, link, download]
        step3 = [*readout_boxes, face_note]
        fast = dict(show_progress="hidden", queue=True)

        def chain(event) -> None:
            after = event.then(details, [view_state, strip_axis], step2, show_progress="hidden")
            after.then(None, [link], [link], js=SHARE_JS)
            event.then(readouts, [view_state], step3, show_progress="hidden")

        chain(demo.load(on_load, None, step1, **fast))

        for name, sl, lk in zip(names, sliders, locks):
            def move(session, value, _name=name):
                return session.push(set_slider(session.state, axes, _name, value), key=f"slider:{_name}")

            def lock(session, value, _name=name):
                return session.push(set_lock(session.state, axes, _name, value))

            chain(sl.input(action(move, all_controls=False, key=lambda value, _name=name: _name),
                           [view_state, sl], step1, trigger_mode="always_last", **fast))
            chain(lk.input(action(lock), [view_state, lk], step1, **fast))

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

        chain(random_btn.click(action(new_random), [view_state], step1, **fast))
        chain(seed_btn.click(action(goto_seed), [view_state, seed_box], step1, **fast))
        chain(seed_box.submit(action(goto_seed), [view_state, seed_box], step1, **fast))
        chain(reset_btn.click(action(do_reset), [view_state], step1, **fast))
        chain(undo_btn.click(action(do_undo), [view_state], step1, **fast))
        chain(load_btn.click(action(load_state), [view_state, state_json], step1, **fast))

        def jump_handler(view, axis, evt: gr.SelectData):
            return action(lambda session, a: jump(session, a, evt))(view, axis)

        chain(strip.select(jump_handler, [view_state, strip_axis], step1, **fast))
        strip_axis.input(details, [view_state, strip_axis], step2, show_progress="hidden")
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
