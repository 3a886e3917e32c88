"""The labelling page (``tlgan label``): mark faces yes / no for a feature with the mouse and the keyboard.

A page shows ``page_size`` faces (a run's cached images, or fresh samples of a
generator from a seed). Name a feature, then click a face to cycle its label
(unlabelled -> yes -> no -> unlabelled) or use the keys: arrows move the
cursor, ``Y``/``1`` yes, ``N``/``0`` no, ``S``/``X``/space skip (clears the
label), ``A`` marks every unlabelled face of the page "no", ``]``/``[`` next /
previous page. Each label is sent to the server the moment it is given and
appended to the label file (:class:`tlgan.labels.LabelStore`), so nothing is
lost when the tab closes; opening the page again shows the labels and starts
at the first page with an unlabelled face. "Suggest" shows the faces a probe
trained on the labels so far is least sure about (uncertainty sampling).

The logic lives in :class:`tlgan.labels.Labeller`; this module is the gradio edge.
"""

from __future__ import annotations

import base64
import html
import io
import os
from typing import Any

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from PIL import Image

from ..labels import LabelError, Labeller, Page, check_feature

CELL = 128  # pixels per face on the page
COLS = 8

CSS = """
.gradio-container {max-width: 1260px !important; margin: auto;}
.lb-bar {display: flex; gap: 16px; align-items: center; margin: 4px 0 8px 0; flex-wrap: wrap;}
.lb-title {font-weight: 600;}
.lb-counts {color: #374151;}
.lb-restno {padding: 3px 10px; border: 1px solid #9ca3af; border-radius: 6px; background: #f9fafb; cursor: pointer;}
.lb-grid {display: grid; gap: 6px;}
.lb-face {position: relative; border: 4px solid #e5e7eb; border-radius: 8px; cursor: pointer; user-select: none;
          background: #f3f4f6; overflow: hidden;}
.lb-face img {display: block; width: 100%; aspect-ratio: 1 / 1; image-rendering: auto;}
.lb-face .lb-cap {display: flex; justify-content: space-between; font-size: 13px; padding: 1px 5px;}
.lb-face.yes {border-color: #16a34a; background: #dcfce7;}
.lb-face.no {border-color: #dc2626; background: #fee2e2;}
.lb-face.no img {opacity: 0.55;}
.lb-face.yes .lb-mark {color: #15803d; font-weight: 700;}
.lb-face.no .lb-mark {color: #b91c1c; font-weight: 700;}
.lb-face.cur {outline: 3px solid #4f46e5; outline-offset: 1px;}
.lb-face.pending .lb-num::after {content: " …";}
.lb-face.failed {border-style: dashed;}
.lb-help {color: #6b7280; font-size: 13px; margin-top: 8px;}
.lb-error {color: #b45309; font-weight: 600;}
"""

# Runs once when the grid component loads; the grid's HTML is replaced on every new page, so all
# handlers are delegated from ``element`` (the component), which stays.
JS = r"""
let cursor = 0;
let chain = Promise.resolve();
const faces = () => [...element.querySelectorAll('.lb-face')];
const wrap = () => element.querySelector('.lb-wrap');
const say = (text) => { const e = element.querySelector('.lb-error'); if (e) e.textContent = text; };
function paint(f, v) {
  f.dataset.label = v === null ? '' : String(v);
  f.classList.toggle('yes', v === 1);
  f.classList.toggle('no', v === 0);
  f.querySelector('.lb-mark').textContent = v === 1 ? 'yes' : v === 0 ? 'no' : '';
}
function labelOf(f) { return f.dataset.label === '' ? null : Number(f.dataset.label); }
function setCursor(i) {
  const fs = faces();
  if (!fs.length) return;
  cursor = Math.max(0, Math.min(fs.length - 1, i));
  fs.forEach((f, k) => f.classList.toggle('cur', k === cursor));
}
function save(f, v) {
  const w = wrap();
  if (!f || !w) return;
  const feature = w.dataset.feature;
  if (!feature) { say('Name a feature first (the box above), then press Enter.'); return; }
  paint(f, v);
  f.classList.add('pending');
  w.dataset.pending = String(Number(w.dataset.pending || 0) + 1);
  const index = Number(f.dataset.index);
  // one request at a time, in order: the file gets the labels in the order they were given
  chain = chain.then(() => server.save_label(feature, index, v === null ? 'skip' : v)).then((r) => {
    f.classList.remove('pending');
    if (r && r.error) { f.classList.add('failed'); say(r.error); return; }
    f.classList.remove('failed');
    const c = element.querySelector('.lb-counts');
    if (c && r && r.counts) c.textContent = r.counts;
  }).catch((e) => { f.classList.remove('pending'); f.classList.add('failed'); say('not saved: ' + e); })
    .finally(() => { w.dataset.pending = String(Number(w.dataset.pending) - 1);
                     w.dataset.saved = String(Number(w.dataset.saved || 0) + 1); });
}
function restNo() { faces().forEach((f) => { if (f.dataset.label === '') save(f, 0); }); }
element.addEventListener('click', (e) => {
  if (e.target.closest('.lb-restno')) { restNo(); return; }
  const f = e.target.closest('.lb-face');
  if (!f) return;
  setCursor(faces().indexOf(f));
  const v = labelOf(f);
  save(f, v === null ? 1 : v === 1 ? 0 : null);
});
function press(id) { const b = document.querySelector('#' + id); if (b) b.click(); }
const keys = (e) => {
  const t = e.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
  if (e.ctrlKey || e.metaKey || e.altKey || !wrap()) return;
  const fs = faces();
  const cols = Number(wrap().dataset.cols || 8);
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const mark = {'y': 1, '1': 1, 'n': 0, '0': 0, 's': null, 'x': null, ' ': null};
  if (k in mark) { if (fs.length) { save(fs[cursor], mark[k]); setCursor(cursor + 1); } }
  else if (k === 'ArrowRight') setCursor(cursor + 1);
  else if (k === 'ArrowLeft') setCursor(cursor - 1);
  else if (k === 'ArrowDown') setCursor(cursor + cols);
  else if (k === 'ArrowUp') setCursor(cursor - cols);
  else if (k === 'a') restNo();
  else if (k === ']' || k === 'PageDown') press('lb-next');
  else if (k === '[' || k === 'PageUp') press('lb-prev');
  else return;
  e.preventDefault();
};
if (window.__tlganLabelKeys) document.removeEventListener('keydown', window.__tlganLabelKeys);
window.__tlganLabelKeys = keys;
document.addEventListener('keydown', keys);
if (typeof watch === 'function') watch('value', () => setCursor(0));
setCursor(0);
"""

HELP = ("Click a face to cycle unlabelled → yes → no → unlabelled. Keys: arrows move the cursor, "
        "<b>Y</b>/<b>1</b> yes, <b>N</b>/<b>0</b> no, <b>S</b>/<b>X</b>/space skip, <b>A</b> the rest of the page "
        "“no”, <b>]</b> next page, <b>[</b> previous page. Every label is saved the moment you give it.")


def face_uri(image: np.ndarray) -> str:
    """A face as an inline PNG (data URI)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def counts_text(labeller: Labeller, feature: str) -> str:
    if not feature:
        return "no feature named yet"
    yes, no = labeller.counts(feature)
    return f"{feature}: {yes} yes · {no} no"


def grid_html(labeller: Labeller, page: Page, feature: str, cols: int = COLS, cell: int = CELL) -> str:
    """The page's faces as HTML: one ``.lb-face`` per face with ``data-index`` and ``data-label``."""
    images = labeller.source.images(page.indices)
    cards = []
    for i, im, v in zip(page.indices, images, page.labels, strict=True):
        cls = "" if v is None else {1: " yes", 0: " no"}.get(v, "")
        mark = "" if v is None else {1: "yes", 0: "no"}.get(v, "")
        cards.append(f'<div class="lb-face{cls}" data-index="{i}" data-label="{"" if v is None else v}" '
                     f'title="face {i}"><img src="{face_uri(im)}" alt="face {i}" draggable="false">'
                     f'<div class="lb-cap"><span class="lb-num">#{i}</span><span class="lb-mark">{mark}</span></div></div>')
    feat = html.escape(feature or "")
    prompt = "" if feature else '<div class="lb-error">Name a feature above (e.g. eyeglasses) and press Enter.</div>'
    return (f'<div class="lb-wrap" data-feature="{feat}" data-cols="{cols}" data-pending="0" data-saved="0">'
            f'<div class="lb-bar"><span class="lb-title">{html.escape(page.title)}</span>'
            f'<span class="lb-counts">{html.escape(counts_text(labeller, feature))}</span>'
            '<button class="lb-restno" type="button">Mark the rest “no” (A)</button></div>'
            f'{prompt}<div class="lb-grid" style="grid-template-columns: repeat({cols}, minmax(0, {cell}px));">'
            + "".join(cards) + '</div><div class="lb-error"></div>'
            f'<div class="lb-help">{HELP}</div></div>')


def build_label_app(labeller: Labeller, feature: str = "", cols: int = COLS, cell: int = CELL) -> gr.Blocks:
    """The labelling page for ``labeller`` (launch it with ``launch``)."""
    if feature:
        check_feature(feature)

    def save_label(payload: Any) -> dict:
        """Called from the page for every label given, with [feature, index, value] (gradio passes a server
        function's arguments as one list): validate, append to the file, return the counts."""
        try:
            if not isinstance(payload, (list, tuple)) or len(payload) != 3:
                raise LabelError(f"expected [feature, index, label], got {payload!r}")
            feature, index, value = payload
            if isinstance(index, bool) or not isinstance(index, (int, float)) or int(index) != index:
                raise LabelError(f"face index {index!r} is not a whole number")
            rec = labeller.set_label(str(feature), int(index), value)
        except (LabelError, ValueError, TypeError) as e:
            return {"error": f"not saved: {e}"}
        return {"ok": True, "label": rec.label, "counts": counts_text(labeller, rec.feature)}

    def status_text(feature: str, page: Page, message: str = "") -> str:
        lines = [f"Faces: {labeller.source.describe()} · labels saved to `{labeller.store.path}`"]
        if message:
            lines.append(message)
        return "\n\n".join(lines)

    def show(feature: str, number: int | None, page: Page | None = None, message: str = ""):
        feature = (feature or "").strip()
        if feature:
            try:
                check_feature(feature)
            except LabelError as e:
                feature, message = "", str(e)
        if page is None:
            page = labeller.page(int(number or 0), feature)
        return {grid: grid_html(labeller, page, feature, cols, cell), status: status_text(feature, page, message),
                page_state: page.number, page_box: (page.number + 1) if page.number is not None else None,
                feature_state: feature}

    def on_load():
        number = labeller.resume_page(feature) if feature else 0
        return show(feature, number)

    def on_feature(name: str, number: int | None):
        name = (name or "").strip()
        try:
            check_feature(name)
        except LabelError as e:
            gr.Warning(str(e))
            return show("", number or 0, message=f"**Not a feature name:** {e}")
        return show(name, labeller.resume_page(name), message=f"Labelling **{name}**: starting at the first page "
                    "with an unlabelled face.")

    def step(feature: str, number: int | None, delta: int):
        if number is None:  # leaving a page of suggestions: back to the first unlabelled face
            return show(feature, labeller.resume_page(feature) if feature else 0)
        target = number + delta
        try:
            return show(feature, target)
        except LabelError as e:
            return show(feature, number or 0, message=f"**{e}**")

    def go(feature: str, value):
        try:
            target = int(value) - 1
        except (TypeError, ValueError):
            return show(feature, 0, message="**Type a page number.**")
        try:
            return show(feature, target)
        except LabelError as e:
            return show(feature, 0, message=f"**{e}**")

    def resume(feature: str):
        return show(feature, labeller.resume_page(feature) if feature else 0)

    def suggest(feature: str, number: int | None):
        if not feature:
            return show(feature, number or 0, message="**Name a feature first.**")
        try:
            page, msg = labeller.suggest(feature)
        except LabelError as e:
            return show(feature, number or 0, message=f"**No suggestions yet:** {e}")
        return show(feature, None, page=page, message=msg)

    with gr.Blocks(title="tlgan label", analytics_enabled=False) as demo:
        page_state = gr.State(0)
        feature_state = gr.State(feature)
        gr.Markdown("## tlgan label — mark faces yes / no for a feature")
        with gr.Row(equal_height=True):
            feature_box = gr.Textbox(label="Feature (press Enter)", value=feature, placeholder="e.g. eyeglasses",
                                     elem_id="lb-feature", scale=3, max_lines=1)
            page_box = gr.Number(label="Page", value=1, precision=0, minimum=1, elem_id="lb-page", scale=1,
                                 min_width=90)
        with gr.Row():
            go_btn = gr.Button("Go to page", elem_id="lb-go", size="sm", min_width=80)
            prev_btn = gr.Button("◀ Previous [", elem_id="lb-prev", size="sm", min_width=110)
            next_btn = gr.Button("Next ] ▶", elem_id="lb-next", size="sm", min_width=110, variant="primary")
            resume_btn = gr.Button("First unlabelled", elem_id="lb-resume", size="sm", min_width=120)
            suggest_btn = gr.Button("Suggest: least sure", elem_id="lb-suggest", size="sm", min_width=140)
        status = gr.Markdown("", elem_id="lb-status")
        grid = gr.HTML("", js_on_load=JS, server_functions=[save_label], elem_id="lb-grid", apply_default_css=False)

        outputs = [grid, status, page_state, page_box, feature_state]
        fast = dict(show_progress="hidden", queue=True)
        demo.load(on_load, None, outputs, api_visibility="private", **fast)
        feature_box.submit(on_feature, [feature_box, page_state], outputs, api_name="feature", **fast)
        prev_btn.click(lambda f, n: step(f, n, -1), [feature_state, page_state], outputs, api_name="previous", **fast)
        next_btn.click(lambda f, n: step(f, n, +1), [feature_state, page_state], outputs, api_name="next", **fast)
        go_btn.click(go, [feature_state, page_box], outputs, api_name="go", **fast)
        page_box.submit(go, [feature_state, page_box], outputs, api_visibility="private", **fast)
        resume_btn.click(resume, [feature_state], outputs, api_name="resume", **fast)
        suggest_btn.click(suggest, [feature_state, page_state], outputs, api_name="suggest", **fast)
    demo.queue(default_concurrency_limit=4)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7861, block: bool = True, quiet: bool = False):
    """Start the labelling page's server (port 7861 beside the explorer's 7860), as ``web.launch`` does."""
    from .web import launch as launch_page

    return launch_page(demo, host, port, block, quiet, css=CSS)
