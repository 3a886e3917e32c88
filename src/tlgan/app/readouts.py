"""What the page says beside each slider: the extractor's measurement of the face shown, in its unit, and
its change from the unedited face (or that no face is found)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def format_value(kind: str, unit: str, value: float) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    if kind == "binary":
        return f"{value:.0%}"
    unit = {"degrees": "°", "years": " years"}.get(unit, f" {unit}" if unit else "")
    return f"{value:.1f}{unit}" if unit else f"{value:.2f}"


def format_change(kind: str, value: float, start: float | None) -> str:
    """The change from the unedited face: '+12 pts' for a probability, '+3.1' otherwise; '' when unknown."""
    if start is None or not np.isfinite(value) or not np.isfinite(start):
        return ""
    d = value - start
    if kind == "binary":
        d *= 100
        return "±0 pts" if abs(d) < 0.5 else f"{d:+.0f} pts"
    return "±0" if abs(d) < 0.05 else f"{d:+.1f}"


def subject_missing(readouts: Mapping[str, float], presence: str | None) -> bool:
    """True when the extractor's declared presence feature (``face_found`` for faces) is below one half."""
    v = readouts.get(presence) if presence else None
    return v is not None and np.isfinite(v) and v < 0.5


@dataclass(frozen=True)
class Readout:
    """What the page shows beside one slider: the measured value and its change from the unedited face."""

    name: str
    value: str  # "32.7 years", "84%", "n/a", or "no face found"
    change: str  # "+11.3", "+67 pts", "±0", or "" (no edit, or unknown)
    trend: str  # "up", "down", "same", "none" (nothing to compare) or "missing" (no face)


def describe_readouts(names: Sequence[str], features: Mapping[str, Any], values: Mapping[str, float],
                      start: Mapping[str, float] | None, edited: bool, presence: str | None = None) -> list[Readout]:
    """The readout of each of ``names``; ``features`` maps names to ``Feature`` (kind and unit).

    ``presence``: the extractor's declared presence feature; when it says the
    subject is missing, the other readouts say so instead of a number.
    """
    missing = subject_missing(values, presence)
    out = []
    for name in names:
        feat = features.get(name)
        kind, unit = (feat.kind, feat.unit) if feat is not None else ("continuous", "")
        if missing and name != presence:
            out.append(Readout(name, "no face found", "", "missing"))
            continue
        v = values.get(name, float("nan"))
        change = format_change(kind, v, start.get(name) if start else None) if edited else ""
        trend = ("none" if not change else "same" if change.startswith("±")
                 else "up" if change.startswith("+") else "down")
        out.append(Readout(name, format_value(kind, unit, v), change, trend))
    return out
