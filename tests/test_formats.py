"""The one reader of tlgan's versioned JSON documents, and the errors its callers give."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from safetensors.numpy import save_file

from tlgan.axes import Axes, AxesError
from tlgan.errors import TLGANError
from tlgan.formats import read_versioned_json
from tlgan.sample import RunError, open_run


class _Err(TLGANError, ValueError):
    pass


def test_read_versioned_json_returns_the_document_or_says_why_not():
    def mismatch(doc):
        return f"format {doc.get('format')}"

    assert read_versioned_json('{"format": 2, "x": 1}', "f.json", 2, _Err, mismatch) == {"format": 2, "x": 1}
    with pytest.raises(_Err, match=r"^format 1$"):
        read_versioned_json('{"format": 1}', "f.json", 2, _Err, mismatch)
    with pytest.raises(_Err, match=r"^f\.json holds a JSON list, not an object$"):
        read_versioned_json("[1, 2]", "f.json", 2, _Err, mismatch)
    with pytest.raises(_Err, match=r"^f\.json is not valid JSON \(.*\); it is damaged$"):
        read_versioned_json("{", "f.json", 2, _Err, mismatch, damaged="it is damaged")


def test_callers_keep_their_error_class(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{")
    with pytest.raises(RunError, match=r"not valid JSON.*the run folder is damaged"):
        open_run(run)
    (run / "run.json").write_text(json.dumps({"format": -1, "tlgan_version": "0.0"}))
    with pytest.raises(RunError, match=re.escape("written by tlgan 0.0 in run format -1")):
        open_run(run)
    path = tmp_path / "a.safetensors"
    save_file({"axes": np.zeros((1, 2), np.float32)}, str(path), metadata={"tlgan": "not json"})
    with pytest.raises(AxesError, match="tlgan header is not valid JSON"):
        Axes.load(path)


def test_pick_columns_in_order_or_says_what_is_missing():
    from tlgan.errors import InputError
    from tlgan.formats import pick_columns

    def fail(missing, have):
        return InputError(f"no {missing}; have {have}")

    assert pick_columns(["c", "a"], ["a", "b", "c"], fail) == [2, 0]
    with pytest.raises(InputError, match="no x, y; have a, b"):
        pick_columns(["a", "x", "y"], ["a", "b"], fail)
    with pytest.raises(InputError, match="have nothing"):
        pick_columns(["a"], [], fail)
