"""Where the generator checkpoint fixtures live: ``../shared/fixtures/generators`` beside the repository.

They are files written by the original projects' own code with the outputs that
code computes (see that folder's README). Tests that need them skip, saying
why, when the folder is absent (``$TLGAN_GENERATOR_FIXTURES`` points elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(os.environ.get("TLGAN_GENERATOR_FIXTURES",
                           Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "generators"))


def fixture_file(relative: str) -> Path:
    """The fixture at ``ROOT/relative``, or skip the test naming the missing path."""
    path = ROOT / relative
    if not path.exists():
        pytest.skip(f"generator fixture {path} is absent (set $TLGAN_GENERATOR_FIXTURES to the fixtures folder)")
    return path


def expected(relative: str) -> dict[str, np.ndarray]:
    """The ``*_expected.npz`` arrays of a fixture checkpoint."""
    with np.load(fixture_file(relative)) as data:
        return {k: data[k] for k in data.files}
