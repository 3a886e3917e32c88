"""The explorer under concurrent load: failed requests, latency and server memory.

Starts `tlgan serve` in a subprocess on a free loopback port (so its resident
memory is its own) and runs SESSIONS client sessions at once for ROUNDS
rounds. In every round each session makes two requests through gradio's plain
HTTP API (``POST /gradio_api/call/<api>``, then the event's stream), all
sessions together (a barrier starts each round):

* ``random_face`` without a session, as a script or ``curl`` calls it (each
  such call is a new gradio session on the server), and
* the next action of its own session (its session hash is sent with every
  request, so the server keeps its state): a new random face, a slider move, a
  lock, undo, a seed.

Every face a response names is then fetched from the server, so a response
that points at a file already deleted counts as a failure. The server's RSS
is read from /proc after every round. The same load then runs against a
second server that keeps gradio's default of 10,000 sessions (what the
explorer kept before ``tlgan serve --max-sessions``), the baseline for memory.

Runs on the demo's axes (runs/demo/axes.safetensors, the real default:
digiface-dcgan + faces) when they exist, else on toy axes fitted in a second.
Prints the machine and writes benchmarks/results/app_load.json.

    python benchmarks/app_load.py [--axes runs/demo/axes.safetensors | toy] [--sessions 30] [--rounds 20]
                                  [--max-sessions 200] [--baseline-sessions 10000 | 0]

tests/test_app_load.py runs the same load, smaller, on toy axes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO_AXES = ROOT / "runs" / "demo" / "axes.safetensors"
RESULTS = ROOT / "benchmarks" / "results" / "app_load.json"
API = "/gradio_api"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Server:
    """A `tlgan serve` subprocess: its URL, process and log."""

    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def serving(axes_path: Path, log: Path, device: str = "cpu", extra: Sequence[str] = (), timeout: float = 180,
            env: dict | None = None) -> Iterator[Server]:
    """`tlgan serve AXES [EXTRA]` on a free loopback port until it answers; SIGTERM (then wait) when done."""
    port = free_port()
    environ = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", **(env or {}))
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tlgan.cli", "serve", str(axes_path), "--host", "127.0.0.1",
                                 "--port", str(port), "--device", device, *extra], stdout=out, stderr=subprocess.STDOUT,
                                env=environ, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tlgan serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(server.url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tlgan serve did not answer in {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _file_urls(value: Any) -> list[str]:
    """The URLs of the files a response's data names (gradio FileData dicts, at any depth)."""
    if isinstance(value, dict):
        url = value.get("url") if value.get("meta", {}).get("_type") == "gradio.FileData" or "path" in value else None
        return ([url] if isinstance(url, str) else []) + [u for v in value.values() for u in _file_urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in _file_urls(v)]
    return []


def call(client: httpx.Client, base: str, api: str, data: list, session: str | None = None) -> list:
    """One request of gradio's plain API: its output data; raises RuntimeError when it failed.

    Every file the output names is fetched too, so an answer that points at a deleted file fails.
    """
    body: dict = {"data": data}
    if session is not None:
        body["session_hash"] = session
    r = client.post(f"{base}{API}/call/{api}", json=body)
    if r.status_code != 200:
        raise RuntimeError(f"{api}: POST answered {r.status_code}: {r.text[:200]}")
    event_id = r.json()["event_id"]
    r = client.get(f"{base}{API}/call/{api}/{event_id}")
    event, payload = None, None
    for line in r.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            payload = line.split(":", 1)[1].strip()
            break
    if event != "complete" or payload is None:
        raise RuntimeError(f"{api}: {event or 'no event'}: {(payload or r.text)[:300]}")
    out = json.loads(payload)
    for url in _file_urls(out):
        f = client.get(url)
        if f.status_code != 200 or not f.content:
            raise RuntimeError(f"{api}: the face it names answered {f.status_code} ({url})")
    return out


def session_actions(features: list[str], index: int) -> list[tuple[str, list]]:
    """The cycle of actions session ``index`` makes: a new face, slider moves, a lock, undo, a seed."""
    a, b = features[index % len(features)], features[(index + 1) % len(features)]
    return [("random_face", []), (f"move_{a}", [1.5]), (f"lock_{b}", [True]), (f"move_{a}", [-2.0]),
            ("undo", []), (f"lock_{b}", [False]), ("set_seed", [index + 1]), ("reset_sliders", [])]


@dataclass
class Load:
    """What one load run saw."""

    requests: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per request (files fetched included)
    rss: list[int] = field(default_factory=list)  # the server's RSS before the first round and after each one
    seconds: float = 0.0

    def summary(self, warmup: int = 1) -> dict:
        lat = np.asarray(self.latencies) * 1000
        mb = [r / 2**20 for r in self.rss]
        after = mb[warmup:] or mb
        return {"requests": self.requests, "failed": len(self.failures), "failures": self.failures[:10],
                "seconds": round(self.seconds, 1),
                "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else None,
                "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
                "latency_max_ms": round(float(lat.max()), 1) if len(lat) else None,
                "rss_mb": {"start": round(mb[0], 1), "after_warmup": round(after[0], 1),
                           "peak": round(max(mb), 1), "end": round(mb[-1], 1),
                           "growth_after_warmup": round(mb[-1] - after[0], 1),
                           "growth_second_half": round(mb[-1] - mb[len(mb) // 2], 1)},
                "rss_mb_per_round": [round(m, 1) for m in mb]}


def hammer(server: Server, features: list[str], sessions: int = 30, rounds: int = 20,
           timeout: float = 300) -> Load:
    """``sessions`` concurrent sessions for ``rounds`` rounds against ``server`` (see the module's doc)."""
    load, lock = Load(), threading.Lock()
    barrier = threading.Barrier(sessions + 1)
    load.rss.append(rss_bytes(server.pid))

    def one(client: httpx.Client, api: str, data: list, session: str | None) -> None:
        t = time.perf_counter()
        try:
            call(client, server.url, api, data, session)
            error = None
        except (RuntimeError, httpx.HTTPError, ValueError) as e:
            error = f"{api}: {type(e).__name__}: {e}"
        with lock:
            load.requests += 1
            load.latencies.append(time.perf_counter() - t)
            if error:
                load.failures.append(error)

    def run(index: int) -> None:
        session = uuid.uuid4().hex[:11]
        actions = session_actions(features, index)
        with httpx.Client(timeout=timeout) as client:
            for r in range(rounds):
                barrier.wait()
                one(client, "random_face", [], None)
                api, data = actions[r % len(actions)]
                one(client, api, data, session)
                barrier.wait()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for _ in range(rounds):
            barrier.wait(timeout)  # the round starts ...
            barrier.wait(timeout)  # ... and every session is done with it
            load.rss.append(rss_bytes(server.pid))
    except threading.BrokenBarrierError:
        load.failures.append(f"a round did not finish in {timeout} s")
    load.seconds = time.perf_counter() - t0
    return load


def toy_axes(folder: Path) -> Path:
    from tlgan.jobs import discover

    return discover(folder, "toy-linear", "toy-linear", 1500, device="cpu",
                    save_images=False, progress=False).axes_path


def run_once(path: Path, names: list[str], args: argparse.Namespace, max_sessions: int, folder: Path) -> dict:
    """One server, one load: the summary (and whether the server logged a traceback)."""
    with serving(path, folder / f"serve-{max_sessions}.log", args.device, ["--max-sessions", str(max_sessions)]) \
            as server:
        load = hammer(server, names, args.sessions, args.rounds)
        log = server.log.read_text()
    s = load.summary()
    rss = s["rss_mb"]
    print(f"--max-sessions {max_sessions}: {s['requests']} requests in {s['seconds']} s, {s['failed']} failed; "
          f"latency p50 {s['latency_p50_ms']} ms, p95 {s['latency_p95_ms']} ms; server RSS start {rss['start']} MB, "
          f"after round 1 {rss['after_warmup']} MB, peak {rss['peak']} MB, end {rss['end']} MB")
    for f in load.failures[:5]:
        print("  failed:", f)
    return {"max_sessions": max_sessions, "traceback_in_server_log": "Traceback" in log, **s}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import machine
    from tlgan.app.state import MAX_SESSIONS
    from tlgan.axes import Axes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--axes", help="axes file, or 'toy' [default: the demo's, else toy]")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-sessions", type=int, default=MAX_SESSIONS, help="tlgan serve --max-sessions")
    ap.add_argument("--baseline-sessions", type=int, default=10000,
                    help="a second run with this many sessions kept (gradio's own default, which tlgan used "
                         "before --max-sessions); 0: none")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    info = machine()
    print(f"machine: {info['cpu_count']} CPUs, {info['cpu']}, load {info['load_average_1min']}")
    with tempfile.TemporaryDirectory() as tmp:
        wanted = args.axes or (str(DEMO_AXES) if DEMO_AXES.exists() else "toy")
        path = toy_axes(Path(tmp) / "toy") if wanted == "toy" else Path(wanted)
        axes = Axes.load(path)
        print(f"{axes.meta.get('generator')} + {axes.meta.get('extractor')}, {len(axes.names)} axes: "
              f"{args.sessions} sessions x {args.rounds} rounds")
        runs = [run_once(path, list(axes.names), args, n, Path(tmp))
                for n in [args.max_sessions, *([args.baseline_sessions] if args.baseline_sessions else [])]]
    import gradio

    info["load_average_1min_at_end"] = os.getloadavg()[0]
    doc = {"benchmark": "app_load", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": info,
           "gradio": gradio.__version__, "axes": "toy (fitted on the fly)" if wanted == "toy" else wanted,
           "generator": axes.meta.get("generator"), "extractor": axes.meta.get("extractor"),
           "features": len(axes.names), "sessions": args.sessions, "rounds": args.rounds,
           "method": "per round and session: random_face without a session + the session's next action "
                     "(session hash sent), all sessions at once; every file a response names is fetched; "
                     "server RSS from /proc before the first round and after each one",
           "runs": runs}
    if len(runs) == 2:  # the second half of the rounds: once the session cap is reached
        doc["rss_growth_second_half_ratio_to_baseline"] = round(
            runs[0]["rss_mb"]["growth_second_half"] / max(runs[1]["rss_mb"]["growth_second_half"], 0.1), 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
