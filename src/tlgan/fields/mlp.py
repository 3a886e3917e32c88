"""The local MLP field: the gradient of a small MLP fitted to every feature (``tlgan fit --finder local``).

A linear axis is one direction for every face. Here the direction of
"older" or "turn the head" at a latent is the gradient of the feature's head
of one smooth MLP, so it may differ from face to face. The network is stored
as named arrays in the axes file (safetensors, never pickled); fitting it is
:func:`tlgan.local.fit_local_model`. Its heads are also the modelled levels the
corrector and the kept feature of :class:`~tlgan.fields.base.MoveSettings`
hold (logits for binary features).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .base import DirectionField, FieldError, MoveSettings
from .linear import LinearField

MODEL_FORMAT = 1


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside: the model is so small that more threads only contend
    (measured 20x slower with 2 threads than 1 on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _activation(name: str) -> torch.nn.Module:
    if name == "silu":
        return torch.nn.SiLU()
    if name == "tanh":
        return torch.nn.Tanh()
    raise FieldError(f"unknown activation {name!r} in a local model (known: silu, tanh)")


def build_net(latent_dim: int, hidden: Sequence[int], n_out: int, activation: str = "silu") -> torch.nn.Sequential:
    """The MLP latent (D) -> one head per feature: Linear, activation, ..., Linear (smooth, so its gradient is)."""
    layers: list[torch.nn.Module] = []
    width = latent_dim
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), _activation(activation)]
        width = int(h)
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


@dataclass
class LocalModel:
    """A smooth model of every feature over the latent: heads = net((x - in_mean) / in_scale).

    A head is the logit of P(feature) for a ``binary`` feature and the
    standardised value ``(y - out_mean) / out_scale`` for a ``continuous`` one;
    an axis direction is the (unit) gradient of its head. ``tensors`` holds the
    network's parameters under their ``state_dict`` names plus ``in_mean``,
    ``in_scale``, ``out_mean`` and ``out_scale``.
    """

    outputs: list[str]
    kinds: list[str]
    hidden: list[int]
    tensors: dict[str, np.ndarray]
    activation: str = "silu"
    _net: torch.nn.Sequential | None = field(default=None, repr=False, compare=False)

    @property
    def latent_dim(self) -> int:
        return int(self.tensors["in_mean"].shape[0])

    def net(self) -> torch.nn.Sequential:
        """The torch module (built once, float32, evaluation mode, parameters frozen)."""
        if self._net is None:
            net = build_net(self.latent_dim, self.hidden, len(self.outputs), self.activation)
            params = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in self.tensors.items()
                      if k not in ("in_mean", "in_scale", "out_mean", "out_scale")}
            try:
                net.load_state_dict(params)
            except RuntimeError as e:
                raise FieldError(f"the local model's weights do not fit its architecture: {e}") from None
            net.eval().requires_grad_(False)
            self._net = net
        return self._net

    def output_index(self, names: Iterable[str]) -> list[int]:
        out = []
        for n in names:
            if n not in self.outputs:
                raise FieldError(f"the local model has no output {n!r}; it models: {', '.join(self.outputs)}")
            out.append(self.outputs.index(n))
        return out

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """Head values (N, F) at latents ``x`` (N, D) (differentiable in ``x``)."""
        mean = torch.as_tensor(self.tensors["in_mean"], dtype=x.dtype)
        scale = torch.as_tensor(self.tensors["in_scale"], dtype=x.dtype)
        return self.net()((x - mean) / scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's labels (N, F) in feature units: probabilities for binary features, values otherwise."""
        with torch.no_grad():
            h = self.heads(torch.as_tensor(np.asarray(x, np.float32))).double().numpy()
        out = h * self.tensors["out_scale"] + self.tensors["out_mean"]
        binary = np.asarray([k == "binary" for k in self.kinds])
        out[:, binary] = 1 / (1 + np.exp(-h[:, binary]))
        return out

    def gradients(self, x: np.ndarray | torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """Gradients (N, k, D) of the heads of ``names`` at latents ``x`` (N, D), float64."""
        return self.heads_and_gradients(x, names)[1]

    def heads_and_gradients(self, x: np.ndarray | torch.Tensor,
                            names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Head values (N, k) and their gradients (N, k, D) for ``names`` at latents ``x`` (N, D), float64."""
        idx = self.output_index(names)
        xt = torch.as_tensor(np.asarray(x, np.float32) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
        if not idx:
            return (torch.zeros((len(xt), 0), dtype=torch.float64),
                    torch.zeros((len(xt), 0, xt.shape[-1]), dtype=torch.float64))
        xt = xt.detach().clone().requires_grad_(True)
        with torch.enable_grad(), one_thread():
            h = self.heads(xt)[:, idx]
            rows = [torch.autograd.grad(h[:, k].sum(), xt, retain_graph=k + 1 < len(idx))[0] for k in range(len(idx))]
        return h.detach().double(), torch.stack(rows, 1).double()

    def mean_gradients(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Mean gradient (k, D) of each head over latents ``x``: the model's best single (linear) direction."""
        return self.gradients(x, names).mean(0).numpy()

    def header(self) -> dict[str, Any]:
        """The architecture, as the axes file's header records it."""
        return {"format": MODEL_FORMAT, "kind": "mlp", "outputs": self.outputs, "kinds": self.kinds,
                "hidden": self.hidden, "activation": self.activation, "latent_dim": self.latent_dim}

    def named_tensors(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in self.tensors.items()}

    @classmethod
    def from_file(cls, header: Any, tensors: Mapping[str, np.ndarray], prefix: str) -> LocalModel:
        """The model an axes file stores: ``header`` (its architecture) and the tensors named ``prefix*``."""
        if not isinstance(header, dict) or header.get("kind") != "mlp" or header.get("format") != MODEL_FORMAT:
            raise FieldError("the axes file's local model header is not a tlgan MLP of format "
                                  f"{MODEL_FORMAT}; refit the axes with `tlgan fit RUN --finder local`")
        own = {k[len(prefix):]: np.asarray(v, np.float64 if k[len(prefix):].startswith(("in_", "out_")) else np.float32)
               for k, v in tensors.items() if k.startswith(prefix)}
        missing = [k for k in ("in_mean", "in_scale", "out_mean", "out_scale") if k not in own]
        outputs, kinds, hidden = header.get("outputs"), header.get("kinds"), header.get("hidden")
        if missing or not isinstance(outputs, list) or not isinstance(kinds, list) or len(outputs) != len(kinds) \
                or not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise FieldError(f"the axes file's local model is incomplete (missing {missing or 'fields'}); "
                                  "refit the axes with `tlgan fit RUN --finder local`")
        model = cls([str(o) for o in outputs], [str(k) for k in kinds], list(hidden), own,
                    str(header.get("activation", "silu")))
        model.net()  # shapes checked now, not at the first edit
        return model


class MLPField(DirectionField):
    """The gradient field of a :class:`LocalModel`; ``mean_field`` holds its mean directions (the axes'
    ``vectors``, averaged over the run's latents when it was fitted)."""

    kind = "mlp"

    def __init__(self, model: LocalModel, mean_field: LinearField, settings: MoveSettings | None = None) -> None:
        self.model, self.mean_field = model, mean_field
        self.names = list(model.outputs)
        self.settings = settings or MoveSettings()

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def directions(self, z: np.ndarray, names: Sequence[str]) -> np.ndarray:
        return self.model.gradients(np.asarray(z, np.float32), list(names)).numpy()

    def levels(self, z: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        h, g = self.model.heads_and_gradients(np.asarray(z, np.float32), list(names))
        return h.numpy(), g.numpy()

    def binary(self, name: str) -> bool:
        return self.model.kinds[self.model.output_index([name])[0]] == "binary"

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.model.predict(z)

    def mean(self) -> LinearField:
        return self.mean_field

    def header(self) -> dict[str, Any]:
        return self.model.header()

    def named_tensors(self) -> dict[str, np.ndarray]:
        return self.model.named_tensors("")

    @classmethod
    def from_file(cls, header: Mapping[str, Any], tensors: Mapping[str, np.ndarray], mean: LinearField) -> MLPField:
        return cls(LocalModel.from_file(header, tensors, ""), mean)
