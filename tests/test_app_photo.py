"""The explorer's photo path (tlgan.app.photos through Explorer): an uploaded photo is inverted, the generator tuned
to it, and each slider move shows the photo itself at its own size (longest side <= 512), changed only in the face."""

import os

import matplotlib
import numpy as np
import pytest
from PIL import Image

from model_support import need_models
from tlgan.app.explorer import Explorer
from tlgan.app.photos import PHOTO_MAX_SIDE, PhotoStore, PhotoWork
from tlgan.app.state import StateError, set_latent, set_slider

PHOTO = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def explorer():
    from tlgan.axes import Axes
    from tlgan.generators import load_generator

    v = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    axes = Axes(["age", "happy"], ["continuous", "continuous"], v / np.linalg.norm(v, axis=1, keepdims=True),
                np.ones(2), meta={"generator": "digiface-dcgan", "n_samples": 0})
    return Explorer(axes, load_generator("digiface-dcgan", "cpu"), invert_steps=2, tune_steps=2)


@need_models("digiface-dcgan", "faceres", "facemesh", "blazeface")
def test_a_photo_moves_at_its_own_size_and_only_inside_the_face(explorer):
    work = explorer.prepare_photo(explorer.open_photo(PHOTO), fidelity=True, region="face")
    assert work.tuning is not None and work.edit is not None
    h, w = np.asarray(Image.open(PHOTO)).shape[:2]
    scale = min(1.0, PHOTO_MAX_SIDE / max(h, w))
    state = set_latent(explorer.initial(), work.inversion.latent)
    assert np.array_equal(explorer.render_photo(work.edit, state), work.edit.photo)  # no move: the photo as it is
    moved = explorer.render_photo(work.edit, set_slider(state, explorer.axes, "age", 3.0))
    assert moved.shape == (round(h * scale), round(w * scale), 3) and moved.dtype == np.uint8
    outside = work.edit.mask == 0
    assert outside.mean() > 0.5  # most of the picture is not the face ...
    assert np.array_equal(moved[outside], work.edit.photo[outside])  # ... and stays as it was, bit for bit
    assert not np.array_equal(moved[~outside], work.edit.photo[~outside])

    head = explorer.prepare_photo(work, fidelity=True, region="head")  # another region: the tuning is reused
    assert head.tuning is work.tuning and (head.edit.mask > 0).sum() > (work.edit.mask > 0).sum()
    off = explorer.prepare_photo(work, fidelity=False, region="face")  # today's behaviour: no photo edit
    assert off.edit is None and not off.fidelity and off.tuning is work.tuning
    with pytest.raises(StateError, match="region must be one of face, head, all"):
        explorer.prepare_photo(work, fidelity=True, region="nose")


def test_the_photo_store_keeps_one_photo_per_session_and_at_most_its_size():
    store = PhotoStore(maxsize=2)
    works = [PhotoWork(np.zeros((4, 4, 3), np.uint8), None) for _ in range(3)]  # type: ignore[arg-type]
    store.put("a", works[0])
    store.put("a", works[1])  # a new upload replaces the session's photo
    assert store.get("a") is works[1] and len(store) == 1
    store.put("b", works[0])
    store.get("a")
    store.put("c", works[2])  # beyond the bound the least recently used session goes
    assert store.get("b") is None and store.get("a") is works[1] and store.get("c") is works[2]
    assert store.get(None) is None
