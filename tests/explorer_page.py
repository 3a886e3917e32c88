"""Driving the explorer page in a real browser (shared by the browser tests): serving axes, reading the
face, readouts, status and link, moving sliders.

The tests: `tlgan serve` on toy axes, driven with Debian's chromium via Playwright.

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
from PIL import Image

from browser_support import ROOT
from browser_support import serving as serve_cmd

DEMO_AXES = Path(os.environ.get("TLGAN_DEMO_AXES", ROOT / "runs" / "demo" / "axes.safetensors"))



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
