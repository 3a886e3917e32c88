"""The explorer's "Generate to order" panel and GIF download (tlgan.app.generate_panel), without a browser,
on the toy-linear model (features a, b, c continuous and p binary, exact linear functions of z)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlgan.app.codec import state_token
from tlgan.app.generate_panel import GenerateError, condition_text, features_help, gallery_items, generate, gif_start, load_face, wants_of
from tlgan.app.state import StateError, set_lock, set_slider
from tlgan.app.undo import Session
from tlgan.errors import InputError
from tlgan.generate.spec import SpecError


@pytest.fixture(scope="module")
def generated(explorer):
    return generate(explorer, wants_of([("a", "≥", "1"), ("p", "absent", "")], "c<=0"), 4, seed=3)


# ---------------------------------------------------------------- conditions picked -> spec text


def test_picked_rows_and_typed_text_become_spec_conditions():
    assert condition_text("a", "≥", " 1.5 ") == "a>=1.5"
    assert condition_text("a", "≤", -2) == "a<=-2"
    assert condition_text("a", "between", "0..2") == "a=0..2"
    assert condition_text("p", "present", "ignored") == "p"
    assert condition_text("p", "absent", None) == "!p"
    assert condition_text("", "≥", "3") is None and condition_text(None, None, None) is None
    rows = [("a", "≥", "1"), ("", "present", ""), ("p", "absent", "")]
    assert wants_of(rows, " c<=0; b>=-1 ,") == ["a>=1", "!p", "c<=0", "b>=-1"]


@pytest.mark.parametrize("row, message", [(("a", "≥", ""), "needs a value"),
                                          (("a", "between", "3"), "range LO..HI"),
                                          (("a", "~", "1"), "unknown operator")])
def test_an_incomplete_row_is_refused_with_what_to_type(row, message):
    with pytest.raises(GenerateError, match=message):
        condition_text(*row)


def test_no_condition_at_all_is_refused():
    with pytest.raises(GenerateError, match="pick at least one condition"):
        wants_of([("", "present", "")], "  , ")


def test_features_help_lists_the_features_by_kind(explorer):
    text = features_help(explorer.extractor.features, explorer.names)
    assert "**Yes/no**" in text and "p" in text.split("\n\n")[0]
    assert text.split("\n\n")[1].endswith("a, b, c")


# ---------------------------------------------------------------- generating and loading a face


def test_generate_returns_confirmed_faces_for_the_gallery(explorer, generated):
    names = generated.names
    assert len(generated.faces) == 4
    for face in generated.faces:  # every face read back meets every condition
        labels = dict(zip(names, face.labels, strict=True))
        assert labels["a"] >= 1 and labels["p"] < 0.5 and labels["c"] <= 0
    items = gallery_items(generated, cell=32)
    assert len(items) == 4
    image, caption = items[0]
    assert image.size == (32, 32) and caption.startswith("a ") and "p " in caption and "c " in caption


def test_clicking_a_face_loads_its_latent_with_sliders_at_zero(explorer, generated):
    axes = explorer.axes
    before = set_lock(set_slider(explorer.initial(5), axes, "b", 2), axes, "c", True)
    latents = [f.latent for f in generated.faces]
    session = load_face(Session(before), latents, 2)
    s = session.state
    assert s.seed is None and s.sliders == {} and s.locks == ("c",)
    np.testing.assert_allclose(np.asarray(s.latent, np.float32), latents[2], atol=1e-6)
    # the face shown is the generated one, and the link carries it
    np.testing.assert_array_equal(explorer.render(s), generated.faces[2].image)
    assert explorer.from_token(state_token(s)) == s
    assert session.undo().state == before
    with pytest.raises(StateError, match="press Generate again"):
        load_face(Session(before), latents, 9)
    with pytest.raises(StateError, match="press Generate again"):
        load_face(Session(before), None, 0)


def test_no_near_duplicates_needs_an_identity_descriptor(explorer):
    """The panel's "no near-duplicates" box reaches ``generate_faces``; the toy extractor has no descriptor to tell
    faces apart by, so it is refused in one line (and the box is not shown for it)."""
    assert not explorer.extractor.has_descriptor
    with pytest.raises(InputError, match="identity descriptor") as e:
        generate(explorer, ["a>=1"], 4, seed=0, distinct=True)
    assert "\n" not in str(e.value)


def test_a_bad_spec_is_one_clear_line(explorer):
    with pytest.raises(SpecError, match="unknown feature 'zz'") as e:
        generate(explorer, ["zz>=1"], 4, seed=0)
    assert "\n" not in str(e.value)
    with pytest.raises(SpecError, match="probability"):
        generate(explorer, wants_of([("p", "≥", "2")], ""), 4, seed=0)


# ---------------------------------------------------------------- the GIF of the current edit


def test_gif_morphs_from_the_unedited_face_to_the_face_shown(explorer):
    from tlgan.animate import move_frames
    from tlgan.app.generate_panel import gif_file
    from tlgan.app.web import Page, View

    axes = explorer.axes
    s = set_lock(set_slider(set_slider(explorer.initial(7), axes, "a", 2), axes, "c", -1), axes, "c", True)
    s = set_slider(s, axes, "b", 1)
    _editor, z, moves = gif_start(explorer, s)
    assert moves == {"a": 2.0, "b": 1.0}
    # the first frame is the face with only the locked slider's held amount, the last the face shown
    frames = move_frames(z, axes, moves, s.locks, steps=3)
    np.testing.assert_allclose(frames[0], explorer.latent(set_slider(set_slider(s, axes, "a", 0), axes, "b", 0)),
                               atol=1e-5)
    np.testing.assert_allclose(frames[-1], explorer.latent(s), atol=1e-5)
    page = Page(explorer, seed=0)
    try:
        path = gif_file(page, View(Session(s)))
        assert path.endswith(".gif") and path.startswith(str(page.files.folder))
        with Image.open(path) as im:
            assert im.format == "GIF" and im.n_frames == 12  # 7 frames forth, 5 back (the ends not repeated)
        assert gif_file(page, View(Session(s))) == path  # the same edit again: the same file
        assert not list(page.files.folder.glob(".*"))  # no temporary file left behind
    finally:
        page.files.remove()
    with pytest.raises(StateError, match="move a slider first"):
        gif_start(explorer, explorer.initial(7))


class CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        import threading

        self.lock, self.taken = threading.Lock(), 0

    def __enter__(self):
        self.lock.acquire()
        self.taken += 1
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()


def test_generating_shares_the_models_with_the_page_call_by_call(explorer, monkeypatch):
    """Every render and every reading of a generation takes the explorer's lock for that model, as the page's
    own calls do, so a generation never runs a model at the same time as another session's face."""
    render, extract = CountingLock(), CountingLock()
    monkeypatch.setattr(explorer, "_render_lock", render)
    monkeypatch.setattr(explorer, "_extract_lock", extract)
    result = generate(explorer, ["a>=1"], 2, seed=1)
    assert render.taken >= 1 and extract.taken >= 1
    assert len(result.faces) == 2
    assert not render.lock.locked() and not extract.lock.locked()

    class Describing:  # the toy extractor with an identity descriptor: generating refuses near-duplicates
        has_descriptor = True

        def __init__(self, extractor) -> None:
            self._extractor, self.under_lock = extractor, []

        def __getattr__(self, name):
            return getattr(self._extractor, name)

        def __call__(self, images):
            return self._extractor(images)

        def descriptor(self, images):
            self.under_lock.append(extract.lock.locked())
            return images.float().mean(dim=(2, 3)).cpu().numpy()

    described = Describing(explorer.extractor)
    monkeypatch.setattr(explorer, "extractor", described)
    assert len(generate(explorer, ["a>=1"], 3, seed=1).faces) == 3
    assert described.under_lock and all(described.under_lock)  # every descriptor call took the lock too
