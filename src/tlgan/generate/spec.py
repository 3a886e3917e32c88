"""What a user asks of a generated face: one condition per feature, parsed from ``age>=60``-style text.

Pure functions over label arrays. A condition is a closed interval ``[lo, hi]``
on one feature's label (either end may be infinite); a spec is a set of them
that must all hold. Binary features are probabilities, so their bounds lie in
[0, 1] and a bare name (``eyeglasses``) means "present" (P >= 0.5), ``!name``
"absent"; continuous features need a bound. Which features exist and their
kinds come from the extractor's declarations, never from names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..extractors import Feature, FeatureKind

PRESENT = 0.5  # a binary feature is present when its probability is at least this


class SpecError(InputError):
    """A spec that cannot be met or read: unknown feature, malformed condition, impossible range, contradiction."""


@dataclass(frozen=True)
class Condition:
    """``lo <= label(feature) <= hi``; ``text`` is how the user wrote it (``>`` counts as ``>=`` on real labels)."""

    feature: str
    kind: FeatureKind
    lo: float = -math.inf
    hi: float = math.inf
    text: str = ""

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Bool per value: inside the interval (an unknown label, NaN, never holds)."""
        v = np.asarray(values, np.float64)
        with np.errstate(invalid="ignore"):
            return np.asarray((v >= self.lo) & (v <= self.hi))

    def __str__(self) -> str:
        return self.text or describe(self)


def describe(c: Condition) -> str:
    """A condition written back as a user would write it."""
    if math.isinf(c.lo) and math.isinf(c.hi):
        return f"{c.feature} (any)"
    if math.isinf(c.hi):
        return f"{c.feature}>={c.lo:g}"
    if math.isinf(c.lo):
        return f"{c.feature}<={c.hi:g}"
    return f"{c.feature}={c.lo:g}..{c.hi:g}"


@dataclass(frozen=True)
class Spec:
    """Conditions that must all hold, at most one per feature."""

    conditions: tuple[Condition, ...]

    @property
    def features(self) -> list[str]:
        return [c.feature for c in self.conditions]

    def met(self, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Bool (N, k): which of the k conditions each of the N label rows (columns named ``names``) meets."""
        labels = np.atleast_2d(np.asarray(labels, np.float64))
        cols = [list(names).index(c.feature) for c in self.conditions]
        return np.stack([c.holds(labels[:, j]) for c, j in zip(self.conditions, cols, strict=True)], axis=1) \
            if cols else np.ones((len(labels), 0), bool)

    def holds(self, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Bool (N,): the rows that meet every condition."""
        return np.asarray(self.met(labels, names).all(axis=1))

    def __str__(self) -> str:
        return ", ".join(map(str, self.conditions))


_CONDITION = re.compile(r"^\s*(?P<neg>!|not\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*"
                        r"(?:(?P<op>>=|<=|==|=|>|<)\s*(?P<value>\S.*?))?\s*$")
_EXAMPLES = "write e.g. age>=60, happy>0.8, male<0.2, yaw=-20..-10, eyeglasses or !eyeglasses"


def _number(text: str, whole: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SpecError(f"{whole!r}: {text!r} is not a number; {_EXAMPLES}") from None
    if not math.isfinite(v):
        raise SpecError(f"{whole!r}: the bound must be a finite number")
    return v


def parse_condition(text: str, features: Sequence[Feature]) -> Condition:
    """One condition from its text, checked against the extractor's ``features`` (names and kinds)."""
    m = _CONDITION.match(text)
    if not m:
        raise SpecError(f"cannot read the condition {text!r}; {_EXAMPLES}")
    name, op, value = m["name"], m["op"], m["value"]
    known = {f.name: f for f in features}
    if name not in known:
        raise SpecError(f"unknown feature {name!r} in {text!r}; the extractor reports: {', '.join(known)}")
    kind = known[name].kind
    if m["neg"] and op:
        raise SpecError(f"{text!r}: '!' only goes before a bare binary feature (e.g. !eyeglasses)")
    if op is None:
        if kind != "binary":
            raise SpecError(f"{text!r}: {name} is continuous, so give a bound, e.g. {name}>=1 or {name}=0..2")
        lo, hi = (-math.inf, PRESENT) if m["neg"] else (PRESENT, math.inf)
    elif op in (">=", ">"):
        lo, hi = _number(value, text), math.inf
    elif op in ("<=", "<"):
        lo, hi = -math.inf, _number(value, text)
    else:
        a, sep, b = value.partition("..")
        if not sep:
            raise SpecError(f"{text!r}: '=' takes a range LO..HI (e.g. {name}=-20..-10); a real-valued label never "
                            "equals one number exactly")
        lo, hi = sorted((_number(a, text), _number(b, text)))
    if kind == "binary" and ((not math.isinf(lo) and not 0 <= lo < 1) or (not math.isinf(hi) and not 0 < hi <= 1)):
        raise SpecError(f"{text!r}: {name} is a probability, so its bounds lie in 0..1 (and > 1 or < 0 "
                        "can never hold)")
    return Condition(name, kind, lo, hi, text.strip())


def parse_spec(texts: Iterable[str], features: Sequence[Feature]) -> Spec:
    """All conditions (several on one feature are intersected); an empty intersection is an error."""
    merged: dict[str, Condition] = {}
    for text in texts:
        c = parse_condition(text, features)
        old = merged.get(c.feature)
        if old is not None:
            lo, hi = max(old.lo, c.lo), min(old.hi, c.hi)
            if lo > hi:
                raise SpecError(f"{old} and {c} contradict each other: no value of {c.feature} meets both")
            c = Condition(c.feature, c.kind, lo, hi, f"{old.text} & {c.text}")
        merged[c.feature] = c
    if not merged:
        raise SpecError(f"give at least one condition with --want; {_EXAMPLES}")
    return Spec(tuple(merged.values()))


def presence_condition(features: Sequence[Feature], presence: str | None) -> Condition | None:
    """The implicit condition that the subject is found at all (the extractor's declared presence feature)."""
    if presence is None or presence not in {f.name for f in features}:
        return None
    return Condition(presence, "binary", PRESENT, math.inf, f"{presence} (implied)")


def with_condition(spec: Spec, extra: Condition | None) -> Spec:
    """``spec`` with ``extra`` added unless the spec already says something about that feature."""
    if extra is None or extra.feature in spec.features:
        return spec
    return Spec((*spec.conditions, extra))
