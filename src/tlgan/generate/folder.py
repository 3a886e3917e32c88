"""Writing generated faces as a Hugging Face ``imagefolder``: PNG files plus one ``metadata.jsonl`` whose
``file_name`` column names each image and whose other columns (labels, seed, latent, moves) become the
data set's columns; and a contact sheet of them for people."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..safeio import atomic_write_text, save_image
from .plan import Face


def _number(v: float) -> float | None:
    """JSON has no NaN: an unknown label is null."""
    v = float(v)
    return v if math.isfinite(v) else None


def face_record(face: Face, file_name: str, names: Sequence[str], seed: int | None,
                **extra: Any) -> dict[str, Any]:
    """One metadata row: the file, every label by feature name, where the face came from and how it moved."""
    labels = face.labels if face.labels is not None else np.full(len(names), np.nan)
    return {"file_name": file_name, **{n: _number(v) for n, v in zip(names, labels, strict=True)}, **extra,
            "seed": seed, "index": face.index,
            "latent": np.asarray(face.latent, np.float64).round(6).tolist(),
            "start_latent": np.asarray(face.start, np.float64).round(6).tolist(),
            "moves": {k: round(v, 6) for k, v in face.total_moves().items()},
            "steps": [{"moves": {k: round(v, 6) for k, v in s.moves.items()}, "locks": s.locks,
                       **({"nudge": round(s.nudge, 6)} if s.nudge else {})} for s in face.steps]}


def write_metadata(folder: Path, records: Iterable[dict[str, Any]]) -> Path:
    """``folder/metadata.jsonl``, written atomically (a reader sees the old rows or all the new ones)."""
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
    return atomic_write_text(folder / "metadata.jsonl", text)


def read_metadata(folder: Path) -> list[dict[str, Any]]:
    path = folder / "metadata.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_faces(folder: Path, images: np.ndarray, file_names: Sequence[str]) -> None:
    """Each image (uint8 HxWx3) as a PNG named ``file_names[i]`` in ``folder``, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for im, name in zip(images, file_names, strict=True):
        save_image(Image.fromarray(np.asarray(im)), folder / name)


def contact_sheet(images: np.ndarray, captions: Sequence[str], cell: int = 96, cols: int = 8,
                  title: str = "") -> Image.Image:
    """Faces in a grid, each with its caption under it, one or more lines (e.g. the spec's labels as the
    extractor read them)."""
    from ..figures import label_font, upscale

    cols = max(1, min(cols, len(images)))
    rows = -(-len(images) // cols)
    lines = max((len(c.splitlines()) for c in captions), default=1)
    font, cap_h, head = label_font(11), 4 + 13 * lines, 24 if title else 0
    sheet = Image.new("RGB", (cols * (cell + 2), head + rows * (cell + cap_h + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill="black", font=label_font(14))
    for k, (im, text) in enumerate(zip(images, captions, strict=True)):
        x, y = (k % cols) * (cell + 2), head + (k // cols) * (cell + cap_h + 2)
        sheet.paste(upscale(im, cell), (x, y))
        for i, line in enumerate(text.splitlines()):
            draw.text((x + cell // 2, y + cell + 2 + 13 * i), line, fill="black", font=font, anchor="ma")
    return sheet
