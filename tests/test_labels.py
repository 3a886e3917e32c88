"""Hand labels: prefix-stable latents, the JSON Lines store (append, override, resume, refuse), label pages,
uncertainty suggestions, axes straight from labelled latents, and the `label` / `fit-labels` commands."""

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tlgan.axes import Axes
from tlgan.cli import main
from tlgan.generators import Generator
from tlgan.labels import FaceSource, LabelError, Labeller, LabelStore, RunSource, canonical_latents, fit_label_axes, load_labels
from tlgan.sample import sample
from tlgan.toy import toy_directions


class Dim100(Generator):
    """Only the latent draw of a 100-d generator (the DCGAN's latent size), no network."""

    name = "dim100"
    latent_dim = 100
    resolution = 8

    def synthesize(self, z):  # pragma: no cover - never rendered
        raise NotImplementedError


@pytest.mark.parametrize("dim", [16, 100, 7])
def test_latent_draws_are_prefix_stable(dim):
    """(seed, i) names one latent: sample(n, seed)[i] == sample(m, seed)[i] for any n, m > i.

    torch's CPU sampler alone is not prefix-stable (it redraws the last 16 values of a draw whose size is
    not a multiple of 16); Generator.sample draws whole blocks of 16 rows so that it is."""
    gen = Dim100("cpu")
    gen.latent_dim = dim
    big = gen.sample(1000, 42)
    for m in (1, 2, 3, 5, 16, 17, 50, 333, 999):
        np.testing.assert_array_equal(gen.sample(m, 42), big[:m])
    assert not np.array_equal(gen.sample(5, 43), big[:5])
    np.testing.assert_array_equal(canonical_latents(50, dim, 42), big[:50])


def test_store_appends_overrides_and_resumes(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path, "toy-linear")
    store.add(0, 3, "bright", 1)
    store.add(0, 4, "bright", "no")
    store.add(0, 5, "bright", True)
    store.add(0, 3, "bright", 0)        # overrides the first label
    store.add(0, 5, "bright", None)     # skip: withdraws the label of face 5
    store.add(7, 3, "hat", 1)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["generator"] == "toy-linear" and lines[0]["feature"] == "bright"
    assert {"generator", "seed", "index", "feature", "label", "time"} <= set(lines[0])
    assert lines[4]["label"] is None and lines[2]["label"] == 1
    again = LabelStore(path)  # a new session reads the same state back
    assert again.generator == "toy-linear"
    assert again.labelled("bright") == {(0, 3): 0, (0, 4): 0}
    assert again.counts("bright") == (0, 2) and again.counts("hat") == (1, 0)
    assert again.get(7, 3, "hat") == 1 and again.get(0, 5, "bright") is None
    table = again.table()
    assert table.features == ["bright", "hat"]
    assert [(int(s), int(i)) for s, i in zip(table.seeds, table.indices, strict=True)] == [(0, 3), (0, 4), (7, 3)]
    np.testing.assert_array_equal(table.y, [[0, np.nan], [0, np.nan], [np.nan, 1]])


@pytest.mark.parametrize("args, message", [
    ((0, 1, "bright", 2), "label 2 is not valid"),
    ((0, 1, "bright", "maybe"), "label 'maybe' is not valid"),
    ((0, 1, "Eye Glasses", 1), "feature name 'Eye Glasses' is not valid"),
    ((0, -1, "bright", 1), "index -1 is not valid"),
    ((-3, 1, "bright", 1), "seed -3 is not valid"),
    ((0, 1.5, "bright", 1), "index 1.5 is not valid"),
])
def test_bad_labels_are_refused_and_nothing_is_written(tmp_path, args, message):
    store = LabelStore(tmp_path / "l.jsonl", "toy-linear")
    with pytest.raises(LabelError, match=message):
        store.add(*args)
    assert not (tmp_path / "l.jsonl").exists()


def test_files_of_another_generator_or_damaged_are_refused(tmp_path):
    path = tmp_path / "l.jsonl"
    LabelStore(path, "toy-linear").add(0, 1, "bright", 1)
    with pytest.raises(LabelError, match="holds labels of generator 'toy-linear', not 'digiface-dcgan'"):
        LabelStore(path, "digiface-dcgan")
    store = LabelStore(path)
    with pytest.raises(LabelError, match="not 'other'"):
        store.add(0, 2, "bright", 1, generator="other")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(path.read_text() + json.dumps({"generator": "other", "seed": 0, "index": 1,
                                                    "feature": "bright", "label": 1}) + "\n")
    with pytest.raises(LabelError, match="line 2: label for generator 'other'"):
        LabelStore(mixed)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n" + path.read_text())
    with pytest.raises(LabelError, match="line 1"):
        LabelStore(broken)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"generator": "toy-linear", "seed": 0, "index": 1, "label": 1}) + "\n")
    with pytest.raises(LabelError, match="line 1: missing feature"):
        LabelStore(missing)


def test_a_half_written_last_line_is_dropped_and_appending_goes_on(tmp_path):
    """A crash mid-write leaves a partial last line: it is ignored (with a warning), the rest is kept."""
    path = tmp_path / "l.jsonl"
    store = LabelStore(path, "toy-linear")
    store.add(0, 1, "bright", 1)
    store.add(0, 2, "bright", 0)
    path.write_text(path.read_text() + '{"generator": "toy-linear", "seed": 0, "ind')
    with pytest.warns(UserWarning, match="ignoring the unfinished last line 3"):
        again = LabelStore(path)
    assert again.labelled("bright") == {(0, 1): 1, (0, 2): 0}
    again.add(0, 3, "bright", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new line starts on its own line: no warning now
        assert LabelStore(path).labelled("bright") == {(0, 1): 1, (0, 2): 0, (0, 3): 1}


def test_table_latents_are_the_seeds_draws(tmp_path, toy):
    gen, _ = toy
    store = LabelStore(tmp_path / "l.jsonl", gen.name)
    for seed, i in [(5, 0), (5, 9), (6, 2)]:
        store.add(seed, i, "bright", 1)
    table = load_labels(tmp_path / "l.jsonl")
    z = table.latents(gen)
    np.testing.assert_array_equal(z, np.stack([gen.sample(10, 5)[0], gen.sample(10, 5)[9], gen.sample(3, 6)[2]]))
    assert table.images(gen).shape == (3, 8, 8, 3)
    with pytest.raises(LabelError, match="no labels for feature 'hat'"):
        table.column("hat")


def toy_labels(store, gen, n, seed=0, feature="p"):
    """Label the first n toy faces of ``seed`` with the truth of the toy's binary feature p (z . e2 > 0)."""
    z = gen.sample(n, seed)
    for i in range(n):
        store.add(seed, i, feature, int(z[i] @ toy_directions()[2] > 0))
    return z


def test_labeller_pages_resume_and_refuse_faces_outside_the_source(tmp_path, toy):
    gen, ext = toy
    run = sample(tmp_path / "run", gen, ext, n=60, seed=3, chunk=16, save_images=True, progress=False)
    source = RunSource(run.path)
    assert source.generator_name == "toy-linear" and source.seed == 3 and source.n == 60 and not source.excluded
    np.testing.assert_array_equal(source.images([5, 1, 40]), run.images[:][[5, 1, 40]])
    np.testing.assert_array_equal(source.latents([5, 1]), gen.sample(6, 3)[[5, 1]])
    fresh = FaceSource(gen.name, 3, None, gen)
    np.testing.assert_array_equal(fresh.images([5, 1, 40]), run.images[:][[5, 1, 40]])  # same (seed, index)

    lab = Labeller(source, LabelStore(tmp_path / "l.jsonl", "toy-linear"), page_size=24, embedder="pixels")
    assert lab.pages == 3
    page = lab.page(2, "bright")
    assert page.indices == list(range(48, 60)) and page.labels == [None] * 12
    assert lab.resume_page("bright") == 0
    for i in range(30):
        lab.set_label("bright", i, i % 2)
    assert lab.resume_page("bright") == 1  # face 30 is the first unlabelled one
    assert lab.page(1, "bright").labels[:7] == [0, 1, 0, 1, 0, 1, None] and lab.counts("bright") == (15, 15)
    with pytest.raises(LabelError, match="out of range"):
        lab.set_label("bright", 60, 1)
    with pytest.raises(LabelError, match="page 3 does not exist"):
        lab.page(3, "bright")
    with pytest.raises(LabelError, match="holds labels of generator 'toy-linear'"):
        Labeller(FaceSource("digiface-dcgan", 0, None, gen), lab.store)


def test_suggestions_are_the_faces_the_probe_is_least_sure_about(tmp_path, toy):
    gen, _ = toy
    store = LabelStore(tmp_path / "l.jsonl", gen.name)
    lab = Labeller(FaceSource(gen.name, 0, None, gen), store, page_size=12, embedder="pixels")
    toy_labels(store, gen, 10)
    with pytest.raises(LabelError, match="suggestions start at 20 labels of each class"):
        lab.suggest("p")
    toy_labels(store, gen, 80)
    page, message = lab.suggest("p", pool=200)
    assert len(page.indices) == 12 and not set(page.indices) & set(range(80))
    assert "least sure" in message
    margin = np.abs(gen.sample(1000, 0) @ toy_directions()[2])
    # the suggested faces lie near the class boundary z . e2 = 0
    assert np.median(margin[page.indices]) < 0.25 * np.median(margin[80:])


def test_fit_label_axes_recovers_the_labelled_direction(tmp_path, toy):
    gen, _ = toy
    store = LabelStore(tmp_path / "l.jsonl", gen.name)
    toy_labels(store, gen, 400, seed=1)
    axes = fit_label_axes(load_labels(tmp_path / "l.jsonl"), gen, source="l.jsonl")
    assert axes.names == ["p"] and axes.meta["generator"] == "toy-linear" and "extractor" not in axes.meta
    assert axes.vector("p") @ toy_directions()[2] > 0.95
    assert axes.metrics["p"]["auc"] > 0.95


def cli(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_label_sheets_and_fit_labels_commands(tmp_path, toy):
    gen, _ = toy
    labels = tmp_path / "l.jsonl"
    store = LabelStore(labels, gen.name)
    toy_labels(store, gen, 300, seed=0)
    out = cli("label", labels, "-g", "toy-linear", "--sheets", tmp_path / "sheets", "--count", 30, "--page-size", 12,
              "--feature", "p", "--cell", 32, "--device", "cpu").output
    sheets = sorted((tmp_path / "sheets").glob("*.png"))
    assert [p.name for p in sheets] == ["faces-000000.png", "faces-000012.png", "faces-000024.png"]
    assert str(sheets[0]) in out and Image.open(sheets[0]).width == 8 * 36 + 4
    cli("fit-labels", labels, "--feature", "p", "-o", tmp_path / "a.safetensors", "--device", "cpu")
    axes = Axes.load(tmp_path / "a.safetensors")
    assert axes.vector("p") @ toy_directions()[2] > 0.9 and "extractor" not in axes.meta  # toy: no faces
    r = cli("fit-labels", labels, "--feature", "hat", ok=False)
    assert r.exit_code != 0 and "no labels for feature 'hat'" in r.output
    r = cli("fit-labels", labels, "-e", "nope", ok=False)
    assert "unknown extractor 'nope'" in r.output and "Traceback" not in r.output
    r = cli("label", labels, "-g", "toy-linear", "--run", tmp_path / "norun", ok=False)
    assert "is not a tlgan run folder" in r.output
