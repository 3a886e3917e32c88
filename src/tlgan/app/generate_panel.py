"""The explorer's "Generate to order" panel and its "Download GIF" of the current edit.

Generate to order: the user picks conditions on the extractor's features (rows of
feature, operator and value, and/or a text box of specs such as ``age>=40, happy``),
presses Generate, and ``tlgan.jobs.generate_faces`` steers random faces until the
extractor confirms each one; the confirmed faces fill a gallery, and clicking one makes
its latent the face the sliders edit (sliders back to 0, an undo step, in the share link).

Download GIF: the face shown morphing from unedited to the current slider moves (with the
locks) and back, by ``tlgan.jobs.animate_edit``, written to the page's face folder so the
server prunes it like the face PNGs.

The handlers only unpack gradio's values and call ``wants_of``, ``generate``, ``load_face`` and
``gif_file``, which tests call without a browser. (gradio is imported here at module level: it reads the
handlers' ``gr.SelectData`` annotations from this module's globals.)
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import gradio as gr
import numpy as np

from ..errors import TLGANError
from ..figures import upscale
from ..generate.plan import MAX_TRIES
from ..jobs.core import animate_edit, generate_faces
from .codec import state_digest
from .state import StateError, reset_sliders, set_latent
from .text import md_text
from .undo import Session

if TYPE_CHECKING:
    from .explorer import Explorer


class View(Protocol):
    """What the panels read of one browser session's view (``web.View``)."""

    state: Any


class Page(Protocol):
    """What the panels use of the page they are added to (``web.Page``, which imports this module: the
    panels name the members they need instead of importing it)."""

    explorer: Explorer
    files: Any
    names: list[str]
    face: Any
    details: Any

    def action(self, *args: Any, **kwargs: Any) -> Any: ...
    def chain(self, *args: Any, **kwargs: Any) -> Any: ...
    def new_view(self, *args: Any, **kwargs: Any) -> Any: ...
    def shows(self, *args: Any, **kwargs: Any) -> Any: ...
    def view_state(self, *args: Any, **kwargs: Any) -> Any: ...
    def wiring(self, *args: Any, **kwargs: Any) -> Any: ...

CONDITION_ROWS = 3  # rows of feature / operator / value
N_CHOICES = (4, 6, 8, 12)
N_DEFAULT = 8
GALLERY_CELL = 160  # px a generated face is upscaled to for the gallery
GIF_STEPS = 7  # frames from unedited to edited (then back)
GIF_SIZE = 256
# The gallery's captions wrap instead of being cut off (the panel's own style: web.py's CSS stays as it is).
STYLE = ("<style>#tl-gen-gallery .caption-label {white-space: normal !important; overflow: visible !important;"
         " text-overflow: clip !important; font-size: 0.75em; line-height: 1.2; max-width: 95% !important;}</style>")

# The operators a row offers, as shown -> how the spec writes it; binary features also take present/absent.
OPERATORS = {"present": "", "absent": "!", "≥": ">=", "≤": "<=", "between": "="}
BINARY_ONLY = ("present", "absent")


class GenerateError(StateError):
    """A condition row or request that cannot become a spec (said before any face is rendered)."""


def condition_text(feature: str | None, operator: str | None, value: Any) -> str | None:
    """One picked row as spec text (``age>=40``, ``!eyeglasses``, ``yaw=-20..-10``); None for an empty row.
    The spec parser checks the feature's kind and the numbers (``tlgan.generate.spec``)."""
    if not feature:
        return None
    op = operator or "present"
    if op not in OPERATORS:
        raise GenerateError(f"unknown operator {op!r} for {feature}; choose one of {', '.join(OPERATORS)}")
    text = "" if value is None else str(value).strip()
    if op in BINARY_ONLY:
        return f"{OPERATORS[op]}{feature}"
    if not text:
        example = "LO..HI, e.g. 20..40" if op == "between" else "a number"
        raise GenerateError(f"{feature} {op} needs a value: type {example}")
    if op == "between" and ".." not in text:
        raise GenerateError(f"{feature} between needs a range LO..HI (e.g. 20..40), got {text!r}")
    return f"{feature}{OPERATORS[op]}{text}"


def split_specs(text: str | None) -> list[str]:
    """The conditions of a typed spec line: separated by commas or semicolons (``age>=40, happy``)."""
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


def wants_of(rows: Iterable[tuple[Any, Any, Any]], typed: str | None) -> list[str]:
    """Every condition asked for: the picked rows', then the typed ones; at least one."""
    wants = [t for t in (condition_text(*row) for row in rows) if t] + split_specs(typed)
    if not wants:
        raise GenerateError("pick at least one condition (a feature in a row, or type e.g. age>=40, happy)")
    return wants


def features_help(features: Sequence[Any], axes_names: Sequence[str]) -> str:
    """The features a condition may name (those with an axis to move along), by kind, as markdown."""
    names = set(axes_names)
    binary = [f.name for f in features if f.name in names and f.kind == "binary"]
    continuous = [f.name for f in features if f.name in names and f.kind != "binary"]
    out = []
    if binary:
        out.append(f"**Yes/no** (`name`, `!name` or `name>=0.8`): {', '.join(binary)}")
    if continuous:
        out.append(f"**Measured** (`name>=v`, `name<=v`, `name=lo..hi`): {', '.join(continuous)}")
    return "\n\n".join(out)


def _caption(face: Any, names: Sequence[str], spec: Any) -> str:
    """A face's readings of the wanted features (the implied presence condition left out)."""
    parts = []
    for c in spec.conditions:
        if c.text.endswith("(implied)") or c.feature not in names:
            continue
        v = float(face.labels[list(names).index(c.feature)])
        parts.append(f"{c.feature} {v:.2f}" if c.kind == "binary" else f"{c.feature} {v:.3g}")
    return " · ".join(parts)


def gallery_items(result: Any, cell: int = GALLERY_CELL) -> list[tuple[Any, str]]:
    """(image, caption) per confirmed face, for a gr.Gallery."""
    return [(upscale(face.image, cell), _caption(face, result.names, result.spec)) for face in result.faces]


def cost_line(result: Any, asked: int, seed: int) -> str:
    """What was delivered and what it cost, in one line of markdown (with the CLI call that repeats it)."""

    s = result.summary()
    got = s["delivered"]
    head = (f"**{got} of {asked} faces** meet {md_text(s['spec'])}" if got < asked
            else f"**{got} faces** meet {md_text(s['spec'])}")
    return (f"{head} · {s['rendered']} renders ({s['renders_per_face']:.1f} per face), {s['started']} faces started, "
            f"{s['gave_up']} gave up · {s['seconds']:.1f} s · seed {seed}")


class _Serialized:
    """A model whose calls take the explorer's lock for that model, one call at a time, as the explorer's own
    calls do (``Explorer`` serializes rendering and readouts); everything else is the model's own."""

    def __init__(self, model: Any, lock: Any) -> None:
        self._model, self._lock = model, lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def render(self, z: Any) -> Any:
        with self._lock:
            return self._model.render(z)

    def codes_from_z(self, z: Any) -> Any:
        with self._lock:
            return self._model.codes_from_z(z)

    def __call__(self, images: Any) -> Any:
        with self._lock:
            return self._model(images)

    def descriptor(self, images: Any) -> Any:  # the identity descriptor that tells near-duplicates apart
        with self._lock:
            return self._model.descriptor(images)


def serialized_editor(explorer: Explorer, linear: bool = False) -> Any:
    """The explorer's editor (or its linear one) on a generator whose renders take the explorer's render lock:
    a long job (generating, a GIF) then shares the generator with the page's faces call by call."""
    from ..pipeline import Editor

    editor = explorer.linear_editor if linear else explorer.editor
    return Editor(cast(Any, _Serialized(explorer.generator, explorer._render_lock)), editor.axes)


def generate(explorer: Explorer, wants: Sequence[str], n: int, seed: int, max_tries: int = MAX_TRIES,
             distinct: bool | None = None) -> Any:
    """``tlgan.jobs.generate_faces`` on the page's own generator, axes and extractor (each call under the
    explorer's lock for that model); ``distinct``: no near-duplicates (``generate --distinct``; None: when the
    extractor can tell faces apart)."""
    if explorer.extractor is None:
        raise GenerateError("generating to order needs the extractor to confirm the faces; serve with readouts")
    extractor = cast(Any, _Serialized(explorer.extractor, explorer._extract_lock))
    return generate_faces(serialized_editor(explorer), extractor, list(wants), n=int(n), seed=int(seed),
                          max_tries=max_tries, distinct=distinct)


def load_face(session: Session, latents: Sequence[np.ndarray] | None, index: Any) -> Session:
    """Make generated face ``index`` the face shown: its latent, every slider at 0 (the locks stay)."""
    try:
        i = int(index)
    except (TypeError, ValueError):
        i = -1
    if not latents or not 0 <= i < len(latents):
        raise StateError("that generated face is not there any more; press Generate again")
    return session.push(reset_sliders(set_latent(session.state, latents[i])))


def gif_start(explorer: Explorer, view_state: Any) -> tuple[Any, np.ndarray, dict[str, float]]:
    """The editor, the latent the free moves start from (the locked sliders' held amounts applied) and those
    moves: what ``animate_edit`` morphs, ending on the face shown."""
    s = view_state
    if s.layers:
        raise StateError("the GIF moves every synthesis layer: set the layer ranges back to all to animate this edit")
    if not s.free_moves:
        raise StateError("move a slider first: the GIF morphs the face from unedited to your edit")
    editor = serialized_editor(explorer, s.linear)
    z = explorer.base_latent(s)
    if s.held_moves:
        z = editor.edit(z, s.held_moves, ())
    return editor, z, s.free_moves


def gif_file(page: Page, view: View) -> str:
    """The current edit as a looping GIF in the page's face folder (pruned with the face PNGs)."""
    s = view.state
    editor, z, moves = gif_start(page.explorer, s)

    def write(tmp: Path) -> None:
        gif = tmp.with_name(tmp.name + ".gif")  # animate_edit reads the format from the suffix
        try:
            animate_edit(editor, z, moves, s.locks, gif, steps=GIF_STEPS, size=GIF_SIZE)
            os.replace(gif, tmp)
        finally:
            gif.unlink(missing_ok=True)

    face = f"seed{s.seed}" if s.latent is None else "latent"
    return str(page.files.get(f"tlgan-{face}-{state_digest(s)}.gif", write))


# ---------------------------------------------------------------- the gradio panels


def generate_panel(page: Page) -> None:
    """Conditions on the features, N and Generate; a gallery of confirmed faces, one click from the sliders.
    Shown only when the page has an extractor (it confirms every face)."""

    explorer = page.explorer
    if explorer.extractor is None:
        return
    features = [f for f in explorer.extractor.features if f.name in set(page.names)]
    kinds = {f.name: f.kind for f in features}
    with gr.Accordion("Generate to order: faces that meet your conditions", open=False, elem_id="tl-gen"):
        gr.Markdown("Pick conditions (each row is one; empty rows are ignored) or type them, choose how many, "
                    "and press **Generate**: random faces are moved along the axes until the extractor confirms "
                    "every condition. Click a face to edit it with the sliders.\n\n"
                    + features_help(features, page.names), elem_id="tl-gen-help")
        rows = []
        for k in range(CONDITION_ROWS):
            with gr.Row(equal_height=True):
                feat = gr.Dropdown([""] + [f.name for f in features], value="", label=f"feature {k + 1}",
                                   scale=3, min_width=120, elem_id=f"tl-gen-feature-{k}")
                op = gr.Dropdown(list(OPERATORS), value="present", label="condition", scale=2, min_width=100,
                                 elem_id=f"tl-gen-op-{k}")
                value = gr.Textbox(label="value", placeholder="e.g. 40 or 20..40", scale=2, min_width=90,
                                   max_lines=1, elem_id=f"tl-gen-value-{k}")
            rows.append((feat, op, value))
        typed = gr.Textbox(label="More conditions (comma-separated)", placeholder="age>=40, happy, !eyeglasses",
                           max_lines=1, elem_id="tl-gen-spec")
        with gr.Row(equal_height=True):
            count = gr.Dropdown(list(N_CHOICES), value=N_DEFAULT, label="faces", scale=1, min_width=80,
                                elem_id="tl-gen-n")
            distinct = gr.Checkbox(bool(explorer.extractor.has_descriptor), label="no near-duplicates", scale=1,
                                   min_width=120,
                                   visible=bool(explorer.extractor.has_descriptor), elem_id="tl-gen-distinct",
                                   info="a face too like one already made is nudged (costs a few renders)")
            go = gr.Button("Generate", variant="primary", scale=2, elem_id="tl-gen-go")
        note = gr.Markdown("", elem_id="tl-gen-status")
        gallery = gr.Gallery(label="Confirmed faces (click one to edit it)", columns=4, height="auto",
                             allow_preview=False, object_fit="contain", buttons=[], elem_id="tl-gen-gallery")
        gr.HTML(STYLE, padding=False, elem_id="tl-gen-style")
    latents = gr.State(None)  # this session's generated latents, in gallery order

    def on_feature(name: str | None):
        """A binary feature defaults to "present"; a measured one to ≥ (present/absent make no sense there)."""
        if name and kinds.get(name) != "binary":
            return gr.update(choices=[o for o in OPERATORS if o not in BINARY_ONLY], value="≥")
        return gr.update(choices=list(OPERATORS), value="present")

    def run(*values: Any, progress=gr.Progress()) -> dict:
        n, apart, text, picked = values[0], values[1], values[2], values[3:]
        triples = [tuple(picked[3 * k:3 * k + 3]) for k in range(CONDITION_ROWS)]
        try:
            wants = wants_of(triples, text)
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
            progress(0, desc=f"Generating {n} faces meeting {', '.join(wants)}")
            result = generate(explorer, wants, int(n), seed, distinct=bool(apart))
        except (TLGANError, ValueError) as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            return {note: f"**Not generated:** {md_text(message)}", gallery: gr.skip(), latents: gr.skip()}
        if not result.faces:
            return {note: f"**No face** could be steered to {md_text(str(result.spec))}: "
                          "loosen a condition and try again. " + cost_line(result, int(n), seed),
                    gallery: None, latents: None}
        return {note: cost_line(result, int(n), seed) + " · click a face to edit it",
                gallery: gallery_items(result), latents: [f.latent for f in result.faces]}

    @page.wiring
    def _wire() -> None:
        for feat, op, _ in rows:
            feat.input(on_feature, [feat], [op], queue=False, show_progress="hidden", api_visibility="private")
        inputs = [count, distinct, typed, *[c for row in rows for c in row]]
        go.click(run, inputs, [note, gallery, latents], show_progress="full", show_progress_on=[gallery],
                 queue=True, api_name="generate_faces", concurrency_limit=1)  # one at a time: it is long

        def pick(view, saved, evt: gr.SelectData):
            return page.action(lambda session: load_face(session, saved, evt.index if evt else None))(view)

        page.chain(gallery.select(pick, [page.view_state, latents], page.face.outputs, show_progress="hidden",
                                  queue=True, api_visibility="private"))


def gif_panel(page: Page) -> None:
    """A button that makes the GIF of the current edit, and the file to download once it is made."""
    make = gr.Button("Make GIF", elem_id="tl-gif-go", scale=2, min_width=100)
    gif = gr.File(label="GIF of this edit", visible=False, interactive=False, elem_id="tl-gif", scale=2,
                  min_width=140)
    made_for = gr.State(None)  # the state the offered GIF shows

    def run(view: View | None) -> dict:
        view = view or page.new_view()
        try:
            path = gif_file(page, view)
        except (TLGANError, ValueError, OSError) as e:
            gr.Warning(html.escape(f"no GIF: {e}"))
            return {gif: gr.update(value=None, visible=False), made_for: None}
        return {gif: gr.update(value=path, visible=True), made_for: view.state}

    @page.wiring
    def _wire() -> None:
        make.click(run, [page.view_state], [gif, made_for], show_progress="minimal", queue=True,
                   api_visibility="private")

    @page.shows(page.details, [gif], [made_for])
    def _stale(view: View, data: dict) -> dict:
        """Another face or edit makes the offered GIF stale: hide it."""
        shown = data.get(made_for)
        return {gif: gr.update(value=None, visible=False)} if shown is not None and shown != view.state else {}
