"""The labelling page in a real browser: `tlgan label` on the toy generator, driven with Debian's chromium.

Clicks and keys label faces; the label file gets every label at once; a reload shows them again and
starts at the first page with an unlabelled face. Skips only when chromium, playwright or gradio is
missing. Screenshots go to $TLGAN_SCREENSHOTS (default runs/screenshots).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from browser_support import BROWSER_MARKS, serving, shot

pytestmark = BROWSER_MARKS


@contextmanager
def labelling(labels: Path, log_path: Path, *extra: str, timeout: float = 120):
    """`tlgan label LABELS -g toy-linear ...` in a subprocess on a free port; yields its URL once it answers."""
    args = ["label", str(labels), "-g", "toy-linear", "--seed", "0", "--page-size", "12", "--cols", "6",
            "--probe-input", "pixels", "--device", "cpu", *extra]
    with serving(args, log_path, timeout) as url:
        yield url


def face(page, index: int):
    return page.locator(f'.lb-face[data-index="{index}"]')


def classes(page, index: int) -> str:
    return face(page, index).get_attribute("class")


def wait_page(page, first: int) -> None:
    """Until the grid shows the page that starts at face ``first``."""
    page.wait_for_selector(f'.lb-face[data-index="{first}"]')
    page.wait_for_function("() => document.querySelectorAll('.lb-face').length === 12")


def wait_saved(page) -> None:
    """Until every label sent from the page has come back from the server."""
    page.wait_for_function("() => { const w = document.querySelector('.lb-wrap');"
                           " return w && w.dataset.pending === '0'; }")


def latest(path: Path, feature: str) -> dict[int, int | None]:
    out: dict[int, int | None] = {}
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if doc["feature"] == feature:
            out[doc["index"]] = doc["label"]
    return out


def test_click_and_keys_label_faces_and_a_reload_restores_them(page, tmp_path):
    labels = tmp_path / "toy.jsonl"
    with labelling(labels, tmp_path / "label.log", "--feature", "bright") as url:
        page.goto(url)
        wait_page(page, 0)
        assert page.title() == "tlgan label"
        assert "page 1: faces 0..11" in page.locator(".lb-title").inner_text()

        face(page, 0).click()                      # unlabelled -> yes
        face(page, 1).click()
        face(page, 1).click()                      # yes -> no
        face(page, 5).click()
        face(page, 5).click()
        face(page, 5).click()                      # yes -> no -> unlabelled again
        wait_saved(page)
        assert "yes" in classes(page, 0) and "no" in classes(page, 1).split()
        assert latest(labels, "bright") == {0: 1, 1: 0, 5: None}
        lines = [json.loads(x) for x in labels.read_text().splitlines()]
        assert len(lines) == 6 and lines[0] == {**lines[0], "generator": "toy-linear", "seed": 0, "index": 0,
                                                "feature": "bright", "label": 1}

        # keys: the cursor is on face 5 (clicked last); → moves, Y / N label and step on
        page.keyboard.press("ArrowRight")          # face 6
        page.keyboard.press("y")                   # face 6 yes, cursor to 7
        page.keyboard.press("n")                   # face 7 no, cursor to 8
        page.keyboard.press("1")                   # face 8 yes
        page.keyboard.press("a")                   # every unlabelled face of the page: no
        wait_saved(page)
        want = {0: 1, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1, 7: 0, 8: 1, 9: 0, 10: 0, 11: 0}
        assert latest(labels, "bright") == want
        assert page.locator(".lb-counts").inner_text() == "bright: 3 yes · 9 no"
        shot(page, "label-page.png")

        page.keyboard.press("]")                   # next page
        wait_page(page, 12)
        page.keyboard.press("y")
        wait_saved(page)
        assert latest(labels, "bright")[12] == 1

        page.reload()                              # a new session: starts at the first unlabelled face
        wait_page(page, 12)
        assert "yes" in classes(page, 12).split()
        page.locator("#lb-prev").click()
        wait_page(page, 0)
        for i, v in want.items():                  # every label is shown again
            assert ({1: "yes", 0: "no"}[v]) in classes(page, i).split(), (i, classes(page, i))

        page.locator("#lb-feature textarea, #lb-feature input").first.fill("hat")
        page.locator("#lb-feature textarea, #lb-feature input").first.press("Enter")
        page.wait_for_function("() => document.querySelector('.lb-wrap').dataset.feature === 'hat'")
        wait_page(page, 0)
        assert not any(c in classes(page, 0).split() for c in ("yes", "no"))
        face(page, 3).click()
        wait_saved(page)
        assert latest(labels, "hat") == {3: 1} and latest(labels, "bright") == {**want, 12: 1}

    # a new server on the same file resumes too (the file is the only state)
    with labelling(labels, tmp_path / "label2.log", "--feature", "bright") as url:
        page.goto(url)
        wait_page(page, 12)
        assert "yes" in classes(page, 12).split()
