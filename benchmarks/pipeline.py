"""Benchmarks of the core pipeline on the default model (issue 2), with the machine they ran on.

- step 3: images/s of the whole sampling pipeline (render + label + store) beside
  the images/s of each stage alone, measured in the same run; the stages,
  run one after the other, bound the pipeline at 1 / sum(1 / rate_i);
- step 4: the time to fit every axis of the default extractor from 20,000 samples;
- step 5: latency of rendering one edited image (move + lock projection + generator),
  median and 95th percentile, beside the generator alone.

Usage: python benchmarks/pipeline.py [--n 512] [--device cpu]
Writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import RESULTS, machine, timed
from tlgan.extractors import load_extractor
from tlgan.extractors.faces import FEATURES
from tlgan.extractors.geometry import head_pose, mouth_eyes_smile, skin_and_background
from tlgan.fit import fit_axes
from tlgan.generators import load_generator
from tlgan.pipeline import Editor
from tlgan.sample import sample


def rate(fn, n: int, repeat: int = 2) -> float:
    """Best-of-``repeat`` items per second of ``fn()`` which handles ``n`` items."""
    fn()  # warm up
    best = min(timed(fn) for _ in range(repeat))
    return n / best


def bench_sampling(n: int, device: str) -> dict:
    gen = load_generator("digiface-dcgan", device)
    ext = load_extractor("faces", device)
    z = gen.sample(n, 123)
    images = gen.render(z)
    with torch.inference_mode():
        mesh = ext.mesh(images)
    lm = mesh.landmarks.numpy().astype(np.float64)
    stages = {
        "generator": rate(lambda: gen.render(z), n),
        "faceres": rate(lambda: ext.res(images), n),
        "facemesh (2 passes)": rate(lambda: ext.mesh(images), n),
        "expressions (fer)": rate(lambda: ext.emotion(images), n),
        "geometry + pixels": rate(lambda: (head_pose(lm), mouth_eyes_smile(lm), skin_and_background(images, lm)), n),
    }
    bound = 1.0 / sum(1.0 / r for r in stages.values())
    with tempfile.TemporaryDirectory() as tmp:
        sample(Path(tmp) / "warm", gen, ext, n=gen.batch_size, seed=1, save_images=True, progress=False)
        t = timed(lambda: sample(Path(tmp) / "run", gen, ext, n=n, seed=2, save_images=True, progress=False))
    pipeline = n / t
    return {"n": n, "stages_img_per_s": stages, "bound_img_per_s": bound, "pipeline_img_per_s": pipeline,
            "pipeline_over_bound": pipeline / bound}


def bench_fit(n: int = 20_000) -> dict:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 100)).astype(np.float32)
    w = rng.normal(size=(100, len(FEATURES))) * 0.15
    y = z @ w + rng.normal(size=(n, len(FEATURES)))
    binary = [f.kind == "binary" for f in FEATURES]
    y[:, binary] = 1 / (1 + np.exp(-y[:, binary]))
    y[rng.random(n) < 0.04, 1:] = np.nan  # about 4% of faces not found
    t = timed(lambda: fit_axes(z, y, FEATURES))
    return {"n": n, "features": len(FEATURES), "seconds": t}


def bench_edit(axes_path: Path | None, device: str, reps: int = 200) -> dict:
    gen = load_generator("digiface-dcgan", device)
    if axes_path and axes_path.exists():
        from tlgan.axes import Axes

        axes = Axes.load(axes_path)
    else:  # random unit axes with the default's feature names: the cost does not depend on their values
        from tlgan.axes import Axes

        v = np.random.default_rng(0).normal(size=(len(FEATURES), 100))
        axes = Axes([f.name for f in FEATURES], [f.kind for f in FEATURES], v / np.linalg.norm(v, axis=1)[:, None],
                    np.ones(len(FEATURES)), meta={"generator": gen.name})
    editor = Editor(gen, axes)
    z = editor.latent(0)
    moves = {"age": 1.5, "happy": -1.0}
    locks = ["male", "yaw"]

    def lat(fn) -> dict:
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1000)
        return {"median_ms": float(np.median(ts)), "p95_ms": float(np.percentile(ts, 95))}

    return {"edit_render": lat(lambda: editor.render(z, moves, locks)),
            "generator_only": lat(lambda: gen.render(z[None])), "reps": reps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512, help="images per sampling measurement")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--axes", type=Path, default=Path("runs/demo/axes.safetensors"))
    args = ap.parse_args()
    report = {"machine": machine(), "sampling": bench_sampling(args.n, args.device), "fit": bench_fit(),
              "edit": bench_edit(args.axes, args.device)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
