"""The report of several direction finders side by side: ``index.html``, ``summary.md``, ``compare.json``,
``comparison.csv``, two charts, and each finder's own evaluation report (and axes file) in a sub-folder.

Everything is read from the :class:`~tlgan.evaluate.Comparison`; nothing is measured here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import HELDOUT_OFFSET, LEAK_FLOOR, Comparison
from ..figures import charts
from .evaluation import Table, write_evaluation
from .page import fmt, md_table, md_text, pct, write_csv, write_json, write_page

TITLE = "Direction finders compared"


def _lock_words(locks: Any) -> str:
    if locks == "all":
        return "every other feature that has an axis"
    return f"each of the {locks} features it leaks into most"


def comparison_tables(cmp: Comparison) -> dict[str, Table]:
    """The report's tables as (headers, rows) of formatted cells."""
    dmax = max(cmp.distances)
    totals = [[t["finder"], fmt(t["find_seconds"], 2), f"{t['features_matched']} ({t['distinct_directions']} distinct)",
               fmt(t["control"]), fmt(t["leakage"]), fmt(t["control_to_leakage"], 1), pct(t["leak_reduction"]),
               pct(t["control_kept"]), fmt(t["identity_per_std"], 3), fmt(t["mean_ad"]), fmt(t["ad_per_target"]),
               pct(t["found"])] for t in cmp.totals()]
    per = []
    for f in cmp.features:
        row = [f]
        for r in cmp.results:
            x = r.per_feature(f)
            if not x:
                row.append("–")
                continue
            cell = f"{fmt(x['control'])} / {fmt(x['leakage'])}"
            if "mean_ad" in x:
                cell += f"; AD {fmt(x['mean_ad'])}"
            if not r.evaluation.supervised:
                cell = f"{x['direction']}: " + cell
            elif "leak_reduction" in x:
                cell += f"; locking cuts leak {pct(x['leak_reduction'])}, keeps {pct(x['control_kept'])} control"
            row.append(cell)
        per.append(row)
    return {"totals": (["finder", "time to find (s)", "features with a direction", f"control at {dmax:g} (std)",
                        "mean leakage", "control / leakage", "leak cut by locking", "control kept when locking",
                        "identity per std", "mean-AD", "mean-AD per std of target", "face found (worse sign)"], totals),
            "per_feature": (["feature", *[r.name for r in cmp.results]], per)}


def comparison_markdown(cmp: Comparison, images: dict[str, str], links: bool = True, extra: str = "") -> str:
    """The side-by-side report as Markdown; ``extra``: Markdown added after the tables."""
    t = comparison_tables(cmp)
    dmax = max(cmp.distances)
    s = cmp.settings
    out = [f"# {TITLE}\n",
           f"Run `{cmp.run}` ({s.get('n_fit_samples')} samples, generator `{s.get('generator')}`, labels "
           f"`{s.get('label_set')}`). Every finder was given the same samples; every direction was measured on the "
           f"same {cmp.n} held-out latents (seed {cmp.heldout_seed} = run seed + {HELDOUT_OFFSET:,}) moved "
           f"±{', ±'.join(f'{d:g}' for d in cmp.distances)} latent units. Numbers below are at ±{dmax:g}.\n",
           "- **control**: mean change of the target feature, in its standard deviations (half the difference "
           "between the +d and −d edits); **leakage**: mean |change| of the other features (face_found excluded)",
           f"- **locking**: each axis moved with, in turn, {md_text(_lock_words(s.get('locks')))} locked "
           f"(on {s.get('lock_n')} latents); leak cut = how much the locked feature's change shrinks (only where "
           f"it leaked at least {LEAK_FLOOR:g} std), control kept = control after / before",
           "- **identity per std**: cosine distance of the faceres descriptor before/after, per std of target change",
           "- **face found**: share of edited images where the face mesh still finds a face, for the worse direction",
           "- **mean-AD** (attribute dependency, Wu et al. 2021): per edit, the mean |change| of the other features "
           "(binary ones as logits) in their std, averaged over the edits at ±" f"{dmax:g}; unlike leakage, opposite "
           "side effects on different faces do not cancel. Per std of target: divided by the target's own change",
           "- unsupervised finders (ganspace, sefa) name no features: each feature is **matched** to the component "
           "(of the first " f"{s.get('components')}) that moves it most in the re-scoring matrix, sign-corrected "
           "(`-pc3` = pc3 reversed). Their components are orthonormal, so locking one leaves another's edit "
           "unchanged: locking cannot reduce their leakage",
           f"- time to find: the finder alone on {s.get('n_fit_samples')} samples (SeFa reads weights only)",
           "- noise: median standard error of a matrix cell, "
           + ", ".join(f"{md_text(r.name)} {fmt(r.evaluation.noise(), 3)}" for r in cmp.results) + " std\n",
           "## Overall (mean over the compared features)\n", md_table(*t["totals"]),
           "## Per feature: control / mean leakage; mean-AD\n", md_table(*t["per_feature"])]
    if extra:
        out.append(extra + "\n")
    if "compare" in images:
        out.append(f"![re-scoring matrices side by side]({images['compare']})\n")
    if "dependency" in images:
        out.append(f"![attribute dependency side by side]({images['dependency']})\n")
    if links:
        out.append("## Each finder's full report\n")
        out += [f"- [{md_text(r.name)}]({r.name}/index.html): {len(r.evaluation.rows)} directions, "
                f"{r.evaluation.images} images, {r.evaluation.seconds:.0f} s" for r in cmp.results]
        out.append("")
    return "\n".join(out)


def comparison_charts(cmp: Comparison, out: Path) -> dict[str, str]:
    """Draw the side-by-side charts into ``out``; returns their file names by kind.

    ``compare.png``: each finder's re-scoring rows of the compared features (rows = features, each finder's
    direction for it); ``compare_dependency.png``: per feature, each finder's attribute-dependency curve.
    """
    feats = cmp.features
    cols = cmp.results[0].evaluation.features
    panels = []
    for r in cmp.results:
        ev = r.evaluation
        m = np.full((len(feats), len(cols)), np.nan)
        labels = []
        for i, f in enumerate(feats):
            x = r.per_feature(f)
            if x:
                k = ev.rows.index(f) if ev.supervised else x["row"]
                m[i] = x.get("sign", 1) * ev.change[-1, k]
            labels.append(f if ev.supervised or not x else f"{f} ← {x['direction']}")
        panels.append((r.name, m, labels))
    charts.heatmap_grid(panels, cols, [cols.index(f) for f in feats],
                        f"change (std) of every feature when moving ±{max(cmp.distances):g} along each finder's "
                        "direction for the row's feature (box = target)", out / "compare.png")
    images = {"compare": "compare.png"}
    curves = []
    for f in feats:
        lines = []
        for r in cmp.results:
            dep, x = r.dependency(f), r.per_feature(f)
            if dep is not None and x:
                lines.append((r.name if r.evaluation.supervised else f"{r.name} {x['direction']}", dep.curve()))
        if lines:
            curves.append((f, lines))
    if curves:
        charts.dependency_panels(curves, "attribute dependency: mean |change| of the other features against the "
                                 "target's change", out / "compare_dependency.png")
        images["dependency"] = "compare_dependency.png"
    return images


def write_comparison(cmp: Comparison, out: str | Path, extra: str = "") -> Path:
    """Write the side-by-side report and each finder's own report (and axes file) into ``out``; returns its page."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for r in cmp.results:
        sub = out / r.name
        r.axes.save(sub / "axes.safetensors")
        write_evaluation(r.evaluation, sub, f"{r.name}: evaluation on {cmp.n} held-out latents",
                         extra={"find_seconds": r.find_seconds, "matches": r.matches})
    images = comparison_charts(cmp, out)
    write_json(out / "compare.json", cmp.to_json())
    tab = cmp.table()
    keys = ["feature", "finder", "direction", "control", "leakage", "max_leakage", "max_leakage_feature",
            "control_to_leakage", "leak_reduction", "control_kept", "identity", "identity_per_std", "mean_ad",
            "max_ad", "ad_per_target", "found_plus", "found_minus", "range"]
    write_csv(out / "comparison.csv", keys, [[x.get(k) for k in keys] for x in tab])
    return write_page(out, comparison_markdown(cmp, images, extra=extra), TITLE)
