"""Run the pipeline on a GPU: labels agree with the CPU's, and how fast sampling, fitting and editing are there.

Usage: python benchmarks/device_check.py [--n 20000]   (needs a CUDA device)
Writes benchmarks/results/device_check.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tlgan.extractors import load_extractor
from tlgan.generators import load_generator
from tlgan.jobs import fit_file
from tlgan.sample import sample

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    cpu_g, gpu_g = load_generator("digiface-dcgan", "cpu"), load_generator("digiface-dcgan", "cuda")
    cpu_e, gpu_e = load_extractor("faces", "cpu"), load_extractor("faces", "cuda")
    z = cpu_g.sample(256, 0)
    img_cpu, img_gpu = cpu_g.render(z), gpu_g.render(z)
    pixel_diff = (img_cpu.int() - img_gpu.cpu().int()).abs()
    y_cpu, y_gpu = cpu_e(img_cpu), gpu_e(img_cpu.cuda())
    both = np.isfinite(y_cpu) & np.isfinite(y_gpu)
    label_diff = {f: float(np.abs(y_cpu[:, j] - y_gpu[:, j])[both[:, j]].max())
                  for j, f in enumerate(cpu_e.feature_names)}
    with tempfile.TemporaryDirectory() as tmp:
        sample(Path(tmp) / "warm", gpu_g, gpu_e, n=2048, seed=1, save_images=True, progress=False)
        torch.cuda.synchronize()
        t = time.perf_counter()
        run = sample(Path(tmp) / "run", gpu_g, gpu_e, n=args.n, seed=0, save_images=True, progress=False)
        sample_s = time.perf_counter() - t
        t = time.perf_counter()
        axes, _ = fit_file(run.path)
        fit_s = time.perf_counter() - t
    report = {
        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
        "generator_max_pixel_diff_cpu_vs_gpu": int(pixel_diff.max()),
        "generator_mean_pixel_diff": float(pixel_diff.float().mean()),
        "label_max_abs_diff_cpu_vs_gpu": label_diff,
        "face_found_agreement": float((y_cpu[:, 0] == y_gpu[:, 0]).mean()),
        "sample_n": args.n, "sample_seconds": sample_s, "sample_img_per_s": args.n / sample_s,
        "fit_seconds": fit_s, "axes": {n: axes.metrics[n] for n in axes.names},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "device_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
