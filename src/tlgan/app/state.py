"""What the explorer page does, as plain Python: no browser, no gradio.

The page's whole state is an ``ExplorerState``: which face (a seed, or an
explicit latent), how far each slider is moved along its feature axis (in
latent units) and which features are locked. Every change the page offers is
a function ``state -> new state`` that validates its input and raises
``StateError`` with a message meant for the user; a ``Session`` adds the undo
stack. ``encode_state`` / ``decode_state`` and ``state_token`` /
``state_from_token`` turn a state into the JSON box and the ``?state=`` link
and back, refusing anything malformed. ``Explorer`` renders a state with the
generator and reads the displayed face back with the extractor.

What a lock means here: the sliders of locked features are frozen; every
other slider's move is projected off the locked axes
(``tlgan.explore.edit_delta``), so it leaves the locked features alone. A
locked slider keeps the amount it had when it was locked, applied along its
own axis, so locking ``age`` at +2 and then moving ``male`` keeps the face
older while it changes gender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..axes import Axes, AxesError
from ..explore import LAYER_GROUPS, cosine_matrix, edit_delta, parse_layers, retained
from ..fields import cosines
from ..errors import TLGANError

if TYPE_CHECKING:
    from ..invert import Inversion

STATE_VERSION = 1
SLIDER_LIMIT = 4.0  # sliders go from -4 to +4 latent units (N(0, I) latents have unit spread per axis)
SLIDER_STEP = 0.1
MAX_SEED = 2**32 - 1
WARN_COS = 0.7  # warn when a moved axis and a locked one have |cos| above this ...
WARN_RETAINED = math.sqrt(1 - WARN_COS**2)  # ... or when less than ~71 % of the moved axis survives the locks
INVERT_STEPS = 100  # optimisation steps for an uploaded photo (tlgan serve --invert-steps)
MAX_UNDO = 100
MAX_SESSIONS = 200  # sessions whose state a server keeps (tlgan serve --max-sessions); the least recently used go
COALESCE_S = 1.0  # changes of one slider within this many seconds are one undo step (a drag)
STRIP_STEPS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
MAX_STATE_CHARS = 20_000  # plus LATENT_CHARS per number of the generator's latent (a w+ code is long)
LATENT_CHARS = 16
MAX_LATENT_ABS = 100.0
STATE_KEYS = ("tlgan_explorer", "generator", "seed", "latent", "sliders", "locks", "layers", "linear")
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


def _ordered(axes: Axes, names: Iterable[str]) -> tuple[str, ...]:
    chosen = set(names)
    return tuple(n for n in axes.names if n in chosen)


def check_edit(state: ExplorerState, axes: Axes) -> None:
    """Refuse a state whose edit cannot be made (a moved axis lying inside the span of the locked ones)."""
    for name in state.free_moves:
        try:
            edit_delta(axes, {name: 1.0}, state.locks)
        except AxesError:
            raise StateError(f"with {', '.join(state.locks)} locked, the axis of {name!r} lies inside the locked "
                             f"axes' span: it cannot move without moving them; set {name} to 0 or unlock one")


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
    new = replace(state, locks=_ordered(axes, locks))
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


# ---------------------------------------------------------------- warnings about locks


@dataclass(frozen=True)
class LockWarning:
    """A moved feature whose axis is nearly parallel to the locked ones: its edit mostly cancels itself."""

    feature: str
    locked: tuple[tuple[str, float], ...]  # (locked feature, cosine) for the near-parallel ones
    retained: float  # the fraction of the axis that survives the locks (1 = all, 0 = none)
    local: bool = False  # measured on the local gradients at the face shown

    def message(self, quote: Callable[[str], str] = str, bold: bool = True) -> str:
        """The warning in words (markdown bold unless ``bold`` is False); ``quote`` escapes each feature
        name for where the message is shown (e.g. markdown)."""
        star = "**" if bold else ""
        pairs = (", ".join(f"{quote(n)} (cos {c:+.2f})" for n, c in self.locked)
                 or "the locked features together")
        where = " at this face" if self.local else ""
        return (f"{star}{quote(self.feature)}{star} is nearly parallel to locked {pairs}{where}: with them held, only "
                f"{self.retained:.0%} of its axis is left to move along, so much of this edit cancels itself. "
                f"The {quote(self.feature)} readout may still move while the face barely changes, or changes in "
                f"other ways.")


def lock_warnings(state: ExplorerState, axes: Axes, latent: np.ndarray | None = None) -> list[LockWarning]:
    """Warnings for every moved, unlocked feature whose axis the locks mostly remove.

    For local axes (unless the state asks for linear moves) and a ``latent`` (the face shown; a w+ code
    is read at its mean over layers) the axes compared are the local gradients at that face, so the
    warning says what the locks do *here*; otherwise the fixed axes."""
    if not state.locks:
        return []
    moved = list(state.free_moves)
    if not axes.field.constant and not state.linear and latent is not None and moved:
        at = np.asarray(latent, np.float32)
        at = at.mean(0) if at.ndim == 2 else at
        names = moved + list(state.locks)
        cos = cosines(axes.field, names, at)
        out = []
        locked = list(range(len(moved), len(names)))
        for a, name in enumerate(moved):
            g = cos[np.ix_([a] + locked, [a] + locked)]
            kept = _retained_from_gram(g)
            near = tuple((names[b], float(cos[a, b])) for b in locked if abs(cos[a, b]) > WARN_COS)
            if near or kept < WARN_RETAINED:
                out.append(LockWarning(name, near, kept, local=True))
        return out
    cos = cosine_matrix(axes.vectors)
    locked_idx = [axes.index(n) for n in state.locks]
    locked_vecs = axes.vectors[locked_idx]
    out = []
    for name in moved:
        i = axes.index(name)
        kept = retained(axes.vectors[i], locked_vecs)
        near = tuple((axes.names[j], float(cos[i, j])) for j in locked_idx if abs(cos[i, j]) > WARN_COS)
        if near or kept < WARN_RETAINED:
            out.append(LockWarning(name, near, kept))
    return out


def _retained_from_gram(gram: np.ndarray) -> float:
    """The share of unit vector 0 left after projecting off vectors 1.. , from their cosine (Gram) matrix."""
    if len(gram) < 2:
        return 1.0
    c = gram[1:, 1:]
    b = gram[1:, 0]
    resid = 1.0 - float(b @ np.linalg.pinv(c, rcond=1e-6) @ b)
    return float(np.sqrt(max(resid, 0.0)))


# ---------------------------------------------------------------- undo


@dataclass(frozen=True)
class Session:
    """One user's state and undo stack. Changes return a new ``Session``."""

    state: ExplorerState
    history: tuple[ExplorerState, ...] = ()
    last_key: str | None = None
    last_time: float = 0.0

    def push(self, new: ExplorerState, key: str | None = None, now: float | None = None) -> "Session":
        """Make ``new`` current. Repeated changes with the same ``key`` (one slider being dragged) within
        ``COALESCE_S`` seconds are a single undo step."""
        now = time.monotonic() if now is None else now
        if new == self.state:
            return self
        if key is not None and key == self.last_key and now - self.last_time < COALESCE_S and self.history:
            return Session(new, self.history, key, now)
        return Session(new, (self.history + (self.state,))[-MAX_UNDO:], key, now)

    @property
    def can_undo(self) -> bool:
        return bool(self.history)

    def undo(self) -> "Session":
        if not self.history:
            raise StateError("nothing to undo")
        return Session(self.history[-1], self.history[:-1], None, 0.0)


# ---------------------------------------------------------------- the state as JSON and as a link


def state_dict(state: ExplorerState) -> dict[str, Any]:
    doc: dict[str, Any] = {"tlgan_explorer": STATE_VERSION, "generator": state.generator}
    if state.latent is None:
        doc["seed"] = state.seed
    else:  # the shortest decimals that give back the same float32 values
        doc["latent"] = _shortest(state.latent)
    doc["sliders"] = dict(state.sliders)
    doc["locks"] = list(state.locks)
    if state.layers:  # only when set, so a state without layer ranges reads as before
        doc["layers"] = dict(state.layers)
    if state.linear:  # likewise: only local axes offer the switch
        doc["linear"] = True
    return doc


def _shortest(latent: Latent) -> list:
    return [_shortest(x) if isinstance(x, tuple) else float(np.format_float_positional(np.float32(x), unique=True,
                                                                                          trim="-"))
            for x in latent]


def max_state_chars(latent_dim: int | None, num_ws: int = 1) -> int:
    """The longest state accepted: room for the rest plus the generator's whole latent (every w+ layer)."""
    return MAX_STATE_CHARS + LATENT_CHARS * (latent_dim or 0) * max(1, num_ws)


def encode_state(state: ExplorerState) -> str:
    """The state as one line of JSON (what the page's state box shows)."""
    return json.dumps(state_dict(state))


def state_digest(state: ExplorerState) -> str:
    """A short fingerprint of a state (the page marks its readouts with it)."""
    return hashlib.sha1(encode_state(state).encode()).hexdigest()[:12]


def state_token(state: ExplorerState) -> str:
    """The state as URL-safe base64 of compact JSON, for ``?state=``."""
    raw = json.dumps(state_dict(state), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def state_from_token(token: str, axes: Axes, latent_dim: int | None = None, num_ws: int = 1) -> ExplorerState:
    """Decode a ``?state=`` token (validated like ``decode_state``)."""
    if not isinstance(token, str) or not token.strip():
        raise StateError("the state link is empty")
    token = token.strip()
    if len(token) > max_state_chars(latent_dim, num_ws) * 4 // 3 + 4:
        raise StateError(f"the state link is too long ({len(token)} characters)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise StateError("the state link is damaged: its ?state= part is not base64 JSON "
                         "(was it cut off when copied?)") from None
    return decode_state(text, axes, latent_dim, num_ws)


def decode_state(text: Any, axes: Axes, latent_dim: int | None = None, num_ws: int = 1) -> ExplorerState:
    """A state from the JSON box (or a pasted ``?state=`` link or token), fully validated against ``axes``.

    ``num_ws`` is the generator's number of w+ layers (1: not a w+ generator, no layer ranges)."""
    if isinstance(text, Mapping):
        doc: Any = dict(text)
    else:
        if not isinstance(text, str) or not text.strip():
            raise StateError("the state box is empty: paste a state JSON (or a share link) and press Load")
        text = text.strip()
        limit = max_state_chars(latent_dim or axes.latent_dim, num_ws)
        if len(text) > limit:
            raise StateError(f"the state is too long ({len(text)} characters; at most {limit})")
        if not text.startswith("{") and "state=" in text:  # a whole share link
            token = parse_qs(urlparse(text).query).get("state", [""])[0]
            return state_from_token(token, axes, latent_dim, num_ws)
        if re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", text) and not text.isdigit():  # a bare ?state= token
            return state_from_token(text, axes, latent_dim, num_ws)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise StateError(f"the state is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    if not isinstance(doc, dict):
        raise StateError("the state must be a JSON object like "
                         '{"seed": 3, "sliders": {"age": 2}, "locks": ["male"]}')
    unknown = sorted(set(doc) - set(STATE_KEYS))
    if unknown:
        raise StateError(f"unknown key(s) in the state: {', '.join(unknown)}; allowed: {', '.join(STATE_KEYS)}")
    version = doc.get("tlgan_explorer", STATE_VERSION)
    if version != STATE_VERSION:
        raise StateError(f"this state has format {version!r}; this explorer reads format {STATE_VERSION}")
    mine = axes.meta.get("generator", "")
    generator = doc.get("generator", mine)
    if not isinstance(generator, str) or (mine and generator != mine):
        raise StateError(f"this state is for generator {generator!r}, but this explorer runs {mine!r}")
    latent_dim = latent_dim or axes.latent_dim
    if doc.get("latent") is not None:
        if doc.get("seed") is not None:
            raise StateError("give either 'seed' or 'latent' in the state, not both")
        seed, latent = None, parse_latent(doc["latent"], latent_dim, num_ws)
    else:
        seed, latent = parse_seed(doc.get("seed", 0)), None
    sliders_in = doc.get("sliders", {})
    if not isinstance(sliders_in, dict):
        raise StateError("'sliders' must be an object like {\"age\": 2.0, \"male\": -1}")
    locks_in = doc.get("locks", [])
    if not isinstance(locks_in, list):
        raise StateError("'locks' must be a list of feature names like [\"male\"]")
    layers_in = doc.get("layers", {})
    if not isinstance(layers_in, dict):
        raise StateError("'layers' must be an object like {\"age\": \"coarse\", \"smile\": \"4-7\"}")
    linear = doc.get("linear", False)
    if not isinstance(linear, bool):
        raise StateError("'linear' must be true or false")
    if linear and axes.field.constant:
        linear = False  # linear is all these axes have
    sliders = {check_feature(axes, n): parse_amount(n, v) for n, v in sliders_in.items()}
    locks = [check_feature(axes, n) for n in locks_in]
    state = ExplorerState(generator or mine, seed, latent,
                          {n: sliders[n] for n in axes.names if sliders.get(n)}, _ordered(axes, locks), linear=linear)
    for n, spec in layers_in.items():
        state = set_layers(state, axes, n, spec, num_ws)
    check_edit(state, axes)
    return state


# ---------------------------------------------------------------- showing readouts


def format_value(kind: str, unit: str, value: float) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    if kind == "binary":
        return f"{value:.0%}"
    unit = {"degrees": "°", "years": " years"}.get(unit, f" {unit}" if unit else "")
    return f"{value:.1f}{unit}" if unit else f"{value:.2f}"


def format_change(kind: str, value: float, start: float | None) -> str:
    """The change from the unedited face: '+12 pts' for a probability, '+3.1' otherwise; '' when unknown."""
    if start is None or not np.isfinite(value) or not np.isfinite(start):
        return ""
    d = value - start
    if kind == "binary":
        d *= 100
        return "±0 pts" if abs(d) < 0.5 else f"{d:+.0f} pts"
    return "±0" if abs(d) < 0.05 else f"{d:+.1f}"


def subject_missing(readouts: Mapping[str, float], presence: str | None) -> bool:
    """True when the extractor's declared presence feature (``face_found`` for faces) is below one half."""
    v = readouts.get(presence) if presence else None
    return v is not None and np.isfinite(v) and v < 0.5


@dataclass(frozen=True)
class Readout:
    """What the page shows beside one slider: the measured value and its change from the unedited face."""

    name: str
    value: str  # "32.7 years", "84%", "n/a", or "no face found"
    change: str  # "+11.3", "+67 pts", "±0", or "" (no edit, or unknown)
    trend: str  # "up", "down", "same", "none" (nothing to compare) or "missing" (no face)


def describe_readouts(names: Sequence[str], features: Mapping[str, Any], values: Mapping[str, float],
                      start: Mapping[str, float] | None, edited: bool, presence: str | None = None) -> list[Readout]:
    """The readout of each of ``names``; ``features`` maps names to ``Feature`` (kind and unit).

    ``presence``: the extractor's declared presence feature; when it says the
    subject is missing, the other readouts say so instead of a number.
    """
    missing = subject_missing(values, presence)
    out = []
    for name in names:
        feat = features.get(name)
        kind, unit = (feat.kind, feat.unit) if feat is not None else ("continuous", "")
        if missing and name != presence:
            out.append(Readout(name, "no face found", "", "missing"))
            continue
        v = values.get(name, float("nan"))
        change = format_change(kind, v, start.get(name) if start else None) if edited else ""
        trend = ("none" if not change else "same" if change.startswith("±")
                 else "up" if change.startswith("+") else "down")
        out.append(Readout(name, format_value(kind, unit, v), change, trend))
    return out


# ---------------------------------------------------------------- rendering


class Explorer:
    """A generator, its axes and (optionally) the extractor that reads the displayed face.

    Shared by every page session: it holds no user state. Model calls are
    serialized (one lock for rendering, one for readouts, one for inverting photos),
    so sessions in different threads are safe. ``invert_steps`` and ``encoder``
    (an ``Encoder`` or its file, from ``tlgan train-encoder``) set how an uploaded
    photo is inverted.
    """

    def __init__(self, axes: Axes, generator, extractor=None, invert_steps: int = INVERT_STEPS,
                 encoder: Any = None) -> None:
        from ..pipeline import Editor

        self.editor = Editor(generator, axes)  # refuses axes fitted for another generator
        self.linear_editor = Editor(generator, axes.with_field(axes.field.mean()))  # the "linear moves" switch
        self.axes = axes
        self.generator = generator
        self.extractor = extractor
        self.presence = extractor.presence if extractor is not None else None
        self._render_lock = threading.Lock()  # rendering need not wait for a (slower) readout
        self._extract_lock = threading.Lock()
        self._invert_lock = threading.Lock()  # one inversion at a time: each one uses every CPU core
        if isinstance(invert_steps, bool) or not isinstance(invert_steps, int) or invert_steps < 0:
            raise StateError(f"inversion steps must be a whole number >= 0, got {invert_steps!r}")
        self.invert_steps = invert_steps
        if encoder is not None and not hasattr(encoder, "predict"):
            from ..invert import load_encoder

            encoder = load_encoder(encoder, generator)
        self.encoder = encoder
        self.features = {f.name: f for f in extractor.features} if extractor is not None else {}

    @classmethod
    def load(cls, axes_path, device: str | None = None, readouts: bool = True, invert_steps: int = INVERT_STEPS,
             encoder: Any = None) -> "Explorer":
        """The generator named in the axes file's metadata and, with ``readouts``, its extractor."""
        from ..extractors import load_extractor
        from ..generators import generator_of

        axes = Axes.load(axes_path)
        if not axes.meta.get("generator"):
            raise AxesError(f"{axes_path} does not say which generator it was fitted for")
        generator = generator_of(axes.meta, device)
        ext_name = axes.meta.get("extractor")
        extractor = load_extractor(ext_name, device) if readouts and ext_name else None
        return cls(axes, generator, extractor, invert_steps, encoder)

    @property
    def names(self) -> list[str]:
        return list(self.axes.names)

    def initial(self, seed: int = 0) -> ExplorerState:
        return ExplorerState(self.generator.name, parse_seed(seed))

    @property
    def num_ws(self) -> int:
        """The generator's w+ layers a slider's move can be limited to (1: not in w+, no layer ranges)."""
        return int(self.generator.num_ws) if getattr(self.generator, "space", "z") == "w+" else 1

    def decode(self, text: Any) -> ExplorerState:
        return decode_state(text, self.axes, self.generator.latent_dim, self.num_ws)

    def from_token(self, token: str) -> ExplorerState:
        return state_from_token(token, self.axes, self.generator.latent_dim, self.num_ws)

    def base_latent(self, state: ExplorerState) -> np.ndarray:
        """The unedited latent of the state's face: (D,), or (num_ws, D) for a w+ photo's inversion."""
        if state.latent is not None:
            return np.asarray(state.latent, dtype=np.float32)
        if state.seed is None:
            raise StateError("a state needs a seed or a latent")
        return self.editor.latent(state.seed)

    def latent(self, state: ExplorerState) -> np.ndarray:
        """The edited latent: held (locked) amounts along their own axes, the other moves off the locked axes.

        In w+ every move reaches only its feature's layers, and the latent is a full (num_ws, D) code."""
        layers = layer_indices(state, self.num_ws) if self.num_ws > 1 else None
        editor = self.linear_editor if state.linear else self.editor
        z = editor.edit(self.base_latent(state), state.held_moves, (), layers)
        return editor.edit(z, state.free_moves, state.locks, layers)

    def lock_warnings(self, state: ExplorerState) -> list[LockWarning]:
        """``lock_warnings`` for the face shown: local axes are compared by their gradients at that face
        (with the locked sliders' held amounts applied: the face the free moves start from)."""
        if self.axes.field.constant or state.linear or not state.locks or not state.free_moves:
            return lock_warnings(state, self.axes)
        layers = layer_indices(state, self.num_ws) if self.num_ws > 1 else None
        start = self.editor.edit(self.base_latent(state), state.held_moves, (), layers)
        return lock_warnings(state, self.axes, start)

    def invert_photo(self, photo: Any, progress: Callable[[int, int, float], Any] | None = None) -> Inversion:
        """Find the face in ``photo`` (a path or RGB array), align it to the generator's framing and invert it
        (``tlgan.jobs.invert_photo``): its ``latent`` is the face a state with ``set_latent`` shows, and its
        ``quality`` says how close the reconstruction is. ``progress(step, total, loss)`` returning False
        stops early with the best latent so far. Raises ``tlgan.align.PhotoError`` (no face, not an image)."""
        from ..jobs import invert_photo

        with self._invert_lock:
            _, inv = invert_photo(self.generator, photo, self.encoder, steps=self.invert_steps, progress=progress)
        return inv

    def render(self, state: ExplorerState) -> np.ndarray:
        """uint8 (H, W, 3): the state's face at the generator's resolution."""
        return self.render_many([state])[0]

    def render_many(self, states: Sequence[ExplorerState]) -> np.ndarray:
        z = np.stack([self.latent(s) for s in states])
        with self._render_lock:
            return self.generator.render(z).cpu().numpy()

    def render_unedited(self, state: ExplorerState) -> np.ndarray:
        return self.render(replace(state, sliders={}, locks=(), layers={}))

    def readouts(self, image: np.ndarray) -> dict[str, float]:
        """The extractor's reading of one displayed image, per feature (NaN = could not measure)."""
        return self.readouts_many(np.asarray(image)[None])[0]

    def readouts_many(self, images: np.ndarray) -> list[dict[str, float]]:
        """Readouts of images (N, H, W, 3) in one extractor call; empty dicts without an extractor."""
        if self.extractor is None:
            return [{} for _ in images]
        with self._extract_lock:
            values = self.extractor(np.asarray(images, dtype=np.uint8))
        return [{f.name: float(v) for f, v in zip(self.extractor.features, row)} for row in values]

    def strip(self, state: ExplorerState, name: str,
              steps: Sequence[float] = STRIP_STEPS) -> tuple[list[ExplorerState], np.ndarray]:
        """The current face with ``name``'s slider at each step: the states and their images."""
        states = strip_states(state, self.axes, name, steps)
        return states, self.render_many(states)
