"""Compare the two expression networks (fer's Keras net and human's TF.js net) on generated faces.

Why: the default extractor needs one expression model, and the choice should
rest on what each says about *these* faces, not on their papers. For each
label shared by both, the script writes a contact sheet of the top-16 faces
per model (checked by eye afterwards), and a table with throughput, agreement
between the models, and correlation with mouth opening and smile width
measured on the face mesh (both are visible, label-free proxies).

    python benchmarks/compare_expression_models.py /tmp/emotion_compare --n 1000 --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from tlgan.extractors.geometry import mouth_eyes_smile
from tlgan.extractors.human import HUMAN_EMOTION_LABELS, FaceMesh, HumanEmotion
from tlgan.extractors.keras_h5 import FER_LABELS, FerEmotion
from tlgan.generators import load_generator

SHEET_LABELS = ("happy", "surprise", "neutral", "sad", "angry")
TOP, CELL = 16, 128


def run_timed(model: Callable[[torch.Tensor], torch.Tensor], faces: torch.Tensor,
              batch: int = 64, repeats: int = 3) -> tuple[np.ndarray, float]:
    """Probabilities for all faces, and the throughput in images per second (best of ``repeats`` passes)."""
    model(faces[:batch])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        probs = torch.cat([torch.as_tensor(model(faces[i:i + batch])) for i in range(0, len(faces), batch)])
        best = min(best, time.perf_counter() - t)
    return probs.float().numpy(), len(faces) / best


def mouth_and_smile(faces: torch.Tensor) -> np.ndarray:
    """(N, 2) mouth opening and smile width from the face mesh (NaN where it finds no face)."""
    mesh = FaceMesh(device="cpu")(faces)
    geo = mouth_eyes_smile(mesh.landmarks.double().numpy())[:, [0, 2]]
    geo[mesh.face_prob.numpy() < 0.5] = np.nan
    return geo


def sheet(faces: torch.Tensor, columns: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Image.Image:
    """One 4x4 grid per model, side by side: the faces with the highest probability, each with its value."""
    side = 4 * CELL
    img = Image.new("RGB", (len(columns) * (side + 16), side + 24), "white")
    draw = ImageDraw.Draw(img)
    for c, (name, (idx, p)) in enumerate(columns.items()):
        x0 = c * (side + 16)
        draw.text((x0 + 4, 4), f"{name}: {title}", fill="black")
        for k, i in enumerate(idx):
            face = Image.fromarray(faces[i].numpy()).resize((CELL, CELL), Image.NEAREST)
            x, y = x0 + (k % 4) * CELL, 24 + (k // 4) * CELL
            img.paste(face, (x, y))
            draw.text((x + 3, y + 3), f"#{k + 1} {p[i]:.2f}", fill="yellow", stroke_width=1, stroke_fill="black")
    return img


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    g = load_generator("digiface-dcgan", device="cpu")
    faces = g.render(g.sample(args.n, seed=args.seed))
    models = {"fer": (FerEmotion(device="cpu"), FER_LABELS), "human": (HumanEmotion(device="cpu"), HUMAN_EMOTION_LABELS)}
    probs, speed = {}, {}
    for name, (model, labels) in models.items():
        p, speed[name] = run_timed(model, faces)
        probs[name] = {lab: p[:, labels.index(lab)] for lab in labels}
    geo = mouth_and_smile(faces)
    shared = [lab for lab in FER_LABELS if lab in HUMAN_EMOTION_LABELS]

    argmax = {m: np.array([max(probs[m], key=lambda lab: probs[m][lab][i]) for i in range(args.n)]) for m in probs}
    lines = [f"# Expression models on {args.n} generated faces (seed {args.seed})", "",
             f"speed (img/s, batch 64, {torch.get_num_threads()} CPU threads, best of 3): "
             + ", ".join(f"{m} {s:.0f}" for m, s in speed.items()),
             f"faces with a mesh: {np.isfinite(geo[:, 0]).mean():.1%}; "
             f"top-1 label agreement fer vs human: {(argmax['fer'] == argmax['human']).mean():.1%}", "",
             "| label | r(fer, human) | top-16 overlap | top-100 overlap | fer mean | human mean "
             "| r(fer, mouth) | r(human, mouth) | r(fer, smile) | r(human, smile) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for lab in shared:
        a, b = probs["fer"][lab], probs["human"][lab]
        top = {k: len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) for k in (TOP, 100)}
        lines.append(f"| {lab} | {corr(a, b):.2f} | {top[TOP]}/{TOP} | {top[100]}/100 | {a.mean():.3f} | {b.mean():.3f} "
                     f"| {corr(a, geo[:, 0]):.2f} | {corr(b, geo[:, 0]):.2f} "
                     f"| {corr(a, geo[:, 1]):.2f} | {corr(b, geo[:, 1]):.2f} |")
    for lab in SHEET_LABELS:
        cols = {m: (np.argsort(-probs[m][lab])[:TOP], probs[m][lab]) for m in probs}
        sheet(faces, cols, lab).save(args.out / f"top{TOP}_{lab}.png")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    np.savez_compressed(args.out / "probs.npz", mouth_smile=geo,
                        **{f"{m}_{lab}": v for m in probs for lab, v in probs[m].items()})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
