"""Local (latent-dependent) axes against tlgan's linear GLM axes on the same run and the same held-out faces.

What ``tlgan compare RUN --finders glm,local`` measures (re-scoring of edited
held-out latents: control, leakage, face found, identity, locking), reduced to
the goals of issue 13 for the features ``--features``:

- control at distance 3 (std of the feature), local vs linear;
- face still found at +3 and -3 (the smaller of the two);
- identity drift (faceres cosine distance) per std of control;
- with each of ``--locks`` locked in turn: leakage into the locked feature and the
  share of control kept (happy with smile_width locked is the case the linear axes fail);

and the times: fitting each finder, and one edit (two moves, two locks) of one latent.
Draws ``--figure``: the same faces moved by linear and local axes at -4, -3, 0, +3, +4.

Usage: python benchmarks/local_axes.py [--run runs/demo/run] [--n 100] [--figure docs/local_traversal.png]
Writes benchmarks/results/local_axes.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, machine
from tlgan.evaluate import clean, compare_finders
from tlgan.explore import move
from tlgan.extractors import load_extractor
from tlgan.figures import compare_traversals
from tlgan.generators import generator_of
from tlgan.pipeline import showcase_latents
from tlgan.sample import open_run

FEATURES = ("male", "age", "happy", "mouth_open", "yaw")
LOCKS = ("smile_width", "skin_tone")


def edit_seconds(axes, z: np.ndarray, repeat: int = 20) -> float:
    """Median seconds of one edit of one latent: age +2, happy +1 with male and skin_tone locked."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        move(z, axes, {"age": 2.0, "happy": 1.0}, ["male", "skin_tone"])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def goal_rows(cmp, features, d_index: int) -> list[dict]:
    """Per (feature, finder): control, face found, identity per std at ``d_index``; lock results."""
    out = []
    for f in features:
        for r in cmp.results:
            ev = r.evaluation
            if f not in ev.rows:
                continue
            i = ev.rows.index(f)
            s = ev.summary(d_index)[i]
            s_max = ev.summary()[i]
            locks = [x for x in ev.lock_table() if x["axis"] == f]
            out.append({"feature": f, "finder": r.name, "distance": ev.distances[d_index], "control": s["control"],
                        "leakage": s["leakage"], "found_plus": s.get("found_plus"), "found_minus": s.get("found_minus"),
                        "identity_per_std": s_max.get("identity_per_std"),
                        "locks": {x["lock"]: {"leak_before": x["leak_before"], "leak_after": x["leak_after"],
                                              "control_kept": x["control_kept"]} for x in locks}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="runs/demo/run")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--locks", default=",".join(LOCKS), help="Features locked in turn on every axis.")
    ap.add_argument("--figure", default="docs/local_traversal.png")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    run = open_run(args.run)
    meta = run.fit_inputs()[3]
    gen = generator_of(meta, args.device)
    ext = load_extractor(meta["extractor"], args.device)
    cmp = compare_finders(run, ["glm", "local"], gen, ext, n=args.n, distances=(1.5, 3.0), features=FEATURES,
                          locks=args.locks.split(","), identity_n=args.n, norm_check=False, progress=True)
    axes = {r.name: r.axes for r in cmp.results}
    z = gen.sample(1, 7)[0]
    timing = {"find_seconds": {r.name: r.find_seconds for r in cmp.results},
              "edit_seconds": {name: edit_seconds(a, z) for name, a in axes.items()}}
    rows = goal_rows(cmp, FEATURES, cmp.distances.index(3.0))
    faces = showcase_latents(gen, ext, 2, 10_000)
    fig = compare_traversals(gen, [("linear", axes["glm"]), ("local", axes["local"])], faces, FEATURES,
                             [-4, -3, 0, 3, 4], cell=72,
                             title="the same faces: linear GLM axes vs local axes (tlgan fit --finder local)")
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.save(args.figure)
    doc = {"machine": machine(), "run": str(args.run), "n_heldout": args.n, "features": FEATURES,
           "locks": args.locks.split(","),
           "timing": timing, "goals": rows, "comparison": cmp.to_json(),
           "note": "2-core CPU shared with other jobs: times are noisy upper bounds"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "local_axes.json").write_text(json.dumps(clean(doc), indent=1))
    print(f"fit: glm {timing['find_seconds']['glm']:.1f} s, local {timing['find_seconds']['local']:.1f} s; "
          f"one edit: linear {timing['edit_seconds']['glm'] * 1e3:.2f} ms, "
          f"local {timing['edit_seconds']['local'] * 1e3:.2f} ms")
    print("| feature | axes | control at 3 | found at ±3 (min) | identity / std | leak into lock after | control kept |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        found = min(r["found_plus"], r["found_minus"]) if r["found_plus"] is not None else float("nan")
        locks = "; ".join(f"{k} {v['leak_before']:+.2f}→{v['leak_after']:+.2f}" for k, v in r["locks"].items())
        kept = "; ".join(f"{k} {v['control_kept']:.0%}" for k, v in r["locks"].items())
        print(f"| {r['feature']} | {'linear' if r['finder'] == 'glm' else 'local'} | {r['control']:+.2f} | "
              f"{found:.0%} | {r['identity_per_std']:.3f} | {locks} | {kept} |")


if __name__ == "__main__":
    main()
