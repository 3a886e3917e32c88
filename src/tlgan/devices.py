"""Pick the compute device and batch sizes that suit it."""

from __future__ import annotations

import torch

from .errors import InputError


def best_device() -> str:
    """'cuda' when a GPU is visible, 'mps' on Apple silicon, else 'cpu'."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(device: str | None) -> torch.device:
    """``None`` or 'auto' means the best available device; anything else is checked."""
    if device is None or device in ("", "auto"):
        return torch.device(best_device())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} was asked for but no CUDA GPU is visible; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} was asked for but only {torch.cuda.device_count()} CUDA GPU(s) "
                             "are visible")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"device {device!r} was asked for but this machine has no Apple GPU (MPS); "
                             "use --device cpu")
    elif dev.type != "cpu":
        raise InputError(f"device {device!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return dev


def default_batch(device: torch.device, cpu: int, gpu: int) -> int:
    """A batch size per device type: small on CPUs (cache-friendly), large on GPUs."""
    return gpu if device.type in ("cuda", "mps") else cpu
