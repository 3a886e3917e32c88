"""The version a user sees: one number, named by `tlgan --version`, `python -m tlgan` and the changelog."""

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import tlgan

ROOT = Path(__file__).resolve().parents[1]


def test_python_dash_m_tlgan_is_the_command_line():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "tlgan", "--version"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.strip() == f"tlgan, version {tlgan.__version__}"
    usage = subprocess.run([sys.executable, "-m", "tlgan", "--help"], capture_output=True, text=True, env=env,
                           check=True).stdout
    assert usage.startswith("Usage: tlgan ") and "discover" in usage


def test_installed_metadata_and_changelog_name_the_same_version():
    assert metadata.version("tlgan") == tlgan.__version__  # pyproject reads tlgan.__version__ (dynamic)
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings and headings[0].startswith(f"## {tlgan.__version__} "), "CHANGELOG.md's newest entry"
