"""What a family's network must offer, declared as protocols rather than guessed with ``getattr``.

A checkpoint family builds one ``torch.nn.Module``. Families without a mapping
network (PGGAN) build an ``ImageNetwork``: ``net(z)`` is the picture. Style
families (StyleGAN2/3) build a ``StyleNetwork``: a mapping z -> ws with
truncation, a synthesis ws -> picture with a noise mode, the average ``w``
that truncation pulls toward, and the style weights SeFa factorises.
``CheckpointGenerator`` checks the network against its family's protocol
once, when the file is opened, so a network that lacks a member fails there
with a clear message instead of deep inside sampling or inversion.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from typing_extensions import get_protocol_members


@runtime_checkable
class ImageNetwork(Protocol):
    """A network that draws pictures straight from noise: ``net(z)`` -> raw NCHW, nominally in [-1, 1]."""

    z_dim: int
    img_resolution: int

    def __call__(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class StyleNetwork(Protocol):
    """A style-based network: z -(mapping)-> ws (N, num_ws, w_dim) -(synthesis)-> raw NCHW in [-1, 1]."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int

    @property
    def w_avg(self) -> torch.Tensor:
        """The average w (w_dim,): the centre of w space, where truncation pulls codes toward."""
        ...

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """Noise (N, z_dim) -> ws (N, num_ws, w_dim), pulled toward ``w_avg`` by ``truncation_psi`` < 1."""
        ...

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> pictures; ``noise_mode`` "const" makes them a function of ws alone."""
        ...

    def style_weights(self) -> list[tuple[int, torch.Tensor]]:
        """(ws index, (channels, w_dim) affine weight as applied) of every modulated layer, for SeFa."""
        ...


def missing_members(net: object, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``net`` lacks (empty when it offers them all)."""
    return sorted(m for m in get_protocol_members(protocol) if not hasattr(net, m))
