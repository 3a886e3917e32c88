"""The explorer page in a real browser: `tlgan serve` on toy axes, driven with Debian's chromium via Playwright.

Skips only when /usr/bin/chromium or playwright is missing (CI installs both:
see .ci/run). Screenshots go to $TLGAN_SCREENSHOTS (default runs/screenshots).
The last test runs the real default (digiface-dcgan + faces) and needs the
weights; it uses runs/demo/axes.safetensors when `make demo` has made it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_support import BROWSER_MARKS, ROOT, shot
from browser_support import serving as serve_cmd
from model_support import need_models

DEMO_AXES = Path(os.environ.get("TLGAN_DEMO_AXES", ROOT / "runs" / "demo" / "axes.safetensors"))

pytestmark = BROWSER_MARKS


def serving(axes_path: Path, log_path: Path, timeout: float = 180, extra: tuple[str, ...] = ()):
    """`tlgan serve AXES` on a free port (see browser_support.serving)."""
    return serve_cmd(["serve", str(axes_path), "--device", "cpu", *extra], log_path, timeout)


def default_axes(tmp_path: Path) -> Path:
    """Axes for the default generator: the demo's (`make demo`, or $TLGAN_DEMO_AXES) when made, else random
    unit axes with the faces extractor's features, which exercise the same page with the real models."""
    from tlgan.axes import Axes
    from tlgan.extractors.faces import FEATURES

    if DEMO_AXES.exists():
        return DEMO_AXES
    names = [f.name for f in FEATURES]
    v = np.random.default_rng(0).standard_normal((len(names), 100)).astype(np.float32)
    return Axes(names, [f.kind for f in FEATURES], v / np.linalg.norm(v, axis=1, keepdims=True),
                np.ones(len(names)), meta={"generator": "digiface-dcgan", "extractor": "faces",
                                           "n_samples": 0}).save(tmp_path / "random.safetensors")


@pytest.fixture(scope="module")
def toy_axes(tmp_path_factory):
    from tlgan.jobs import discover

    d = discover(tmp_path_factory.mktemp("toy"), "toy-linear", "toy-linear", 1500, device="cpu",
                 save_images=False, progress=False)
    return d.axes_path


@pytest.fixture(scope="module")
def toy_url(toy_axes, tmp_path_factory):
    with serving(toy_axes, tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url



# ---------------------------------------------------------------- reading and driving the page


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#tl-face img")
    wait_readouts(page)


def face_src(page) -> str:
    return page.locator("#tl-face img").get_attribute("src")


def face_pixels(page) -> np.ndarray:
    with urllib.request.urlopen(face_src(page)) as r:
        from io import BytesIO

        return np.asarray(Image.open(BytesIO(r.read())).convert("RGB"))


def readout_text(page, name: str) -> str:
    return page.locator(f"#tl-readout-{name} .tl-readout").inner_text().strip()


def readout(page, name: str) -> float:
    m = re.match(r"(-?\d+(?:\.\d+)?)", readout_text(page, name))
    assert m, f"no number in the readout of {name}: {readout_text(page, name)!r}"
    return float(m.group(1))


def wait_readouts(page, timeout: float = 60) -> None:
    """Until every readout shows a value (the readouts arrive after the face)."""
    page.wait_for_function("() => [...document.querySelectorAll('[id^=tl-readout-] .tl-readout')]"
                           ".every(e => e.innerText.trim() && !e.innerText.includes('…'))", timeout=timeout * 1000)


def wait_readout_change(page, name: str, before: str, timeout: float = 60) -> None:
    page.wait_for_function("([n, b]) => { const e = document.querySelector('#tl-readout-' + n + ' .tl-readout');"
                           " return e && e.innerText.trim() !== b && !e.innerText.includes('…'); }",
                           arg=[name, before], timeout=timeout * 1000)


def slider_box(page, name: str):
    return page.locator(f"#tl-slider-{name} input[type=number]")


def status(page) -> str:
    return page.locator("#tl-status").inner_text()


def wait_status(page, pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = status(page)
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"status never matched {pattern!r}; it says: {status(page)!r}")


def set_slider(page, name: str, value, wait_face: bool = True) -> None:
    """Type a value into the slider's number box and press Enter (what a user does for an exact value)."""
    before = face_src(page)
    box = slider_box(page, name)
    box.fill(str(value))
    box.press("Enter")
    if wait_face:
        page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=before)


def dismiss_toasts(page) -> None:
    for button in page.locator(".toast-close").all():
        with contextlib.suppress(Exception):
            button.click(timeout=1000)


def open_share(page) -> None:
    """Open the (folded) share panel with the link and the state JSON."""
    if page.locator("#tl-json textarea").count() == 0:
        page.locator("#tl-share").get_by_text("Share or restore").click()
        page.wait_for_selector("#tl-json textarea")


def wait_shared(page, state) -> None:
    """Until the page's link (and address bar) and its JSON box show ``state``: the last step of an action.

    The JSON box is checked when the share panel is open: its update can land after the address bar's,
    and a value typed into it before then would be overwritten.
    """
    from tlgan.app.codec import encode_state, state_token

    page.wait_for_function("t => location.search === '?state=' + t", arg=state_token(state))
    page.wait_for_function("j => { const b = document.querySelector('#tl-json textarea');"
                           " return !b || b.value === j; }", arg=encode_state(state))


def token_in_url(page) -> dict:
    token = re.search(r"[?&]state=([A-Za-z0-9_-]+)", page.url).group(1)
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


# ---------------------------------------------------------------- the tests


def test_slider_changes_the_face_and_its_readout(page, toy_url):
    open_page(page, toy_url)
    assert page.title() == "tlgan explorer"
    assert readout_text(page, "a")  # the readouts arrived
    a0, c0, before = readout(page, "a"), readout(page, "c"), face_pixels(page)
    text_a = readout_text(page, "a")
    set_slider(page, "a", 2)
    wait_readout_change(page, "a", text_a)
    assert readout(page, "a") - a0 == pytest.approx(2.0, abs=0.3)  # the toy's a is read back from the pixels
    assert readout(page, "c") == pytest.approx(c0, abs=0.15)
    assert "▲" in readout_text(page, "a")
    assert not np.array_equal(face_pixels(page), before)
    assert face_pixels(page).shape == (512, 512, 3)
    wait_status(page, r"seed 0; a \+2")
    page.wait_for_function("() => location.search.startsWith('?state=')")
    open_share(page)
    page.wait_for_function("() => document.querySelector('#tl-json textarea').value.includes('\"a\": 2')")
    assert token_in_url(page)["sliders"] == {"a": 2.0}
    assert '"sliders": {"a": 2.0}' in page.locator("#tl-json textarea").input_value()
    shot(page, "toy-slider.png")


def test_dragging_the_slider_updates_the_face(page, toy_url):
    open_page(page, toy_url)
    page.locator("#tl-slider-c input[type=range]").scroll_into_view_if_needed()
    track = page.locator("#tl-slider-c input[type=range]").bounding_box()
    before = face_src(page)
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + track["width"] / 2, y)
    page.mouse.down()
    for f in (0.6, 0.7, 0.8, 0.9):
        page.mouse.move(track["x"] + track["width"] * f, y, steps=3)
    page.mouse.up()
    page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=before)
    value = float(slider_box(page, "c").input_value())
    assert value > 2
    wait_status(page, rf"c \+{value:g}")
    page.wait_for_function("() => !document.querySelector('#tl-undo').disabled")
    page.locator("#tl-undo").click()  # the whole drag is one undo step
    wait_status(page, "no edit")
    assert float(slider_box(page, "c").input_value()) == 0


def test_lock_holds_a_feature_and_warns_when_axes_are_parallel(page, toy_url):
    open_page(page, toy_url)
    a0, b0 = readout(page, "a"), readout(page, "b")
    page.locator("#tl-lock-b input[type=checkbox]").check()
    wait_status(page, "locked: b")
    page.wait_for_function("() => document.querySelector('#tl-slider-b input[type=range]').disabled")
    text_a = readout_text(page, "a")
    set_slider(page, "a", 2)
    text = wait_status(page, "nearly parallel")
    assert "locked b (cos +0.80)" in text and "60%" in text and "cancels itself" in text
    wait_readout_change(page, "a", text_a)
    assert readout(page, "b") == pytest.approx(b0, abs=0.15)  # b is held
    assert readout(page, "a") - a0 == pytest.approx(1.2, abs=0.3)  # only 60 % of a's axis survives the lock
    shot(page, "toy-lock-warning.png")
    dismiss_toasts(page)
    page.locator("#tl-lock-b input[type=checkbox]").uncheck()
    page.wait_for_function("() => !document.querySelector('#tl-slider-b input[type=range]').disabled")
    assert "nearly parallel" not in wait_status(page, r"a \+2\.$")


def test_random_seed_reset_undo_strip_and_download(page, toy_url, tmp_path):
    open_page(page, toy_url)
    src = face_src(page)
    page.locator("#tl-random").click()
    page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=src)
    seed = int(float(page.locator("#tl-seed input").input_value()))
    assert seed != 0 and f"seed {seed};" in status(page)

    page.locator("#tl-seed input").fill("123")
    page.locator("#tl-seed-go").click()
    wait_status(page, "seed 123; no edit")
    set_slider(page, "c", 1.5)
    set_slider(page, "a", -1)
    wait_status(page, r"a -1, c \+1\.5")
    page.locator("#tl-reset").click()
    wait_status(page, "seed 123; no edit")
    assert float(slider_box(page, "a").input_value()) == 0 and float(slider_box(page, "c").input_value()) == 0
    page.locator("#tl-undo").click()
    wait_status(page, r"a -1, c \+1\.5")
    assert float(slider_box(page, "c").input_value()) == 1.5

    # the strip steps the chosen axis; clicking its last face sets that slider to +3
    page.locator("#tl-strip-axis input").click()
    page.locator('[role=option][aria-label="c"]').click()
    page.wait_for_function("() => document.querySelectorAll('#tl-strip .caption-label').length === 7 &&"
                           " document.querySelector('#tl-strip .caption-label').innerText.includes('c -3')")
    captions = page.locator("#tl-strip .caption-label").all_inner_texts()
    assert captions[-1].strip() == "c +3" and any("●" in c for c in captions) is False  # 1.5 is not a step
    page.locator("#tl-strip .thumbnail-item").nth(6).click()
    wait_status(page, r"a -1, c \+3")
    assert float(slider_box(page, "c").input_value()) == 3

    page.wait_for_function("() => !document.querySelector('#tl-download').disabled")
    open_share(page)
    page.wait_for_function("() => document.querySelector('#tl-json textarea').value.includes('\"c\": 3')")
    with page.expect_download() as dl:
        page.locator("#tl-download").click()
    path = tmp_path / "face.png"
    dl.value.save_as(path)
    im = Image.open(path)
    assert im.format == "PNG" and im.size == (512, 512)
    assert dl.value.suggested_filename.startswith("tlgan-seed123-")
    shot(page, "toy-strip.png")


def test_share_link_and_state_json_restore_the_exact_state(page, browser, toy_url):
    from tlgan.app.codec import state_token
    from tlgan.app.state import ExplorerState

    state = ExplorerState("toy-linear", 7, None, {"a": 1.5, "c": -0.5}, ("p",))
    open_page(page, toy_url + "?state=" + state_token(state))
    text = wait_status(page, r"seed 7; a \+1\.5, c -0\.5; locked: p")
    assert "Not applied" not in text
    assert float(slider_box(page, "a").input_value()) == 1.5
    assert page.locator("#tl-lock-p input[type=checkbox]").is_checked()
    assert int(float(page.locator("#tl-seed input").input_value())) == 7
    shared_face = face_pixels(page)

    # the JSON box: paste a state and load it
    open_share(page)
    wait_shared(page, state)
    box = page.locator("#tl-json textarea")
    box.fill('{"seed": 9, "sliders": {"c": -1}, "locks": []}')
    page.locator("#tl-load").click()
    wait_status(page, "seed 9; c -1.$")
    assert float(slider_box(page, "c").input_value()) == -1
    assert not page.locator("#tl-lock-p input[type=checkbox]").is_checked()

    # and the page's own link, opened in another browser, shows the same face
    wait_shared(page, ExplorerState("toy-linear", 9, None, {"c": -1.0}))
    page.wait_for_function("() => document.querySelector('#tl-link input, #tl-link textarea').value"
                           " === location.href")
    link = page.locator("#tl-link textarea, #tl-link input").first.input_value()
    assert link.startswith("http://127.0.0.1:") and token_in_url(page)["seed"] == 9
    assert '"seed": 9' in page.locator("#tl-json textarea").input_value()
    other = browser.new_context().new_page()
    other.goto(link)
    other.wait_for_selector("#tl-face img")
    wait_status(other, "seed 9; c -1.$")
    assert np.array_equal(face_pixels(other), face_pixels(page))
    assert not np.array_equal(face_pixels(other), shared_face)
    other.context.close()


def test_invalid_input_gets_a_message_and_the_server_keeps_going(page, toy_url):
    from tlgan.app.state import ExplorerState

    open_page(page, toy_url)
    set_slider(page, "a", 1)
    set_slider(page, "a", 10, wait_face=False)
    assert "outside the slider range" in wait_status(page, "Not applied")
    page.wait_for_function("() => document.querySelector('#tl-slider-a input[type=number]').value === '1'")

    page.locator("#tl-seed input").fill("1.5")
    page.locator("#tl-seed-go").click()
    assert "whole number from 0 to 4294967295" in wait_status(page, "seed must")

    open_share(page)
    wait_shared(page, ExplorerState("toy-linear", 0, None, {"a": 1.0}))
    page.locator("#tl-json textarea").fill('{"seed": 3, "sliders": {"age": 2}}')
    page.locator("#tl-load").click()
    assert "unknown feature 'age'" in wait_status(page, "unknown feature")
    page.locator("#tl-json textarea").fill("{broken")
    page.locator("#tl-load").click()
    wait_status(page, "not valid JSON")
    time.sleep(0.5)  # the refused state stays in the box, to be fixed
    assert page.locator("#tl-json textarea").input_value() == "{broken"
    shot(page, "toy-invalid-input.png")
    dismiss_toasts(page)

    set_slider(page, "c", 2)  # still alive, and the state is what the valid inputs made it
    wait_status(page, r"seed 0; a \+1, c \+2")

    # a damaged share link
    page.goto(toy_url + "?state=eyJzZWVkIjo")
    page.wait_for_selector("#tl-face img")
    assert "could not restore the shared state" in wait_status(page, "Not applied")


class Described:
    """An extractor with other descriptions of its features (what the page shows under each slider's name)."""

    def __init__(self, extractor, descriptions: dict[str, str]) -> None:
        from dataclasses import replace

        self.extractor = extractor
        self.features = [replace(f, description=descriptions.get(f.name, f.description)) for f in extractor.features]
        self.name, self.presence = extractor.name, extractor.presence

    def __call__(self, images):
        return self.extractor(images)


def test_a_feature_description_is_shown_as_written(page, toy_axes):
    from browser_support import free_port
    from tlgan.app.explorer import Explorer
    from tlgan.app.web import build_app, launch
    from tlgan.axes import Axes
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    text = "probability > 0.5 & <b>p</b> < 1"
    ext = Described(load_extractor("toy-linear", "cpu"), {"p": text})
    demo = build_app(Explorer(Axes.load(toy_axes), load_generator("toy-linear", "cpu"), ext), live="off")
    port = free_port()
    launch(demo, port=port, block=False, quiet=True)
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#tl-face img")
        shown = page.locator("#tl-slider-p").inner_text()
        assert text in shown, shown  # not "&gt;", "&amp;" or "&lt;b&gt;": escaped once
        assert page.locator("#tl-slider-p b").count() == 0, "the description became markup"
    finally:
        demo.close()


class ClearWhenPositiveC(Described):
    """The toy extractor judging a face clear when its ``c`` reads above 0 (about half the seeds)."""

    has_showcase = True

    def showcase(self, labels):
        return labels[:, [f.name for f in self.features].index("c")] > 0


def test_the_page_opens_on_a_clear_face_and_new_random_faces_are_clear(page, toy_axes):
    from browser_support import free_port
    from tlgan.app.explorer import Explorer
    from tlgan.app.web import build_app, launch
    from tlgan.axes import Axes
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    explorer = Explorer(Axes.load(toy_axes), load_generator("toy-linear", "cpu"),
                        ClearWhenPositiveC(load_extractor("toy-linear", "cpu"), {}))
    clear = lambda seed: explorer.readouts(explorer.render(explorer.initial(seed)))["c"] > 0  # noqa: E731
    demo = build_app(explorer, live="off")
    port = free_port()
    launch(demo, port=port, block=False, quiet=True)
    try:
        open_page(page, f"http://127.0.0.1:{port}/")
        first = int(page.locator("#tl-seed input").input_value())
        assert clear(first) and not clear(0)  # not seed 0: its face is not clear
        page.locator("#tl-random").click()  # one of 8 seeds drawn, the first clear one (all 8 unclear: 1 in 256)
        page.wait_for_function("s => document.querySelector('#tl-seed input').value !== s", arg=str(first))
        assert clear(int(page.locator("#tl-seed input").input_value()))
        page.locator("#tl-any-face input[type=checkbox]").check()  # any face: the page still draws one
        seen = page.locator("#tl-seed input").input_value()
        page.locator("#tl-random").click()
        page.wait_for_function("s => document.querySelector('#tl-seed input').value !== s", arg=seen)
    finally:
        demo.close()


def test_the_api_refuses_bad_values_with_a_message(toy_url):
    from gradio_client import Client

    client = Client(toy_url, verbose=False)
    out = client.predict(99, api_name="/move_a")
    assert any("outside the slider range" in str(o) for o in out)
    out = client.predict("abc", api_name="/set_seed")
    assert any("whole number" in str(o) for o in out)
    out = client.predict('{"locks": ["zzz"]}', api_name="/load_state")
    assert any("unknown feature 'zzz'" in str(o) for o in out)
    out = client.predict(2.5, api_name="/move_c")
    assert any("c +2.5" in str(o) for o in out)


def test_sessions_do_not_see_each_other(browser, toy_url):
    pages = [browser.new_context().new_page() for _ in range(2)]
    try:
        for p in pages:
            open_page(p, toy_url)
        set_slider(pages[0], "a", 3)
        page_b = pages[1]
        set_slider(page_b, "c", -2)
        wait_status(pages[0], r"seed 0; a \+3\.$")
        wait_status(page_b, r"seed 0; c -2\.$")
        assert float(slider_box(page_b, "a").input_value()) == 0
        page_b.locator("#tl-undo").click()
        wait_status(page_b, "no edit")
        assert "a +3" in status(pages[0])  # B's undo did not touch A
    finally:
        for p in pages:
            p.context.close()


@need_models("digiface-dcgan", "faceres", "facemesh", "fer-emotion")
@pytest.mark.models
def test_real_faces_page(page, tmp_path):
    """The default generator and extractor: the page shows faces and reads age, gender, pose off them.

    With the demo's axes (`make demo`, or $TLGAN_DEMO_AXES) it also checks that the age slider makes the face
    read older;
    without them it serves random axes, which exercise the same page with the real models.
    """
    axes_path = default_axes(tmp_path)
    with serving(axes_path, tmp_path / "serve.log") as url:
        open_page(page, url + "?state=" + base64.urlsafe_b64encode(b'{"seed": 3}').decode().rstrip("="))
        assert re.search(r"\d+\.\d years", readout_text(page, "age"))
        assert re.search(r"\d+%", readout_text(page, "male"))
        age0, text = readout(page, "age"), readout_text(page, "age")
        set_slider(page, "age", 3)
        wait_readout_change(page, "age", text)
        if axes_path == DEMO_AXES:  # a fitted age axis: +3 units along it reads older
            assert readout(page, "age") > age0
        shot(page, "faces-page.png")


def upload(page, path: Path) -> None:
    """Choose ``path`` in the "Upload a photo" button's file dialog."""
    page.set_input_files('input[type=file][data-testid="Upload a photo-upload-button"]', str(path))


@need_models("digiface-dcgan", "faceres", "facemesh", "fer-emotion")
@pytest.mark.models
def test_upload_a_photo_and_edit_the_photo_itself(page, tmp_path):
    """Grace Hopper's photo (matplotlib's sample) is aligned, inverted and the generator tuned to it (3 and 2 steps,
    to be quick); the page then shows the photo itself (its aspect, 512 px high), which a slider edits, beside the
    aligned crop and reconstruction with the identity similarity; fidelity off shows the 64-px reconstruction
    instead. A photo with no face and a file that is no image get a message in the status box, and the page
    keeps working."""
    import matplotlib

    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (200, 200, 200)).save(blank)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    width, height = Image.open(grace).size
    with serving(default_axes(tmp_path), tmp_path / "serve.log",
                 extra=("--invert-steps", "3", "--tune-steps", "2")) as url:
        open_page(page, url)
        src = face_src(page)
        upload(page, grace)
        page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=src,
                               timeout=120_000)
        wait_status(page, r"the photo grace_hopper\.jpg \(face region edited\); no edit", timeout=60)
        shown = face_pixels(page)
        assert shown.shape[0] == 512 and abs(shown.shape[1] / shown.shape[0] - width / height) < 0.01  # the photo
        page.wait_for_function("() => { const i = document.querySelector('#tl-face img');"
                               " return i.complete && i.naturalHeight === 512; }")
        quality = page.locator("#tl-photo-quality").inner_text()
        assert re.search(r"Identity similarity -?\d\.\d\d", quality) and "Pixel error" in quality, quality
        page.wait_for_selector("#tl-photo-aligned img", state="visible")  # the pictures may land after the text
        page.wait_for_selector("#tl-photo-recon img", state="visible")
        assert "photo" in face_src(page)
        wait_readouts(page)
        photo = face_pixels(page)  # the photo as uploaded (shrunk to 512 px high)
        page.wait_for_function("() => { const m = location.search.match(/state=([A-Za-z0-9_-]+)/); if (!m) return false;"
                               " const t = m[1].replace(/-/g, '+').replace(/_/g, '/');"
                               " return atob(t + '='.repeat((4 - t.length % 4) % 4)).includes('\"latent\"'); }")
        assert token_in_url(page)["latent"] and "seed" not in token_in_url(page)  # the link holds the photo's face
        set_slider(page, "age", 2)
        wait_status(page, r"the photo grace_hopper\.jpg \(face region edited\); age \+2")
        edited = face_pixels(page)
        assert edited.shape == photo.shape and np.abs(edited.astype(int) - photo).mean() > 0.05  # the face moved ...
        assert np.array_equal(edited[:24], photo[:24])  # ... and the top of the photo did not (whole JPEG blocks)
        page.wait_for_function("() => document.querySelector('#tl-cancel') === null"
                               " || document.querySelector('#tl-cancel').offsetParent === null")
        wait_readouts(page)
        shot(page, "upload.png")
        during = drag_slider(page, "happy", [0.5, 0.6, 0.7], pause_ms=200)  # dragging: server frames of the photo
        assert during["server_face_unchanged"] and during["frames"] >= 1 and during["error"] is None
        assert during["latent"] is None  # ... not the page's own 64-px face
        assert page.evaluate("() => [tlganLive.frames && document.querySelector('#tl-live-canvas').width,"
                             " document.querySelector('#tl-live-canvas').height]") == [photo.shape[1], photo.shape[0]]
        wait_status(page, r"the photo grace_hopper\.jpg \(face region edited\); age \+2, happy \+")
        page.locator("#tl-fidelity input[type=checkbox]").uncheck()  # fidelity off: today's look-alike, 64 px
        wait_status(page, r"the reconstruction of grace_hopper\.jpg; age \+2")
        page.wait_for_function("() => { const i = document.querySelector('#tl-face img');"
                               " return i.complete && i.naturalWidth === i.naturalHeight; }")

        upload(page, blank)
        assert "no face found in blank.png" in wait_status(page, "could not use the photo blank.png", timeout=60)
        assert "grace_hopper.jpg; age +2" in status(page)  # the face stays as it was
        dismiss_toasts(page)
        upload(page, notes)
        wait_status(page, "could not use the photo notes.jpg", timeout=60)
        assert "/tmp" not in status(page)  # the server's upload folder is not shown
        shot(page, "upload-refused.png")
        dismiss_toasts(page)

        page.locator("#tl-random").click()  # back to sampled faces
        wait_status(page, r"seed \d+; age \+2")


def test_wplus_layer_ranges_per_axis(page, tmp_path):
    """A random StyleGAN2 served in w+: each axis gets a layer range, kept in the link and restored from it."""
    from tlgan.app.codec import state_token
    from tlgan.app.state import ExplorerState
    from wplus_support import wplus_axes

    axes_path = wplus_axes(tmp_path)
    with serving(axes_path, tmp_path / "serve.log") as url:
        page.goto(url)  # (no extractor in these axes: no readouts to wait for)
        page.wait_for_selector("#tl-face img")
        assert page.locator("#tl-layers-a").is_visible()
        page.locator("#tl-layers-a input").click()
        page.locator('[role=option][aria-label="coarse (0-3)"]').click()
        # the pick is in the session state once the share link carries it (the status already said "no edit")
        page.wait_for_function("() => { const m = location.search.match(/state=([A-Za-z0-9_-]+)/); if (!m) return false;"
                               " const t = m[1].replace(/-/g, '+').replace(/_/g, '/');"
                               " return atob(t + '='.repeat((4 - t.length % 4) % 4)).includes('coarse'); }")
        set_slider(page, "a", 2)
        wait_status(page, r"a \+2 \(coarse layers\)")
        page.wait_for_function("() => location.search.length > 20")
        assert token_in_url(page)["layers"] == {"a": "coarse"}
        coarse = face_pixels(page)
        page.locator("#tl-layers-a input").click()
        page.locator('[role=option][aria-label="all (0-9)"]').click()
        wait_status(page, r"a \+2\.$")
        assert not np.array_equal(face_pixels(page), coarse)  # all layers draw another face
        shot(page, "wplus-layers.png")

        gen_name = token_in_url(page)["generator"]
        state = ExplorerState(gen_name, 5, None, {"a": 1.0, "b": -1.0}, (), {"a": "fine", "b": "0-5"})
        other = page.context.new_page()
        other.goto(url + "?state=" + state_token(state))
        wait_status(other, r"seed 5; a \+1 \(fine layers\), b -1 \(0-5 layers\)")
        assert other.locator("#tl-layers-b input").input_value() == "0-5"


# ---------------------------------------------------------------- dragging: the face follows the slider


def drag_slider(page, name: str, fractions, pause_ms: int = 30) -> dict:
    """Press on ``name``'s range, move along it through ``fractions`` of its width, and report (before release)
    the frames the page drew, the inputs it got and whether the server's face stayed the same; then release."""
    rng = page.locator(f"#tl-slider-{name} input[type=range]")
    rng.scroll_into_view_if_needed()
    track = rng.bounding_box()
    y = track["y"] + track["height"] / 2
    src = face_src(page)
    page.evaluate("() => window.tlganLive.reset()")
    page.mouse.move(track["x"] + track["width"] * fractions[0], y)
    page.mouse.down()
    for f in fractions[1:]:
        page.mouse.move(track["x"] + track["width"] * f, y, steps=2)
        page.wait_for_timeout(pause_ms)
    page.wait_for_function("() => !window.tlganLive.busy && window.tlganLive.frames > 0")
    during = page.evaluate("() => ({frames: tlganLive.frames, inputs: tlganLive.inputs, error: tlganLive.error,"
                           " canvas: document.querySelector('#tl-live-canvas').style.display,"
                           " latent: tlganLive.latent, pixels: tlganLive.pixels && Array.from(tlganLive.pixels),"
                           " digest: tlganLive.digest})")
    during["server_face_unchanged"] = face_src(page) == src
    page.mouse.up()
    page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=src)
    return during


def wait_live(page, mode: str) -> None:
    page.wait_for_function("() => window.tlganLive && (window.tlganLive.ready || window.tlganLive.error)",
                           timeout=60_000)
    assert page.evaluate("() => [tlganLive.mode, tlganLive.error]") == [mode, None]


@need_models("digiface-dcgan", "onnxruntime-web")
def test_dragging_draws_the_default_face_in_the_page(page, tmp_path):
    """While a slider is dragged the page draws each position itself (onnxruntime-web, no server round trip), from
    the same latent the server computes (a locked slider held along its own axis, the others projected off it);
    on release the server's state, status, link and undo follow as for any change."""
    from tlgan.app.explorer import Explorer
    from tlgan.app.state import ExplorerState
    from tlgan.axes import Axes
    from tlgan.generators import load_generator

    names = ["male", "age", "happy"]
    v = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    v[1] += 0.6 * v[0]  # age leans on male: the lock visibly bends its direction
    axes = Axes(names, ["continuous"] * 3, v / np.linalg.norm(v, axis=1, keepdims=True), np.ones(3),
                meta={"generator": "digiface-dcgan", "n_samples": 0})  # no extractor: no readouts to wait for
    axes_path = axes.save(tmp_path / "axes.safetensors")
    with serving(axes_path, tmp_path / "serve.log") as url:
        page.goto(url + "?state=" + base64.urlsafe_b64encode(
            b'{"seed": 5, "sliders": {"male": 1.5, "happy": -1}, "locks": ["male"]}').decode().rstrip("="))
        page.wait_for_selector("#tl-face img")
        wait_status(page, r"seed 5; male \+1\.5, happy -1; locked: male")
        wait_live(page, "browser")
        during = drag_slider(page, "age", [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
        assert during["server_face_unchanged"], "the server was asked for a face during the drag"
        assert during["frames"] >= 3 and during["canvas"] == "block" and during["error"] is None
        value = float(slider_box(page, "age").input_value())
        assert value > 0.5
        wait_status(page, rf"male \+1\.5, age \+{value:g}, happy -1; locked: male")
        page.wait_for_function("() => document.querySelector('#tl-live-canvas').style.display === 'none'")

        explorer = Explorer(Axes.load(axes_path), load_generator("digiface-dcgan", "cpu"))
        state = ExplorerState("digiface-dcgan", 5, None, {"male": 1.5, "age": value, "happy": -1.0}, ("male",))
        wait_shared(page, state)  # the server's state, as its share link says
        want = explorer.latent(state)
        np.testing.assert_allclose(np.asarray(during["latent"]), want, atol=1e-4)  # the page's last latent
        drawn = np.asarray(during["pixels"], dtype=int).reshape(64, 64, 3)
        assert np.abs(drawn - explorer.render(state).astype(int)).max() <= 2  # ... and its face
        shot(page, "drag-in-page.png")
        page.locator("#tl-undo").click()  # the drag is one undo step
        wait_status(page, r"seed 5; male \+1\.5, happy -1; locked: male")


def test_dragging_a_wplus_slider_gets_server_frames_of_its_layers(page, tmp_path):
    """A generator the page does not run (a StyleGAN in w+): while dragging, the server draws frames of the
    session's state with the dragged value, layer range included; the face follows them."""
    from tlgan.app.codec import state_digest, state_token
    from tlgan.app.state import ExplorerState
    from tlgan.axes import Axes
    from wplus_support import wplus_axes

    axes_path = wplus_axes(tmp_path)
    with serving(axes_path, tmp_path / "serve.log") as url:
        gen = Axes.load(axes_path).meta["generator"]
        page.goto(url + "?state=" + state_token(ExplorerState(gen, 2, None, {}, (), {"a": "coarse"})))
        page.wait_for_selector("#tl-face img")
        wait_status(page, "seed 2; no edit")
        wait_live(page, "server")
        during = drag_slider(page, "a", [0.5, 0.6, 0.7, 0.8], pause_ms=200)
        assert during["server_face_unchanged"] and during["frames"] >= 1 and during["error"] is None
        value = float(slider_box(page, "a").input_value())
        wait_status(page, rf"seed 2; a \+{value:g} \(coarse layers\)")
        assert during["digest"] == state_digest(ExplorerState(gen, 2, None, {"a": value}, (), {"a": "coarse"}))
