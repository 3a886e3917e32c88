"""Where the generator checkpoint fixtures live: ``tests/data/generators`` in the repository.

They are files written by the original projects' own code with the outputs that
code computes (see that folder's README.md and PROVENANCE.md). They ship with
the repository, so a missing one fails the test that needs it: a broken
checkout must not pass as a skip. ``$TLGAN_GENERATOR_FIXTURES`` points the
tests at another copy (e.g. the held-back acceptance set).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(os.environ.get("TLGAN_GENERATOR_FIXTURES", Path(__file__).resolve().parent / "data" / "generators"))


def fixture_file(relative: str) -> Path:
    """The fixture at ``ROOT/relative``; fails the test, naming the missing path, when it is absent."""
    path = ROOT / relative
    if not path.exists():
        pytest.fail(f"generator fixture {path} is missing: restore tests/data/generators from git "
                    "(or set $TLGAN_GENERATOR_FIXTURES to a folder that has it)", pytrace=False)
    return path


def expected(relative: str) -> dict[str, np.ndarray]:
    """The ``*_expected.npz`` arrays of a fixture checkpoint."""
    with np.load(fixture_file(relative)) as data:
        return {k: data[k] for k in data.files}
