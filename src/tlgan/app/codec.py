"""The explorer's state as text: one line of JSON (the page's state box), a URL-safe ``?state=`` token (the
share link) and a short digest (what the page marks its readouts with); and back, refusing anything malformed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..axes import Axes
from .state import (
    ExplorerState,
    Latent,
    StateError,
    check_edit,
    check_feature,
    in_axes_order,
    parse_amount,
    parse_latent,
    parse_seed,
    set_layers,
)

STATE_VERSION = 1
STATE_KEYS = ("tlgan_explorer", "generator", "seed", "latent", "sliders", "locks", "layers", "linear")
MAX_STATE_CHARS = 20_000  # plus LATENT_CHARS per number of the generator's latent (a w+ code is long)
LATENT_CHARS = 16


def parse_json(text: str | bytes) -> Any:
    """JSON from the page or its API, refused with a ``StateError`` when it is not JSON or is nested too
    deeply for the parser (thousands of brackets: never a state, and a RecursionError if let through)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(f"the state is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise StateError("the state is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise StateError("the state is not valid JSON: it is nested too deeply "
                         "(a state is an object of numbers, names and short lists)") from None


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
        doc = parse_json(text)
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
                          {n: sliders[n] for n in axes.names if sliders.get(n)}, in_axes_order(axes, locks), linear=linear)
    for n, spec in layers_in.items():
        state = set_layers(state, axes, n, spec, num_ws)
    check_edit(state, axes)
    return state
