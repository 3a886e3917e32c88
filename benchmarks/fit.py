"""Fitting at the sample sizes the field uses (issue 12, part 2), with scikit-learn as the baseline in the same run.

(a) all 19 default features (``faces``: 10 soft binary, 9 continuous, ~4% NaN rows
    in all but ``face_found``) on 100k x 100 synthetic samples: the fast path
    (``fit_axes``, :mod:`tlgan.glm`) against the scikit-learn reference
    (``engine="sklearn"``) on the same data — time, axis cosines, chosen
    regularisation and held-out metrics;
(b) the same features on 1M x 512 (StyleGAN W sized) latents written to a
    run-folder-like zarr array in a temporary folder and streamed from it in
    blocks: wall time and peak RSS (the array alone is 2 GB as float32).

Usage: python benchmarks/fit.py [--n 100000] [--big-n 1000000] [--big-d 512] [--skip-big] [--skip-sklearn]
Writes benchmarks/results/fit.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, machine
from tlgan.extractors.faces import FEATURES
from tlgan.fit import fit_axes


def synthetic(n: int, d: int, seed: int = 0, offset: float = 0.0, dtype=np.float32):
    """Latents and labels shaped like the default extractor's: soft binary probabilities, continuous values, NaN rows."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(size=(n, d), dtype=np.float32) + np.float32(offset)
    w = rng.normal(size=(d, len(FEATURES))) * (1.5 / np.sqrt(d))
    y = (z - offset) @ w + rng.normal(size=(n, len(FEATURES)))
    binary = np.array([f.kind == "binary" for f in FEATURES])
    y[:, binary] = 1 / (1 + np.exp(-y[:, binary]))
    y[rng.random(n) < 0.04, 1:] = np.nan  # about 4% of faces not found: NaN in every feature but face_found
    return z.astype(dtype, copy=False), y, w


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(a, b) -> dict:
    """Per feature: cosine of the axes, both regularisations and held-out metrics."""
    out = {}
    for name in a.names:
        i, j = a.index(name), b.index(name)
        ma, mb = a.metrics[name], b.metrics[name]
        key = "r2" if "r2" in ma else "auc"
        out[name] = {"cosine": float(a.vectors[i] @ b.vectors[j]),
                     "regularization": [ma["regularization"], mb["regularization"]],
                     key: [ma[key], mb[key]]}
    return out


def bench_memory(n: int, d: int, skip_sklearn: bool) -> dict:
    z, y, _ = synthetic(n, d)
    t = time.perf_counter()
    fast = fit_axes(z, y, FEATURES)
    t_fast = time.perf_counter() - t
    report = {"n": n, "d": d, "features": len(FEATURES), "fast_seconds": t_fast, "load_after_fast": machine()["load_average_1min"]}
    if not skip_sklearn:
        t = time.perf_counter()
        ref = fit_axes(z, y, FEATURES, engine="sklearn")
        report["sklearn_seconds"] = time.perf_counter() - t
        report["speedup"] = report["sklearn_seconds"] / t_fast
        per = compare(fast, ref)
        report["per_feature"] = per
        report["min_cosine"] = min(v["cosine"] for v in per.values())
        report["same_regularization"] = all(v["regularization"][0] == v["regularization"][1] for v in per.values())
        report["max_metric_difference"] = max(abs(v[k][0] - v[k][1]) for v in per.values() for k in ("r2", "auc") if k in v)
        assert fast.names == ref.names and fast.skipped == ref.skipped
    return report


def bench_streamed(n: int, d: int, chunk: int = 1024) -> dict:
    import zarr

    with tempfile.TemporaryDirectory() as tmp:
        group = zarr.open_group(str(Path(tmp) / "data.zarr"), mode="w")
        codes = group.create_array("codes", shape=(n, d), chunks=(chunk, d), dtype="float32")
        labels = np.empty((n, len(FEATURES)))
        truth = None
        step = 100_000
        t = time.perf_counter()
        for lo in range(0, n, step):  # written in pieces, like a run folder filled chunk by chunk
            zb, yb, w = synthetic(min(step, n - lo), d, seed=1, offset=0.3)
            if truth is None:
                truth = w
            else:  # same true axes, new samples
                rng = np.random.default_rng(lo)
                zb = rng.standard_normal(size=zb.shape, dtype=np.float32) + np.float32(0.3)
                yb = (zb - 0.3) @ truth + rng.normal(size=yb.shape)
                binary = np.array([f.kind == "binary" for f in FEATURES])
                yb[:, binary] = 1 / (1 + np.exp(-yb[:, binary]))
                yb[rng.random(len(yb)) < 0.04, 1:] = np.nan
            codes[lo:lo + len(zb)] = zb
            labels[lo:lo + len(zb)] = yb
            del zb, yb
        t_write = time.perf_counter() - t
        disk = sum(p.stat().st_size for p in (Path(tmp) / "data.zarr").rglob("*") if p.is_file())
        rss_before = rss_mb()
        arr = zarr.open_group(str(Path(tmp) / "data.zarr"), mode="r")["codes"]
        t = time.perf_counter()
        axes = fit_axes(arr, labels, FEATURES)
        t_fit = time.perf_counter() - t
        peak = rss_mb()
    cos_truth = {f.name: float(abs(axes.vectors[axes.index(f.name)] @ truth[:, j]) / np.linalg.norm(truth[:, j]))
                 for j, f in enumerate(FEATURES) if f.name in axes.names}
    return {"n": n, "d": d, "zarr_chunk_rows": chunk, "array_gb": n * d * 4 / 1e9, "disk_gb": disk / 1e9,
            "write_seconds": t_write, "fit_seconds": t_fit, "load_after_fit": machine()["load_average_1min"],
            "peak_rss_mb": peak, "rss_before_fit_mb": rss_before,
            "min_cosine_with_true_axes": min(cos_truth.values()),
            "metrics": {k: {m: v for m, v in axes.metrics[k].items() if m in ("r2", "auc", "regularization")}
                        for k in axes.names}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--big-n", type=int, default=1_000_000)
    ap.add_argument("--big-d", type=int, default=512)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "fit.json")
    args = ap.parse_args()
    report: dict = {"machine": machine()}
    report["in_memory"] = bench_memory(args.n, args.d, args.skip_sklearn)
    print(json.dumps(report, indent=2))
    if not args.skip_big:
        report["streamed"] = bench_streamed(args.big_n, args.big_d)
        report["machine_after"] = machine()
        print(json.dumps(report["streamed"], indent=2))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
