"""Photo edits that keep the photo: pivotal tuning files, masks and blending, and the PhotoEdit session."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest
import torch

from model_support import need_models
from test_invert import tiny
from tlgan.invert import InversionError
from tlgan.photo.blend import blend, mask_pyramid, pyramid_levels, region_mask, seam_score
from tlgan.photo.motion import backward_field, significant_motion, warp_crop
from tlgan.photo.tuning import load_tuning, save_tuning, tune_pivot, tuned_generator, tuning_path

PHOTO = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


def test_tuning_draws_the_target_at_the_pivot_and_leaves_the_generator_alone():
    gen = tiny("w")
    pivot, other = gen.sample(2, 3)
    target = gen.render(other).numpy()[0]  # a face the pivot does not draw
    before = {k: v.clone() for k, v in gen.network().state_dict().items()}
    tuning = tune_pivot(gen, target, pivot, steps=60, lr=3e-3, identity_weight=0, locality_weight=0.1,
                        consistency_weight=0.1)
    for k, v in gen.network().state_dict().items():
        assert torch.equal(v, before[k]), k  # the original generator is untouched
    err = lambda g: np.abs(g.render(pivot).numpy()[0].astype(float) - target).mean()  # noqa: E731
    assert err(tuned_generator(gen, tuning)) < 0.6 * err(gen)


def test_tuning_with_the_edits_keeps_their_change_as_the_generator_draws_it():
    gen = tiny("w")
    pivot, other = gen.sample(2, 3)
    target = gen.render(other).numpy()[0]
    edits = pivot[None] + 2.0 * np.eye(gen.latent_dim, dtype=np.float32)[:4]  # four "axes", one way
    change = lambda g: g.render(edits).numpy().astype(float) - g.render(pivot).numpy().astype(float)  # noqa: E731
    settings = dict(steps=40, lr=3e-3, identity_weight=0, locality_weight=0.1, consistency_weight=2.0)
    off = lambda t: np.abs(change(tuned_generator(gen, t)) - change(gen)).mean()  # noqa: E731
    with_edits = tune_pivot(gen, target, pivot, edits=edits, **settings)
    random_moves = tune_pivot(gen, target, pivot, **settings)
    assert with_edits.meta["settings"]["edit_latents"] == 4
    assert off(with_edits) < off(random_moves)


def test_significant_motion_drops_sub_pixel_shifts_exactly_and_keeps_real_ones():
    shift = torch.tensor([[0.3, 0.0], [0.0, -0.49], [0.6, 0.0], [3.0, -4.0], [0.0, 0.0]])
    out = significant_motion(shift, 1.0)
    assert torch.equal(out[:2], torch.zeros(2, 2)) and torch.equal(out[4], torch.zeros(2))
    assert 0 < out[2, 0] < 0.6  # between half and one pixel: faded in
    assert torch.equal(out[3], shift[3])  # a real motion is kept as it is
    assert torch.equal(significant_motion(shift, 0.0), shift)


def test_tuning_round_trips_through_safetensors_and_refuses_another_generator(tmp_path):
    gen = tiny("w")
    pivot = gen.sample(1, 0)[0]
    tuning = tune_pivot(gen, gen.render(gen.sample(1, 9)).numpy()[0], pivot, steps=3, identity_weight=0)
    gen.sha256 = "a" * 64
    tuning.meta["generator_sha256"] = gen.sha256
    path = save_tuning(tuning_path(tmp_path / "me.latent.npz"), tuning)
    assert path.name == "me.tuning.safetensors"
    assert b"pickle" not in path.read_bytes()[:64]
    back = load_tuning(path, gen)
    assert set(back.delta) == set(tuning.delta)
    for k in tuning.delta:
        assert torch.equal(back.delta[k], tuning.delta[k])
    np.testing.assert_array_equal(back.pivot, pivot)
    other = tiny("w")
    other.sha256 = "b" * 64
    with pytest.raises(InversionError, match="another file"):
        load_tuning(path, other)
    with pytest.raises(InversionError, match="space"):
        load_tuning(path, tiny("w+"))
    with pytest.raises(InversionError, match="another inverted latent"):
        back.check_pivot(pivot + 1)
    (tmp_path / "bad.tuning.safetensors").write_bytes(b"not a file")
    with pytest.raises(InversionError, match="not a readable"):
        load_tuning(tmp_path / "bad.tuning.safetensors")


def test_blend_leaves_pixels_outside_the_mask_untouched_and_zero_change_is_the_photo():
    rng = np.random.default_rng(0)
    photo = torch.from_numpy(rng.uniform(0, 255, (1, 3, 70, 90)).astype(np.float32))
    change = torch.from_numpy(rng.normal(0, 40, (1, 3, 70, 90)).astype(np.float32))
    mask = np.zeros((70, 90), np.float32)
    mask[20:50, 30:60] = 1.0
    masks = mask_pyramid(torch.from_numpy(mask)[None, None], pyramid_levels((70, 90)))
    out = blend(photo, change, masks)
    outside = torch.from_numpy(mask == 0)
    assert torch.equal(out[0][:, outside], photo[0][:, outside])
    assert not torch.equal(out[0][:, ~outside], photo[0][:, ~outside])
    assert torch.equal(blend(photo, torch.zeros_like(change), masks), photo)


def test_face_mask_lies_inside_the_crop_and_grows_with_the_region():
    pts = np.zeros((468, 2))
    t = np.linspace(0, 2 * np.pi, 468)
    pts[:] = np.stack([100 + 40 * np.cos(t), 120 + 50 * np.sin(t)], 1)  # a face-like oval in every index
    transform = np.array([[3.0, 0, 20], [0, 3.0, 30], [0, 0, 1]])  # a 64-px crop covering (20..212, 30..222)
    masks = {r: region_mask((260, 240), pts, transform, 64, r) for r in ("face", "head", "all")}
    assert masks["face"].sum() < masks["head"].sum() < masks["all"].sum()
    for m in masks.values():
        assert m.max() <= 1 and m.min() >= 0 and m[:30].max() == 0 and m[:, :20].max() == 0
    photo = np.full((260, 240, 3), 100, np.uint8)
    assert seam_score(photo, photo, masks["face"]) == 1.0


def test_identical_landmarks_give_no_motion_and_the_warp_follows_a_shift():
    pts = np.random.default_rng(1).uniform(0.2, 0.8, (468, 2))
    assert not backward_field(pts, pts).any()
    field = backward_field(pts, pts + np.array([0.05, 0.0]))  # the face moved right: each point came from 0.05 to its left
    assert np.allclose(field[12:20, 12:20, 0], -0.05, atol=0.01)
    img = torch.zeros(1, 64, 64)
    img[0, :, 30] = 1
    assert warp_crop(img, field)[0, 32, 33] > 0.5  # the line moved right by about 3 px


@need_models("digiface-dcgan", "facemesh", "blazeface")
def test_photo_edit_keeps_the_photo_at_zero_move_and_its_size_after_a_move():
    from tlgan.generators import load_generator
    from tlgan.photo import PhotoEdit
    from tlgan.photo.motion import mesh_landmarks

    gen = load_generator("digiface-dcgan", "cpu")
    z = gen.sample(8, 5)
    faces = gen.render(z).numpy()
    _pts, prob = mesh_landmarks(faces)
    k = int(np.argmax(prob))
    photo = np.full((180, 150, 3), 40, np.uint8)  # the face in a bigger picture, 2x, at (20, 30)
    from PIL import Image

    photo[30:158, 20:148] = np.asarray(Image.fromarray(faces[k]).resize((128, 128), Image.Resampling.BICUBIC))
    transform = np.array([[2.0, 0, 20], [0, 2.0, 30], [0, 0, 1]])
    session = PhotoEdit(gen, photo, transform, z[k], "face")
    assert np.array_equal(session.render(z[k]), photo)  # zero move: the photo, bit for bit
    moved = session.render(z[k] + 2.0 * np.eye(100, dtype=np.float32)[0])
    assert moved.shape == photo.shape and moved.dtype == np.uint8
    outside = session.mask == 0
    assert np.array_equal(moved[outside], photo[outside])
    assert not np.array_equal(moved[~outside], photo[~outside])
