"""Read network pickles as data: an allow-list unpickler that never runs code from the file.

NVlabs StyleGAN2-ADA / StyleGAN3 snapshots and the TF1 PGGAN pickle carry
their networks' Python source, which the original loaders ``exec``. Here a
pickle may name only the globals in ``ALLOWED`` (tensor and array rebuilders,
``OrderedDict``) and those the checkpoint families declare
(``Family.pickle_globals``, see :mod:`.families`): ``EasyDict`` (read as a
plain dict) and the two "reconstruct this network" hooks, which are captured
as plain records (``PersistentObject``, ``TFNetwork``) holding the class name
and state. The source text they carry is kept as a string and never executed.
Any other global (``os.system``, ``builtins.eval``, ...) is refused with an
error that names it, before anything is called.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..weights import WeightsError


class UnsafePickleError(WeightsError):
    """A pickle names a global outside the allow-list; nothing in it was run."""


@dataclass
class PersistentObject:
    """A ``torch_utils.persistence`` network captured as data (its ``module_src`` is never executed)."""

    class_name: str
    state: dict[str, Any]
    version: int = 0
    module_src: str = field(default="", repr=False)

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments the network was built with (``_init_kwargs``)."""
        return dict(self.state.get("_init_kwargs") or {})

    def state_dict(self, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
        """Parameters and buffers of this module and its sub-modules, keyed like ``nn.Module.state_dict``."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for kind in ("_parameters", "_buffers"):
            for name, value in (self.state.get(kind) or {}).items():
                if value is not None:
                    out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PersistentObject):
                out.update(child.state_dict(f"{prefix}{name}."))
        return out

    def child(self, name: str) -> PersistentObject:
        """A named sub-module (e.g. ``mapping``, ``synthesis``)."""
        return self.state["_modules"][name]



class TFNetwork:
    """A TF1 ``tfutil.Network`` captured as its pickled state (``build_module_src`` is never executed)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("a tfutil.Network in this pickle has a state that is not a dict")
        self.state = dict(state)

    @property
    def name(self) -> str:
        return str(self.state.get("name", ""))

    @property
    def static_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("static_kwargs") or {})

    @property
    def build_func_name(self) -> str:
        return str(self.state.get("build_func_name", ""))

    @property
    def variables(self) -> OrderedDict[str, np.ndarray]:
        return OrderedDict((str(k), np.asarray(v)) for k, v in self.state.get("variables", []))


class Record:
    """An inert record for a pickled helper object: its attributes only, no behaviour of its own."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"a pickled {type(self).__qualname__} has a state that is not a dict")
        self.__dict__.update(state)


def record_class(qualified_name: str) -> type:
    """A ``Record`` subclass that pickle knows as ``qualified_name`` (for allow-listing a config class)."""
    module, _, name = qualified_name.rpartition(".")
    return type(name, (Record,), {"__module__": module, "__qualname__": name})


def reconstruct_persistent(meta: dict[str, Any]) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError("a torch_utils.persistence object in this pickle has an unexpected layout")
    return PersistentObject(class_name=str(meta.get("class_name")), state=dict(meta["state"]),
                            version=int(meta.get("version", 0)), module_src=str(meta.get("module_src", "")))


def _load_storage_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes``: a legacy ``torch.save`` of one storage, read with weights_only."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any) -> torch.Tensor:
    return data


def _numpy_attr(name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


class EasyDict(dict):
    """``dnnlib.EasyDict`` read as a plain dict (attribute access is all it adds)."""


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(core, "_reconstruct")] = _numpy_attr("_reconstruct")
        table[(core, "scalar")] = _numpy_attr("scalar")
    for dt in ("Float32DType", "Float64DType", "Int64DType", "Int32DType", "UInt8DType", "BoolDType"):
        if hasattr(np, "dtypes") and hasattr(np.dtypes, dt):
            table[("numpy.dtypes", dt)] = getattr(np.dtypes, dt)
    return table


#: what any network pickle may name: tensors, arrays, OrderedDict (the families add their own, see ``load_pickle``)
ALLOWED: dict[tuple[str, str], Any] = _allowed()


#: The globals of ``ALLOWED`` that allocate an array of a shape the pickle declares (the data follows later).
_ALLOCATORS = {("numpy", "ndarray")} | {(core, "_reconstruct") for core in ("numpy.core.multiarray",
                                                                           "numpy._core.multiarray")}


def check_array_budget(shape: Any, dtype: Any, budget: list[int], source: str) -> None:
    """Charge an array of ``shape`` and ``dtype`` to ``budget`` (the bytes the file can still fill): a pickle
    holds its arrays' data, so arrays larger in total than the file are refused before they are allocated
    (a 52-byte pickle could otherwise ask numpy for gigabytes)."""
    from ..bounds import check_array_size
    from ..errors import InputError

    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        itemsize = 1
    try:
        budget[0] -= check_array_size(shape if isinstance(shape, (tuple, list)) else (shape,), itemsize, budget[0],
                                      f"{source} (a numpy array in it)")
    except InputError as e:
        raise UnsafePickleError(str(e)) from None


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str, allowed: Mapping[tuple[str, str], Any],
                 size: int | None = None) -> None:
        super().__init__(file)
        self.source = source
        self.allowed = allowed
        self.budget = [size if size is not None else 1 << 62]

    def _sized(self, make: Callable[..., Any], shape_at: int) -> Callable[..., Any]:
        def allocate(*args: Any, **kwargs: Any) -> Any:
            if args and getattr(args[0], "allocates", None) is np.ndarray:  # _reconstruct(ndarray, ...): the type
                args = (np.ndarray, *args[1:])
            shape = args[shape_at] if len(args) > shape_at else kwargs.get("shape", ())
            dtype = args[shape_at + 1] if len(args) > shape_at + 1 else kwargs.get("dtype", float)
            check_array_budget(shape, dtype, self.budget, self.source)
            return make(*args, **kwargs)
        allocate.allocates = make  # type: ignore[attr-defined]
        return allocate

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        try:
            found = self.allowed[(module, name)]
            if (module, name) in _ALLOCATORS:
                return self._sized(found, 1 if name == "_reconstruct" else 0)
            return found
        except KeyError:
            raise UnsafePickleError(
                f"{self.source} names the global {module}.{name}, which tlgan does not load: it reads network "
                "pickles as data and runs nothing from the file. If this is a real generator checkpoint, "
                "please report its format") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source} uses persistent ids, which a network pickle does not; refused")


def load_pickle(path: str | Path, family_globals: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle ``path`` allowing only the globals in ``ALLOWED`` and ``family_globals`` (default: those every
    registered checkpoint family declares); nothing from the file is executed."""
    if family_globals is None:
        from .families import pickle_globals

        family_globals = pickle_globals()
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _AllowListUnpickler(fh, str(path), {**family_globals, **ALLOWED}, path.stat().st_size).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, RuntimeError) as e:
        raise WeightsError(f"{path} is not a readable network pickle ({type(e).__name__}: {e}); "
                           "is the file complete?") from e
