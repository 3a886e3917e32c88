"""Real-time slider dragging in the explorer: the face follows the slider while it moves.

A gradio round trip (about 90 ms on this CPU before any rendering) is too slow
to follow a drag, so while a slider is dragged the page draws the face itself
and tells the server nothing; when the slider is released the page's usual
gradio event runs, and the server's state (undo, share link, readouts,
downloads) is updated exactly as for any other change. Two ways to draw:

- ``browser``: a generator small enough for the page (the default 64-px DCGAN)
  is exported once to ONNX (cached by a hash of its weights) and run by
  onnxruntime-web (WebAssembly, fetched from npm like the face models) in the
  page, which also moves the latent along the axes with the same lock
  projection as ``tlgan.explore.edit_delta`` (``static/live.js``);
- ``server``: for any other generator (StyleGAN files, w+ layer ranges) the page
  posts the slider values to ``/tlgan-live/frame`` and gets a JPEG back, one
  request at a time, so stale positions are dropped rather than queued.
  An uploaded photo edited with fidelity (``tlgan.app.photos``) is always
  dragged this way, whatever the mode: its frames are the photo itself, edited
  (``PhotoEdit.render``), which the page's 64-px generator cannot draw.

``Live`` holds what both need: the mode, the page's configuration, the exported
model, and the states the page has been shown (by digest), so a frame request
names a known state and only sends the slider values.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cachetools import LRUCache

from ..errors import TLGANError
from ..safeio import atomic_write
from ..weights import WeightsError, cache_dir, path_of
from .codec import parse_json, state_digest
from .explorer import Explorer
from .state import ExplorerState, StateError, set_slider

log = logging.getLogger(__name__)

PREFIX = "/tlgan-live"
STATIC = Path(__file__).with_name("static")
ORT_MODEL = "onnxruntime-web"
ORT_FILES = {"ort.wasm.min.js": "text/javascript", "ort-wasm-simd-threaded.mjs": "text/javascript",
             "ort-wasm-simd-threaded.wasm": "application/wasm"}
BROWSER_MAX_RESOLUTION = 128  # larger generators are drawn by the server (a 256-px StyleGAN is too slow in wasm)
BROWSER_MAX_BYTES = 64 << 20  # ... and so are models too big to download into a page
BROWSER_SPACES = ("z", "w")  # the page adds the moves to one latent vector (no w+ layer ranges)
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-3  # the exported model must agree with torch this closely (outputs in [-1, 1])
FRAME_SIZE = 512  # server frames are at most this many pixels wide (the page shows the face ~420 px high)
FRAME_QUALITY = 90
KEEP_STATES = 256  # states a frame request can name (a w+ photo's state holds its whole latent)
EXPORT_VERSION = 1  # bump to re-export every cached model (a change of the wrapper below)


class LiveError(TLGANError):
    """The in-browser path cannot be used for this generator (the page falls back to server frames)."""


# ---------------------------------------------------------------- the generator as an ONNX file


class _Synthesis(torch.nn.Module):
    """``generator.synthesize`` as a module: one latent (1, D) -> raw NCHW output in [-1, 1]."""

    def __init__(self, generator: Any) -> None:
        super().__init__()
        self.generator = generator
        for attr, value in sorted(vars(generator).items()):  # its networks' weights become the graph's initialisers
            if isinstance(value, torch.nn.Module):
                self.add_module(attr, value)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesize(latent)


def _tensors(generator: Any) -> list[tuple[str, torch.Tensor]]:
    """Every weight the generator holds (its modules' state and bare tensor attributes), named, in a fixed order."""
    out: list[tuple[str, torch.Tensor]] = []
    for attr, value in sorted(vars(generator).items()):
        if isinstance(value, torch.nn.Module):
            out += [(f"{attr}.{k}", v) for k, v in value.state_dict().items()]
        elif isinstance(value, torch.Tensor):
            out.append((attr, value))
    return out


def generator_key(generator: Any) -> str:
    """A SHA-256 naming the generator's computation: its class, space and shapes, and the bytes of every weight
    (a user's file is also named by its own SHA-256). Cached exports are looked up by it."""
    h = hashlib.sha256()
    head = {"class": type(generator).__qualname__, "name": generator.name, "space": generator.space,
            "latent_dim": generator.latent_dim, "resolution": generator.resolution,
            "file_sha256": generator.sha256, "export": EXPORT_VERSION, "opset": ONNX_OPSET, "torch": torch.__version__}
    h.update(json.dumps(head, sort_keys=True).encode())
    for name, t in _tensors(generator):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def onnx_cache() -> Path:
    """Where exported generators are kept: beside the weights (``~/.cache/tlgan/onnx``, or ``$TLGAN_HOME/onnx``)."""
    return cache_dir().parent / "onnx"


def export_onnx(generator: Any, folder: Path | None = None) -> Path:
    """The generator's synthesis network as an ONNX file (input ``latent`` (1, D), output ``image`` NCHW in
    [-1, 1]), exported once and cached under its ``generator_key``; refused (``LiveError``) when the page should
    not run it: too large, a space the page cannot edit, or an export that does not agree with torch."""
    if generator.space not in BROWSER_SPACES:
        raise LiveError(f"the page edits latents in {', '.join(BROWSER_SPACES)}, not in {generator.space}")
    if generator.resolution > BROWSER_MAX_RESOLUTION:
        raise LiveError(f"{generator.resolution} px is more than the page draws ({BROWSER_MAX_RESOLUTION} px)")
    size = sum(t.numel() * t.element_size() for _, t in _tensors(generator))
    if size > BROWSER_MAX_BYTES:
        raise LiveError(f"the generator's weights ({size >> 20} MB) are too large for the page")
    folder = folder or onnx_cache()
    path = folder / f"{generator_key(generator)}.onnx"
    if path.is_file():
        return path
    latent = torch.from_numpy(np.asarray(generator.sample(1, 0), np.float32)).to(generator.device)
    module = _Synthesis(generator).eval()

    def write(tmp: Path) -> None:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: it needs only onnx
            torch.onnx.export(module, (latent,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["latent"], output_names=["image"])
        check_onnx(tmp, generator)

    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except LiveError:
        raise
    except Exception as e:  # an operator the exporter does not know, a missing onnx package, a read-only cache ...
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise LiveError(f"cannot export {generator.name} to ONNX: {type(e).__name__}: {first}") from e
    return path


def check_onnx(path: Path, generator: Any, seeds: tuple[int, ...] = (1, 2)) -> float:
    """The largest difference between onnxruntime's and torch's outputs on a few latents (raises ``LiveError``
    above ``ONNX_TOLERANCE``); skipped (returns NaN) when the onnxruntime package is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return float("nan")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed in seeds:
        latent = np.asarray(generator.sample(1, seed), np.float32)
        got = session.run(None, {"latent": latent})[0]
        with torch.inference_mode():
            want = generator.synthesize(torch.from_numpy(latent).to(generator.device)).float().cpu().numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    if not worst <= ONNX_TOLERANCE:
        raise LiveError(f"the ONNX export of {generator.name} differs from torch by {worst:.2g}")
    return worst


# ---------------------------------------------------------------- what the page is told


def ort_files() -> dict[str, Path]:
    """onnxruntime-web's files from the weights cache (``tlgan models fetch onnxruntime-web``), checksummed."""
    return {name: path_of(ORT_MODEL, name) for name in ORT_FILES}


Renderer = Callable[[ExplorerState], np.ndarray]  # a state -> the picture its frame shows (uint8 H, W, 3)


class Live:
    """The explorer's drag path for one explorer: which mode, the page's configuration, and the frame renderer."""

    def __init__(self, explorer: Explorer, mode: str = "auto") -> None:
        if mode not in ("auto", "browser", "server", "off"):
            raise StateError(f"live mode must be auto, browser, server or off, got {mode!r}")
        self.explorer = explorer
        self.model: Path | None = None
        self.ort: dict[str, Path] = {}
        self.reason = ""  # why the page does not draw the face itself
        self._states: LRUCache[str, tuple[ExplorerState, Renderer | None]] = LRUCache(maxsize=KEEP_STATES)
        self._lock = threading.Lock()
        self._published = 0
        if mode in ("auto", "browser"):
            try:
                self.ort = ort_files()
                self.model = export_onnx(explorer.generator)
            except (LiveError, WeightsError) as e:
                if mode == "browser":
                    raise
                self.reason = str(e)
                log.warning("the explorer draws dragged faces on the server: %s", e)
        self.mode = "off" if mode == "off" else "browser" if self.model is not None else "server"

    # ------------------------------------------------------------ the page's view of one state

    def config(self) -> dict:
        """What the page script needs once: the mode, the axes (F, D) and the files to fetch (relative to
        ``PREFIX``)."""
        gen, axes = self.explorer.generator, self.explorer.axes
        doc: dict[str, Any] = {"mode": self.mode, "names": list(axes.names), "resolution": gen.resolution,
                               "latent_dim": int(axes.vectors.shape[1]), "frame": "frame",
                               "reason": self.reason}
        if self.mode == "browser":
            doc.update(axes=np.asarray(axes.vectors, np.float64).tolist(), model="model.onnx", ort="ort/")
        return doc

    def publish(self, state: ExplorerState, render: Renderer | None = None) -> str:
        """The hidden element of the page that tells the script the state shown (its digest, base latent, locks);
        the state is remembered so a frame request can name it. ``render``: how its frames are drawn when not by
        the generator (an uploaded photo's edit); such a state is always dragged with server frames."""
        digest = state_digest(state)
        with self._lock:
            self._states[digest] = (state, render)
        doc: dict[str, Any] = {"digest": digest, "sliders": dict(state.sliders), "locks": list(state.locks),
                               "layers": dict(state.layers)}
        if render is not None:
            doc["frames"] = "server"
        elif self.mode == "browser":
            doc["base"] = [float(x) for x in np.asarray(self.explorer.base_latent(state), np.float32).reshape(-1)]
        with self._lock:
            self._published += 1  # every update differs, so the page sees even a refused change answered
            n = self._published
        return f'<div class="tl-live-state" data-n="{n}" data-live="{html.escape(json.dumps(doc), quote=True)}"></div>'

    def state_for(self, request: Any) -> ExplorerState:
        """The state a frame request asks for: a published state (by digest) with the page's slider values,
        validated like every slider change."""
        return self.request_for(request)[0]

    def request_for(self, request: Any) -> tuple[ExplorerState, Renderer | None]:
        """``state_for``, and how the published state's frames are drawn (None: by the generator)."""
        if not isinstance(request, dict):
            raise StateError("a frame request is a JSON object {digest, sliders}")
        with self._lock:
            state, render = self._states.get(str(request.get("digest")), (None, None))
        if state is None:
            raise StateError("unknown state: reload the page")
        sliders = request.get("sliders", {})
        if not isinstance(sliders, dict):
            raise StateError("'sliders' must be an object like {\"age\": 2.0}")
        axes = self.explorer.axes
        for name, value in sliders.items():
            state = set_slider(state, axes, name, value)
        return state, render

    def frame(self, state: ExplorerState, render: Renderer | None = None) -> bytes:
        """The state's face (or ``render``'s picture of it) as a JPEG (at most ``FRAME_SIZE`` px wide)."""
        from PIL import Image

        image = Image.fromarray(render(state) if render is not None else self.explorer.render(state))
        if image.width > FRAME_SIZE:
            image = image.resize((FRAME_SIZE, FRAME_SIZE * image.height // image.width), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=FRAME_QUALITY)
        return buf.getvalue()

    # ------------------------------------------------------------ the web side

    def head(self) -> str:
        """The page's <head> addition: the script (it does nothing while the mode is off)."""
        return f'<script defer src="{PREFIX.lstrip("/")}/live.js"></script>' if self.mode != "off" else ""

    def routes(self) -> list:
        """The HTTP routes under ``/tlgan-live`` (starlette routes, handed to gradio's FastAPI app)."""
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Route

        def config(request: Any) -> Response:
            return JSONResponse(self.config(), headers={"Cache-Control": "no-store"})

        def script(request: Any) -> Response:
            return FileResponse(STATIC / "live.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

        def model(request: Any) -> Response:
            if self.model is None:
                return JSONResponse({"error": "this generator is drawn by the server"}, status_code=404)
            return FileResponse(self.model, media_type="application/octet-stream")

        def ort(request: Any) -> Response:
            name = request.path_params["name"]
            if name not in self.ort:
                return JSONResponse({"error": f"no file {name}"}, status_code=404)
            return FileResponse(self.ort[name], media_type=ORT_FILES[name])

        async def frame(request: Any) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                state, render = self.request_for(parse_json(await request.body()))
                data = await run_in_threadpool(self.frame, state, render)
            except StateError as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store",
                                                                    "X-State": state_digest(state)})

        return [Route(f"{PREFIX}/config.json", config), Route(f"{PREFIX}/live.js", script),
                Route(f"{PREFIX}/model.onnx", model), Route(f"{PREFIX}/ort/{{name}}", ort),
                Route(f"{PREFIX}/frame", frame, methods=["POST"])]

