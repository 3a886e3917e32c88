"""Training your own extractor: CelebA-format and CSV data, the probe and the CNN on problems with a known
answer, refusals, and a trained extractor used by name by relabel / fit / sample (on the toy, in seconds)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from model_support import need_models
from tlgan.axes import Axes
from tlgan.cli import main
from tlgan.extractors import load_extractor
from tlgan.extractors.faces import FEATURES
from tlgan.extractors.learned import TrainedExtractorError, read_config, shipped_probe
from tlgan.extractors.trained import TrainedExtractor
from tlgan.labels import LabelStore, load_labels
from tlgan.sample import open_run, sample
from tlgan.toy import toy_directions
from tlgan.train import (CELEBA_CROP, TrainError, celeba_box, fit_cnn, fit_probe, from_celeba, from_csv_folder,
                         train_extractor)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private $TLGAN_HOME: trained extractors land in home/extractors."""
    monkeypatch.setenv("TLGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def cli(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


# ---------------------------------------------------------------- a tiny CelebA-format data set

ATTRS = ["5_o_Clock_Shadow", "Eyeglasses", "Wearing_Hat"]


def face_image(rng, glasses: bool, hat: bool, w: int = 178, h: int = 218) -> Image.Image:
    """A CelebA-sized noisy picture; 'eyeglasses' = a bright bar across the eyes (inside the face crop),
    'hat' = a dark bar at the top of the crop."""
    x = rng.integers(60, 140, (h, w, 3)).astype(np.uint8)
    x0, y0, x1, y1 = (int(v) for v in celeba_box(w, h))
    if glasses:
        x[y0 + 40:y0 + 60, x0 + 15:x1 - 15] = 250
    if hat:
        x[y0:y0 + 22, x0:x1] = 10
    return Image.fromarray(x)


@pytest.fixture
def celeba(tmp_path):
    """80 images; Eyeglasses every third, Wearing_Hat every fourth, the shadow attribute random noise;
    partition: 50 train, 10 validation, 20 test."""
    rng = np.random.default_rng(0)
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    rows, parts = [], []
    for i in range(80):
        name = f"{i + 1:06d}.jpg"
        glasses, hat = i % 3 == 0, i % 4 == 0
        face_image(rng, glasses, hat).save(root / "img_align_celeba" / name, quality=95)
        vals = [rng.choice([-1, 1]), 1 if glasses else -1, 1 if hat else -1]
        rows.append(name + " " + " ".join(f"{v:2d}" for v in vals))
        parts.append(f"{name} {0 if i < 50 else 1 if i < 60 else 2}")
    (root / "list_attr_celeba.txt").write_text(f"80\n{' '.join(ATTRS)}\n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


def test_celeba_reader_crops_partitions_and_renames(celeba):
    d = from_celeba(celeba, rename={"Wearing_Hat": "hat"})
    assert d.features == ["5_o_clock_shadow", "eyeglasses", "hat"] and d.images.shape == (80, 64, 64, 3)
    assert list(np.bincount(d.split)) == [50, 10, 20]
    glasses = d.y[:, 1] == 1
    assert glasses.sum() == 27 and (d.y[:, 2] == 1).sum() == 20
    # the crop keeps the bar: rows ~40/118..60/118 of the crop are bright on glasses faces only
    band = d.images[:, 23:33, 12:52].mean(axis=(1, 2, 3))
    assert band[glasses].min() > 200 > 150 > band[~glasses].max()
    sub = from_celeba(celeba, ["eyeglasses"], limit=30)
    assert sub.features == ["eyeglasses"] and len(sub) == 30
    assert CELEBA_CROP[2] < 1


@pytest.mark.parametrize("change, message", [
    (lambda root: (root / "list_attr_celeba.txt").unlink(), "no list_attr_celeba.txt"),
    (lambda root: (root / "img_align_celeba" / "000003.jpg").unlink(), "image 000003.jpg listed"),
    (lambda root: (root / "list_attr_celeba.txt").write_text("1\nA B\nx.jpg 1 7\n"), "values must be 1 or -1"),
])
def test_celeba_problems_get_a_message(celeba, change, message):
    change(celeba)
    with pytest.raises(TrainError, match=message):
        from_celeba(celeba)


def test_unknown_celeba_attribute(celeba):
    with pytest.raises(TrainError, match="no attribute smiling"):
        from_celeba(celeba, ["Smiling"])


def test_probe_on_celeba_scores_the_test_partition_and_is_found_by_name(celeba, home, toy):
    data = from_celeba(celeba, ["Eyeglasses", "Wearing_Hat"])
    res = train_extractor("celeb-probe", data, "probe", "pixels", log=None)
    by = {r.feature: r for r in res.results}
    assert by["eyeglasses"].evaluation == "test partition" and by["eyeglasses"].n_eval == 20
    assert by["eyeglasses"].auc > 0.95 and by["wearing_hat"].auc > 0.95
    folder = home / "extractors" / "celeb-probe"
    cfg = read_config(folder)
    assert cfg["kind"] == "probe" and cfg["input"] == "pixels" and cfg["metrics"]["eyeglasses"]["auc"] > 0.95
    assert sorted(p.name for p in folder.iterdir()) == ["extractor.json", "weights.safetensors"]
    ext = load_extractor("celeb-probe", "cpu")
    assert not ext.has_descriptor  # a probe on pixels has no face descriptor to measure identity with
    p = ext(torch.from_numpy(data.images))
    assert p.shape == (len(data), 2) and ((p[:, 0] > 0.5) == (data.y[:, 0] == 1)).mean() > 0.95
    both = load_extractor("toy-linear+celeb-probe", "cpu")  # combined with another extractor
    assert both.feature_names == ["a", "b", "p", "c", "eyeglasses", "wearing_hat"]
    with pytest.raises(TrainError, match="exists already"):
        train_extractor("celeb-probe", data, "probe", "pixels", log=None)
    train_extractor("celeb-probe", data, "probe", "pixels", overwrite=True, log=None)


@need_models("faceres")
def test_a_probe_on_faceres_offers_the_face_descriptor(celeba, tmp_path, monkeypatch):
    from tlgan import weights

    home = tmp_path / "home"
    home.mkdir()
    (home / "weights").symlink_to(weights.cache_dir())  # the fetched models, an empty extractor folder
    monkeypatch.setenv("TLGAN_HOME", str(home))
    data = from_celeba(celeba, ["Eyeglasses"])
    train_extractor("celeb-faceres", data, "probe", "faceres", log=None)
    ext = load_extractor("celeb-faceres", "cpu")
    assert ext.has_descriptor  # so `tlgan evaluate` measures identity with it
    d = ext.descriptor(torch.from_numpy(data.images[:3]))
    assert d.shape == (3, 1024) and np.isfinite(d).all()


# ---------------------------------------------------------------- the CSV folder format


def test_csv_folder_with_blanks(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["image,eyeglasses,hat"]
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(tmp_path / f"f{i}.png")
        lines.append(f"f{i}.png,{i % 2},{'' if i < 4 else (i // 2) % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    d = from_csv_folder(tmp_path)
    assert d.features == ["eyeglasses", "hat"] and d.images.shape == (12, 64, 64, 3)
    assert np.isnan(d.y[:4, 1]).all() and d.counts()["eyeglasses"] == (6, 6)
    assert from_csv_folder(tmp_path, ["hat"], size=32).images.shape == (12, 32, 32, 3)
    (tmp_path / "labels.csv").write_text("image,eyeglasses\nf0.png,2\n")
    with pytest.raises(TrainError, match="line 2: eyeglasses = '2'; use 1, 0 or leave it blank"):
        from_csv_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,eyeglasses\nf0.png,1\n")
    with pytest.raises(TrainError, match="first column must be named 'image'"):
        from_csv_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("image,eyeglasses\nnope.png,1\n")
    with pytest.raises(TrainError, match="image nope.png listed"):
        from_csv_folder(tmp_path)


# ---------------------------------------------------------------- learners on problems with a known answer


def test_probe_recovers_a_known_linear_rule():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 20))
    w = np.zeros(20)
    w[:3] = [2.0, -1.0, 0.5]
    y = ((x @ w + 0.3 * rng.standard_normal(400)) > 0).astype(float)[:, None]
    fit = fit_probe(x * 3 + 5, y, ["rule"])  # the probe standardises; its weights act on the raw inputs
    r = fit.results[0]
    assert r.evaluation == "5-fold nested cross-validation" and r.n_eval == 400
    assert r.auc > 0.95 and r.accuracy > 0.85
    cos = fit.weight[0] @ w / np.linalg.norm(fit.weight[0]) / np.linalg.norm(w)
    assert cos > 0.95
    p = 1 / (1 + np.exp(-((x * 3 + 5) @ fit.weight[0] + fit.bias[0])))
    assert ((p > 0.5) == (y[:, 0] == 1)).mean() > 0.9


@pytest.mark.parametrize("y, message", [
    (np.ones(40), "all 40 labels are 1"),
    (np.r_[np.ones(5), np.zeros(35)], "only 5 yes and 35 no; need at least 10 of each"),
])
def test_one_class_or_too_few_labels_are_refused(y, message):
    with pytest.raises(TrainError, match=message):
        fit_probe(np.random.default_rng(0).standard_normal((len(y), 4)), y[:, None], ["f"])


def test_cnn_learns_a_bright_square():
    rng = np.random.default_rng(0)
    n = 320
    images = rng.integers(40, 120, (n, 64, 64, 3)).astype(np.uint8)
    y = (np.arange(n) % 2).astype(np.float32)
    for i in np.flatnonzero(y):
        r, c = rng.integers(8, 40, 2)
        images[i, r:r + 14, c:c + 14] = 255
    y2 = y.copy()[:, None].repeat(2, 1)
    y2[::3, 1] = np.nan  # unlabelled entries of the second feature are left out of the loss
    fit = fit_cnn(images, y2, ["square", "square_too"], epochs=6, batch_size=32, seed=0)
    r = fit.results[0]
    assert r.evaluation == "test rows" and r.n_eval == 32 and r.auc > 0.9
    assert len(fit.history) == 6


def test_cnn_extractor_round_trips(tmp_path, home):
    rng = np.random.default_rng(0)
    images = rng.integers(40, 120, (120, 64, 64, 3)).astype(np.uint8)
    y = (np.arange(120) % 2).astype(np.float32)
    images[y == 1, 20:40, 20:40] = 255
    from tlgan.train import Dataset

    res = train_extractor("tiny-cnn", Dataset(images, ["square"], y[:, None]), "cnn", epochs=2, log=None)
    ext = load_extractor("tiny-cnn", "cpu")
    assert isinstance(ext, TrainedExtractor) and ext.kind == "cnn" and res.kind == "cnn"
    p = ext(torch.from_numpy(images))
    assert p.shape == (120, 1) and np.isfinite(p).all()
    # the same network, once more from the files
    again = TrainedExtractor(home / "extractors" / "tiny-cnn", "cpu")
    np.testing.assert_allclose(again(torch.from_numpy(images[:8])), p[:8], rtol=1e-5, atol=1e-6)


def test_damaged_extractor_folders_are_refused(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    with pytest.raises(TrainedExtractorError, match="not a trained extractor"):
        TrainedExtractor(folder)
    (folder / "extractor.json").write_text(json.dumps({"format": 99, "kind": "probe"}))
    with pytest.raises(TrainedExtractorError, match="format 99"):
        TrainedExtractor(folder)
    (folder / "extractor.json").write_text(json.dumps({"format": 1, "kind": "probe", "features": [{"name": "a"}]}))
    with pytest.raises(TrainedExtractorError, match="cannot read"):
        TrainedExtractor(folder)


# ---------------------------------------------------------------- the whole loop on the toy, through the CLI


def test_label_train_relabel_fit_on_the_toy(tmp_path, home, toy):
    """Hand labels -> train-extractor -> relabel a run with it -> fit: the axis is the labelled direction."""
    gen, ext = toy
    labels = tmp_path / "l.jsonl"
    store = LabelStore(labels, gen.name)
    z = gen.sample(300, 9)
    for i in range(300):
        store.add(9, i, "bright2", int(z[i] @ toy_directions()[2] > 0))
    out = cli("train-extractor", "toyp", "--labels", labels, "--probe-input", "pixels", "--device", "cpu").output
    assert "bright2" in out and "AUC" in out and "tlgan relabel RUN -e toyp" in out
    run = sample(tmp_path / "run", gen, ext, n=2000, seed=1, chunk=500, save_images=True, progress=False)
    out = cli("relabel", run.path, "-e", "toyp", "--device", "cpu").output
    assert "labelled 2000 images with toyp" in out and "img/s" in out
    assert open_run(run.path).label_sets == ["toy-linear", "toyp"]
    cli("fit", run.path, "--labels", "toyp", "--out", tmp_path / "axes.safetensors")
    axes = Axes.load(tmp_path / "axes.safetensors")
    assert axes.meta["extractor"] == "toyp" and axes.vector("bright2") @ toy_directions()[2] > 0.95
    cli("sample", "-g", "toy-linear", "-e", "toy-linear+toyp", "-n", 64, "--out", tmp_path / "both", "--device", "cpu")
    assert open_run(tmp_path / "both").labels().shape == (64, 5)
    assert "toyp" in cli("plugins").output
    r = cli("train-extractor", "toyp", "--labels", labels, "--probe-input", "pixels", ok=False)
    assert "exists already" in r.output and "--force" in r.output
    r = cli("train-extractor", "faces", "--labels", labels, "--probe-input", "pixels", ok=False)
    assert "name of a built-in extractor" in r.output
    r = cli("train-extractor", "a+b", "--labels", labels, ok=False)
    assert "is not valid" in r.output and "Traceback" not in r.output
    r = cli("train-extractor", "few", "--labels", labels, "--probe-input", "pixels", "--min-per-class", 1000, ok=False)
    assert "need at least 1000 of each" in r.output and "Traceback" not in r.output
    r = cli("train-extractor", "none", ok=False)
    assert "--labels FILE, --celeba FOLDER and/or --csv FOLDER" in r.output


# ---------------------------------------------------------------- the features tlgan ships


def test_shipped_labels_and_probes():
    from tlgan.extractors.learned import shipped_folder

    names = [f.name for f in FEATURES]
    assert names[-3:] == ["eyeglasses", "hat", "beard"] and names[:2] == ["face_found", "male"]
    probe = shipped_probe()
    assert probe.input == "faceres" and probe.weight.shape == (3, 1024)
    cfg = read_config(shipped_folder())
    for f in ("eyeglasses", "hat"):
        assert cfg["metrics"][f]["auc"] > 0.85 and cfg["metrics"][f]["evaluation"].endswith("cross-validation")
    files = sorted(shipped_folder().parent.glob("labels/*.jsonl"))
    table = load_labels(files)
    assert table.generator == "digiface-dcgan" and len(table) >= 300
    for f in ("eyeglasses", "hat"):
        yes, no = table.counts()[f]
        assert yes >= 40 and yes + no >= 300


@need_models("digiface-dcgan", "faceres")
@pytest.mark.models
def test_shipped_probes_read_the_labelled_faces():
    """The shipped probes on faceres descriptors agree with the hand labels of the first 96 faces."""
    from tlgan.extractors.human import FaceRes
    from tlgan.extractors.learned import shipped_folder
    from tlgan.generators import load_generator
    from tlgan.train import auc

    table = load_labels(sorted(shipped_folder().parent.glob("labels/*.jsonl")))
    keep = table.indices < 96
    gen = load_generator(table.generator, "cpu")
    z = table.latents(gen)[keep]
    p = shipped_probe()(FaceRes("cpu")(gen.render(z)).descriptor.numpy())
    for j, f in enumerate(["eyeglasses", "hat"]):
        y = table.column(f)[keep]
        ok = np.isfinite(y)
        assert auc(y[ok] == 1, p[ok, j]) > 0.9
