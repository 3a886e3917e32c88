"""Moving pictures of edits: a face morphing along a move, or a traversal grid whose rows loop, as GIF or MP4.

Encoding goes through imageio: GIF with its pillow plugin, MP4 (H.264) with the ffmpeg binary of
imageio-ffmpeg. Frames are uint8 (T, H, W, 3) arrays; everything here is the edge that writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .axes import Axes
from .errors import InputError
from .explore import move
from .safeio import atomic_write

FORMATS = (".gif", ".mp4")


def check_animation_path(path: str | Path) -> Path:
    """Refuse a suffix we cannot encode before any rendering is done."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"cannot tell how to write the animation {path}: end its name in .gif or .mp4")
    return path


def bounce(frames: np.ndarray) -> np.ndarray:
    """Forward then back (without repeating the ends), so a loop never jumps."""
    return np.concatenate([frames, frames[-2:0:-1]]) if len(frames) > 2 else frames


def fit_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Frames resized (Lanczos) so the longer side is ``size``, with even sides (H.264 needs them)."""
    frames = np.asarray(frames, np.uint8)
    h, w = frames.shape[1:3]
    scale = (size / max(h, w)) if size else 1.0
    nh, nw = max(2, round(h * scale / 2) * 2), max(2, round(w * scale / 2) * 2)
    if (nh, nw) == (h, w):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((nw, nh), Image.Resampling.LANCZOS)) for f in frames])


def shared_palette(frames: np.ndarray) -> np.ndarray:
    """Frames reduced to one 256-colour palette (fast octree over all of them, no dithering): a GIF has 256
    colours a frame, one shared palette does not flicker, and pillow's own per-frame reduction is ~20x slower."""
    mosaic = Image.fromarray(np.concatenate(list(frames), axis=0)).quantize(256, method=Image.Quantize.FASTOCTREE)
    return np.stack([np.asarray(Image.fromarray(f).quantize(palette=mosaic, dither=Image.Dither.NONE).convert("RGB"))
                     for f in frames])


def write_animation(frames: np.ndarray, path: str | Path, fps: float = 8.0, size: int | None = 256,
                    loop: bool = True) -> Path:
    """Write ``frames`` (T, H, W, 3) as a GIF or MP4 (by ``path``'s suffix), atomically; ``loop`` plays them
    forward and back."""
    import imageio.v3 as iio

    path = check_animation_path(path)
    frames = fit_frames(bounce(frames) if loop else frames, size)
    suffix = path.suffix.lower()

    def write(tmp: Path) -> None:
        if suffix == ".gif":
            iio.imwrite(tmp, shared_palette(frames), extension=".gif", duration=1000 / fps, loop=0)
        else:
            import imageio_ffmpeg

            h, w = frames.shape[1:3]
            writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, codec="libx264", quality=8,
                                                 macro_block_size=2, output_params=["-f", "mp4"])
            writer.send(None)  # start ffmpeg
            for f in frames:
                writer.send(np.ascontiguousarray(f))
            writer.close()

    return atomic_write(path, write)


def move_frames(z: np.ndarray, axes: Axes, moves: Mapping[str, float], locks: Iterable[str] = (),
                steps: int = 7) -> np.ndarray:
    """Latents (steps, ...) from ``z`` to ``z`` after the whole move, each a fraction of every amount
    (through :func:`tlgan.explore.move`, so locks and local axes apply at every frame)."""
    if steps < 2:
        raise InputError(f"an animation needs at least 2 frames, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    batch = np.repeat(np.asarray(z, np.float32)[None], steps, axis=0)
    return move(batch, axes, {k: float(v) * t for k, v in moves.items()}, locks)


def grid_frames(cells: np.ndarray, labels: Sequence[str], cell: int = 96) -> np.ndarray:
    """Frames of a looping grid from ``cells`` (rows, steps, H, W, 3): frame t shows every row at step t,
    rows stacked top to bottom with their label on the left."""
    from PIL import ImageDraw

    from .figures import label_font, upscale

    font = label_font(13)
    label_w = 12 + max(int(font.getlength(s)) for s in labels)
    rows, steps = cells.shape[:2]
    frames = []
    for t in range(steps):
        sheet = Image.new("RGB", (label_w + cell, rows * (cell + 2)), "white")
        draw = ImageDraw.Draw(sheet)
        for r in range(rows):
            y = r * (cell + 2)
            draw.text((6, y + cell // 2), labels[r], fill="black", font=font, anchor="lm")
            sheet.paste(upscale(cells[r, t], cell), (label_w, y))
        frames.append(np.asarray(sheet))
    return np.stack(frames)
