"""What every benchmark reports beside its numbers: the machine, and a plain timer."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """CPU model, core and thread counts, load, torch and Python versions, and the GPU if any."""
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    load = None
    with contextlib.suppress(OSError):
        load = float(Path("/proc/loadavg").read_text().split()[0])
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1min": load, "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
