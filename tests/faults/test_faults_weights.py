"""Fault suite: every weight file is verified before use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fault_support import flip

# ---------------------------------------------------------------- item 1: every weight file is verified before use



def test_flipped_tfjs_shard_is_refused(tfjs_model):
    from tlgan import weights
    from tlgan.extractors.tfjs import TFJSGraph

    _js, binary = tfjs_model
    TFJSGraph.from_model("fake-tfjs", "model.json", "cpu")  # the intact copy loads
    good = binary.read_bytes()
    flip(binary, 8)
    assert len(binary.read_bytes()) == len(good)  # same size: only the checksum can tell
    assert weights.status("fake-tfjs") == "corrupt"
    with pytest.raises(weights.WeightsError, match=r"model\.bin for model 'fake-tfjs' is corrupt.*models fetch"):
        TFJSGraph.from_model("fake-tfjs", "model.json", "cpu")
    assert str(weights.WeightsError("x")).count("\n") == 0


def test_weights_are_hashed_once_then_trusted_by_stamp(tfjs_model, monkeypatch):
    from tlgan import weights

    _js, binary = tfjs_model
    hashed: list[Path] = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: hashed.append(Path(p)) or real(p))
    weights.path_of("fake-tfjs", "model.bin")
    weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary]  # once per process
    stamp = json.loads(binary.with_name("model.bin.verified").read_text())
    assert stamp["size"] == binary.stat().st_size and stamp["mtime_ns"] == binary.stat().st_mtime_ns
    monkeypatch.setattr(weights, "_verified", {})  # a new process: the stamp is trusted, no hash
    weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary]
    flip(binary, 0)  # a changed mtime forces a full check, which fails
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")
    assert hashed == [binary, binary]
    assert not binary.with_name("model.bin.verified").exists()
    # A forged stamp for another size is not trusted either.
    binary.with_name("model.bin.verified").write_text(json.dumps({"size": 1, "mtime_ns": 1, "sha256": "0" * 64}))
    with pytest.raises(weights.WeightsError, match="corrupt"):
        weights.path_of("fake-tfjs", "model.bin")


def test_weight_file_replaced_by_a_folder(tfjs_model):
    from tlgan import weights

    _js, binary = tfjs_model
    binary.unlink()
    binary.mkdir()
    assert weights.status("fake-tfjs") == "corrupt"
    with pytest.raises(weights.WeightsError, match=re.escape("model.bin for model 'fake-tfjs' is not a file")):
        weights.path_of("fake-tfjs", "model.bin")


def test_read_only_cache_still_verifies(tfjs_model, monkeypatch):
    from tlgan import safeio, weights

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(weights, "atomic_write_text", refuse)
    assert weights.path_of("fake-tfjs", "model.bin") == tfjs_model[1]
    assert safeio.file_mode() & 0o600 == 0o600


