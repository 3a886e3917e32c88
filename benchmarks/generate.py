"""Generate to order (issue 19's goals), with rejection sampling as the baseline in the same run.

- Spec: ``--want`` (default: female, age >= 35, smiling: about 0.5% of the demo run's faces, the rate read
  from the axes' run). ``-n`` faces by steering (``tlgan.jobs.generate_faces``), then random faces drawn until
  they match or ``--budget`` are rendered. Reported: every delivered face relabelled (rendered again and
  labelled) meets the spec; yield (delivered / started, goal >= 80%); faces rendered per delivered face,
  steering and rejection, and their ratio (goal >= 20x).
- Diversity: mean pairwise identity distance (1 - cosine of the extractor's descriptor) of the delivered
  faces over that of random faces (max(n, 1000) of them; goal >= 90%), and the closest delivered pair beside
  the closest pair of random sets of as many faces (no near-duplicates: the delivered set's closest pair is
  not closer than the 5th percentile of random sets'; bootstrap over the random faces). The bar used before,
  random pairs' 1st percentile, is reported too, with the share of random sets that clear it.
- Frontier (``--parts spec,frontier``): what the spread costs. Rejection sampling that renders only the
  latents the axes' models favour (drawn in proportion to P(spec | z)^beta, beta 1, 2, 4), no steering:
  faces rendered per face, and the delivered faces' diversity as above.
- Animation: a GIF of a 7-step move: rendering, and writing beyond it (goal <= 2 s).
- Balanced data set: ``--dataset-n`` faces over male x age:4 (``tlgan.jobs.make_dataset``), every cell's count
  against its quota (goal: within 2%), and its time over ``tlgan sample -n`` of as many faces in the same run
  (goal <= 2x).

Usage: python benchmarks/generate.py [--axes runs/demo/axes.safetensors] [--n 40] [--dataset-n 2000]
       [--parts spec,frontier,animation,dataset] [--no-distinct] [--threads 1]
Writes benchmarks/results/generate[-TAG].json after each part.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, machine
from tlgan.animate import move_frames, write_animation
from tlgan.generate.distinct import identity_distances
from tlgan.generate.plan import MAX_TRIES, _model_bound, calibrate, predict, to_model_scale
from tlgan.generate.stream import LatentStream
from tlgan.jobs import generate_faces, make_dataset, measure_faces, open_generation
from tlgan.sample import open_run, sample

WANT = ("male<0.5", "age>=35", "happy")


def random_sets_closest(pair_distances: np.ndarray, pool: int, size: int, draws: int = 1000) -> np.ndarray:
    """The closest pair's distance in ``draws`` random sets of ``size`` faces out of ``pool`` random faces
    (``pair_distances``: their upper triangle, flat, as ``identity_distances`` gives it)."""
    full = np.zeros((pool, pool))
    full[np.triu_indices(pool, 1)] = pair_distances
    full += full.T
    rng = np.random.default_rng(0)
    out = np.empty(draws)
    for k in range(draws):
        pick = rng.choice(pool, size, replace=False)
        out[k] = full[np.ix_(pick, pick)][np.triu_indices(size, 1)].min()
    return out


def spec_and_diversity(editor, ext, wants, args, work: Path, result: dict, save) -> None:
    """The spec by steering and by rejection sampling; the delivered faces' diversity against random faces."""
    names = ext.feature_names
    res = generate_faces(editor, ext, wants, args.n, work / "faces", seed=args.seed, baseline=args.budget,
                         distinct=args.distinct, candidates=args.candidates)
    relabelled = ext(editor.generator.render(res.latents))
    run_path = editor.axes.meta.get("run")
    run = open_run(run_path) if run_path and Path(run_path, "run.json").exists() else None
    # the axes' own random faces that meet the spec by chance
    meet = res.spec.holds(run.labels(ext.name), names) if run is not None else None
    freq = float(meet.mean()) if meet is not None else None
    summary = res.summary()
    result["spec"] = {**summary, "random_frequency_in_run": freq,
                      "all_relabelled_meet_spec": bool(res.spec.holds(relabelled, names).all()),
                      "goals": {"yield>=0.8": summary["yield"] >= 0.8,
                                "cost_ratio>=20": summary.get("cost_ratio", 0) >= 20}}
    save()

    # ---- diversity
    if ext.has_descriptor:
        _, z = LatentStream(editor.generator, args.seed + 7).draw(max(len(res.faces), 1000))
        random_images = editor.generator.render(z)
        import torch

        d_gen = identity_distances(ext.descriptor(torch.from_numpy(res.images)))
        d_rand = identity_distances(ext.descriptor(random_images))
        # the same spec met by chance: random faces of the axes' run that meet it (their images are cached)
        spec_random: dict = {}
        if run is not None and meet is not None and meet.sum() >= 2 and run.has_images:
            images = run.images.oindex[np.flatnonzero(meet)[:200]]
            d_spec = identity_distances(ext.descriptor(torch.from_numpy(images)))
            spec_random = {"random_meeting_spec": len(images), "random_meeting_spec_mean": float(d_spec.mean()),
                           "ratio_to_random_meeting_spec": float(d_gen.mean() / d_spec.mean()),
                           "random_meeting_spec_closest_pair": float(d_spec.min())}
        # the closest pair of random sets as large as the delivered one (bootstrap over the random faces)
        closest = random_sets_closest(d_rand, len(z), len(res.faces))
        result["diversity"] = {
            "mean_pairwise_identity_distance": float(d_gen.mean()), "random_mean": float(d_rand.mean()),
            "ratio": float(d_gen.mean() / d_rand.mean()), "closest_pair": float(d_gen.min()), **spec_random,
            "random_sets_closest_pair_5th_percentile": float(np.quantile(closest, 0.05)),
            "random_sets_closest_pair_median": float(np.median(closest)),
            # the bar used before: random sets of this size clear it in this share of draws
            "random_pairs_1st_percentile": float(np.quantile(d_rand, 0.01)),
            "random_sets_above_random_pairs_1st_percentile": float((closest > np.quantile(d_rand, 0.01)).mean()),
            "distinct_starting_faces": len({f.index for f in res.faces}),
            "goals": {"ratio>=0.9": bool(d_gen.mean() >= 0.9 * d_rand.mean()),
                      "no_near_duplicates": bool(d_gen.min() > np.quantile(closest, 0.05))}}
        save()
    return res


def spec_log_probability(spec, axes, cal, resid: dict[str, float], latents: np.ndarray) -> np.ndarray:
    """log P(every condition holds | latent) by the axes' linear models, each label read as its prediction plus
    Gaussian noise of the residual spread ``resid`` (model scale; conditions taken as independent)."""
    from scipy.stats import norm

    total = np.zeros(len(latents))
    for c in spec.conditions:
        mu = predict(cal, axes, c.feature, latents)
        lo, hi = (_model_bound(b, c.kind) for b in (c.lo, c.hi))
        s = resid[c.feature]
        p = norm.cdf((hi - mu) / s) - norm.cdf((lo - mu) / s)
        total += np.log(np.maximum(p, 1e-300))
    return total


def cost_of_diversity(editor, ext, res, args, random_descriptors_mean: float, result: dict, save) -> None:
    """Rejection sampling that renders only latents the axes' models favour: candidates drawn in proportion to
    P(spec | latent)^beta (``spec_log_probability``; beta 0 is plain rejection), rendered until ``n`` meet
    the spec or ``--budget`` are rendered. Where does a method that uses the axes less stand between steering's
    cost and the spread of faces that meet the spec by chance?"""
    import torch

    run = open_run(editor.axes.meta["run"])
    names = ext.feature_names
    labels, latents = np.asarray(run.labels(ext.name))[:2000], np.asarray(run.latents[:2000])
    cal = calibrate(res.spec, editor.axes, names, latents, labels)
    resid = {}
    for c in res.spec.conditions:
        g = to_model_scale(labels[:, names.index(c.feature)], c.kind)
        pred = predict(cal, editor.axes, c.feature, latents)
        ok = np.isfinite(g)
        resid[c.feature] = max(float(np.std(g[ok] - pred[ok])), 1e-3)
    measure = measure_faces(editor, ext)
    rows = []
    _, z = LatentStream(editor.generator, args.seed + 101).draw(40 * args.budget)
    log_p = spec_log_probability(res.spec, editor.axes, cal, resid, z)
    for beta in (1.0, 2.0, 4.0):
        key = beta * log_p
        key += np.random.default_rng(args.seed).gumbel(size=len(key))
        order = np.argsort(-key)
        found, rendered, images = 0, 0, []
        while found < args.n and rendered < args.budget:
            batch = z[order[rendered: rendered + min(200, args.budget - rendered)]]
            lab, im = measure(batch)
            hit = res.spec.holds(lab, names)
            images += list(im[hit])
            found += int(hit.sum())
            rendered += len(batch)
        images = images[: args.n]
        ratio = (float(identity_distances(ext.descriptor(torch.from_numpy(np.stack(images)))).mean())
                 / random_descriptors_mean) if len(images) >= 2 else None
        rows.append({"beta": beta, "found": found, "rendered": rendered,
                     "renders_per_face": rendered / max(found, 1),
                     "cost_ratio_vs_plain_rejection": result["spec"]["rejection_renders_per_face"]
                     / (rendered / max(found, 1)), "diversity_ratio": ratio})
        result["cost_of_diversity"] = {"residual_std": resid, "prefiltered_rejection": rows}
        save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--axes", default="runs/demo/axes.safetensors")
    ap.add_argument("--want", action="append", default=None)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--budget", type=int, default=3000, help="random faces rendered at most by rejection sampling")
    ap.add_argument("--dataset-n", type=int, default=2000, help="0 = skip the data set part")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--candidates", type=int, default=32,
                    help="random starts drawn per face started (generate_faces candidates; the nearest is started)")
    ap.add_argument("--distinct", action=argparse.BooleanOptionalAction, default=None,
                    help="nudge near-duplicate faces until they are not (generate_faces distinct; default: the "
                         "library's, on when the extractor has an identity descriptor)")
    ap.add_argument("--parts", default="spec,animation,dataset",
                    help="which parts to run (comma-separated; diversity comes with spec; frontier, which needs "
                         "spec, is the diversity and cost of rejection sampling prefiltered by the axes' models)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    wants = args.want or list(WANT)
    out_path = RESULTS / f"generate{'-' + args.tag if args.tag else ''}.json"
    result: dict = {"machine": machine(), "axes": args.axes, "want": wants, "n": args.n, "seed": args.seed,
                    "candidates": args.candidates, "max_tries": MAX_TRIES}

    def save() -> None:
        result["machine_after"] = machine()
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2)[-1500:], flush=True)

    editor, ext = open_generation(args.axes, "cpu")
    result["field"] = editor.axes.field.kind
    result["distinct"] = ext.has_descriptor if args.distinct is None else args.distinct  # what generate_faces does
    work = Path(tempfile.mkdtemp(prefix="tlgan-generate-bench-"))
    try:
        parts = set(args.parts.split(","))
        # ---- the spec, by steering and by rejection sampling
        if "spec" in parts:
            res = spec_and_diversity(editor, ext, wants, args, work, result, save)
            if "frontier" in parts and "diversity" in result:
                cost_of_diversity(editor, ext, res, args, result["diversity"]["random_mean"], result, save)
        # ---- animation: a 7-step move with a lock
        if "animation" in parts:
            t = time.perf_counter()
            frames = editor.generator.render(move_frames(editor.latent(1), editor.axes, {"age": 3.0}, ["male"], 7))
            frames = frames.cpu().numpy()
            render_s = time.perf_counter() - t
            t = time.perf_counter()
            gif = write_animation(frames, work / "move.gif")
            write_s = time.perf_counter() - t
            result["animation"] = {"frames": 7, "render_s": render_s, "gif_write_s": write_s,
                                   "gif_bytes": gif.stat().st_size, "goals": {"write<=2s": write_s <= 2.0}}
            save()

        # ---- balanced data set vs plain sampling of as many faces
        if args.dataset_n and "dataset" in parts:
            t = time.perf_counter()
            sample(work / "sample", editor.generator, ext, args.dataset_n, seed=args.seed, save_images=True,
                   progress=False)
            sample_s = time.perf_counter() - t
            t = time.perf_counter()
            built = make_dataset(editor, ext, ["male", "age:4"], args.dataset_n, work / "dataset", seed=args.seed,
                                 progress=False)
            dataset_s = time.perf_counter() - t
            quota = args.dataset_n / len(built.counts)
            worst = max(abs(c - quota) / quota for c in built.counts.values())
            result["dataset"] = {"n": args.dataset_n, "cells": built.counts, "worst_cell_off_quota": worst,
                                 "drawn": built.drawn, "steered": built.steered, "rendered": built.rendered,
                                 "seconds": dataset_s, "sample_seconds": sample_s, "ratio": dataset_s / sample_s,
                                 "goals": {"cells_within_2%": worst <= 0.02, "time<=2x_sample": dataset_s <= 2 * sample_s}}
            save()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
