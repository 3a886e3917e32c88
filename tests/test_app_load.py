"""The explorer under concurrent load, on loopback only: no failed request, no face file lost, at most
``--max-sessions`` session states kept, nothing left behind when the server is stopped, and names from the
axes file shown as text.

The load is 30 sessions at once, a few rounds, against `tlgan serve` on toy axes in a subprocess. The
server's memory over a long load (it levels off after ~20 rounds of warm-up; without the session cap it
keeps growing) is measured by benchmarks/app_load.py, not asserted here: RSS on a shared machine is too
noisy for a few rounds to tell the two apart.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from browser_support import BROWSER_MARKS, ROOT

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("gradio") is None,
                       reason="gradio is not installed (pip install 'tlgan[app]')"),
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc"),
]

sys.path.insert(0, str(ROOT / "benchmarks"))
import app_load

SESSIONS, ROUNDS = 30, 6
MAX_SESSIONS = 40  # well below the sessions the load makes (30 a round without a session, 30 with one)


@pytest.fixture(scope="module")
def toy_axes(tmp_path_factory) -> Path:
    return app_load.toy_axes(tmp_path_factory.mktemp("toy"))


def test_concurrent_sessions_lose_no_request(toy_axes, tmp_path):
    log = tmp_path / "serve.log"
    env = {"TMPDIR": str(tmp_path), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    with app_load.serving(toy_axes, log, extra=["--max-sessions", str(MAX_SESSIONS)], env=env) as server:
        load = app_load.hammer(server, ["a", "b"], SESSIONS, ROUNDS, timeout=120)
    # every request answered, and every face it named could be fetched (none deleted under it)
    assert load.requests == 2 * SESSIONS * ROUNDS
    assert load.failures == [], load.failures[:5]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_the_server_keeps_the_state_of_at_most_max_sessions_sessions(toy_axes):
    """The bound that keeps a long-running server's memory flat: the least recently used sessions go, the
    one just used stays."""
    from tlgan.app.web import build_app, launch
    from tlgan.jobs import open_explorer

    demo = build_app(open_explorer(toy_axes, "cpu"))
    port = app_load.free_port()
    launch(demo, "127.0.0.1", port, block=False, quiet=True, max_sessions=5)
    server = SimpleNamespace(url=f"http://127.0.0.1:{port}", pid=os.getpid())
    try:
        load = app_load.hammer(server, ["a", "b"], 12, 2, timeout=120)  # 24 sessions with a state
        assert load.failures == [], load.failures[:5]
        assert len(demo.state_holder.session_data) == 5
        with httpx.Client(timeout=60) as client:
            app_load.call(client, server.url, "move_a", [1.0], "last-one")
        assert len(demo.state_holder.session_data) == 5 and "last-one" in demo.state_holder.session_data
    finally:
        demo.close()


def test_face_files_go_least_recently_handed_out_first_and_never_within_the_grace_period():
    from tlgan.app.web import FaceFiles

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"png")

    files = FaceFiles(keep=3, grace=0.0)
    try:
        paths = [files.get(f"f{i}.png", write) for i in range(4)]
        assert files.get("f1.png", lambda tmp: pytest.fail("f1 is there: not written again")) == paths[1]
        files.get("f4.png", write)  # two over: f0 and f2 (f1 was handed out again) go
        assert sorted(p.name for p in files.folder.iterdir()) == ["f1.png", "f3.png", "f4.png"]
    finally:
        files.remove()
    assert not files.folder.exists()

    files = FaceFiles(keep=1, grace=300.0)  # each handed out just now: none may go yet
    try:
        paths = [files.get(f"f{i}.png", write) for i in range(5)]
        assert all(p.exists() for p in paths)
    finally:
        files.remove()


@pytest.mark.parametrize("sig, background", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
                         ids=["SIGTERM", "SIGINT", "SIGINT-in-background"])
def test_stopping_the_server_removes_its_files(toy_axes, tmp_path, sig, background):
    """``background``: started as a shell starts a background job (``make test &``), with SIGINT ignored."""
    env = {"TMPDIR": str(tmp_path), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if background else signal.getsignal(signal.SIGINT)
    try:
        with app_load.serving(toy_axes, tmp_path / "serve.log", env=env) as server:
            signal.signal(signal.SIGINT, before)  # the server has inherited SIG_IGN; this process listens again
            with httpx.Client(timeout=60) as client:
                app_load.call(client, server.url, "random_face", [])
            folders = list(tmp_path.glob("tlgan-explorer-*"))
            assert len(folders) == 1 and list(folders[0].glob("*.png")), "the face PNG is where the test looks"
            assert [f for f in (tmp_path / "gradio").rglob("*") if f.is_file()], "gradio cached a copy"
            server.proc.send_signal(sig)
            server.proc.wait(30)
    finally:
        signal.signal(signal.SIGINT, before)
    assert not folders[0].exists()
    assert [f for f in (tmp_path / "gradio").rglob("*") if f.is_file()] == []
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-3000:]


HTML_NAME = "<i>x</i>*y*"


@pytest.fixture(scope="module")
def html_axes(toy_axes, tmp_path_factory) -> Path:
    """The toy axes with feature ``a`` renamed to a name full of HTML and markdown."""
    from tlgan.axes import Axes

    axes = Axes.load(toy_axes)
    renamed = replace(axes, names=[HTML_NAME if n == "a" else n for n in axes.names],
                      metrics={HTML_NAME if n == "a" else n: m for n, m in axes.metrics.items()})
    return renamed.save(tmp_path_factory.mktemp("html") / "axes.safetensors")


def browser_test(fn):
    """Mark ``fn`` as a browser test (skipped without chromium or playwright, like tests/test_app_browser.py)."""
    for mark in BROWSER_MARKS:
        fn = mark(fn)
    return fn


@browser_test
def test_a_feature_name_with_html_is_shown_as_text(html_axes, tmp_path, page):
    with app_load.serving(html_axes, tmp_path / "serve.log") as server:
        page.goto(server.url)
        page.wait_for_selector("#tl-face img")
        # lock b, then move the HTML-named feature: its name shows in the status box, the strip's note and captions
        page.locator("#tl-lock-b input[type=checkbox]").check()
        page.wait_for_function("() => document.querySelector('#tl-status').innerText.includes('locked: b')")
        page.locator("#tl-strip-axis input").fill(HTML_NAME)
        page.keyboard.press("Enter")
        box = page.locator("[id^='tl-slider-'] input[type=number]").first
        box.fill("1.5")
        box.press("Enter")
        page.wait_for_function("n => document.querySelector('#tl-status').innerText.includes(n + ' +1.5')",
                               arg=HTML_NAME)
        page.wait_for_function("n => document.querySelector('#tl-strip').innerText.includes(n + ' +3')",
                               arg=HTML_NAME)
        assert HTML_NAME in page.locator("[id^='tl-slider-'] label").first.inner_text()
        assert page.locator("#tl-status i, #tl-status em, #tl-strip i, #tl-strip em, #tl-strip-note i, "
                            "#tl-strip-note em, label i, label em").count() == 0, "part of the name became markup"
