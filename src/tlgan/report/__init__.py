"""Reports: a folder per result with ``index.html``, ``summary.md``, JSON, CSV and charts.

``write_evaluation`` writes one axes file's evaluation, ``write_comparison``
several finders side by side (one sub-folder per finder), ``write_dci`` the
DCI of a run's latent spaces. They only read the results they are given.
"""

from .comparison import write_comparison
from .dci import write_dci
from .evaluation import write_evaluation

__all__ = ["write_comparison", "write_dci", "write_evaluation"]
