"""Steering random faces into a spec: plan a move from the axes' models, render, relabel, correct, repeat.

Pure functions over arrays; rendering and labelling come in as one callable
(``measure``), and latents move only through :func:`tlgan.explore.move`, so
linear and local axes are steered alike (the measured labels correct whatever
the model got wrong).

Each feature's model is read on its own scale ``g``: the label itself for a
continuous feature, its logit for a binary one (the scales its GLM is linear
on), with ``g(label) ~ offset + slope * (axis . latent)``: the slope is the
axes file's own, the offset is calibrated on the faces of this run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..axes import Axes, AxesError
from ..explore import move, project_out
from .distinct import MAX_NUDGES, NUDGE, nudge
from .spec import Condition, Spec, SpecError, describe

#: How far from a typical face (in standard deviations of random faces along the axes) a spec may ask to go:
#: a random face lies that far out along a given 2-d subspace with probability exp(-18), about 1e-8.
REACH_LIMIT = 6.0
#: The largest move of one correction step, in the same units (larger moves leave the faces the GAN draws well).
MAX_STEP = 3.0
#: Aim this far inside a bound: logit units for binary features, label standard deviations for continuous ones.
BINARY_MARGIN = 1.0
CONTINUOUS_MARGIN = 0.3
LOGIT_CLIP = 8.0
#: Corrections per face before it is given up (a face still closing in gets as many again). Measured on the demo
#: axes (female, age >= 35, smiling; seeds 0-2): 5 gave 74-91% yield, 10 gives 82-95% at about the same renders
#: per face.
MAX_TRIES = 10


def to_model_scale(values: np.ndarray | float, kind: str) -> np.ndarray:
    """Labels on the scale their model is linear on: logit for binary (probabilities), as is for continuous."""
    v = np.asarray(values, np.float64)
    if kind != "binary":
        return v
    with np.errstate(divide="ignore"):
        return np.clip(np.log(v) - np.log1p(-v), -LOGIT_CLIP, LOGIT_CLIP)


def flat_codes(latents: np.ndarray, dim: int) -> np.ndarray:
    """(N, D) codes to project on the axes: w+ codes (N, num_ws, D) are averaged over their layers."""
    x = np.asarray(latents, np.float64)
    return x.reshape(len(x), -1, dim).mean(axis=1)


@dataclass
class Calibration:
    """Per feature of a spec: ``g(label) ~ offset + slope * (axis . latent)``, and the spread of random faces."""

    offset: dict[str, float]
    slope: dict[str, float]
    label_std: dict[str, float]  # on the model scale, over the faces calibrated on
    label_range: dict[str, tuple[float, float]]  # the labels themselves, as random faces read them
    origin: np.ndarray  # the mean latent of the faces calibrated on
    spread: float  # typical std of those latents along one axis


def calibrate(spec: Spec, axes: Axes, names: Sequence[str], latents: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit each spec feature's offset on random faces (their latents and labels); slopes come from the axes."""
    x = flat_codes(latents, axes.vectors.shape[1])
    offset, slope, std, rng = {}, {}, {}, {}
    spreads = []
    for c in spec.conditions:
        a = axes.vector(c.feature).astype(np.float64)
        p = x @ a
        y = np.asarray(labels, np.float64)[:, list(names).index(c.feature)]
        g = to_model_scale(y, c.kind)
        ok = np.isfinite(g)
        s = float(axes.slopes[axes.index(c.feature)])
        slope[c.feature] = s
        offset[c.feature] = float(np.median(g[ok] - s * p[ok])) if ok.any() else 0.0
        std[c.feature] = float(np.std(g[ok])) if ok.sum() > 1 else 1.0
        rng[c.feature] = (float(np.min(y[ok])), float(np.max(y[ok]))) if ok.any() else (math.nan, math.nan)
        spreads.append(float(np.std(p)))
    spread = float(np.mean(spreads)) if spreads and np.mean(spreads) > 0 else 1.0
    return Calibration(offset, slope, std, rng, x.mean(axis=0), spread)


def _bounds(c: Condition, cal: Calibration) -> tuple[float, float]:
    """The condition's interval on the axis projection ``axis . latent`` (by its calibrated model)."""
    def proj(v: float) -> float:
        if math.isinf(v):
            return v
        g = float(to_model_scale(v, c.kind)) if c.kind == "binary" and 0 < v < 1 else (
            (-math.inf if v <= 0 else math.inf) if c.kind == "binary" else v)
        return (g - cal.offset[c.feature]) / cal.slope[c.feature] if math.isfinite(g) else g
    lo, hi = proj(c.lo), proj(c.hi)
    return (lo, hi) if cal.slope[c.feature] > 0 else (hi, lo)


def reach(conditions: Sequence[Condition], axes: Axes, cal: Calibration) -> float:
    """How far (in random faces' standard deviations) the nearest latent meeting every condition lies from the
    typical face, by the axes' models: the minimum-norm solution of the conditions' interval constraints."""
    from scipy.optimize import minimize

    a = np.stack([axes.vector(c.feature) for c in conditions]).astype(np.float64)
    base = a @ cal.origin
    bounds = np.array([_bounds(c, cal) for c in conditions]) - base[:, None]
    gram = a @ a.T
    cons: list[dict[str, Any]] = []
    for k in range(len(conditions)):
        lo, hi = bounds[k]
        if np.isfinite(lo):
            cons.append({"type": "ineq", "fun": lambda c, k=k, lo=lo: gram[k] @ c - lo, "jac": lambda c, k=k: gram[k]})
        if np.isfinite(hi):
            cons.append({"type": "ineq", "fun": lambda c, k=k, hi=hi: hi - gram[k] @ c, "jac": lambda c, k=k: -gram[k]})
    if not cons:
        return 0.0
    start = np.linalg.pinv(gram) @ np.where(np.isfinite(bounds), bounds, 0).mean(axis=1)
    res = minimize(lambda c: c @ gram @ c, start, jac=lambda c: 2 * gram @ c, constraints=cons, method="SLSQP",
                   options={"maxiter": 200, "ftol": 1e-10})
    ok = all(con["fun"](res.x) > -1e-4 * (1 + abs(np.nan_to_num(bounds)).max()) for con in cons)
    if not ok:  # no latent meets them all (e.g. the same axis asked to go both ways)
        return math.inf
    return float(np.sqrt(max(res.x @ gram @ res.x, 0.0)) / cal.spread)


def check_feasible(spec: Spec, axes: Axes, cal: Calibration, limit: float = REACH_LIMIT) -> None:
    """Refuse a spec no face can meet, naming why: a condition out of reach on its own (``age>=200``), or the
    conditions that fight each other (reachable alone, not together: e.g. two features with nearly opposite axes)."""
    conds = list(spec.conditions)
    alone = {c.feature: reach([c], axes, cal) for c in conds}
    for c in conds:
        if alone[c.feature] > limit:
            lo, hi = cal.label_range[c.feature]
            raise SpecError(f"{c} is out of reach: the axis model of {c.feature} puts it "
                            f"{alone[c.feature]:.0f} standard deviations from a typical face (random faces read "
                            f"{lo:.3g}..{hi:.3g}); ask for a value nearer that range")
    fights = []
    for i, ci in enumerate(conds):
        for cj in conds[i + 1:]:
            r = reach([ci, cj], axes, cal)
            if r > limit:
                cos = float(axes.vector(ci.feature) @ axes.vector(cj.feature))
                fights.append((r, ci, cj, cos))
    if fights:
        r, ci, cj, cos = max(fights, key=lambda f: f[0])
        more = f" (and {len(fights) - 1} more pairs)" if len(fights) > 1 else ""
        raise SpecError(f"{ci} and {cj} fight each other: their axes have cosine {cos:+.2f}, and meeting both needs "
                        f"a face {'beyond any' if math.isinf(r) else f'{r:.0f} standard deviations from a typical'} "
                        f"face{more}; drop or loosen one of them")
    r = reach(conds, axes, cal)
    if r > limit:
        raise SpecError(f"the conditions {spec} cannot all hold together (the axis models put such a face {r:.0f} "
                        "standard deviations from a typical face); drop or loosen one of them")


def _target(c: Condition, cal: Calibration) -> float:
    """Where to aim on the model scale: inside the interval by a margin (the middle of a narrow one)."""
    lo, hi = (float(to_model_scale(v, c.kind)) if math.isfinite(v) else v for v in (c.lo, c.hi))
    if c.kind == "binary":
        lo = -LOGIT_CLIP if c.lo <= 0 else lo
        hi = LOGIT_CLIP if c.hi >= 1 else hi
    margin = BINARY_MARGIN if c.kind == "binary" else CONTINUOUS_MARGIN * cal.label_std[c.feature]
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2 if hi - lo <= 2 * margin else min(max((lo + hi) / 2, lo + margin), hi - margin)
    return lo + margin if math.isfinite(lo) else hi - margin


def shortfall(spec: Spec, axes: Axes, cal: Calibration, latents: np.ndarray) -> np.ndarray:
    """How far each latent lies from where the spec aims, by the axes' linear models and without rendering:
    per condition the distance of ``axis . latent`` outside the aimed interval (the condition moved inward by
    its margin), in random faces' standard deviations along the axis, combined as a root sum of squares.
    Ranks candidate starting faces: the nearest need the shortest moves (fewest renders, least change)."""
    x = flat_codes(latents, axes.vectors.shape[1])
    total = np.zeros(len(x))
    for c in spec.conditions:
        p = x @ axes.vector(c.feature).astype(np.float64)
        lo, hi = _bounds(c, cal)
        margin = (BINARY_MARGIN if c.kind == "binary" else CONTINUOUS_MARGIN * cal.label_std[c.feature]) \
            / abs(cal.slope[c.feature])
        if np.isfinite(lo) and np.isfinite(hi) and hi - lo <= 2 * margin:
            lo = hi = (lo + hi) / 2
        else:
            lo, hi = lo + margin, hi - margin
        total += ((np.maximum(lo - p, 0) + np.maximum(p - hi, 0)) / cal.spread) ** 2
    return np.sqrt(total)


def predict(cal: Calibration, axes: Axes, feature: str, latents: np.ndarray) -> np.ndarray:
    """What ``feature``'s calibrated axis model reads at each of ``latents``, on its model scale (a logit for
    a binary feature)."""
    x = flat_codes(latents, axes.vectors.shape[1])
    return cal.offset[feature] + cal.slope[feature] * (x @ axes.vector(feature).astype(np.float64))


def fill_unread(spec: Spec, labels: np.ndarray, latent: np.ndarray, names: Sequence[str], axes: Axes,
                cal: Calibration) -> np.ndarray:
    """One face's labels with each spec feature the extractor could not read (NaN: e.g. no face found) replaced
    by what its calibrated axis model predicts at ``latent``, so a move can still be planned from there."""
    row = np.array(labels, np.float64)
    for c in spec.conditions:
        j = list(names).index(c.feature)
        if not np.isfinite(row[j]):
            g = float(predict(cal, axes, c.feature, np.asarray(latent)[None])[0])
            row[j] = 1 / (1 + math.exp(-np.clip(g, -LOGIT_CLIP, LOGIT_CLIP))) if c.kind == "binary" else g
    return row


def _model_bound(bound: float, kind: str) -> float:
    """A condition's bound on its model scale (a probability bound of 0 or 1 is unbounded in logits)."""
    if kind != "binary" or not math.isfinite(bound):
        return bound
    return -math.inf if bound <= 0 else math.inf if bound >= 1 else float(to_model_scale(bound, kind))


def measured_gap(spec: Spec, labels: np.ndarray, names: Sequence[str], cal: Calibration) -> float:
    """How far one face's measured labels are from meeting the spec: per unmet condition, the distance on the
    model scale to its interval in random faces' label standard deviations, summed (NaN labels: infinite)."""
    gap = 0.0
    for c in spec.conditions:
        v = float(labels[list(names).index(c.feature)])
        if not math.isfinite(v):
            return math.inf
        g = float(to_model_scale(v, c.kind))
        lo, hi = (_model_bound(b, c.kind) for b in (c.lo, c.hi))
        gap += (max(lo - g, 0.0) + max(g - hi, 0.0)) / max(cal.label_std.get(c.feature, 1.0), 1e-9)
    return gap


def nearest_draw(draw: Draw, spec: Spec, axes: Axes, cal: Calibration, candidates: int) -> Draw:
    """A ``draw`` that takes ``candidates`` times as many latents from ``draw`` and gives the ``k`` nearest to
    the spec by :func:`shortfall` (in stream order); the rest are never rendered."""
    def pick(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx, z = draw(k * candidates)
        if len(idx) <= k:
            return idx, z
        keep = np.sort(np.argsort(shortfall(spec, axes, cal, z), kind="stable")[:k])
        return idx[keep], z[keep]
    return pick


@dataclass
class Step:
    """One planned correction: amounts along axes (latent units) with the features held fixed."""

    moves: dict[str, float]
    locks: list[str]
    expect: dict[str, float] = field(default_factory=dict)  # the change of each moved feature it plans (model scale)
    nudge: float = 0.0  # > 0: not a move along axes but a near-duplicate's nudge of this length (``distinct.nudge``)


def plan_step(spec: Spec, met: np.ndarray, labels: np.ndarray, names: Sequence[str], axes: Axes,
              cal: Calibration, keep: Sequence[str] = (), gain: dict[str, float] | None = None) -> Step:
    """The move that brings one face's unmet conditions to their targets (by the axes' models) while the
    features already right, and ``keep``, stay locked; solved jointly so correlated axes do not double-count.
    ``gain``: how much of a planned change this face's features showed last time (the model's error here)."""
    unmet = [c for c, ok in zip(spec.conditions, met, strict=True) if not ok]
    locks = list(dict.fromkeys([c.feature for c, ok in zip(spec.conditions, met, strict=True) if ok] + list(keep)))
    feats = [c.feature for c in unmet]
    gain = gain or {}
    need = np.array([(_target(c, cal) - float(to_model_scale(labels[list(names).index(c.feature)], c.kind)))
                     / cal.slope[c.feature] / gain.get(c.feature, 1.0) for c in unmet])
    a = np.stack([axes.vector(f) for f in feats]).astype(np.float64)
    locked = np.stack([axes.vector(f) for f in locks]).astype(np.float64) if locks else np.zeros((0, a.shape[1]))
    units = []
    for f, row in zip(feats, a, strict=True):
        u = project_out(row, locked)
        if np.linalg.norm(u) < 1e-6:
            raise AxesError(f"{f} cannot move while {', '.join(locks)} are locked")
        units.append(u / np.linalg.norm(u))
    effect = a @ np.stack(units).T  # effect[j, i]: change of feature j's projection per unit move i
    amounts, *_ = np.linalg.lstsq(effect, need, rcond=1e-6)
    size = np.linalg.norm(np.stack(units).T @ amounts) / cal.spread
    if size > MAX_STEP:
        amounts *= MAX_STEP / size
    expect = effect @ amounts * np.array([cal.slope[f] for f in feats])
    return Step({f: float(t) for f, t in zip(feats, amounts, strict=True)}, locks, dict(zip(feats, map(float, expect), strict=True)))


def update_gain(gain: dict[str, float], step: Step, before: np.ndarray, after: np.ndarray, spec: Spec,
                names: Sequence[str]) -> dict[str, float]:
    """Each moved feature's gain after a step: the change it showed over the change the axes' model predicted
    for the move (clipped to 0.25..2, so one noisy reading cannot stall or fling a face); the next plan
    divides by it."""
    out = dict(gain)
    for c in spec.conditions:
        planned = step.expect.get(c.feature, 0.0)
        if abs(planned) < 1e-3:
            continue
        j = list(names).index(c.feature)
        seen = float(to_model_scale(after[j], c.kind) - to_model_scale(before[j], c.kind))
        if math.isfinite(seen):
            out[c.feature] = float(np.clip(seen / planned, 0.25, 2.0))
    return out


@dataclass
class Face:
    """One face being steered: where it started (``index`` in the seed's stream), where it is, what it read."""

    index: int
    start: np.ndarray
    latent: np.ndarray
    labels: np.ndarray | None = None
    image: np.ndarray | None = None  # as last rendered (uint8 H x W x 3), when ``measure`` gives images
    tries: int = 0  # moves made, including ones taken back
    nudges: int = 0  # near-duplicate nudges made (``distinct.nudge``; they have their own budget, ``MAX_NUDGES``)
    last_good: np.ndarray | None = None  # the latent before the last move, whose labels were all known
    last_labels: np.ndarray | None = None  # and its labels
    gain: dict[str, float] = field(default_factory=dict)  # per feature, see ``update_gain``
    steps: list[Step] = field(default_factory=list)
    gap: float = math.inf  # ``measured_gap`` at the last render (a face still closing in earns more tries)

    def total_moves(self) -> dict[str, float]:
        out: Counter = Counter()
        for s in self.steps:
            out.update(s.moves)
        return dict(out)


@dataclass
class Outcome:
    """What steering produced and cost: faces started, renders, and why faces were given up."""

    delivered: list[Face]
    started: int
    rendered: int
    gave_up: int
    unmet: Counter  # condition text -> how many given-up faces missed it at the end
    calibration: Calibration | None = None
    lost: list[Face] = field(default_factory=list)  # the given-up faces, as they ended (labels, tries, steps)
    duplicates: int = 0  # times ``accept`` refused a face that met the spec (too like one delivered)

    @property
    def renders_per_face(self) -> float:
        return self.rendered / len(self.delivered) if self.delivered else math.inf

    @property
    def yield_(self) -> float:
        return len(self.delivered) / self.started if self.started else 0.0


#: Latents (N, ...) -> their labels (N, F) and, optionally, the images (N, H, W, 3) they were read from.
Measure = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
Draw = Callable[[int], tuple[np.ndarray, np.ndarray]]


def steer(spec: Spec, axes: Axes, names: Sequence[str], measure: Measure, draw: Draw, n: int,
          keep: Sequence[str] = (), max_tries: int = MAX_TRIES, max_started: int | None = None, calibration_faces: int = 32,
          on_face: Callable[[Face], None] | None = None, check: bool = True,
          calibration: Calibration | None = None, calibration_draw: Draw | None = None,
          spec_of: Callable[[int], Spec] | None = None, accept: Callable[[Face], bool] | None = None,
          extra_tries: int | None = None,
          measured: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = None) -> Outcome:
    """Bring ``n`` random faces into ``spec``.

    ``draw(k)`` gives the next ``k`` faces of the stream (their indices and latents), ``measure(latents)`` their
    labels (columns ``names``) and images. Each round renders every face in play; a face that meets the spec is
    delivered, one that still misses it after ``max_tries`` moves is given up and another is drawn. A move
    that loses a face's labels (NaN) is half taken back; a starting face with none is moved as the axes'
    models predict (``fill_unread``). ``draw`` may give fewer faces than asked, or none, when its stream ends. At
    most ``max_started`` faces are started (default ``4 n + 16``); a spec that no face meets by then raises
    :class:`SpecError` naming the conditions that failed. ``calibration``: use these models instead of
    calibrating on the first faces (with up to ``calibration_faces`` more from ``calibration_draw``,
    default ``draw``, rendered but never steered) and skip the feasibility check. ``spec_of(index)``: each
    face's own spec instead (several targets steered in one batch; ``spec`` then only names the features).
    ``accept(face)``: False refuses a face that meets the spec (e.g. too like one already delivered); it is
    nudged (``distinct.nudge``: moved where the spec's features' axes do not see) and checked again, up to
    ``MAX_NUDGES`` times, then counted as given up. A face whose measured gap to the spec shrank with its
    last move may go on for up to ``extra_tries`` more moves (default ``max_tries``): faces that are closing
    in are the cheap ones to finish.
    ``measured``: the labels and
    image of starting faces already rendered (by stream index), so they are not rendered again.
    """
    max_started = 4 * n + 16 if max_started is None else max_started
    extra_tries = max_tries if extra_tries is None else extra_tries
    duplicates = 0
    idx, z = draw(n)
    active = [Face(int(i), v.copy(), v.copy()) for i, v in zip(idx, z, strict=True)]
    started, rendered, gave_up = len(active), 0, 0
    unmet: Counter = Counter()
    delivered: list[Face] = []
    lost: list[Face] = []
    cal = calibration
    extra = 0 if cal is not None else max(0, calibration_faces - n)
    pool = None
    if extra:  # a few more random faces to calibrate on, rendered but never steered
        _, pool = (calibration_draw or draw)(extra)
    measured = measured or {}
    while active:
        fresh = [k for k, f in enumerate(active) if not (f.tries == 0 and f.index in measured)]
        latents = np.stack([f.latent for f in active])
        images: Any
        if len(fresh) < len(active) and pool is None and cal is not None:
            labels = np.stack([measured[f.index][0] for f in active]).astype(np.float64)
            have = [measured[f.index][1] for f in active]
            got_images = None
            if fresh:
                new_labels, got_images = measure(latents[fresh])
                rendered += len(fresh)
                labels[fresh] = new_labels
            images = None if any(im is None for k, im in enumerate(have) if k not in fresh) else [
                np.asarray(got_images[fresh.index(k)]) if k in fresh and got_images is not None else have[k]
                for k in range(len(active))]
        else:
            labels, images = measure(latents if pool is None else np.concatenate([latents, pool]))
            rendered += len(labels)
        if cal is None:
            cal = calibrate(spec, axes, names, latents if pool is None else np.concatenate([latents, pool]), labels)
            if check:
                check_feasible(spec, axes, cal)
        labels, pool = labels[: len(active)], None
        keep_on = []
        for k, (face, row) in enumerate(zip(active, labels, strict=True)):
            target = spec_of(face.index) if spec_of is not None else spec
            ok = target.met(row[None], names)[0]
            want = [list(names).index(c.feature) for c in target.conditions]
            face.labels = row
            face.image = None if images is None else np.asarray(images[k])
            if ok.all():
                if len(delivered) < n and accept is not None and not accept(face):
                    duplicates += 1
                    if face.nudges < MAX_NUDGES:  # it meets the spec: nudge it rather than start another face
                        held = list(dict.fromkeys([c.feature for c in target.conditions] + list(keep)))
                        face.last_good, face.last_labels = face.latent, row
                        face.latent = nudge(face.latent, axes, held, NUDGE * cal.spread, (face.index, face.nudges))
                        face.steps.append(Step({}, held, nudge=NUDGE * cal.spread))
                        face.nudges += 1
                        keep_on.append(face)
                        continue
                    gave_up += 1
                    lost.append(face)
                    continue
                if len(delivered) < n:
                    delivered.append(face)
                    if on_face is not None:
                        on_face(face)
                continue
            known = bool(np.isfinite(row[want]).all())
            gap = measured_gap(target, row, names, cal)
            closing = gap < face.gap and face.tries < max_tries + extra_tries
            face.gap = gap
            if face.tries >= max_tries and not closing:
                gave_up += 1
                lost.append(face)
                unmet.update(str(c) for c, good in zip(target.conditions, ok, strict=True) if not good)
                continue
            try:
                if known:
                    if face.steps and face.last_labels is not None:
                        face.gain = update_gain(face.gain, face.steps[-1], face.last_labels, row, target, names)
                    step = plan_step(target, ok, row, names, axes, cal, keep, face.gain)
                    face.last_good, face.last_labels = face.latent, row
                elif face.last_good is None:  # never read yet (a start the extractor cannot read): plan the move
                    # from the axes' models where it reads nothing
                    step = plan_step(target, ok, fill_unread(target, row, face.latent, names, axes, cal), names,
                                     axes, cal, keep, face.gain)
                else:  # the last move lost the face (the extractor cannot read it): take back half of it
                    last = face.steps.pop()
                    step = Step({k: v / 2 for k, v in last.moves.items()}, last.locks)
                    assert face.last_good is not None
                    face.latent = face.last_good
                face.latent = move(face.latent, axes, step.moves, step.locks)
            except AxesError:
                gave_up += 1
                lost.append(face)
                unmet.update(str(c) for c, good in zip(target.conditions, ok, strict=True) if not good)
                continue
            face.steps.append(step)
            face.tries += 1
            keep_on.append(face)
        active = keep_on
        limit = max_started if delivered else min(max_started, 2 * n + 16)  # a spec nobody meets stops early
        room = min(n - len(delivered) - len(active), limit - started)
        if room > 0:
            idx, z = draw(room)
            active += [Face(int(i), v.copy(), v.copy()) for i, v in zip(idx, z, strict=True)]
            started += len(idx)
    if not delivered:
        worst = ", ".join(f"{c} ({k} of {gave_up})" for c, k in unmet.most_common(3))
        raise SpecError(f"no face could be brought to meet {spec} in {started} tries; the conditions missed most: "
                        f"{worst}. Loosen them, or raise --max-tries")
    return Outcome(delivered, started, rendered, gave_up, unmet, cal, lost, duplicates)


def rejection(spec: Spec, names: Sequence[str], measure: Measure, draw: Draw, n: int, budget: int,
              batch: int = 256) -> tuple[int, int]:
    """The baseline: draw random faces until ``n`` meet the spec or ``budget`` are rendered; (found, rendered)."""
    found = rendered = 0
    while found < n and rendered < budget:
        k = min(batch, budget - rendered)
        _, z = draw(k)
        found += int(spec.holds(measure(z)[0], names).sum())
        rendered += k
    return found, rendered


__all__ = ["MAX_TRIES", "Calibration", "Face", "Outcome", "Step", "calibrate", "check_feasible", "describe",
           "fill_unread", "measured_gap", "nearest_draw", "plan_step", "predict", "reach", "rejection", "shortfall",
           "steer"]
