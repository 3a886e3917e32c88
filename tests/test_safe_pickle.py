import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from generator_fixtures import fixture_file
from tlgan.generators.safe_pickle import PersistentObject, TFNetwork, UnsafePickleError, load_pickle
from tlgan.weights import WeightsError


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("make", [lambda m: {"G_ema": _Evil(m)}, lambda m: [1, 2, _Evil(m)], lambda m: _EvalEvil()])
def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path, make):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(make(str(marker))))
    with pytest.raises(UnsafePickleError, match=r"names the global (posix|nt|os|builtins)\.(system|eval)"):
        load_pickle(path)
    assert not marker.exists()


def test_plain_data_tensors_and_arrays_load(tmp_path):
    path = tmp_path / "ok.pkl"
    data = {"a": OrderedDict(x=np.arange(3, dtype=np.float32)), "t": torch.arange(4.0), "s": np.float32(2.5)}
    path.write_bytes(pickle.dumps(data, protocol=4))
    out = load_pickle(path)
    np.testing.assert_array_equal(out["a"]["x"], [0, 1, 2])
    assert torch.equal(out["t"], torch.arange(4.0)) and out["s"] == 2.5


def test_truncated_and_foreign_files_get_a_clear_error(tmp_path):
    src = fixture_file("stylegan2_ada/sg2ada_public_32.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(src[: len(src) // 3])
    with pytest.raises(WeightsError, match=r"not a readable network pickle.*complete"):
        load_pickle(cut)
    text = tmp_path / "notes.pkl"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="not a readable network pickle"):
        load_pickle(text)


def test_nvlabs_snapshot_reads_as_data():
    data = load_pickle(fixture_file("stylegan2_ada/sg2ada_public_32.pkl"))
    assert list(data) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    g = data["G_ema"]
    assert isinstance(g, PersistentObject) and g.class_name == "Generator"
    assert g.init_kwargs["z_dim"] == 64 and g.init_kwargs["mapping_kwargs"]["num_layers"] == 2
    assert "class Generator" in g.module_src  # kept as text, never executed
    sd = g.state_dict()
    assert sd["mapping.fc0.weight"].shape == (64, 64) and sd["mapping.w_avg"].shape == (64,)
    assert not torch.equal(sd["mapping.fc0.weight"], data["G"].state_dict()["mapping.fc0.weight"])


def test_tf1_network_pickle_reads_as_data():
    G, D, Gs = load_pickle(fixture_file("pggan_tf1/pggan_tf1_public_32.pkl"))
    assert all(isinstance(n, TFNetwork) for n in (G, D, Gs))
    assert (Gs.name, Gs.build_func_name) == ("Gs", "G_paper")
    assert Gs.static_kwargs["resolution"] == 32
    v = Gs.variables
    assert next(iter(v)) == "lod" and v["4x4/Dense/weight"].shape == (32, 512)
