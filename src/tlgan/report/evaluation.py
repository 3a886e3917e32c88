"""The report of one axes file's evaluation: ``index.html``, ``summary.md``, ``evaluation.json``, CSV tables
and charts (re-scoring matrix, locking, control and attribute dependency against distance, cosines, label
correlations).

Everything is read from the :class:`~tlgan.evaluate.Evaluation`; nothing is measured here.
``slider_ranges`` in ``evaluation.json`` is the suggested slider range per axis, for the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import HELDOUT_OFFSET, LEAK_FLOOR, Evaluation
from ..figures import charts
from .page import fmt, md_table, md_text, pct, write_csv, write_json, write_page

Table = tuple[list[str], list[list[Any]]]


def _fit_quality(metrics: dict) -> str:
    from ..finders import fit_quality

    quality = fit_quality(metrics)
    return f"{quality[1]} {fmt(quality[2], 3)}" if quality else "–"


def _target_label(axis: str, target: str) -> str:
    """An axis's name, with the feature it moves in brackets when that is another one."""
    return axis if axis == target else f"{axis} ({target})"


def _control_lines(ev: Evaluation) -> list[tuple[str, str, list[float]]]:
    """Per axis with a target: (axis, target, |change of the target| at each distance)."""
    lines = []
    for i, name in enumerate(ev.rows):
        r = ev.ranges.get(name)
        if r:
            j = ev.features.index(r["feature"])
            lines.append((name, r["feature"], [abs(float(ev.change[k, i, j])) for k in range(len(ev.distances))]))
    return lines


def evaluation_tables(ev: Evaluation) -> dict[str, Table]:
    """The report's tables as (headers, rows) of formatted cells."""
    dmax = max(ev.distances)
    per_axis = []
    for s in ev.summary():
        per_axis.append([s["axis"], _fit_quality(ev.fit_metrics.get(s["axis"], {})),
                         s["target"], fmt(s["control"]), fmt(s["leakage"]),
                         f"{fmt(s['max_leakage'])} ({s['max_leakage_feature']})", fmt(s["control_to_leakage"], 1),
                         f"{pct(s.get('found_plus'))} / {pct(s.get('found_minus'))}",
                         fmt(s.get("identity"), 3), fmt(s.get("identity_per_std"), 3), fmt(s.get("mean_ad")),
                         fmt(s.get("ad_per_target")), fmt(s.get("range"))])
    tables = {"per_axis": (["axis", "fit quality", "target (or moves most)", f"control at {dmax:g}", "mean leakage",
                            "worst leakage", "control / leakage", f"face found +{dmax:g} / −{dmax:g}",
                            "identity distance", "identity per std", "mean-AD", "mean-AD per std of target",
                            "slider range"], per_axis)}
    dep = ev.dependency_table()
    if dep:
        tables["dependency"] = (["axis", "target", "distance", "target change (std)", "mean-AD", "max-AD",
                                 "mean-AD per std of target", "edits"],
                                [[r["axis"], r["target"], f"{r['distance']:g}", fmt(r["target_change"]),
                                  fmt(r["mean_ad"]), fmt(r["max_ad"]), fmt(r["ad_per_target"]), r["n"]] for r in dep])
    locks = ev.lock_table()
    if locks:
        tables["locks"] = (["axis", "locked", "leak before", "leak after", "leak cut", "control before",
                            "control after", "control kept", "direction kept"],
                           [[r["axis"], r["lock"], fmt(r["leak_before"]), fmt(r["leak_after"]), pct(r["leak_reduction"]),
                             fmt(r["control_before"]), fmt(r["control_after"]), pct(r["control_kept"]),
                             pct(r["direction_retained"])] for r in locks if not r["reused"]])
    tables["saturation"] = (["axis", "target", *[f"control at {d:g}" for d in ev.distances],
                             "suggested range (90% of max)", "saturated"],
                            [[name, target, *[fmt(c) for c in controls], fmt(ev.ranges[name]["range"]),
                              fmt(ev.ranges[name]["saturated"])] for name, target, controls in _control_lines(ev)])
    if ev.norm_check:
        tables["norm"] = (["axis", "control plain", "control keep-norm", "leakage plain", "leakage keep-norm",
                           "face found plain", "face found keep-norm"],
                          [[r["axis"], fmt(r["plain"]["control"]), fmt(r["keep_norm"]["control"]),
                            fmt(r["plain"]["leakage"]), fmt(r["keep_norm"]["leakage"]), pct(r["plain"]["found"]),
                            pct(r["keep_norm"]["found"])] for r in ev.norm_check])
    return tables


def norm_verdict(ev: Evaluation) -> str:
    """One sentence: does rescaling edited latents to their typical norm help, at the largest distance?"""
    if not ev.norm_check:
        return ""

    def get(tag: str, key: str) -> float:
        vals = [r[tag][key] for r in ev.norm_check if r[tag][key] is not None and np.isfinite(r[tag][key])]
        return float(np.mean(vals)) if vals else float("nan")

    parts = []
    for key, label in (("found", "face found"), ("control", "control"), ("leakage", "leakage")):
        a, b = get("plain", key), get("keep_norm", key)
        if np.isfinite(a) and np.isfinite(b):
            parts.append(f"{label} {fmt(a)} plain vs {fmt(b)} with keep-norm")
    found_gain = get("keep_norm", "found") - get("plain", "found")
    ctl_loss = 1 - abs(get("keep_norm", "control")) / max(abs(get("plain", "control")), 1e-12)
    if np.isfinite(found_gain) and found_gain > 0.02:
        verdict = "keeping the norm helps: more edited faces are still found"
    elif ctl_loss > 0.05:
        verdict = "keeping the norm does not help here: it costs control" + (
            " and finds no more faces" if np.isfinite(found_gain) else "")
    else:
        verdict = "keeping the norm makes little difference at this distance"
    return f"At distance {max(ev.distances):g} (mean over axes): " + "; ".join(parts) + f". Verdict: {verdict}."


def evaluation_markdown(ev: Evaluation, title: str, images: dict[str, str]) -> str:
    """The report as Markdown; ``images`` names the chart files written beside it (by kind)."""
    t = evaluation_tables(ev)
    dmax = max(ev.distances)
    out = [f"# {md_text(title)}\n",
           f"- held-out latents: {ev.n}, drawn from seed {ev.seed} (the run's seed + {HELDOUT_OFFSET:,}); none was "
           "used to find the axes",
           f"- distances moved: {', '.join(f'{d:g}' for d in ev.distances)} latent units (both signs); edited latents "
           + ("rescaled to norm sqrt(D)" if ev.keep_norm else "not rescaled"),
           "- change = mean over samples of (label at +d − label at −d) / 2, in standard deviations of that feature "
           "over the unedited held-out faces; diagonal = control, the rest = leakage",
           f"- noise: the median standard error of a cell of the matrix is {fmt(ev.noise(), 3)} std (over the "
           "held-out latents); smaller differences are not meaningful",
           f"- {ev.images} images rendered and labelled in {ev.seconds:.0f} s\n",
           f"## Per axis, at distance {dmax:g}\n", md_table(*t["per_axis"])]
    if ev.identity is not None:
        out.append(f"Identity distance = mean cosine distance of the face descriptor before/after the edit "
                   f"(averaged over ±{dmax:g}); two different held-out faces are {fmt(ev.identity_between_faces, 3)} apart. "
                   "Per std = distance per standard deviation of target change (lower is better).\n")
    if "rescoring" in images:
        out.append(f"![re-scoring matrix]({images['rescoring']})\n")
    if "locks" in t:
        out += [f"## Locking (distance {dmax:g})\n",
                "Each axis moved with one other feature locked; leak cut = 1 − |leak after| / |leak before| "
                f"(only where |leak before| ≥ {LEAK_FLOOR:g} std); control kept = control after / before; direction "
                "kept = length of the axis left after projecting off the locked one.\n", md_table(*t["locks"])]
        if "locking" in images:
            out.append(f"![locking]({images['locking']})\n")
    if "dependency" in t:
        out += ["## Attribute dependency\n",
                "Wu et al. 2021 (StyleSpace): for each edit (±d, each held-out face), the change of every other "
                "feature (face_found excluded; binary features as logits, as in the paper) in its standard "
                "deviations, |Δ|; **mean-AD** is its mean over those features, **max-AD** the largest, each "
                "averaged over the edits, beside the target's own change (sign-corrected, in its std). Unlike "
                "leakage, side effects of opposite sign on different faces do not cancel; the extractor's own "
                "noise on a changed image counts too.\n", md_table(*t["dependency"])]
        if "dependency" in images:
            out.append(f"![attribute dependency]({images['dependency']})\n")
    out += ["## Control against distance\n", md_table(*t["saturation"])]
    if "saturation" in images:
        out.append(f"![saturation]({images['saturation']})\n")
    if "norm" in t:
        out += ["## Keeping edited latents at their typical norm\n", md_table(*t["norm"]), norm_verdict(ev) + "\n"]
    for key, label in (("cosine", "cosine similarity between axes"), ("label_corr", "correlation between labels")):
        if key in images:
            out.append(f"## {label.capitalize()}\n\n![{label}]({images[key]})\n")
    if ev.notes:
        out += ["## Notes\n"] + [f"- {md_text(n)}" for n in ev.notes] + [""]
    return "\n".join(out)


def evaluation_charts(ev: Evaluation, out: Path) -> dict[str, str]:
    """Draw the evaluation's charts into ``out``; returns their file names by kind."""
    dmax = max(ev.distances)
    kmax = ev.distances.index(dmax)
    images: dict[str, str] = {}
    diag = [ev.target(i) for i in range(len(ev.rows))]
    charts.heatmap(ev.change[kmax], ev.rows, ev.features, f"change of each feature (std) after moving ±{dmax:g} along "
                   "each axis; boxes = target", out / "rescoring.png", box_diagonal=diag)
    images["rescoring"] = "rescoring.png"
    locks = [r for r in ev.lock_table() if not r["reused"]]
    if locks:
        lock_names = sorted({r["lock"] for r in locks}, key=ev.features.index)
        cut = np.full((len(ev.rows), len(lock_names)), np.nan)
        kept = np.full_like(cut, np.nan)
        for r in locks:
            i, j = ev.rows.index(r["axis"]), lock_names.index(r["lock"])
            cut[i, j], kept[i, j] = r["leak_reduction"], r["control_kept"]
        charts.locking_chart(cut, kept, ev.rows, lock_names, out / "locking.png")
        images["locking"] = "locking.png"
    charts.control_chart(ev.distances, [(_target_label(name, target), controls)
                                        for name, target, controls in _control_lines(ev)], out / "saturation.png")
    images["saturation"] = "saturation.png"
    curves = [(_target_label(name, ev.features[dep.target]), dep.curve())
              for name in ev.rows if (dep := ev.dependencies.get(name)) is not None]
    if curves:
        charts.dependency_chart(curves, out / "dependency.png")
        images["dependency"] = "dependency.png"
    if ev.cosine is not None and len(ev.rows) > 1:
        charts.heatmap(ev.cosine, ev.rows, ev.rows, "cosine similarity between axes", out / "cosine.png", vmax=1,
                       digits=2)
        images["cosine"] = "cosine.png"
    if ev.label_corr is not None:
        charts.heatmap(ev.label_corr, ev.features, ev.features, "correlation between labels", out / "label_corr.png",
                       vmax=1, digits=2)
        images["label_corr"] = "label_corr.png"
    return images


def write_evaluation(ev: Evaluation, out: str | Path, title: str = "Evaluation of feature axes",
                     extra: dict | None = None) -> Path:
    """Write ``ev``'s report into the folder ``out`` (``extra``: more keys for its JSON); returns its ``index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = evaluation_charts(ev, out)
    write_json(out / "evaluation.json", {**ev.to_json(), **(extra or {})})
    for k, d in enumerate(ev.distances):
        write_csv(out / f"rescoring_d{d:g}.csv", ["axis", *ev.features],
                  [[r, *[round(float(v), 5) for v in ev.change[k, i]]] for i, r in enumerate(ev.rows)])
    s = ev.summary()
    keys = list(s[0]) if s else []
    write_csv(out / "summary.csv", keys, [[x.get(k) for k in keys] for x in s])
    lt = ev.lock_table()
    if lt:
        write_csv(out / "locks.csv", list(lt[0]), [list(r.values()) for r in lt])
    return write_page(out, evaluation_markdown(ev, title, images), title)
