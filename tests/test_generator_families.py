"""Adding a checkpoint family is one module: this file declares a toy family and uses it like a built-in one.

The toy family's files are raw pickles holding a state dict and a config
object of the toy's own project; the family says how to recognise them, how
to rebuild the network, and which global (the config class) the safe
unpickler may let through. ``load_generator`` then reads, recognises, builds
and renders such a file in z, w and w+ without any other change to tlgan.
"""

from __future__ import annotations

import pickle
import re
import sys
import types
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tlgan.generators import load_generator
from tlgan.generators.checkpoints import read_checkpoint, recognise
from tlgan.generators.families import Family, families, register_family, unregister_family
from tlgan.generators.safe_pickle import UnsafePickleError, record_class
from tlgan.weights import WeightsError

#: the toy project's config class, as its pickles name it; read back as an inert record
CONFIG_GLOBAL = ("toyproject", "ToyConfig")
ToyConfig = record_class(".".join(CONFIG_GLOBAL))


class ToyStyle(nn.Module):
    """A StyleNetwork: z -> w by one linear layer, w -> an 8-px picture by one linear layer per w+ layer."""

    num_ws = 2
    img_resolution = 8

    def __init__(self, z_dim: int = 6, w_dim: int = 5) -> None:
        super().__init__()
        self.z_dim, self.w_dim = z_dim, w_dim
        self.map = nn.Linear(z_dim, w_dim)
        self.layers = nn.ModuleList(nn.Linear(w_dim, 3 * 8 * 8) for _ in range(self.num_ws))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        w = self.w_avg + truncation_psi * (self.map(z) - self.w_avg)
        return w[:, None].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        x = sum(layer(ws[:, i]) for i, layer in enumerate(self.layers))
        return torch.tanh(torch.as_tensor(x)).reshape(-1, 3, 8, 8)

    def style_weights(self) -> list[tuple[int, torch.Tensor]]:
        return [(i, layer.weight.detach()) for i, layer in enumerate(self.layers)]


def recognise_toy(payload: Any) -> bool:
    return isinstance(payload, dict) and "toy_style" in payload and isinstance(payload.get("config"), ToyConfig)


def build_toy(payload: Any, network: str | None) -> nn.Module:
    net = ToyStyle(int(payload["config"].z_dim), int(payload["config"].w_dim))
    net.load_state_dict(payload["toy_style"])
    return net


TOY = Family("toy-style", "a toy project's pickles", build_toy, style=True, framing="ffhq",
             recognise=recognise_toy, pickle_globals={CONFIG_GLOBAL: ToyConfig})


@pytest.fixture
def toy_family():
    register_family(TOY)
    yield TOY
    unregister_family(TOY.name)


def reference_net(seed: int = 0) -> ToyStyle:
    torch.manual_seed(seed)
    net = ToyStyle()
    with torch.no_grad():
        net.w_avg.copy_(net.map(torch.randn(256, net.z_dim)).mean(0))
    return net


def write_toy(path, net: ToyStyle, monkeypatch) -> Any:
    """A raw pickle as the toy project writes it (its config class importable only while writing)."""
    module = types.ModuleType(CONFIG_GLOBAL[0])
    setattr(module, CONFIG_GLOBAL[1], ToyConfig)
    monkeypatch.setitem(sys.modules, CONFIG_GLOBAL[0], module)
    config = ToyConfig()
    config.__dict__.update(z_dim=net.z_dim, w_dim=net.w_dim)
    with open(path, "wb") as fh:
        pickle.dump({"toy_style": net.state_dict(), "config": config}, fh, protocol=4)
    monkeypatch.delitem(sys.modules, CONFIG_GLOBAL[0])
    return path


def test_an_unregistered_family_is_neither_listed_nor_let_through(tmp_path, monkeypatch):
    path = write_toy(tmp_path / "toy.pkl", reference_net(), monkeypatch)
    assert "toy-style" not in families()
    with pytest.raises(UnsafePickleError, match=re.escape("toyproject.ToyConfig")):
        read_checkpoint(path)


def test_a_registered_family_is_recognised_built_and_rendered(toy_family, tmp_path, monkeypatch):
    net = reference_net()
    path = write_toy(tmp_path / "toy.pkl", net, monkeypatch)
    assert recognise(read_checkpoint(path)) == "toy-style"
    z = torch.randn(3, net.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net.synthesis(net.mapping(z, 0.7))
    gen = load_generator(str(path), device="cpu", truncation=0.7)
    assert gen.family is toy_family and gen.spaces == ("z", "w", "w+") and gen.resolution == 8
    np.testing.assert_allclose(gen.synthesize(z).numpy(), expected.numpy(), atol=1e-6)
    assert gen.render(z.numpy()).shape == (3, 8, 8, 3)
    wplus = load_generator(str(path), device="cpu", space="w+")
    assert torch.equal(wplus.space_centre(), net.w_avg)
    codes = wplus.sample(3, 0)  # (2, w_dim) would read as one full w+ code: num_ws is 2
    assert codes.shape == (3, net.w_dim) and wplus.render(codes).shape == (3, 8, 8, 3)
    assert wplus.first_layer_weight().shape == (2 * 3 * 8 * 8, net.w_dim)  # SeFa reads the declared style weights


def test_a_copy_can_be_tuned_without_touching_the_original(toy_family, tmp_path, monkeypatch):
    path = write_toy(tmp_path / "toy.pkl", reference_net(), monkeypatch)
    gen = load_generator(str(path), device="cpu", space="w")
    codes = gen.sample(3, 0)
    before = gen.render(codes)
    tuned = gen.copy()
    with torch.no_grad():
        for p in tuned.network().parameters():
            p.add_(0.5)
    assert not torch.equal(tuned.render(codes), before)
    assert torch.equal(gen.render(codes), before)
    assert gen.network() is not tuned.network()


class WithoutStyleWeights(nn.Module):
    """Everything a StyleNetwork offers except the style weights SeFa reads."""

    z_dim, w_dim, num_ws, img_resolution = 6, 5, 2, 8

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(5))

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.w_avg.expand(len(z), self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return torch.zeros(len(ws), 3, 8, 8)


def test_a_network_that_breaks_the_contract_is_refused_naming_what_it_lacks(tmp_path, monkeypatch):
    broken = Family("toy-broken", "builds a network without style weights",
                    lambda payload, network: WithoutStyleWeights(), style=True, framing="ffhq",
                    recognise=recognise_toy, pickle_globals={CONFIG_GLOBAL: ToyConfig})
    path = write_toy(tmp_path / "toy.pkl", reference_net(), monkeypatch)
    register_family(broken)
    try:
        with pytest.raises(WeightsError, match="without style_weights, which a StyleNetwork must offer"):
            load_generator(str(path), device="cpu", space="w")
    finally:
        unregister_family(broken.name)
