"""The jobs layer: what each command does, called from Python on the toy model (seconds)."""

import numpy as np
import pytest

from tlgan import jobs
from tlgan.axes import Axes
from tlgan.errors import InputError, TLGANError
from tlgan.toy import toy_directions


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs")
    gen, ext = jobs.load_models("toy-linear", "toy-linear", "cpu")
    return jobs.discover(out, gen, ext, 1500, grid_features=["a", "zzz"], grid_lock=["b"])


def test_discover_fits_and_draws_the_asked_rows(discovered):
    assert discovered.axes.names == ["a", "b", "p", "c"]
    assert discovered.figure == discovered.axes_path.parent / "traversal.png" and discovered.figure.exists()


def test_fit_file_names_the_file_after_the_finder(discovered):
    run = discovered.run.path
    axes, path = jobs.fit_file(run, "interfacegan", features=["a"])
    assert path == run.parent / "axes-interfacegan.safetensors" and Axes.load(path).names == ["a"]
    axes, path = jobs.fit_file(run, "glm", features=["a"], method="linear", out=run.parent / "x.safetensors")
    assert axes.metrics["a"]["method"] == "linear" and path.name == "x.safetensors"
    assert axes.vector("a") @ toy_directions()[0] > 0.99


def test_grid_file_draws_every_axis_by_default(discovered, tmp_path):
    editor = jobs.open_editor(discovered.axes_path, "cpu")
    assert jobs.grid_file(editor, None, [0], 2.0, 3, [], tmp_path / "g.png", 16) == editor.axes.names
    assert (tmp_path / "g.png").exists()


@pytest.mark.parametrize("text, box", [("center", None), ("0.1,0.2,0.5", (0.1, 0.2, 0.5))])
def test_parse_crop(text, box):
    assert jobs.parse_crop(text) == box


@pytest.mark.parametrize("text", ["0.1,0.2", "a,b,c", "0.1,0.2,1.5", "middle"])
def test_parse_crop_refuses_bad_boxes(text):
    with pytest.raises(InputError, match="X0,Y0,SIDE"):
        jobs.parse_crop(text)


def test_parse_renames():
    assert jobs.parse_renames(["wearing_hat=hat", " a = b "]) == {"wearing_hat": "hat", "a": "b"}
    with pytest.raises(InputError, match="OLD=NEW"):
        jobs.parse_renames(["hat"])


def test_train_needs_some_faces():
    with pytest.raises(InputError, match="give the labelled faces"):
        jobs.gather_faces()


def test_label_extractor_choice():
    assert jobs.label_extractor(["a"], "none") is None
    assert jobs.label_extractor(["a"], "toy-linear") == "toy-linear"
    with pytest.raises(TLGANError, match="unknown extractor 'nope'"):
        jobs.label_extractor(["a"], "nope")


def test_showcase_latents_asks_the_extractor_and_a_combined_one_asks_its_part(toy):
    from tlgan.extractors import CombinedExtractor
    from tlgan.pipeline import showcase_latents
    from tlgan.toy import ToyLinearExtractor

    class Positive(ToyLinearExtractor):  # clear examples: feature a > 0
        has_showcase = True

        def showcase(self, labels):
            return labels[:, 0] > 0

    class Other(ToyLinearExtractor):
        name = "other"
        features = tuple(type(f)(f"o_{f.name}", f.kind) for f in ToyLinearExtractor.features)

        def extract(self, images):  # the opposite signs: a wrong column slice would pick a < 0
            return -super().extract(images)

    gen, plain = toy
    z = gen.sample(64, 5)
    assert (showcase_latents(gen, plain, 3, 5) == z[:3]).all()  # no declared choice: the first latents
    a = plain(gen.render(z))[:, 0]
    for ext in (Positive("cpu"), CombinedExtractor([Other("cpu"), Positive("cpu")])):
        assert ext.has_showcase
        picked = showcase_latents(gen, ext, 3, 5)
        assert (picked == z[a > 0][:3]).all()


def test_discover_draws_the_extractors_declared_summary_by_default(tmp_path):
    """With no rows asked for, the figure shows what the extractor declares worth showing (a non-face one too)."""
    gen, ext = jobs.load_models("toy-linear", "toy-linear", "cpu")
    plain = jobs.discover(tmp_path / "plain", gen, ext, 600)
    assert plain.figure is None  # the toy extractor declares no summary features
    ext.summary, ext.summary_locks = ("c", "a"), ("b",)
    shown = jobs.discover(tmp_path / "shown", gen, ext, 600)
    assert shown.figure is not None and shown.figure.exists()


def test_label_extractor_auto_asks_what_the_default_extractor_declares():
    assert jobs.label_extractor(["male", "age"], "auto") == jobs.DEFAULT_EXTRACTOR
    assert jobs.label_extractor(["male", "wears_a_hat"], "auto") is None


def test_edit_decides_seed_latent_or_inversion_and_says_what_moved(discovered, tmp_path):
    z = discovered.run.noise[0]
    seeded = jobs.edit(discovered.axes_path, ["a=+2"], ["b"], tmp_path / "seed.png", seed=3, device="cpu",
                       save_latent=tmp_path / "seed.npy")
    assert seeded.inversion is None and seeded.said() == "a=+2 locking b" and (tmp_path / "seed.png").exists()
    np.save(tmp_path / "z.npy", z)
    from_file = jobs.edit(discovered.axes_path, {"a": -1.0}, (), tmp_path / "z.png", latent=tmp_path / "z.npy",
                          device="cpu")
    assert from_file.latent.shape == z.shape and not np.allclose(from_file.latent, z)
    with pytest.raises(InputError, match="NAME=AMOUNT"):
        jobs.edit(discovered.axes_path, ["a+2"], (), tmp_path / "bad.png", device="cpu")
    assert not (tmp_path / "bad.png").exists()
