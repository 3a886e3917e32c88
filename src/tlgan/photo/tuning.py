"""Pivotal tuning (PTI, Roich et al. 2022): a copy of the generator that draws one photo's face exactly.

Inversion finds the latent whose picture is closest to the photo (the *pivot*),
but a generator cannot draw every face: the reconstruction is a look-alike.
``tune_pivot`` fine-tunes a copy of the generator's torch module so that the
pivot reproduces the photo's crop, while a locality regulariser keeps the
copy's pictures of other latents (some near the pivot, some anywhere) equal to
the original's. Edits that move the pivot along an axis then keep the person.

The result is a ``Tuning``: a weight delta per parameter (tuned - original),
the pivot, and what generator it belongs to (name, space, SHA-256), saved as a
safetensors file beside the ``.latent.npz`` (``save_tuning`` / ``load_tuning``;
no pickle). ``tuned_generator`` applies it to a generator and returns a new one
(the original is left as it was).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..generators import Generator
from ..invert import InversionError, check_identity, check_image, face_identity, generator_meta, pyramid_loss, space_frame, to_float
from ..safeio import atomic_write, read_tagged_safetensors

if TYPE_CHECKING:
    from ..pipeline import Editor

TUNING_FORMAT = 1
TUNING_SUFFIX = ".tuning.safetensors"
Progress = Callable[[int, int, float], Any]
RANDOM_CONSISTENCY = 0.5  # the consistency term's weight for random moves
#: ... and for the axes' own moves: at 4 a smile showed on the tuned face 0.9-1.9x as much as on generated
#: faces (portrait0, Grace Hopper); at 0.5 with random moves 0.2x, or the wrong way
EDIT_CONSISTENCY = 4.0


@dataclass
class Tuning:
    """A generator's weight delta for one photo: ``delta[name]`` = tuned - original parameter ``name``.

    ``pivot``: the latent the photo was inverted to (the generator's ``render`` takes it); ``meta``: the
    generator's identity (``generator_meta``) and the tuning's settings and stats.
    """

    delta: dict[str, torch.Tensor]
    pivot: np.ndarray
    meta: dict = field(default_factory=dict)

    def check_generator(self, generator: Generator, what: str = "tuning") -> None:
        """Refuse a generator (name, space, file SHA-256, shapes) other than the one this tuning was made for."""
        check_identity(self.meta, generator, what)
        params = dict(network_of(generator).named_parameters())
        for name, d in self.delta.items():
            if name not in params or tuple(params[name].shape) != tuple(d.shape):
                raise InversionError(f"{what} changes parameter {name!r} {tuple(d.shape)}, which generator "
                                     f"{generator.name!r} does not have with that shape: tune the photo again")

    def check_pivot(self, latent: np.ndarray, what: str = "tuning") -> None:
        """Refuse a latent other than the pivot this tuning was made for (a tuning only holds at its pivot)."""
        latent = np.asarray(latent, np.float32)
        if latent.shape != self.pivot.shape or not np.allclose(latent, self.pivot, atol=1e-5):
            raise InversionError(f"{what} was made for another inverted latent of the photo; invert and tune "
                                 "again (`tlgan invert PHOTO`)")


def tuned_generator(generator: Generator, tuning: Tuning | None) -> Generator:
    """A generator whose network is a copy of ``generator``'s with ``tuning``'s delta added (None: ``generator``)."""
    if tuning is None:
        return generator
    tuning.check_generator(generator)
    out = generator.copy()
    with torch.no_grad():
        for name, p in network_of(out).named_parameters():
            if name in tuning.delta:
                p.add_(tuning.delta[name].to(p.device, p.dtype))
    return out


def network_of(generator: Generator) -> nn.Module:
    """The generator's torch module (``Generator.network``); a clear error for one that has none."""
    net = generator.network()
    if net is None:
        raise InversionError(f"generator {generator.name!r} has no torch network to tune to the photo; "
                             "edit it with --fidelity off")
    return net


def locality_latents(generator: Generator, pivot: torch.Tensor, n: int, radius: float,
                     rng: torch.Generator) -> torch.Tensor:
    """``n`` latents for the locality regulariser: half at ``radius`` (in units of the space's typical norm)
    from the pivot toward random samples, half random samples (PTI's near and far), shaped like the pivot."""
    _centre, scale = space_frame(generator)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
    far = torch.from_numpy(generator.sample(n, seed)).to(pivot.device)
    if pivot.ndim == 2:  # w+: every layer the same sample
        far = far[:, None].expand(-1, pivot.shape[0], -1)
    typical = scale * math.sqrt(generator.latent_dim)
    step = far - pivot[None]
    norm = step.flatten(1).norm(dim=1).clamp_min(1e-6).reshape(-1, *([1] * (step.ndim - 1)))
    near = pivot[None] + radius * typical * step / norm
    k = n // 2
    return torch.cat([near[:k], far[k:]]).float()


def edit_moves(generator: Generator, pivot: torch.Tensor, n: int, length: float, rng: torch.Generator) -> torch.Tensor:
    """``n`` latents ``length`` latent units from the pivot in random directions (every w+ layer alike)."""
    d = torch.randn(n, pivot.shape[-1], generator=rng).to(pivot.device)
    d = length * d / d.norm(dim=1, keepdim=True)
    if pivot.ndim == 2:
        d = d[:, None].expand(-1, pivot.shape[0], -1)
    return pivot[None] + d


def tune_pivot(generator: Generator, crop: np.ndarray, pivot: np.ndarray, *, steps: int = 120, lr: float = 1e-3,
               locality_weight: float = 1.0, locality_radius: float = 1.0, locality_every: int = 2,
               locality_batch: int = 4, consistency_weight: float | None = None, consistency_step: float = 2.0,
               identity_weight: float = 0.1, seed: int = 0, edits: np.ndarray | None = None,
               progress: Progress | None = None) -> Tuning:
    """Fine-tune a copy of ``generator``'s network so that ``pivot`` draws the aligned ``crop`` (uint8 H, W, 3).

    Loss: L1 over a 3-level pyramid plus L2 on the pixels, plus ``identity_weight`` x (1 - cosine of faceres
    descriptors) of the pivot's picture against the crop; every ``locality_every`` steps,
    ``locality_weight`` x the L2 + L1 difference between the copy's and the original's pictures of
    ``locality_batch`` latents near (``locality_radius`` typical norms away) and far from the pivot; and
    ``consistency_weight`` x the L1 difference between how the copy's and the original's pictures change
    for random moves of length ``consistency_step`` (latent units, as an edit's) from the pivot, so an edit
    changes the tuned face as it changes the generator's own (no ghost of the photo fading in and out).
    ``consistency_weight`` None: ``RANDOM_CONSISTENCY`` for random moves, ``EDIT_CONSISTENCY`` with ``edits``.
    ``edits`` (K, *latent shape): the latents the user's edits will reach (e.g. the pivot moved along each
    axis, both ways); when given, the consistency term holds the change toward ``locality_batch`` of them
    per step instead of random moves. Random directions barely constrain the few an edit takes: without
    them the tuned face's smile or age moved a fifth as much as the generator's, or the wrong way.
    Adam, ``steps`` steps at ``lr``. The network stays in eval mode (batch-norm statistics fixed).
    ``progress(step, steps, loss)`` may return False to stop early.
    """
    if consistency_weight is None:
        consistency_weight = EDIT_CONSISTENCY if edits is not None and len(edits) else RANDOM_CONSISTENCY
    if steps < 0 or lr <= 0 or locality_weight < 0 or identity_weight < 0 or consistency_weight < 0 or locality_every < 1:
        raise InversionError("tuning steps and weights must be >= 0, lr > 0 and locality_every >= 1")
    t0 = time.perf_counter()
    crop = check_image(crop, "crop")
    dev = generator.device
    target = to_float(crop, int(generator.resolution), dev)
    z = generator.check_latents(pivot).to(dev)
    tuned = generator.copy()
    net = network_of(tuned).eval()
    for p in net.parameters():
        p.requires_grad_(True)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    ident = face_identity(str(dev)) if identity_weight > 0 else None
    target_desc = None
    if ident is not None:
        with torch.no_grad():
            target_desc = ident(target)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    rng = torch.Generator().manual_seed(seed)
    fixed_moves, fixed_change = None, None
    if edits is not None and len(edits):
        fixed_moves = generator.check_latents(np.asarray(edits, np.float32)).to(dev)
        with torch.no_grad():  # the original generator's change toward each edit, once
            fixed_change = generator.synthesize(fixed_moves) - generator.synthesize(z)
    losses: list[float] = []
    with torch.enable_grad():
        for step in range(steps):
            recon = tuned.synthesize(z)
            loss = pyramid_loss(recon, target, 3, "l1") + F.mse_loss(recon, target)
            if ident is not None and target_desc is not None:
                loss = loss + identity_weight * (1 - F.cosine_similarity(ident(recon), target_desc).mean())
            if locality_weight and step % locality_every == 0:
                zr = locality_latents(generator, z[0], locality_batch, locality_radius, rng)
                with torch.no_grad():
                    ref = generator.synthesize(zr)
                mine = tuned.synthesize(zr)
                loss = loss + locality_weight * (F.mse_loss(mine, ref) + (mine - ref).abs().mean())
            if consistency_weight and step % locality_every == 0:
                # small moves from the pivot change the tuned picture as they change the original's
                if fixed_moves is not None and fixed_change is not None:
                    pick = torch.randperm(len(fixed_moves), generator=rng)[:locality_batch].to(dev)
                    moves, ref_change = fixed_moves[pick], fixed_change[pick]
                else:
                    moves = edit_moves(generator, z[0], locality_batch, consistency_step, rng)
                    with torch.no_grad():
                        ref_change = generator.synthesize(moves) - generator.synthesize(z)
                change = tuned.synthesize(moves) - recon
                loss = loss + consistency_weight * (change - ref_change).abs().mean()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise InversionError(f"the tuning loss became {value} at step {step}; try a smaller lr")
            losses.append(value)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress is not None and progress(step + 1, steps, value) is False:
                break
    with torch.no_grad():
        delta = {k: (v.detach() - before[k]).cpu().contiguous() for k, v in net.named_parameters()}
        final = tuned.synthesize(z)
        err = float((Generator.postprocess(final).float() - Generator.postprocess(target).float()).abs().mean())
    meta = dict(generator_meta(generator), steps=len(losses), seconds=round(time.perf_counter() - t0, 2),
                settings={"lr": lr, "locality_weight": locality_weight, "consistency_weight": consistency_weight,
                          "consistency_step": consistency_step, "locality_radius": locality_radius,
                          "locality_every": locality_every, "locality_batch": locality_batch,
                          "identity_weight": identity_weight, "seed": seed,
                          "edit_latents": 0 if edits is None else len(edits)},
                pixel_mae=round(err, 3), first_loss=losses[0] if losses else None,
                last_loss=losses[-1] if losses else None)
    return Tuning(delta, np.asarray(pivot, np.float32), meta)


# --------------------------------------------------------------------------- files


def tuning_path(latent_path: str | Path) -> Path:
    """``NAME.tuning.safetensors`` beside ``NAME.latent.npz``."""
    p = Path(latent_path)
    stem = p.name[: -len(".latent.npz")] if p.name.endswith(".latent.npz") else p.stem
    return p.with_name(stem + TUNING_SUFFIX)


def save_tuning(path: str | Path, tuning: Tuning) -> Path:
    """One safetensors file: ``delta.NAME`` tensors, the ``pivot``, and a JSON header ``tlgan_tuning``."""
    from safetensors.torch import save_file

    tensors = {f"delta.{k}": v.detach().cpu().float().contiguous() for k, v in tuning.delta.items()}
    tensors["pivot"] = torch.from_numpy(np.ascontiguousarray(tuning.pivot, np.float32))
    doc = {"format": TUNING_FORMAT, "tlgan_version": __version__, **tuning.meta}

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata={"tlgan_tuning": json.dumps(doc)})

    return atomic_write(Path(path), write)


def load_tuning(path: str | Path, generator: Generator | None = None) -> Tuning:
    """Read a tuning file; with ``generator``, refuse one made for another generator (name, space, SHA-256)."""
    doc, tensors = read_tagged_safetensors(path, "tlgan_tuning", "tuning", "make one with `tlgan invert PHOTO`",
                                           InversionError)
    if "pivot" not in tensors:
        raise InversionError(f"{path} is a tlgan tuning without its pivot latent; invert and tune the photo again")
    if doc.get("format") != TUNING_FORMAT:
        raise InversionError(f"{path} has tuning format {doc.get('format')}; this tlgan reads {TUNING_FORMAT}: "
                             "invert the photo again")
    meta = {k: v for k, v in doc.items() if k not in ("format", "tlgan_version")}
    delta = {k[len("delta."):]: v for k, v in tensors.items() if k.startswith("delta.")}
    tuning = Tuning(delta, tensors["pivot"].numpy(), meta)
    if generator is not None:
        tuning.check_generator(generator, f"tuning file {path}")
    return tuning


def axis_edits(editor: Editor, pivot: np.ndarray, amounts: tuple[float, ...] = (-2.0, -1.0, 1.0, 2.0)) -> np.ndarray:
    """The latents an explorer's sliders reach from ``pivot``: ``editor`` (a ``pipeline.Editor``) moving it
    along each of its axes by each of ``amounts``, stacked (K, *pivot shape); for ``tune_pivot(edits=...)``."""
    return np.stack([editor.edit(pivot, {name: a}, ()) for name in editor.axes.names for a in amounts])
