"""Step 3 on Ray beside the plain local pipeline, in the same run (issue 14).

On the default models (DCGAN + faces), with images stored, on this machine:

- local: ``tlgan.sample.sample`` in this process (the baseline);
- Ray with 1, 2, ... workers (a local Ray on this machine), each a fresh run:
  wall time including the workers' start, the throughput once the first
  worker was ready, and the throughput once all were ready (steady state);
- the writer alone: the driver storing finished chunks (images, labels) into a
  run folder, with nothing to compute: the most samples per second one driver
  can take in, whatever the cluster behind it (with images at the run's chunk, and labels only, as
  ``--no-save-images`` stores them, at 1,024 per chunk as on a GPU).

Usage: python benchmarks/ray_sampling.py [--n 1024] [--chunk 128] [--workers 1,2] [--device cpu]
Writes benchmarks/results/ray_sampling.json (ray_sampling_gpu.json with --device cuda).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from _common import RESULTS, machine, timed
from tlgan.distributed import ModelSpec
from tlgan.distributed import sample as sample_on_ray
from tlgan.jobs import load_models
from tlgan.sample import ChunkWriter, create_run, open_run, sample


def steady_rate(report) -> float | None:
    """Samples per second between the moment every worker was ready and the end (None: too few chunks)."""
    start = max(report.ready_at)
    after = [(t, k) for t, k in report.timeline if t > start]
    before = max((k for t, k in report.timeline if t <= start), default=0)
    if len(after) < 2:
        return None
    t_end, k_end = after[-1]
    return (k_end - before) / (t_end - start)


def bench_writer(folder: Path, gen, ext, n: int, chunk: int, images: bool = True) -> float:
    """Samples per second the driver stores, given finished chunks (noisy images: the compressor's worst case
    is noise, so real faces, which compress better, are written at least this fast)."""
    run = create_run(folder, gen, ext, n, seed=0, chunk=chunk, save_images=images)
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, size=(chunk, gen.resolution, gen.resolution, 3), dtype=np.uint8)
    pictures[:, : gen.resolution // 2] //= 16  # half the picture flat-ish, as a face crop's background
    labels = rng.normal(size=(chunk, len(ext.features))).astype(np.float32)
    writer = ChunkWriter(run, f"labels/{ext.name}", images=images)

    def write_all() -> None:
        for lo, hi in writer.pending():
            writer.write(lo, hi, labels[: hi - lo], pictures[: hi - lo] if images else None)

    return n / timed(write_all)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1024, help="samples per measurement")
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (one worker per GPU)")
    args = ap.parse_args()
    import ray

    spec = ModelSpec("digiface-dcgan", "faces")
    gen, ext = load_models(spec.generator, spec.extractor, args.device)
    out: dict = {"machine": machine(), "n": args.n, "chunk": args.chunk, "device": args.device, "ray": ray.__version__,
                 "models": f"{spec.generator} + {spec.extractor}, images stored"}
    with tempfile.TemporaryDirectory() as tmp:
        sample(Path(tmp) / "warm", gen, ext, n=args.chunk, seed=1, chunk=args.chunk, save_images=True, progress=False)
        t = timed(lambda: sample(Path(tmp) / "local", gen, ext, n=args.n, seed=2, chunk=args.chunk, save_images=True,
                                 progress=False))
        out["local_img_per_s"] = args.n / t
        out["writer_alone_img_per_s"] = bench_writer(Path(tmp) / "writer", gen, ext, max(args.n, 4096), args.chunk)
        out["writer_alone_labels_only_img_per_s"] = bench_writer(Path(tmp) / "writer-labels", gen, ext, 65_536,
                                                                 1024, images=False)
        # Ray runs its workers at niceness 15; on a machine shared with other jobs that would time the priority,
        # not Ray: give them the driver's
        niceness = "RAY_worker_niceness"  # Ray's own spelling of the variable, lower case and all
        os.environ.setdefault(niceness, "0")
        out["ray_worker_niceness"] = int(os.environ[niceness])
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="warning")
        out["ray_resources"] = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
        out["ray"] = []
        for w in (int(x) for x in args.workers.split(",")):
            run, rep = sample_on_ray(Path(tmp) / f"ray{w}", spec, args.n, seed=2, chunk=args.chunk, save_images=True,
                                     progress=False, workers=w, device=args.device)
            same = bool(np.array_equal(run.images[:], open_run(Path(tmp) / "local").images[:]))
            steady = steady_rate(rep)
            out["ray"].append({
                "workers": w, "wall_s": rep.seconds, "first_worker_ready_s": rep.startup,
                "all_workers_ready_s": max(rep.ready_at), "wall_img_per_s": args.n / rep.seconds,
                "img_per_s_after_first_ready": rep.rate, "steady_img_per_s": steady,
                "steady_over_local": None if steady is None else steady / out["local_img_per_s"],
                "images_identical_to_local": same})
            print(json.dumps(out["ray"][-1]))
        ray.shutdown()
    RESULTS.mkdir(exist_ok=True)
    name = "ray_sampling.json" if args.device == "cpu" else "ray_sampling_gpu.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
