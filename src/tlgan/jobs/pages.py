"""The jobs that open a web page: the explorer (``tlgan serve``) and the labelling page (``tlgan label``).

Apart from :mod:`tlgan.jobs.core` because the pages themselves (``tlgan.app``) call core jobs: the explorer
inverts and tunes photos with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..app.address import check_address, network_warning
from ..app.explorer import INVERT_STEPS, Explorer
from ..app.undo import MAX_SESSIONS  # offered to the command line too: serve's default
from ..axes import Axes
from ..bounds import MAX_COLS, check_range, check_seed
from ..errors import InputError
from ..extractors import load_extractor
from ..generators import generator_of
from ..invert import Encoder, load_encoder
from .core import DEFAULT_GENERATOR, DEFAULT_OUT, TUNE_STEPS, Log, _log, default_encoder, label_session, label_sheets

# ---------------------------------------------------------------- the explorer


def open_explorer(axes_path: str | Path, device: str | None = "auto", readouts: bool = True,
                  invert_steps: int = INVERT_STEPS, encoder: str | Path | Encoder | None = None,
                  tune_steps: int = TUNE_STEPS) -> Explorer:
    """The explorer of an axes file: the generator it names and, with ``readouts``, its extractor; an uploaded
    photo is inverted in ``invert_steps`` steps from ``encoder``'s guess (default: :func:`default_encoder`
    beside the axes) and the generator tuned to it in ``tune_steps``."""
    axes = Axes.load(axes_path)
    if not axes.meta.get("generator"):
        raise InputError(f"{axes_path} does not say which generator it was fitted for; fit it with `tlgan fit`")
    generator = generator_of(axes.meta, device)
    ext_name = axes.meta.get("extractor")
    extractor = load_extractor(ext_name, device) if readouts and ext_name else None
    enc = load_encoder(encoder, generator) if isinstance(encoder, (str, Path)) else encoder
    if enc is None:
        enc = default_encoder(generator, axes_path)
    return Explorer(axes, generator, extractor, invert_steps, enc, tune_steps)


def serve(axes: str | Path = DEFAULT_OUT / "axes.safetensors", host: str = "127.0.0.1", port: int = 7860,
          seed: int | None = None, invert_steps: int = INVERT_STEPS, encoder: str | Path | None = None,
          live: str = "auto", max_sessions: int = MAX_SESSIONS, device: str | None = "auto",
          tune_steps: int = TUNE_STEPS, log: Log = None) -> Any:
    """``tlgan serve``: the explorer page of an axes file, until stopped (Ctrl+C).

    The address is checked before gradio and the models load (seconds), so a taken port is said at once.
    """
    if not Path(axes).exists():
        hint = ("run `make demo` (or `tlgan discover`) first to make it"
                if Path(axes) == DEFAULT_OUT / "axes.safetensors" else "make one with `tlgan discover` or `tlgan fit`")
        raise InputError(f"no axes file at {axes}: {hint}, or pass an axes file: tlgan serve AXES")
    check_address(host, port)
    web = _gradio_page("explorer", "web")
    warning = network_warning(host)
    if warning:
        _log(log, warning)
    _log(log, f"tlgan explorer on http://{host}:{port}/  (Ctrl+C to stop)")
    return web.serve(lambda: open_explorer(axes, device, invert_steps=invert_steps, encoder=encoder,
                                           tune_steps=tune_steps), host, port, seed=seed, live=live,
                     max_sessions=max_sessions)


def _gradio_page(what: str, module: str) -> Any:
    """``tlgan.app.web`` or ``tlgan.app.label``: imported only when a page is served (gradio takes seconds)."""
    try:
        if module == "web":
            from ..app import web
            return web
        from ..app import label
        return label
    except ImportError as e:
        raise InputError(f"the {what} page needs gradio ({e}): pip install 'tlgan[app]'") from e



def label(labels: str | Path = "labels.jsonl", run: str | Path | None = None, generator: str = DEFAULT_GENERATOR,
          seed: int = 0, feature: str = "", page_size: int = 24, cols: int = 8, probe_input: str = "faceres",
          sheets: str | Path | None = None, start: int = 0, count: int = 240, cell: int = 96,
          host: str = "127.0.0.1", port: int = 7861, force: bool = False, device: str | None = "auto",
          log: Log = None) -> Iterator[Path]:
    """``tlgan label``: with ``sheets``, yield the contact sheets as they are written; else serve the labelling
    page (every click appended to ``labels``) until stopped, yielding nothing."""
    check_range(cols, "--cols", 1, MAX_COLS)
    check_range(page_size, "--page-size", 1, 10_000)
    check_seed(seed)
    labeller = label_session(labels, run, generator, seed, page_size, probe_input, device)
    if sheets is not None:
        yield from label_sheets(labeller, sheets, feature, start, count, cols, cell, force)
        return
    page = _gradio_page("labelling", "label")
    _log(log, f"labelling {labeller.source.describe()} into {labels} on http://{host}:{port}/  (Ctrl+C to stop)")
    page.launch(page.build_label_app(labeller, feature, cols), host, port)
