"""A compact executor for TF.js graph models (``model.json`` + ``.bin``) in PyTorch.

The face models of ``@vladmandic/human`` ship as TF.js graphs that use a
handful of ops. This module reads the graph and its weights (JSON and raw
bytes only: nothing is unpickled), plans the computation once (pruned to the
requested outputs, topologically ordered, weights as torch tensors on the
device, BatchNorm ``Mul``/``Add`` and ``Relu``/``clip`` folded into the
convolutions) and then runs any batch size without TensorFlow.

Layout: TF graphs are NHWC. Inside the plan every rank-4 tensor has torch's
NCHW shape with channels-last memory (oneDNN's fast path on CPUs, about 2x
faster here than contiguous NCHW); inputs are converted on entry and rank-4
outputs on exit, and layout-sensitive ops (``Mean`` axes, ``Pad``,
``Reshape``, constants broadcast against activations) are translated at
planning time.
Convolution and pooling padding follows TF exactly: ``SAME`` pads
``max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0)`` with the extra pixel at the
end, ``VALID`` pads nothing, ``EXPLICIT`` uses the listed amounts.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import resolve_device
from ..errors import InputError, TLGANError
from ..weights import MODELS, WeightsError, get_model, local_path, path_of
from .tf_padding import same_pad

Tensor = torch.Tensor

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
# Bytes per element of stored weights, by storage dtype.
_ITEM_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
_NP_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "|b1", "uint8": "|u1", "uint16": "<u2", "float16": "<f2"}


class UnsupportedOpError(TLGANError, ValueError):
    """The graph holds an op (or an op variant) this executor does not implement."""


# --------------------------------------------------------------------------- loading


def _attr(node: dict, key: str, default: Any = None) -> Any:
    """One attribute of a graph node, decoded from its JSON protobuf form."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "list" in a:
        lst = a["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    return a


def read_weights(json_path: Path, manifest: list[dict], model: str | None = None) -> dict[str, np.ndarray]:
    """Decode a TF.js ``weightsManifest`` into float32/int32 arrays.

    Each group's shard files are concatenated and consumed in manifest order.
    Quantized weights are dequantized as TF.js does: ``float16`` bytes are
    widened, ``uint8``/``uint16`` values become ``q * scale + min``
    (rounded when the original dtype was int32). A short or over-long shard
    is a corrupt download, reported with the command that fetches it again.
    """
    hint = f"run `tlgan models fetch {model or 'MODEL'}` to fetch it again"
    out: dict[str, np.ndarray] = {}
    pinned = model if model in MODELS and any(local_path(f) == Path(json_path) for f in MODELS[model].files) else None
    for group in manifest:
        paths = [json_path.parent / p for p in group["paths"]]
        if pinned is not None:  # the catalogue's copy of a model: every shard is checked against its pinned SHA-256
            names_of = {f.filename for f in get_model(pinned).files}
            for p in paths:
                if p.name not in names_of:
                    raise WeightsError(f"{json_path} names a weight shard {p.name!r} that model {pinned!r} "
                                       f"does not pin; {hint}")
                path_of(pinned, p.name)
        chunks = []
        for p in paths:
            try:
                chunks.append(p.read_bytes())
            except OSError as e:
                raise WeightsError(f"cannot read weight file {p}: {e.strerror}; {hint}") from e
        buf = b"".join(chunks)
        names = ", ".join(str(p) for p in paths)
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = math.prod(shape)
            quant = w.get("quantization")
            stored = quant["dtype"] if quant else w["dtype"]
            if stored not in _ITEM_BYTES:
                raise UnsupportedOpError(f"weight {w['name']!r} in {names} has unsupported dtype {stored!r}")
            end = offset + count * _ITEM_BYTES[stored]
            if end > len(buf):
                raise WeightsError(
                    f"weight file {names} is truncated or corrupt: weight {w['name']!r} needs bytes "
                    f"{offset}..{end} but the file has {len(buf)}; {hint}")
            raw = np.frombuffer(buf, _NP_DTYPES[stored], count, offset)
            if quant is None or stored == "float16":
                arr = raw.astype(np.float32 if stored == "float16" else raw.dtype.newbyteorder("="))
            else:
                deq = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
                arr = np.round(deq).astype(np.int32) if w["dtype"] == "int32" else deq.astype(np.float32)
            out[w["name"]] = arr.reshape(shape)
            offset = end
        if offset != len(buf):
            raise WeightsError(
                f"weight file {names} is corrupt: the manifest describes {offset} bytes but the file has "
                f"{len(buf)}; {hint}")
    return out


# --------------------------------------------------------------------------- planning


@dataclass
class _Conv:
    """A (depthwise) convolution with everything folded into it."""

    weight: Tensor  # OIHW
    bias: Tensor | None
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: str | tuple[int, int, int, int]  # "SAME", "VALID" or (top, bottom, left, right)
    groups: int
    lo: float | None = None  # output clamp; relu is lo=0
    hi: float | None = None
    alpha: Tensor | None = None  # per-channel PReLU slope

    def __call__(self, x: Tensor) -> Tensor:
        kh, kw = self.weight.shape[-2:]
        t, b, left, right = _pads(self.padding, x.shape[-2:], (kh, kw), self.stride, self.dilation)
        if t == b and left == right:
            y = F.conv2d(x, self.weight, self.bias, self.stride, (t, left), self.dilation, self.groups)
        else:
            y = F.conv2d(_pad(x, (t, b, left, right)), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        if self.alpha is not None:
            return F.prelu(y, self.alpha)
        if self.lo == 0.0 and self.hi is None:
            return y.relu_()
        if self.lo is not None or self.hi is not None:
            return y.clamp_(self.lo, self.hi)
        return y


def _pads(padding: str | tuple[int, int, int, int], size: Sequence[int], kernel: Sequence[int],
          stride: Sequence[int], dilation: Sequence[int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding with TF semantics for an input of spatial ``size``."""
    if not isinstance(padding, str):
        return padding
    if padding == "VALID":
        return (0, 0, 0, 0)
    pads: list[int] = []
    for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        pads += same_pad(int(n), k, s, d)
    return (pads[0], pads[1], pads[2], pads[3])


def _identity(x: Tensor) -> Tensor:
    return x


def _max_pool(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
              padding: str | tuple[int, int, int, int]) -> Tensor:
    """TF MaxPool: padded positions never win (they are -inf)."""
    t, b, left, right = _pads(padding, x.shape[-2:], kernel, stride, (1, 1))
    if t == b and left == right and 2 * t <= kernel[0] and 2 * left <= kernel[1]:
        return F.max_pool2d(x, kernel, stride, (t, left))
    return F.max_pool2d(_pad(x, (t, b, left, right), -math.inf), kernel, stride)


def _pad(x: Tensor, pads: tuple[int, int, int, int], value: float = 0.0) -> Tensor:
    """Spatial (top, bottom, left, right) constant padding of NCHW ``x``, keeping its memory format.

    Unlike ``F.pad`` it fills only the border, not the whole output first.
    """
    t, b, left, right = pads
    n, c, h, w = x.shape
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty((n, c, h + t + b, w + left + right), dtype=x.dtype, device=x.device, memory_format=fmt)
    out[:, :, t:t + h, left:left + w] = x
    for region in (out[:, :, :t], out[:, :, t + h:], out[:, :, t:t + h, :left], out[:, :, t:t + h, left + w:]):
        region.fill_(value)
    return out


def _spatial(node: dict, key: str) -> tuple[int, int]:
    """The H and W entries of an NHWC attribute list such as ``strides``."""
    v = _attr(node, key, [1, 1, 1, 1])
    return (v[1], v[2])


def _padding_of(node: dict) -> str | tuple[int, int, int, int]:
    pad = _attr(node, "padding")
    if pad in ("SAME", "VALID"):
        return pad
    if pad == "EXPLICIT":
        e = _attr(node, "explicit_paddings")
        return (e[2], e[3], e[4], e[5])
    raise UnsupportedOpError(f"node {node['name']!r} ({node['op']}) has unsupported padding {pad!r}")


def _to_nchw_const(value: Tensor) -> Tensor:
    """A constant meant to broadcast against an NHWC activation, re-laid for NCHW."""
    while value.ndim < 4:
        value = value[None]
    return value.permute(0, 3, 1, 2).contiguous()


def _per_channel(value: Tensor, channels: int) -> Tensor | None:
    """``value`` as a (C,) vector if it only varies along the NHWC channel axis, else None."""
    if value.ndim == 0 or value.numel() == 1:
        return value.reshape(()).expand(channels).clone()
    if value.shape[-1] == channels and value.numel() == channels:
        return value.reshape(channels)
    return None


@dataclass
class _Step:
    """One op of the plan. ``inplace`` is the same op writing into its first input, used
    when that input is a fresh tensor that nothing reads afterwards (saves an allocation
    and its page faults); ``commutes`` allows swapping two inputs to get there."""

    fn: Callable[..., Tensor]
    inputs: list[str]
    output: str
    fresh: bool = True  # the output is a new tensor, not a view of an input
    inplace: Callable[..., Tensor] | None = None
    commutes: bool = False
    drop: list[str] = field(default_factory=list)  # values dead after this step


@dataclass
class _Plan:
    steps: list[_Step] = field(default_factory=list)
    consts: dict[str, Tensor] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    def finalize(self, keep: set[str], inplace: bool = True) -> None:
        """Decide when each value can be freed, and (with ``inplace``) which ops may overwrite a dying input."""
        last = {i: k for k, step in enumerate(self.steps) for i in step.inputs}
        # Identity and Reshape outputs share their input's memory: a buffer may be overwritten
        # only after the last read of every value that views it, and never if one is an output.
        root: dict[str, str] = {}
        for step in self.steps:
            root[step.output] = step.output if step.fresh else root.get(step.inputs[0], step.inputs[0])
        buffer_last: dict[str, int] = {}
        for k, step in enumerate(self.steps):
            for i in step.inputs:
                buffer_last[root.get(i, i)] = k
        kept = {root.get(v, v) for v in keep}
        for k, step in enumerate(self.steps):
            step.drop = [i for i in dict.fromkeys(step.inputs) if last[i] == k and i not in keep]
            if step.inplace is None or not inplace:
                continue
            dying = [j for j, i in enumerate(step.inputs)
                     if root.get(i) == i and buffer_last[i] == k and i not in kept and step.inputs.count(i) == 1]
            if dying and dying[0] == 1 and step.commutes:
                step.inputs.reverse()
                dying = [0]
            if dying and dying[0] == 0:
                step.fn = step.inplace


class TFJSGraph:
    """A TF.js graph model planned for batched execution in PyTorch.

    ``graph(x)`` takes the (single) input as an NHWC float tensor, or NCHW
    with ``nchw=True`` (saves a layout copy when the caller already has it),
    and returns ``{output name: tensor}`` in TF layout. Output names are node
    names without ``:0``; by default the model signature's outputs.

    ``free_batch``: the graph was exported with a fixed batch of one (input
    shape ``[1, ...]``, ``Reshape`` to ``[1, ...]``) but computes each example
    on its own, as convolutional detectors do; accept any batch size and give
    those reshapes the batch size of the run.

    ``differentiable``: plan without in-place ops (autograd may still need a
    dying buffer) so that ``graph.run(x)`` outside inference mode lets
    gradients reach the input, e.g. for an identity loss; ``graph(x)`` always
    runs under ``torch.inference_mode``.
    """

    def __init__(self, json_path: str | Path, device: str | torch.device | None = None,
                 outputs: Sequence[str] | None = None, model: str | None = None, free_batch: bool = False,
                 differentiable: bool = False) -> None:
        self.path = Path(json_path)
        self.free_batch = free_batch
        self.differentiable = differentiable
        self.device = resolve_device(None if device is None else str(device))
        try:
            spec = json.loads(self.path.read_text())
            nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise WeightsError(f"cannot read TF.js graph {self.path}: {e}; "
                               f"run `tlgan models fetch {model or 'MODEL'}` to fetch it again") from e
        weights = read_weights(self.path, spec.get("weightsManifest", []), model)
        self.inputs = [n for n, d in nodes.items() if d["op"] == "Placeholder"]
        self.input_shapes = {n: [int(d["size"]) for d in _attr(nodes[n], "shape", {}).get("shape", {}).get("dim", [])]
                             for n in self.inputs}
        self.outputs = list(outputs) if outputs is not None else self._signature_outputs(spec, nodes)
        for o in self.outputs:
            if o not in nodes:
                raise InputError(f"{self.path.name} has no node {o!r}")
        self._plan = self._build(nodes, weights)

    @classmethod
    def from_model(cls, model: str, filename: str, device: str | torch.device | None = None,
                   outputs: Sequence[str] | None = None, free_batch: bool = False,
                   differentiable: bool = False) -> TFJSGraph:
        """Load a graph of a catalogued model from the verified weights cache."""
        return cls(path_of(model, filename), device=device, outputs=outputs, model=model, free_batch=free_batch,
                   differentiable=differentiable)

    @staticmethod
    def _signature_outputs(spec: dict, nodes: dict[str, dict]) -> list[str]:
        sig = spec.get("signature") or spec.get("userDefinedMetadata", {}).get("signature") or {}
        names = [o["name"].split(":")[0] for o in sig.get("outputs", {}).values()]
        if names:
            return names
        used = {_src(i) for n in nodes.values() for i in n.get("input", [])}
        return [n for n, d in nodes.items() if n not in used and d["op"] not in ("Const", "Placeholder")]

    # ---- planning

    def _order(self, nodes: dict[str, dict]) -> list[str]:
        """The nodes the outputs depend on, each after its inputs (iterative DFS)."""
        order: list[str] = []
        done: set[str] = set()
        for out in self.outputs:
            stack: list[tuple[str, bool]] = [(out, False)]
            while stack:
                name, expanded = stack.pop()
                if name in done:
                    continue
                if expanded:
                    done.add(name)
                    order.append(name)
                    continue
                stack.append((name, True))
                for i in nodes[name].get("input", []):
                    if not i.startswith("^"):
                        if _src(i) not in nodes:
                            raise InputError(f"node {name!r} reads unknown node {i!r}")
                        stack.append((_src(i), False))
        return order

    def _build(self, nodes: dict[str, dict], weights: dict[str, np.ndarray]) -> _Plan:
        plan = _Plan()
        order = self._order(nodes)
        consumers: dict[str, int] = {}
        for name in order:
            for i in nodes[name].get("input", []):
                if not i.startswith("^"):
                    consumers[_src(i)] = consumers.get(_src(i), 0) + 1
        fused: dict[str, str] = {}  # node folded into a conv -> the conv's output name
        convs: dict[str, _Conv] = {}
        for name in order:
            node = nodes[name]
            op = node["op"]
            ins = [fused.get(_src(i), _src(i)) for i in node.get("input", []) if not i.startswith("^")]
            if op == "Const":
                if name not in weights:
                    raise UnsupportedOpError(f"constant {name!r} has no value in the weights manifest")
                plan.consts[name] = torch.from_numpy(weights[name].copy()).to(self.device)
                plan.ranks[name] = weights[name].ndim
                continue
            if op == "Placeholder":
                plan.ranks[name] = len(self.input_shapes[name])
                continue
            # Fold a per-channel Mul/Add, Relu or clip into the convolution that feeds it alone.
            orig = _src(node["input"][0]) if node.get("input") else ""
            conv = convs.get(ins[0]) if ins else None
            if conv is not None and consumers.get(orig, 0) == 1 and orig not in self.outputs \
                    and self._fold(conv, op, ins, plan.consts):
                fused[name] = ins[0]
                continue
            step = self._step(node, ins, plan)
            plan.steps.append(step)
            if isinstance(step.fn, _Conv):
                convs[name] = step.fn
        self._resolved = [fused.get(o, o) for o in self.outputs]
        plan.finalize(set(self._resolved), inplace=not self.differentiable)
        return plan

    @staticmethod
    def _fold(conv: _Conv, op: str, ins: list[str], consts: dict[str, Tensor]) -> bool:
        """Absorb one elementwise consumer into ``conv`` if exact; True when it was absorbed."""
        if op == "Relu" and conv.alpha is None:
            lo = 0.0 if conv.lo is None else max(conv.lo, 0.0)
            if conv.hi is not None and lo > conv.hi:
                return False
            conv.lo = lo
            return True
        if len(ins) != 2 or ins[1] not in consts or conv.alpha is not None:
            return False
        value = consts[ins[1]].float()
        if op in ("Minimum", "Maximum") and value.numel() == 1:
            v = float(value.reshape(()))
            if op == "Minimum":
                hi = v if conv.hi is None else min(conv.hi, v)
                if conv.lo is not None and conv.lo > hi:
                    return False
                conv.hi = hi
            else:
                lo = v if conv.lo is None else max(conv.lo, v)
                if conv.hi is not None and lo > conv.hi:
                    return False
                conv.lo = lo
            return True
        if op not in ("Add", "AddV2", "Mul") or conv.lo is not None or conv.hi is not None:
            return False
        c = _per_channel(value, conv.weight.shape[0])
        if c is None:
            return False
        if op == "Mul":
            conv.weight = conv.weight * c.view(-1, 1, 1, 1)
            if conv.bias is not None:
                conv.bias = conv.bias * c
        else:
            conv.bias = c.clone() if conv.bias is None else conv.bias + c
        return True

    def _step(self, node: dict, ins: list[str], plan: _Plan) -> _Step:
        """One planned op: a callable over its non-constant inputs."""
        op, name = node["op"], node["name"]
        consts, ranks = plan.consts, plan.ranks
        dyn = [i for i in ins if i not in consts]
        rank = max((ranks[i] for i in dyn), default=0)

        def const(i: int) -> Tensor:
            if ins[i] not in consts:
                raise UnsupportedOpError(f"{op} node {name!r} needs a constant as input {i}, got {ins[i]!r}")
            return consts[ins[i]]

        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise UnsupportedOpError(f"{op} node {name!r} uses data_format {_attr(node, 'data_format')!r}")
        fn: Callable[..., Tensor]
        inplace: Callable[..., Tensor] | None = None
        if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative"):
            w = const(1).float()
            kh, kw, cin, cout = w.shape
            if op == "DepthwiseConv2dNative":  # (kh, kw, in, mult) -> (in*mult, 1, kh, kw)
                weight, groups = w.reshape(kh, kw, 1, cin * cout).permute(3, 2, 0, 1), cin
            else:
                weight, groups = w.permute(3, 2, 0, 1), 1
            conv = _Conv(weight.contiguous(), None, _spatial(node, "strides"), _spatial(node, "dilations"),
                         _padding_of(node), groups)
            if op == "_FusedConv2D":
                self._fuse_ops(conv, node, [const(i).float() for i in range(2, len(ins))])
            fn, rank = conv, 4
        elif op == "_FusedMatMul":
            if _attr(node, "transpose_a", False):
                raise UnsupportedOpError(f"_FusedMatMul node {name!r} with transpose_a is not supported")
            w = const(1).float()
            weight = w if _attr(node, "transpose_b", False) else w.t()
            fused_ops = _attr(node, "fused_ops", [])
            if fused_ops not in (["BiasAdd"], ["BiasAdd", "Relu"]):
                raise UnsupportedOpError(f"_FusedMatMul node {name!r} fuses unsupported ops {fused_ops}")
            bias, relu = const(2).float(), fused_ops == ["BiasAdd", "Relu"]
            weight = weight.contiguous()
            fn = (lambda x: F.linear(x, weight, bias).relu_()) if relu else (lambda x: F.linear(x, weight, bias))
            rank = 2
        elif op in ("Add", "AddV2", "Mul", "Maximum", "Minimum", "Prelu"):
            a = [consts.get(i) for i in ins]
            if rank == 4:  # constants broadcast against NHWC; re-lay them for NCHW
                a = [None if v is None else _to_nchw_const(v.float()) if v.ndim else v.float() for v in a]
            if op == "Prelu" and a[0] is None and a[1] is not None:
                fn = _prelu(a[1], rank)
            elif op != "Prelu":
                fn, inplace = _binary(op, a[0], a[1])
            else:
                raise UnsupportedOpError(f"Prelu node {name!r} needs a constant slope")
        elif op in ("Relu", "Sigmoid"):
            fn, inplace = (torch.relu, torch.relu_) if op == "Relu" else (torch.sigmoid, torch.sigmoid_)
        elif op == "Identity":
            fn = _identity
        elif op == "Softmax":
            fn = (lambda x: torch.softmax(x, 1)) if rank == 4 else (lambda x: torch.softmax(x, -1))
        elif op == "Mean":
            axes = [int(a) % rank for a in const(1).reshape(-1).tolist()]
            dims = tuple(_NHWC_TO_NCHW_AXIS[a] for a in axes) if rank == 4 else tuple(axes)
            keep = bool(_attr(node, "keep_dims", False))
            fn = functools.partial(torch.mean, dim=dims, keepdim=keep)
            rank = rank if keep else rank - len(set(axes))
        elif op == "MaxPool":
            fn = _pool(_spatial(node, "ksize"), _spatial(node, "strides"), _padding_of(node))
        elif op == "Pad":
            p = [[int(v) for v in pair] for pair in const(1).reshape(-1, 2).tolist()]
            if rank == 4 and p[0] == p[3] == [0, 0]:
                spatial = (p[1][0], p[1][1], p[2][0], p[2][1])
                fn = functools.partial(_pad, pads=spatial)
            else:
                if rank == 4:
                    p = [p[0], p[3], p[1], p[2]]
                flat = tuple(v for pair in reversed(p) for v in pair)
                fn = functools.partial(F.pad, pad=flat)
        elif op == "Reshape":
            shape = [int(s) for s in const(1).reshape(-1).tolist()]
            fn = _reshape(shape, rank, self.free_batch and len(shape) > 1 and shape[0] == 1)
            rank = len(shape)
        else:
            raise UnsupportedOpError(f"TF.js op {op!r} (node {name!r}) is not supported by this executor")
        ranks[name] = rank
        return _Step(fn, dyn, name, fresh=op not in ("Identity", "Reshape"), inplace=inplace,
                     commutes=len(dyn) == 2)

    @staticmethod
    def _fuse_ops(conv: _Conv, node: dict, args: list[Tensor]) -> None:
        """Apply ``_FusedConv2D``'s ``fused_ops`` (BiasAdd, then an optional activation)."""
        ops = _attr(node, "fused_ops", [])
        if not ops or ops[0] != "BiasAdd" or len(ops) > 2:
            raise UnsupportedOpError(f"_FusedConv2D node {node['name']!r} fuses unsupported ops {ops}")
        conv.bias = args[0].reshape(-1)
        act = ops[1] if len(ops) == 2 else None
        if act == "Relu":
            conv.lo = 0.0
        elif act == "Relu6":
            conv.lo, conv.hi = 0.0, 6.0
        elif act == "Prelu":
            conv.alpha = args[1].reshape(-1)
        elif act is not None:
            raise UnsupportedOpError(f"_FusedConv2D node {node['name']!r} fuses unsupported activation {act!r}")

    # ---- running

    @torch.inference_mode()
    def __call__(self, x: Tensor | Mapping[str, Tensor], nchw: bool = False) -> dict[str, Tensor]:
        """Run the graph on a batch under inference mode; rank-4 inputs are NHWC unless ``nchw``."""
        return self.run(x, nchw)

    def run(self, x: Tensor | Mapping[str, Tensor], nchw: bool = False) -> dict[str, Tensor]:
        """Run the graph on a batch in the caller's grad mode (see ``differentiable``)."""
        feeds = dict(x) if isinstance(x, Mapping) else {self.inputs[0]: x} if len(self.inputs) == 1 else None
        if feeds is None or set(feeds) != set(self.inputs):
            raise InputError(f"{self.path.name} takes inputs {self.inputs}")
        env: dict[str, Tensor] = {}
        for name, t in feeds.items():
            t = t.to(self.device, torch.float32)
            want = self.input_shapes[name]
            shape = list(t.shape) if not (nchw and t.ndim == 4) else [t.shape[0], *t.shape[2:], t.shape[1]]
            free = [-1, *want[1:]] if self.free_batch and want else want
            if len(shape) != len(want) or any(w not in (-1, s) for w, s in zip(free, shape, strict=True)):
                raise InputError(f"{self.path.name} input {name!r} must have NHWC shape {want}, got {shape}")
            env[name] = _channels_last(t if nchw else t.permute(0, 3, 1, 2)) if t.ndim == 4 else t
        with _exact_fp32(self.device):
            for step in self._plan.steps:
                env[step.output] = step.fn(*(env[i] for i in step.inputs))
                for i in step.drop:
                    del env[i]
        out = {}
        for name, src in zip(self.outputs, self._resolved, strict=True):
            t = env[src] if src in env else self._plan.consts[src]
            out[name] = t.permute(0, 2, 3, 1) if t.ndim == 4 else t
        return out


def _channels_last(x: Tensor) -> Tensor:
    """NCHW ``x`` with channels-last memory (oneDNN's fast path; every op here keeps it).

    The strides are set explicitly: with one channel (the emotion net's grey input)
    plain NCHW also counts as channels-last, and torch would then pick its ~3x
    slower NCHW kernels for the whole network.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    _, c, h, w = x.shape
    return x.as_strided(x.shape, (h * w * c, 1, w * c, c))


@contextmanager
def _exact_fp32(device: torch.device) -> Iterator[None]:
    """Keep cuDNN convolutions in full fp32 on CUDA (TF32, torch's default there, moved the
    face-mesh landmarks by 0.04 px and faceres' age by 0.01 years from the TF.js/TFLite results)."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def _src(inp: str) -> str:
    """The node an input reference names (``node``, ``node:0``); multi-output refs are refused."""
    node, _, idx = inp.partition(":")
    if idx not in ("", "0"):
        raise UnsupportedOpError(f"input {inp!r} reads output {idx} of a multi-output op")
    return node


def _binary(op: str, a: Tensor | None, b: Tensor | None) -> tuple[Callable[..., Tensor], Callable[..., Tensor]]:
    """A commutative elementwise op over its dynamic operands, and its variant writing into the first."""
    f = cast(Callable[..., Tensor], {"Add": torch.add, "AddV2": torch.add, "Mul": torch.mul,
                                     "Maximum": torch.maximum, "Minimum": torch.minimum}[op])
    if a is not None and b is not None:
        raise UnsupportedOpError(f"{op} on two constants should have been folded by the converter")
    c = a if a is not None else b

    def into(x: Tensor, y: Tensor) -> Tensor:
        return f(x, y, out=x) if torch.broadcast_shapes(x.shape, y.shape) == x.shape else f(x, y)

    if c is None:
        return f, into
    return (lambda x: f(x, c)), (lambda x: into(x, c))


def _prelu(alpha: Tensor, rank: int) -> Callable[[Tensor], Tensor]:
    if rank == 4 and alpha.numel() == alpha.shape[1]:
        slope = alpha.reshape(-1).contiguous()
        return lambda x: F.prelu(x, slope)
    return lambda x: torch.where(x < 0, x * alpha, x)


def _pool(kernel: tuple[int, int], stride: tuple[int, int],
          padding: str | tuple[int, int, int, int]) -> Callable[[Tensor], Tensor]:
    return lambda x: _max_pool(x, kernel, stride, padding)


def _reshape(shape: list[int], rank: int, per_example: bool = False) -> Callable[[Tensor], Tensor]:
    """TF Reshape of a (NCHW-planned) tensor; ``per_example``: the leading 1 is the run's batch size."""
    def run(x: Tensor) -> Tensor:
        if rank == 4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape([x.shape[0], *shape[1:]] if per_example else shape)
        return y.permute(0, 3, 1, 2) if len(shape) == 4 else y
    return run
