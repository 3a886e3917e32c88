"""A toy checkpoint family: the one file a new checkpoint format needs.

A "toy painter" checkpoint is a torch zip file (``torch.save``) holding
``{"toy_painter": {"rows": (8, D) tensor}}``. Its network paints row k of an
8x8 picture with the grey level 128 + 16 * (rows[k] . z), so the bundled
``toy-linear`` extractor reads features a, b, p, c back from rows 0-3 and
their true directions are ``rows[:4]``. The family says how to recognise such
a file from what was read, how to build the network (an ``ImageNetwork``:
``net(z)`` -> picture) and how its pictures are framed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlgan.generators.families import Family, register_family

KEY = "toy_painter"
GREY_PER_UNIT = 16.0  # grey levels per unit of rows[k] . z (the toy-linear extractor's SCALE)


class ToyPainter(nn.Module):
    """``net(z)``: (N, D) noise -> (N, 3, 8, 8) in [-1, 1], row k = rows[k] . z scaled to grey levels."""

    img_resolution = 8
    rows: torch.Tensor

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("rows", rows.float())
        self.z_dim = int(rows.shape[1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        level = (z @ self.rows.T) * GREY_PER_UNIT / 127.5  # (N, 8)
        return level[:, None, :, None].expand(-1, 3, -1, self.img_resolution)


def recognise(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get(KEY), dict) and "rows" in payload[KEY]


def build(payload: Any, network: str | None) -> nn.Module:
    rows = payload[KEY]["rows"]
    if not isinstance(rows, torch.Tensor) or rows.ndim != 2 or rows.shape[0] != 8:
        raise ValueError(f"a toy painter's rows must be an (8, D) tensor, got {getattr(rows, 'shape', rows)!r}")
    return ToyPainter(rows)


FAMILY = register_family(Family("toy-painter", "8x8 toy pictures painted row by row from z (tests only)",
                                build, style=False, framing="digiface", recognise=recognise))
