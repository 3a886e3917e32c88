"""Per-move latency of a photo in the explorer, server side, at 512 px (issue 18).

Loads the explorer the way ``tlgan serve`` does (``jobs.open_explorer`` on the demo's
axes, one torch thread per call), opens Grace Hopper's photo (matplotlib's
sample) with fidelity on (inversion, pivotal tuning, a ``PhotoEdit`` at 512 px:
``Explorer.open_photo`` / ``prepare_photo``), then makes ~30 slider moves one at
a time and times what the page's step 1 does for each: the edited latent, the
photo's render (``Explorer.render_photo``) and the JPEG handed to gradio
(``tlgan.app.photos.save_shown``). The
baseline in the same run is the same moves on the generator's 64-px face
(``Explorer.render`` upscaled to 512 px, as the page shows it with fidelity off).
Prints the machine and load and writes benchmarks/results/photo_app_latency.json.

    python benchmarks/photo_app_latency.py [--axes runs/demo/axes.safetensors] [--moves 30]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine

ROOT = Path(__file__).resolve().parents[1]


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1), "moves": len(ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--axes", default=str(ROOT / "runs" / "demo" / "axes.safetensors"))
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--invert-steps", type=int, default=10)  # a move costs the same after any number
    ap.add_argument("--tune-steps", type=int, default=10)
    args = ap.parse_args()

    import matplotlib
    import torch

    from tlgan.app.photos import save_shown
    from tlgan.app.state import set_latent, set_slider
    from tlgan.figures import upscale
    from tlgan.jobs import open_explorer

    photo = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    explorer = open_explorer(args.axes, "cpu", readouts=False, invert_steps=args.invert_steps,
                             tune_steps=args.tune_steps)
    t0 = time.perf_counter()
    work = explorer.open_photo(photo)
    t1 = time.perf_counter()
    work = explorer.prepare_photo(work, fidelity=True, region="face")
    t2 = time.perf_counter()
    assert work.edit is not None
    torch.set_num_threads(1)  # as the server's calls (tlgan.app.web.one_core_per_call)

    rng = np.random.default_rng(0)
    names = explorer.names
    state = set_latent(explorer.initial(), work.inversion.latent)
    moves = [set_slider(state, explorer.axes, names[int(rng.integers(len(names)))], round(float(v), 1))
             for v in rng.uniform(-3, 3, args.moves)]

    def shown(image: np.ndarray) -> bytes:
        buf = io.BytesIO()
        save_shown(image, buf)
        return buf.getvalue()

    def page_64(s) -> None:
        buf = io.BytesIO()
        upscale(explorer.render(s), 512).save(buf, format="PNG", compress_level=1)

    explorer.render_photo(work.edit, moves[0])  # warm up both paths
    page_64(moves[0])
    photo_s, render_s, base_s = [], [], []
    for s in moves:
        a = time.perf_counter()
        image = explorer.render_photo(work.edit, s)
        b = time.perf_counter()
        shown(image)
        c = time.perf_counter()
        page_64(s)
        d = time.perf_counter()
        render_s.append(b - a)
        photo_s.append(c - a)
        base_s.append(d - c)
    load = os.getloadavg()
    doc = {"machine": machine(), "load_average": [round(x, 2) for x in load],
           "photo": "grace_hopper.jpg (512x600)", "working_size": list(work.edit.photo.shape[:2]),
           "invert_steps": args.invert_steps, "tune_steps": args.tune_steps,
           "open_s": round(t1 - t0, 1), "tune_and_session_s": round(t2 - t1, 1),
           "photo_move_render_and_jpeg": percentiles(photo_s), "photo_move_render_only": percentiles(render_s),
           "baseline_64px_face_render_and_png": percentiles(base_s),
           "p95_ratio_to_baseline": round(float(np.percentile(photo_s, 95) / np.percentile(base_s, 95)), 2),
           "mean_ms": round(statistics.fmean(photo_s) * 1000, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "photo_app_latency.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
