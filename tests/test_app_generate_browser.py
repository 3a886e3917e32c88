"""The explorer's "Generate to order" panel and GIF download in a real browser, on the toy-linear axes
(with a screenshot of the filled panel, runs/screenshots/generate-panel.png, for a person to look at)."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from browser_support import BROWSER_MARKS, serving, shot

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def toy_url(tmp_path_factory):
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator
    from tlgan.jobs import discover

    d = discover(tmp_path_factory.mktemp("toy"), load_generator("toy-linear", "cpu"),
                 load_extractor("toy-linear", "cpu"), 1500, save_images=False, progress=False)
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with serving(["serve", str(d.axes_path), "--device", "cpu"], log) as url:
        yield url


def status(page) -> str:
    return page.locator("#tl-status").inner_text()


def pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.locator(f'[role=option][aria-label="{option}"]').click()


def test_generate_fills_the_gallery_and_a_click_edits_that_face(page, toy_url):
    page.goto(toy_url)
    page.wait_for_selector("#tl-face img")
    page.locator("#tl-gen").get_by_text("Generate to order").click()
    pick(page, "tl-gen-feature-0", "a")
    page.wait_for_function("() => document.querySelector('#tl-gen-op-0 input').value === '≥'")
    page.locator("#tl-gen-value-0 input").fill("1")
    page.locator("#tl-gen-spec input").fill("!p")
    pick(page, "tl-gen-n", "4")
    page.locator("#tl-gen-go").click()
    page.wait_for_function("() => document.querySelectorAll('#tl-gen-gallery .thumbnail-item img').length === 4",
                           timeout=120_000)
    note = page.locator("#tl-gen-status").inner_text()
    assert re.search(r"4 faces meet a>=1, !p", note), note
    captions = page.locator("#tl-gen-gallery .caption-label").all_inner_texts()
    assert all(float(re.match(r"a (-?[\d.]+)", c).group(1)) >= 1 for c in captions), captions
    shot(page, "generate-panel.png")

    page.locator("#tl-gen-gallery .thumbnail-item").nth(1).click()
    page.wait_for_function("() => document.querySelector('#tl-status').innerText.includes('a given latent; no edit')")
    page.wait_for_function("() => location.search.startsWith('?state=')")

    # a bad condition is one line in the panel's status, and the gallery stays
    page.locator("#tl-gen-spec input").fill("zz>=1")
    page.locator("#tl-gen-go").click()
    page.wait_for_function("() => document.querySelector('#tl-gen-status').innerText.includes('unknown feature')")
    assert page.locator("#tl-gen-gallery .thumbnail-item img").count() == 4


def test_gif_of_the_current_edit_is_offered_for_download(page, toy_url, tmp_path):
    page.goto(toy_url)
    page.wait_for_selector("#tl-face img")
    box = page.locator("#tl-slider-a input[type=number]")
    box.fill("2")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#tl-status').innerText.includes('a +2')")
    page.locator("#tl-gif-go").click()
    link = page.locator("#tl-gif a[download]")
    link.wait_for(timeout=60_000)
    with page.expect_download() as dl:
        link.first.click()
    path = tmp_path / "edit.gif"
    dl.value.save_as(path)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames > 2
    # another edit hides the stale GIF
    box.fill("1")
    box.press("Enter")
    page.wait_for_function("() => !document.querySelector('#tl-gif a[download]')")
