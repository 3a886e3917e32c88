"""Contact sheets: faces in a numbered grid, for labelling by eye."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contact_sheet(images: np.ndarray, numbers: Sequence[int], cols: int = 8, cell: int = 96,
                  marks: Sequence[str] | None = None, title: str = ""):
    """A PIL image: the faces in a grid, upscaled to ``cell`` px, each with its number (and a mark) drawn
    on a white strip under it, for labelling by eye."""
    from PIL import Image, ImageDraw, ImageFont

    images = np.asarray(images)
    n = len(images)
    rows = max(1, -(-n // cols))
    strip, gap, head = 18, 4, (24 if title else 0)
    sheet = Image.new("RGB", (cols * (cell + gap) + gap, head + rows * (cell + strip + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    if title:
        draw.text((gap, 4), title, fill="black", font=font)
    for k in range(n):
        r, c = divmod(k, cols)
        x, y = gap + c * (cell + gap), head + gap + r * (cell + strip + gap)
        sheet.paste(Image.fromarray(images[k]).resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
        text = f"{numbers[k]}" + (f" {marks[k]}" if marks and marks[k] else "")
        draw.text((x + cell // 2, y + cell + strip // 2), text, fill="black", font=font, anchor="mm")
    return sheet
