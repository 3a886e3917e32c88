"""The explorer inside a Jupyter notebook: ``tlgan.notebook.explore(axes)``.

A slider, a lock and a readout per feature as ipywidgets, with the face above
them. It is the web page's logic, not a copy of it: the state is the page's
``ExplorerState``, every change goes through the page's own validating
``set_slider`` / ``set_lock`` / ``set_seed``, the face is ``Explorer.render``
(``tlgan.explore.move`` with the same lock projection) and the readouts are
``describe_readouts``. Only the widgets are new. Needs the ``notebook`` extra
(ipywidgets).
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from .app.state import SLIDER_LIMIT, SLIDER_STEP, Explorer, ExplorerState, StateError, describe_readouts, set_lock, set_seed, set_slider
from .jobs import open_explorer

TREND_MARK = {"up": "▲", "down": "▼", "same": "=", "none": "", "missing": "✕"}


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) as PNG bytes (what an ``ipywidgets.Image`` shows)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


class NotebookExplorer:
    """The widgets over one ``Explorer`` and one ``ExplorerState``; display it as the last value of a cell.

    ``state`` is the current ``ExplorerState`` (the same JSON as the web page's
    state box: ``tlgan.app.encode_state(nb.state)``); ``image`` the face shown.
    """

    def __init__(self, explorer: Explorer, seed: int = 0, size: int = 256) -> None:
        import ipywidgets as w

        self.explorer = explorer
        self.state: ExplorerState = explorer.initial(seed)
        self._start_key: Any = None
        self._start: dict[str, float] = {}
        row = w.Layout(width="auto")
        self.sliders = {n: w.FloatSlider(value=0.0, min=-SLIDER_LIMIT, max=SLIDER_LIMIT, step=SLIDER_STEP,
                                         description=n, continuous_update=False, readout_format="+.1f")
                        for n in explorer.names}
        self.locks = {n: w.Checkbox(value=False, description="lock", indent=False, layout=w.Layout(width="70px"))
                      for n in explorer.names}
        self.readouts = {n: w.HTML(layout=w.Layout(width="220px")) for n in explorer.names}
        self.seed = w.BoundedIntText(value=self.state.seed or 0, min=0, max=2**32 - 1, description="seed")
        self.reset = w.Button(description="reset sliders")
        self.image = w.Image(format="png", width=size, height=size)
        self.status = w.HTML()
        for name in explorer.names:
            self.sliders[name].observe(lambda ch, n=name: self._change(set_slider, self.explorer.axes, n, ch["new"]),
                                       names="value")
            self.locks[name].observe(lambda ch, n=name: self._change(set_lock, self.explorer.axes, n, ch["new"]),
                                     names="value")
        self.seed.observe(lambda ch: self._change(set_seed, ch["new"]), names="value")
        self.reset.on_click(lambda _: self._reset())
        rows = [w.HBox([self.sliders[n], self.locks[n], self.readouts[n]], layout=row) for n in explorer.names]
        self.widget = w.VBox([w.HBox([self.image, w.VBox([self.seed, self.reset, self.status])]), *rows])
        self._syncing = False
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _change(self, change, *args: Any) -> None:
        """Apply one page change (``change(state, *args)``); a refused one is said in the status and undone."""
        if self._syncing:
            return
        try:
            self.state = change(self.state, *args)
        except StateError as e:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
            self._sync_widgets()
            return
        self.refresh()

    def _reset(self) -> None:
        from dataclasses import replace

        self.state = replace(self.state, sliders={}, locks=())
        self._sync_widgets()
        self.refresh()

    def _sync_widgets(self) -> None:
        """Put every widget back to what the state says (after a refused change or a reset)."""
        self._syncing = True
        try:
            for n in self.explorer.names:
                self.sliders[n].value = self.state.slider(n)
                self.locks[n].value = n in self.state.locks
                self.sliders[n].disabled = n in self.state.locks  # a locked slider is frozen, as on the page
            if self.state.seed is not None:
                self.seed.value = self.state.seed
        finally:
            self._syncing = False

    def refresh(self) -> None:
        """Render the state's face, read it and fill in the readouts and lock warnings."""
        self._sync_widgets()
        face = self.explorer.render(self.state)
        self.image.value = png_bytes(face)
        values = self.explorer.readouts(face)
        key = (self.state.seed, self.state.latent)
        if key != self._start_key:  # the unedited face's readouts, once per face
            self._start = self.explorer.readouts(self.explorer.render_unedited(self.state))
            self._start_key = key
        shown = describe_readouts(self.explorer.names, self.explorer.features, values, self._start,
                                  edited=bool(self.state.sliders), presence=self.explorer.presence)
        for r in shown:
            mark = TREND_MARK.get(r.trend, "")
            self.readouts[r.name].value = html.escape(f"{r.value} {r.change} {mark}".strip())
        warnings = [html.escape(w.message(bold=False)) for w in self.explorer.lock_warnings(self.state)]
        self.status.value = "<br>".join([html.escape(self.state.describe()), *warnings])

    @property
    def face(self) -> np.ndarray:
        """The face shown, uint8 (H, W, 3)."""
        return self.explorer.render(self.state)


def explore(axes: str | Path | Explorer, seed: int = 0, device: str | None = None, readouts: bool = True,
            size: int = 256) -> NotebookExplorer:
    """The explorer as notebook widgets over an axes file (``runs/demo/axes.safetensors``) or a loaded ``Explorer``.

    The generator and extractor are the ones named in the axes file, as for
    ``tlgan serve``; ``readouts=False`` skips the extractor (no readouts).
    """
    explorer = axes if isinstance(axes, Explorer) else open_explorer(axes, device=device, readouts=readouts)
    return NotebookExplorer(explorer, seed=seed, size=size)
