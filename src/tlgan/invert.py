"""Inversion: find the latent whose picture is a given (aligned) face crop, so a photo can be edited.

Two parts, usable alone or together:

- an **encoder** (``train_encoder`` -> ``Encoder``): a small CNN from image to
  latent, trained on the generator's own samples (latent known), one forward
  pass per photo: a fast first guess;
- **optimisation** (``invert``): Adam on the latent in the generator's space,
  from the encoder's guess or the space's centre (zero z / ``w_avg``), against a
  pixel loss on an image pyramid, an identity loss (1 - cosine of faceres
  descriptors) and a prior that keeps the latent typical.

``reconstruction_quality`` measures how close a reconstruction is (pixels,
identity, and the extractor's labels of both); ``save_inversion`` /
``load_inversion`` keep the result in a ``.latent.npz`` file.

The input is an ALIGNED face crop (uint8 H, W, 3, any size), framed the way the
generator draws faces (``generator.framing``; see ``tlgan.align``); it is
resized to the generator's resolution.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .safeio import atomic_write, read_tagged_safetensors
from .bounds import MAX_EPOCHS, MAX_N, check_number, check_range
from .errors import InputError
from .generators import Generator

ENCODER_FORMAT = 1
INVERSION_FORMAT = 1
Progress = Callable[[int, int, float], Any]


class InversionError(InputError):
    """A bad input image, or an encoder / latent file that does not fit the generator."""


# --------------------------------------------------------------------------- images


def check_image(image: Any, what: str = "image") -> np.ndarray:
    """One RGB image as uint8 (H, W, 3); clear errors for anything else (NaN, floats, wrong shape)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise InversionError(f"{what} must be a numpy array or torch tensor (H, W, 3) uint8, got {type(image).__name__}")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[-1] != 3:
        hint = " (RGBA: drop the alpha channel)" if image.ndim == 3 and image.shape[-1] == 4 else ""
        raise InversionError(f"{what} must have shape (H, W, 3), got {image.shape}{hint}")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
            raise InversionError(f"{what} contains NaN or infinite values")
        raise InversionError(f"{what} must be uint8 (0..255), got {image.dtype}; for floats in 0..1 use "
                             "(x * 255).round().astype(np.uint8)")
    if min(image.shape[:2]) < 8:
        raise InversionError(f"{what} is {image.shape[1]}x{image.shape[0]} pixels; give a face crop of at least 8x8")
    return image


def to_float(images: np.ndarray | torch.Tensor, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float (N, 3, size, size) in [-1, 1], resized (antialiased when shrinking)."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))  # a copy: inputs may be read-only
    if x.ndim == 3:
        x = x[None]
    x = x.to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
    if x.shape[-2:] != (size, size):
        shrink = x.shape[-2] > size or x.shape[-1] > size
        x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return x


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC numpy."""
    return Generator.postprocess(x.detach()).cpu().numpy()


@contextlib.contextmanager
def frozen(module: nn.Module | None) -> Iterator[None]:
    """The module's parameters stop requiring gradients for the duration (only the latent is optimised)."""
    params = [p for p in module.parameters() if p.requires_grad] if isinstance(module, nn.Module) else []
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# --------------------------------------------------------------------------- the space's frame


def space_frame(generator: Generator) -> tuple[torch.Tensor, float]:
    """Centre and per-coordinate scale of the bound space: (0, 1) in z, (``w_avg``, typical / sqrt(D)) in w / w+.

    Latents are optimised and predicted as ``(latent - centre) / scale``, so a step
    size or a regression target means the same in every space.
    """
    d = generator.latent_dim
    if generator.space == "z":
        return torch.zeros(d), 1.0
    typical = generator.describe_space("w").typical_norm
    return generator.space_centre(), float(typical / math.sqrt(d))


def latent_prior(u: torch.Tensor, space: str) -> torch.Tensor:
    """How atypical a normalised latent ``u`` (N, D) or (N, num_ws, D) is (0 for a typical one).

    z: ``(|z| - sqrt(D))^2 / D`` (N(0, I) codes live on that shell); w: squared
    distance from ``w_avg`` in units of the space's typical norm; w+: that, per
    layer, plus the spread of the layers' codes around their mean.
    """
    d = u.shape[-1]
    if space == "z":
        norm = torch.sqrt((u * u).sum(-1) + 1e-8)
        return ((norm - math.sqrt(d)) ** 2 / d).mean()
    dist = (u * u).sum(-1) / d  # (|w - w_avg| / typical)^2
    if space == "w":
        return dist.mean()
    spread = ((u - u.mean(1, keepdim=True)) ** 2).sum(-1) / d
    return dist.mean() + spread.mean()


# --------------------------------------------------------------------------- encoder


class EncoderNet(nn.Module):
    """Image (N, 3, S, S) in [-1, 1] -> normalised latent (N, D): stride-2 convs to 4x4, then a linear head."""

    def __init__(self, latent_dim: int, input_size: int = 64, width: int = 32) -> None:
        super().__init__()
        if input_size < 8 or input_size & (input_size - 1):
            raise InversionError(f"encoder input size must be a power of two >= 8, got {input_size}")
        layers: list[nn.Module] = []
        c_in, c, size = 3, width, input_size
        while size > 4:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)]
            c_in, c, size = c, min(c * 2, 512), size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 16, 512), nn.LeakyReLU(0.2, True),
                                  nn.Linear(512, latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Encoder:
    """A trained image -> latent encoder for one generator and space.

    ``meta``: ``generator``, ``generator_sha256``, ``space``, ``latent_dim``,
    ``num_ws``, ``resolution`` (the generator's), ``input_size``, ``width``, and
    ``stats`` (training: samples, epochs, seconds; held-out: latent cosine,
    pixel error of the reconstruction).
    """

    net: EncoderNet
    centre: torch.Tensor
    scale: float
    meta: dict

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    def check_generator(self, generator: Generator, what: str = "encoder") -> None:
        """Refuse a generator or space other than the one this encoder was trained for."""
        check_identity(self.meta, generator, what)

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """uint8 images (N, H, W, 3) or one (H, W, 3) -> latents (N, D) in the generator's space."""
        images = np.asarray(images.cpu() if isinstance(images, torch.Tensor) else images)
        one = images.ndim == 3
        if one:
            images = check_image(images)[None]
        elif images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise InversionError(f"encoder takes uint8 images (N, H, W, 3), got {images.shape} {images.dtype}")
        self.net.eval()
        dev = next(self.net.parameters()).device
        out = [self.net(to_float(images[i:i + batch_size], self.input_size, dev)).cpu()
               for i in range(0, len(images), batch_size)]
        u = torch.cat(out) if out else torch.zeros(0, int(self.meta["latent_dim"]))
        return (self.centre + self.scale * u).numpy()

    def save(self, path: str | Path) -> Path:
        """One safetensors file: the network's tensors and a JSON header (``tlgan_encoder``); no pickle."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["centre"] = self.centre.contiguous()
        doc = {"format": ENCODER_FORMAT, "tlgan_version": __version__, "scale": self.scale, **self.meta}
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"tlgan_encoder": json.dumps(doc)}))

    @classmethod
    def load(cls, path: str | Path, generator: Generator | None = None, device: str | None = None) -> "Encoder":
        """Read an encoder file; with ``generator``, refuse one trained for another generator or space."""
        doc, tensors = read_tagged_safetensors(path, "tlgan_encoder", "encoder",
                                               "train one with `tlgan train-encoder RUN`", InversionError)
        if doc.get("format") != ENCODER_FORMAT:
            raise InversionError(f"{path} has encoder format {doc.get('format')}; this tlgan reads format "
                                 f"{ENCODER_FORMAT}: train the encoder again")
        meta = {k: v for k, v in doc.items() if k not in ("format", "tlgan_version", "scale")}
        net = EncoderNet(int(meta["latent_dim"]), int(meta["input_size"]), int(meta["width"]))
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        enc = cls(net.eval(), tensors["centre"].float(), float(doc["scale"]), meta)
        if device is not None:
            enc.net.to(device)
        if generator is not None:
            enc.check_generator(generator, f"encoder {path}")
        return enc


def generator_meta(generator: Generator) -> dict:
    """What an encoder or latent file records of the generator it belongs to."""
    return {"generator": generator.name, "generator_sha256": generator.sha256, "space": generator.space,
            "latent_dim": int(generator.latent_dim), "num_ws": int(generator.num_ws),
            "resolution": int(generator.resolution)}


def check_identity(meta: dict, generator: Generator, what: str) -> None:
    """Refuse ``meta`` (of an encoder or latent file) when it names another generator, space or shape."""
    theirs = f"generator {meta.get('generator')!r} in space {meta.get('space')}"
    ours = f"generator {generator.name!r} in space {generator.space}"
    if meta.get("generator") != generator.name or meta.get("space") != generator.space:
        raise InversionError(f"{what} belongs to {theirs}, not to {ours}; use the matching generator "
                             f"(--space {meta.get('space')}) or make a new one for this generator")
    sha = meta.get("generator_sha256")
    if sha and generator.sha256 and sha != generator.sha256:
        raise InversionError(f"{what} was made with another file of {theirs} (sha256 {sha[:12]}..., this one "
                             f"{generator.sha256[:12]}...)")
    for key in ("latent_dim", "num_ws", "resolution"):
        if key in meta and int(meta[key]) != int(getattr(generator, key)):
            raise InversionError(f"{what} has {key} {meta[key]}, the generator {getattr(generator, key)}")


def _training_pairs(source: Any, generator: Generator, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(latents (N, D), images (N, R, R, 3) uint8 or None = render them) from a run, arrays or the generator."""
    from .sample import Run, open_run

    if source is None:
        return generator.sample(n, seed), None
    if isinstance(source, (str, Path)):
        source = open_run(source)
    if isinstance(source, Run):
        if source.generator != generator.name or source.latent_space != generator.space:
            raise InversionError(f"run {source.path} was sampled from generator {source.generator!r} in space "
                                 f"{source.latent_space}, not {generator.name!r} in {generator.space}")
        latents = source.latents
        if source.has_images:
            m = min(len(latents), source.done("images"))
            return latents[:m], np.asarray(source.images[:m])
        return latents, None
    latents, images = source
    latents = np.asarray(latents, np.float32)
    if images is not None:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) != len(latents):
            raise InversionError(f"training images must be uint8 (N, H, W, 3) with N = {len(latents)} latents, "
                                 f"got {images.shape} {images.dtype}")
    return latents, images


def train_encoder(source: Any, generator: Generator, *, n: int = 20000, seed: int = 1, epochs: int = 6,
                  batch_size: int = 128, lr: float = 2e-3, input_size: int | None = None, width: int = 16,
                  held_out: float = 0.05, pixel_weight: float = 1.0, progress: Progress | None = None,
                  log: Callable[[str], None] | None = None) -> Encoder:
    """Train an encoder on (latent, image) pairs of ``generator`` in its bound space.

    ``source``: a run folder (``Run`` or path; its cached images if it has them,
    else images rendered from its latents), a pair of arrays ``(latents, images
    or None)``, or None to draw ``n`` fresh latents from ``seed``. The loss is
    the mean squared error of the normalised latent plus ``pixel_weight`` times
    the L1 pixel error of the generator's picture of the prediction (the
    generator ignores some latent directions; the pixel term says which
    matter). The last ``held_out`` of the pairs are kept out of training and
    give ``meta['stats']``: the cosine between predicted and true latents
    (relative to the space's centre) and the reconstructions' pixel error.
    ``progress(epoch, epochs, loss)`` may return False to stop early.
    """
    check_range(n, "-n", 20, MAX_N, "training pairs")
    check_range(epochs, "--epochs", 1, MAX_EPOCHS)
    t0 = time.perf_counter()
    latents, images = _training_pairs(source, generator, n, seed)
    if latents.ndim != 2 or latents.shape[1] != generator.latent_dim:
        raise InversionError(f"training latents must be (N, {generator.latent_dim}), got {latents.shape}")
    if len(latents) < 20:
        raise InversionError(f"an encoder needs at least 20 training pairs, got {len(latents)}")
    if images is None:
        images = generator.render(latents).cpu().numpy()
    size = input_size or min(64, int(generator.resolution))
    dev = generator.device
    centre, scale = space_frame(generator)
    u_all = (torch.from_numpy(latents).float() - centre) / scale
    n_test = max(8, int(len(latents) * held_out))
    n_train = len(latents) - n_test
    images_t = torch.from_numpy(np.ascontiguousarray(images))  # kept uint8; converted per batch
    if not differentiable(generator):
        pixel_weight = 0.0
    gen_size = int(generator.resolution)
    torch.manual_seed(seed)
    net = EncoderNet(generator.latent_dim, size, width).to(dev)
    steps = epochs * math.ceil(n_train / batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1), pct_start=0.15)
    gnet = generator.network()
    c_dev = centre.to(dev)
    done_epochs = 0
    with frozen(gnet):
        for epoch in range(epochs):
            net.train()
            perm = torch.randperm(n_train)
            total = 0.0
            for i in range(0, n_train, batch_size):
                idx = perm[i:i + batch_size]
                x, u = to_float(images_t[idx], size, dev), u_all[idx].to(dev)
                pred = net(x)
                loss = F.mse_loss(pred, u)
                if pixel_weight:
                    recon = generator.synthesize(c_dev + scale * pred)
                    target = x if size == gen_size else to_float(images_t[idx], gen_size, dev)
                    loss = loss + pixel_weight * (recon - target).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            done_epochs = epoch + 1
            mean = total / n_train
            if log:
                log(f"epoch {epoch + 1}/{epochs}: loss {mean:.4f} ({time.perf_counter() - t0:.0f} s)")
            if progress is not None and progress(epoch + 1, epochs, mean) is False:
                break
    net.eval()
    meta = dict(generator_meta(generator), input_size=size, width=width)
    enc = Encoder(net, centre, scale, meta)
    test_latents, test_images = latents[n_train:], images[n_train:]
    pred = enc.predict(test_images)
    stats = {"train_pairs": n_train, "held_out_pairs": n_test, "epochs": done_epochs,
             "seconds": round(time.perf_counter() - t0, 1), "pixel_weight": pixel_weight,
             **encoder_accuracy(enc, generator, test_latents, test_images, pred)}
    enc.meta["stats"] = stats
    return enc


def differentiable(generator: Generator) -> bool:
    """Whether gradients flow from the picture back to a code of the bound space.

    Style families run their mapping network under inference mode, so their z
    space is not differentiable here: invert those in w or w+.
    """
    return not (generator.space == "z" and generator.family is not None and generator.family.style)


def encoder_accuracy(enc: Encoder, generator: Generator, latents: np.ndarray, images: np.ndarray,
                     pred: np.ndarray | None = None) -> dict:
    """Held-out accuracy: cosine of predicted vs true latent (about the space's centre), pixel error of G(pred)."""
    pred = enc.predict(images) if pred is None else pred
    c = enc.centre.numpy()
    a, b = pred - c, np.asarray(latents, np.float32) - c
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    recon = generator.render(pred).cpu().numpy()
    target = images if images.shape[1:3] == recon.shape[1:3] else to_uint8(to_float(images, recon.shape[1]))
    mae = np.abs(recon.astype(np.float32) - target.astype(np.float32)).mean(axis=(1, 2, 3))
    return {"latent_cosine": round(float(cos.mean()), 4), "latent_cosine_p10": round(float(np.percentile(cos, 10)), 4),
            "pixel_mae": round(float(mae.mean()), 2)}


def load_encoder(path: str | Path, generator: Generator | None = None, device: str | None = None) -> Encoder:
    """``Encoder.load``: read an encoder file, checking it belongs to ``generator``."""
    return Encoder.load(path, generator, device)


# --------------------------------------------------------------------------- identity (the extractor's descriptor)


@functools.lru_cache(maxsize=4)
def face_identity(device: str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """The identity descriptor the ``faces`` extractor declares, as a differentiable function of float images in
    [-1, 1] (N, 3, H, W) -> (N, K) (see ``Extractor.differentiable_descriptor``)."""
    from .extractors.faces import FacesExtractor

    return FacesExtractor.differentiable_descriptor(device)


def identity_similarity(a: np.ndarray, b: np.ndarray, size: int | None = None) -> np.ndarray:
    """Cosine of identity descriptors (``face_identity``) of uint8 images a and b (N, H, W, 3) or (H, W, 3), at ``b``'s size."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 3:
        a, b = a[None], b[None]
    size = size or b.shape[1]
    with torch.no_grad():
        ident = face_identity("cpu")
        da, db = ident(to_float(a, size)), ident(to_float(b, size))
    return F.cosine_similarity(da, db).numpy()


# --------------------------------------------------------------------------- optimisation


@dataclass
class Inversion:
    """The result of ``invert``.

    ``latent``: (D,), or (num_ws, D) in w+ (what ``generator.render`` takes);
    ``reconstruction``: its picture, uint8 (R, R, 3); ``target``: the crop as
    given (uint8); ``losses``: total loss per step; ``seconds``: wall time;
    ``steps``: steps run (fewer than asked when cancelled); ``start``:
    ``encoder`` or ``mean``; ``quality``: filled by ``reconstruction_quality``
    when asked; ``transform``: for a photo, the 3x3 map from crop pixels to
    photo pixels (``tlgan.align``), so an edit can be pasted back.
    """

    latent: np.ndarray
    reconstruction: np.ndarray
    target: np.ndarray
    losses: list[float]
    seconds: float
    steps: int
    cancelled: bool
    generator: str
    space: str
    generator_sha256: str | None = None
    start: str = "mean"
    quality: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    transform: np.ndarray | None = None


def pyramid_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3, kind: str = "l1") -> torch.Tensor:
    """Mean over ``scales`` halvings of the L1 (or L2) difference of two NCHW images."""
    total = x.new_zeros(())
    for s in range(scales):
        if s:
            if min(x.shape[-2:]) < 2:
                break
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        d = x - y
        total = total + (d.abs().mean() if kind == "l1" else (d * d).mean())
    return total / scales


def invert(generator: Generator, image: np.ndarray | torch.Tensor, encoder: Encoder | None = None, *,
           steps: int = 200, lr: float = 0.05, pixel: str = "l1", scales: int = 3,
           identity_weight: float = 0.3, prior_weight: float = 0.05, init: np.ndarray | None = None,
           progress: Progress | None = None, seed: int = 0) -> Inversion:
    """Find the latent in the generator's space whose picture matches an aligned face crop.

    Starts from ``init``, else the encoder's guess, else the space's centre
    (``w_avg``, w+ with the same code on every layer; in z, zero plus
    N(0, 0.1^2) noise from ``seed``: at exactly zero the DCGAN's first layer is
    all off and the gradient vanishes), then runs
    ``steps`` of Adam (cosine-decayed ``lr``, in units of the space's
    per-coordinate scale) on: the ``pixel`` (l1 / l2) loss over ``scales``
    levels of an image pyramid, ``identity_weight`` x (1 - cosine of the faceres
    descriptors of target and reconstruction; 0 skips faceres, which is most of
    the time per step), and ``prior_weight`` x ``latent_prior``.
    ``progress(step, steps, loss)`` is called after every step; returning
    False cancels and the best latent so far is returned. ``steps=0`` returns
    the start. The latent returned is the one with the lowest loss seen.
    """
    if pixel not in ("l1", "l2"):
        raise InversionError(f"pixel loss must be 'l1' or 'l2', got {pixel!r}")
    check_range(steps, "--steps", 0, 100_000, "optimisation steps")
    check_number(identity_weight, "--identity-weight", 0, 1e6)  # NaN is refused, not quietly taken as 0
    check_number(prior_weight, "prior_weight", 0, 1e6)
    if scales < 1:
        raise InversionError("scales must be >= 1")
    if not differentiable(generator):
        raise InversionError(f"generator {generator.name!r} maps z through its mapping network without gradients; "
                             "invert in its w or w+ space (load it with space='w' or 'w+')")
    t0 = time.perf_counter()
    crop = check_image(image)
    dev = generator.device
    res = int(generator.resolution)
    target = to_float(crop, res, dev)
    centre, scale = space_frame(generator)
    centre = centre.to(dev)
    wplus = generator.space == "w+"
    start = "mean"
    if init is not None:
        code = generator.check_latents(init)[0].to(dev)
        start = "given"
    elif encoder is not None:
        encoder.check_generator(generator)
        code = torch.from_numpy(encoder.predict(crop)[0]).to(dev)
        start = "encoder"
    elif generator.space == "z":  # zero z is a dead point of the DCGAN (every first-layer unit is off)
        g = torch.Generator().manual_seed(seed)
        code = centre + 0.1 * torch.randn(generator.latent_dim, generator=g).to(dev)
    else:
        code = centre.clone()
    if wplus and code.ndim == 1:
        code = code[None].expand(generator.num_ws, -1)
    u = ((code - centre) / scale)[None].clone().requires_grad_(True)

    ident = face_identity(str(dev)) if identity_weight > 0 else None
    target_desc = None
    if ident is not None:
        with torch.no_grad():
            target_desc = ident(target)

    opt = torch.optim.Adam([u], lr=lr, betas=(0.9, 0.99))
    losses: list[float] = []
    best_loss, best_u = math.inf, u.detach().clone()
    cancelled = False
    gnet = generator.network()

    def loss_of(u: torch.Tensor) -> torch.Tensor:
        recon = generator.synthesize(centre + scale * u)
        loss = pyramid_loss(recon, target, scales, pixel)
        if ident is not None and target_desc is not None:
            loss = loss + identity_weight * (1 - F.cosine_similarity(ident(recon), target_desc).mean())
        if prior_weight:
            loss = loss + prior_weight * latent_prior(u, generator.space)
        return loss

    with frozen(gnet), torch.enable_grad():
        for step in range(steps):
            for group in opt.param_groups:  # short warm-up, then cosine decay
                ramp = min(1.0, (step + 1) / max(1, steps * 0.05))
                group["lr"] = lr * ramp * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = loss_of(u)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise InversionError(f"the loss became {value} at step {step}; try a smaller lr")
            losses.append(value)
            if value < best_loss:
                best_loss, best_u = value, u.detach().clone()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress is not None and progress(step + 1, steps, value) is False:
                cancelled = True
                break
        if steps and not cancelled:  # the last update has not been scored yet
            with torch.no_grad():
                value = float(loss_of(u))
            if value < best_loss:
                best_loss, best_u = value, u.detach().clone()

    latent = (centre + scale * best_u)[0]
    recon = generator.render(latent.detach()).cpu().numpy()[0]
    return Inversion(latent.detach().cpu().numpy().astype(np.float32), recon, crop, losses,
                     round(time.perf_counter() - t0, 3), len(losses), cancelled, generator.name, generator.space,
                     generator.sha256, start,
                     settings={"steps": steps, "lr": lr, "pixel": pixel, "scales": scales,
                               "identity_weight": identity_weight, "prior_weight": prior_weight,
                               "best_loss": best_loss if math.isfinite(best_loss) else None})


# --------------------------------------------------------------------------- quality


def reconstruction_quality(target: np.ndarray, recon: np.ndarray, extractor: Any = None,
                           identity: bool = True) -> dict:
    """How close a reconstruction is to its target crop.

    ``pixel_mae`` (mean absolute error, 0..255) and ``psnr`` (dB) at the
    reconstruction's size (the target is resized to it); ``identity``: cosine
    of faceres descriptors of both at that size (1 = same descriptor; needs the
    face weights; ``identity=False`` skips it); with an ``extractor``,
    ``labels``: ``{feature: {"photo": v, "reconstruction": v}}`` (NaN where it
    found no face).
    """
    recon = check_image(recon, "reconstruction")
    target = check_image(target, "target")
    size = recon.shape[0]
    t_small = target if target.shape[:2] == recon.shape[:2] else to_uint8(to_float(target, size))[0]
    diff = t_small.astype(np.float64) - recon.astype(np.float64)
    mse = float((diff ** 2).mean())
    out: dict[str, Any] = {"pixel_mae": round(float(np.abs(diff).mean()), 3),
                           "psnr": round(10 * math.log10(255.0 ** 2 / mse), 3) if mse > 0 else float("inf")}
    if identity:
        out["identity"] = round(float(identity_similarity(t_small, recon)[0]), 4)
    if extractor is not None:
        labels = extractor(np.stack([t_small, recon]))
        out["labels"] = {f: {"photo": float(a), "reconstruction": float(b)}
                         for f, a, b in zip(extractor.feature_names, labels[0], labels[1])}
    return out


# --------------------------------------------------------------------------- files


def save_inversion(path: str | Path, inversion: Inversion) -> Path:
    """Write ``photo.latent.npz``: latent, space, generator (name, sha256), crop, reconstruction, quality, losses.

    Plain arrays and one JSON string (read back with ``allow_pickle=False``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": INVERSION_FORMAT, "tlgan_version": __version__, "generator": inversion.generator,
            "generator_sha256": inversion.generator_sha256, "space": inversion.space,
            "latent_shape": list(inversion.latent.shape), "seconds": inversion.seconds, "steps": inversion.steps,
            "cancelled": inversion.cancelled, "start": inversion.start, "quality": inversion.quality,
            "settings": inversion.settings}
    arrays: dict[str, Any] = {"latent": inversion.latent.astype(np.float32), "crop": inversion.target,
              "reconstruction": inversion.reconstruction, "losses": np.asarray(inversion.losses, np.float32),
              "meta": np.array(json.dumps(meta, allow_nan=True))}
    if inversion.transform is not None:
        arrays["transform"] = np.asarray(inversion.transform)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, write)


def load_inversion(path: str | Path, generator: Generator | None = None) -> Inversion:
    """Read a ``.latent.npz``; with ``generator``, refuse a file of another generator, space or latent shape."""
    path = Path(path)
    if not path.exists():
        raise InversionError(f"latent file {path} does not exist; make one with `tlgan invert PHOTO -o {path}`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise InversionError(f"{path} is not a readable .npz latent file: {e}") from e
    if "meta" not in arrays or "latent" not in arrays:
        raise InversionError(f"{path} is an .npz file but not a tlgan inverted latent (no 'meta'/'latent')")
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != INVERSION_FORMAT:
        raise InversionError(f"{path} has latent format {meta.get('format')}; this tlgan reads {INVERSION_FORMAT}")
    inv = Inversion(arrays["latent"], arrays["reconstruction"], arrays["crop"], arrays["losses"].tolist(),
                    meta["seconds"], meta["steps"], meta["cancelled"], meta["generator"], meta["space"],
                    meta.get("generator_sha256"), meta.get("start", "mean"), meta.get("quality", {}),
                    meta.get("settings", {}), arrays.get("transform"))
    if generator is not None:
        check_identity({"generator": inv.generator, "space": inv.space, "generator_sha256": inv.generator_sha256},
                       generator, f"latent file {path}")
        try:
            generator.check_latents(inv.latent)
        except ValueError as e:
            raise InversionError(f"latent file {path}: {e}") from e
    return inv
