"""Inversion benchmark (issue 10): encoder only, optimisation only, encoder + optimisation.

Faces:

- held-out generated faces of the default DCGAN (true latent known; a seed no
  training draw uses), already in the generator's framing;
- real photos, aligned by ``tlgan.align.align_photo`` to the generator's own
  framing (``generator.framing``): matplotlib's ``sample_data/grace_hopper.jpg``
  and the five portraits of ``screenshot-facedetect.jpg`` in the
  ``@vladmandic/human@3.3.6`` package (the weights catalogue's
  ``human-test-photos``; fetched through ``tlgan.weights`` if ``--human`` has
  no ``assets/``).

For each face and mode: pixel error (MAE 0..255, PSNR), faceres identity
similarity of crop and reconstruction, seconds, and the ``faces`` extractor's
labels of crop and reconstruction. The encoder is trained on the generator's
own samples (or loaded with ``--encoder``); it is saved to
``benchmarks/results/invert_encoder.safetensors`` when under 2 MB.

The figure ``docs/inversion.png`` shows, per real photo: the photo around the
face, the aligned crop, the reconstruction (encoder + optimisation), and edits
along the axes of ``--axes`` (fitted by ``tlgan discover -n 3000 --out
/tmp/demo`` when absent) with and without a lock.

Writes ``benchmarks/results/invert.json`` and ``docs/inversion.png``.

    PYTHONPATH=src python benchmarks/invert.py [--steps 100] [--n-train 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine
from tlgan.align import align_photo, apply
from tlgan.extractors import load_extractor
from tlgan.generators import load_generator
from tlgan.invert import Encoder, invert, reconstruction_quality, train_encoder

ROOT = Path(__file__).resolve().parents[1]
MODES = ("encoder", "optimisation", "encoder+optimisation")
LABELS = ("age", "male", "yaw", "happy")  # the labels whose survival the summary reports
KEEP_LABELS = (*LABELS, "pitch", "skin_tone", "eyeglasses", "mouth_open")
EDITS = (("age +2", {"age": 2.0}, ()), ("age +2, male locked", {"age": 2.0}, ("male",)),
         ("happy +1.5", {"happy": 1.5}, ()))
ENCODER_FILE = RESULTS / "invert_encoder.safetensors"


def human_assets(human: Path) -> Path | None:
    if (human / "assets").is_dir():
        return human / "assets"
    try:  # the weights catalogue's copy (tlgan models fetch human-test-photos)
        from tlgan.weights import path_of

        return path_of("human-test-photos", "screenshot-facedetect.jpg").parent
    except Exception as e:  # the photos are optional
        print(f"no @vladmandic/human photos ({e}); npm pack @vladmandic/human@3.3.6 and untar")
        return None


def photos(human: Path) -> list[tuple[str, Path, int]]:
    """(name, path, face index) of each real face."""
    out = [("grace_hopper", Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg", 0)]
    assets = human_assets(human)
    if assets is not None:
        out += [(f"portrait-{k}", assets / "screenshot-facedetect.jpg", k) for k in range(5)]
    return out


def around_face(photo: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """The photo's axis-aligned square around the aligned crop's footprint, for the figure."""
    corners = apply(transform, [[0, 0], [size, 0], [0, size], [size, size]])
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2
    box = [round(v) for v in (cx - half, cy - half, cx + half, cy + half)]
    return np.asarray(Image.fromarray(photo).crop(box))


def ensure_axes(path: Path, n: int) -> Path:
    for _ in range(120):  # a discover started beforehand into the same folder: wait for it (up to 20 min)
        if path.exists() or not (path.parent / "run").exists():
            break
        time.sleep(10)
    if not path.exists():
        out = path.parent
        print(f"fitting axes: tlgan discover -n {n} --out {out}", flush=True)
        subprocess.run([sys.executable, "-c", "from tlgan.cli import main; main()", "discover", "-n", str(n),
                        "--out", str(out)], check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--generated", type=int, default=4)
    ap.add_argument("--identity-weight", type=float, default=0.3)
    ap.add_argument("--human", type=Path, default=Path("/tmp/human/package"))
    ap.add_argument("--axes", type=Path, default=Path("/tmp/demo/axes.safetensors"))
    ap.add_argument("--discover-n", type=int, default=3000, help="samples for the axes when --axes is absent")
    ap.add_argument("--encoder", type=Path, help="reuse a saved encoder instead of training one")
    args = ap.parse_args()

    from tlgan.jobs import open_editor

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    gen = load_generator("digiface-dcgan", "cpu")
    extractor = load_extractor("faces", "cpu")
    t = time.perf_counter()
    if args.encoder:
        enc = Encoder.load(args.encoder, gen)
        trained = False
    else:
        enc = train_encoder(None, gen, n=args.n_train, epochs=args.epochs, seed=1, log=print)
        trained = True
    enc_seconds = time.perf_counter() - t
    if trained:
        enc.save(Path("/tmp/invert_encoder.safetensors"))
        if Path("/tmp/invert_encoder.safetensors").stat().st_size < 2_000_000:
            enc.save(ENCODER_FILE)
    print("encoder", enc.meta["stats"], f"{enc_seconds:.0f} s", flush=True)

    z = gen.sample(args.generated, 424242)  # a seed no training draw uses
    faces: dict[str, dict] = {}
    for i, img in enumerate(gen.render(z).numpy()):
        faces[f"generated-{i}"] = {"crop": img, "true_z": np.asarray(z[i])}
    for name, path, k in photos(args.human):
        t = time.perf_counter()
        photo, aligned = align_photo(path, gen.framing, 256, face=k)
        faces[name] = {"crop": aligned.image, "photo": photo, "transform": aligned.transform,
                       "source": f"{path.name} face {k}", "align_seconds": round(time.perf_counter() - t, 3)}

    rows, results = {}, {}
    for name, face in faces.items():
        crop = face["crop"]
        kind = "generated" if "true_z" in face else "photo"
        row: dict = {"kind": kind}
        if kind == "photo":
            row.update(source=face["source"], align_seconds=face["align_seconds"])
        outs = {}
        for mode in MODES:
            if mode == "encoder":
                inv = invert(gen, crop, enc, steps=0)
            else:
                inv = invert(gen, crop, enc if mode == "encoder+optimisation" else None, steps=args.steps,
                             identity_weight=args.identity_weight)
            q = reconstruction_quality(crop, inv.reconstruction, extractor)
            r = {"seconds": inv.seconds, **{k: q[k] for k in ("pixel_mae", "psnr", "identity")}}
            if inv.losses:
                r.update(loss_first=round(inv.losses[0], 4), loss_best=round(min(inv.losses), 4))
            if kind == "generated":
                zz = face["true_z"]
                r["latent_cosine"] = round(float(inv.latent @ zz / np.linalg.norm(inv.latent) / np.linalg.norm(zz)), 4)
            r["labels"] = {f: [round(v["photo"], 3), round(v["reconstruction"], 3)]
                           for f, v in q["labels"].items() if f in KEEP_LABELS}
            row[mode] = r
            outs[mode] = inv
        rows[name] = row
        results[name] = outs
        print(name, {m: (row[m]["pixel_mae"], row[m]["identity"], row[m]["seconds"]) for m in MODES}, flush=True)

    summary = {}
    for kind in ("generated", "photo"):
        for mode in MODES:
            rs = [r[mode] for r in rows.values() if r["kind"] == kind]
            if not rs:
                continue
            s = {k: round(float(np.mean([r[k] for r in rs])), 3) for k in ("pixel_mae", "psnr", "identity", "seconds")}
            if kind == "generated":
                s["latent_cosine"] = round(float(np.mean([r["latent_cosine"] for r in rs])), 3)
            # label survival: mean |photo - reconstruction| over faces where both were read
            s["label_abs_diff"] = {}
            for f in LABELS:
                d = [abs(r["labels"][f][0] - r["labels"][f][1]) for r in rs
                     if f in r["labels"] and np.isfinite(r["labels"][f]).all()]
                s["label_abs_diff"][f] = round(float(np.mean(d)), 3) if d else None
            s["n"] = len(rs)
            summary[f"{kind}/{mode}"] = s

    axes_path = ensure_axes(args.axes, args.discover_n)
    editor = open_editor(axes_path, "cpu")
    figure = {}
    for name, face in faces.items():
        if "photo" not in face:
            continue
        inv = results[name]["encoder+optimisation"]
        edits = [editor.generator.render(editor.edit(inv.latent, moves, locks)).numpy()[0]
                 for _, moves, locks in EDITS]
        figure[name] = [around_face(face["photo"], face["transform"], 256), face["crop"], inv.reconstruction, *edits]
    titles = ["photo", "aligned crop", "reconstruction", *[t for t, _, _ in EDITS]]
    captions = {n: f"id {rows[n]['encoder+optimisation']['identity']:.2f}" for n in figure}

    doc = {"machine": machine(), "load_average_1min_at_start": load_start,
           "generator": gen.name, "space": gen.space, "framing": gen.framing,
           "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}},
           "encoder": {**enc.meta["stats"], "trained_here": trained, "train_seconds_total": round(enc_seconds, 1),
                       "saved": str(ENCODER_FILE.relative_to(ROOT)) if ENCODER_FILE.exists() else None},
           "summary": summary, "faces": rows, "total_seconds": round(time.perf_counter() - t_start, 1),
           "notes": {"labels": "per face and mode: {feature: [crop, reconstruction]}; NaN where the face mesh "
                               "found no face; label_abs_diff: mean |crop - reconstruction| over faces with both",
                     "identity": "cosine of faceres descriptors of the crop (resized to 64 px) and the "
                                 "reconstruction",
                     "edits": f"figure edits use the axes of {axes_path}"}}
    out = RESULTS / "invert.json"
    out.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(json.dumps(summary, indent=2))
    draw(figure, titles, captions, ROOT / "docs" / "inversion.png")


def draw(figure: dict, titles: list[str], captions: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(figure)
    cols = len(titles)
    fig, axs = plt.subplots(len(names), cols, figsize=(1.55 * cols, 1.6 * len(names) + 0.35), squeeze=False)
    for i, name in enumerate(names):
        for j, img in enumerate(figure[name]):
            ax = axs[i, j]
            ax.imshow(np.asarray(Image.fromarray(img).resize((128, 128), Image.BICUBIC)))
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(name.replace("_", " "), fontsize=8)
            if j == 2:
                ax.set_xlabel(captions[name], fontsize=7)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.4)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print("wrote", path)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
