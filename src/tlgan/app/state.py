"""What the explorer page does, as plain Python: no browser, no gradio.

The page's whole state is an ``ExplorerState``: which face (a seed, or an
explicit latent), how far each slider is moved along its feature axis (in
latent units) and which features are locked. Every change the page offers is
a function ``state -> new state`` here that validates its input and raises
``StateError`` with a message meant for the user.

The rest of the explorer, one idea per module: ``codec`` (the state as JSON
and as a ``?state=`` link), ``undo`` (a user's undo stack), ``locks`` (when a
lock cancels a move, and the warning that says so), ``readouts`` (what the page
says beside each slider) and ``explorer`` (the models: render a state, read a
face, invert a photo). ``web`` is the page itself.

What a lock means here: the sliders of locked features are frozen; every
other slider's move is projected off the locked axes
(``tlgan.explore.edit_delta``), so it leaves the locked features alone. A
locked slider keeps the amount it had when it was locked, applied along its
own axis, so locking ``age`` at +2 and then moving ``male`` keeps the face
older while it changes gender.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..axes import Axes, AxesError
from ..errors import TLGANError
from ..explore import LAYER_GROUPS, edit_delta, parse_layers

SLIDER_LIMIT = 4.0  # sliders go from -4 to +4 latent units (N(0, I) latents have unit spread per axis)
SLIDER_STEP = 0.1
MAX_SEED = 2**32 - 1
STRIP_STEPS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
MAX_LATENT_ABS = 100.0
LAYER_CHOICES = ("all", *LAYER_GROUPS)  # the named layer ranges a w+ axis offers (a range like 0-5 also works)




class StateError(TLGANError, ValueError):
    """Input from the page or its API that cannot be applied; the message is shown to the user."""


Latent = tuple[float, ...] | tuple[tuple[float, ...], ...]  # (D,) or, in w+, (num_ws, D)


def as_latent(code: Any) -> Latent:
    """A latent array (D,) or (num_ws, D) as the state keeps it: float32 values in (nested) tuples."""
    z = np.asarray(code, dtype=np.float32)
    if z.ndim == 1:
        return tuple(float(x) for x in z)
    if z.ndim == 2:
        return tuple(tuple(float(x) for x in row) for row in z)
    raise StateError(f"a latent must have shape (D,) or (num_ws, D), got {z.shape}")


@dataclass(frozen=True)
class ExplorerState:
    """One face and its edit: a seed (or an explicit latent), slider amounts and locks.

    ``latent`` is a code of the generator's space: D numbers, or in w+ one row
    of D per synthesis layer (a photo's inversion), as nested tuples.
    ``sliders`` holds only the non-zero amounts; a missing feature is at 0.
    ``locks`` is in the axes' feature order. ``layers`` (w+ generators only)
    maps a feature to the synthesis layers its move reaches, as written
    (``coarse``, ``0-5``); a missing feature moves every layer.
    """

    generator: str
    seed: int | None = 0
    latent: Latent | None = None
    sliders: Mapping[str, float] = field(default_factory=dict)
    locks: tuple[str, ...] = ()
    layers: Mapping[str, str] = field(default_factory=dict)
    linear: bool = False  # local axes only: move along their fixed mean directions instead of the gradient field

    def slider(self, name: str) -> float:
        return float(self.sliders.get(name, 0.0))

    @property
    def free_moves(self) -> dict[str, float]:
        """The moves of the unlocked sliders (these are projected off the locked axes)."""
        return {n: v for n, v in self.sliders.items() if n not in self.locks and v}

    @property
    def held_moves(self) -> dict[str, float]:
        """The amounts the locked sliders had when they were locked (applied along their own axes)."""
        return {n: v for n, v in self.sliders.items() if n in self.locks and v}

    def describe(self, face: str | None = None) -> str:
        """What is shown, in words; ``face`` names a latent's face (e.g. an uploaded photo's reconstruction)."""
        face = f"seed {self.seed}" if self.latent is None else face or "a given latent"
        moves = ", ".join(f"{n} {v:+g}" + (f" ({self.layers[n]} layers)" if n in self.layers else "")
                          for n, v in self.sliders.items()) or "no edit"
        locks = f"; locked: {', '.join(self.locks)}" if self.locks else ""
        return f"{face}; {moves}{locks}"


# ---------------------------------------------------------------- validating single inputs


def check_feature(axes: Axes, name: Any) -> str:
    if not isinstance(name, str):
        raise StateError(f"a feature name must be a string, got {name!r}")
    try:
        axes.index(name)
    except AxesError as e:
        raise StateError(str(e)) from None
    return name


def parse_amount(name: str, value: Any) -> float:
    """A slider amount: a finite number within +-SLIDER_LIMIT, rounded to 6 decimals."""
    if isinstance(value, bool) or value is None or value == "":
        raise StateError(f"{name}: enter a number from {-SLIDER_LIMIT:g} to {SLIDER_LIMIT:+g}")
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise StateError(f"{name}: {value!r} is not a number; enter one from "
                         f"{-SLIDER_LIMIT:g} to {SLIDER_LIMIT:+g}") from None
    if not math.isfinite(amount):
        raise StateError(f"{name}: {value!r} is not a finite number")
    if abs(amount) > SLIDER_LIMIT + 1e-9:
        raise StateError(f"{name}: {amount:g} is outside the slider range {-SLIDER_LIMIT:g} .. "
                         f"{SLIDER_LIMIT:+g} (latent units)")
    # kept to 6 decimals, so 0.30000000000000004 from a browser is stored (and shared) as 0.3
    return round(max(-SLIDER_LIMIT, min(SLIDER_LIMIT, amount)), 6) + 0.0  # + 0.0 turns -0.0 into 0.0


def parse_seed(value: Any) -> int:
    """A seed: a whole number from 0 to MAX_SEED (a float like 12.0 from a number box is fine)."""
    bad = StateError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {value!r}")
    if isinstance(value, bool) or value is None:
        raise bad
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("+").isdigit():
            raise bad
        seed = int(text)
    elif isinstance(value, (int, np.integer)):
        seed = int(value)
    else:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise bad
        seed = int(as_float)
    if not 0 <= seed <= MAX_SEED:
        raise bad
    return seed


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def parse_latent(value: Any, latent_dim: int, num_ws: int = 1) -> Latent:
    """A latent from the state JSON: ``latent_dim`` numbers, or (w+ generators, ``num_ws`` > 1) a list of
    ``num_ws`` such lists, one per synthesis layer (what a photo's inversion gives)."""
    wplus = num_ws > 1 and isinstance(value, list) and bool(value) and all(isinstance(r, list) for r in value)
    if wplus:
        if len(value) != num_ws or not all(_numbers(r) and len(r) == latent_dim for r in value):
            raise StateError(f"a w+ 'latent' must be {num_ws} lists (one per layer) of {latent_dim} numbers")
    elif not _numbers(value):
        raise StateError("'latent' must be a list of numbers"
                         + (f" (or {num_ws} such lists, one per w+ layer)" if num_ws > 1 else ""))
    elif len(value) != latent_dim:
        raise StateError(f"'latent' has {len(value)} numbers but this generator's latent has {latent_dim}")
    z = np.asarray(value, dtype=np.float64)
    if not np.isfinite(z).all() or np.abs(z).max(initial=0) > MAX_LATENT_ABS:
        raise StateError(f"'latent' must hold finite numbers within +-{MAX_LATENT_ABS:g}")
    return as_latent(z)


def set_latent(state: ExplorerState, code: Any) -> ExplorerState:
    """Another face given by its latent (a photo's inversion); the sliders, locks and layer ranges stay."""
    return replace(state, seed=None, latent=as_latent(code))


# ---------------------------------------------------------------- changes: state -> new state


def in_axes_order(axes: Axes, names: Iterable[str]) -> tuple[str, ...]:
    chosen = set(names)
    return tuple(n for n in axes.names if n in chosen)


def check_edit(state: ExplorerState, axes: Axes) -> None:
    """Refuse a state whose edit cannot be made (a moved axis lying inside the span of the locked ones)."""
    for name in state.free_moves:
        try:
            edit_delta(axes, {name: 1.0}, state.locks)
        except AxesError:
            raise StateError(f"with {', '.join(state.locks)} locked, the axis of {name!r} lies inside the locked "
                             f"axes' span: it cannot move without moving them; set {name} to 0 or unlock one") from None


def set_slider(state: ExplorerState, axes: Axes, name: Any, value: Any) -> ExplorerState:
    """Move one slider to ``value`` (an absolute amount in latent units)."""
    name = check_feature(axes, name)
    amount = parse_amount(name, value)
    if name in state.locks and amount != state.slider(name):
        raise StateError(f"{name} is locked; unlock it to move its slider")
    sliders = {n: v for n, v in state.sliders.items() if n != name}
    if amount:
        sliders[name] = amount
    new = replace(state, sliders={n: sliders[n] for n in axes.names if n in sliders})
    check_edit(new, axes)
    return new


def set_lock(state: ExplorerState, axes: Axes, name: Any, locked: bool) -> ExplorerState:
    """Lock (hold fixed) or unlock one feature."""
    name = check_feature(axes, name)
    if not isinstance(locked, (bool, np.bool_)):
        raise StateError(f"lock for {name}: expected true or false, got {locked!r}")
    locks = set(state.locks) | {name} if locked else set(state.locks) - {name}
    new = replace(state, locks=in_axes_order(axes, locks))
    check_edit(new, axes)
    return new


def parse_layer_spec(name: str, spec: Any, num_ws: int) -> str | None:
    """A feature's layer range as stored: ``coarse``, ``0-5`` ... normalised to lower case, None for all layers."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise StateError(f"layers of {name}: expected a layer range like coarse, middle, fine, all or 0-5, "
                         f"got {spec!r}")
    text = re.sub(r"\s+", "", spec.lower())
    if text in ("", "all"):
        return None
    try:
        picked = parse_layers(text, num_ws)
    except AxesError as e:
        raise StateError(f"layers of {name}: {e}") from None
    return None if len(picked) == num_ws else text


def set_layers(state: ExplorerState, axes: Axes, name: Any, spec: Any, num_ws: int) -> ExplorerState:
    """The synthesis layers ``name``'s move reaches (w+ only; ``num_ws`` layers, 0 = none)."""
    name = check_feature(axes, name)
    if num_ws < 2:
        raise StateError("layer ranges need a generator driven from w+ (serve axes fitted with --space w+)")
    text = parse_layer_spec(name, spec, num_ws)
    layers = {n: v for n, v in state.layers.items() if n != name}
    if text is not None:
        layers[name] = text
    return replace(state, layers={n: layers[n] for n in axes.names if n in layers})


def layer_indices(state: ExplorerState, num_ws: int) -> dict[str, list[int]]:
    """The state's layer ranges as layer indices per feature (for ``tlgan.explore.move``)."""
    return {n: parse_layers(spec, num_ws) for n, spec in state.layers.items()}


def set_linear(state: ExplorerState, axes: Axes, linear: Any) -> ExplorerState:
    """Local axes: move along the fixed mean directions (``linear``) or follow the gradient field."""
    if not isinstance(linear, (bool, np.bool_)):
        raise StateError(f"linear: expected true or false, got {linear!r}")
    if linear and axes.field.constant:
        raise StateError("these axes are linear already; the switch is for local axes (tlgan fit --finder local)")
    new = replace(state, linear=bool(linear))
    check_edit(new, axes)
    return new


def set_seed(state: ExplorerState, seed: Any) -> ExplorerState:
    """Another face (the sliders and locks stay, so the same edit applies to it)."""
    return replace(state, seed=parse_seed(seed), latent=None)


def random_seed(state: ExplorerState, rng: np.random.Generator | None = None) -> ExplorerState:
    rng = rng or np.random.default_rng()
    return replace(state, seed=int(rng.integers(0, MAX_SEED + 1)), latent=None)


def reset_sliders(state: ExplorerState) -> ExplorerState:
    """Every slider back to 0 (the face stays, the locks stay)."""
    return replace(state, sliders={})


def strip_states(state: ExplorerState, axes: Axes, name: str,
                 steps: Sequence[float] = STRIP_STEPS) -> list[ExplorerState]:
    """The current state with ``name``'s slider at each of ``steps`` (others as they are)."""
    name = check_feature(axes, name)
    if name in state.locks:
        raise StateError(f"{name} is locked; unlock it to see its variations")
    return [set_slider(state, axes, name, s) for s in steps]


# ---------------------------------------------------------------- names that moved to their own modules

_MOVED = {
    "codec": ("STATE_VERSION", "STATE_KEYS", "MAX_STATE_CHARS", "LATENT_CHARS", "state_dict", "max_state_chars",
              "encode_state", "decode_state", "state_digest", "state_token", "state_from_token"),
    "undo": ("Session", "MAX_UNDO", "MAX_SESSIONS", "COALESCE_S"),
    "locks": ("LockWarning", "lock_warnings", "WARN_COS", "WARN_RETAINED"),
    "readouts": ("Readout", "describe_readouts", "format_value", "format_change", "subject_missing"),
    "explorer": ("Explorer", "INVERT_STEPS"),
}
_WHERE = {name: module for module, names in _MOVED.items() for name in names}


def __getattr__(name: str) -> Any:
    """``from tlgan.app.state import Explorer`` and the like keep working: the name is looked up where it lives."""
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__package__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
