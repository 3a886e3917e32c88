"""What tests that need the pretrained weights share (a plain module: a sub-folder's conftest.py must not
shadow it)."""

import pytest

from tlgan import weights


def need_models(*names: str):
    """Skip (with the command to run) when the default weights are not fetched."""
    missing = [n for n in names if weights.status(n) != "present"]
    return pytest.mark.skipif(bool(missing), reason=f"weights missing: {missing}; run `tlgan models fetch`")
