"""Benchmarks of measuring axes (issue 4) on the default model, with the machine they ran on.

- the time each direction finder takes on a run's samples (glm, interfacegan,
  ganspace, sefa), median of ``--repeat`` runs;
- the time to evaluate: re-scoring ``--axes`` glm axes on ``--n`` held-out latents
  at ``--distances``, with the top leaking feature locked per axis and the
  identity descriptor on all of them, as seconds per axis and images per second;
  beside it the rates of its parts measured alone (render, label, descriptor).

Usage: python benchmarks/evaluate.py [--run runs/demo/run] [--n 64] [--device cpu] [--threads 1]
Writes benchmarks/results/evaluate.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import torch

from _common import RESULTS, machine, timed
from tlgan.evaluate import evaluate_axes
from tlgan.finders import load_finder
from tlgan.jobs import load_models, prepare_heldout
from tlgan.sample import open_run


def bench_finders(run, gen, repeat: int) -> dict:
    z, labels, feats, meta = run.fit_inputs()
    out = {}
    for name in ("glm", "interfacegan", "ganspace", "sefa"):
        finder = load_finder(name)
        times = [timed(functools.partial(finder.find, z, labels, feats, gen, meta=dict(meta))) for _ in range(repeat)]
        out[name] = {"seconds_median": statistics.median(times), "seconds_all": times}
        print(f"{name:13s} {statistics.median(times):7.2f} s on {len(z)} samples x {len(feats)} features")
    return {"n_samples": len(z), "n_features": len(feats), "finders": out}


def bench_evaluate(run, gen, ext, n: int, distances: list[float], n_axes: int) -> dict:
    z, labels, feats, meta = run.fit_inputs()
    axes = load_finder("glm").find(z, labels, feats, gen, meta=dict(meta))
    focus = [f for f in ("male", "age", "happy", "mouth_open", "yaw", "pitch", "skin_tone") if f in axes.names]
    rows = (focus or list(axes.names))[:n_axes]
    scorer, held = prepare_heldout(gen, ext, n, meta["seed"], identity_n=n)
    images = gen.render(held.z)
    parts = {"render": n / timed(lambda: gen.render(held.z)), "label": n / timed(lambda: ext(images))}
    if scorer.has_descriptor:
        parts["descriptor"] = n / timed(lambda: ext.descriptor(images))
    scorer.images = 0
    t = time.perf_counter()
    ev = evaluate_axes(axes, scorer, held, distances, rows, locks=1, identity_n=n, progress=False)
    seconds = time.perf_counter() - t
    per_axis = seconds / len(rows)
    print(f"evaluate: {len(rows)} axes x {len(distances)} distances x 2 signs x {n} latents + 1 lock each: "
          f"{seconds:.1f} s ({per_axis:.1f} s/axis, {ev.images / seconds:.0f} img/s); parts alone: "
          + ", ".join(f"{k} {v:.0f} img/s" for k, v in parts.items()))
    return {"n_heldout": n, "distances": distances, "axes": rows, "locks_per_axis": 1, "identity_n": n,
            "seconds": seconds, "seconds_per_axis": per_axis, "images": ev.images,
            "images_per_second": ev.images / seconds, "parts_img_per_s": parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/demo/run"), help="a sampled run of the default model")
    ap.add_argument("--n", type=int, default=64, help="held-out latents for the evaluation timing")
    ap.add_argument("--distances", default="3", help="comma-separated distances")
    ap.add_argument("--axes", type=int, default=3, help="how many axes to evaluate")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each finder (the median is kept)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads [default: torch's]; on a busy shared machine 1 avoids oversubscription")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.run / "run.json").exists():
        raise SystemExit(f"no run at {args.run}: make one with `make demo` (or `tlgan sample`) first")
    run = open_run(args.run)
    gen, ext = load_models(run.generator, run.info["default_labels"], args.device)
    info = machine()
    print(f"machine: {info}")
    result = {"machine": info, "device": str(gen.device), "run": str(args.run), "generator": run.generator,
              "extractor": ext.name, **bench_finders(run, gen, args.repeat),
              "evaluate": bench_evaluate(run, gen, ext, args.n, [float(d) for d in args.distances.split(",")], args.axes)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evaluate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULTS / 'evaluate.json'}")


if __name__ == "__main__":
    main()
