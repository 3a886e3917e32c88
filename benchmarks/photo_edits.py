"""Photo edits that keep the person (issue 18): the new way (tuned generator, the photo's own pixels moved
with the edit, blended) against today's (the generator's reconstruction pasted back), in the same run.

For each photo of a folder and each edit (happy +1.5; age +2 with male locked; yaw +1.5, a head turn), and each method:

- ``identity``: the distance between the photo's and the edited photo's descriptors by an independent
  judge, dlib's face-recognition ResNet (registry packages ``dlib-bin`` and ``face-recognition-models``;
  the ``bench`` extra). < 0.6 means the same person. It is used here only, never in any loss;
- ``moved``: the change of the moved feature that the ``faces`` extractor reads on the edited photo, as a
  fraction of the mean change the same move (same locks) gives on generated faces. Both changes are
  measured in the scale the axes are fitted in: logits for binary features (happy, male: a change of
  probability near 0 or 1 says nothing; P(happy) 0.005 -> 0.04 is +2.1 logits), years for age;
- ``moved_like_for_like``: the same change over the mean change on the 48 generated faces that read nearest
  the photo before the move. A feature that already reads high moves less on generated faces too (a smile
  already broad, an age the generator seldom draws), so this asks only what the generator does to faces that
  start where the photo does; ``like_for_like.start_range`` shows how near those faces came;
- ``leak``: the change of each locked feature on the photo (same scale), in units of its std over
  generated faces;
- ``reconstruction``: the same two readings on the tuned generator's own face of the photo (its 64-px
  picture of the pivot, before and after the move). This separates the two causes of a short move: the
  generator's edit at this face (``moved`` of the reconstruction) and how much of it the compositing carries
  into the photo (``carried``: the photo's change over the reconstruction's, where the reconstruction moved
  by a quarter of the reference or more);
- ``seam``: gradient energy along the border of the edit's mask in the result over the photo's own there
  (1.0: no new edge);
- seconds: inversion (from the encoder's guess), tuning, the session's set-up, one render.

Also the explorer's cost: ``PhotoEdit.render`` per slider move with the photo at 512 px (p50 / p95 over
random moves). The figure ``docs/photo_edits.png`` shows each photo and its two edits.

Test photos (the default): matplotlib's Grace Hopper and the five portraits of ``screenshot-facedetect.jpg``
in ``@vladmandic/human@3.3.6`` (cut out at the boxes below). ``--photos DIR`` takes any folder instead.
``portrait3`` and ``portrait4`` were held out of the choice of the compositing and tuning settings
(``HELD_OUT``; the summary reports them apart).

    PYTHONPATH=src python benchmarks/photo_edits.py [--photos DIR] [--axes runs/demo/axes.safetensors]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine
from tlgan.align import apply, feather_mask, paste_back, warp
from tlgan.disentangle import logits
from tlgan.extractors import load_extractor
from tlgan.jobs import TUNE_STEPS, default_encoder, invert_photo, open_editor, photo_session, tune_photo
from tlgan.photo import seam_score

ROOT = Path(__file__).resolve().parents[1]
EDITS = (("happy +1.5", {"happy": 1.5}, ()), ("age +2, male locked", {"age": 2.0}, ("male",)),
         ("yaw +1.5", {"yaw": 1.5}, ()))  # the goals are on the first two; the third is a motion edit
HELD_OUT = ("portrait3", "portrait4")  # not looked at while choosing settings
LIKE_K = 48  # generated faces in a like-for-like reference (``like_start``)
PORTRAIT_BOXES = ((7, 158), (164, 315), (321, 472), (478, 629), (633, 791))  # x ranges; y 346..497


class Judge:
    """dlib's face-recognition ResNet (the 5-point alignment and HOG detector, as face_recognition uses them)."""

    def __init__(self) -> None:
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")  # not imported: its __init__ needs pkg_resources
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("the judge needs `pip install dlib-bin face-recognition-models` (the bench extra)")
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        self.detect = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        boxes = self.detect(np.ascontiguousarray(image), 1)
        if not len(boxes):
            return None
        box = max(boxes, key=lambda b: b.width() * b.height())
        return np.array(self.net.compute_face_descriptor(np.ascontiguousarray(image), self.shape(image, box), 1))

    def distance(self, a: np.ndarray | None, b: np.ndarray) -> float | None:
        d = self.descriptor(b)
        return None if a is None or d is None else round(float(np.linalg.norm(a - d)), 4)


def test_photos(folder: Path) -> list[Path]:
    """Write the default test photos into ``folder`` (once) and list them."""
    folder.mkdir(parents=True, exist_ok=True)
    grace = folder / "grace_hopper.png"
    if not grace.exists():
        Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB").save(grace)
    try:
        from tlgan.weights import path_of

        sheet = Image.open(path_of("human-test-photos", "screenshot-facedetect.jpg")).convert("RGB")
        for k, (x0, x1) in enumerate(PORTRAIT_BOXES):
            if not (folder / f"portrait{k}.png").exists():
                sheet.crop((x0, 346, x1, 497)).save(folder / f"portrait{k}.png")
    except Exception as e:
        print(f"no @vladmandic/human portraits ({e}); `tlgan models fetch human-test-photos`")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def axis_scale(extractor, rows: np.ndarray) -> np.ndarray:
    """Labels (..., F) in the scale the axes are fitted in: logits for binary features, as they are otherwise."""
    rows = np.array(rows, np.float64)
    binary = [j for j, f in enumerate(extractor.features) if f.kind == "binary"]
    rows[..., binary] = logits(rows[..., binary])
    return rows


def generated_reference(editor, extractor, n: int, seed: int) -> tuple[dict, dict]:
    """Per edit: the mean change of every feature (``axis_scale``) on ``n`` generated faces; each one's std.
    Also, per edit, each face's reading of the moved feature before the move and its change (``like_start``)."""
    z = editor.generator.sample(n, seed)
    names = list(extractor.feature_names)
    raw = extractor(editor.generator.render(z))
    found = raw[:, names.index("face_found")] > 0.5
    base = axis_scale(extractor, raw)
    out = {"std": {f: float(np.nanstd(base[found, j])) for j, f in enumerate(names)}}
    per_face = {}
    for title, moves, locks in EDITS:
        moved = np.stack([editor.edit(zi, moves, locks) for zi in z])
        after = axis_scale(extractor, extractor(editor.generator.render(moved)))
        d = after - base
        out[title] = {f: float(np.nanmean(d[found, j])) for j, f in enumerate(names)}
        j = names.index(next(iter(moves)))
        ok = found & np.isfinite(d[:, j])
        per_face[title] = (base[ok, j], d[ok, j])
    return out, per_face


def like_start(per_face: tuple[np.ndarray, np.ndarray], start: float, k: int = LIKE_K) -> dict:
    """The same move on the ``k`` generated faces whose reading before it is nearest ``start`` (the photo's):
    their mean change, and the range of their readings (a photo beyond every generated face's reading has no
    like-for-like reference; the range shows it)."""
    before, change = per_face
    near = np.argsort(np.abs(before - start))[:k]
    return {"change": float(change[near].mean()), "start_range": [round(float(before[near].min()), 2),
                                                                  round(float(before[near].max()), 2)]}


def labels_of(extractor, image: np.ndarray) -> dict:
    """The photo's labels in ``axis_scale``."""
    import torch

    row = axis_scale(extractor, extractor(torch.from_numpy(np.ascontiguousarray(image))[None]))[0]
    return {f: float(v) for f, v in zip(extractor.feature_names, row, strict=True)}


def footprint_mask(photo: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """Today's paste-back mask in photo pixels (for its seam score)."""
    h, w = photo.shape[:2]
    back = np.linalg.inv(transform)
    return np.clip(warp(feather_mask(size, 0.1), back, (w, h), mode="constant"), 0, 1)


def around_face(photo: np.ndarray, transform: np.ndarray, size: int, cell: int) -> np.ndarray:
    corners = apply(transform, [[0, 0], [size, 0], [0, size], [size, size]])
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
    box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    return np.asarray(Image.fromarray(photo).crop(box).resize((cell, cell), Image.Resampling.LANCZOS))


def render_latency(generator, inv, photo, tuning, editor, moves: int = 20) -> dict:
    """Seconds per slider move with the photo at 512 px: a session made once, then ``render`` per move."""
    t = time.perf_counter()
    session = photo_session(generator, inv, photo, tuning, "face", max_side=512)
    setup = time.perf_counter() - t
    rng = np.random.default_rng(0)
    names = [n for n in ("happy", "age", "male", "mouth_open") if n in editor.axes.names]
    times = []
    for _ in range(moves):
        amount = {names[int(rng.integers(len(names)))]: float(rng.uniform(-2, 2))}
        z = editor.edit(inv.latent, amount, ())
        t = time.perf_counter()
        session.render(z)
        times.append(time.perf_counter() - t)
    return {"working_size": list(session.photo.shape[:2]), "setup_s": round(setup, 3),
            "p50_ms": round(1000 * float(np.percentile(times, 50)), 1),
            "p95_ms": round(1000 * float(np.percentile(times, 95)), 1), "moves": moves}


def summarise(rows: list[dict]) -> dict:
    """Per method and edit over all photos; ``held_out/...`` again over the ``HELD_OUT`` photos alone."""
    out: dict = {}
    for group, members in (("", rows), ("held_out/", [r for r in rows if Path(r["photo"]).stem in HELD_OUT])):
        if members:
            out.update({group + k: v for k, v in summarise_group(members).items()})
    return out


def summarise_group(rows: list[dict]) -> dict:
    out: dict = {}
    for method in ("today", "fidelity"):
        for title, _moves, _locks in EDITS:
            sel = [r[method][title] for r in rows]
            dist = [s["identity"] for s in sel if s["identity"] is not None]
            out[f"{method}/{title}"] = {
                "same_person": f"{sum(d < 0.6 for d in dist)} of {len(sel)}",
                "identity_median": round(float(np.median(dist)), 4) if dist else None,
                "identity_max": round(float(np.max(dist)), 4) if dist else None,
                "no_face_by_judge": sum(s["identity"] is None for s in sel),
                "moved_min": round(min(s["moved"] for s in sel), 3),
                "moved_at_least_half": f"{sum(s['moved'] >= 0.5 for s in sel)} of {len(sel)}",
                "moved_median": round(float(np.median([s["moved"] for s in sel])), 3),
                "moved_like_for_like_at_least_half": f"{sum((s['moved_like_for_like'] or 0) >= 0.5 for s in sel)} "
                                                     f"of {len(sel)}",
                "leak_max_std": round(max([abs(v) for s in sel for v in s["leak_std"].values()] or [0.0]), 3),
                "seam_max": round(max(s["seam"] for s in sel), 3),
            }
            recs = [s["reconstruction"] for s in sel if "reconstruction" in s]
            if recs:
                out[f"{method}/{title}"]["reconstruction"] = {
                    "moved_at_least_half": f"{sum(r['moved'] >= 0.5 for r in recs)} of {len(recs)}",
                    "moved_median": round(float(np.median([r["moved"] for r in recs])), 3),
                    "leak_max_std": round(max([abs(v) for r in recs for v in r["leak_std"].values()] or [0.0]), 3),
                    "carried_median": round(float(np.median([r["carried"] for r in recs if r["carried"] is not None]
                                                            or [np.nan])), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=None, help="A folder of photos [default: the test photos].")
    ap.add_argument("--axes", type=Path, default=ROOT / "runs/demo/axes.safetensors")
    ap.add_argument("--encoder", type=Path, default=None, help="[default: encoder.safetensors beside the axes]")
    ap.add_argument("--inv-steps", type=int, default=30)
    ap.add_argument("--tune-steps", type=int, default=TUNE_STEPS)
    ap.add_argument("--reference-n", type=int, default=600,
                    help="Generated faces for the reference move (and the like-for-like one, of the nearest 48).")
    ap.add_argument("--latency-moves", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS / "photo_edits.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs/photo_edits.png")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 on a busy shared machine)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from tlgan.invert import load_encoder
    t_all = time.perf_counter()
    doc: dict = {"machine": machine(), "settings": vars(args) | {"edits": [e[0] for e in EDITS]}}
    editor = open_editor(args.axes, "cpu")
    gen = editor.generator
    extractor = load_extractor("faces", "cpu")
    judge = Judge()
    encoder = load_encoder(args.encoder, gen) if args.encoder else default_encoder(gen, args.axes)
    doc["encoder"] = encoder.meta.get("stats") if encoder is not None else None
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")) \
        if args.photos else test_photos(ROOT / "runs/test_photos")
    reference, per_face = generated_reference(editor, extractor, args.reference_n, 777)
    doc["generated_reference"] = reference
    rows, figure = [], []
    largest = None  # the explorer's latency is measured on the largest photo, shrunk to 512 px
    for path in photos:
        t = time.perf_counter()
        photo, inv = invert_photo(gen, path, encoder, steps=args.inv_steps)
        t_inv = time.perf_counter() - t
        t = time.perf_counter()
        tuning = tune_photo(gen, inv, args.tune_steps, editor=editor)
        t_tune = time.perf_counter() - t
        t = time.perf_counter()
        session = photo_session(gen, inv, photo, tuning, "face")
        t_session = time.perf_counter() - t
        own = judge.descriptor(photo)
        before = labels_of(extractor, photo)
        tuned = session.generator  # the generator tuned to this photo: its own face of the photo, before and after
        rec_before = labels_of(extractor, tuned.render(inv.latent[None]).numpy()[0])
        row: dict = {"photo": path.name, "size": list(photo.shape[:2]), "invert_s": round(t_inv, 2),
                     "tune_s": round(t_tune, 2), "session_s": round(t_session, 2),
                     "load_average_1min": machine()["load_average_1min"],
                     "judge_finds_face": own is not None, "tuned_pixel_mae": tuning.meta["pixel_mae"],
                     "today": {}, "fidelity": {}}
        cells = [around_face(photo, inv.transform, gen.resolution, 160)]
        for title, moves, locks in EDITS:
            z = editor.edit(inv.latent, moves, locks)
            t = time.perf_counter()
            new = session.render(z)
            t_render = time.perf_counter() - t
            old = paste_back(photo, gen.render(z).numpy()[0], inv.transform)
            cells.append(around_face(new, inv.transform, gen.resolution, 160))
            feature = next(iter(moves))
            for method, out, mask, secs in (("today", old, footprint_mask(photo, inv.transform, gen.resolution), None),
                                            ("fidelity", new, session.mask, t_render)):
                assert out.shape == photo.shape
                after = labels_of(extractor, out)
                ref = reference[title][feature]
                like = like_start(per_face[title], before[feature])
                row[method][title] = {
                    "identity": judge.distance(own, out),
                    "moved": round((after[feature] - before[feature]) / ref, 3) if ref else None,
                    # over the change of generated faces that read as the photo does before the move
                    "moved_like_for_like": round((after[feature] - before[feature]) / like["change"], 3)
                    if abs(like["change"]) > 1e-6 else None, "like_for_like": like,
                    "feature_before": round(before[feature], 3), "feature_after": round(after[feature], 3),
                    "leak_std": {f: round((after[f] - before[f]) / reference["std"][f], 3) for f in locks},
                    "seam": round(seam_score(photo, out, mask), 3),
                    "render_s": round(secs, 3) if secs is not None else None}
            rec = labels_of(extractor, tuned.render(z[None]).numpy()[0])
            rec_change = rec[feature] - rec_before[feature]
            photo_change = row["fidelity"][title]["feature_after"] - before[feature]
            row["fidelity"][title]["reconstruction"] = {
                "moved": round(rec_change / ref, 3) if ref else None,
                "leak_std": {f: round((rec[f] - rec_before[f]) / reference["std"][f], 3) for f in locks},
                # only where the reconstruction moved by a quarter of the reference or more (else noise over noise)
                "carried": round(photo_change / rec_change, 3) if ref and rec_change / ref >= 0.25 else None}
        figure.append(np.concatenate(cells, 1))
        rows.append(row)
        if largest is None or photo.size > largest[1].size:
            largest = (inv, photo, tuning)
        print(json.dumps(row), flush=True)
    doc["photos"] = rows
    doc["summary"] = summarise(rows)
    if largest is not None:
        inv, photo, tuning = largest
        doc["explorer_render_512"] = render_latency(gen, inv, photo, tuning, editor, args.latency_moves)
    doc["total_seconds"] = round(time.perf_counter() - t_all, 1)
    doc["load_average_at_end"] = machine()["load_average_1min"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    draw(figure, args.figure)
    print(json.dumps(doc["summary"], indent=1), json.dumps(doc.get("explorer_render_512")))


def draw(rows: list[np.ndarray], path: Path) -> None:
    """Photos down, columns: the photo and each of ``EDITS`` on it (the new way)."""
    from PIL import ImageDraw

    titles = ["photo"] + [e[0] for e in EDITS]
    body = np.concatenate(rows, 0)
    head = Image.new("RGB", (body.shape[1], 22), "white")
    draw_ = ImageDraw.Draw(head)
    for i, t in enumerate(titles):
        draw_.text((i * 160 + 4, 5), t, fill="black")
    sheet = Image.new("RGB", (body.shape[1], body.shape[0] + 22), "white")
    sheet.paste(head, (0, 0))
    sheet.paste(Image.fromarray(body), (0, 22))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


if __name__ == "__main__":
    main()
