"""The report of a run's DCI: ``index.html``, ``summary.md``, ``dci.json`` and ``importance.png``.

Everything is read from the :class:`~tlgan.disentangle.SpaceDCI`; nothing is measured here.
"""

from __future__ import annotations

from pathlib import Path

from ..disentangle import SpaceDCI
from ..figures import charts
from .evaluation import Table
from .page import fmt, md_table, write_json, write_page

TITLE = "DCI of the run's latent spaces"


def dci_tables(res: SpaceDCI) -> dict[str, Table]:
    """The report's tables as (headers, rows) of formatted cells."""
    spaces = list(res.spaces)
    totals = [[s, res.spaces[s].importance.shape[0], fmt(res.spaces[s].disentanglement),
               fmt(res.spaces[s].completeness), fmt(res.spaces[s].informativeness),
               f"{res.spaces[s].n_train} / {res.spaces[s].n_test}"] for s in spaces]
    per = [[f, *[f"{fmt(res.spaces[s].per_factor[k])} / {fmt(res.spaces[s].r2[k])}" for s in spaces]]
           for k, f in enumerate(res.features)]
    return {"totals": (["space", "codes", "disentanglement", "completeness", "informativeness (held-out R²)",
                        "train / test samples"], totals),
            "per_factor": (["factor", *[f"{s}: completeness / R²" for s in spaces]], per)}


def dci_markdown(res: SpaceDCI, image: str = "importance.png") -> str:
    """The report as Markdown, with the importance chart ``image``."""
    t = dci_tables(res)
    s = res.settings
    return "\n".join([
        f"# {TITLE}\n",
        f"Run `{res.run}` ({res.n_samples} labelled samples, generator `{s['generator']}`, labels `{s['label_set']}`). "
        "DCI (Eastwood & Williams 2018): each factor (label) is predicted from the codes by a lasso regression "
        f"(scikit-learn; penalty chosen on a validation split) on {s['max_samples']} samples drawn with seed "
        f"{s['seed']}, 20% held out.\n",
        "- **disentanglement**: 1 − entropy of each code's importance over the factors, weighted by the code's "
        "share of the importance; 1 = every code dimension carries one factor",
        "- **completeness**: 1 − entropy of each factor's importance over the codes, weighted by the factor's "
        "share; 1 = every factor is carried by one code dimension",
        "- **informativeness**: held-out R² of each factor's regression (the paper reports the error, 1 − R²)",
        "- D and C ask whether single *coordinates* carry single factors, so they depend on the basis: isotropic "
        "noise z has no preferred basis and scores low whatever the generator learnt; informativeness does not "
        "depend on the basis\n",
        md_table(*t["totals"]), "## Per factor\n", md_table(*t["per_factor"]),
        f"![importance matrices]({image})\n"])


def write_dci(res: SpaceDCI, out: str | Path) -> Path:
    """Write ``dci.json``, ``summary.md``, ``index.html`` and ``importance.png`` into ``out``; returns the page."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    charts.importance_chart([(space, f"{space}: D {d.disentanglement:.2f}, C {d.completeness:.2f}, I (R²) "
                              f"{d.informativeness:.2f} — |lasso weight| per factor, scaled to its largest",
                              d.importance) for space, d in res.spaces.items()], res.features, out / "importance.png")
    write_json(out / "dci.json", res.to_json())
    return write_page(out, dci_markdown(res), TITLE)
