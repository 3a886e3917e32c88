"""Generate to order and balanced data sets, on the linear toy (whose features are exact linear functions
of z): specs parse or fail with one line, delivered faces meet the spec when relabelled, data sets are
balanced exactly, resume to the same set and load as a Hugging Face imagefolder; animations have their frames."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cli_support import run as cli
from tlgan.extractors import Feature
from tlgan.finders import load_finder
from tlgan.generate.dataset import DatasetError, cell_of, parse_balance
from tlgan.generate.spec import SpecError, parse_spec
from tlgan.pipeline import Editor

FEATURES = (Feature("age", "continuous"), Feature("male", "binary"), Feature("eyeglasses", "binary"),
            Feature("yaw", "continuous"))


def test_spec_forms():
    spec = parse_spec(["age>=60", "male<0.2", "eyeglasses", "yaw=-10..-20"], FEATURES)
    got = {c.feature: (c.lo, c.hi) for c in spec.conditions}
    assert got == {"age": (60, math.inf), "male": (-math.inf, 0.2), "eyeglasses": (0.5, math.inf),
                   "yaw": (-20, -10)}
    assert parse_spec(["!eyeglasses"], FEATURES).conditions[0].hi == 0.5
    both = parse_spec(["age>=20", "age<30"], FEATURES).conditions  # two conditions on one feature: both hold
    assert [(c.lo, c.hi) for c in both] == [(20, 30)]
    labels = np.array([[61, 0.1, 0.9, -15], [61, 0.1, 0.9, -5], [np.nan, 0.1, 0.9, -15]])
    assert spec.holds(labels, [f.name for f in FEATURES]).tolist() == [True, False, False]


@pytest.mark.parametrize("wants, message", [
    (["smile>0.5"], "unknown feature 'smile'"),
    (["age>>60"], "is not a number"),
    (["age=>60"], "takes a range LO..HI"),
    (["age"], "age is continuous, so give a bound"),
    (["male>1.5"], "male is a probability, so its bounds lie in 0..1"),
    (["age=60"], "'=' takes a range"),
    (["age>60", "age<30"], "contradict each other"),
    (["!age>3"], "'!' only goes before a bare binary feature"),
    (["age >= nan"], "finite"),
    ([], "give at least one condition"),
])
def test_bad_specs_are_one_line_errors(wants, message):
    with pytest.raises(SpecError, match=message) as e:
        parse_spec(wants, FEATURES)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def toy_axes():
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    gen, ext = load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")
    z = gen.sample(1000, 0)
    axes = load_finder("glm").find(z, ext(gen.render(z)), list(ext.features),
                                   meta={"generator": gen.name, "latent_space": "z", "extractor": ext.name})
    return gen, ext, axes


def relabel(gen, ext, latents):
    return ext(gen.render(np.asarray(latents)))


RARE = ["a>=1.5", "p", "c<=-1"]  # about 0.07 * 0.5 * 0.16 = 0.5% of random faces


def test_generated_faces_meet_the_spec_when_relabelled(toy_axes, tmp_path):
    from tlgan.jobs import generate_faces

    gen, ext, axes = toy_axes
    res = generate_faces(Editor(gen, axes), ext, RARE, 12, tmp_path / "out", seed=3, baseline=3000)
    assert len(res.faces) == 12
    assert res.spec.holds(relabel(gen, ext, res.latents), ext.feature_names).all()
    assert len({f.index for f in res.faces}) == 12  # twelve different starting faces
    assert res.outcome.renders_per_face < res.baseline_cost  # cheaper than drawing until they match
    rows = [json.loads(x) for x in (tmp_path / "out/faces/metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == [f"face-{k:04d}.png" for k in range(12)]
    assert all((tmp_path / "out/faces" / r["file_name"]).exists() for r in rows)
    assert all(r["a"] >= 1.5 and r["p"] >= 0.5 and r["c"] <= -1 for r in rows)
    start = gen.sample_at(np.array([r["index"] for r in rows]), 3)
    assert np.allclose([r["start_latent"] for r in rows], start, atol=1e-5)  # seed and index name the start
    assert (tmp_path / "out/contact-sheet.png").exists()
    assert json.loads((tmp_path / "out/summary.json").read_text())["delivered"] == 12


def test_kept_features_hold_their_random_value(toy_axes):
    from tlgan.jobs import generate_faces

    gen, ext, axes = toy_axes
    res = generate_faces(Editor(gen, axes), ext, ["a>=1.5"], 6, seed=1, keep=["c"])
    c = ext.feature_names.index("c")
    before, after = relabel(gen, ext, np.stack([f.start for f in res.faces])), relabel(gen, ext, res.latents)
    assert np.abs(after[:, c] - before[:, c]).max() < 0.05  # 8-bit rows of the toy: 1/16 per level
    assert (after[:, 0] >= 1.5).all()


def test_one_given_face_is_steered(toy_axes):
    from tlgan.jobs import generate_faces

    gen, ext, axes = toy_axes
    z = np.zeros(gen.latent_dim, np.float32)
    res = generate_faces(Editor(gen, axes), ext, ["a>=1", "c<=-1"], 1, start=z)
    assert np.array_equal(res.faces[0].start, z)
    assert res.spec.holds(relabel(gen, ext, res.latents), ext.feature_names).all()
    with pytest.raises(Exception, match="use -n 1"):
        generate_faces(Editor(gen, axes), ext, ["a>=1"], 3, start=z)


@pytest.mark.parametrize("wants, message", [
    (["a>=3", "b<=-3"], r"a>=3 and b<=-3 fight each other"),  # b = 0.8 a + 0.6 e1: both need |e1 . z| ~ 9
    (["a>=60"], r"a>=60 is out of reach"),
])
def test_specs_no_face_can_meet_are_named(toy_axes, wants, message):
    from tlgan.jobs import generate_faces

    gen, ext, axes = toy_axes
    with pytest.raises(SpecError, match=message):
        generate_faces(Editor(gen, axes), ext, wants, 4)


def test_local_axes_deliver_too(toy_axes):
    from tlgan.jobs import generate_faces

    gen, ext, _ = toy_axes
    z = gen.sample(1500, 0)
    local = load_finder("local", hidden="32,32", epochs=30, shell=False).find(
        z, ext(gen.render(z)), list(ext.features), meta={"generator": gen.name, "latent_space": "z"})
    res = generate_faces(Editor(gen, local), ext, RARE, 6, seed=5)
    assert res.spec.holds(relabel(gen, ext, res.latents), ext.feature_names).all()
    assert res.outcome.yield_ >= 0.8


# ---------------------------------------------------------------- balanced data sets


def test_balance_parsing():
    assert [(b.feature, b.bins) for b in parse_balance(["male", "age:4"], FEATURES)] == [("male", 2), ("age", 4)]
    for bad, message in [(["nope"], "unknown feature"), (["male:3"], "binary"), (["age:x"], "whole number"),
                         (["age:1"], "2..20 bins"), ([], "at least one")]:
        with pytest.raises(DatasetError, match=message):
            parse_balance(bad, FEATURES)


class Crash(Exception):
    """A process killed mid-run."""


class CrashingExtractor:
    """The toy extractor that stops the process after ``calls`` labelling calls."""

    def __init__(self, ext, calls):
        self.ext, self.calls = ext, calls
        self.name, self.features, self.presence, self.feature_names = ext.name, ext.features, None, ext.feature_names

    def __call__(self, images):
        self.calls -= 1
        if self.calls < 0:
            raise Crash
        return self.ext(images)


def _rows(folder):
    return [json.loads(x) for x in (folder / "train/metadata.jsonl").read_text().splitlines()]


def test_dataset_is_balanced_exactly_and_resumes_to_the_same_set(toy_axes, tmp_path):
    from tlgan.jobs import make_dataset

    gen, ext, axes = toy_axes
    args = (["p", "a:3"], 60)
    whole = make_dataset(Editor(gen, axes), ext, *args, tmp_path / "whole", seed=2, chunk=16, progress=False)
    assert sorted(whole.counts.values()) == [10] * 6
    rows = _rows(tmp_path / "whole")
    relabelled = ext(np.stack([np.asarray(__import__("PIL.Image").Image.open(tmp_path / "whole/train" /
                                                                           r["file_name"])) for r in rows]))
    edges = json.loads((tmp_path / "whole/progress.json").read_text())["edges"]
    cells = cell_of(relabelled, ext.feature_names, parse_balance(["p", "a:3"], ext.features), edges)
    assert cells.tolist() == [r["cell"] for r in rows]  # every saved image is in the cell its row says
    assert np.bincount(cells).tolist() == [10] * 6

    for calls in (2, 4):  # killed after the first chunks (calibration faces, then a chunk or a steer)
        with pytest.raises(Crash):
            make_dataset(Editor(gen, axes), CrashingExtractor(ext, calls), *args, tmp_path / "cut", seed=2,
                         chunk=16, progress=False)
    again = make_dataset(Editor(gen, axes), ext, *args, tmp_path / "cut", seed=2, chunk=16, progress=False)
    assert again.resumed_from > 0
    assert _rows(tmp_path / "cut") == rows
    for r in rows:
        assert (tmp_path / "cut/train" / r["file_name"]).read_bytes() == \
               (tmp_path / "whole/train" / r["file_name"]).read_bytes()
    with pytest.raises(DatasetError, match="other settings"):
        make_dataset(Editor(gen, axes), ext, ["p", "a:3"], 90, tmp_path / "cut", seed=2, chunk=16, progress=False)


def test_dataset_loads_as_a_hugging_face_imagefolder(toy_axes, tmp_path):
    datasets = pytest.importorskip("datasets")
    from tlgan.jobs import make_dataset

    gen, ext, axes = toy_axes
    make_dataset(Editor(gen, axes), ext, ["p"], 8, tmp_path / "d", chunk=16, progress=False, parquet=True)
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "d"))["train"]
    assert len(ds) == 8
    assert {"image", "a", "b", "p", "c", "p_bin", "cell", "seed", "index", "latent", "moves"} <= set(ds.column_names)
    assert ds[0]["image"].size == (8, 8) and sorted(ds["p_bin"]) == [0] * 4 + [1] * 4
    table = datasets.load_dataset("parquet", data_files=str(tmp_path / "d/data.parquet"))["train"]
    assert len(table) == 8 and "image" in table.column_names


# ---------------------------------------------------------------- animations and the command line


def _frames(path):
    import imageio.v3 as iio

    return len(iio.imread(path, index=None))


def test_edit_animation_has_its_frames(toy_axes, tmp_path):
    from tlgan.jobs import animate_edit

    gen, _, axes = toy_axes
    editor = Editor(gen, axes)
    path = animate_edit(editor, editor.latent(0), {"a": 2.0}, ["b"], tmp_path / "move.gif", steps=7)
    assert _frames(path) == 12  # 7 forward, 5 back (the ends are not repeated)
    mp4 = animate_edit(editor, editor.latent(0), {"a": 2.0}, [], tmp_path / "move.mp4", steps=5, size=64)
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(mp4))
    assert next(reader)["size"] == (64, 64) and sum(1 for _ in reader) == 8
    with pytest.raises(Exception, match=r"end its name in \.gif or \.mp4"):
        animate_edit(editor, editor.latent(0), {"a": 2.0}, [], tmp_path / "move.png")


def test_cli_generate_dataset_and_animate(toy_axes, tmp_path):
    _, _, axes = toy_axes
    path = axes.save(tmp_path / "axes.safetensors")
    out = cli("generate", path, "--want", "a>=1", "--want", "p", "-n", 4, "-o", tmp_path / "g",
              "--baseline", 500, "--device", "cpu").output
    assert "4 faces meeting a>=1, p" in out and "rejection sampling" in out
    bad = cli("generate", path, "--want", "a>=60", "-o", tmp_path / "g2", "--device", "cpu", ok=False)
    error = [line for line in bad.output.splitlines() if line.startswith("Error:")]
    assert bad.exit_code == 1 and len(error) == 1 and "a>=60 is out of reach" in error[0]
    assert not (tmp_path / "g2").exists()
    out = cli("dataset", path, "--balance", "p", "-n", 6, "-o", tmp_path / "d", "--chunk", 16,
              "--device", "cpu").output
    assert "6 faces" in out
    cli("grid", path, "--features", "a,c", "--seeds", "0", "--steps", 5, "--animate", tmp_path / "g.gif",
        "-o", tmp_path / "grid.png", "--device", "cpu")
    assert _frames(tmp_path / "g.gif") == 8
    cli("edit", path, "--move", "a=2", "--animate", tmp_path / "e.gif", "-o", tmp_path / "e.png", "--device", "cpu")
    assert _frames(tmp_path / "e.gif") == 12


# ---------------------------------------------------------------- choosing starts, refusing look-alikes


def _calibrated(gen, ext, axes, wants):
    from tlgan.generate.plan import calibrate

    spec = parse_spec(wants, ext.features)
    z = gen.sample(256, 9)
    return spec, calibrate(spec, axes, ext.feature_names, z, ext(gen.render(z)))


def test_starts_nearest_the_spec_are_chosen_without_rendering(toy_axes):
    from tlgan.generate.plan import nearest_draw, shortfall

    gen, ext, axes = toy_axes
    spec, cal = _calibrated(gen, ext, axes, RARE)
    z = gen.sample(400, 4)
    dist = shortfall(spec, axes, cal, z)
    inside = spec.holds(ext(gen.render(z)), ext.feature_names)
    assert dist[inside].mean() < dist[~inside].mean()  # the model's distance ranks faces that meet it first

    drawn = []

    def draw(k):
        drawn.append(k)
        return np.arange(k), z[:k]
    idx, picked = nearest_draw(draw, spec, axes, cal, 8)(50)
    assert drawn == [400] and len(idx) == 50 and list(idx) == sorted(idx)
    assert shortfall(spec, axes, cal, picked).max() <= np.sort(dist)[49] + 1e-9
    # the picked starts meet the rare spec far more often than random faces do
    assert spec.holds(ext(gen.render(picked)), ext.feature_names).mean() > 5 * inside.mean()


def test_faces_already_rendered_are_not_rendered_again(toy_axes):
    from tlgan.generate.plan import steer

    gen, ext, axes = toy_axes
    spec, cal = _calibrated(gen, ext, axes, ["a>=1.5"])
    z = gen.sample(6, 3)
    seen = []

    def measure(latents):
        seen.append(len(latents))
        return ext(gen.render(latents)), None
    labels = ext(gen.render(z))
    queue = list(range(6))

    def draw(k):
        got, queue[:] = queue[:k], queue[k:]
        return np.array(got, int), z[got]
    out = steer(spec, axes, ext.feature_names, measure, draw, 6, calibration=cal, max_started=6,
                measured={i: (labels[i], None) for i in range(6)})
    already = int(spec.holds(labels, ext.feature_names).sum())
    assert out.rendered == sum(seen) and len(out.delivered) + out.gave_up == 6
    assert sum(seen) <= out.rendered and (not seen or seen[0] == 6 - already)  # only the moved faces rendered


def test_near_duplicates_are_refused():
    from tlgan.generate.distinct import Distinct, identity_distances

    rng = np.random.default_rng(0)
    random = rng.normal(size=(40, 256))
    d = identity_distances(random)
    assert d.shape == (40 * 39 // 2,) and np.allclose(identity_distances(random[:2], random[:2]).diagonal(), 0)
    accept = Distinct.from_random(lambda image: image.reshape(-1), random, set_size=10)
    assert accept.threshold < np.quantile(d, 0.05)  # near-duplicates are rarer than random pairs' closest 5%

    class Face:
        def __init__(self, v):
            self.image = np.asarray(v)
    assert accept(Face(random[0])) and accept(Face(random[1]))
    assert not accept(Face(random[0] * 2 + 1e-3))  # the same direction: the same person
    assert accept(Face(random[2]))


def test_near_duplicate_bar_is_what_random_sets_of_that_size_rarely_go_below():
    from tlgan.generate.distinct import identity_distances, near_duplicate_bar

    rng = np.random.default_rng(1)
    pool = rng.normal(size=(600, 256))  # high-dimensional, as descriptors are: distances near normal
    d = pool / np.linalg.norm(pool, axis=1, keepdims=True)
    full = 1 - d @ d.T
    pairs = identity_distances(pool)
    for size in (10, 40):
        bar = near_duplicate_bar(pairs, size)
        closest = [full[np.ix_(k, k)][np.triu_indices(size, 1)].min()
                   for k in (rng.choice(len(pool), size, replace=False) for _ in range(400))]
        below = float(np.mean(np.array(closest) < bar))
        assert 0.01 <= below <= 0.12, (size, below)  # about 5% of random sets have a pair closer than the bar
    assert near_duplicate_bar(pairs, 40) < near_duplicate_bar(pairs, 10)  # more faces, closer closest pair


def test_distinct_faces_have_no_near_duplicates():
    """Faces steered far into a spec crowd together; with ``distinct`` (the default) none arrives nearer to another than random
    sets of as many faces' closest pairs (the bar, from the random faces it is set on): one that would is nudged."""
    import torch

    from tlgan.generate.distinct import identity_distances, near_duplicate_bar
    from tlgan.generate.stream import LatentStream
    from tlgan.jobs import generate_faces
    from tlgan.jobs.core import REFERENCE_FACES
    from tlgan.toy import TOY_DIM, ToyLinearExtractor, ToyLinearGenerator, toy_directions

    class Wide(ToyLinearGenerator):  # every latent dimension painted: the rows past the features are "identity"
        name, resolution = "toy-wide", 16

        def __init__(self, device=None):
            super().__init__(device)
            rows = np.eye(TOY_DIM, dtype=np.float32)
            rows[:4] = toy_directions()
            self.rows = torch.from_numpy(rows)

    class Described(ToyLinearExtractor):
        has_descriptor = True

        def descriptor(self, images):
            return images.float().mean(dim=(2, 3)).cpu().numpy() - 127.5

    gen, ext = Wide("cpu"), Described("cpu")
    z = gen.sample(1000, 0)
    axes = load_finder("glm").find(z, ext(gen.render(z)), list(ext.features),
                                   meta={"generator": gen.name, "latent_space": "z", "extractor": ext.name})
    _, z_ref = LatentStream(gen, 2).draw(REFERENCE_FACES)  # the random faces generate_faces sets its bar on
    bar = near_duplicate_bar(identity_distances(ext.descriptor(gen.render(z_ref))), 24)
    wants = ["a>=2.5", "c<=-2.5", "p"]

    def closest(distinct):
        res = generate_faces(Editor(gen, axes), ext, wants, 24, seed=0, distinct=distinct)
        assert len(res.faces) == 24
        return identity_distances(ext.descriptor(torch.from_numpy(res.images))).min(), res.outcome.duplicates
    crowded, _ = closest(False)
    spread, refused = closest(None)  # the default: on, since this extractor can tell faces apart
    assert crowded < bar <= spread and refused >= 1


def test_full_cells_send_faces_to_the_nearest_short_cell_and_rare_cells_get_their_share(toy_axes):
    from tlgan.generate.dataset import bin_edges, cell_of, nearest_cell, pick_for_cells
    from tlgan.generate.plan import calibrate
    from tlgan.generate.spec import Condition, Spec

    balances = parse_balance(["p", "a:4"], [Feature("p", "binary"), Feature("a", "continuous")])
    need = np.array([0, 0, 5, 5, 0, 0, 0, 0])  # cells p=0,a=2 and p=0,a=3 short
    assert nearest_cell(6, need, balances) == 2  # p=1,a=2 -> p=0,a=2: one bin away, not two
    assert nearest_cell(7, need, balances) == 3
    assert nearest_cell(0, np.zeros(8), balances) is None

    gen, ext, axes = toy_axes
    z = gen.sample(512, 6)
    labels = ext(gen.render(z))
    edges = bin_edges(balances, labels, ext.feature_names)
    cal = calibrate(Spec((Condition("p", "binary"), Condition("a", "continuous"))), axes, ext.feature_names, z,
                    labels)
    need = np.array([0, 0, 0, 30, 0, 0, 0, 10])
    idx, picked = pick_for_cells(z, np.arange(512), need, balances, edges, axes, cal, 40)
    cells = cell_of(ext(gen.render(picked)), ext.feature_names, balances, edges)
    random_cells = cell_of(labels, ext.feature_names, balances, edges)
    assert len(idx) == 40 and list(idx) == sorted(idx)
    assert (cells == 3).mean() > 3 * (random_cells == 3).mean()  # the rare cell gets faces near it


def test_faces_still_closing_in_earn_more_tries(toy_axes):
    from tlgan.generate.plan import measured_gap, steer

    gen, ext, axes = toy_axes
    spec, cal = _calibrated(gen, ext, axes, RARE)
    labels = ext(gen.render(gen.sample(64, 9)))
    gaps = [measured_gap(spec, row, ext.feature_names, cal) for row in labels]
    met = spec.holds(labels, ext.feature_names)
    assert all(g == 0 for g, m in zip(gaps, met, strict=True) if m) and all(g > 0 for g, m in zip(gaps, met, strict=True) if not m)

    def run(extra):
        stream = iter(range(10_000))

        def draw(k):
            i = np.array([next(stream) for _ in range(k)])
            return i, gen.sample_at(i, 11)
        return steer(spec, axes, ext.feature_names, lambda z: (ext(gen.render(z)), None), draw, 8, max_tries=1,
                     calibration=cal, max_started=200, extra_tries=extra)
    strict, patient = run(0), run(4)
    assert max(f.tries for f in strict.delivered) <= 1 < max(f.tries for f in patient.delivered)
    assert patient.yield_ > strict.yield_


def test_a_start_the_extractor_cannot_read_is_moved_by_the_axes_models(toy_axes):
    """A starting face whose features the extractor cannot read (NaN, as when no face is found) is moved where the
    axes' models say the spec lies, not given up: here nothing reads while a < 0, and a >= 1.5 is wanted."""
    from tlgan.generate.plan import steer

    gen, ext, axes = toy_axes
    spec, cal = _calibrated(gen, ext, axes, ["a>=1.5"])
    names = ext.feature_names
    col = names.index("a")

    def measure(z):
        labels = np.asarray(ext(gen.render(z)), np.float64)
        labels[labels[:, col] < 0] = np.nan
        return labels, None
    stream = iter(range(10_000))

    def draw(k):
        i = np.array([next(stream) for _ in range(k)])
        return i, gen.sample_at(i, 4)
    out = steer(spec, axes, names, measure, draw, 12, calibration=cal, max_started=100)
    unreadable = [f for f in out.delivered if np.isnan(measure(f.start[None])[0]).all()]
    assert len(out.delivered) == 12 and len(unreadable) >= 3
    assert out.yield_ == 1.0  # none of the unreadable starts was given up
