"""Issue 13's two missed goals, measured with and without the local move's corrector and kept face.

The same local model (``tlgan fit RUN --finder local``, fitted once) is
evaluated on the same held-out faces at distance 3 with the axes file's move
settings switched (``VARIANTS``: the corrector, the kept face at a level, the
shell, alone and together; "neither" is the move before the corrector) and, with
``--linear AXES``, the linear axes beside them. Reported per variant:

- face still found at +3 and -3 for each ``--features`` axis (goal: >= 95%);
- the last of ``--features`` (happy; every axis is measured) with ``--lock`` locked: leakage into the
  locked feature (goal: <= 0.05 std) and the share of control kept (>= 90%);
- control and one edit's time;

and the local model's held-out fit of the features that bound what a latent-space
lock or keep can do (R² / AUC of the MLP beside a linear model's).
Cheaper than ``benchmarks/local_axes.py`` (no identity, one distance, one lock).

Usage: python benchmarks/local_goals.py [--run runs/demo/run] [--n 60] [--linear runs/demo/axes.safetensors]
Writes benchmarks/results/local_goals.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from _common import RESULTS, machine
from tlgan.axes import Axes
from tlgan.evaluate import Scorer, clean, evaluate_axes, heldout_seed, make_heldout
from tlgan.explore import move
from tlgan.extractors import load_extractor
from tlgan.finders import find_run
from tlgan.generators import generator_of
from tlgan.sample import open_run

FEATURES = ("male", "age", "happy")
PRESENT = "present"  # stands for the extractor's declared presence feature (face_found for faces)
OFF: dict = {"correct": False, "keep": None, "shell": False}
VARIANTS = {"neither": OFF,
            "corrector": dict(OFF, correct=True),
            "keep face 0.95": dict(OFF, keep=PRESENT, keep_level=0.95),
            "both 0.95": dict(OFF, correct=True, keep=PRESENT, keep_level=0.95),
            "both 0.99": dict(OFF, correct=True, keep=PRESENT, keep_level=0.99),
            "both 0.999": dict(OFF, correct=True, keep=PRESENT, keep_level=0.999),
            "shell": dict(OFF, shell=True),
            "both + shell 0.95": {"correct": True, "keep": PRESENT, "keep_level": 0.95, "shell": True},
            "both + shell 0.99 (default)": {"correct": True, "keep": PRESENT, "keep_level": 0.99, "shell": True}}


def variant(axes: Axes, settings: dict, presence: str | None) -> Axes:
    """The same local field with its move settings replaced (as an older or differently fitted file would hold)."""
    keep = presence if settings.get("keep") == PRESENT else settings.get("keep")
    return axes.with_field(axes.field.with_settings(replace(axes.field.settings, **dict(settings, keep=keep))))


def edit_ms(axes: Axes, z: np.ndarray, feature: str, lock: str, repeat: int = 5) -> float:
    """Median milliseconds of one edit of one latent: ``feature`` +3 with ``lock`` locked."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        move(z, axes, {feature: 3.0}, [lock])
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="runs/demo/run")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--lock", default="smile_width")
    ap.add_argument("--linear", default=None, help="A linear axes file of the same run to evaluate beside.")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="Which of: " + ", ".join(VARIANTS))
    args = ap.parse_args()
    features = args.features.split(",")

    run = open_run(args.run)
    meta = run.fit_inputs()[3]
    gen, ext = generator_of(meta, "cpu"), load_extractor(meta["extractor"], "cpu")
    t0 = time.perf_counter()
    local = find_run(run, "local")
    fit_s = time.perf_counter() - t0
    fit = {f: {k: local.metrics.get(f, {}).get(k) for k in ("r2", "linear_r2", "auc", "linear_auc")}
           for f in dict.fromkeys([*features, args.lock, local.field.settings.keep or ""]) if f}
    print(f"local model fitted in {fit_s:.1f} s; held-out fit: {fit}")
    scorer = Scorer(gen, ext)
    held = make_heldout(gen, scorer, args.n, heldout_seed(meta["seed"]), identity_n=0)
    keep = local.field.settings.keep
    start = None
    predicted = local.field.predict(held.z) if keep else None
    if keep and predicted is not None:  # how sure the model is of the face on the unedited held-out latents
        p = predicted[:, local.field.names.index(keep)]
        start = {"median": float(np.median(p)),
                 "share_below_keep_level": float((p < local.field.settings.keep_level).mean())}
        print(f"model P({keep}) on the held-out latents: {start}")
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    candidates = {name: variant(local, VARIANTS[name], ext.presence) for name in args.variants.split(",")}
    if args.linear:
        candidates["linear"] = Axes.load(args.linear)
    out: dict[str, dict] = {}
    for name, axes in candidates.items():
        ev = evaluate_axes(axes, scorer, held, (3.0,), features, [args.lock], identity_n=0, progress=False)
        summary = {s["axis"]: s for s in ev.summary()}
        rows = {}
        for f in features:
            s = summary[f]
            lock = next(x for x in ev.lock_table() if x["axis"] == f)
            rows[f] = {"control": s["control"], "found_plus": s.get("found_plus"), "found_minus": s.get("found_minus"),
                       "lock_leak_before": lock["leak_before"], "lock_leak_after": lock["leak_after"],
                       "lock_control_kept": lock["control_kept"]}
        out[name] = {"rows": rows, "edit_ms": edit_ms(axes, held.z[0], features[-1], args.lock), "seconds": ev.seconds}
        print(f"{name}: evaluated in {ev.seconds:.0f} s")
        doc = {"machine": machine(), "run": str(args.run), "n_heldout": args.n, "distance": 3.0, "lock": args.lock,
               "features": features, "local_fit_seconds": fit_s, "local_fit": fit,
               "local_keep_level": local.field.settings.keep_level, "start_face_probability": start,
               "results": out, "note": "2-core CPU shared with other jobs, run on one core: times are noisy upper bounds"}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "local_goals.json").write_text(json.dumps(clean(doc), indent=1))  # after each: a cut run keeps some
    print("| variant | " + " | ".join(f"{f}: found +3 / -3" for f in features)
          + f" | {features[-1]}, {args.lock} locked: leak / control kept | control ({', '.join(features)}) | one edit (ms) |")
    print("|---|" + "---|" * (len(features) + 3))
    for name, r in out.items():
        found = " | ".join(f"{pct(r['rows'][f]['found_plus'])} / {pct(r['rows'][f]['found_minus'])}" for f in features)
        h = r["rows"][features[-1]]
        lock = f"{h['lock_leak_after']:+.2f} / {h['lock_control_kept']:.0%}"
        control = ", ".join(f"{r['rows'][f]['control']:+.2f}" for f in features)
        print(f"| {name} | {found} | {lock} | {control} | {r['edit_ms']:.0f} |")


if __name__ == "__main__":
    main()
