"""How long the explorer takes from a slider change to the new face arriving in the browser.

Starts `tlgan serve` on a free localhost port, opens the page in Debian's
chromium through Playwright and makes ~30 slider changes, one at a time. Each
change is timed inside the page, from the slider's number box firing its
``input`` event to the new face image having loaded (``img.onload``), and
then to the extractor's readouts of that exact state being on the page (the
readouts come after the face, see tlgan.app.web). That is the request path.

Then it drags a slider (mouse down, a move every 1/60 s across the track,
mouse up; ``--drags`` times) and reports, from the page's own clock
(``window.tlganLive``, tlgan/app/static/live.js), the latency from each range
``input`` event to the first face painted that shows that position or a newer
one (p50/p95), and the faces painted per second of dragging. Each axes file
is served once per ``--live`` mode: ``auto`` (the default generator is drawn
in the page by onnxruntime-web) and ``server`` (JPEG frames from the server).

Runs on the demo's axes (runs/demo/axes.safetensors, the real default:
digiface-dcgan + faces) when they exist, else on toy axes fitted in a second;
``--axes PATH`` (repeatable, or ``toy``) picks others. Prints the machine and
writes benchmarks/results/app_latency.json.

    python benchmarks/app_latency.py [--axes runs/demo/axes.safetensors] [--axes toy] [--changes 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO_AXES = ROOT / "runs" / "demo" / "axes.safetensors"
RESULTS = ROOT / "benchmarks" / "results" / "app_latency.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# In the page: time from the number box's input event to the new face's load event.
ARM_JS = """(name) => {
  window.__t = {};
  const box = document.querySelector('#tl-slider-' + name + ' input[type=number]');
  const img0 = document.querySelector('#tl-face img');
  const before = img0.getAttribute('src');
  box.addEventListener('input', () => { window.__t.input = performance.now(); }, {once: true, capture: true});
  const done = (im) => { window.__t.face = performance.now(); };
  const obs = new MutationObserver(() => {
    const im = document.querySelector('#tl-face img');
    if (!im || im.getAttribute('src') === before || window.__t.seen) return;
    window.__t.seen = true;
    obs.disconnect();
    if (im.complete && im.naturalWidth) done(im); else im.addEventListener('load', () => done(im), {once: true});
  });
  obs.observe(document.querySelector('#tl-face'), {attributes: true, subtree: true, childList: true});
}"""
READOUTS_JS = """(digest) => [...document.querySelectorAll('[id^=tl-readout-] .tl-readout')]
  .every(e => e.dataset.state === digest)"""


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu_count": os.cpu_count(), "cpu_model": model, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy_axes(folder: Path) -> Path:
    from tlgan.jobs import discover

    return discover(folder, "toy-linear", "toy-linear", 1500, device="cpu",
                    save_images=False, progress=False).axes_path


def stats(xs: list[float]) -> dict:
    a = np.asarray(xs, dtype=float)
    return {"n": len(a), "median_ms": round(float(np.median(a)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "min_ms": round(float(a.min()), 1), "max_ms": round(float(a.max()), 1),
            "mean_ms": round(statistics.fmean(a), 1)}


DRAG_HZ = 60  # pointer moves per second while dragging (a display's refresh rate)

# The same drag driven from inside the page at exactly DRAG_HZ: Playwright's mouse moves are round trips to the
# browser, which on a loaded 2-core machine cannot keep 60 per second, so this measures what the page does with
# a steady 60 Hz input (the events are synthetic; live.js treats them like a pointer's).
SYNTH_DRAG_JS = """async ([name, moves, hz, lo, hi]) => {
  const r = document.querySelector('#tl-slider-' + name + ' input[type=range]');
  const span = parseFloat(r.max) - parseFloat(r.min), step = parseFloat(r.step);
  const at = (f) => (Math.round((parseFloat(r.min) + span * f) / step) * step).toFixed(1);
  tlganLive.reset();
  r.value = at(lo);
  r.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, button: 0, isPrimary: true}));
  const t0 = performance.now();
  for (let i = 1; i <= moves; i++) {
    const wait = t0 + i * 1000 / hz - performance.now();
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    r.value = at(lo + (hi - lo) * i / moves);
    r.dispatchEvent(new Event('input', {bubbles: true}));
  }
  const sent = moves / (performance.now() - t0) * 1000;
  while (tlganLive.busy) await new Promise((ok) => setTimeout(ok, 5));
  await new Promise((ok) => setTimeout(ok, 100));
  const out = {lat: tlganLive.latencies.slice(), paints: tlganLive.paints.slice(), inputs: tlganLive.inputs,
               first: tlganLive.firstInput, render: tlganLive.renderMs.slice(), sent};
  r.dispatchEvent(new PointerEvent('pointerup', {bubbles: true, button: 0, isPrimary: true}));
  return out;
}"""


def drag(page, feature: str, drags: int, moves: int, synthetic: bool = False) -> dict:
    """Drag ``feature``'s slider ``drags`` times (``moves`` pointer moves at DRAG_HZ each, back and forth over the
    middle of the track) and collect the page's input-to-paint latencies and frames painted per second; with
    ``synthetic`` the moves are made inside the page (SYNTH_DRAG_JS) instead of by Playwright's mouse."""
    rng = page.locator(f"#tl-slider-{feature} input[type=range]")
    rng.scroll_into_view_if_needed()
    page.wait_for_function("() => window.tlganLive && (tlganLive.ready || tlganLive.error)", timeout=120_000)
    mode, error = page.evaluate("() => [tlganLive.mode, tlganLive.error]")
    track = rng.bounding_box()
    y = track["y"] + track["height"] / 2
    latencies: list[float] = []
    render_ms: list[float] = []
    fps, input_rate, pointer_rate, inputs, frames = [], [], [], 0, 0
    for d in range(drags):
        lo, hi = (0.2, 0.8) if d % 2 == 0 else (0.8, 0.2)
        src = page.locator("#tl-face img").get_attribute("src")
        if synthetic:
            t = page.evaluate(SYNTH_DRAG_JS, [feature, moves, DRAG_HZ, lo, hi])
            pointer_rate.append(t["sent"])
        else:
            page.evaluate("() => tlganLive.reset()")
            page.mouse.move(track["x"] + track["width"] * lo, y)
            page.mouse.down()
            t0 = time.perf_counter()
            for i in range(1, moves + 1):
                page.mouse.move(track["x"] + track["width"] * (lo + (hi - lo) * i / moves), y)
                wait = t0 + i / DRAG_HZ - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            pointer_rate.append(moves / (time.perf_counter() - t0))
            page.wait_for_function("() => !tlganLive.busy", timeout=30_000)
            page.wait_for_timeout(100)  # the last frame's paint
            t = page.evaluate("() => ({lat: tlganLive.latencies, paints: tlganLive.paints, inputs: tlganLive.inputs,"
                              " first: tlganLive.firstInput, render: tlganLive.renderMs})")
            page.mouse.up()
        page.wait_for_function("s => document.querySelector('#tl-face img').getAttribute('src') !== s", arg=src,
                               timeout=120_000)
        latencies += t["lat"]
        render_ms += t["render"]
        inputs += t["inputs"]
        frames += len(t["paints"])
        if t["paints"] and t["first"] is not None:
            span = max(t["paints"][-1] - t["first"], 1.0)
            fps.append(len(t["paints"]) / span * 1000)
            input_rate.append(t["inputs"] / span * 1000)
        page.wait_for_function("() => document.querySelector('#tl-live-canvas') === null"
                               " || document.querySelector('#tl-live-canvas').style.display === 'none'",
                               timeout=120_000)
    return {"mode": mode, "error": error, "driven_by": "in-page 60 Hz events" if synthetic else "Playwright mouse",
            "drags": drags, "pointer_moves_per_drag": moves, "pointer_hz": DRAG_HZ,
            "input_events": inputs, "frames_painted": frames,
            "pointer_moves_per_second_achieved": round(float(np.median(pointer_rate)), 1),
            "input_events_per_second": round(float(np.median(input_rate)), 1) if input_rate else None,
            "input_to_paint": stats(latencies) if latencies else None,
            "unpainted_inputs": inputs - len(latencies),
            "page_render": stats(render_ms) if render_ms else None,
            "frames_per_second": {"median": round(float(np.median(fps)), 1), "min": round(float(min(fps)), 1)}
            if fps else None}


def measure(axes_path: Path, changes: int, device: str, live: str = "auto", drags: int = 3,
            moves: int = 60) -> dict:
    from playwright.sync_api import sync_playwright

    from tlgan.app.codec import state_digest
    from tlgan.app.state import ExplorerState
    from tlgan.axes import Axes

    axes = Axes.load(axes_path)
    feature = next((n for n in ("age", "a") if n in axes.names), axes.names[0])
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"tlgan-app-latency-{port}.log", "w")  # noqa: SIM115 - the server writes to it while it runs
    server = subprocess.Popen([sys.executable, "-m", "tlgan.cli", "serve", str(axes_path), "--port", str(port),
                               "--device", device, "--live", live,
                               "--seed", "0"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                              env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.perf_counter()
        while True:
            if server.poll() is not None:
                raise SystemExit(f"tlgan serve exited; see {log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        startup = time.perf_counter() - t0
        face_ms, readout_ms, wall_ms = [], [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector("#tl-face img")
            start = ExplorerState(axes.meta["generator"], 0)
            page.wait_for_function(READOUTS_JS, arg=state_digest(start))
            box = page.locator(f"#tl-slider-{feature} input[type=number]")
            values = [round(((-1) ** i) * (0.5 + 3.0 * i / changes), 1) for i in range(changes)]
            for v in values:
                page.evaluate(ARM_JS, feature)
                w0 = time.perf_counter()
                box.fill(str(v))
                page.wait_for_function("() => window.__t.face !== undefined && window.__t.input !== undefined")
                wall_ms.append((time.perf_counter() - w0) * 1000)
                t = page.evaluate("() => window.__t")
                face_ms.append(t["face"] - t["input"])
                digest = state_digest(ExplorerState(axes.meta["generator"], 0, None, {feature: v}))
                page.wait_for_function(READOUTS_JS, arg=digest)
                readout_ms.append(page.evaluate("() => performance.now()") - t["input"])
            page.wait_for_function(READOUTS_JS, arg=digest)
            dragged = [drag(page, feature, drags, moves), drag(page, feature, drags, moves, synthetic=True)] \
                if drags else []
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(60)  # a loaded machine can take a while to close gradio; the numbers are in hand
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    return {"axes": str(axes_path), "generator": axes.meta.get("generator"), "extractor": axes.meta.get("extractor"),
            "feature": feature, "device": device, "live": live, "server_startup_s": round(startup, 1),
            "slider_to_face": stats(face_ms), "slider_to_readouts": stats(readout_ms),
            "python_wall_slider_to_face": stats(wall_ms), "drag": dragged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--axes", action="append", help="axes file, or 'toy' (repeatable) [default: the demo's, "
                                                    "else toy]")
    ap.add_argument("--changes", type=int, default=30, help="slider changes per axes file")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--live", action="append", choices=["auto", "browser", "server", "off"],
                    help="tlgan serve --live mode to measure the drag in (repeatable) [default: auto and server]")
    ap.add_argument("--drags", type=int, default=3, help="slider drags per server (0: none)")
    ap.add_argument("--moves", type=int, default=60, help="pointer moves per drag, at 60 per second")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    wanted = args.axes or [str(DEMO_AXES) if DEMO_AXES.exists() else "toy"]
    info = machine()
    print(f"machine: {info['cpu_count']} CPUs, {info['cpu_model']}, torch threads {info['torch_threads']}, "
          f"load {info['load_average_1m_at_start']}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for a in wanted:
            path = toy_axes(Path(tmp) / "toy") if a == "toy" else Path(a)
            for live in args.live or ["auto", "server"]:
                r = measure(path, args.changes, args.device, live, args.drags, args.moves)
                r["axes"] = "toy (fitted on the fly)" if a == "toy" else a
                runs.append(r)
                f, ro = r["slider_to_face"], r["slider_to_readouts"]
                print(f"{r['generator']} + {r['extractor']} (--live {live}, {r['feature']} slider, {f['n']} changes): "
                      f"request path: slider -> face median {f['median_ms']} ms, p95 {f['p95_ms']} ms; "
                      f"slider -> readouts median {ro['median_ms']} ms, p95 {ro['p95_ms']} ms")
                for d in (d for d in r["drag"] if d["input_to_paint"]):
                    p, fps = d["input_to_paint"], d["frames_per_second"]
                    print(f"  drag ({d['mode']}, {d['driven_by']}): input -> paint median {p['median_ms']} ms, p95 {p['p95_ms']} ms, "
                          f"{fps['median']} faces/s (min {fps['min']}) for {d['input_events_per_second']} "
                          f"inputs/s ({d['pointer_moves_per_second_achieved']} pointer moves/s sent), "
                          f"{d['input_events']} inputs, {d['frames_painted']} faces painted"
                          + (f"; onnxruntime-web run median {d['page_render']['median_ms']} ms" if d["page_render"] else ""))
    info["load_average_1m_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    import gradio

    doc = {"benchmark": "app_latency", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": info,
           "browser": "Debian chromium (headless, Playwright)", "gradio": gradio.__version__,
           "method": "in-page performance.now(): number-box input event -> new face img load event; "
                     "-> every readout marked with the new state's digest. drag: range input event -> the first "
                     "requestAnimationFrame callback that drew a face of that position or a newer one on the "
                     "page's canvas; faces/s = faces painted / (last paint - first input) per drag",
           "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
