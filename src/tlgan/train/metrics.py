"""Why labels cannot be trained on, and how a trained feature did on data it did not see."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import TLGANError
from ..logistic import auc

MIN_PER_CLASS = 10


class TrainError(TLGANError, ValueError):
    """Training data or options that cannot give a sound extractor; the message says what to change."""


def _log(log: Callable[[str], None] | None, text: str) -> None:
    if log:
        log(text)


def class_problems(y: np.ndarray, features: Sequence[str], min_per_class: int = MIN_PER_CLASS) -> list[str]:
    """Why a feature cannot be trained: all one class, or fewer than ``min_per_class`` of a class."""
    out = []
    for j, f in enumerate(features):
        col = y[:, j]
        pos, neg = int((col == 1).sum()), int((col == 0).sum())
        if pos == 0 or neg == 0:
            out.append(f"{f}: all {pos + neg} labels are {'1 (yes)' if pos else '0 (no)'}; a classifier needs "
                       "faces with and without the feature")
        elif min(pos, neg) < min_per_class:
            out.append(f"{f}: only {pos} yes and {neg} no; need at least {min_per_class} of each")
    return out


def check_classes(y: np.ndarray, features: Sequence[str], min_per_class: int = MIN_PER_CLASS) -> None:
    problems = class_problems(y, features, min_per_class)
    if problems:
        raise TrainError("cannot train on these labels:\n  " + "\n  ".join(problems)
                         + "\nLabel more faces (tlgan label), or leave the feature out with --features")


@dataclass
class FeatureResult:
    """Held-out quality of one feature's model."""

    feature: str
    n_pos: int
    n_neg: int
    auc: float
    accuracy: float
    evaluation: str  # how the held-out numbers were measured
    n_eval: int
    regularization: float = float("nan")  # C of the logistic probe (inverse strength)
    base_rate: float = float("nan")  # accuracy of always answering the majority class on the same faces

    def line(self) -> str:
        return (f"{self.feature:16s} {self.n_pos:6d} {self.n_neg:6d}   AUC {self.auc:.3f}   accuracy {self.accuracy:.3f}"
                f" (majority {self.base_rate:.3f})   {self.evaluation}")


def held_out_result(feature: str, y_all: np.ndarray, truth: np.ndarray, p: np.ndarray, how: str, c: float) -> FeatureResult:
    pos = float(truth.mean())
    return FeatureResult(feature, int((y_all == 1).sum()), int((y_all == 0).sum()), auc(truth, p),
                         float(((p > 0.5) == truth.astype(bool)).mean()), how, len(truth), c, max(pos, 1 - pos))
