"""The one check of what every extractor takes: uint8 images (N, H, W, 3)."""

from __future__ import annotations

import torch

from ..errors import InputError


def check_images(images: torch.Tensor, who: str = "") -> None:
    """Refuse anything but a uint8 tensor (N, H, W, 3); ``who`` names the model in the message."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        took = f"{who} takes uint8 images (N, H, W, 3)" if who else "expected uint8 images (N, H, W, 3)"
        raise InputError(f"{took}, got {tuple(images.shape)} {images.dtype}")
