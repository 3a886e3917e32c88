"""Write evaluations as a report folder: ``index.html``, ``summary.md``, JSON, CSV and heat-map PNGs.

``write_evaluation`` writes one axes file's evaluation; ``write_comparison``
writes several finders side by side (one sub-folder per finder). The JSON
files hold every number (NaN written as null); ``slider_ranges`` in
``evaluation.json`` is the suggested slider range per axis, for the app.
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .evaluate import HELDOUT_OFFSET, LEAK_FLOOR, Comparison, Evaluation, clean

if TYPE_CHECKING:
    from .jobs import SpaceDCI

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:14px}code{background:#f5f5f5;padding:1px 4px}"""


# ---------------------------------------------------------------- formatting


def fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞"
        return f"{x:.{digits}f}"
    return str(x)


def pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.0f}%"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        for r in rows:
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in r])


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(clean(doc), indent=1) + "\n")


def _lock_words(locks: Any) -> str:
    if locks == "all":
        return "every other feature that has an axis"
    return f"each of the {locks} features it leaks into most"


def _fit_quality(m: dict) -> str:
    from .finders import fit_quality

    quality = fit_quality(m)
    return f"{quality[1]} {fmt(quality[2], 3)}" if quality else "–"


# ---------------------------------------------------------------- figures


def heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, path: Path,
            vmax: float | None = None, cmap: str = "RdBu_r", center: bool = True, digits: int = 1,
            box_diagonal: Sequence[int | None] | None = None, ax=None):
    """An annotated heat map PNG (or a panel drawn on ``ax``); ``box_diagonal[i]`` outlines cell (i, that column)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    m = np.asarray(matrix, np.float64)
    finite = m[np.isfinite(m)]
    vmax = vmax or (float(np.abs(finite).max()) if finite.size else 1.0) or 1.0
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(1.2 + 0.52 * len(cols), 1.1 + 0.4 * len(rows)), dpi=90)
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-vmax if center else 0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    if len(rows) * len(cols) <= 600:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.{digits}f}", ha="center", va="center", fontsize=6.5,
                            color="white" if abs(m[i, j]) > 0.6 * vmax else "black")
    for i, box_col in enumerate(box_diagonal or []):
        if box_col is not None:
            ax.add_patch(Rectangle((box_col - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.4))
    if own:
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return im


#: bins of the attribute-dependency curve with fewer edits than this are left out of the figures (too noisy)
AD_MIN_BIN = 5


def dependency_panel(ax, curves: Sequence[tuple[str, dict]], title: str) -> None:
    """Mean-AD against target change (binned), one line per (label, ``Dependency.curve()``); bins of fewer
    than ``AD_MIN_BIN`` edits are left out."""
    for label, c in curves:
        ok = c["count"] >= AD_MIN_BIN
        ax.plot(np.concatenate([[0.0], c["target_change"][ok]]), np.concatenate([[0.0], c["mean_ad"][ok]]),
                marker="o", ms=3, label=label)
    ax.set_xlabel(f"change of the target (std; bins of ≥ {AD_MIN_BIN} edits)", fontsize=8)
    ax.set_ylabel("mean-AD: mean |change| of the others (std)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def dependency_plot(ev: Evaluation, path: Path) -> bool:
    """Attribute-dependency curves of every evaluated axis in one panel; False when there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = []
    for i, name in enumerate(ev.rows):
        dep = ev.dependency(i)
        if dep is not None:
            target = ev.features[dep.target]
            curves.append((name if target == name else f"{name} ({target})", dep.curve()))
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    dependency_panel(ax, curves, "attribute dependency (Wu et al. 2021): side effects per target change")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def saturation_plot(ev: Evaluation, path: Path) -> None:
    """Control (|change of the target|, std units) against distance, one line per axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    d = [0.0] + ev.distances
    for i, name in enumerate(ev.rows):
        r = ev.ranges.get(name)
        if not r:
            continue
        j = ev.features.index(r["feature"])
        ax.plot(d, [0.0] + [abs(ev.change[k, i, j]) for k in range(len(ev.distances))], marker="o",
                label=name if r["feature"] == name else f"{name} ({r['feature']})")
    ax.set_xlabel("distance moved along the axis (latent units)")
    ax.set_ylabel("|change of target| (std)")
    ax.set_title("control against distance", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- one evaluation


def evaluation_tables(ev: Evaluation) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The report's tables as (headers, rows) of formatted cells."""
    dmax = max(ev.distances)
    summ = ev.summary()
    per_axis = []
    for s in summ:
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
    sat = []
    for i, name in enumerate(ev.rows):
        r = ev.ranges.get(name)
        if r:
            j = ev.features.index(r["feature"])
            sat.append([name, r["feature"], *[fmt(abs(ev.change[k, i, j])) for k in range(len(ev.distances))],
                        fmt(r["range"]), fmt(r["saturated"])])
    tables["saturation"] = (["axis", "target", *[f"control at {d:g}" for d in ev.distances],
                             "suggested range (90% of max)", "saturated"], sat)
    if ev.norm_check:
        tables["norm"] = (["axis", "control plain", "control keep-norm", "leakage plain", "leakage keep-norm",
                           "face found plain", "face found keep-norm"],
                          [[r["axis"], fmt(r["plain"]["control"]), fmt(r["keep_norm"]["control"]),
                            fmt(r["plain"]["leakage"]), fmt(r["keep_norm"]["leakage"]), pct(r["plain"]["found"]),
                            pct(r["keep_norm"]["found"])] for r in ev.norm_check])
    return tables


def norm_verdict(ev: Evaluation) -> str:
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
    t = evaluation_tables(ev)
    dmax = max(ev.distances)
    out = [f"# {title}\n",
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
        out += ["## Notes\n"] + [f"- {n}" for n in ev.notes] + [""]
    return "\n".join(out)


def markdown_to_html(md: str, title: str) -> str:
    """A small converter for the Markdown this module writes (headings, lists, tables, images, paragraphs)."""
    parts: list[str] = []
    table: list[str] = []

    def flush():
        if table:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table if not line.startswith("|---")]
            parts.append(html_table(rows[0], rows[1:]))
            table.clear()

    in_list = False
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if in_list and not line.startswith("- "):
            parts.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            parts.append(f'<p><img src="{html.escape(src.rstrip(")"))}" alt="{html.escape(alt)}"></p>')
        elif line.startswith("- "):
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            parts.append(f'<p class="note">{_inline(line)}</p>')
    flush()
    if in_list:
        parts.append("</ul>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _inline(text: str) -> str:
    import re

    out = html.escape(text)
    out = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def write_evaluation(ev: Evaluation, out: str | Path, title: str = "Evaluation of feature axes",
                     extra: dict | None = None) -> Path:
    """Write ``ev`` into the folder ``out``; returns the path of its ``index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dmax = max(ev.distances)
    kmax = ev.distances.index(dmax)
    images: dict[str, str] = {}
    diag = [ev.target(i) for i in range(len(ev.rows))]
    heatmap(ev.change[kmax], ev.rows, ev.features, f"change of each feature (std) after moving ±{dmax:g} along each "
            "axis; boxes = target", out / "rescoring.png", box_diagonal=diag)
    images["rescoring"] = "rescoring.png"
    locks = [r for r in ev.lock_table() if not r["reused"]]
    if locks:
        lock_names = sorted({r["lock"] for r in locks}, key=ev.features.index)
        cut = np.full((len(ev.rows), len(lock_names)), np.nan)
        kept = np.full_like(cut, np.nan)
        for r in locks:
            i, j = ev.rows.index(r["axis"]), lock_names.index(r["lock"])
            cut[i, j], kept[i, j] = r["leak_reduction"], r["control_kept"]
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axs = plt.subplots(1, 2, figsize=(2.2 + 1.0 * len(lock_names), 1.2 + 0.4 * len(ev.rows)), dpi=90)
        heatmap(cut, ev.rows, lock_names, "leak into the locked feature cut by", out, vmax=1, cmap="RdYlGn",
                center=False, digits=2, ax=axs[0])
        heatmap(kept, ev.rows, lock_names, "control kept", out, vmax=1, cmap="RdYlGn", center=False, digits=2, ax=axs[1])
        axs[1].set_yticks([])
        fig.tight_layout()
        fig.savefig(out / "locking.png")
        plt.close(fig)
        images["locking"] = "locking.png"
    saturation_plot(ev, out / "saturation.png")
    images["saturation"] = "saturation.png"
    if dependency_plot(ev, out / "dependency.png"):
        images["dependency"] = "dependency.png"
    if ev.cosine is not None and len(ev.rows) > 1:
        heatmap(ev.cosine, ev.rows, ev.rows, "cosine similarity between axes", out / "cosine.png", vmax=1, digits=2)
        images["cosine"] = "cosine.png"
    if ev.label_corr is not None:
        heatmap(ev.label_corr, ev.features, ev.features, "correlation between labels", out / "label_corr.png",
                vmax=1, digits=2)
        images["label_corr"] = "label_corr.png"
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
    md = evaluation_markdown(ev, title, images)
    (out / "summary.md").write_text(md)
    (out / "index.html").write_text(markdown_to_html(md, title))
    return out / "index.html"


# ---------------------------------------------------------------- several finders


def comparison_tables(cmp: Comparison) -> dict[str, tuple[list[str], list[list[Any]]]]:
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
    t = comparison_tables(cmp)
    dmax = max(cmp.distances)
    s = cmp.settings
    out = ["# Direction finders compared\n",
           f"Run `{cmp.run}` ({s.get('n_fit_samples')} samples, generator `{s.get('generator')}`, labels "
           f"`{s.get('label_set')}`). Every finder was given the same samples; every direction was measured on the "
           f"same {cmp.n} held-out latents (seed {cmp.heldout_seed} = run seed + {HELDOUT_OFFSET:,}) moved "
           f"±{', ±'.join(f'{d:g}' for d in cmp.distances)} latent units. Numbers below are at ±{dmax:g}.\n",
           "- **control**: mean change of the target feature, in its standard deviations (half the difference "
           "between the +d and −d edits); **leakage**: mean |change| of the other features (face_found excluded)",
           f"- **locking**: each axis moved with, in turn, {_lock_words(s.get('locks'))} locked "
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
           + ", ".join(f"{r.name} {fmt(r.evaluation.noise(), 3)}" for r in cmp.results) + " std\n",
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
        out += [f"- [{r.name}]({r.name}/index.html): {len(r.evaluation.rows)} directions, "
                f"{r.evaluation.images} images, {r.evaluation.seconds:.0f} s" for r in cmp.results]
        out.append("")
    return "\n".join(out)


def comparison_figure(cmp: Comparison, path: Path) -> None:
    """Re-scoring matrices side by side: rows = compared features, each finder's direction for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cmp.results)
    feats = cmp.features
    cols = cmp.results[0].evaluation.features
    ncol = min(n, 2)
    nrow = -(-n // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(ncol * (2.2 + 0.34 * len(cols)), nrow * (1.7 + 0.3 * len(feats))),
                            dpi=72, squeeze=False, layout="constrained")
    vmax = 0.0
    mats = []
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
        mats.append((m, labels))
        if np.isfinite(m).any():
            vmax = max(vmax, float(np.nanmax(np.abs(m))))
    flat = axs.ravel()
    for ax, r, (m, labels) in zip(flat, cmp.results, mats):
        im = heatmap(m, labels, cols, r.name, path, vmax=vmax, digits=1,
                     box_diagonal=[cols.index(f) for f in feats], ax=ax)
    for ax in flat[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=flat.tolist(), fraction=0.02, pad=0.01)
    fig.suptitle(f"change (std) of every feature when moving ±{max(cmp.distances):g} along each finder's "
                 "direction for the row's feature (box = target)", fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def comparison_dependency_figure(cmp: Comparison, path: Path) -> bool:
    """One panel per compared feature: each finder's attribute-dependency curve for its direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for f in cmp.features:
        curves = []
        for r in cmp.results:
            ev, x = r.evaluation, r.per_feature(f)
            if not x:
                continue
            i = ev.rows.index(f) if ev.supervised else x["row"]
            dep = ev.dependency(i, ev.features.index(f), float(x.get("sign", 1)))
            if dep is not None:
                curves.append((r.name if ev.supervised else f"{r.name} {x['direction']}", dep.curve()))
        if curves:
            panels.append((f, curves))
    if not panels:
        return False
    ncol = min(len(panels), 3)
    nrow = -(-len(panels) // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), dpi=72, squeeze=False, layout="constrained")
    for ax, (f, curves) in zip(axs.ravel(), panels):
        dependency_panel(ax, curves, f)
    for ax in axs.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle("attribute dependency: mean |change| of the other features against the target's change", fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


def write_comparison(cmp: Comparison, out: str | Path, extra: str = "") -> Path:
    """Write the side-by-side report and each finder's own report (and axes file) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for r in cmp.results:
        sub = out / r.name
        r.axes.save(sub / "axes.safetensors")
        write_evaluation(r.evaluation, sub, f"{r.name}: evaluation on {cmp.n} held-out latents",
                         extra={"find_seconds": r.find_seconds, "matches": r.matches})
    comparison_figure(cmp, out / "compare.png")
    images = {"compare": "compare.png"}
    if comparison_dependency_figure(cmp, out / "compare_dependency.png"):
        images["dependency"] = "compare_dependency.png"
    write_json(out / "compare.json", cmp.to_json())
    tab = cmp.table()
    keys = ["feature", "finder", "direction", "control", "leakage", "max_leakage", "max_leakage_feature",
            "control_to_leakage", "leak_reduction", "control_kept", "identity", "identity_per_std", "mean_ad",
            "max_ad", "ad_per_target", "found_plus", "found_minus", "range"]
    write_csv(out / "comparison.csv", keys, [[x.get(k) for k in keys] for x in tab])
    md = comparison_markdown(cmp, images, extra=extra)
    (out / "summary.md").write_text(md)
    (out / "index.html").write_text(markdown_to_html(md, "Direction finders compared"))
    return out / "index.html"


# ---------------------------------------------------------------- DCI of a run's latent spaces


def importance_plot(res: SpaceDCI, path: Path) -> None:
    """Each space's DCI importance matrix (factors × codes, each factor's row scaled to its largest weight)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(res.spaces)
    fig, axs = plt.subplots(n, 1, figsize=(10, 0.9 + 0.2 * len(res.features) * n + 0.5 * n), dpi=80, squeeze=False)
    for ax, (space, d) in zip(axs[:, 0], res.spaces.items()):
        r = d.importance.T
        top = r.max(1, keepdims=True)
        ax.imshow(np.where(top > 0, r / np.where(top > 0, top, 1), 0), aspect="auto", cmap="Greys", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_yticks(range(len(res.features)), res.features, fontsize=7)
        ax.set_xlabel(f"code dimension of {space}", fontsize=8)
        ax.set_title(f"{space}: D {d.disentanglement:.2f}, C {d.completeness:.2f}, I (R²) {d.informativeness:.2f}"
                     " — |lasso weight| per factor, scaled to its largest", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dci_tables(res: SpaceDCI) -> dict[str, tuple[list[str], list[list[Any]]]]:
    spaces = list(res.spaces)
    totals = [[s, res.spaces[s].importance.shape[0], fmt(res.spaces[s].disentanglement),
               fmt(res.spaces[s].completeness), fmt(res.spaces[s].informativeness),
               f"{res.spaces[s].n_train} / {res.spaces[s].n_test}"] for s in spaces]
    per = [[f, *[f"{fmt(res.spaces[s].per_factor[k])} / {fmt(res.spaces[s].r2[k])}" for s in spaces]]
           for k, f in enumerate(res.features)]
    return {"totals": (["space", "codes", "disentanglement", "completeness", "informativeness (held-out R²)",
                        "train / test samples"], totals),
            "per_factor": (["factor", *[f"{s}: completeness / R²" for s in spaces]], per)}


def write_dci(res: SpaceDCI, out: str | Path) -> Path:
    """Write ``dci.json``, ``summary.md``, ``index.html`` and ``importance.png`` into ``out``; returns the page."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    importance_plot(res, out / "importance.png")
    write_json(out / "dci.json", {"run": res.run, "n_samples": res.n_samples, "features": res.features,
                                  "settings": res.settings,
                                  "spaces": {s: d.to_json(res.features) for s, d in res.spaces.items()}})
    t = dci_tables(res)
    s = res.settings
    md = "\n".join([
        "# DCI of the run's latent spaces\n",
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
        "![importance matrices](importance.png)\n"])
    (out / "summary.md").write_text(md)
    (out / "index.html").write_text(markdown_to_html(md, "DCI of the run's latent spaces"))
    return out / "index.html"
