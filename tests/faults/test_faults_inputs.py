"""Fault suite: malformed extractor folders, label files, axes files and oversized requests give one clear line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_support import run
from fault_support import GOOD, axes_file, make_run, one_line, run_cli
from tlgan.errors import TLGANError

# ---------------------------------------------------------------- item 5: a malformed extractor folder


@pytest.mark.parametrize("config", [
    {"format": 1, "kind": "probe"},
    {"format": 1, "kind": "probe", "features": "age"},
    {"format": 1, "kind": "cnn", "features": [{"kind": "binary"}]},
    {"format": 1, "kind": "cnn", "features": [{"name": 3}]},
    {"format": 1, "kind": "cnn", "features": [{"name": "x"}], "architecture": [1]},
    [1, 2],
])
def test_malformed_extractor_folder_is_skipped_and_named(home, config):
    from tlgan.extractors import EXTRACTORS, load_extractor
    from tlgan.extractors.trained import _registered, register_trained

    name = "broken-probe"
    folder = home / "extractors" / name
    folder.mkdir(parents=True)
    (folder / "extractor.json").write_text(json.dumps(config))
    try:
        with pytest.warns(UserWarning, match=f"skipping trained extractor '{name}'.*extractor.json"):
            assert register_trained(name)
        assert "BROKEN" in EXTRACTORS.describe(name)
        # Other commands still work; asking for the broken one by name says what is wrong with it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert run("plugins").exit_code == 0
        with pytest.raises(TLGANError, match=str(folder)):
            load_extractor(name, "cpu")
        load_extractor("toy-linear", "cpu")
    finally:
        EXTRACTORS._factories.pop(name, None)
        EXTRACTORS._help.pop(name, None)
        _registered.discard(name)


# ---------------------------------------------------------------- item 6: a label file with a huge index


@pytest.mark.parametrize("index", [1_000_001, 5_000_000, 10**8, 10**12, 2**70])
def test_label_file_with_a_huge_index_is_refused(tmp_path, index):
    labels = tmp_path / "l.jsonl"
    good = json.dumps({"generator": "toy-linear", "seed": 1, "index": 3, "feature": "a", "label": 1}) + "\n"
    bad = json.dumps({"generator": "toy-linear", "seed": 1, "index": index, "feature": "a", "label": 0}) + "\n"
    labels.write_text(good + bad)
    msg = one_line(run("fit-labels", labels, "--device", "cpu", ok=False))
    assert "l.jsonl line 2" in msg and "too large" in msg and "1,000,000" in msg
    assert labels.read_text() == good + bad
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl"]


def test_labelled_latents_map_only_the_rows_they_need(tmp_path, toy, monkeypatch):
    from tlgan.labels.store import LabelStore

    gen, _ = toy
    store = LabelStore(tmp_path / "l.jsonl", gen.name)
    for i in (5, 99_999, 40):
        store.add(7, i, "a", i % 2)
    table = store.table()
    mapped: list[int] = []
    real = type(gen).codes_from_z
    monkeypatch.setattr(type(gen), "codes_from_z", lambda self, z: mapped.append(len(z)) or real(self, z))
    z = table.latents(gen)
    assert mapped == [3]
    assert np.array_equal(z[table.indices.tolist().index(40)], gen.sample(41, 7)[40])


def test_label_sheets_far_start_is_refused_before_making_the_folder(tmp_path):
    labels, sheets = tmp_path / "l.jsonl", tmp_path / "sheets"
    msg = one_line(run("label", labels, "-g", "toy-linear", "--feature", "a", "--sheets", sheets,
                       "--start", 10**12, "--device", "cpu", ok=False))
    assert "out of range 0..1,000,000" in msg
    assert not sheets.exists()


# ---------------------------------------------------------------- item 7: one-line messages, not tracebacks


@pytest.mark.parametrize("device, said", [("nonsense", "unknown device 'nonsense'"), ("mps", "no Apple GPU"),
                                          ("cuda:99", "CUDA GPU")])
def test_bad_device_is_one_line(tmp_path, device, said):
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    out = tmp_path / "r"
    msg = one_line(run("sample", "-g", "toy-linear", "-e", "toy-linear", "-n", 16, "-o", out, "--device", device,
                       ok=False))
    assert said in msg
    assert not out.exists()


@pytest.mark.parametrize("args, said", [(("-n", 10**8), "is too many"), (("-n", 10**12), "is too many"),
                                        (("--chunk", 10**9), "is too large")])
def test_oversized_runs_are_refused_before_creating_anything(tmp_path, args, said):
    out = tmp_path / "r"
    msg = one_line(run("sample", "-g", "toy-linear", "-e", "toy-linear", "-o", out, "--device", "cpu", *args,
                       ok=False))
    assert said in msg
    assert not out.exists()


# ---------------------------------------------------------------- item 8: every size a user asks for is bounded


@pytest.mark.parametrize("args, said", [
    (("edit", "AXES", "--move", "a=1", "--size", 20000), "--size 20,000 is out of range"),
    (("edit", "AXES", "--move", "a=1", "--size", 0), "--size 0 is out of range"),
    (("grid", "AXES", "--steps", 0), "--steps 0 is out of range"),
    (("grid", "AXES", "--cell", 10**6), "--cell 1,000,000 is out of range"),
    (("evaluate", "AXES", "-n", 0), "-n 0 is out of range"),
    (("sample", "-g", "toy-linear", "-e", "toy-linear", "--chunk", 0), "chunk=0"),
    (("sample", "-g", "toy-linear", "-e", "toy-linear", "--seed", -1), "--seed -1 is out of range"),
])
def test_sizes_are_bounded_before_anything_is_written(tmp_path, toy_axes, args, said):
    out = tmp_path / "out.png" if args[0] in ("edit", "grid") else tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    msg = one_line(run_cli(*[toy_axes if a == "AXES" else a for a in args], "-o", out, "--device", "cpu"))
    assert said in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ---------------------------------------------------------------- item 7 / 8: axes files are checked





@pytest.mark.parametrize("header, axes, said", [
    ([1, 2], None, "tlgan header holds a JSON list, not an object"),
    ("{not json", None, "tlgan header is not valid JSON"),
    ({k: v for k, v in GOOD.items() if k != "features"}, None, "lacks the field 'features'"),
    ({k: v for k, v in GOOD.items() if k != "kinds"}, None, "lacks the field 'kinds'"),
    ({**GOOD, "features": [1, 2]}, None, "field 'features.0' is 1"),
    ({**GOOD, "kinds": ["continuous", 2]}, None, "field 'kinds.1' is 2"),
    ({**GOOD, "features": "ab"}, None, "field 'features' is 'ab'"),
    ({**GOOD, "features": ["a", "a"]}, None, "'a' appear more than once"),
    ({**GOOD, "features": ["a", "b", "c"], "kinds": ["binary"] * 3}, None, "names 3 features but it holds axes"),
    (GOOD, np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0]], np.float32), "axis of 'b' is not a finite non-zero vector"),
    (GOOD, np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32), "axis of 'b' is not a finite non-zero vector"),
    (GOOD, np.ones((2, 2, 2), np.float32), "holds axes of shape (2, 2, 2)"),
])
def test_damaged_axes_file_is_one_line_naming_it(tmp_path, header, axes, said):
    path = axes_file(tmp_path / "ax.safetensors", header, axes)
    msg = one_line(run_cli("axes-info", path))
    assert said in msg and str(path) in msg


def test_axes_that_would_edit_wrongly_are_not_saved(tmp_path):
    from tlgan.axes import Axes, AxesError

    for names, vectors, said in ((["a", "a"], np.eye(2, 4), "more than once"),
                                 (["a", "b"], [[1, 0, 0, 0], [np.nan] * 4], "not a finite non-zero vector"),
                                 ([], np.zeros((0, 4)), "no feature has an axis")):
        with pytest.raises(AxesError, match=said):
            Axes(names, ["binary"] * len(names), np.asarray(vectors), np.ones(len(names))).save(tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_fit_with_every_feature_skipped_says_why(tmp_path, toy):
    run = make_run(tmp_path / "run", toy, n=8, chunk=8)
    for finder in ("glm", "interfacegan"):
        msg = one_line(run_cli("fit", run.path, "--finder", finder, "-o", tmp_path / "ax.safetensors"))
        assert "no feature has an axis (not fitted: a: " in msg
    assert not (tmp_path / "ax.safetensors").exists()


