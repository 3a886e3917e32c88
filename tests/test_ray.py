"""Step 3 on Ray (tlgan[ray]): a local Ray gives the local run's z, images and labels, survives a killed
worker, and a killed driver leaves a run folder that the same command finishes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model_support import need_models

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tlgan[ray]')")

import ray_support  # also registers the test extractors in this process
from tlgan.distributed import ModelSpec, RayError, relabel, sample
from tlgan.jobs import load_models
from tlgan.sample import open_run
from tlgan.sample import sample as local_sample

TESTS = Path(__file__).parent
TOY = ModelSpec("toy-linear", "toy-linear")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray for the module (2 CPUs); its workers import tlgan and the test extractors."""
    mark = tmp_path_factory.mktemp("ray") / "killed"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), *sys.path]))
        mp.setenv("TLGAN_PLUGINS", "ray_support")
        mp.setenv(ray_support.KILL_MARK, str(mark))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
        try:
            yield mark
        finally:
            ray.shutdown()


def local(path, n, seed, chunk, extractor="toy-linear", generator="toy-linear"):
    gen, ext = load_models(generator, extractor, "cpu")
    return local_sample(path, gen, ext, n, seed=seed, chunk=chunk, save_images=True, progress=False)


def same_run(a, b, label_set_a=None, label_set_b=None, atol=0.0):
    np.testing.assert_array_equal(a.noise, b.noise)
    np.testing.assert_array_equal(a.images[:], b.images[:])
    la, lb = a.labels(label_set_a), b.labels(label_set_b)
    assert la.shape == lb.shape == (a.n, la.shape[1])
    np.testing.assert_array_equal(np.isnan(la), np.isnan(lb))
    np.testing.assert_allclose(la, lb, rtol=0, atol=atol)


def test_ray_run_equals_local_run_and_relabels(cluster, tmp_path):
    run, report = sample(tmp_path / "ray", TOY, 300, seed=4, chunk=32, save_images=True, progress=False)
    assert report.chunks == 10 and report.images == 300 and len(report.workers) >= 1
    same_run(run, local(tmp_path / "local", 300, 4, 32))
    # the same run but for its identity (run_id ties each run's chunks to it: see sample.chunk_digest)
    assert run.info == open_run(tmp_path / "local").info | {k: run.info[k] for k in ("tlgan_version", "run_id")}
    # the finished run is left as it is; relabelling its cached images on Ray fills another label set
    _again, report = sample(tmp_path / "ray", TOY, 300, seed=4, save_images=True, progress=False)
    assert report.chunks == 0
    relabelled, report = relabel(tmp_path / "ray", "toy-slow", workers=1, progress=False)
    assert report.chunks == 10
    np.testing.assert_array_equal(relabelled.labels("toy-slow"), run.labels("toy-linear"))


@need_models("digiface-dcgan", "faceres", "facemesh", "blazeface", "fer-emotion")
def test_default_models_on_ray_equal_local(cluster, tmp_path):
    spec = ModelSpec("digiface-dcgan", "faces")
    run, report = sample(tmp_path / "ray", spec, 64, seed=2, chunk=32, save_images=True, progress=False, workers=1)
    assert report.chunks == 2
    # a worker runs one thread, the local run all: float sums differ in the last bits
    same_run(run, local(tmp_path / "local", 64, 2, 32, "faces", "digiface-dcgan"), atol=1e-3)


@pytest.mark.parametrize("restarts", [3, 0], ids=["restarted-by-ray", "chunks-to-the-other-worker"])
def test_killed_worker_still_finishes_identically(cluster, tmp_path, restarts):
    cluster.unlink(missing_ok=True)
    spec = ModelSpec("toy-linear", "toy-dies-once")
    run, report = sample(tmp_path / "ray", spec, 256, seed=6, chunk=16, save_images=True, progress=False,
                         workers=2, restarts=restarts)
    assert cluster.exists(), "a worker process should have been killed mid-run"
    assert report.lost_workers == (1 if restarts == 0 else 0)
    same_run(run, local(tmp_path / "local", 256, 6, 16), "toy-dies-once", "toy-linear")


def test_killed_driver_resumes_to_the_same_result(cluster, tmp_path):
    out = tmp_path / "ray"
    address = ray.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "tlgan.cli", "sample", "-g", "toy-linear", "-e", "toy-slow", "-n", "400",
           "--chunk", "20", "--seed", "8", "--out", str(out), "--ray", address, "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    progress = out / "progress.json"
    while time.time() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text()).get("labels/toy-slow", 0) >= 60:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 60 <= open_run(out).done("labels/toy-slow") < 400, "the kill should land mid-run"
    run, report = sample(out, ModelSpec("toy-linear", "toy-slow"), 400, seed=8, save_images=True, progress=False)
    assert report.images < 400
    same_run(run, local(tmp_path / "local", 400, 8, 20), "toy-slow", "toy-linear")


def test_dataset_on_ray_is_the_set_made_here(cluster, tmp_path):
    """``tlgan dataset --ray``: the driver steers and writes, the workers render and label; the same seed
    gives the same faces in the same cells as without Ray."""
    from tlgan.jobs import dataset, discover

    axes = discover(tmp_path / "toy", "toy-linear", "toy-linear", 600, device="cpu", save_images=False,
                    progress=False).axes_path
    here = dataset(axes, ["p", "a:3"], 60, tmp_path / "here", seed=2, chunk=16, device="cpu")
    there = dataset(axes, ["p", "a:3"], 60, tmp_path / "ray", seed=2, chunk=16, device="cpu", ray_address="local",
                    workers=2)
    assert here.ray is None and there.ray.images >= 60 and len(there.ray.workers) >= 1
    assert there.counts == here.counts and sorted(there.counts.values()) == [10] * 6
    rows = [[json.loads(x) for x in (tmp_path / d / "train/metadata.jsonl").read_text().splitlines()]
            for d in ("here", "ray")]
    assert [(r["file_name"], r["index"], r["cell"]) for r in rows[0]] == \
           [(r["file_name"], r["index"], r["cell"]) for r in rows[1]]
    np.testing.assert_allclose([r["a"] for r in rows[0]], [r["a"] for r in rows[1]], atol=1e-5)
    for r in rows[0]:
        assert (tmp_path / "here/train" / r["file_name"]).read_bytes() == \
               (tmp_path / "ray/train" / r["file_name"]).read_bytes()


def test_more_workers_than_the_cluster_holds_is_refused(cluster, tmp_path):
    with pytest.raises(RayError, match=r"room for 1..2 workers"):
        sample(tmp_path / "ray", TOY, 10, workers=3, progress=False)
    with pytest.raises(RayError, match="no GPU"):
        sample(tmp_path / "ray", TOY, 10, device="cuda", progress=False)
    assert not (tmp_path / "ray").exists()
