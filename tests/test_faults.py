"""Fault injection (issue 11): damaged, wrong-typed and oversized inputs give one clear error, or a
correct result, and never destroy what was already written.

Every test works in a private ``$TLGAN_HOME`` (monkeypatched); the real weights cache is only read,
never written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from cli_support import run
from tlgan.errors import TLGANError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TLGAN_HOME", str(h))
    return h


def one_line(result) -> str:
    """The message of a refused CLI command: exit code 1 or 2, no traceback, one line after 'Error:'."""
    assert result.exit_code not in (0,), result.output
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, (KeyError, TypeError, AttributeError, MemoryError)), result.exception
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, TLGANError), repr(result.exception)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("Error")]
    assert err, result.output
    return err[-1]


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
