"""The explorer page in a real browser on the real default models (digiface-dcgan + faces) and on w+
generators: a photo edited at its own resolution, dragging drawn in the page, layer ranges.

They need the weights; the real default uses runs/demo/axes.safetensors when `make demo` has made it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_support import BROWSER_MARKS, shot
from explorer_page import (
    DEMO_AXES,
    default_axes,
    dismiss_toasts,
    face_pixels,
    face_src,
    open_page,
    readout,
    readout_text,
    serving,
    set_slider,
    slider_box,
    status,
    token_in_url,
    wait_readout_change,
    wait_readouts,
    wait_shared,
    wait_status,
)
from model_support import need_models

pytestmark = BROWSER_MARKS


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
