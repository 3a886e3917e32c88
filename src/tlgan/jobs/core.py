"""Whole jobs, one per ``tlgan`` command, callable from Python and the benchmarks.

The command line only parses options, calls one of these and prints what it
returns; everything a job does (loading models, setting up held-out latents,
drawing figures, writing files) lives here so a Python user gets the same
result as ``tlgan CMD``. Progress goes to ``log`` (``None``: silent).
"""

from __future__ import annotations

import functools
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import train as T
from .. import weights
from ..align import align_photo
from ..align import paste_back as paste
from ..animate import check_animation_path, grid_frames, move_frames, write_animation
from ..axes import Axes
from ..bounds import (
    MAX_COLS,
    MAX_COMPONENTS,
    MAX_EPOCHS,
    MAX_HELDOUT,
    MAX_N,
    MAX_SEED,
    check_array_size,
    check_heldout,
    check_moves,
    check_number,
    check_picture,
    check_pixels,
    check_range,
    check_seed,
    check_steps,
)
from ..disentangle import SpaceDCI, dci
from ..distributed import Measure as RayMeasure
from ..distributed import ModelSpec, Pool, connect
from ..distributed import Report as RayReport
from ..distributed import relabel as relabel_on_ray
from ..distributed import sample as sample_on_ray
from ..errors import InputError, TLGANError
from ..evaluate import Comparison, Evaluation, Heldout, Scorer, compare_finders, evaluate_axes, heldout_seed, make_heldout
from ..explore import parse_layers
from ..extractors import EXTRACTORS, Extractor, declared_features, load_extractor
from ..figures import image_row, traversal_grid, traversal_rows
from ..finders import FINDERS, find_run, fit_quality, load_finder  # noqa: F401 (fit_quality: printed by the CLI)
from ..fit import METHODS  # noqa: F401 (offered to the command line: --method's choices)
from ..generate.dataset import SPLIT, DatasetError, axes_fingerprint, bin_edges, build, parse_balance
from ..generate.distinct import Distinct
from ..generate.folder import contact_sheet, face_record, read_metadata, save_faces, write_metadata
from ..generate.plan import MAX_TRIES, calibrate, check_feasible, nearest_draw, rejection, steer
from ..generate.spec import Condition, Spec, SpecError, parse_spec, presence_condition, with_condition
from ..generate.stream import LatentStream
from ..generators import (
    GENERATORS,
    SPACES,  # noqa: F401 (offered to the command line: --space's choices)
    Generator,
    generator_location,
    generator_of,
    library,
    load_generator,
)
from ..generators.families import family_names
from ..invert import Encoder, Inversion, InversionError, load_encoder, load_inversion, reconstruction_quality, save_inversion
from ..invert import invert as invert_image
from ..invert import train_encoder as train_image_encoder
from ..labels import FaceSource, Labeller, LabelStore, LabelTable, RunSource, fit_label_axes, load_labels
from ..photo import PhotoEdit, Tuning, load_tuning, save_tuning, tune_pivot, tuned_generator, tuning_path
from ..photo.tuning import axis_edits
from ..pipeline import Editor, showcase_latents
from ..plugins import load_plugins
from ..report.comparison import write_comparison
from ..report.dci import write_dci
from ..report.evaluation import write_evaluation
from ..safeio import Outputs, atomic_write, atomic_write_text, npy_path, save_image, save_npy
from ..sample import Run, RunError, open_run, render_and_label
from ..sample import relabel as relabel_images
from ..sample import sample as sample_images
from ..train import CELEBA_CROP, Dataset, TrainResult, train_extractor

DEFAULT_GENERATOR = "digiface-dcgan"
DEFAULT_EXTRACTOR = "faces"
DEFAULT_FINDER = "glm"
DEFAULT_OUT = Path("runs/demo")

Log = Callable[[str], None] | None


def _log(log: Log, text: str) -> None:
    if log is not None:
        log(text)


def load_models(generator: str, extractor: str, device: str | None = "auto",
                **space: Any) -> tuple[Generator, Extractor]:
    """The generator (a name or checkpoint path; ``space`` options as ``load_generator`` takes them)
    and the extractor (``a+b`` combines extractors)."""
    return load_generator(generator, device, **space), load_extractor(extractor, device)


def startup_checks(verify: bool = False) -> None:
    """Before any command: with ``verify``, hash every weight file in full before it is used."""
    weights.full_checks(verify)


def family_choices() -> list[str]:
    """The checkpoint families a file may be forced to, plugins' included (so plugins are loaded first)."""
    load_plugins()
    return family_names()


# ---------------------------------------------------------------- models and plugins


@dataclass
class ModelsListing:
    """What ``tlgan models list`` shows: the bundled models and the user's registered generator files."""

    cache: Path
    bundled: list[dict[str, Any]]
    library: Path
    registered: dict[str, dict[str, Any]]


def list_models(check: bool = False) -> ModelsListing:
    """``tlgan models list``: each bundled model (package, licence, status) and each registered generator file
    with its state; ``check`` hashes every file in full now."""
    bundled = []
    for m in weights.MODELS.values():
        pkg = m.files[0].package
        bundled.append({"name": m.name, "status": weights.status(m.name, check), "registry": pkg.registry,
                        "spec": pkg.spec, "license": pkg.license, "purpose": m.purpose, "oracle": m.oracle})
    mine = {name: dict(e, state=library.state(name, check)) for name, e in library.registered().items()}
    return ModelsListing(weights.cache_dir(), bundled, library.library_path(), mine)


def add_model(path: str | Path, name: str, family: str | None = None, network: str | None = None) -> dict[str, Any]:
    """``tlgan models add``: register a generator file under ``name`` (read once, safely; its SHA-256 kept)."""
    return library.add(path, name, family, network)


def remove_model(name: str) -> None:
    """``tlgan models remove``: forget a registered generator (the file itself is not touched)."""
    library.remove(name)


def fetch_models(names: Sequence[str] = (), oracles: bool = False, log: Log = None) -> tuple[list[Path], Path]:
    """``tlgan models fetch``: fetch ``names`` (default: what the defaults need, plus the test oracles with
    ``oracles``) and check their SHA-256; returns the files and the cache folder."""
    chosen = list(names) or weights.DEFAULT_MODELS + ([m.name for m in weights.MODELS.values() if m.oracle]
                                                     if oracles else [])
    paths = weights.fetch(chosen, log=log or (lambda s: None))
    return paths, weights.cache_dir()


def list_plugins() -> dict[str, list[tuple[str, str]]]:
    """``tlgan plugins``: (name, description) of each registered generator, extractor and direction finder."""
    load_plugins()
    return {title: [(name, reg.describe(name)) for name in reg.names()]
            for title, reg in (("generators", GENERATORS), ("extractors", EXTRACTORS),
                               ("direction finders", FINDERS))}


# ---------------------------------------------------------------- steps 3 and 4


@dataclass
class Sampled:
    """What ``sample`` / ``relabel`` did: the run, the label set written and, on Ray, the cluster's report."""

    run: Run
    label_set: str
    features: int
    ray: RayReport | None = None
    rate: float | None = None  # images labelled per second this call (local relabel)


def sample(out: str | Path, generator: str = DEFAULT_GENERATOR, extractor: str = DEFAULT_EXTRACTOR, n: int = 10_000,
           seed: int = 0, chunk: int | None = None, save_images: bool = True, device: str | None = "auto",
           ray_address: str | None = None, workers: int | None = None,
           space: Mapping[str, Any] | None = None) -> Sampled:
    """``tlgan sample``: draw ``n`` latents, render and label them into the resumable run folder ``out``;
    on a Ray cluster when ``ray_address`` is given (``local``, ``auto`` or an address), else here."""
    options = dict(space or {})
    if ray_address is not None:
        run, report = sample_on_ray(out, ModelSpec(generator, extractor, options), n, seed=seed, chunk=chunk,
                                    save_images=save_images, workers=workers, device=device or "auto", address=ray_address)
        return Sampled(run, extractor, len(run.features()), report)
    gen, ext = load_models(generator, extractor, device, **options)
    run = sample_images(out, gen, ext, n, seed=seed, chunk=chunk, save_images=save_images)
    return Sampled(run, ext.name, len(ext.features))


def relabel(run: str | Path, extractor: str, make_default: bool = False, device: str | None = "auto",
            ray_address: str | None = None, workers: int | None = None) -> Sampled:
    """``tlgan relabel``: label a run's cached images with another extractor, without rendering them again."""
    if ray_address is not None:
        r, report = relabel_on_ray(run, extractor, make_default, workers=workers, device=device or "auto",
                                   address=ray_address)
        return Sampled(r, extractor, len(r.features(extractor)), report)
    ext = load_extractor(extractor, device)
    t0 = time.perf_counter()
    r = relabel_images(run, ext, make_default=make_default)
    done = r.done(f"labels/{ext.name}")
    return Sampled(r, ext.name, len(ext.features), rate=done / max(time.perf_counter() - t0, 1e-9))



def axes_file_name(finder: str) -> str:
    """The default axes file name: ``axes.safetensors`` for the default finder, else ``axes-FINDER.safetensors``."""
    return "axes.safetensors" if finder == DEFAULT_FINDER else f"axes-{finder}.safetensors"


def fit_file(run: str | Path, finder: str = DEFAULT_FINDER, label_set: str | None = None,
             features: Sequence[str] | None = None, method: str = "auto",
             out: str | Path | None = None) -> tuple[Axes, Path]:
    """``tlgan fit``: directions of ``finder`` from a run folder, saved to ``out`` (default: beside the run).

    ``out`` is checked before the fit (a name that would clobber another kind of file fails at once).
    """
    if out is not None:
        Axes.check_path(out)
    found = load_finder(finder)
    if "method" in found.options:
        found = load_finder(finder, method=method)
    axes = find_run(run, found, label_set, features)
    path = axes.save(out or Path(run).parent / axes_file_name(finder))
    return axes, path


@dataclass
class Discovery:
    """What ``discover`` produced, with the wall time of each stage in seconds."""

    run: Run
    axes: Axes
    axes_path: Path
    seconds: dict[str, float] = field(default_factory=dict)
    figure: Path | None = None  # the traversal figure, when one was drawn


def discover(out: str | Path, generator: str | Generator, extractor: str | Extractor, n: int, seed: int = 0,
             method: str = "auto", grid_features: Sequence[str] | None = None,
             grid_lock: Sequence[str] | None = None, device: str | None = "auto",
             space: Mapping[str, Any] | None = None, save_images: bool = True, progress: bool = True) -> Discovery:
    """``tlgan discover``: sample ``n`` faces into ``out/run`` (resumable), fit ``out/axes.safetensors`` with
    the default finder, and draw ``out/traversal.png`` of the ``grid_features`` that got an axis, their second
    rows locking ``grid_lock``.

    ``generator`` / ``extractor``: loaded models or names (loaded on ``device`` with the ``space`` options).
    The figure's rows default to the extractor's declared summary features (``Extractor.summary``) and its
    locks to ``Extractor.summary_locks``. ``Discovery.figure`` is None when no row feature was fitted.
    """
    if isinstance(generator, str) or isinstance(extractor, str):
        gen_name = generator if isinstance(generator, str) else None
        ext_name = extractor if isinstance(extractor, str) else None
        loaded = load_models(gen_name or DEFAULT_GENERATOR, ext_name or DEFAULT_EXTRACTOR, device, **dict(space or {}))
        generator = loaded[0] if gen_name else generator
        extractor = loaded[1] if ext_name else extractor
    assert not isinstance(generator, str) and not isinstance(extractor, str)
    out = Path(out)
    t0 = time.perf_counter()
    run = sample_images(out / "run", generator, extractor, n, seed=seed, save_images=save_images, progress=progress)
    t1 = time.perf_counter()
    axes = find_run(run, load_finder(DEFAULT_FINDER, method=method))
    t2 = time.perf_counter()
    d = Discovery(run, axes, axes.save(out / "axes.safetensors"), {"sample": t1 - t0, "fit": t2 - t1})
    rows = list(extractor.summary) if grid_features is None else list(grid_features)
    feats = [f for f in rows if f in axes.names]
    if feats:
        locks = [x for x in (extractor.summary_locks if grid_lock is None else grid_lock) if x in axes.names]
        faces = showcase_latents(generator, extractor, 2, seed + 10_000)
        title = f"{generator.name} + {extractor.name}: {n} samples"
        fig = traversal_grid(generator, axes, faces, feats, np.linspace(-3, 3, 7), locks, cell=80,
                             title=f"{title}; second rows lock {', '.join(locks)}" if locks else title)
        d.figure = out / "traversal.png"
        save_image(fig, d.figure)
    return d


# ---------------------------------------------------------------- step 5


def open_editor(axes_path: str | Path, device: str | None = "auto") -> Editor:
    """An :class:`~tlgan.pipeline.Editor` of the axes file with the generator it was fitted for."""
    axes = Axes.load(axes_path)
    return Editor(generator_of(axes.meta, device, axes_path), axes)


def read_latent(editor: Editor, seed: int, latent: str | Path | None = None) -> np.ndarray:
    """The latent of ``seed``, or the one saved in the ``.npy`` file ``latent``.

    The file's header is checked before its data is read (a header may claim any shape), its values must be
    real and finite, and a latent far off the generator's typical norm is warned about: it still renders,
    but as nothing the generator was trained on.
    """
    if latent is None:
        return editor.latent(check_seed(seed))
    z = read_npy(latent, "latent file")
    z = editor.generator.check_latents(z).numpy()[0]
    warn_off_norm(editor.generator, z, str(latent))
    return z


def read_npy(path: str | Path, what: str) -> np.ndarray:
    """A real-valued ``.npy`` array, its declared shape checked against the file's size before reading."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            if dtype.kind not in "fiu":
                raise InputError(f"{what} {path} holds {dtype} values; a latent is real numbers (float32)")
            check_array_size(shape, dtype.itemsize, os.fstat(fh.fileno()).st_size - fh.tell(), f"{what} {path}")
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except (OSError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"cannot read {what} {path} (expected a .npy array): {e}") from e


#: A latent whose distance from the space's centre is this many times the typical one is far off.
FAR_OFF_NORM = 4.0


def warn_off_norm(generator: Generator, latent: np.ndarray, what: str) -> None:
    """Warn when ``latent`` lies far outside the generator's typical shell (``FAR_OFF_NORM`` x its typical norm)."""
    typical = generator.describe_space().typical_norm
    centre = 0.0
    if generator.space != "z":
        w_avg = getattr(getattr(generator, "net", None), "w_avg", None)
        centre = 0.0 if w_avg is None else w_avg.detach().float().cpu().numpy().reshape(-1)
    rows = np.asarray(latent, np.float64).reshape(-1, generator.latent_dim) - centre
    norm = float(np.linalg.norm(rows, axis=1).max())
    if norm > FAR_OFF_NORM * typical:
        warnings.warn(f"{what}: latent norm {norm:.3g} is {norm / typical:.0f}x the generator's typical "
                      f"{typical:.3g}; the picture will be nothing like a face it was trained on", stacklevel=2)


def edit_file(editor: Editor, z: np.ndarray, moves: Mapping[str, float], locks: Sequence[str],
              out: str | Path, size: int = 256, save_latent: str | Path | None = None,
              layers: Sequence[int] | None = None, force: bool = False) -> np.ndarray:
    """``tlgan edit``: write the face before and after the moves to ``out``; returns the edited latent.

    ``layers`` (w+ only) limits the moves to those synthesis layers. An existing ``out`` or ``save_latent``
    that an earlier ``tlgan edit`` did not make is only replaced with ``force``.
    """
    outputs = Outputs("edit", force)
    outputs.claim(out, save_latent and npy_path(save_latent))
    check_pixels(size)
    check_picture(2 * size, size, f"--size {size}")
    moves = check_moves(moves)
    edited = editor.edit(z, moves, locks, layers)
    before = np.broadcast_to(z, edited.shape) if edited.ndim > np.ndim(z) else z
    images = editor.generator.render(np.stack([before, edited])).cpu().numpy()
    outputs.made(save_image(image_row(images, size), out))
    if save_latent:
        outputs.made(save_npy(edited, save_latent))
    return edited


def grid_file(editor: Editor, features: Sequence[str] | None, seeds: Sequence[int], extent: float, steps: int,
              locks: Sequence[str], out: str | Path, cell: int = 96, layers: Sequence[int] | None = None,
              force: bool = False) -> list[str]:
    """``tlgan grid``: a traversal figure of ``features`` (default: every axis); returns the rows drawn."""
    outputs = Outputs("grid", force)
    outputs.claim(out)
    check_steps(steps)
    check_pixels(cell, "--cell")
    feats = list(features) if features else list(editor.axes.names)
    for f in feats + list(locks):
        editor.axes.index(f)
    if not seeds:
        raise InputError("give at least one seed (--seeds 0,1,2)")
    for s in seeds:
        check_seed(s)
    rows = len(seeds) * len(feats) * (2 if locks else 1)
    check_picture((steps + 2) * cell, rows * cell, f"--steps {steps} x --cell {cell} x {rows} rows")
    z = np.stack([editor.latent(s) for s in seeds])
    outputs.made(save_image(traversal_grid(editor.generator, editor.axes, z, feats,
                                           np.linspace(-extent, extent, steps), list(locks), cell, layers=layers), out))
    return feats


def animate_edit(editor: Editor, z: np.ndarray, moves: Mapping[str, float], locks: Sequence[str],
                 out: str | Path, steps: int = 7, fps: float = 8.0, size: int = 256) -> Path:
    """``tlgan edit --animate``: the face morphing along the whole move (``steps`` frames, forth and back),
    with the locks applied at every frame; a GIF or MP4 by ``out``'s suffix."""
    check_animation_path(out)
    check_steps(steps)
    check_pixels(size)
    frames = editor.generator.render(move_frames(z, editor.axes, moves, locks, steps)).cpu().numpy()
    return write_animation(frames, out, fps, size)


def animate_grid(editor: Editor, features: Sequence[str] | None, seeds: Sequence[int], extent: float, steps: int,
                 locks: Sequence[str], out: str | Path, cell: int = 96, layers: Sequence[int] | None = None,
                 fps: float = 8.0) -> Path:
    """``tlgan grid --animate``: every row of the traversal grid as a loop (frame t shows each row at step t)."""
    check_animation_path(out)
    check_steps(steps)
    check_pixels(cell, "--cell")
    feats = list(features) if features else list(editor.axes.names)
    if not seeds:
        raise InputError("give at least one seed (--seeds 0,1,2)")
    z = np.stack([editor.latent(s) for s in seeds])
    rows = traversal_rows(editor.generator, editor.axes, z, feats, np.linspace(-extent, extent, steps), locks,
                          layers)
    images = editor.generator.render(np.concatenate([r[1] for r in rows])).cpu().numpy()
    cells = images.reshape(len(rows), steps, *images.shape[1:])
    return write_animation(grid_frames(cells, [r[0] for r in rows], cell), out, fps, size=None)


# ---------------------------------------------------------------- real photos

TUNE_STEPS = 50  # pivotal-tuning steps for a photo (tlgan.photo.tuning): with 30 inversion steps from the
# encoder's guess, under 60 s on one thread of the shared 2-core CPU (benchmarks/photo_edits.py)


def invert_photo(generator: Generator, photo: str | Path | np.ndarray, encoder: str | Path | Encoder | None = None,
                 face: int = 0, steps: int = 200, identity_weight: float = 0.3, extractor: Extractor | None = None,
                 progress: Callable[[int, int, float], Any] | None = None) -> tuple[np.ndarray, Inversion]:
    """Find a face in ``photo``, align it to the generator's framing and invert it.

    Returns the photo (RGB uint8) and the ``Inversion``: its latent goes
    through the same ``move`` with locks as any sampled latent, its
    ``transform`` pastes an edit back into the photo, and its ``quality``
    says how close the reconstruction is (pixel error, identity, and the
    ``extractor``'s labels of photo and reconstruction when one is given).
    """
    image, aligned = align_photo(photo, generator.framing, generator.resolution, face=face)
    enc = load_encoder(encoder, generator) if isinstance(encoder, (str, Path)) else encoder
    inv = invert_image(generator, aligned.image, enc, steps=steps, identity_weight=identity_weight, progress=progress)
    inv.transform = aligned.transform
    inv.quality = reconstruction_quality(aligned.image, inv.reconstruction, extractor)
    return image, inv


def invert_file(generator: Generator, photo: str | Path, out: str | Path, encoder: str | Path | Encoder | None = None,
                face: int = 0, steps: int = 200, identity_weight: float = 0.3,
                extractor: Extractor | None = None, tune_steps: int = TUNE_STEPS, force: bool = False) -> Inversion:
    """``tlgan invert``: write ``out`` (.latent.npz) and, beside it, a PNG of the aligned crop and its reconstruction;
    with ``tune_steps`` > 0 also the generator's pivotal tuning to the photo, ``NAME.tuning.safetensors``.

    None of them replaces an existing file an earlier ``tlgan invert`` did not make (e.g. the user's
    ``notes.png`` beside ``-o notes.latent.npz``) unless ``force``.
    """
    outputs = Outputs("invert", force)
    png = _png_beside(out, photo)
    outputs.claim(out, png, tuning_path(out) if tune_steps else None)
    _, inv = invert_photo(generator, photo, encoder, face, steps, identity_weight, extractor)
    outputs.made(save_inversion(out, inv))
    if tune_steps:
        outputs.made(save_tuning(tuning_path(out), tune_photo(generator, inv, tune_steps)))
    outputs.made(save_image(image_row(np.stack([inv.target, inv.reconstruction]), 256), png))
    return inv


def _png_beside(path: str | Path, photo: str | Path | None = None) -> Path:
    """``NAME.png`` beside ``NAME.latent.npz``, or ``NAME.inversion.png`` when that would be the photo itself
    (never overwrite a file the user did not name)."""
    name = Path(path).name
    stem = name[: -len(".latent.npz")] if name.endswith(".latent.npz") else Path(name).stem
    png = Path(path).with_name(stem + ".png")
    if photo is not None and png.exists() and png.resolve() == Path(photo).resolve():
        png = png.with_name(stem + ".inversion.png")
    return png


def default_encoder(generator: Generator, near: str | Path | None = None) -> Encoder | None:
    """The encoder that gives a photo's starting latent when none is named: ``encoder.safetensors`` in
    ``near``'s folder (the axes file's: ``make demo`` trains one there), else in the demo's folder, if it
    belongs to ``generator``; None when there is none (inversion starts from the mean latent)."""
    folders = ([Path(near).parent] if near is not None else []) + [DEFAULT_OUT]
    for folder in folders:
        path = folder / "encoder.safetensors"
        if path.is_file():
            try:
                return load_encoder(path, generator)
            except InversionError:
                continue
    return None


def tune_photo(generator: Generator, inversion: Inversion, steps: int = TUNE_STEPS,
               progress: Callable[[int, int, float], Any] | None = None, editor: Editor | None = None) -> Tuning:
    """Pivotal tuning of ``generator`` to the inverted photo's crop at its latent (``tlgan.photo.tuning``);
    with ``editor``, the tuned generator keeps the original's change along each of its axes (so an edit
    shows on the photo as much as on a generated face), else along random moves."""
    edits = axis_edits(editor, inversion.latent) if editor is not None else None
    return tune_pivot(generator, inversion.target, inversion.latent, steps=steps, edits=edits, progress=progress)


def photo_session(generator: Generator, inversion: Inversion, photo: np.ndarray | None = None,
                  tuning: Tuning | None = None, region: str = "face", max_side: int | None = None) -> PhotoEdit:
    """A ``PhotoEdit`` of the inverted photo (its crop alone when ``photo`` is None) with the tuned generator.

    What the explorer calls once per uploaded photo (``max_side=512``); then ``session.render(latent)`` per
    slider move returns the photo with the edited face.
    """
    if photo is None or inversion.transform is None:
        photo, transform = inversion.target, np.eye(3) * [[inversion.target.shape[1] / generator.resolution],
                                                         [inversion.target.shape[0] / generator.resolution], [1]]
    else:
        transform = inversion.transform
    if tuning is not None:
        tuning.check_pivot(inversion.latent)
    return PhotoEdit(tuned_generator(generator, tuning), photo, transform, inversion.latent, region, max_side)


def edit_photo(editor: Editor, inversion: Inversion, photo: np.ndarray | None, moves: Mapping[str, float],
               locks: Sequence[str], out: str | Path, size: int = 256, layers: Sequence[int] | None = None,
               paste_back: bool = False, fidelity: bool = True, region: str = "face",
               tuning: Tuning | None = None, force: bool = False) -> np.ndarray:
    """``tlgan edit --image``: the photo's crop, its reconstruction and the edit side by side in ``out``;
    with ``paste_back``, the whole photo with the edited face instead.

    ``fidelity`` (the default): the generator is tuned to the photo (``tuning``, made now when None) and the
    edit keeps the photo's own pixels, moved with the face (``tlgan.photo``); the photo comes back at its
    size. ``fidelity=False``: the generator's reconstruction, edited, pasted over the face (the old way).
    """
    outputs = Outputs("edit", force)
    outputs.claim(out)  # never the photo itself (--paste-back -o PHOTO) unless asked with --force
    check_pixels(size)
    check_picture(3 * size, size, f"--size {size}")
    moves = check_moves(moves)
    if paste_back and (photo is None or inversion.transform is None):
        raise InputError("--paste-back needs the photo and the alignment of an inversion made from it (--image PHOTO)")
    edited = editor.edit(inversion.latent, moves, locks, layers)
    if fidelity:
        tuning = tuning if tuning is not None else tune_photo(editor.generator, inversion, editor=editor)
        session = photo_session(editor.generator, inversion, photo, tuning, region)
        result = session.render(edited)
        if paste_back:
            outputs.made(save_image(Image.fromarray(result), out))
        else:
            tuned = session.generator.render(inversion.latent).cpu().numpy()[0]
            outputs.made(save_image(image_row(np.stack([session.crop(session.photo, size), _resized(tuned, size),
                                                        session.crop(result, size)]), size), out))
        return edited
    face = editor.generator.render(edited).cpu().numpy()[0]
    if paste_back and photo is not None and inversion.transform is not None:
        outputs.made(save_image(Image.fromarray(paste(photo, face, inversion.transform)), out))
    else:
        outputs.made(save_image(image_row(np.stack([inversion.target, inversion.reconstruction, face]), size), out))
    return edited


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def layers_of(editor: Editor, spec: str | None) -> list[int] | None:
    """The synthesis layers ``--layers SPEC`` names (w+ only): None for all."""
    return None if spec is None else parse_layers(spec, editor.generator.num_ws)


def parse_moves(moves: Iterable[str]) -> dict[str, float]:
    """``NAME=AMOUNT`` moves (``age=+2``) as a dict, checked."""
    out: dict[str, float] = {}
    for m in moves:
        name, sep, amount = m.partition("=")
        try:
            out[name.strip()] = float(amount)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"--move {m!r}: write a move as NAME=AMOUNT, e.g. age=+2")
    return check_moves(out)


@dataclass
class Edited:
    """What ``edit`` wrote: the picture, the edited latent, what moved, and for a photo its inversion."""

    out: Path
    latent: np.ndarray
    moves: dict[str, float]
    locks: list[str]
    inversion: Inversion | None = None
    paste_back: bool = False
    animation: Path | None = None  # the move as a GIF / MP4 (--animate)

    def said(self) -> str:
        """The moves and locks in words: ``age=+2 locking male``."""
        return (f"{', '.join(f'{k}={v:+g}' for k, v in self.moves.items()) or '(no move)'}"
                + (f" locking {', '.join(self.locks)}" if self.locks else ""))


def edit(axes: str | Path, moves: Iterable[str] | Mapping[str, float] = (), locks: Sequence[str] = (),
         out: str | Path = "edit.png", seed: int = 0, latent: str | Path | None = None,
         image: str | Path | None = None, paste_back: bool = False, size: int = 256,
         save_latent: str | Path | None = None, layers: str | None = None, encoder: str | Path | None = None,
         steps: int = 200, face: int = 0, identity_weight: float = 0.3, force: bool = False,
         device: str | None = "auto", fidelity: bool = True, region: str = "face",
         tune_steps: int = TUNE_STEPS, animate: str | Path | None = None, frames: int = 7,
         fps: float = 8.0) -> Edited:
    """``tlgan edit``: one face before and after ``moves`` along the axes file's axes, written to ``out``.

    The face is a photo's (``image``: found, aligned and inverted, from ``encoder``'s guess or the
    :func:`default_encoder`), an inversion's (``latent`` ending in ``.npz``, from ``tlgan invert``), a ``.npy``
    latent, or the one ``seed`` draws. ``layers``: a ``--layers`` spec (w+ only). A photo's edit with
    ``fidelity`` keeps the photo's own pixels within ``region`` (the generator tuned to it: the inversion's
    saved tuning, else ``tune_steps`` of tuning now; see :func:`edit_photo`). ``animate``: also the face
    morphing along the whole move (:func:`animate_edit`, ``frames`` at ``fps``). Nothing existing is replaced
    that an earlier ``tlgan edit`` did not make, unless ``force``.
    """
    outputs = Outputs("edit", force)
    outputs.claim(out, save_latent and npy_path(save_latent), animate)  # before any work
    mv = check_moves(dict(moves)) if isinstance(moves, Mapping) else parse_moves(moves)
    check_seed(seed)
    if animate is not None:
        check_animation_path(animate)
        if layers is not None:
            raise InputError("--animate moves every layer; leave out --layers to animate")
    editor = open_editor(axes, device)
    chosen = layers_of(editor, layers)
    if image is not None or (latent is not None and str(latent).endswith(".npz")):
        tuning = None
        if image is not None:
            photo, inv = invert_photo(editor.generator, image, encoder or default_encoder(editor.generator, axes),
                                      face, steps, identity_weight)
        else:
            photo, inv = None, load_inversion(latent, editor.generator)  # type: ignore[arg-type]
            if fidelity and tuning_path(latent).exists():  # type: ignore[arg-type]
                tuning = load_tuning(tuning_path(latent), editor.generator)  # type: ignore[arg-type]
        if fidelity and tuning is None:
            tuning = tune_photo(editor.generator, inv, tune_steps, editor=editor)
        edited = edit_photo(editor, inv, photo, mv, locks, out, size, chosen, paste_back, fidelity, region, tuning,
                            force)
        if save_latent:
            outputs.made(save_npy(edited, save_latent))
        done = Edited(Path(out), edited, mv, list(locks), inv, paste_back)
        z = inv.latent
    else:
        z = read_latent(editor, seed, latent)
        done = Edited(Path(out), edit_file(editor, z, mv, locks, out, size, save_latent, chosen, force), mv,
                      list(locks))
    if animate is not None:
        done.animation = outputs.made(animate_edit(editor, z, mv, locks, animate, frames, fps, size))
    return done


def grid(axes: str | Path, features: Sequence[str] | None = None, seeds: Sequence[int] = (0, 1, 2),
         extent: float = 3.0, steps: int = 7, locks: Sequence[str] = (), out: str | Path = "grid.png",
         cell: int = 96, layers: str | None = None, force: bool = False, device: str | None = "auto",
         animate: str | Path | None = None, fps: float = 8.0) -> list[str]:
    """``tlgan grid``: the traversal figure of an axes file (``features`` default: every axis); returns its rows.
    ``animate``: also every row as a loop (:func:`animate_grid`)."""
    if animate is not None:
        check_animation_path(animate)
    editor = open_editor(axes, device)
    for f in list(features or []) + list(locks):
        editor.axes.index(f)
    chosen = layers_of(editor, layers)
    feats = grid_file(editor, features, seeds, extent, steps, locks, out, cell, chosen, force)
    if animate is not None:
        animate_grid(editor, feats, seeds, extent, steps, locks, animate, cell, chosen, fps)
    return feats


def axes_summary(axes: str | Path) -> dict[str, Any]:
    """``tlgan axes-info``: what an axes file holds (features, metrics, generator, extractor), as JSON data."""
    return Axes.load(axes).to_json()


@dataclass
class Inverted:
    """What ``invert`` wrote: the ``.latent.npz``, the generator, the inversion and the extractor's summary
    features of photo and reconstruction side by side (``{feature: (photo, reconstruction)}``)."""

    out: Path
    generator: Generator
    inversion: Inversion
    summary: dict[str, tuple[float, float]] = field(default_factory=dict)


def quality_extractor(name: str = DEFAULT_EXTRACTOR, device: str | None = "auto") -> Extractor | None:
    """The extractor that reads a reconstruction's labels beside the photo's: a bonus, so None when it
    cannot be loaded (e.g. its weights are not fetched)."""
    try:
        return load_extractor(name, device)
    except TLGANError:
        return None


def invert(photo: str | Path, generator: str = DEFAULT_GENERATOR, out: str | Path | None = None,
           encoder: str | Path | None = None, steps: int = 200, face: int = 0, identity_weight: float = 0.3,
           extractor: str = DEFAULT_EXTRACTOR, force: bool = False, device: str | None = "auto",
           space: Mapping[str, Any] | None = None, tune_steps: int = TUNE_STEPS) -> Inverted:
    """``tlgan invert``: the generator's closest face to the photo's, written to ``out`` (default:
    ``PHOTO.latent.npz``) with a PNG of crop | reconstruction beside it and, with ``tune_steps`` > 0, the
    generator's tuning to the photo (``PHOTO.tuning.safetensors``). ``encoder`` default: :func:`default_encoder`.

    ``extractor`` reads photo and reconstruction (skipped when it cannot be loaded); the summary holds the
    features it declares worth showing first (``Extractor.summary``).
    """
    check_number(identity_weight, "--identity-weight", 0, 1e6)
    photo = Path(photo)
    target = Path(out) if out else photo.with_name(photo.stem + ".latent.npz")
    Outputs("invert", force).claim(target, _png_beside(target, photo),  # before the models load
                                   tuning_path(target) if tune_steps else None)
    gen = load_generator(generator, device, **dict(space or {}))
    ext = quality_extractor(extractor, device)
    inv = invert_file(gen, photo, target, encoder or default_encoder(gen), face, steps, identity_weight, ext,
                      tune_steps, force)
    labels = inv.quality.get("labels", {}) if inv.quality else {}
    summary = {name: (labels[name]["photo"], labels[name]["reconstruction"])
               for name in (ext.summary if ext is not None else ()) if name in labels}
    return Inverted(target, gen, inv, summary)


def train_encoder(run: str | Path, out: str | Path | None = None, n: int = 20_000, epochs: int = 6,
                  force: bool = False, device: str | None = "auto", log: Log = None) -> tuple[Path, Generator]:
    """``tlgan train-encoder``: an encoder image -> latent from a run's own (latent, image) pairs, saved to
    ``out`` (default: ``encoder.safetensors`` beside the run folder); returns its path and the generator."""
    check_range(n, "-n", 20, MAX_N, "training pairs")
    check_range(epochs, "--epochs", 1, MAX_EPOCHS)
    outputs = Outputs("train-encoder", force)
    target = Path(out) if out else Path(run).parent / "encoder.safetensors"
    outputs.claim(target)
    r = open_run(run)
    gen = generator_of(r.info, device, r.path / "run.json")
    enc = train_image_encoder(r, gen, n=n, epochs=epochs, log=log or (lambda s: None))
    return outputs.made(enc.save(target)), gen


# ---------------------------------------------------------------- measuring axes


def prepare_heldout(generator: Generator, extractor: Extractor, n: int, run_seed: int, identity_n: int = 100,
                    log: Log = None) -> tuple[Scorer, Heldout]:
    """A scorer and the ``n`` held-out latents of a run seeded ``run_seed`` (never used for fitting)."""
    scorer = Scorer(generator, extractor)
    seed = heldout_seed(run_seed)
    _log(log, f"held-out latents: {n} from seed {seed}")
    return scorer, make_heldout(generator, scorer, n, seed, identity_n)


def check_measure_counts(identity_n: int, lock_n: int | None) -> None:
    """``--identity-n`` (0 = skip) and ``--lock-n`` (None = all) of a measurement, in range."""
    check_range(identity_n, "--identity-n", 0, MAX_HELDOUT, "held-out latents")
    if lock_n is not None:
        check_range(lock_n, "--lock-n", 1, MAX_HELDOUT, "held-out latents")


#: The files of a report folder a user may well have of their own: refused unless made by the same command.
REPORT_PAGES = ("index.html", "summary.md")


def report_outputs(command: str, folder: Path, force: bool) -> Outputs:
    """Claim a report folder's pages for ``command`` before measuring anything."""
    outputs = Outputs(command, force)
    outputs.claim(*(folder / name for name in REPORT_PAGES))
    return outputs


def report_made(outputs: Outputs, page: Path) -> Path:
    """Record a written report's pages as its command's own."""
    for name in REPORT_PAGES:
        outputs.made(page.parent / name)
    return page


def evaluate_file(axes_path: str | Path, n: int = 200, distances: Sequence[float] = (1.5, 3.0),
                  features: Sequence[str] | None = None, locks: str | int | Sequence[str] | None = 3,
                  lock_n: int | None = None,
                  identity_n: int = 100, keep_norm: bool = False, norm_check: bool = True,
                  device: str | None = "auto", out: str | Path | None = None,
                  log: Log = None, force: bool = False) -> tuple[Evaluation, Path]:
    """``tlgan evaluate``: measure an axes file on held-out latents and write its report.

    Returns the evaluation and the report's ``index.html`` (default folder:
    ``report/AXES-NAME`` beside the axes file).
    """
    check_heldout(n)
    check_measure_counts(identity_n, lock_n)
    axes_path = Path(axes_path)
    folder = Path(out) if out else axes_path.parent / "report" / axes_path.stem
    outputs = report_outputs("evaluate", folder, force)
    a = Axes.load(axes_path)
    gen = generator_of(a.meta, device, axes_path)
    a.check_generator(gen)
    ext = load_extractor(a.meta.get("extractor", DEFAULT_EXTRACTOR), device)
    corr = None
    if a.meta.get("run") and (Path(a.meta["run"]) / "run.json").exists():
        corr = open_run(a.meta["run"]).labels(a.meta.get("extractor"))
    scorer, held = prepare_heldout(gen, ext, n, a.meta.get("seed", 0), identity_n, log)
    ev = evaluate_axes(a, scorer, held, distances, features, locks, lock_n, identity_n, keep_norm, norm_check,
                       corr_labels=corr)
    ev.finder = a.meta.get("finder", DEFAULT_FINDER)
    page = write_evaluation(ev, folder, f"Evaluation of {axes_path.name} ({ev.finder}) on {n} held-out latents")
    return ev, report_made(outputs, page)


def compare(run: str | Path, finders: Sequence[str], n: int = 200, distances: Sequence[float] = (1.5, 3.0),
            features: Sequence[str] | None = None, components: int = 10, locks: str | int | Sequence[str] | None = 3,
            lock_n: int | None = None, identity_n: int = 100, keep_norm: bool = False, norm_check: bool = True,
            device: str | None = "auto", out: str | Path | None = None,
            log: Log = None, force: bool = False) -> tuple[Comparison, Path]:
    """``tlgan compare``: find directions with each finder on a run, measure them on the same held-out latents.

    Returns the comparison and its report page (default folder: ``report/`` beside the run folder).
    """
    check_heldout(n)
    check_measure_counts(identity_n, lock_n)
    check_range(components, "--components", 1, MAX_COMPONENTS)
    folder = Path(out) if out else Path(run).parent / "report"
    outputs = report_outputs("compare", folder, force)
    r = open_run(run)
    gen, ext = generator_of(r.info, device, r.path / "run.json"), load_extractor(r.info["default_labels"], device)
    cmp = compare_finders(r, finders, gen, ext, n, distances, features, components, locks, lock_n, identity_n,
                          keep_norm, norm_check, log=log or (lambda s: None))
    return cmp, report_made(outputs, write_comparison(cmp, folder))


def dci_run(run: str | Path, label_set: str | None = None, features: Sequence[str] | None = None,
            max_samples: int = 5000, seed: int = 0, out: str | Path | None = None,
            log: Log = None, force: bool = False) -> tuple[SpaceDCI, Path]:
    """``tlgan dci``: DCI (Eastwood & Williams 2018) of a run's latents against its labels, per space.

    The spaces are z (the noise every run stores) and, for a run sampled in
    w or w+, its ``codes`` (the mapped w of each sample). No rendering: the
    run's own samples, ``max_samples`` of them drawn with ``seed``, 20% held
    out for informativeness. Writes the report (default: ``report/dci`` beside
    the run folder); returns the result and its ``index.html``.
    """
    check_range(max_samples, "--samples", 10, MAX_N)
    folder = Path(out) if out else Path(run).parent / "report" / "dci"
    outputs = report_outputs("dci", folder, force)
    r = open_run(run)
    z, labels, feats, meta = r.fit_inputs(label_set, list(features) if features else None)
    spaces = {"z": r.noise[: len(labels)]}
    if r.latent_space != "z":
        spaces[r.latent_space] = np.asarray(z)
    results = {}
    for name, codes in spaces.items():
        _log(log, f"DCI in {name}: {codes.shape[1]} codes, {len(feats)} factors")
        results[name] = dci(codes, labels, max_samples, seed=seed)
    names = [f.name for f in feats]
    res = SpaceDCI(str(r.path), names, len(labels), results,
                   {"label_set": meta["extractor"], "generator": meta["generator"], "max_samples": max_samples,
                    "seed": seed, "regressor": "lasso", "latent_space": r.latent_space})
    return res, report_made(outputs, write_dci(res, folder))


# ---------------------------------------------------------------- your own features


def label_session(labels: str | Path, run: str | Path | None = None, generator: str = DEFAULT_GENERATOR,
                  seed: int = 0, page_size: int = 24, probe_input: str = "faceres",
                  device: str | None = "auto") -> Labeller:
    """The labelling session of ``tlgan label``: a run's cached faces (``run``) or fresh samples of ``generator``."""
    if run is not None:
        source: FaceSource = RunSource(run)
    else:
        gen = load_generator(generator, device)
        source = FaceSource(gen.name, seed, None, gen)
    return Labeller(source, LabelStore(labels, source.generator_name), page_size, probe_input, device)


def label_sheets(labeller: Labeller, folder: str | Path, feature: str = "", start: int = 0, count: int = 240,
                 cols: int = 8, cell: int = 96, force: bool = False) -> Iterable[Path]:
    """``tlgan label --sheets``: numbered contact sheets of faces ``start..start+count``, one per page.

    Yields each sheet's path as it is written; rows the source excludes are left out.
    """
    source, size = labeller.source, labeller.page_size
    stop = count + start if source.n is None else min(start + count, source.n)
    if count < 0:
        raise InputError(f"--count {count} must be >= 0")
    check_pixels(cell, "--cell")
    check_range(cols, "--cols", 1, MAX_COLS)
    check_picture(cols * cell, -(-size // cols) * (cell + 20), f"--cols {cols} x --cell {cell}")
    if start < stop:
        source.check([start, stop - 1])  # refuse out-of-range faces before making the folder
    folder = Path(folder)
    outputs = Outputs("label", force)
    outputs.claim(*(folder / f"faces-{lo:06d}.png" for lo in range(start, stop, size)))
    folder.mkdir(parents=True, exist_ok=True)
    for lo in range(start, stop, size):
        idx = [i for i in range(lo, min(lo + size, stop)) if i not in source.excluded]
        path = folder / f"faces-{lo:06d}.png"
        yield outputs.made(save_image(labeller.sheet(idx, feature, cols, cell), path))


def parse_crop(text: str) -> tuple[float, float, float] | None:
    """A CelebA crop: ``digiface`` (the generator's framing), ``center`` (None: the centred square) or
    three fractions ``X0,Y0,SIDE`` in [0, 1]."""
    if text == "digiface":
        return CELEBA_CROP
    if text == "center":
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 3 or not all(0 <= v <= 1 for v in box):
        raise InputError(f"{text!r}: digiface, center or three fractions X0,Y0,SIDE")
    return box[0], box[1], box[2]


def parse_renames(items: Iterable[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs (e.g. ``wearing_hat=hat``) as a dict."""
    names = {}
    for r in items:
        old, sep, new = r.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"{r!r}: write OLD=NEW, e.g. wearing_hat=hat")
        names[old.strip()] = new.strip()
    return names


def gather_faces(label_files: Sequence[str | Path] = (), celeba: str | Path | None = None,
                 csv_folder: str | Path | None = None, features: Sequence[str] | None = None,
                 renames: Mapping[str, str] | None = None, limit: int | None = None,
                 crop: tuple[float, float, float] | None | str = "digiface", size: int = 64, seed: int = 0,
                 device: str | None = "auto", log: Log = None) -> Dataset:
    """Labelled faces from label files, a CelebA folder and/or a CSV folder, combined, with ``features`` kept.

    Feature names are lower case; ``renames`` maps CelebA attributes to other names.
    """
    feats = [f.lower() for f in features or []] or None
    names = dict(renames or {})
    parts = []
    if label_files:
        parts.append(T.from_label_files(list(label_files), None, device))
    if celeba is not None:
        box = parse_crop(crop) if isinstance(crop, str) else crop
        back = {v: k for k, v in names.items()}
        wanted = [back.get(f, f) for f in feats] if feats else None
        parts.append(T.from_celeba(celeba, wanted, limit, size, box, seed, names, log=log))
    if csv_folder is not None:
        parts.append(T.from_csv_folder(csv_folder, None, size))
    if not parts:
        raise InputError("give the labelled faces: --labels FILE, --celeba FOLDER and/or --csv FOLDER")
    return T.combine(parts).select(feats)


def train_from_sources(name: str, label_files: Sequence[str | Path] = (), celeba: str | Path | None = None,
                       csv_folder: str | Path | None = None, features: Sequence[str] | None = None,
                       renames: Mapping[str, str] | None = None, limit: int | None = None,
                       crop: tuple[float, float, float] | None | str = "digiface", size: int = 64,
                       learner: str = "probe", probe_input: str = "faceres", out: str | Path | None = None,
                       force: bool = False, folds: int = 5, min_per_class: int = 10, epochs: int = 15,
                       batch_size: int = 128, seed: int = 0, device: str | None = "auto",
                       log: Log = None) -> TrainResult:
    """``tlgan train-extractor``: gather the labelled faces and train the extractor ``name`` on them."""
    data = gather_faces(label_files, celeba, csv_folder, features, renames, limit, crop, size, seed, device, log)
    return train_extractor(name, data, learner, probe_input, None if out is None else Path(out), force, folds,
                           min_per_class, epochs, batch_size, seed, device, log=log)


def label_extractor(features: Sequence[str], extractor: str | None = "auto") -> str | None:
    """The extractor to record with axes fitted on hand labels of ``features``.

    ``auto``: the default extractor if it reports every one of them, else none;
    ``none`` or None: none; a name (``a+b``): checked now, so a typo fails here
    and not later in ``tlgan evaluate``.
    """
    if extractor is None or extractor == "none":
        return None
    load_plugins()
    if extractor == "auto":
        known = set(declared_features(DEFAULT_EXTRACTOR) or ()) if DEFAULT_EXTRACTOR in EXTRACTORS else set()
        return DEFAULT_EXTRACTOR if set(features) <= known else None
    for part in extractor.split("+"):
        EXTRACTORS.describe(part.strip())
    return extractor


@dataclass
class LabelAxes:
    """What ``fit_labels`` produced: the axes, where they were saved and the labels they came from."""

    axes: Axes
    path: Path
    table: LabelTable


def fit_labels(labels: Sequence[str | Path], features: Sequence[str] | None = None, out: str | Path | None = None,
               extractor: str | None = "auto", seed: int = 0, device: str | None = "auto") -> LabelAxes:
    """``tlgan fit-labels``: an axis per feature straight from hand-labelled latents, saved to ``out``
    (default: the first label file with the suffix ``.axes.safetensors``)."""
    if out is not None:
        Axes.check_path(out)  # refuse a name that would clobber a file before the fit, not after it
    table = load_labels(list(labels), features or None)
    library.check_named_path(table.generator, labels[0])
    gen = load_generator(table.generator, device)
    ext = label_extractor(table.features, extractor)
    axes = fit_label_axes(table, gen, seed=seed, source=", ".join(map(str, labels)), extractor=ext)
    path = axes.save(out or Path(labels[0]).with_suffix(".axes.safetensors"))
    return LabelAxes(axes, path, table)



# ---------------------------------------------------------------- generate to order (tlgan generate / dataset)


def open_generation(axes_path: str | Path, device: str | None = "auto") -> tuple[Editor, Extractor]:
    """The editor of an axes file and the extractor its axes were fitted on (which confirms generated faces)."""
    editor = open_editor(axes_path, device)
    return editor, load_extractor(editor.axes.meta.get("extractor") or DEFAULT_EXTRACTOR, device)


def measure_faces(editor: Editor, extractor: Extractor) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Latents -> (labels, images): render with the editor's generator, label with the extractor."""
    return functools.partial(render_and_label, editor.generator, extractor)


@dataclass
class Generated:
    """What ``generate_faces`` delivered and what it cost, beside rejection sampling on the same spec."""

    spec: Any  # tlgan.generate.spec.Spec
    names: list[str]
    faces: list  # tlgan.generate.plan.Face: latent, start, labels, image, steps (moves and locks)
    outcome: Any  # tlgan.generate.plan.Outcome: started, rendered, gave_up
    seconds: float
    baseline_found: int = 0
    baseline_rendered: int = 0
    baseline_seconds: float = 0.0
    folder: Path | None = None
    contact_sheet: Path | None = None
    extractor: str = ""  # the extractor that confirmed the faces

    @property
    def images(self) -> np.ndarray:
        return np.stack([f.image for f in self.faces])

    @property
    def latents(self) -> np.ndarray:
        return np.stack([f.latent for f in self.faces])

    @property
    def baseline_cost(self) -> float:
        """Faces rendered per matching face by rejection sampling (a lower bound when it found none)."""
        return self.baseline_rendered / max(self.baseline_found, 1)

    def summary(self) -> dict[str, Any]:
        o = self.outcome
        out = {"spec": str(self.spec), "delivered": len(self.faces), "started": o.started, "rendered": o.rendered,
               "gave_up": o.gave_up, "near_duplicates_refused": o.duplicates, "yield": o.yield_,
               "renders_per_face": o.renders_per_face,
               "seconds": self.seconds}
        if self.baseline_rendered:
            out.update(rejection_found=self.baseline_found, rejection_rendered=self.baseline_rendered,
                       rejection_renders_per_face=self.baseline_cost, rejection_seconds=self.baseline_seconds,
                       rejection_lower_bound=self.baseline_found == 0,
                       cost_ratio=self.baseline_cost / o.renders_per_face)
        return out


def _spec_for(editor: Editor, extractor: Extractor, wants: Sequence[str], keep: Sequence[str]) -> Any:
    """The spec of ``wants`` on the extractor's features, plus the subject's presence when it has an axis;
    every feature it names (and every kept one) must have an axis to move along."""
    spec = parse_spec(wants, extractor.features)
    axes = editor.axes
    for f in list(spec.features) + list(keep):
        if f not in axes.names:
            raise SpecError(f"feature {f!r} has no axis in this axes file, so faces cannot be moved along it; "
                            f"it has: {', '.join(axes.names)}")
    both = sorted(set(keep) & set(spec.features))
    if both:
        raise SpecError(f"--keep {', '.join(both)} and a condition on the same feature: keep a feature or ask for "
                        "a value of it, not both")
    presence = presence_condition(extractor.features, extractor.presence)
    return with_condition(spec, presence if presence and presence.feature in axes.names else None)


def generate_faces(editor: Editor, extractor: Extractor, wants: Sequence[str], n: int = 16,
                   out: str | Path | None = None, seed: int = 0, keep: Sequence[str] = (),
                   start: np.ndarray | None = None, max_tries: int = MAX_TRIES, baseline: int = 0, cell: int = 96,
                   log: Log = None, candidates: int = 32, distinct: bool | None = None) -> Generated:
    """``tlgan generate``: ``n`` different faces that the extractor confirms meet every condition of ``wants``.

    Each face starts random (face ``i`` of ``seed``; or ``start``, one given latent, with ``n`` = 1), is moved
    along the axes toward the wanted region with the features already right (and ``keep``) locked, and is
    rendered, relabelled and corrected up to ``max_tries`` times; a face that cannot get there is replaced by
    the next one. Random starts are the nearest to the wanted region (by the axes' models, without rendering)
    of ``candidates`` times as many drawn. With ``distinct`` (the default, None, whenever the extractor has an
    identity descriptor; True without one is refused) a face that arrives nearer to one already delivered
    than the closest pair of ``n`` random faces is in 95% of draws (``generate.distinct.near_duplicate_bar``)
    is nudged and checked again (``steer``'s ``accept``); the random faces that set that bar come from the
    axes' run when it keeps images, else they are rendered and count in the cost. ``baseline`` > 0 also draws
    up to that many random faces (the next ones of the same seed) to measure rejection sampling's cost on the
    same spec. With ``out``, writes ``out/faces/`` (PNGs and ``metadata.jsonl``: labels, seed, index, latent,
    moves), ``out/contact-sheet.png`` and ``out/summary.json``.
    """
    check_range(n, "-n", 1, 100_000, "faces")
    check_range(candidates, "--candidates", 1, 1000)
    check_range(max_tries, "--max-tries", 1, 100)
    spec = _spec_for(editor, extractor, wants, keep)
    if distinct is None:  # by default whenever the extractor can tell faces apart
        distinct = extractor.has_descriptor
    elif distinct and not extractor.has_descriptor:
        raise InputError(f"--distinct tells faces apart by the extractor's identity descriptor, and {extractor.name} "
                         "has none: drop --distinct, or use an extractor that has one (e.g. faces)")
    names = extractor.feature_names
    measure = measure_faces(editor, extractor)
    stream = LatentStream(editor.generator, seed)
    draw: Callable[[int], tuple[np.ndarray, np.ndarray]] = stream.draw
    if start is not None:
        if n != 1:
            raise InputError(f"starting from one given face makes one face: use -n 1 (not {n})")
        given = [np.asarray(start, np.float32)]

        def given_once(k: int) -> tuple[np.ndarray, np.ndarray]:  # the given face once, then nothing
            if not given or k < 1:
                return np.zeros(0, int), np.zeros((0, *np.shape(start)), np.float32)
            return np.array([0]), given.pop()[None]
        draw = given_once
    t0 = time.perf_counter()
    _log(log, f"generate {n} faces meeting {spec}")
    rendered = 0

    def counted(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal rendered
        rendered += len(latents)
        return measure(latents)
    cal, accept = None, None
    if start is None and candidates > 1:
        # the axes' run when on disk (nothing rendered), else a few random faces per face asked for
        z_cal, labels_cal = _calibration_faces(editor, extractor, counted, min(256, max(64, 4 * n)), seed)
        cal = calibrate(spec, editor.axes, names, z_cal, labels_cal)
        check_feasible(spec, editor.axes, cal)
        draw = nearest_draw(stream.draw, spec, editor.axes, cal, candidates)
    if start is None and distinct and n > 1:
        references, references_rendered = _reference_images(editor, seed)
        rendered += references_rendered
        accept = Distinct.from_random(lambda im: extractor.descriptor(torch.from_numpy(im[None]))[0],
                                      extractor.descriptor(torch.from_numpy(references)), set_size=n)
    outcome = steer(spec, editor.axes, names, measure, draw, n, keep, max_tries,
                    max_started=1 if start is not None else None, calibration_draw=stream.draw, calibration=cal,
                    accept=accept)
    outcome.rendered += rendered
    result = Generated(spec, names, outcome.delivered, outcome, time.perf_counter() - t0, extractor=extractor.name)
    if baseline > 0:
        t0 = time.perf_counter()
        result.baseline_found, result.baseline_rendered = rejection(spec, names, measure, LatentStream(
            editor.generator, seed, start=stream.position).draw, n, baseline)
        result.baseline_seconds = time.perf_counter() - t0
    if out is not None:
        folder = Path(out)
        faces_dir = folder / "faces"
        files = [f"face-{k:04d}.png" for k in range(len(result.faces))]
        save_faces(faces_dir, result.images, files)
        write_metadata(faces_dir, [face_record(f, file, names, None if start is not None else seed, spec=str(spec))
                                   for f, file in zip(result.faces, files, strict=True)])
        captions = ["\n".join(f"{c.feature} {f.labels[names.index(c.feature)]:.3g}" for c in spec.conditions
                               if c.feature != extractor.presence) for f in result.faces]
        result.contact_sheet = save_image(contact_sheet(result.images, captions, cell, title=str(spec)),
                                          folder / "contact-sheet.png")
        atomic_write_text(folder / "summary.json", json.dumps(result.summary(), indent=2) + "\n")
        result.folder = folder
    return result


def start_latent(editor: Editor, latent: str | Path | None = None, image: str | Path | None = None,
                 encoder: str | Path | None = None, steps: int = 200, face: int = 0,
                 identity_weight: float = 0.3) -> np.ndarray | None:
    """The one face ``latent`` (``.npy``, or ``.latent.npz`` from ``tlgan invert``) or ``image`` (inverted now)
    gives; None for neither."""
    if latent is not None and image is not None:
        raise InputError("give --from-latent or --image, not both")
    if image is not None:
        return invert_photo(editor.generator, image, encoder, face, steps, identity_weight)[1].latent
    if latent is not None and str(latent).endswith(".npz"):
        return load_inversion(latent, editor.generator).latent
    if latent is not None:
        return read_latent(editor, 0, latent)
    return None


def generate(axes: str | Path, wants: Sequence[str], n: int | None = None, out: str | Path | None = "generated",
             seed: int = 0, keep: Sequence[str] = (), latent: str | Path | None = None,
             image: str | Path | None = None, max_tries: int = MAX_TRIES, baseline: int = 0, cell: int = 96,
             encoder: str | Path | None = None, steps: int = 200, face: int = 0, identity_weight: float = 0.3,
             device: str | None = "auto", log: Log = None, distinct: bool | None = None) -> Generated:
    """``tlgan generate``: the axes file's editor and extractor, the start face (``latent`` or ``image``, if
    given), then :func:`generate_faces`; ``n`` default: 16, or 1 from a given face."""
    editor, extractor = open_generation(axes, device)
    start = start_latent(editor, latent, image, encoder, steps, face, identity_weight)
    n = n if n is not None else 1 if start is not None else 16
    return generate_faces(editor, extractor, wants, n, out, seed, keep, start, max_tries, baseline, cell, log=log,
                          distinct=distinct)


def dataset(axes: str | Path, balance: Sequence[str], n: int, out: str | Path, seed: int = 0,
            chunk: int | None = None, max_tries: int = 4, parquet: bool = False, device: str | None = "auto",
            ray_address: str | None = None, workers: int | None = None) -> Any:
    """``tlgan dataset``: :func:`make_dataset` with the axes file's editor and extractor; with ``ray_address``
    (``local``, ``auto`` or an address, as ``tlgan sample --ray``) the faces are rendered and labelled by
    ``workers`` Ray workers (the same set as here: the driver steers and writes, the workers measure)."""
    if ray_address is None:
        editor, extractor = open_generation(axes, device)
        return make_dataset(editor, extractor, balance, n, out, seed, chunk, max_tries, parquet=parquet)
    connect(ray_address)
    editor, extractor = open_generation(axes, "cpu")  # the driver's: axes, latents and spreads, no rendering
    meta = editor.axes.meta
    options = {"space": str(meta.get("latent_space", "z")), "truncation": float(meta.get("truncation", 1.0))}
    spec = ModelSpec(generator_location(meta), extractor.name, options)
    pool = Pool.start(spec.for_workers(), workers, device or "auto")
    try:
        measure = RayMeasure(pool)
        built = make_dataset(editor, extractor, balance, n, out, seed, chunk, max_tries,
                             parquet=parquet, measure=measure)
    finally:
        pool.close()
    built.ray = measure.report
    built.ray.seconds = time.perf_counter() - built.ray.t0
    return built


def _axes_run(editor: Editor) -> Run | None:
    """The run the axes were fitted on, when it is still on disk, readable, and drawn by this generator: its
    faces, labels and images stand in for random faces at no render."""
    where = editor.axes.meta.get("run")
    if not where or not (Path(where) / "run.json").exists():
        return None
    try:
        run = open_run(where)
    except RunError:
        return None
    return run if run.generator == editor.generator.name else None


REFERENCE_FACES = 256  # random faces whose identity distances set the near-duplicate bar of ``generate --distinct``


def _reference_images(editor: Editor, seed: int) -> tuple[np.ndarray, int]:
    """``REFERENCE_FACES`` random faces' images, and how many were rendered for them: the axes' own run's when
    it keeps images of this generator (none rendered), else rendered (not labelled) from the seed two after
    ``seed``."""
    run = _axes_run(editor)
    if run is not None and run.has_images:
        try:
            if run.images.shape[0] >= REFERENCE_FACES:
                return np.asarray(run.images[:REFERENCE_FACES]), 0
        except RunError:  # a damaged run: render the faces instead
            pass
    _, z = LatentStream(editor.generator, (seed + 2) % (MAX_SEED + 1)).draw(REFERENCE_FACES)
    return editor.generator.render(z).cpu().numpy(), REFERENCE_FACES


def _calibration_faces(editor: Editor, extractor: Extractor, measure: Callable, count: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latents and labels of random faces to read label spreads from: the first ``count`` samples of the
    axes' own run when it is on disk with these labels (nothing to render), else ``count`` faces rendered
    from the seed after ``seed``."""
    run = _axes_run(editor)
    if run is not None and extractor.name in run.label_sets:
        try:
            labels = run.labels(extractor.name)[:count]
            if len(labels) >= min(count, 100):
                return run.latents[: len(labels)], labels
        except RunError:
            pass
    _, z = LatentStream(editor.generator, (seed + 1) % (MAX_SEED + 1)).draw(count)
    return z, measure(z)[0]


def make_dataset(editor: Editor, extractor: Extractor, balance: Sequence[str], n: int, out: str | Path,
                 seed: int = 0, chunk: int | None = None, max_tries: int = 4, pool: int = 1024,
                 parquet: bool = False, progress: bool = True, candidates: int = 8,
                 measure: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None) -> Any:
    """``tlgan dataset``: ``n`` faces with equal counts in every cell of the ``balance`` features
    (``FEATURE[:BINS]``), each confirmed by the extractor, in ``out`` as a Hugging Face imagefolder
    (``out/train/``: PNGs and ``metadata.jsonl``); resumable. Bin edges come from ``pool`` random faces
    (the axes' run when it is on disk). ``parquet`` also writes ``out/data.parquet`` (``moves`` and ``steps``
    as JSON text there). Each chunk renders only the faces, of ``candidates`` times as many drawn, that the
    axes' models put nearest the cells still short of faces. ``measure``: latents -> (labels, images)
    [default: :func:`measure_faces` here; ``tlgan.distributed.Measure`` on Ray].
    Returns a :class:`tlgan.generate.dataset.Built`."""
    check_range(n, "-n", 1, 1_000_000, "faces")
    chunk = check_range(chunk or editor.generator.batch_size, "--chunk", 1, 65_536)
    check_range(candidates, "--candidates", 1, 1000)
    balances = parse_balance(balance, extractor.features)
    for b in balances:
        if b.feature not in editor.axes.names:
            raise DatasetError(f"feature {b.feature!r} has no axis in this axes file; it has: "
                               f"{', '.join(editor.axes.names)}")
    names = extractor.feature_names
    measure = measure or measure_faces(editor, extractor)
    z, labels = _calibration_faces(editor, extractor, measure, pool, seed)
    presence = presence_condition(extractor.features, extractor.presence)
    presence = presence if presence is not None and presence.feature in editor.axes.names else None
    any_value = Spec(tuple(Condition(b.feature, "binary" if b.kind == "binary" else "continuous")
                           for b in balances) + ((presence,) if presence else ()))
    cal = calibrate(any_value, editor.axes, names, z, labels)
    settings = {"axes": axes_fingerprint(editor.axes), "generator": editor.generator.name, "extractor": extractor.name,
                "balance": [f"{b.feature}:{b.bins}" for b in balances], "n": n, "seed": seed, "chunk": chunk,
                "max_tries": max_tries, "pool": pool, "candidates": candidates}
    built = build(Path(out), settings, balances, bin_edges(balances, labels, names), names, editor.axes, cal,
                  measure, lambda start: LatentStream(editor.generator, seed, start), n, seed, chunk, presence,
                  max_tries, progress=progress, candidates=candidates)
    if parquet:
        write_parquet(Path(out))
    return built


def write_parquet(folder: Path) -> Path:
    """``folder/data.parquet``: the imagefolder's rows with each image's PNG bytes (the ``datasets`` Image layout)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("--parquet needs pyarrow: pip install pyarrow") from None
    split = folder / SPLIT
    def flat(r: dict) -> dict:  # moves differ in their keys from face to face: kept as JSON text
        return {k: json.dumps(v) if k in ("moves", "steps") else v for k, v in r.items()}

    rows = [{"image": {"bytes": (split / r["file_name"]).read_bytes(), "path": r["file_name"]}, **flat(r)}
            for r in read_metadata(split)]
    table = pa.Table.from_pylist(rows)
    return atomic_write(folder / "data.parquet", lambda tmp: pq.write_table(table, tmp))
