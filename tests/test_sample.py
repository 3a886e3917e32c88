"""Step 3: run folders are resumable, refuse mismatches, survive a full disk, and relabel cached images."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tlgan.extractors import Extractor, Feature
from tlgan.sample import RunError, open_run, relabel, sample
from tlgan.toy import toy_directions


def test_run_holds_latents_labels_and_images(tmp_path, toy):
    gen, ext = toy
    run = sample(tmp_path / "run", gen, ext, n=50, seed=3, chunk=16, save_images=True, progress=False)
    np.testing.assert_array_equal(run.latents, gen.sample(50, 3))
    labels = run.labels()
    assert labels.shape == (50, 4)
    # The toy's labels are known linear functions of z (up to uint8 rounding).
    np.testing.assert_allclose(labels[:, 0], run.latents @ toy_directions()[0], atol=0.05)
    assert run.images.shape == (50, 8, 8, 3)
    assert [f.name for f in run.features()] == ["a", "b", "p", "c"]


class Interrupt(Extractor):
    """Labels like the toy, but raises KeyboardInterrupt (a Ctrl-C) on its nth call."""

    name = "toy-linear"

    def __init__(self, inner, stop_at):
        self.inner, self.features, self.calls, self.stop_at = inner, inner.features, 0, stop_at
        self.batch_size, self.device = inner.batch_size, inner.device

    def extract(self, images):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.extract(images)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, toy):
    gen, ext = toy
    whole = sample(tmp_path / "whole", gen, ext, n=100, seed=1, chunk=16, save_images=True, progress=False)
    with pytest.raises(KeyboardInterrupt):
        sample(tmp_path / "cut", gen, Interrupt(ext, stop_at=4), n=100, seed=1, chunk=16, save_images=True,
               progress=False)
    assert open_run(tmp_path / "cut").done("labels/toy-linear") == 48  # three chunks kept
    resumed = sample(tmp_path / "cut", gen, ext, n=100, seed=1, chunk=16, save_images=True, progress=False)
    np.testing.assert_array_equal(resumed.labels(), whole.labels())
    np.testing.assert_array_equal(resumed.images[:], whole.images[:])
    np.testing.assert_array_equal(resumed.latents, whole.latents)


def test_killed_process_resumes(tmp_path):
    """A real `tlgan sample` killed with SIGKILL mid-run continues to the same data on rerun."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tlgan.cli", "sample", "-g", "toy-linear", "-e", "toy-linear", "-n", "200000",
           "--chunk", "1000", "--seed", "5", "--out", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        p = out / "progress.json"
        if p.exists() and json.loads(p.read_text()).get("labels/toy-linear", 0) >= 3000:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = open_run(out).done("labels/toy-linear")
    assert 0 < done < 200000, "the kill should land mid-run"
    subprocess.run(cmd, check=True, capture_output=True)
    run = open_run(out)
    assert run.done("labels/toy-linear") == 200000
    labels = run.labels()
    assert np.isfinite(labels).all()
    np.testing.assert_allclose(labels[:, 0], run.latents @ toy_directions()[0], atol=0.05)


def test_mismatched_rerun_is_refused_and_data_kept(tmp_path, toy):
    gen, ext = toy
    sample(tmp_path / "run", gen, ext, n=40, seed=0, chunk=8, progress=False)
    before = open_run(tmp_path / "run").labels().copy()
    with pytest.raises(RunError, match="seed: run has 0, asked 1"):
        sample(tmp_path / "run", gen, ext, n=40, seed=1, chunk=8, progress=False)
    np.testing.assert_array_equal(open_run(tmp_path / "run").labels(), before)


def test_foreign_folder_and_other_version_are_refused(tmp_path, toy):
    gen, ext = toy
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RunError, match="not a tlgan run folder"):
        sample(tmp_path / "mine", gen, ext, n=10, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    run = sample(tmp_path / "run", gen, ext, n=10, chunk=5, progress=False)
    info = json.loads((run.path / "run.json").read_text())
    info["format"] = 99
    (run.path / "run.json").write_text(json.dumps(info))
    with pytest.raises(RunError, match="run format 99"):
        open_run(run.path)


def test_full_disk_keeps_written_chunks(tmp_path, toy, monkeypatch):
    gen, ext = toy
    import tlgan.sample as S

    calls = {"n": 0}
    real = S.Run._advance

    def advance(self, **counts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, **counts)

    monkeypatch.setattr(S.Run, "_advance", advance)
    with pytest.raises(RunError, match=r"disk full while writing samples 16..24.*16 samples written before are intact"):
        sample(tmp_path / "run", gen, ext, n=40, chunk=8, progress=False)
    monkeypatch.setattr(S.Run, "_advance", real)
    assert open_run(tmp_path / "run").done("labels/toy-linear") == 16
    run = sample(tmp_path / "run", gen, ext, n=40, chunk=8, progress=False)
    assert np.isfinite(run.labels()).all() and len(run.labels()) == 40


class Doubled(Extractor):
    name = "toy-doubled"
    features = (Feature("a2", "continuous"),)

    def extract(self, images):
        return 2 * images.float().mean(dim=(2, 3)).numpy()[:, :1] / 255.0


def test_relabel_uses_cached_images_without_rendering(tmp_path, toy, monkeypatch):
    gen, ext = toy
    run = sample(tmp_path / "run", gen, ext, n=30, chunk=10, save_images=True, progress=False)
    monkeypatch.setattr(type(gen), "render", lambda *a, **k: pytest.fail("relabel must not render"))
    run = relabel(run.path, Doubled("cpu"), progress=False)
    assert run.label_sets == ["toy-linear", "toy-doubled"]
    np.testing.assert_allclose(run.labels("toy-doubled")[:, 0],
                               2 * run.images[:].astype(np.float32).mean(axis=(2, 3))[:, 0] / 255, rtol=1e-5)
    with pytest.raises(RunError, match="no labels from extractor 'nope'"):
        run.labels("nope")


def test_relabel_needs_cached_images(tmp_path, toy):
    gen, ext = toy
    sample(tmp_path / "run", gen, ext, n=10, chunk=5, save_images=False, progress=False)
    with pytest.raises(RunError, match="without --save-images"):
        relabel(tmp_path / "run", Doubled("cpu"), progress=False)


def test_chunks_stored_out_of_order_advance_progress_over_the_complete_prefix(tmp_path, toy):
    """What a cluster's driver relies on: a chunk that lands early is kept, but progress only counts the
    samples with no gap before them, so a run cut off at any moment resumes from a truthful count."""
    from tlgan.sample import ChunkWriter, create_run

    gen, ext = toy
    run = create_run(tmp_path / "run", gen, ext, n=40, seed=2, chunk=16, save_images=True)
    writer = ChunkWriter(run, "labels/toy-linear", images=True)
    assert writer.pending() == [(0, 16), (16, 32), (32, 40)]

    def store(lo, hi):
        images = gen.render(run.noise_rows(lo, hi))
        writer.write(lo, hi, ext(images), images.numpy())

    store(32, 40)
    assert open_run(run.path).progress() == {}
    store(0, 16)
    assert open_run(run.path).progress() == {"labels/toy-linear": 16, "images": 16}
    store(16, 32)
    assert open_run(run.path).progress() == {"labels/toy-linear": 40, "images": 40}
    whole = sample(tmp_path / "whole", gen, ext, n=40, seed=2, chunk=16, save_images=True, progress=False)
    np.testing.assert_array_equal(open_run(run.path).labels(), whole.labels())
    # a chunk a damaged folder lost below the count is listed first, and putting it back leaves the count alone
    (run.path / "data.zarr/labels/toy-linear/c/1/0").unlink()
    writer = ChunkWriter(open_run(run.path), "labels/toy-linear", images=True)
    assert writer.pending() == [(16, 32)]
    store(16, 32)
    assert open_run(run.path).progress() == {"labels/toy-linear": 40, "images": 40}
    np.testing.assert_array_equal(open_run(run.path).labels(), whole.labels())
