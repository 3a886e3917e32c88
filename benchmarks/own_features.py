"""Own features (issue 5) on the default model: the eyeglasses / hat axes two ways, and what locking does.

Inputs (made beforehand, see docs/own-features.md):
- ``--demo-axes``: the demo's axes (``make demo``: runs/demo/axes.safetensors, fitted on faces labels);
- ``--relabel-axes``: axes fitted on the demo run relabelled with a probe extractor trained on the shipped
  hand labels (``tlgan relabel runs/demo/run -e handlabels`` + ``tlgan fit ... --labels handlabels``);
- ``--label-axes``: axes fitted on the hand-labelled latents themselves (``tlgan fit-labels``).

Measures:
1. the two eyeglasses (hat, beard) axes side by side: cosine, and held-out AUC of the projection z . u
   against (a) the hand labels (seed 2024; never in the demo run) and (b) the probe's labels on the
   10,000 demo latents (never in the label file);
2. disentangling, by re-scoring edited held-out faces with ``faces`` (which reports eyeglasses, hat and
   beard through the shipped probes): moving ``--n`` held-out latents +-d along the eyeglasses axis, the
   change of eyeglasses, male and age in std units, without locks, with male locked, age locked, and
   both locked (``tlgan.evaluate.evaluate_axes`` and the joint lock here).

Usage: python benchmarks/own_features.py [--n 200] [--device cpu] [--part all|compare|disentangle]
Writes benchmarks/results/own_features.json (or --out) and an HTML report per axis set under runs/own/report-*.
Part 2 needs neither the run folder nor zarr, so it also runs on a GPU machine with the weights carried.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tlgan.axes import Axes
from tlgan.evaluate import clean, evaluate_axes, half_difference, label_std
from tlgan.explore import edit_delta, retained
from tlgan.extractors import load_extractor
from tlgan.generators import load_generator
from tlgan.jobs import prepare_heldout
from tlgan.labels import load_labels
from tlgan.train import auc

RESULTS = Path(__file__).parent / "results"
FEATS = ("eyeglasses", "hat", "beard")


def merged(demo: Axes, extra: Axes, names) -> Axes:
    """The demo's axes plus ``names`` from ``extra`` (same generator), measured by ``faces``."""
    keep = [n for n in demo.names if n not in names]
    base = demo.subset(keep)
    add = extra.subset(list(names))
    return Axes(base.names + add.names, base.kinds + add.kinds, np.concatenate([base.vectors, add.vectors]),
                np.concatenate([base.slopes, add.slopes]), {**base.metrics, **add.metrics}, {},
                dict(demo.meta, extractor="faces"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-axes", default="runs/demo/axes.safetensors")
    ap.add_argument("--relabel-axes", default="runs/own/axes-relabel.safetensors")
    ap.add_argument("--label-axes", default="runs/own/axes-labels.safetensors")
    ap.add_argument("--labels", default="src/tlgan/data/labels/digiface-dcgan.jsonl")
    ap.add_argument("--probe", default="handlabels", help="label set of the demo run made by the probe extractor")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--distances", default="1.5,3")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(RESULTS / "own_features.json"))
    ap.add_argument("--part", choices=["all", "compare", "disentangle", "speed"], default="all")
    ap.add_argument("--speed-n", type=int, default=4096, help="faces for the probe extractor's images/s")
    ap.add_argument("--report", default="runs/own", help="folder of the HTML reports")
    args = ap.parse_args()
    t0 = time.perf_counter()
    demo, rel, lab = (Axes.load(p) for p in (args.demo_axes, args.relabel_axes, args.label_axes))
    gen = load_generator(demo.meta["generator"], args.device)
    import torch

    out: dict = {"n_heldout": args.n, "axes": {}, "disentangling": {}, "device": str(gen.device),
                 "gpu": torch.cuda.get_device_name(0) if gen.device.type == "cuda" else None}
    if args.part in ("all", "compare"):
        compare(out, gen, rel, lab, args)
    if args.part in ("all", "disentangle"):
        disentangle(out, gen, demo, rel, lab, args)
    if args.part in ("all", "speed"):
        speed(out, gen, args)
    out["seconds"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(clean(out), indent=2) + "\n")
    print(f"{out['seconds']:.0f} s -> {args.out}")


def compare(out: dict, gen, rel: Axes, lab: Axes, args) -> None:
    """1. the two axes side by side."""
    from tlgan.sample import open_run  # zarr: needed here only

    table = load_labels(args.labels)
    z_lab = table.latents(gen)
    run = open_run(rel.meta["run"])
    probe = run.labels(args.probe)
    run_feats = [f.name for f in run.features(args.probe)]
    z_run = run.latents[:len(probe)]
    for f in FEATS:
        if f not in rel.names or f not in lab.names:
            continue
        u_r, u_l = rel.vector(f), lab.vector(f)
        y_hand = table.column(f)
        ok = np.isfinite(y_hand)
        y_probe = probe[:, run_feats.index(f)]
        okp = np.isfinite(y_probe)
        out["axes"][f] = {
            "cosine": float(u_r @ u_l),
            "relabel_axis": {"fit_metrics": rel.metrics[f],
                             "auc_on_hand_labels": auc(y_hand[ok] == 1, z_lab[ok] @ u_r),
                             "n_hand": int(ok.sum()), "probe_positive_rate": float((y_probe[okp] > 0.5).mean())},
            "label_axis": {"fit_metrics": lab.metrics[f],
                           "auc_on_probe_labels_of_demo_run": auc(y_probe[okp] > 0.5, z_run[okp] @ u_l),
                           "n_run": int(okp.sum())},
        }
        print(f, json.dumps(clean(out["axes"][f])))


def speed(out: dict, gen, args) -> None:
    """Images per second of a probe extractor (the shipped one, same size as any faceres probe) on
    rendered faces, as `tlgan relabel` feeds it (uint8 images in chunks of 256)."""
    import torch

    from tlgan.extractors.learned import shipped_folder
    from tlgan.extractors.trained import TrainedExtractor

    ext = TrainedExtractor(shipped_folder(), args.device)
    with torch.inference_mode():
        images = gen.render(gen.sample(args.speed_n, 7)).cpu()
    ext(images[:256])  # warm-up
    if gen.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for lo in range(0, len(images), 256):
        ext(images[lo:lo + 256])
    out["probe_extractor_img_per_s"] = len(images) / (time.perf_counter() - t0)
    print(f"probe extractor: {out['probe_extractor_img_per_s']:.0f} img/s on {gen.device}")


def disentangle(out: dict, gen, demo: Axes, rel: Axes, lab: Axes, args) -> None:
    """2. re-score held-out faces edited along the axes, with faces (which reports eyeglasses, hat, beard)."""
    faces = load_extractor("faces", args.device)
    scorer, held = prepare_heldout(gen, faces, args.n, demo.meta.get("seed", 0), identity_n=min(100, args.n))
    std = label_std(held.labels)
    names = scorer.features
    distances = [float(d) for d in args.distances.split(",")]
    dmax = max(distances)
    for tag, axes_src, rows in (("relabel", rel, ["eyeglasses", "hat", "beard"]), ("labels", lab, ["eyeglasses"])):
        axes = merged(demo, axes_src, [r for r in rows if r in axes_src.names])
        ev = evaluate_axes(axes, scorer, held, distances, rows=[r for r in rows if r in axes.names], locks=None,
                           identity_n=min(100, args.n), corr_labels=held.labels)
        try:
            from tlgan.report import write_evaluation

            write_evaluation(ev, Path(args.report) / f"report-{tag}", f"eyeglasses / hat axes ({tag}) + demo axes")
        except Exception as e:  # the report is a bonus; the numbers below are what counts
            print("report not written:", e)
        rec: dict = {"summary": ev.summary(), "locks": ev.lock_table(), "cosine_with": {}}
        for r in ev.rows:
            i = ev.rows.index(r)
            k = distances.index(dmax)
            row = {n: float(ev.change[k, i, names.index(n)]) for n in ("eyeglasses", "hat", "beard", "male", "age")}
            rec.setdefault("change_at_dmax", {})[r] = row
            rec["cosine_with"][r] = {o: float(axes.vector(r) @ axes.vector(o)) for o in ("male", "age")}
            # male and age locked together (exact projection), measured on the same held-out latents
            for locks in (["male"], ["age"], ["male", "age"]):
                v = edit_delta(axes, {r: 1.0}, locks)
                z = held.z
                labels, _ = scorer(np.concatenate([z + dmax * v, z - dmax * v]))
                ch = half_difference(labels[:len(z)], labels[len(z):])[0] / std
                rec.setdefault("locked", {}).setdefault(r, {})["+".join(locks)] = {
                    "retained": retained(axes.vector(r), np.stack([axes.vector(x) for x in locks])),
                    **{n: float(ch[names.index(n)]) for n in ("eyeglasses", "hat", "beard", "male", "age")}}
            print(tag, r, json.dumps(clean({"free": row, **rec["locked"][r]})))
        out["disentangling"][tag] = rec
    out["images_scored"] = scorer.images
    out["scoring_seconds"] = scorer.seconds
    print(f"{scorer.images} images scored in {scorer.seconds:.0f} s")


if __name__ == "__main__":
    main()
