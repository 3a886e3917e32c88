"""Step 3 on a Ray cluster: the same run folder, rendered and labelled by many workers.

The driver (the process that runs ``tlgan sample --ray``) owns the run folder
and is its only reader and writer: it creates the run as a local run would
(all latents drawn from the seed), cuts the samples the folder still lacks into
the run's own chunks, sends each chunk's z (or cached images, for
``relabel``) to a worker, and stores what comes back with the same
:class:`~tlgan.sample.ChunkWriter` the local loop uses. So a Ray run and a
local run of the same seed hold the same z, images and labels, and resuming is
the local mechanism: rerun the command.

Workers are Ray actors (Ray Core, not Ray Data: one writer on the driver needs
no read tasks, so there is no task pool to starve) that load the generator and
extractor once, one per GPU, or one per CPU slot when the cluster has no GPU,
with the batch sizes their device gets locally. A killed worker is restarted
by Ray and its chunk retried; a worker lost for good gives its chunks to the
others; a killed driver leaves a folder that the same command finishes.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import TLGANError

if TYPE_CHECKING:
    from .extractors import Extractor
    from .generators import Generator
    from .sample import Run

#: what the driver passes on to workers from its environment: plugin modules and where the weights live
FORWARDED_ENV = ("TLGAN_PLUGINS", "TLGAN_HOME")
#: chunks queued per worker, so a worker never waits for the driver to hand it the next one
IN_FLIGHT_PER_WORKER = 2
#: how often Ray restarts one worker (a killed process, a lost node) and retries its chunk
MAX_RESTARTS = 3


class RayError(TLGANError, RuntimeError):
    """Ray is missing, the cluster cannot be reached, or it cannot run the workers asked for."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayError("--ray needs Ray, which is not installed: pip install 'tlgan[ray]'") from e
    return ray


def connect(address: str | None = None) -> None:
    """Join a Ray cluster: ``None`` or ``local`` starts one on this machine (all its CPUs and GPUs),
    ``auto`` joins the running one (``RAY_ADDRESS`` or ``ray start``), anything else is its address.
    Nothing happens when this process is already connected."""
    ray = _ray()
    if ray.is_initialized():
        return
    where = None if address in (None, "", "local") else address
    try:
        ray.init(address=where, include_dashboard=False, logging_level="warning", log_to_driver=False,
                 configure_logging=True)
    except ConnectionError as e:
        raise RayError(f"cannot reach a Ray cluster at {address!r} ({e}); start one with `ray start --head`, "
                       "set RAY_ADDRESS, or give --ray without an address for a local one") from e


@dataclass(frozen=True)
class ModelSpec:
    """What a worker loads: a generator as ``load_generator`` takes it (name or file, and its options:
    space, truncation, family, network) or none (relabelling), and an extractor name (``a+b`` allowed)."""

    generator: str | None
    extractor: str
    options: dict = field(default_factory=dict)

    def for_workers(self) -> ModelSpec:
        """The same spec with a checkpoint file named by its absolute path (workers run in other folders)."""
        if self.generator and Path(self.generator).expanduser().exists():
            return ModelSpec(str(Path(self.generator).expanduser().resolve()), self.extractor, self.options)
        return self

    def load(self, device: str | None) -> tuple[Generator | None, Extractor]:
        from .extractors import load_extractor
        from .generators import load_generator

        gen = load_generator(self.generator, device, **self.options) if self.generator else None
        return gen, load_extractor(self.extractor, device)


class Worker:
    """A Ray actor's state: the models, loaded once (again after a restart), on its device."""

    def __init__(self, spec: ModelSpec, device: str, threads: int | None) -> None:
        self.spec, self.device, self.threads = spec, device, threads
        self._models: tuple[Generator | None, Extractor] | None = None

    def models(self) -> tuple[Generator | None, Extractor]:
        if self._models is None:
            import torch

            if self.threads:
                torch.set_num_threads(self.threads)
            self._models = self.spec.load(self.device)
        return self._models

    def ready(self) -> dict:
        """Load the models; say where this worker runs and the chunk its device takes locally."""
        import socket

        gen, ext = self.models()
        return {"pid": os.getpid(), "host": socket.gethostname(), "device": str(ext.device),
                "batch": gen.batch_size if gen is not None else ext.batch_size}

    def sample(self, z: np.ndarray, with_images: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Codes, images (when asked) and labels of one chunk of noise, computed as the local loop does."""
        gen, ext = self.models()
        assert gen is not None, "a sampling worker has a generator"
        from .sample import render_and_label

        codes = gen.codes_from_z(np.array(z))  # a writable copy of the object store's read-only view
        labels, images = render_and_label(gen, ext, codes, keep_images=with_images)
        return codes, images, labels

    def label(self, images: np.ndarray) -> np.ndarray:
        """Labels of one chunk of cached images."""
        import torch

        return self.models()[1](torch.from_numpy(np.array(images)))

    def measure(self, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and images of latents in the generator's own space (the faces ``tlgan dataset`` steers)."""
        from .sample import render_and_label

        gen, ext = self.models()
        assert gen is not None, "a measuring worker has a generator"
        return render_and_label(gen, ext, np.array(latents))


@dataclass
class Pool:
    """Ray actors running :class:`Worker`, sized from the resources the cluster reports."""

    actors: list
    device: str
    resources: dict

    @classmethod
    def start(cls, spec: ModelSpec, workers: int | None = None, device: str = "auto",
              cpus_per_worker: int = 1, restarts: int = MAX_RESTARTS) -> Pool:
        """``workers`` actors (default: one per GPU, or one per ``cpus_per_worker`` CPUs when the cluster has
        no GPU, or ``device`` is cpu); refuses more than the cluster can ever place."""
        ray = _ray()
        total = ray.cluster_resources()
        gpus, cpus = int(total.get("GPU", 0)), int(total.get("CPU", 0))
        if device not in ("auto", "cpu", "cuda"):
            raise RayError(f"--device {device!r} cannot be used with --ray: use auto, cpu or cuda (each worker "
                           "gets its own GPU)")
        use_gpu = device == "cuda" or (device == "auto" and gpus > 0)
        if use_gpu and gpus == 0:
            raise RayError("--device cuda was asked for but the Ray cluster has no GPU; use --device cpu")
        if cpus_per_worker < 1:
            raise RayError(f"cpus per worker must be at least 1, got {cpus_per_worker}")
        fits = gpus if use_gpu else cpus // cpus_per_worker
        if fits < 1:
            raise RayError(f"the Ray cluster has {cpus} CPU(s), fewer than the {cpus_per_worker} one worker takes")
        count = fits if workers is None else int(workers)
        if not 1 <= count <= fits:
            what = f"{gpus} GPU(s)" if use_gpu else f"{cpus} CPU(s), {cpus_per_worker} per worker"
            raise RayError(f"--workers {count}: the Ray cluster has room for 1..{fits} workers ({what})")
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        options: dict[str, Any] = dict(num_gpus=1, num_cpus=1) if use_gpu else dict(num_cpus=cpus_per_worker)
        actor = ray.remote(Worker).options(max_restarts=restarts, max_task_retries=restarts,
                                           runtime_env={"env_vars": env} if env else None, **options)
        worker_device = "cuda" if use_gpu else "cpu"
        actors = [actor.remote(spec.for_workers(), worker_device, None if use_gpu else cpus_per_worker)
                  for _ in range(count)]
        return cls(actors, worker_device, options)

    def first_batch(self) -> int:
        """The batch size of the first worker to load its models (its device sets it)."""
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        refs = [a.ready.remote() for a in self.actors]
        while refs:
            (ref,), refs = ray.wait(refs, num_returns=1)
            try:
                return int(ray.get(ref)["batch"])
            except RayTaskError as e:
                raise _cause(e) from None
            except RayActorError:
                continue
        raise RayError("no Ray worker could start; see the Ray logs of the cluster")

    def close(self) -> None:
        ray = _ray()
        for a in self.actors:
            ray.kill(a, no_restart=True)


@dataclass
class Report:
    """What one distributed job did: the workers that ran (pid, host, device, batch), the chunks and samples
    done in this call, the workers lost for good (their chunks went to the others), seconds."""

    workers: list[dict] = field(default_factory=list)
    chunks: int = 0
    images: int = 0
    lost_workers: int = 0
    seconds: float = 0.0
    startup: float = 0.0  # seconds from the job's start until the first worker had loaded its models
    ready_at: list[float] = field(default_factory=list)  # seconds from the start until each worker was ready
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (seconds, samples stored so far)
    t0: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, call: Report) -> None:
        """Count one more call of a job made of many calls (:class:`Measure`): its chunks, samples and lost
        workers; the workers and start-up are the first call's."""
        self.workers = self.workers or call.workers
        self.startup = self.startup or call.startup
        self.chunks += call.chunks
        self.images += call.images
        self.lost_workers = max(self.lost_workers, call.lost_workers)

    @property
    def rate(self) -> float:
        """Samples per second once the first worker was ready (the cluster's throughput)."""
        busy = self.seconds - self.startup
        return self.images / busy if busy > 0 else 0.0


def _cause(error: Exception) -> BaseException:
    """The worker's own exception inside a Ray task error (e.g. a TLGANError with its one-line message)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _drive(pool: Pool, tasks: list[tuple[int, int]], submit: Callable[[Any, int, int], Any],
           store: Callable[[int, int, Any], None], report: Report, on_ready: Callable[[dict], None] | None = None,
           ) -> None:
    """Hand ``tasks`` (chunk ranges, in order) to the pool's workers as they become ready, at most
    ``IN_FLIGHT_PER_WORKER`` each, and ``store`` each result as it arrives. A worker that Ray could not
    keep alive is dropped and its chunks go to the others; an error raised by the models ends the job."""
    ray = _ray()
    from ray.exceptions import RayActorError, RayTaskError

    queue = deque(tasks)
    waiting = {a.ready.remote(): i for i, a in enumerate(pool.actors)}  # load refs -> actor index
    busy: dict[Any, tuple[int, int, int]] = {}  # result refs -> (actor index, lo, hi)
    load = [0] * len(pool.actors)
    ready: list[int] = []
    last_loss: BaseException | None = None
    lost: set[int] = set()

    def fill() -> None:
        for i in ready:
            while queue and load[i] < IN_FLIGHT_PER_WORKER:
                lo, hi = queue.popleft()
                busy[submit(pool.actors[i], lo, hi)] = (i, lo, hi)
                load[i] += 1

    while queue or busy:
        fill()
        pending = list(waiting) + list(busy)
        if not pending:
            raise RayError(f"all {len(pool.actors)} Ray workers were lost ({last_loss}); the run folder keeps "
                           "every chunk stored so far: rerun the same command to finish it")
        done, _ = ray.wait(pending, num_returns=1, timeout=1.0)  # wakes up now and then, so Ctrl-C is seen
        if not done:
            continue
        ref = done[0]
        if ref in waiting:
            i = waiting.pop(ref)
            try:
                info = ray.get(ref)
            except RayTaskError as e:
                raise _cause(e) from None
            except RayActorError as e:
                last_loss = e
                lost.add(i)
                continue
            report.ready_at.append(time.perf_counter() - report.t0)
            report.startup = report.ready_at[0]
            report.workers.append(info)
            ready.append(i)
            if on_ready:
                on_ready(info)
            continue
        i, lo, hi = busy.pop(ref)
        load[i] -= 1
        try:
            result = ray.get(ref)
        except RayTaskError as e:
            raise _cause(e) from None
        except RayActorError as e:  # restarts used up: give its chunks to the others
            last_loss = e
            lost.add(i)
            if i in ready:
                ready.remove(i)
            queue.appendleft((lo, hi))
            continue
        del ref
        store(lo, hi, result)
        report.chunks += 1
        report.images += hi - lo
        report.timeline.append((time.perf_counter() - report.t0, report.images))
        report.lost_workers = len(lost)


def _bar(total: int, initial: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc=desc, disable=not progress)


def sample(path: str | Path, spec: ModelSpec, n: int, seed: int = 0, chunk: int | None = None,
           save_images: bool = False, progress: bool = True, workers: int | None = None, device: str = "auto",
           cpus_per_worker: int = 1, address: str | None = None, restarts: int = MAX_RESTARTS
           ) -> tuple[Run, Report]:
    """``tlgan sample --ray``: the run :func:`tlgan.sample.sample` makes, rendered and labelled by Ray workers.

    ``chunk`` defaults to the run's own when it exists, else to the batch a worker's device takes.
    ``workers``, ``device`` and ``cpus_per_worker`` size the pool (:meth:`Pool.start`); ``restarts`` is how
    often Ray restarts one lost worker and retries its chunks before the others take them over.
    ``address``: see :func:`connect`.
    """
    from .sample import ChunkWriter, RunError, _refuse_foreign_folder, check_request, create_run, open_run, run_lock

    if spec.generator is None:
        raise RayError("sampling needs a generator")
    path = Path(path)
    connect(address)
    gen, ext = spec.load("cpu")  # the driver's copy: names, features and the latents, never run on images
    assert gen is not None
    if chunk is None and (path / "run.json").exists():
        chunk = open_run(path).chunk
    if chunk is not None:
        check_request(gen, n, seed, chunk)
    _refuse_foreign_folder(path)
    report = Report()
    pool = Pool.start(spec, workers, device, cpus_per_worker, restarts) if chunk is None else None
    try:
        if pool is not None:  # the batch the workers' device takes
            chunk = pool.first_batch()
        assert chunk is not None
        check_request(gen, n, seed, chunk)
        path.mkdir(parents=True, exist_ok=True)
        with run_lock(path):
            run = create_run(path, gen, ext, n, seed, chunk, save_images)
            if run.missing_rows("z"):
                raise RunError(f"run {path} has lost chunks of its latents z; run `tlgan sample` with the run's "
                               "settings once without --ray to draw them again")
            writer = ChunkWriter(run, f"labels/{ext.name}", images=save_images, codes=gen.space != "z")
            tasks = writer.pending()
            if not tasks:
                return run, report
            pool = pool or Pool.start(spec, workers, device, cpus_per_worker, restarts)
            bar = _bar(n, writer.start, f"sample {gen.name} + {ext.name} on Ray", progress)

            def submit(actor: Any, lo: int, hi: int) -> Any:
                return actor.sample.remote(run.noise_rows(lo, hi), save_images)

            def store(lo: int, hi: int, result: tuple) -> None:
                codes, images, labels = result
                bar.update(writer.write(lo, hi, labels, images, codes))

            try:
                _drive(pool, tasks, submit, store, report, lambda _: bar.set_postfix(workers=len(report.workers)))
            finally:
                bar.close()
    finally:
        if pool is not None:
            pool.close()
    report.seconds = time.perf_counter() - report.t0
    return open_run(path), report


class Measure:
    """Latents -> (labels, images), rendered and labelled by a pool of Ray workers in batches of the size
    their device takes, the results in the latents' order: ``tlgan dataset --ray``'s stand-in for
    :func:`tlgan.jobs.measure_faces`. ``report`` adds up the batches and faces over every call."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.batch = pool.first_batch()
        self.report = Report()

    def __call__(self, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ray = _ray()
        latents = np.ascontiguousarray(latents)
        tasks = [(lo, min(lo + self.batch, len(latents))) for lo in range(0, len(latents), self.batch)]
        if not tasks:
            return ray.get(self.pool.actors[0].measure.remote(latents))
        parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        call = Report()
        _drive(self.pool, tasks, lambda actor, lo, hi: actor.measure.remote(latents[lo:hi]),
               lambda lo, _hi, result: parts.__setitem__(lo, result), call)
        self.report.add(call)
        labels, images = zip(*(parts[lo] for lo, _ in tasks), strict=True)
        return np.concatenate(labels), np.concatenate(images)


def relabel(path: str | Path, extractor: str, make_default: bool = False, progress: bool = True,
            workers: int | None = None, device: str = "auto", cpus_per_worker: int = 1,
            address: str | None = None, restarts: int = MAX_RESTARTS) -> tuple[Run, Report]:
    """``tlgan relabel --ray``: label a run's cached images with ``extractor`` on Ray workers."""
    from .sample import ChunkWriter, open_run, prepare_relabel, run_lock

    spec = ModelSpec(None, extractor)
    connect(address)
    _, ext = spec.load("cpu")
    open_run(path)
    report = Report()
    with run_lock(path):
        run = open_run(path)
        prepare_relabel(run, ext, make_default)
        writer = ChunkWriter(run, f"labels/{ext.name}", stop=run.done("images"))
        tasks = writer.pending()
        if not tasks:
            return run, report
        pool = Pool.start(spec, workers, device, cpus_per_worker, restarts)
        bar = _bar(writer.stop, writer.start, f"relabel with {ext.name} on Ray", progress)

        def store(lo: int, hi: int, labels: np.ndarray) -> None:
            bar.update(writer.write(lo, hi, labels))

        try:
            _drive(pool, tasks, lambda actor, lo, hi: actor.label.remote(run._read("images", lo, hi)),
                   store, report, lambda _: bar.set_postfix(workers=len(report.workers)))
        finally:
            bar.close()
            pool.close()
    report.seconds = time.perf_counter() - report.t0
    return open_run(path), report
