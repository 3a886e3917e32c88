"""Inversion benchmark (issue 10): encoder only, optimisation only, encoder + optimisation.

On held-out generated DCGAN faces (true latent known) and on real photos: a
centre crop of matplotlib's ``grace_hopper.jpg`` and faces cropped by
hand-picked boxes from the ``@vladmandic/human@3.3.6`` package's ``assets/``
(fetch with ``npm pack @vladmandic/human@3.3.6 --pack-destination /tmp/human``
and untar; ``--human`` points at the untarred ``package``). The boxes are rough
DigiFace-like tight crops until ``tlgan.align`` replaces them.

Writes ``benchmarks/results/invert.json`` and ``docs/inversion.png``.

    PYTHONPATH=src python benchmarks/invert.py [--steps 60] [--n-train 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine  # noqa: E402

from tlgan.extractors import load_extractor  # noqa: E402
from tlgan.generators import load_generator  # noqa: E402
from tlgan.invert import Encoder, invert, reconstruction_quality, train_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (file, box left, top, right, bottom): hand-picked tight face boxes
PHOTOS = [
    ("grace_hopper", None, (135, 85, 405, 355)),
    ("human:screenshot-faceid.jpg", "faceid", (38, 148, 138, 248)),
    ("human:samples.jpg", "samples-woman", (204, 14, 262, 72)),
    ("human:samples.jpg", "samples-man", (440, 18, 484, 62)),
]
LABELS = ("male", "age", "happy", "yaw", "pitch", "mouth_open", "skin_tone", "eyeglasses")


def photo_crops(human: Path) -> dict[str, np.ndarray]:
    out = {}
    for src, name, box in PHOTOS:
        if src == "grace_hopper":
            path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
            name = "grace_hopper"
        else:
            path = human / "assets" / src.split(":", 1)[1]
            if not path.exists():
                print(f"skipping {name}: {path} absent (npm pack @vladmandic/human@3.3.6 and untar)")
                continue
        out[name] = np.asarray(Image.open(path).convert("RGB").crop(box))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--pixel-weight", type=float, default=0.0)
    ap.add_argument("--generated", type=int, default=3)
    ap.add_argument("--identity-weight", type=float, default=0.3)
    ap.add_argument("--human", type=Path, default=Path("/tmp/human/package"))
    ap.add_argument("--encoder", type=Path, help="reuse a saved encoder instead of training one")
    args = ap.parse_args()

    gen = load_generator("digiface-dcgan", "cpu")
    extractor = load_extractor("faces", "cpu")
    t = time.perf_counter()
    if args.encoder:
        enc = Encoder.load(args.encoder, gen)
    else:
        enc = train_encoder(None, gen, n=args.n_train, epochs=args.epochs, pixel_weight=args.pixel_weight,
                            seed=1, log=print)
        enc.save(Path("/tmp/invert_encoder.safetensors"))
    enc_seconds = time.perf_counter() - t
    print("encoder", enc.meta["stats"])

    z = gen.sample(args.generated, 424242)  # a seed no training draw uses
    faces = {f"generated-{i}": img for i, img in enumerate(gen.render(z).numpy())}
    true_z = {f"generated-{i}": z[i] for i in range(len(z))}
    faces.update(photo_crops(args.human))

    rows, figure = {}, {}
    for name, crop in faces.items():
        row: dict = {"kind": "generated" if name in true_z else "photo", "crop_size": list(crop.shape[:2])}
        t = time.perf_counter()
        start = invert(gen, crop, enc, steps=0)
        row["encoder"] = {"seconds": round(time.perf_counter() - t, 3),
                          **reconstruction_quality(crop, start.reconstruction, extractor)}
        outs = {"encoder": start}
        for mode, e in (("optimisation", None), ("encoder+optimisation", enc)):
            inv = invert(gen, crop, e, steps=args.steps, identity_weight=args.identity_weight)
            row[mode] = {"seconds": inv.seconds, "loss_first": inv.losses[0], "loss_best": min(inv.losses),
                         **reconstruction_quality(crop, inv.reconstruction, extractor)}
            outs[mode] = inv
        if name in true_z:
            zz = true_z[name]
            for mode, inv in outs.items():
                lat = inv.latent
                row[mode]["latent_cosine"] = round(float(lat @ zz / np.linalg.norm(lat) / np.linalg.norm(zz)), 4)
        for mode in outs:  # keep only the label summary readable
            labels = row[mode].pop("labels")
            row[mode]["labels"] = {k: [round(v["photo"], 3), round(v["reconstruction"], 3)]
                                   for k, v in labels.items() if k in LABELS}
        rows[name] = row
        figure[name] = (crop, outs["encoder"].reconstruction, outs["encoder+optimisation"].reconstruction)
        print(name, {m: (row[m]["pixel_mae"], row[m].get("identity"), row[m]["seconds"])
                     for m in ("encoder", "optimisation", "encoder+optimisation")}, flush=True)

    summary = {}
    for kind in ("generated", "photo"):
        for mode in ("encoder", "optimisation", "encoder+optimisation"):
            rs = [r[mode] for r in rows.values() if r["kind"] == kind]
            if rs:
                summary[f"{kind}/{mode}"] = {k: round(float(np.mean([r[k] for r in rs])), 3)
                                             for k in ("pixel_mae", "psnr", "identity", "seconds")}
    doc = {"machine": machine(), "generator": gen.name, "space": gen.space,
           "settings": {**vars(args), "human": str(args.human)},
           "encoder": {**enc.meta["stats"], "train_seconds_total": round(enc_seconds, 1)},
           "summary": summary, "faces": rows,
           "label_note": "labels: [photo, reconstruction]; NaN where the face mesh found no face"}
    out = RESULTS / "invert.json"
    out.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(json.dumps(summary, indent=2))
    draw(figure, ROOT / "docs" / "inversion.png")


def draw(figure: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(figure)
    fig, axs = plt.subplots(3, len(names), figsize=(1.6 * len(names), 5.2))
    for j, name in enumerate(names):
        for i, (img, title) in enumerate(zip(figure[name], ("crop", "encoder", "encoder+opt"))):
            ax = axs[i, j]
            ax.imshow(np.asarray(Image.fromarray(img).resize((128, 128), Image.BILINEAR)))
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(title)
            if i == 0:
                ax.set_title(name, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print("wrote", path)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
