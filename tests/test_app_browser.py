"""The explorer page in a real browser: `tlgan serve` on toy axes, driven with Debian's chromium via Playwright.

Skips only when /usr/bin/chromium or playwright is missing (CI installs both: see .ci/run). Screenshots go
to $TLGAN_SCREENSHOTS (default runs/screenshots). The page is driven through tests/explorer_page.py; the
tests on the real default models and on w+ generators are in test_app_browser_models.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from browser_support import BROWSER_MARKS, shot
from explorer_page import (
    dismiss_toasts,
    face_pixels,
    face_src,
    open_page,
    open_share,
    readout,
    readout_text,
    serving,
    set_slider,
    slider_box,
    status,
    token_in_url,
    wait_readout_change,
    wait_shared,
    wait_status,
)

pytestmark = BROWSER_MARKS


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

    def __getattr__(self, name):  # everything else is the wrapped extractor's (has_descriptor, batch_size, ...)
        return getattr(self.extractor, name)


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
