"""TensorFlow's "SAME" padding, shared by the two TF model readers (:mod:`.tfjs` and :mod:`.keras_h5`)."""

from __future__ import annotations


def same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME" padding along one axis: (before, after), the odd extra pixel going after."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2
