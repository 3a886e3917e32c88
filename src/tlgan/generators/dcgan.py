"""The DCGAN family (Radford et al.): transposed convolutions from a 1x1 latent to 64x64 RGB."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from .. import weights
from .base import GENERATORS, Generator


def dcgan_net(latent_dim: int = 100, width: int = 64, channels: int = 3) -> nn.Sequential:
    """The standard DCGAN generator; layer indices match the usual ``main.N`` state-dict keys."""
    layers: list[nn.Module] = []
    widths = [width * 8, width * 4, width * 2, width]
    c_in = latent_dim
    for i, c_out in enumerate(widths):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride, pad, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        c_in = c_out
    layers += [nn.ConvTranspose2d(c_in, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class _Wrapped(nn.Module):
    def __init__(self, main: nn.Sequential) -> None:
        super().__init__()
        self.main = main


class DCGANGenerator(Generator):
    """A DCGAN generator loaded from a torch state dict (no pickled objects)."""


    def __init__(self, checkpoint: str, name: str, state_key: str | None = None,
                 latent_dim: int = 100, device: str | None = None) -> None:
        super().__init__(device)
        self.name = name
        self.latent_dim = latent_dim
        self.resolution = 64
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file
            raise weights.WeightsError(f"cannot read generator weights {checkpoint}: {e}") from e
        if state_key is not None:
            state = state[state_key]
        module = _Wrapped(dcgan_net(latent_dim))
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise weights.WeightsError(f"{checkpoint} does not hold DCGAN generator weights: {e}") from e
        self.net = module.main.eval().to(self.device)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])

    def network(self) -> nn.Module:
        return self.net

    def first_layer_weight(self) -> np.ndarray:
        # ConvTranspose2d weight: (latent_dim, C, 4, 4); each output unit is a linear map of z.
        w = cast(nn.ConvTranspose2d, self.net[0]).weight.detach().cpu().numpy()
        return w.reshape(w.shape[0], -1).T


@GENERATORS.register("digiface-dcgan", "DCGAN, 64x64 faces trained on DigiFace-1M (gan-face-generate 1.1.1)")
def _digiface(device: str | None = None) -> DCGANGenerator:
    path = weights.path_of("digiface-dcgan", "weights.tar")
    return DCGANGenerator(str(path), "digiface-dcgan", state_key="netG_state_dict", device=device)
