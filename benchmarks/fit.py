"""Fitting at the sample sizes the field uses (issue 12, part 2), with scikit-learn as the baseline in the same run.

(a) all 19 default features (``faces``: 10 soft binary, 9 continuous, ~4% NaN rows
    in all but ``face_found``) on 100k x 100 synthetic samples in memory: the fast path
    (``fit_axes``, :mod:`tlgan.glm`) against the scikit-learn reference
    (``engine="sklearn"``) on the same data: time, axis cosines, chosen
    regularisation and held-out metrics;
(b) the same 19 features on 1M x 512 (StyleGAN W sized) latents in a run folder written by
    ``tlgan.sample`` (a synthetic 512-d generator whose images encode 19 noisy linear
    labels, read back by a matching extractor; z alone is 2 GB), made once under /tmp and
    reused, deleted at the end unless ``--keep``. Fitted streamed from the run folder
    (``Run.fit_inputs(stream=True)``, what ``tlgan fit`` does) and, beside it, from the
    latents loaded into memory, each in a fresh process: wall time and peak RSS. Also the
    time of one bare read of the latents, and the passes the fit made. scikit-learn on all
    1M x 512 is out of reach here (each of its 60 fits is a Newton solve on 1.6M duplicated
    rows), so its baseline is the first ``--sub-n`` rows of the same run, fitted by both paths.

Usage: python benchmarks/fit.py [--n 100000] [--big-n 1000000] [--big-d 512] [--sub-n 50000]
                                [--skip-big] [--skip-sklearn] [--skip-in-ram] [--keep]
Writes benchmarks/results/fit.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import RESULTS, machine
from tlgan.extractors import Extractor
from tlgan.extractors.faces import FEATURES
from tlgan.fit import fit_axes
from tlgan.generators import Generator

BIG_RUN = Path("/tmp/tlgan-bench-fit-run")


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


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads: on a shared machine a steadier measure
    of the work than the wall time (on an idle 2-core machine the wall time is about half of it or more)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


def summary(per: dict) -> dict:
    return {"min_cosine": min(v["cosine"] for v in per.values()),
            "same_regularization": all(v["regularization"][0] == v["regularization"][1] for v in per.values()),
            "max_metric_difference": max(abs(v[k][0] - v[k][1]) for v in per.values() for k in ("r2", "auc")
                                         if k in v)}


def bench_memory(n: int, d: int, skip_sklearn: bool) -> dict:
    z, y, _ = synthetic(n, d)
    fit_axes(z[:2000], y[:2000], FEATURES)  # warm up (imports, thread pools)
    t, c = time.perf_counter(), cpu_seconds()
    fast = fit_axes(z, y, FEATURES)
    t_fast = time.perf_counter() - t
    report = {"n": n, "d": d, "features": len(FEATURES), "fast_seconds": t_fast,
              "fast_cpu_seconds": cpu_seconds() - c, "load_after_fast": machine()["load_average_1min"]}
    if not skip_sklearn:
        t, c = time.perf_counter(), cpu_seconds()
        ref = fit_axes(z, y, FEATURES, engine="sklearn")
        report["sklearn_seconds"] = time.perf_counter() - t
        report["sklearn_cpu_seconds"] = cpu_seconds() - c
        report["load_after_sklearn"] = machine()["load_average_1min"]
        report["speedup"] = report["sklearn_seconds"] / t_fast
        per = compare(fast, ref)
        report.update(summary(per), per_feature=per)
        assert fast.names == ref.names and fast.skipped == ref.skipped
    return report


# ---------------------------------------------------------------- (b) a 1M x 512 run folder


class LinearCodeGenerator(Generator):
    """A stand-in for a 512-d generator: its 8x8 image carries 19 noisy linear functions of z (16 bits each)
    and a "no face" flag, which :class:`LinearCodeExtractor` reads back as the ``faces`` extractor's 19 features."""

    name = "bench-linear-512"
    resolution = 8

    def __init__(self, dim: int = 512) -> None:
        super().__init__("cpu")
        self.latent_dim = dim
        self.batch_size = 8192
        g = torch.Generator().manual_seed(12)
        self.axes = torch.randn(dim, len(FEATURES), generator=g) * (1.5 / np.sqrt(dim))
        self.noise_dirs = torch.randn(dim, len(FEATURES) + 1, generator=g) / np.sqrt(dim)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        # noise of unit variance that is a fixed function of z but uncorrelated with it; ~4% of rows flagged
        wobble = torch.sin(997.0 * (z @ self.noise_dirs))
        v = z @ self.axes + np.sqrt(2.0) * wobble[:, :-1]
        q = ((v.clamp(-7.99, 7.99) + 8) / 16 * 65535).round()
        hi, lo = torch.div(q, 256, rounding_mode="floor"), torch.remainder(q, 256)
        flag = (wobble[:, -1] > np.cos(0.04 * np.pi)).float() * 255
        px = torch.zeros(len(z), 3 * 8 * 8)
        k = len(FEATURES)
        px[:, :k], px[:, k:2 * k], px[:, 2 * k] = hi, lo, flag
        return (px / 127.5 - 1).view(len(z), 3, 8, 8)


class LinearCodeExtractor(Extractor):
    name = "bench-linear-512"
    features = FEATURES

    def __init__(self) -> None:
        super().__init__("cpu")
        self.batch_size = 8192

    def extract(self, images: torch.Tensor) -> np.ndarray:
        px = images.permute(0, 3, 1, 2).reshape(len(images), -1).double()
        k = len(FEATURES)
        v = (px[:, :k] * 256 + px[:, k:2 * k]) / 65535 * 16 - 8
        binary = torch.tensor([f.kind == "binary" for f in FEATURES])
        v[:, binary] = torch.sigmoid(v[:, binary])
        v[px[:, 2 * k] > 127, 1:] = float("nan")
        return v.float().numpy()


def make_run(path: Path, n: int, d: int, chunk: int) -> dict:
    """The run folder, written by ``tlgan.sample`` (resumes or reuses one already there)."""
    from tlgan.sample import sample

    t = time.perf_counter()
    run = sample(path, LinearCodeGenerator(d), LinearCodeExtractor(), n=n, seed=0, chunk=chunk, progress=False)
    disk = sum(p.stat().st_size for p in (path / "data.zarr" / "z").rglob("*") if p.is_file())
    return {"run": str(path), "n": run.n, "d": d, "chunk_rows": chunk, "z_gb_on_disk": disk / 1e9,
            "write_or_reuse_seconds": time.perf_counter() - t}


def child(mode: str, path: Path, out: Path, rows: int | None) -> None:
    """In a fresh process: fit the run (streamed or loaded whole) and print time, peak RSS and the passes made."""
    from tlgan import glm
    from tlgan.sample import open_run

    info: dict = {}
    solve = glm.solve

    def spy(*a, **k):
        sols, facts = solve(*a, **k)
        info.update(facts)
        return sols, facts

    glm.solve = spy
    run = open_run(path)
    rss0 = rss_mb()
    t = time.perf_counter()
    if mode == "read":  # one bare pass over the latents, as the fit reads them
        z = run.latent_array()
        rows_per = glm.block_rows(z)
        for _lo, _hi, _block in glm._blocks(z, rows_per):
            pass
        print(json.dumps({"read_seconds": time.perf_counter() - t, "read_cpu_seconds": cpu_seconds(),
                          "rows_per_block": rows_per,
                          "peak_rss_mb": rss_mb()}))
        return
    z, labels, feats, _ = run.fit_inputs(stream=mode == "streamed")
    if rows:
        z, labels = z[:rows], labels[:rows]
    t_load = time.perf_counter() - t
    engine = "sklearn" if mode == "sklearn" else "fast"
    t, c = time.perf_counter(), cpu_seconds()
    axes = fit_axes(z, labels, feats, engine=engine)
    t_fit = time.perf_counter() - t
    cpu = cpu_seconds() - c
    axes.save(out)
    print(json.dumps({"mode": mode, "rows": len(labels), "load_seconds": t_load, "fit_seconds": t_fit,
                      "fit_cpu_seconds": cpu,
                      "peak_rss_mb": rss_mb(), "rss_before_mb": rss0, "fit_facts": info,
                      "load_after": machine()["load_average_1min"]}))


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_big(n: int, d: int, sub_n: int, chunk: int, skip_in_ram: bool, skip_sklearn: bool, keep: bool) -> dict:
    from tlgan.axes import Axes

    report = {"run": make_run(BIG_RUN, n, d, chunk)}
    tmp = BIG_RUN.parent / (BIG_RUN.name + "-axes")
    tmp.mkdir(exist_ok=True)
    try:
        report["bare_read"] = in_child("read", str(BIG_RUN), "-")
        report["streamed"] = in_child("streamed", str(BIG_RUN), str(tmp / "streamed.safetensors"))
        streamed = Axes.load(tmp / "streamed.safetensors")
        truth = LinearCodeGenerator(d).axes.numpy()
        report["streamed"]["min_cosine_with_true_axes"] = min(
            float(abs(streamed.vectors[streamed.index(f.name)] @ truth[:, j]) / np.linalg.norm(truth[:, j]))
            for j, f in enumerate(FEATURES) if f.name in streamed.names)
        report["streamed"]["metrics"] = {k: {m: v for m, v in streamed.metrics[k].items()
                                             if m in ("r2", "auc", "regularization")} for k in streamed.names}
        if not skip_in_ram:
            report["in_ram"] = in_child("in_ram", str(BIG_RUN), str(tmp / "in_ram.safetensors"))
            per = compare(streamed, Axes.load(tmp / "in_ram.safetensors"))
            report["in_ram"]["versus_streamed"] = summary(per)
        if not skip_sklearn:
            sub = {"rows": sub_n}
            sub["fast"] = in_child("streamed", str(BIG_RUN), str(tmp / "sub_fast.safetensors"), "--rows", str(sub_n))
            sub["sklearn"] = in_child("sklearn", str(BIG_RUN), str(tmp / "sub_sk.safetensors"), "--rows", str(sub_n))
            sub["speedup"] = sub["sklearn"]["fit_seconds"] / sub["fast"]["fit_seconds"]
            per = compare(Axes.load(tmp / "sub_fast.safetensors"), Axes.load(tmp / "sub_sk.safetensors"))
            sub.update(summary(per), per_feature=per)
            report["sklearn_on_subsample"] = sub
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not keep:
            shutil.rmtree(BIG_RUN, ignore_errors=True)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--big-n", type=int, default=1_000_000)
    ap.add_argument("--big-d", type=int, default=512)
    ap.add_argument("--sub-n", type=int, default=50_000, help="rows of the big run scikit-learn is compared on")
    ap.add_argument("--chunk", type=int, default=1024, help="rows per chunk of the big run folder")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-in-ram", action="store_true")
    ap.add_argument("--keep", action="store_true", help=f"keep the big run folder ({BIG_RUN}) for the next run")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "RUN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS / "fit.json")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.rows)
        return
    report: dict = {"machine": machine()}
    if not args.skip_small:
        report["in_memory"] = bench_memory(args.n, args.d, args.skip_sklearn)
        print(json.dumps(report["in_memory"], indent=2), flush=True)
    if not args.skip_big:
        report["big"] = bench_big(args.big_n, args.big_d, args.sub_n, args.chunk, args.skip_in_ram,
                                  args.skip_sklearn, args.keep)
        print(json.dumps(report["big"], indent=2), flush=True)
    report["machine_after"] = machine()
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
